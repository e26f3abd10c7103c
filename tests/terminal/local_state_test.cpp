// LocalState: the terminal's data directory ("Local state and records";
// R3.1.2.6, R3.3.2.3): atomic batches, redo after a crash, removal visible at once.
#include "terminal/local_state.h"

#include <sys/stat.h>

#include <signal.h>
#include <sys/wait.h>

#include <random>
#include <thread>

#include "testing.h"

namespace anju::terminal {
namespace {

using anju::testing::CodeOf;
using anju::testing::RandomUnitFeature;
using anju::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kModel = "test-model/v1";

GalleryChange Upsert(const std::string& person, uint32_t seed, nlohmann::json rules = {}) {
  GalleryChange c;
  c.person = person;
  c.display_name = "张*" + person.substr(person.size() - 1);
  c.templates = {RandomUnitFeature(seed), RandomUnitFeature(seed + 1000)};
  c.rules = rules.is_null() ? nlohmann::json::object() : rules;
  return c;
}

GalleryChange Remove(const std::string& person) {
  GalleryChange c;
  c.op = GalleryChange::Op::kRemove;
  c.person = person;
  c.reason = "moved_out";
  return c;
}

float BestScore(const LocalState& s, uint32_t seed, std::string* person = nullptr) {
  const auto r = s.index().Search(RandomUnitFeature(seed), kModel, {2});
  if (r.empty()) return -1;
  if (person) *person = r[0].person;
  return r[0].score;
}

TEST(LocalState, BatchesPersistAndReloadIntoTheIndex) {
  const fs::path dir = TempDir("local-state");
  {
    auto s = LocalState::Open(dir, {kModel});
    EXPECT_EQ(s->gallery_version(), 0);
    s->ApplyBatch({Upsert("P001", 1, {{"doors", {0}}, {"open_ms", 8000}}), Upsert("P002", 2)}, 7);
    EXPECT_EQ(s->gallery_version(), 7);
    EXPECT_EQ(s->persons(), 2u);
    std::string who;
    EXPECT_GT(BestScore(*s, 1, &who), 0.99f);
    EXPECT_EQ(who, "P001");
    ASSERT_TRUE(s->Rules("P001"));
    EXPECT_EQ(s->Rules("P001")->open_ms, 8000);
    EXPECT_EQ(s->Rules("P001")->display_name, "张*1");
    EXPECT_FALSE(s->Rules("P999"));
  }
  // Keys and the gallery are private to the owner; no feature is stored in the clear.
  struct stat st {};
  ASSERT_EQ(::stat((dir / "keys/local-data.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  auto s = LocalState::Open(dir, {kModel});
  EXPECT_EQ(s->gallery_version(), 7);
  EXPECT_EQ(s->index().size(), 4u);
  EXPECT_EQ(s->Rules("P001")->doors, std::vector<int>{0});
  EXPECT_GT(BestScore(*s, 2), 0.99f);
  // Another model's terminal refuses this gallery.
  s.reset();
  EXPECT_EQ(CodeOf([&] { LocalState::Open(dir, {"other-model/v9"}); }),
            ErrorCode::kInvalidArgument);
  fs::remove_all(dir);
}

TEST(LocalState, RemovalTakesEffectInTheIndexImmediately) {
  const fs::path dir = TempDir("local-state");
  auto s = LocalState::Open(dir, {kModel});
  s->ApplyBatch({Upsert("P001", 1), Upsert("P002", 2)}, 2);
  const auto lookup = s->Lookup();
  ASSERT_TRUE(lookup("P001"));
  s->ApplyBatch({Remove("P001")}, 3);
  // The very next search and rules lookup no longer see the person.
  EXPECT_FALSE(s->index().Contains("P001"));
  EXPECT_FALSE(lookup("P001"));
  std::string who;
  BestScore(*s, 1, &who);
  EXPECT_NE(who, "P001");
  // An upsert replaces all templates of a person.
  GalleryChange again = Upsert("P002", 50);
  again.templates.resize(1);
  s->ApplyBatch({again}, 4);
  EXPECT_EQ(s->index().TemplatesOf("P002").size(), 1u);
  EXPECT_LT(BestScore(*s, 2), 0.5f);
  s.reset();
  s = LocalState::Open(dir, {kModel});
  EXPECT_FALSE(s->index().Contains("P001"));
  EXPECT_EQ(s->index().TemplatesOf("P002").size(), 1u);
  fs::remove_all(dir);
}

TEST(LocalState, BadBatchChangesNothing) {
  const fs::path dir = TempDir("local-state");
  auto s = LocalState::Open(dir, {kModel});
  s->ApplyBatch({Upsert("P001", 1)}, 1);
  GalleryChange bad_rules = Upsert("P002", 2, {{"open_ms", "long"}});
  EXPECT_EQ(CodeOf([&] {
              s->ApplyBatch({Remove("P001"), bad_rules}, 2);
            }),
            ErrorCode::kInvalidArgument);
  GalleryChange bad_code = Upsert("P 003", 3);
  EXPECT_EQ(CodeOf([&] { s->ApplyBatch({bad_code}, 2); }), ErrorCode::kInvalidArgument);
  GalleryChange bad_size = Upsert("P004", 4);
  bad_size.templates[0].resize(128);
  EXPECT_EQ(CodeOf([&] { s->ApplyBatch({bad_size}, 2); }), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s->index().Contains("P001"));
  EXPECT_TRUE(s->Rules("P001"));
  EXPECT_EQ(s->gallery_version(), 1);
  fs::remove_all(dir);
}

// kill -9 at arbitrary moments while batches are applied: whatever version was stored,
// the gallery and the rules are exactly that batch's state (the redo record finishes a
// batch that was cut off half-way at the next start).
TEST(LocalState, KillDuringBatchesLeavesAConsistentState) {
  const fs::path dir = TempDir("local-state");
  { LocalState::Open(dir, {kModel}); }
  for (int round = 0; round < 4; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto s = LocalState::Open(dir, {kModel});
      for (int64_t v = s->gallery_version() + 1;; ++v) {
        const std::string prev = "P" + std::to_string(v - 1);
        std::vector<GalleryChange> batch = {Upsert("P" + std::to_string(v), uint32_t(v))};
        if (v > 1) batch.push_back(Remove(prev));
        s->ApplyBatch(batch, v);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + 37 * round));
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    auto s = LocalState::Open(dir, {kModel});
    const int64_t v = s->gallery_version();
    ASSERT_GE(v, 1) << "round " << round;
    const std::string cur = "P" + std::to_string(v), prev = "P" + std::to_string(v - 1);
    EXPECT_EQ(s->index().TemplatesOf(cur).size(), 2u) << "version " << v;
    EXPECT_TRUE(s->Rules(cur)) << "version " << v;
    EXPECT_FALSE(s->index().Contains(prev)) << "version " << v;
    EXPECT_FALSE(s->Rules(prev)) << "version " << v;
    EXPECT_EQ(s->persons(), 1u) << "version " << v;
    std::printf("    round %d: killed at version %lld, consistent\n", round, (long long)v);
  }
  fs::remove_all(dir);
}

TEST(LocalState, IdentityIsStoredWithPrivateKeys) {
  const fs::path dir = TempDir("local-state");
  auto s = LocalState::Open(dir, {kModel});
  EXPECT_FALSE(s->registered());
  EXPECT_EQ(CodeOf([&] { s->LoadIdentity(); }), ErrorCode::kNotFound);
  const auto device = crypto::Sm2Key::Generate();
  const auto server = crypto::Sm2Key::Generate();
  const auto data = crypto::DataKey::Generate();
  s->SaveIdentity({"dev-9", "http://127.0.0.1:1", device, data, server.PublicOnly()});
  EXPECT_TRUE(s->registered());
  const auto id = s->LoadIdentity();
  EXPECT_EQ(id.device_id, "dev-9");
  EXPECT_EQ(id.server_url, "http://127.0.0.1:1");
  EXPECT_EQ(id.device_key.Fingerprint(), device.Fingerprint());
  EXPECT_TRUE(id.device_key.has_private());
  EXPECT_EQ(id.data_key.id(), data.id());
  EXPECT_EQ(id.server_public_key.Fingerprint(), server.Fingerprint());
  struct stat st {};
  ASSERT_EQ(::stat((dir / "keys/device.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 077, 0u);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::terminal
