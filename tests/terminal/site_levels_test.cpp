// The site's levels from the server (docs/device-protocol.md, gallery "thresholds";
// terminal/site_levels.h): laid over the terminal's own file, only ever stricter, refused when
// malformed or made for another model, handed to the sync client's callback with every answer.
#include "terminal/site_levels.h"

#include "door/logging_controller.h"
#include "fake_device_server.h"
#include "terminal/sync_client.h"
#include "testing.h"

namespace anju::terminal {
namespace {

using anju::testing::FakeDeviceServer;
using anju::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kModel = "test-model/v1";

match::Thresholds FileLevels() {
  match::Thresholds t;
  t.model_version = kModel;
  t.at(match::SecurityLevel::kHigh) = {0.68f, 0.06f, 1e-6};
  t.at(match::SecurityLevel::kNormal) = {0.60f, 0.04f, 1e-5};
  t.at(match::SecurityLevel::kLow) = {0.53f, 0.03f, 1e-4};
  return t;
}

json SiteLevels(float high, float normal, float low) {
  return {{"model_version", kModel},
          {"created", "2026-12-06T12:00:00Z"},
          {"levels",
           {{"high", {{"threshold", high}, {"margin", 0.06}}},
            {"normal", {{"threshold", normal}, {"margin", 0.04}}},
            {"low", {{"threshold", low}, {"margin", 0.03}}}}}};
}

TEST(SiteLevels, StricterLevelsAreTakenLooserOnesNever) {
  const auto m = MergeSiteLevels(FileLevels(), SiteLevels(0.70f, 0.66f, 0.50f));
  EXPECT_FLOAT_EQ(m.at(match::SecurityLevel::kHigh).threshold, 0.70f);
  EXPECT_FLOAT_EQ(m.at(match::SecurityLevel::kNormal).threshold, 0.66f);
  EXPECT_FLOAT_EQ(m.at(match::SecurityLevel::kLow).threshold, 0.53f);  // the file's: stricter
  EXPECT_EQ(m.created, "2026-12-06T12:00:00Z");
  EXPECT_EQ(m.fusion, FileLevels().fusion);
}

TEST(SiteLevels, MalformedOrOtherModelIsRefused) {
  json other = SiteLevels(0.7f, 0.7f, 0.7f);
  other["model_version"] = "another/v2";
  EXPECT_THROW(MergeSiteLevels(FileLevels(), other), Error);
  json broken = SiteLevels(0.7f, 0.7f, 0.7f);
  broken["levels"]["normal"]["threshold"] = "high";
  EXPECT_THROW(MergeSiteLevels(FileLevels(), broken), Error);
  json wild = SiteLevels(0.7f, 0.7f, 0.7f);
  wild["levels"]["low"]["threshold"] = 7.0;
  EXPECT_THROW(MergeSiteLevels(FileLevels(), wild), Error);
  EXPECT_THROW(MergeSiteLevels(FileLevels(), json::array()), Error);
}

TEST(SiteLevels, SyncClientHandsEveryAnswersLevelsToTheTerminal) {
  const fs::path dir = TempDir("site-levels");
  FakeDeviceServer server{kModel};
  auto device = server.AddDevice();
  auto state = LocalState::Open(dir, {kModel});
  protocol::DeviceClient client{
      server.url(), device.id, device.key, server.server_key().PublicOnly(),
      protocol::ClientOptions{std::chrono::milliseconds(500), std::chrono::milliseconds(2000), ""}};
  door::LoggingDoorController door{1};
  NoticeBoard notices;
  CommandRunner runner{door, notices};
  std::vector<json> seen;
  SyncOptions so;
  so.thresholds = [&](const json& t) { seen.push_back(t); };
  SyncClient sync(*state, client, device.data_key, runner, so);
  sync.SyncGallery();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].is_null());  // none sent: the file's levels stay
  server.SetThresholds(SiteLevels(0.7f, 0.65f, 0.6f));
  sync.SyncGallery();  // nothing changed in the gallery: the levels still arrive
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1], SiteLevels(0.7f, 0.65f, 0.6f));
  // A callback that refuses them (throws) does not stop the gallery sync.
  SyncOptions refusing;
  refusing.thresholds = [](const json&) { throw Error(ErrorCode::kInvalidArgument, "no"); };
  SyncClient sync2(*state, client, device.data_key, runner, refusing);
  server.Upsert("P1", "李*", {anju::testing::RandomUnitFeature(1)}, json::object());
  EXPECT_EQ(sync2.SyncGallery(), 1u);
  EXPECT_TRUE(state->index().Contains("P1"));
  state.reset();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::terminal
