// EnginePool from several threads, and the model manifest's integrity checks.
#include <atomic>
#include <cstring>
#include <fstream>
#include <thread>

#include "vision/image.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::Engine;
using test::LfwFile;
using test::Models;

bool BitIdentical(const Feature& a, const Feature& b) {
  return a.model_version == b.model_version && a.values.size() == b.values.size() &&
         std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0;
}

TEST(EnginePoolTest, FourThreadsOnTwoEnginesMatchOneEngineBitForBit) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  std::vector<cv::Mat> images;
  for (auto [name, n] : {std::pair{"Aaron_Peirsol", 1}, {"Abel_Pacheco", 1}, {"Amber_Tamblyn", 1}})
    images.push_back(LoadImage(LfwFile(lfw, name, n)));
  std::vector<Feature> expected;
  for (const auto& img : images) {
    auto face = Engine().DetectLargest(img);
    ASSERT_TRUE(face);
    expected.push_back(Engine().Embed(*face));
  }

  EnginePool pool(Models(), 2);
  ASSERT_EQ(pool.size(), 2u);
  constexpr int kThreads = 4, kRounds = 2;
  std::vector<std::vector<Feature>> got(kThreads);
  std::atomic<int> busy{0}, max_busy{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round)
        for (size_t i = 0; i < images.size(); ++i) {
          // Each thread starts on a different image so that engines interleave.
          const auto& img = images[(i + t) % images.size()];
          auto lease = pool.Acquire();
          int now = ++busy;
          for (int m = max_busy; now > m && !max_busy.compare_exchange_weak(m, now);) {
          }
          auto face = lease->DetectLargest(img);
          Feature f = face ? lease->Embed(*face) : Feature{};
          --busy;
          got[t].push_back(std::move(f));
        }
    });
  for (auto& th : threads) th.join();
  EXPECT_LE(max_busy.load(), 2) << "more leases out than engines";
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(got[t].size(), images.size() * kRounds);
    for (size_t k = 0; k < got[t].size(); ++k) {
      const size_t img = (k % images.size() + t) % images.size();
      EXPECT_TRUE(BitIdentical(got[t][k], expected[img])) << "thread " << t << " item " << k;
    }
  }
}

// A private copy of the installed models to break in various ways.
std::unique_ptr<test::ScopedTempDir> CopyModels(const std::string& name) {
  auto tmp = std::make_unique<test::ScopedTempDir>(name);
  for (const auto& e : std::filesystem::directory_iterator(Models()->dir()))
    if (e.is_regular_file())
      std::filesystem::copy_file(e.path(), tmp->path() / e.path().filename());
  return tmp;
}

std::string ExpectModelError(const std::filesystem::path& dir) {
  try {
    ModelSet::Load(dir);
    ADD_FAILURE() << "ModelSet::Load(" << dir << ") did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModel) << e.what();
    return e.what();
  }
  return {};
}

TEST(ModelSetTest, InstalledModelsLoadWithAllRoles) {
  auto m = Models();
  for (const char* role : {"detector", "landmarks", "embedder", "liveness"})
    EXPECT_TRUE(m->has(role)) << role;
  EXPECT_FALSE(m->file("embedder").bytes.empty());
  EXPECT_NE(m->feature_version().find(m->file("embedder").sha256.substr(0, 8)), std::string::npos);
  EXPECT_ANJU_ERROR(m->file("no-such-role"), ErrorCode::kModel);
  // A verified copy loads and gives the same feature version.
  auto tmp = CopyModels("models-ok");
  const auto& dir = tmp->path();
  EXPECT_EQ(ModelSet::Load(dir)->feature_version(), m->feature_version());
}

TEST(ModelSetTest, FlippedByteIsCaughtAndNamed) {
  auto tmp = CopyModels("models-flipped");
  const auto& dir = tmp->path();
  const auto victim = dir / Models()->file("landmarks").path.filename();
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x01);
    f.seekp(1000);
    f.write(&c, 1);
  }
  const std::string what = ExpectModelError(dir);
  EXPECT_NE(what.find(victim.filename().string()), std::string::npos) << what;
  EXPECT_NE(what.find("scripts/setup"), std::string::npos) << "says how to fix it: " << what;
  // Without verification the same files are accepted as they are.
  EXPECT_NO_THROW(ModelSet::Load(dir, /*verify=*/false));
}

TEST(ModelSetTest, MissingManifestIsAModelError) {
  auto tmp = CopyModels("models-no-manifest");
  const auto& dir = tmp->path();
  std::filesystem::remove(dir / "manifest.json");
  const std::string what = ExpectModelError(dir);
  EXPECT_NE(what.find("manifest"), std::string::npos) << what;
  EXPECT_EQ(ExpectModelError(dir / "no-such-dir").empty(), false);
}

TEST(ModelSetTest, MissingModelFileIsAModelErrorNamingIt) {
  auto tmp = CopyModels("models-missing-file");
  const auto& dir = tmp->path();
  const auto victim = Models()->file("embedder").path.filename();
  std::filesystem::remove(dir / victim);
  const std::string what = ExpectModelError(dir);
  EXPECT_NE(what.find(victim.string()), std::string::npos) << what;
}

TEST(ModelSetTest, MalformedManifestIsAModelError) {
  auto tmp = CopyModels("models-malformed");
  const auto& dir = tmp->path();
  { std::ofstream(dir / "manifest.json") << "{\"name\": \"x\", \"files\": "; }
  ExpectModelError(dir);
  {
    std::ofstream(dir / "manifest.json")
        << R"({"name": "x", "version": "1", "files": {"detector": {"file": "fr_detect.onnx",)"
        << R"( "sha256": "00"}}})";
  }
  const std::string what = ExpectModelError(dir);  // required roles missing
  EXPECT_NE(what.find("landmarks"), std::string::npos) << what;
}

}  // namespace
}  // namespace anju::vision
