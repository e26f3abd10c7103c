// The liveness evaluation's building blocks (BENCHMARKS.md "Liveness"): listing folders and
// approaches, the fixed identity split, the operating points, and the cached scoring on real
// NUAA frames.
#include "eval/liveness_eval.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "testing.h"

// The code of the anju::Error that EXPR throws, like the other suites.
#define EXPECT_ANJU_ERROR(expr, code) \
  EXPECT_EQ(::anju::testing::CodeOf([&] { (void)(expr); }), (code))

namespace anju::eval {
namespace {

namespace fs = std::filesystem;

// A real NUAA frame copied under DIR/REL (the listing and the split read real files).
void Put(const fs::path& src, const fs::path& dir, const std::string& rel) {
  fs::create_directories((dir / rel).parent_path());
  fs::copy_file(src, dir / rel, fs::copy_options::overwrite_existing);
}

TEST(LivenessEvalTest, NaturalOrderComparesDigitRunsAsNumbers) {
  EXPECT_TRUE(NaturalLess("frame2", "frame10"));
  EXPECT_FALSE(NaturalLess("frame10", "frame2"));
  EXPECT_TRUE(NaturalLess("a/0001_7.jpg", "a/0001_12.jpg"));
  EXPECT_TRUE(NaturalLess("abc", "abd"));
  EXPECT_FALSE(NaturalLess("x1", "x1"));
}

TEST(LivenessEvalTest, OperatingPointsHoldTheirTargets) {
  // 100 attacks 0.00, 0.01, …, 0.99; 100 live 0.50 … 0.995.
  std::vector<float> attack, live;
  for (int i = 0; i < 100; ++i) attack.push_back(i / 100.f), live.push_back(0.5f + i / 200.f);
  const float ta = ThresholdAtApcer(attack, 0.02);
  const auto accepted =
      std::count_if(attack.begin(), attack.end(), [&](float s) { return s >= ta; });
  EXPECT_EQ(accepted, 2);
  const float tb = ThresholdAtBpcer(live, 0.03);
  const auto refused = std::count_if(live.begin(), live.end(), [&](float s) { return s < tb; });
  EXPECT_EQ(refused, 3);
  // No room between them (tb < ta): the attack target wins.
  EXPECT_FLOAT_EQ(MidpointThreshold(ta, tb), ta);
  // Room: the log-odds midpoint, between the two.
  const float m = MidpointThreshold(0.001f, 0.01f);
  EXPECT_GT(m, 0.001f);
  EXPECT_LT(m, 0.01f);
  EXPECT_NEAR(m, 0.00317f, 1e-4);
  EXPECT_EQ(ThresholdAtApcer({}, 0.02), 0.f);
  EXPECT_EQ(ThresholdAtBpcer({}, 0.03), 1.f);
}

TEST(LivenessEvalTest, ListsImagesApproachesAndSplitsByIdentity) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const fs::path frame = nuaa / "ClientRaw" / "0001" / "0001_00_00_01_127.jpg";
  ASSERT_TRUE(fs::exists(frame));
  const fs::path dir = testing::TempDir("liveness-eval-list");
  // Four people, two approaches each, frames named by counter; a non-image file.
  for (const char* person : {"p1", "p2", "p3", "p10"})
    for (const char* approach : {"a", "b"})
      for (const char* f : {"f2.jpg", "f10.JPG", "f1.png"})
        Put(frame, dir, std::string(person) + "/" + approach + "/" + f);
  std::ofstream(dir / "p1" / "a" / "notes.txt") << "not an image";
  const auto files = ListImagesRecursive(dir);
  EXPECT_EQ(files.size(), 24u);
  const auto approaches = ListApproaches(dir);
  ASSERT_EQ(approaches.size(), 8u);
  EXPECT_EQ(approaches[0].dir, dir / "p1" / "a");
  ASSERT_EQ(approaches[0].frames.size(), 3u);
  EXPECT_EQ(approaches[0].frames[0].filename(), "f1.png");
  EXPECT_EQ(approaches[0].frames[2].filename(), "f10.JPG");  // natural order
  EXPECT_EQ(approaches.back().dir, dir / "p10" / "b");       // p10 after p3
  // The split: whole people alternate, never both halves, and the halves cover everything.
  std::vector<fs::path> dirs;
  for (const auto& a : approaches) dirs.push_back(a.dir);
  const auto tune = InSplit(dirs, dir, Split::kTune);
  const auto held = InSplit(dirs, dir, Split::kHeldOut);
  std::set<std::string> tune_people, held_people;
  for (size_t i = 0; i < dirs.size(); ++i) {
    EXPECT_NE(tune[i], held[i]) << dirs[i];
    (tune[i] ? tune_people : held_people).insert(dirs[i].parent_path().filename().string());
  }
  EXPECT_EQ(tune_people, (std::set<std::string>{"p1", "p3"}));
  EXPECT_EQ(held_people, (std::set<std::string>{"p2", "p10"}));
  for (bool in : InSplit(files, dir, Split::kAll)) EXPECT_TRUE(in);
  EXPECT_ANJU_ERROR(ListImagesRecursive(dir / "missing"), ErrorCode::kNotFound);
  fs::remove_all(dir);
}

// Real frames: a NUAA live frame scores high, a print low, a broken file is "no face"
// (reported, not fatal); later runs read the cache, score a changed file again, and ignore
// a cache of other settings or a corrupt one.
TEST(LivenessEvalTest, ScoresRealFramesAndReusesTheCache) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const fs::path dir = testing::TempDir("liveness-eval-score");
  Put(nuaa / "ClientRaw" / "0001" / "0001_00_00_01_127.jpg", dir, "live.jpg");
  Put(nuaa / "ImposterRaw" / "0001" / "0001_00_00_01_0.jpg", dir, "print.jpg");
  std::ofstream(dir / "broken.jpg") << "not a jpeg";
  const std::vector<fs::path> files = {dir / "live.jpg", dir / "print.jpg", dir / "broken.jpg"};
  LiveScoreOptions o;
  o.progress = false;
  o.cache = dir / "cache.json";
  vision::EngineOptions eo;
  std::vector<LiveScore> first;
  try {
    first = ScoreLiveness(files, {}, eo, o);
  } catch (const Error& e) {
    GTEST_SKIP() << "face models not installed: " << e.what();
  }
  ASSERT_EQ(first.size(), 3u);
  EXPECT_TRUE(first[0].found);
  EXPECT_TRUE(first[1].found);
  EXPECT_FALSE(first[2].found);
  EXPECT_GE(first[0].score, eo.liveness.threshold);
  EXPECT_LT(first[1].score, eo.liveness.threshold);
  EXPECT_GT(first[0].face_px, 60.f);
  ASSERT_TRUE(fs::exists(o.cache));
  // The second run reads the cache: a score planted in it comes back instead of a fresh one.
  nlohmann::json cache;
  std::ifstream(o.cache) >> cache;
  ASSERT_TRUE(cache["entries"].contains((dir / "live.jpg").string()));
  cache["entries"][(dir / "live.jpg").string()][3] = 0.125;
  std::ofstream(o.cache, std::ios::trunc) << cache.dump();
  o.threads = 1;
  const auto second = ScoreLiveness(files, {}, eo, o);
  EXPECT_FLOAT_EQ(second[0].score, 0.125f);
  EXPECT_FLOAT_EQ(second[1].score, first[1].score);
  EXPECT_FALSE(second[2].found);
  // The print file replaced by the live frame: scored again, now live.
  Put(nuaa / "ClientRaw" / "0001" / "0001_00_00_01_127.jpg", dir, "print.jpg");
  const auto third = ScoreLiveness(files, {}, eo, o);
  EXPECT_GE(third[1].score, eo.liveness.threshold);
  EXPECT_FLOAT_EQ(third[0].score, 0.125f);  // unchanged file: still from the cache
  // Other settings (another crop scale): the cache is not used.
  vision::EngineOptions other = eo;
  other.liveness.context_scale = 2.7f;
  EXPECT_NE(ScoreLiveness(files, {}, other, o)[0].score, 0.125f);
  // A corrupt cache is ignored, not an error.
  std::ofstream(o.cache, std::ios::trunc) << "{\"key\": 3";
  EXPECT_EQ(ScoreLiveness(files, {}, eo, o).size(), 3u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::eval
