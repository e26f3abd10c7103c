// The admin HTTP API of anju-server: health, the generated
// OpenAPI document, token authentication, clean 4xx answers for bad input (malformed
// JSON, unknown fields, wrong types, oversized bodies), pagination, the append-only audit
// log, and data surviving a restart on the same data directory (R3.3.2.2).
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "server/backup/backup.h"
#include "server/storage/archive_schema.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST_F(ServerTest, HealthzAnswersSmallJson) {
  auto res = Raw("GET", "/healthz", "");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json j = json::parse(res->body);
  EXPECT_EQ(j["status"], "ok");
  EXPECT_EQ(j["schema_version"], int(ArchiveMigrations().size()));
}

TEST_F(ServerTest, OpenApiCoversEveryRegisteredRoute) {
  auto res = Raw("GET", "/api/openapi.json", "");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const json doc = json::parse(res->body);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  const auto routes = server_->Routes();
  EXPECT_GT(routes.size(), 40u);
  for (const auto& [method, path] : routes) {
    std::string m = method;
    for (auto& c : m) c = char(std::tolower(c));
    ASSERT_TRUE(doc["paths"].contains(path)) << path;
    EXPECT_TRUE(doc["paths"][path].contains(m)) << method << " " << path;
  }
  // Every documented operation is served (no stale entries either).
  size_t ops = 0;
  for (const auto& [path, item] : doc["paths"].items()) ops += item.size();
  EXPECT_EQ(ops, routes.size());
  // The device protocol and the required entry points are in it.
  EXPECT_TRUE(doc["paths"].contains("/api/v1/device/gallery"));
  EXPECT_TRUE(doc["paths"].contains("/api/v1/device/register"));
  EXPECT_TRUE(doc["paths"].contains("/healthz"));
  // Request schemas refuse unknown fields, as the server does.
  EXPECT_EQ(doc["paths"]["/api/v1/persons"]["post"]["requestBody"]["content"]["application/json"]
               ["schema"]["additionalProperties"],
            false);
}

TEST_F(ServerTest, AdminTokenRequiredAndStoredPrivately) {
  auto none = Raw("GET", "/api/v1/persons", "");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(json::parse(none->body)["error"]["code"], "unauthenticated");
  auto wrong = Raw("GET", "/api/v1/persons", "", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(Api("GET", "/api/v1/persons").status, 200);
  for (const char* f : {"admin.token", "master.key", "data.key", "server_sm2.pem", "backup.key"}) {
    struct stat st {};
    ASSERT_EQ(stat((dir_ / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0077, 0u) << f << " must be 0600";
  }
}

TEST_F(ServerTest, BadInputGetsCleanErrorsAndChangesNothing) {
  auto post = [&](const std::string& body) {
    auto r = Raw("POST", "/api/v1/persons", body, AdminHeaders());
    EXPECT_TRUE(r);
    return std::pair{r->status, json::parse(r->body)};
  };
  auto [s1, malformed] = post("{\"name\": ");
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(malformed["error"]["code"], "bad_request");
  auto [s2, unknown] = post(R"({"name": "王五", "nmae": "typo"})");
  EXPECT_EQ(s2, 400);
  EXPECT_EQ(unknown["error"]["code"], "unknown_field");
  EXPECT_NE(unknown["error"]["message"].get<std::string>().find("nmae"), std::string::npos);
  auto [s3, wrong_type] = post(R"({"name": 42})");
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(wrong_type["error"]["code"], "bad_request");
  auto [s4, missing] = post(R"({"phone": "123"})");
  EXPECT_EQ(s4, 400);
  auto [s5, not_object] = post(R"(["name"])");
  EXPECT_EQ(s5, 400);
  auto [s6, bad_enum] = post(R"({"name": "x", "role": "landlord"})");
  EXPECT_EQ(s6, 400);
  auto [s7, bad_code] = post(R"({"name": "x", "code": "has space"})");
  EXPECT_EQ(s7, 400);

  // Over 16 MiB: 413 with the same error shape.
  const std::string big = "{\"name\": \"" + std::string((16u << 20) + 100, 'a') + "\"}";
  auto r = Raw("POST", "/api/v1/persons", big, AdminHeaders());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "too_large");

  // Bad query parameters and unknown paths.
  EXPECT_EQ(Api("GET", "/api/v1/persons?limit=0").status, 400);
  EXPECT_EQ(Api("GET", "/api/v1/persons?limit=abc").status, 400);
  const auto nf = Api("GET", "/api/v1/no-such-thing");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body["error"]["code"], "not_found");
  EXPECT_EQ(Api("GET", "/api/v1/persons/P404").status, 404);

  // Nothing was stored by any of it.
  EXPECT_EQ(Api("GET", "/api/v1/persons").body["total"], 0);
}

TEST_F(ServerTest, PlacesHierarchyPaginationAndReferences) {
  const auto site = Api("POST", "/api/v1/sites", {{"name", "安居小区"}, {"address", "北京"}});
  ASSERT_EQ(site.status, 201);
  const int64_t sid = site.body["id"];
  for (int i = 0; i < 7; ++i)
    ASSERT_EQ(Api("POST", "/api/v1/buildings",
                  {{"site_id", sid}, {"name", std::to_string(i + 1) + "号楼"}})
                  .status,
              201);
  const auto page =
      Api("GET", "/api/v1/buildings?site_id=" + std::to_string(sid) + "&limit=3&offset=3");
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.body["total"], 7);
  ASSERT_EQ(page.body["items"].size(), 3u);
  EXPECT_EQ(page.body["items"][0]["name"], "4号楼");
  // A child of a missing parent, deleting a referenced parent: 409, nothing changes.
  EXPECT_EQ(Api("POST", "/api/v1/buildings", {{"site_id", 999}, {"name", "x"}}).status, 409);
  EXPECT_EQ(Api("DELETE", "/api/v1/sites/" + std::to_string(sid)).status, 409);
  EXPECT_EQ(Api("GET", "/api/v1/sites/" + std::to_string(sid)).status, 200);
  const auto patched = Api("PATCH", "/api/v1/sites/" + std::to_string(sid), {{"name", "安居家园"}});
  EXPECT_EQ(patched.body["name"], "安居家园");

  // Households with members and roles.
  const int64_t bid = page.body["items"][0]["id"];
  const auto unit = Api("POST", "/api/v1/units", {{"building_id", bid}, {"name", "1单元"}});
  const auto room = Api("POST", "/api/v1/rooms", {{"unit_id", unit.body["id"]}, {"name", "101"}});
  const auto hh =
      Api("POST", "/api/v1/households", {{"room_id", room.body["id"]}, {"name", "101户"}});
  ASSERT_EQ(hh.status, 201);
  CreatePerson("T1", "李四");
  const std::string hpath = "/api/v1/households/" + std::to_string(hh.body["id"].get<int64_t>());
  EXPECT_EQ(Api("POST", hpath + "/members", {{"person", "T1"}, {"role", "tenant"}}).status, 201);
  const auto members = Api("GET", hpath + "/members");
  ASSERT_EQ(members.body["items"].size(), 1u);
  EXPECT_EQ(members.body["items"][0]["role"], "tenant");

  // The audit log saw all of it.
  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?limit=1000");
  EXPECT_GE(audit.body["total"].get<int>(), 12);
}

TEST_F(ServerTest, PersonArchiveKeepsIdNumberSealedAndMasked) {
  ASSERT_EQ(Api("POST", "/api/v1/persons",
                {{"code", "P1"},
                 {"name", "张三明"},
                 {"id_number", "110101199001011234"},
                 {"phone", "13800000000"}})
                .status,
            201);
  const auto p = Api("GET", "/api/v1/persons/P1");
  EXPECT_EQ(p.body["id_number"], "1101**********1234");
  EXPECT_EQ(Api("GET", "/api/v1/persons/P1?reveal=true").body["id_number"], "110101199001011234");
  // Not in the database file in the clear.
  StopServer();
  std::ifstream in(dir_ / "archive.db", std::ios::binary);
  const std::string db((std::istreambuf_iterator<char>(in)), {});
  std::ifstream wal(dir_ / "archive.db-wal", std::ios::binary);
  const std::string w((std::istreambuf_iterator<char>(wal)), {});
  EXPECT_EQ(db.find("110101199001011234"), std::string::npos);
  EXPECT_EQ(w.find("110101199001011234"), std::string::npos);
}

TEST_F(ServerTest, RestartOnSameDataDirKeepsEverything) {
  const std::string token = server_->admin_token();
  CreatePerson("P7", "赵六");
  GiveConsent("P7");
  auto dev = RegisterDevice("gate");
  const int64_t group = CreateGroupOn(dev.id);
  AddToGroup(group, {"P7"});
  ImportFeature("P7", 7);
  std::vector<json> changes;
  const int64_t v = SyncAll(*dev.client, 0, 100, &changes);
  ASSERT_EQ(changes.size(), 1u);

  dev.client.reset();  // close its kept-alive connection so the server stops at once
  StartServer();       // same directory, new port
  EXPECT_FALSE(server_->first_start());
  EXPECT_EQ(server_->admin_token(), token);
  const auto p = Api("GET", "/api/v1/persons/P7");
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(p.body["name"], "赵六");
  EXPECT_TRUE(p.body["consent_active"].get<bool>());
  // The device's key and the server key survived: the same registration still works.
  protocol::DeviceClient again(server_->url(), dev.id, dev.key, dev.reg->server_public_key,
                               ClientOpts());
  const json page = again.CallJson("GET", "/api/v1/device/gallery?since=" + std::to_string(v));
  EXPECT_EQ(page["changes"].size(), 0u);
  EXPECT_EQ(page["version"], v);
  changes.clear();
  SyncAll(again, 0, 100, &changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0]["person"], "P7");
}

TEST(ServerConfig, KnownKeysApplyUnknownOrWrongTypesRefused) {
  ServerOptions o;
  o.ApplyConfig({{"port", 9000}, {"snapshot_retention_months", 6}, {"check_liveness", false}});
  EXPECT_EQ(o.port, 9000);
  EXPECT_EQ(o.snapshot_retention_months, 6);
  EXPECT_FALSE(o.gate.check_liveness);
  // The enrolment gate judges liveness on the terminal's scale unless configured
  // (docs/liveness.md): not the network's 0.5 argmax.
  EXPECT_EQ(ServerOptions{}.gate.liveness_threshold, vision::LivenessOptions{}.threshold);
  o.ApplyConfig({{"liveness_threshold", 0.25}});
  EXPECT_FLOAT_EQ(o.gate.liveness_threshold, 0.25f);
  EXPECT_EQ(anju::testing::CodeOf([&] {
              o.ApplyConfig({{"prot", 9000}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(anju::testing::CodeOf([&] {
              o.ApplyConfig({{"port", "9000"}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(anju::testing::CodeOf([&] { o.ApplyConfig(json::array()); }),
            ErrorCode::kInvalidArgument);
  // The index is int8 and snapshots embed the mirror too, unless configured otherwise.
  EXPECT_EQ(ServerOptions{}.index_precision, "int8");
  EXPECT_TRUE(ServerOptions{}.snapshot_mirror);
  o.ApplyConfig({{"index_precision", "fp32"}, {"snapshot_mirror", false}});
  EXPECT_EQ(o.index_precision, "fp32");
  EXPECT_FALSE(o.snapshot_mirror);
  EXPECT_EQ(anju::testing::CodeOf([&] {
              o.ApplyConfig({{"index_precision", "int4"}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(o.index_precision, "fp32");
}

// Numbers are integers within a range, else refused naming the key: 1e99 as the port was
// converted to an int and a huge lockout_s multiplied into milliseconds, both undefined
// behaviour that left garbage in the options (found by fuzz_config, docs/fuzzing.md).
TEST(ServerConfig, NumbersOutsideTheirRangeAreRefused) {
  const auto refused = [](const json& config) {
    ServerOptions o;
    return anju::testing::CodeOf([&] { o.ApplyConfig(config); }) == ErrorCode::kInvalidArgument;
  };
  const uint64_t beyond_int64 = uint64_t{1} << 63;
  EXPECT_TRUE(refused({{"port", 1e99}}));
  EXPECT_TRUE(refused({{"port", 8640.5}}));
  EXPECT_TRUE(refused({{"port", 65536}}));
  EXPECT_TRUE(refused({{"http_threads", -1e99}}));
  EXPECT_TRUE(refused({{"max_body_mib", 1e30}}));
  EXPECT_TRUE(refused({{"enrolment_code_ttl_hours", INT64_MAX}}));
  EXPECT_TRUE(refused({{"max_connections", beyond_int64}}));
  EXPECT_TRUE(refused({{"header_timeout_s", INT64_MAX}}));
  EXPECT_TRUE(refused({{"security", {{"lockout_s", INT64_MAX}}}}));
  EXPECT_TRUE(refused({{"security", {{"max_failures", 1e300}}}}));
  EXPECT_TRUE(refused({{"site_calibration", {{"delay_s", INT64_MAX}}}}));
  EXPECT_TRUE(refused({{"site_calibration", {{"min_persons", 1e30}}}}));
  EXPECT_TRUE(refused({{"liveness_threshold", 1e300}}));
  EXPECT_TRUE(refused({{"liveness_threshold", -0.1}}));
  EXPECT_TRUE(refused({{"liveness_threshold", "0.5"}}));

  ServerOptions o;  // values in range still apply, with the same floors as before
  o.ApplyConfig({{"port", 0},
                 {"max_body_mib", 4096},
                 {"enrolment_code_ttl_hours", 48},
                 {"http_io_threads", 64},
                 {"header_timeout_s", 0},
                 {"security", {{"lockout_s", 600}, {"max_failures", 0}}},
                 {"site_calibration", {{"recheck_s", 60}}}});
  EXPECT_EQ(o.port, 0);
  EXPECT_EQ(o.max_body_bytes, size_t{4096} << 20);
  EXPECT_EQ(o.enrolment_code_ttl_ms, 48 * 3600 * 1000);
  EXPECT_EQ(o.http_limits.io_threads, 16);
  EXPECT_EQ(o.http_limits.header_timeout, std::chrono::seconds(1));
  EXPECT_EQ(o.security.lockout_ms, 600'000);
  EXPECT_EQ(o.security.max_failures, 1);
  EXPECT_EQ(o.site_calibration.recheck_ms, 60'000);
}

TEST_F(ServerTest, OnlineBackupRestoresTheArchive) {
  CreatePerson("BK1", "备份");
  GiveConsent("BK1");
  ImportFeature("BK1", 11);
  const fs::path archive =
      dir_.parent_path() / (dir_.filename().string() + "-backups") / "archive.anjubak";
  fs::remove(archive);
  EXPECT_EQ(SysApi("POST", "/api/v1/admin/backup", {{"file", "relative.anjubak"}}).status, 400);
  // Only inside the backup folder: no write elsewhere, and a verify elsewhere says nothing
  // about whether the file exists.
  EXPECT_EQ(SysApi("POST", "/api/v1/admin/backup", {{"file", "/tmp/anywhere.anjubak"}}).status,
            403);
  const auto probe_there = SysApi("POST", "/api/v1/admin/backup/verify", {{"file", "/etc/passwd"}});
  const auto probe_none = SysApi("POST", "/api/v1/admin/backup/verify", {{"file", "/etc/nope"}});
  EXPECT_EQ(probe_there.status, 403);
  EXPECT_EQ(probe_there.body, probe_none.body);
  EXPECT_EQ(SysApi("POST", "/api/v1/admin/backup",
                   {{"file", (dir_.parent_path() / (dir_.filename().string() + "-backups") / ".." /
                              "escape.anjubak")
                                 .string()}})
                .status,
            403);
  const auto made = SysApi("POST", "/api/v1/admin/backup", {{"file", archive.string()}});
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(SysApi("POST", "/api/v1/admin/backup/verify", {{"file", archive.string()}}).status,
            200);
  // Restore into a fresh directory with the backup key and serve it.
  const fs::path restored = dir_.parent_path() / (dir_.filename().string() + "-restored");
  fs::remove_all(restored);
  const auto key = crypto::LoadRawKeyFile(dir_ / "backup.key");
  RestoreBackup(archive, restored, key);
  ServerOptions o;
  o.data_dir = restored;
  o.port = 0;
  o.retention_interval_s = 0;
  o.tls = false;  // the copy: plain HTTP on loopback is enough here
  Server copy(o);
  copy.Start();
  httplib::Client c(copy.url());
  auto res = c.Get("/api/v1/persons/BK1", {{"Authorization", "Bearer " + copy.admin_token()}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  const json p = json::parse(res->body);
  EXPECT_EQ(p["name"], "备份");
  EXPECT_TRUE(p["consent_active"].get<bool>());
  copy.Stop();
  fs::remove_all(restored);
  fs::remove(archive);
}

}  // namespace
}  // namespace anju::server::testing
