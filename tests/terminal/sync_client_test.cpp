// SyncClient against a real HTTP peer speaking the device protocol ("Gallery sync
// client": versioned changes applied atomically, catch-up after being offline, a remove
// taking effect at once; commands; heartbeat).
#include "terminal/sync_client.h"

#include <random>
#include <thread>

#include "door/logging_controller.h"
#include "fake_device_server.h"
#include "protocol/api_error.h"
#include "testing.h"

namespace anju::terminal {
namespace {

using anju::testing::FakeDeviceServer;
using anju::testing::RandomUnitFeature;
using anju::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kModel = "test-model/v1";

// Waits up to 5 s for COND.
template <class F>
bool Eventually(F cond) {
  for (int i = 0; i < 500 && !cond(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return cond();
}

std::string Person(int i) {
  return "P" + std::to_string(1000 + i);
}

struct Rig {
  fs::path dir = TempDir("sync");
  FakeDeviceServer server{kModel};
  FakeDeviceServer::Device device = server.AddDevice();
  std::unique_ptr<LocalState> state = LocalState::Open(dir, {kModel});
  protocol::DeviceClient client{
      server.url(), device.id, device.key, server.server_key().PublicOnly(),
      protocol::ClientOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(2000), ""}};
  door::LoggingDoorController door{1};
  NoticeBoard notices;
  CommandRunner runner{door, notices};
  std::unique_ptr<SyncClient> sync;
  explicit Rig(SyncOptions options = {}) { Make(options); }
  void Make(SyncOptions options) {
    options.page_limit = options.page_limit == 200 ? 2 : options.page_limit;
    sync = std::make_unique<SyncClient>(*state, client, device.data_key, runner, options, [] {
      return nlohmann::json{{"outbox_count", 3}};
    });
  }
  ~Rig() {
    sync.reset();
    state.reset();
    fs::remove_all(dir);
  }
};

TEST(SyncClient, AppliesPagesAndResumesFromTheStoredVersionAfterAnInterruption) {
  Rig rig;
  for (int i = 0; i < 5; ++i)
    rig.server.Upsert(Person(i), "李*" + std::to_string(i),
                      {RandomUnitFeature(i), RandomUnitFeature(100 + i)}, {{"open_ms", 4000 + i}});
  // The server fails after the first page (2 changes): that page stays applied.
  rig.server.FailGalleryAfter(1);
  try {
    rig.sync->SyncGallery();
    FAIL() << "the failing page was not reported";
  } catch (const protocol::ApiError& e) {
    EXPECT_EQ(e.status(), 503);
  }
  EXPECT_EQ(rig.state->gallery_version(), 2);
  EXPECT_TRUE(rig.state->index().Contains(Person(1)));
  EXPECT_FALSE(rig.state->index().Contains(Person(2)));
  // A restart in between: the local state is reopened and the sync resumes at version 2.
  rig.sync.reset();
  rig.state.reset();
  rig.state = LocalState::Open(rig.dir, {kModel});
  rig.Make({});
  rig.server.FailGalleryAfter(-1);
  EXPECT_EQ(rig.sync->SyncGallery(), 3u);
  EXPECT_EQ(rig.state->gallery_version(), 5);
  EXPECT_EQ(rig.state->persons(), 5u);
  EXPECT_EQ(rig.state->Rules(Person(4))->open_ms, 4004);
  EXPECT_EQ(rig.state->Rules(Person(4))->display_name, "李*4");
  EXPECT_EQ(rig.server.last_since(), 4);  // pages: since 2, since 4; nothing more
  const auto hit = rig.state->index().Search(RandomUnitFeature(103), kModel, {1});
  ASSERT_FALSE(hit.empty());
  EXPECT_EQ(hit[0].person, Person(3));
  EXPECT_GT(hit[0].score, 0.99f);

  // Removal and a changed person arrive together; the removal applies at once.
  rig.server.Remove(Person(0));
  rig.server.Upsert(Person(1), "李*1", {RandomUnitFeature(7)}, {{"doors", {0}}});
  EXPECT_EQ(rig.sync->SyncGallery(), 2u);
  EXPECT_FALSE(rig.state->index().Contains(Person(0)));
  EXPECT_FALSE(rig.state->Rules(Person(0)));
  EXPECT_EQ(rig.state->index().TemplatesOf(Person(1)).size(), 1u);
  EXPECT_EQ(rig.state->gallery_version(), 7);
  EXPECT_EQ(rig.sync->SyncGallery(), 0u);  // up to date
}

// A server restored from an older backup answers since=0: the terminal replaces its
// gallery with the whole one received (docs/device-protocol.md, "Gallery sync").
TEST(SyncClient, ServerBehindTheTerminalResyncsTheWholeGallery) {
  Rig rig;
  for (int i = 0; i < 5; ++i) rig.server.Upsert(Person(i), "", {RandomUnitFeature(i)});
  rig.sync->SyncGallery();
  ASSERT_EQ(rig.state->gallery_version(), 5);
  rig.server.ResetLog();
  rig.server.Upsert(Person(1), "", {RandomUnitFeature(51)});
  rig.server.Upsert(Person(7), "", {RandomUnitFeature(7)});
  rig.server.Upsert(Person(8), "", {RandomUnitFeature(8)});
  EXPECT_EQ(rig.sync->SyncGallery(), 3u);  // two pages of 2 + 1, applied as one batch
  EXPECT_EQ(rig.state->gallery_version(), 3);
  EXPECT_EQ(rig.state->persons(), 3u);
  EXPECT_FALSE(rig.state->index().Contains(Person(0)));
  EXPECT_TRUE(rig.state->index().Contains(Person(7)));
  EXPECT_EQ(rig.state->index().Search(RandomUnitFeature(51), kModel, {1})[0].person, Person(1));
  EXPECT_EQ(rig.sync->SyncGallery(), 0u);
}

TEST(SyncClient, FeaturesOfAnotherDeviceKeyAreRefusedAndNothingIsApplied) {
  Rig rig;
  rig.server.Upsert(Person(0), "", {RandomUnitFeature(0)});
  protocol::DeviceClient client(rig.server.url(), rig.device.id, rig.device.key,
                                rig.server.server_key().PublicOnly());
  SyncClient wrong_key(*rig.state, client, crypto::DataKey::Generate(), rig.runner);
  EXPECT_EQ(anju::testing::CodeOf([&] { wrong_key.SyncGallery(); }), ErrorCode::kCrypto);
  EXPECT_EQ(rig.state->gallery_version(), 0);
  EXPECT_EQ(rig.state->persons(), 0u);
}

TEST(SyncClient, RunsAndAcknowledgesCommandsAndSendsHeartbeats) {
  SyncOptions options;
  options.poll_interval = std::chrono::milliseconds(100);
  Rig rig(options);
  rig.server.QueueCommand(
      {{"id", "c-1"}, {"type", "open_door"}, {"door", 0}, {"duration_ms", 3000}});
  rig.server.QueueCommand({{"id", "c-2"},
                           {"type", "notice"},
                           {"text_zh", "明天停水"},
                           {"text_en", "No water tomorrow"},
                           {"until_ms", protocol::NowMs() + 60'000}});
  rig.server.QueueCommand({{"id", "c-3"}, {"type", "reboot_into_space"}});
  rig.server.Upsert(Person(0), "", {RandomUnitFeature(0)});
  rig.sync->Start();
  for (int i = 0; i < 100 && rig.server.acked_commands().size() < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rig.server.acked_commands(), (std::vector<std::string>{"c-1", "c-2", "c-3"}));
  EXPECT_EQ(rig.server.pending_commands(), 0u);
  EXPECT_TRUE(rig.door.released(0));
  const auto notices = rig.notices.Active(protocol::NowMs());
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].text_zh, "明天停水");
  EXPECT_EQ(rig.runner.failed(), 1u);  // the unknown type: acknowledged, not run
  EXPECT_TRUE(rig.state->index().Contains(Person(0)));
  ASSERT_TRUE(Eventually([&] { return rig.server.heartbeats() >= 1; }));
  const auto hb = rig.server.last_heartbeat();
  EXPECT_EQ(hb.value("outbox_count", -1), 3);
  EXPECT_EQ(hb.value("gallery_version", -1), 1);  // sent in the first round, after the sync
  EXPECT_TRUE(Eventually([&] { return rig.sync->stats().link == LinkState::kOnline; }));
  // A change reaches the terminal within the poll interval (R: within 5 s).
  const auto t0 = std::chrono::steady_clock::now();
  rig.server.Remove(Person(0));
  while (rig.state->index().Contains(Person(0)) &&
         std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(rig.state->index().Contains(Person(0)));
  rig.sync->Stop();
}

TEST(SyncClient, BacksOffWhileOfflineAndCatchesUpOnReconnect) {
  SyncOptions options;
  options.poll_interval = std::chrono::milliseconds(100);
  options.backoff_initial = std::chrono::milliseconds(100);
  options.backoff_max = std::chrono::milliseconds(400);
  Rig rig(options);
  rig.server.Stop();
  rig.sync->Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  const auto offline = rig.sync->stats();
  EXPECT_EQ(offline.link, LinkState::kOffline);
  EXPECT_GE(offline.failures, 2u);
  EXPECT_LE(offline.failures, 6u);  // backed off, not hammering
  for (int i = 0; i < 4; ++i) rig.server.Upsert(Person(i), "", {RandomUnitFeature(i)});
  rig.server.Start();
  for (int i = 0; i < 100 && rig.state->gallery_version() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(rig.state->gallery_version(), 4);
  EXPECT_EQ(rig.state->persons(), 4u);
  EXPECT_TRUE(Eventually([&] { return rig.sync->stats().link == LinkState::kOnline; }));
  rig.sync->Stop();
}

}  // namespace
}  // namespace anju::terminal
