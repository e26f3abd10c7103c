// The device service on a real archive database, without HTTP: enrolment codes used once,
// revocation, signed requests (clock, replay), sites and scope, queued commands
// (docs/device-protocol.md, R4.2.1.1).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "server/devices/device_service.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::testing::ReasonOf;
using nlohmann::json;

class DeviceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("device-service");
    clock_.Set(1'800'000'000'000);
    SetProcessClock(&clock_);
    db_ = OpenArchiveDb(dir_ / "archive.db");
    gallery_ = std::make_unique<GalleryLog>(crypto::DataKey::Generate(), "model-1");
    devices_ = std::make_unique<DeviceService>(DeviceDeps{db_.get(), gallery_.get(),
                                                          crypto::DataKey::Generate(), "server-pem",
                                                          "model-1", 3600 * 1000, nullptr});
  }
  void TearDown() override {
    devices_.reset();
    gallery_.reset();
    db_.reset();
    SetProcessClock(nullptr);
    fs::remove_all(dir_);
  }
  // A site row (places are another service's; the test only needs the id).
  int64_t AddSite(const std::string& name) {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "INSERT INTO sites(name, created_ms) VALUES(?, 0)");
    s.Bind(1, name).Run();
    return conn.LastInsertId();
  }
  DeviceRegistration Registration(const std::string& code) {
    DeviceRegistration r;
    r.enrolment_code = code;
    r.public_key_pem = key_.PublicPem();
    r.model_version = "model-1";
    r.doors = 2;
    return r;
  }
  std::string Signed(const std::string& id, const std::string& method, const std::string& target,
                     const std::string& body) {
    const auto h = protocol::SignRequest(key_, id, method, target, body, WallMs());
    return devices_->Authenticate(h, method, target, body);
  }
  // Signatures are checked against the wall clock (protocol/device_auth.h), not the test's.
  static int64_t WallMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<GalleryLog> gallery_;
  std::unique_ptr<DeviceService> devices_;
  crypto::Sm2Key key_ = crypto::Sm2Key::Generate();
};

TEST_F(DeviceServiceTest, EnrolmentCodeRegistersOnceAndGivesTheDataKey) {
  const NewDevice d = devices_->Create("gate", 1, "admin");
  EXPECT_EQ(devices_->Get(d.device_id)["status"], "pending");
  EXPECT_FALSE(devices_->Keys(d.device_id));

  // Codes are typed by people: lower case is the same code.
  std::string lower = d.enrolment_code;
  for (auto& c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
  const json reg = devices_->Register(Registration(lower));
  EXPECT_EQ(reg["device_id"], d.device_id);
  EXPECT_EQ(reg["server_public_key"], "server-pem");
  const auto keys = devices_->Keys(d.device_id);
  ASSERT_TRUE(keys);
  EXPECT_TRUE(keys->active);
  // The data key reaches the device encrypted to its own public key.
  const auto sent = key_.Decrypt(crypto::FromHex(reg["data_key"].get<std::string>()));
  EXPECT_EQ(crypto::ToHex(sent), crypto::ToHex(keys->data_key.bytes()));
  const json dev = devices_->Get(d.device_id);
  EXPECT_EQ(dev["status"], "active");
  EXPECT_EQ(dev["doors"], 2);  // the device's count when it has more doors

  // Used once.
  EXPECT_EQ(ReasonOf([&] { devices_->Register(Registration(d.enrolment_code)); }),
            "enrolment_code_invalid");
  // Expired.
  const NewDevice late = devices_->Create("door", 1, "admin");
  clock_.Advance(3600 * 1000 + 1);
  EXPECT_EQ(ReasonOf([&] { devices_->Register(Registration(late.enrolment_code)); }),
            "enrolment_code_invalid");
}

TEST_F(DeviceServiceTest, RegistrationRefusesAnotherModelAndANonSm2Key) {
  const NewDevice d = devices_->Create("gate", 1, "admin");
  auto r = Registration(d.enrolment_code);
  r.model_version = "model-2";
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Register(r); }), ErrorCode::kConflict);
  r = Registration(d.enrolment_code);
  r.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n";
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Register(r); }), ErrorCode::kInvalidArgument);
  // Neither refusal used the code up.
  EXPECT_EQ(devices_->Register(Registration(d.enrolment_code))["device_id"], d.device_id);
}

TEST_F(DeviceServiceTest, SignedRequestsAreCheckedAndRevocationEndsThem) {
  const NewDevice d = devices_->Create("gate", 1, "admin");
  devices_->Register(Registration(d.enrolment_code));
  EXPECT_EQ(Signed(d.device_id, "GET", "/api/v1/device/commands", ""), d.device_id);

  // A replayed request, a forged one, one from a clock ten minutes off.
  const auto h = protocol::SignRequest(key_, d.device_id, "GET", "/x", "", WallMs());
  devices_->Authenticate(h, "GET", "/x", "");
  EXPECT_EQ(ReasonOf([&] { devices_->Authenticate(h, "GET", "/x", ""); }), "replayed");
  const auto other = crypto::Sm2Key::Generate();
  const auto forged = protocol::SignRequest(other, d.device_id, "GET", "/x", "", WallMs());
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Authenticate(forged, "GET", "/x", ""); }),
            ErrorCode::kUnauthenticated);
  const auto skewed = protocol::SignRequest(key_, d.device_id, "GET", "/x", "", WallMs() - 600'000);
  EXPECT_EQ(ReasonOf([&] { devices_->Authenticate(skewed, "GET", "/x", ""); }), "clock_skew");

  devices_->Revoke(d.device_id, "admin");
  EXPECT_EQ(anju::testing::CodeOf([&] { Signed(d.device_id, "GET", "/y", ""); }),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->IssueCode(d.device_id, "admin"); }),
            ErrorCode::kConflict);
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Revoke("dev-none", "admin"); }),
            ErrorCode::kNotFound);
}

TEST_F(DeviceServiceTest, ScopedAccountsPlaceDevicesAtTheirSitesOnly) {
  const int64_t mine = AddSite("东区"), other = AddSite("西区");
  const Scope scoped{{mine}};
  // A scoped account must name a site; one outside its sites is not revealed; an unknown
  // one is a bad request.
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Create("g", 1, "op", std::nullopt, scoped); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Create("g", 1, "op", other, scoped); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(anju::testing::CodeOf([&] { devices_->Create("g", 1, "admin", 999); }),
            ErrorCode::kInvalidArgument);

  const NewDevice a = devices_->Create("东门", 1, "op", mine, scoped);
  const NewDevice b = devices_->Create("西门", 1, "admin", other);
  EXPECT_EQ(devices_->List({}, 50, 0)["total"], 2);
  const json page = devices_->List(scoped, 50, 0);
  ASSERT_EQ(page["total"], 1);
  EXPECT_EQ(page["items"][0]["device_id"], a.device_id);
  EXPECT_EQ(page["items"][0]["site_name"], "东区");

  // Not in scope: as if it did not exist. In scope: renamed, and it cannot lose its site.
  EXPECT_EQ(anju::testing::CodeOf([&] {
              devices_->Update(b.device_id, {{"name", "x"}}, "op", scoped);
            }),
            ErrorCode::kNotFound);
  EXPECT_EQ(devices_->Update(a.device_id, {{"name", "东大门"}}, "op", scoped)["name"], "东大门");
  EXPECT_EQ(anju::testing::CodeOf([&] {
              devices_->Update(a.device_id, {{"site_id", nullptr}}, "op", scoped);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(
      devices_->Update(b.device_id, {{"site_id", nullptr}}, "admin", {})["site_id"].is_null());
}

TEST_F(DeviceServiceTest, CommandsWaitUntilAcknowledged) {
  const NewDevice d = devices_->Create("gate", 1, "admin");
  devices_->Register(Registration(d.enrolment_code));
  EXPECT_EQ(anju::testing::CodeOf([&] {
              devices_->QueueCommand(d.device_id, {{"type", "notice"}}, "admin");
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(anju::testing::CodeOf([&] {
              devices_->QueueCommand("dev-none", {{"type", "sync"}}, "admin");
            }),
            ErrorCode::kNotFound);
  const json open = devices_->QueueCommand(d.device_id, {{"type", "open_door"}}, "admin");
  EXPECT_EQ(open["door"], 0);
  // Fields of other commands are dropped.
  const json sync = devices_->QueueCommand(d.device_id, {{"type", "sync"}, {"door", 3}}, "admin");
  EXPECT_FALSE(sync.contains("door"));

  const json pending = devices_->PendingCommands(d.device_id)["commands"];
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0]["id"], open["id"]);
  EXPECT_EQ(devices_->Get(d.device_id)["commands_pending"], 2);
  EXPECT_EQ(devices_->Acknowledge(d.device_id, {open["id"].get<std::string>(), "bogus"}), 1);
  EXPECT_EQ(devices_->Acknowledge(d.device_id, {open["id"].get<std::string>()}), 0);
  const json hb = devices_->Heartbeat(d.device_id, {{"software_version", "2.0"}});
  EXPECT_EQ(hb["commands_pending"], 1);
  EXPECT_EQ(devices_->Get(d.device_id)["software_version"], "2.0");
  const json all = devices_->Commands(d.device_id, 50, 0);
  EXPECT_EQ(all["total"], 2);
  EXPECT_FALSE(all["items"][1]["acked_ms"].is_null());  // newest first: open_door is second
}

}  // namespace
}  // namespace anju::server
