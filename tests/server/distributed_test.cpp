// The distributed mode (docs/distributed.md; R3.1.4.3, R3.1.4.4, R3.3.2.5): two API servers
// and a recognition worker share one PostgreSQL 15 (ServerOptions::database: the archive,
// events and captures as three schemas), one nats-server -js (ServerOptions::bus) and one
// blob directory — all started here on free loopback ports. What one server does holds on
// the others: enrolments and deletions reach every process's feature index, a capture
// posted to one server is recognised by the worker and seen live on the other, login
// failures add up across servers, a device revoked on one is refused by the other, and a
// device request's nonce is good on one server only.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/keyfile.h"
#include "db/local_postgres.h"
#include "db/postgres.h"
#include "protocol/device_auth.h"
#include "protocol/viid.h"
#include "server/backup/backup.h"
#include "server/runtime/local_nats.h"
#include "server/storage/postgres_blob_store.h"
#include "server_test_support.h"
#include "testing.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using nlohmann::json;
using namespace std::chrono_literals;

class DistributedTest : public ServerTest {
 protected:
  void SetUp() override {
    if (auto why = db::LocalPostgres::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    try {
      nats_ = std::make_unique<runtime::LocalNatsServer>();
      pg_ = std::make_unique<db::LocalPostgres>();
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    database_ = pg_->CreateDatabase();
    ServerTest::SetUp();  // server A (server_): an API server
  }
  void TearDown() override {
    peers_.clear();
    ServerTest::TearDown();
    pg_.reset();
    nats_.reset();
  }
  void Configure(ServerOptions& o) override {
    o.bus = nats_->url();
    o.bus_prefix = "anjudist";
    o.database = database_;
    o.blobs_dir = dir_.string() + "-blobs";
    o.role = ServerRole::kApi;
  }

  // Another process of the installation on its own data directory with A's key files (as
  // an operator copies them to every machine).
  Server& StartPeer(const std::string& name, ServerRole role, bool wait_for_bus = false) {
    const fs::path dir = dir_.string() + "-" + name;
    fs::create_directories(dir);
    for (const char* f : {"master.key", "data.key", "events.key", "audit.key", "server_sm2.pem",
                          "backup.key", "admin.token"})
      if (fs::exists(dir_ / f))
        fs::copy_file(dir_ / f, dir / f, fs::copy_options::overwrite_existing);
    ServerOptions o;
    o.data_dir = dir;
    o.port = 0;
    o.retention_interval_s = 0;
    Configure(o);
    o.role = role;
    o.wait_for_bus = wait_for_bus;
    peers_.push_back(std::make_unique<Server>(o));
    peers_.back()->Start();
    return *peers_.back();
  }

  // Runs FN with server_ pointing at PEER (the helpers of ServerTest talk to server_).
  void On(size_t peer, const std::function<void()>& fn) {
    std::swap(server_, peers_.at(peer));
    try {
      fn();
    } catch (...) {
      std::swap(server_, peers_.at(peer));
      throw;
    }
    std::swap(server_, peers_.at(peer));
  }

  // Waits until every server's index holds PERSONS persons and TEMPLATES templates.
  void WaitIndexes(int64_t persons, int64_t templates) {
    std::vector<Server*> all = {server_.get()};
    for (auto& p : peers_) all.push_back(p.get());
    for (int i = 0; i < 300; ++i) {
      bool same = true;
      for (Server* s : all) {
        const json st = s->IndexStatus();
        same = same && st["persons"] == persons && st["templates"] == templates;
      }
      if (same) {
        // Every process searches the same int8 index (ServerOptions::index_precision).
        for (Server* s : all) EXPECT_EQ(s->IndexStatus()["precision"], "int8");
        return;
      }
      std::this_thread::sleep_for(100ms);
    }
    for (Server* s : all)
      ADD_FAILURE() << "index " << s->data_dir().filename() << ": " << s->IndexStatus()
                    << ", expected " << persons << " persons, " << templates << " templates";
  }

  std::unique_ptr<runtime::LocalNatsServer> nats_;
  std::unique_ptr<db::LocalPostgres> pg_;
  std::string database_;
  std::vector<std::unique_ptr<Server>> peers_;
};

TEST_F(DistributedTest, RolesNeedASharedBus) {
  ServerOptions o;
  o.data_dir = dir_ / "alone";
  o.port = 0;
  o.role = ServerRole::kWorker;
  try {
    Server s(o);
    FAIL() << "a worker without a bus was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("bus"), std::string::npos) << e.what();
  }
  o.role = ServerRole::kAll;
  o.database = "mysql://db/anju";
  try {
    Server s(o);
    FAIL() << "a mysql:// database was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("postgresql://"), std::string::npos) << e.what();
  }
}

TEST_F(DistributedTest, EnrolmentsAndDeletionsOnTwoServersReachEveryIndex) {
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  StartPeer("b", ServerRole::kApi);
  StartPeer("w", ServerRole::kWorker);
  // Two API servers enrol at the same time, 12 persons each, one feature code per person.
  constexpr int kEach = 12;
  auto enrol = [&](const std::string& prefix, uint32_t seed0) {
    for (int i = 0; i < kEach; ++i) {
      const std::string code = prefix + std::to_string(i);
      CreatePerson(code, "住户" + code);
      GiveConsent(code);
      ImportFeature(code, seed0 + uint32_t(i));
    }
  };
  // server_ is A in this thread; B's calls go through a client of its own.
  std::unique_ptr<httplib::Client> client;
  On(0, [&] { client = Client(); });
  const httplib::Headers h = {{"Authorization", "Bearer " + server_->admin_token()}};
  std::thread on_b([&] {
    for (int i = 0; i < kEach; ++i) {
      const std::string code = "B" + std::to_string(i);
      auto r = client->Post("/api/v1/persons", h, json{{"code", code}, {"name", "住户"}}.dump(),
                            "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
      r = client->Post(
          "/api/v1/persons/" + code + "/consents", h,
          json{{"notice_version", "2026-01"}, {"purpose", "门禁通行 / building access"}}.dump(),
          "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
      r = client->Post("/api/v1/persons/" + code + "/features", h,
                       json{{"feature", FeatureBase64(RandomFeature(5000 + uint32_t(i)))},
                            {"model_version", server_->model_version()}}
                           .dump(),
                       "application/json");
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 201) << r->body;
    }
  });
  enrol("A", 1000);
  on_b.join();
  WaitIndexes(2 * kEach, 2 * kEach);

  // B's duplicate check sees a face enrolled through A (its index, not just the database).
  CreatePerson("DUP", "重复");
  GiveConsent("DUP");
  On(0, [&] {
    const auto r = Api("POST", "/api/v1/persons/DUP/features",
                       {{"feature", FeatureBase64(RandomFeature(1003))},
                        {"model_version", server_->model_version()}});
    EXPECT_EQ(r.status, 409) << r.body;
    EXPECT_EQ(r.body["error"]["candidates"][0]["person"], "A3") << r.body;
  });

  // Deletions on both servers (consent withdrawn: the feature codes go).
  ASSERT_EQ(Api("POST", "/api/v1/persons/B1/consents/withdraw", json::object()).status, 200);
  On(0, [&] {
    ASSERT_EQ(Api("POST", "/api/v1/persons/A3/consents/withdraw", json::object()).status, 200);
  });
  WaitIndexes(2 * kEach - 2, 2 * kEach - 2);
  // A3's face is free again on A, whose index learnt of B's deletion.
  const auto r = Api("POST", "/api/v1/persons/DUP/features",
                     {{"feature", FeatureBase64(RandomFeature(1003))},
                      {"model_version", server_->model_version()}});
  EXPECT_EQ(r.status, 201) << r.body;
  WaitIndexes(2 * kEach - 1, 2 * kEach - 1);
  // Every process comes to the same place in the log.
  std::vector<json> applied;
  for (int i = 0; i < 100; ++i) {
    applied = {server_->IndexStatus()["log_applied"]};
    for (auto& p : peers_) applied.push_back(p->IndexStatus()["log_applied"]);
    if (std::all_of(applied.begin(), applied.end(), [&](const json& a) { return a == applied[0]; }))
      break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(applied[0].get<int64_t>(), 0);
  for (const auto& a : applied) EXPECT_EQ(a, applied[0]);
}

TEST_F(DistributedTest, ACapturePostedToOneServerIsRecognisedByTheWorkerAndSeenOnTheOther) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  StartPeer("b", ServerRole::kApi);
  // Enrolled through A from one of the first five photos (as viid_server_test.cpp: the
  // sixth is the probe). One person before the worker starts (it loads them), the one
  // probed after (it reaches the worker through the feature log).
  auto enrol = [&](const std::string& person, const std::string& code) {
    CreatePerson(code, person);
    GiveConsent(code);
    const auto photos = PhotosOf(lfw, person);
    for (size_t n = 0; n < 5 && n < photos.size(); ++n)
      if (Api("POST", "/api/v1/persons/" + code + "/photos", ImageBody(ReadFile(photos[n])))
              .status == 201)
        return true;
    ADD_FAILURE() << "could not enrol " << person;
    return false;
  };
  ASSERT_TRUE(enrol("Tony_Blair", "T-BLAIR"));
  StartPeer("w", ServerRole::kWorker);
  ASSERT_TRUE(enrol("Colin_Powell", "T-POWELL"));
  WaitIndexes(2, 2);
  const auto powell = PhotosOf(lfw, "Colin_Powell");
  const auto bush = PhotosOf(lfw, "George_W_Bush");
  ASSERT_GE(powell.size(), 6u);
  ASSERT_FALSE(bush.empty());
  Camera cam{"31000000001190000077", "camera-pass-77", {}, false, 0};
  ASSERT_EQ(
      Api("POST", "/api/v1/viid/devices", {{"id", cam.id}, {"password", cam.password}}).status,
      201);
  auto r = CameraSend(cam, viid::kPathRegister,
                      viid::MakeSystemObject(viid::SystemObject::kRegister, cam.id).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  viid::FaceList list;
  for (const auto& [id, path] :
       {std::pair<std::string, fs::path>{"F-POWELL", powell[5]}, {"F-BUSH", bush[0]}}) {
    viid::FaceObject f;
    f.face_id = id;
    f.device_id = cam.id;
    f.face_appear_time = viid::FormatTime(NowMs());
    viid::SubImageInfo img;
    img.type = viid::kImageTypeFace;
    const std::string bytes = ReadFile(path);
    img.data.assign(bytes.begin(), bytes.end());
    f.images.push_back(img);
    list.faces.push_back(f);
  }
  r = CameraSend(cam, viid::kPathFaces, viid::ToJson(list).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;

  // A has no recognition threads: the worker finishes both; B lists them.
  json caps;
  On(0, [&] {
    for (int i = 0; i < 600; ++i) {
      caps = Api("GET", "/api/v1/captures").body;
      bool done = caps["total"] == 2;
      for (const auto& c : caps["items"]) done = done && c["state"] != "queued";
      if (done) break;
      std::this_thread::sleep_for(100ms);
    }
  });
  ASSERT_EQ(caps["total"], 2) << caps;
  std::map<std::string, json> by_face;
  for (const auto& c : caps["items"]) by_face[c["face_id"]] = c;
  EXPECT_EQ(by_face["F-POWELL"]["outcome"], "accept") << by_face["F-POWELL"];
  EXPECT_EQ(by_face["F-POWELL"]["person"], "T-POWELL");
  EXPECT_EQ(by_face["F-BUSH"]["outcome"], "stranger") << by_face["F-BUSH"];
  // A console on B sees them live: the stream is the shared one.
  On(0, [&] {
    std::string body;
    for (int i = 0; i < 50; ++i) {
      auto sse = Raw("GET", "/api/v1/events/stream?after=0&wait_s=1", "", AdminHeaders());
      ASSERT_TRUE(sse);
      ASSERT_EQ(sse->status, 200) << sse->body;
      body = sse->body;
      if (body.find("F-POWELL") != std::string::npos && body.find("F-BUSH") != std::string::npos)
        break;
    }
    EXPECT_NE(body.find("F-POWELL"), std::string::npos) << body;
    EXPECT_NE(body.find("F-BUSH"), std::string::npos) << body;
  });
}

// R3.4.2.1: a worker started while nats-server is away waits for it (as anju-server does:
// ServerOptions::wait_for_bus) instead of failing, and once the server is there takes the
// captures an API server queues. Without models the worker still finishes them
// (`unrecognised`); API server A has no recognition threads, so only the worker can.
TEST_F(DistributedTest, AWorkerStartedWhileTheBusIsAwayWaitsForItThenRecognises) {
  nats_->Stop();
  std::thread starter([&] {
    std::this_thread::sleep_for(2s);
    nats_->Start();
  });
  const auto t0 = std::chrono::steady_clock::now();
  try {
    StartPeer("w", ServerRole::kWorker, /*wait_for_bus=*/true);
  } catch (const Error& e) {
    ADD_FAILURE() << "the worker did not wait: " << e.what();
  }
  starter.join();
  ASSERT_EQ(peers_.size(), 1u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1900ms) << "started before the bus was there";

  Camera cam{"31000000001190000078", "camera-pass-78", {}, false, 0};
  ASSERT_EQ(
      Api("POST", "/api/v1/viid/devices", {{"id", cam.id}, {"password", cam.password}}).status,
      201);
  auto r = CameraSend(cam, viid::kPathRegister,
                      viid::MakeSystemObject(viid::SystemObject::kRegister, cam.id).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  viid::FaceList list;
  viid::FaceObject f;
  f.face_id = "F-AFTER-WAIT";
  f.device_id = cam.id;
  f.face_appear_time = viid::FormatTime(NowMs());
  viid::SubImageInfo img;
  img.type = viid::kImageTypeFace;
  std::vector<uchar> grey;  // no face in it: finished as no_face (or unrecognised)
  cv::imencode(".jpg", cv::Mat(200, 200, CV_8UC3, cv::Scalar::all(128)), grey);
  img.data.assign(grey.begin(), grey.end());
  f.images.push_back(img);
  list.faces.push_back(f);
  r = CameraSend(cam, viid::kPathFaces, viid::ToJson(list).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json caps;
  for (int i = 0; i < 600; ++i) {
    caps = Api("GET", "/api/v1/captures").body;
    if (caps["total"] == 1 && caps["items"][0]["state"] != "queued") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(caps["total"], 1) << caps;
  EXPECT_NE(caps["items"][0]["state"], "queued") << caps;
}

TEST_F(DistributedTest, LockoutsRevocationsAndNoncesHoldOnEveryServer) {
  StartPeer("b", ServerRole::kApi);
  // Four wrong passwords on A and one on B lock the account (5 allowed per account).
  UserWithRoles("wang", {"operator"});
  const std::string pw = passwords_["wang"];
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(Login("wang", "Wrong-pass-" + std::to_string(i)).status, 401);
  On(0, [&] { EXPECT_EQ(Login("wang", "Wrong-pass-4").status, 401); });
  EXPECT_EQ(Login("wang", pw).status, 423);

  // A device registered through A works on B; revoked on A, B refuses it at once.
  TestDevice dev = RegisterDevice("gate-1");
  std::unique_ptr<protocol::DeviceClient> on_b;
  On(0, [&] {
    on_b = std::make_unique<protocol::DeviceClient>(server_->url(), dev.id, dev.key,
                                                    dev.reg->server_public_key, ClientOpts());
  });
  EXPECT_EQ(on_b->Call("GET", "/api/v1/device/commands").status, 200);  // B caches its key

  // One signed request, sent to A and then replayed to B: B refuses the nonce.
  const std::string target = "/api/v1/device/commands";
  const auto h = protocol::SignRequest(dev.key, dev.id, "GET", target, "");
  httplib::Headers headers = {{protocol::kHeaderDevice, h.device},
                              {protocol::kHeaderTime, h.time},
                              {protocol::kHeaderNonce, h.nonce},
                              {protocol::kHeaderSignature, h.signature}};
  auto first = Raw("GET", target, "", headers);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 200) << first->body;
  On(0, [&] {
    auto replay = Raw("GET", target, "", headers);
    ASSERT_TRUE(replay);
    EXPECT_EQ(replay->status, 401) << replay->body;
    EXPECT_NE(replay->body.find("replayed"), std::string::npos) << replay->body;
  });

  ASSERT_EQ(Api("POST", "/api/v1/devices/" + dev.id + "/revoke").status, 200);
  int status = 0;
  for (int i = 0; i < 50 && status != 401; ++i) {
    status = on_b->Call("GET", "/api/v1/device/commands").status;
    if (status != 401) std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 401) << "B still admits a device revoked on A";
}

TEST_F(DistributedTest, ABackupHoldsADumpOfEachDatabaseThatRestoresIntoAnotherPostgres) {
  CreatePerson("BK1", "备份");
  GiveConsent("BK1");
  const fs::path archive = fs::path(dir_.string() + "-backups") / "cluster.anjubak";
  const auto made = SysApi("POST", "/api/v1/admin/backup", {{"file", archive.string()}});
  ASSERT_EQ(made.status, 201) << made.body;
  std::vector<std::string> dumps;
  for (const auto& e : made.body["entries"])
    if (e["kind"] == "pgdump") dumps.push_back(e["path"]);
  std::sort(dumps.begin(), dumps.end());
  EXPECT_EQ(dumps, (std::vector<std::string>{"postgres/archive.dump", "postgres/captures.dump",
                                             "postgres/events.dump"}));
  // Restored: the key files and the dumps into a directory, the dumps into a fresh database;
  // a server on both finds the person.
  const fs::path restored = dir_.string() + "-restored";
  RestoreBackup(archive, restored, crypto::LoadRawKeyFile(dir_ / "backup.key"));
  const std::string copy_db = pg_->CreateDatabase();
  for (const auto& d : dumps) db::RestorePostgresDump(copy_db, restored / d);
  ServerOptions o;
  o.data_dir = restored;
  o.port = 0;
  o.retention_interval_s = 0;
  o.tls = false;
  o.database = copy_db;
  Server copy(o);
  copy.Start();
  httplib::Client c(copy.url());
  auto res = c.Get("/api/v1/persons/BK1", {{"Authorization", "Bearer " + copy.admin_token()}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  copy.Stop();
  std::error_code ec;
  fs::remove_all(restored, ec);
}

// Blobs in the database (--blobs database, R3.3.2.5): no shared path at all. A snapshot
// uploaded through A is read through B; a backup holds the blobs' schema as a dump, and a
// server on the restored database shows the snapshot again.
class DatabaseBlobsTest : public DistributedTest {
 protected:
  void Configure(ServerOptions& o) override {
    DistributedTest::Configure(o);
    o.blobs_dir = kBlobsInDatabase;
  }
};

TEST_F(DatabaseBlobsTest, ASnapshotStoredThroughOneServerIsReadThroughAnotherAndRestored) {
  StartPeer("b", ServerRole::kApi);
  cv::Mat m(120, 160, CV_8UC3, cv::Scalar(90, 120, 160));
  cv::circle(m, {80, 60}, 40, cv::Scalar(180, 190, 220), -1);
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", m, jpeg);
  auto dev = RegisterDevice("1号楼门");
  const std::string event_id = "7a1d2c3b-4a59-4e8d-9c7b-2a1f0e3d4c5b";
  const int64_t now = NowMs();
  const json events = {
      {"events",
       json::array({{{"id", event_id},
                     {"kind", "access"},
                     {"created_ms", now},
                     {"payload", {{"time_ms", now}, {"door", 0}, {"decision", "stranger"}}},
                     {"snapshot", crypto::ToBase64(jpeg)}}})}};
  const auto up = dev.client->CallJson("POST", "/api/v1/device/events", &events);
  ASSERT_EQ(up["stored"].size(), 1u) << up;
  const std::string path = "/api/v1/events/" + event_id + "/snapshot";
  On(0, [&] {
    auto snap = Raw("GET", path, "", AdminHeaders());
    ASSERT_TRUE(snap);
    ASSERT_EQ(snap->status, 200) << snap->body;
    EXPECT_EQ(snap->body, std::string(jpeg.begin(), jpeg.end()));
  });
  // Nowhere on disk: neither data directory holds a snapshot, and no blob directory exists.
  for (const fs::path& d : {dir_, fs::path(dir_.string() + "-b")})
    EXPECT_FALSE(fs::exists(d / "snapshots")) << d;
  EXPECT_FALSE(fs::exists(dir_.string() + "-blobs"));
  {
    auto store = storage::OpenPostgresBlobStore(database_);
    int n = 0;
    store->List("snapshots", [&](const std::string&) { return ++n, true; });
    EXPECT_EQ(n, 1);
  }

  const fs::path archive = fs::path(dir_.string() + "-backups") / "blobs.anjubak";
  const auto made = SysApi("POST", "/api/v1/admin/backup", {{"file", archive.string()}});
  ASSERT_EQ(made.status, 201) << made.body;
  std::vector<std::string> dumps;
  for (const auto& e : made.body["entries"]) {
    if (e["kind"] == "pgdump") dumps.push_back(e["path"]);
    EXPECT_FALSE(e["path"].get<std::string>().starts_with("snapshots/")) << e;
  }
  std::sort(dumps.begin(), dumps.end());
  EXPECT_EQ(dumps, (std::vector<std::string>{"postgres/archive.dump", "postgres/blobs.dump",
                                             "postgres/captures.dump", "postgres/events.dump"}));
  const fs::path restored = dir_.string() + "-restored";
  RestoreBackup(archive, restored, crypto::LoadRawKeyFile(dir_ / "backup.key"));
  const std::string copy_db = pg_->CreateDatabase();
  for (const auto& d : dumps) db::RestorePostgresDump(copy_db, restored / d);
  ServerOptions o;
  o.data_dir = restored;
  o.port = 0;
  o.retention_interval_s = 0;
  o.tls = false;
  o.database = copy_db;
  o.blobs_dir = kBlobsInDatabase;
  Server copy(o);
  copy.Start();
  httplib::Client c(copy.url());
  auto res = c.Get(path, {{"Authorization", "Bearer " + copy.admin_token()}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->body, std::string(jpeg.begin(), jpeg.end()));
  copy.Stop();
  std::error_code ec;
  fs::remove_all(restored, ec);
}

TEST_F(DatabaseBlobsTest, BlobsInTheDatabaseNeedPostgres) {
  ServerOptions o;
  o.data_dir = dir_ / "alone";
  o.port = 0;
  o.blobs_dir = kBlobsInDatabase;
  try {
    Server s(o);
    FAIL() << "blobs in the database were taken without PostgreSQL";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("postgresql://"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anju::server::testing
