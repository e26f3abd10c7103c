// The administration settings the console shows: retention periods read from the
// server and changed within the guideline's limits (R3.3.2.6), and the key hierarchy with
// online master-key rotation (R3.3.3.2).
#include <chrono>
#include <filesystem>

#include "server/retention/retention.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using AdminSettingsTest = ServerTest;

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_F(AdminSettingsTest, RetentionPeriodsAreReadChangedWithinLimitsAndKept) {
  const auto sys = Ready("admin");
  auto r = As(sys.token, "GET", "/api/v1/admin/retention");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["snapshot_months"], 12);
  EXPECT_EQ(r.body["video_months"], 3);
  EXPECT_EQ(r.body["event_months"], 24);
  EXPECT_EQ(r.body["quarantine_months"], 12);
  EXPECT_EQ(r.body["source"], "config");
  EXPECT_EQ(r.body["limits"]["snapshot_months"]["max"], 12);
  EXPECT_TRUE(r.body["last_run"].is_null());

  // Outside the limits (R3.3.2.6: snapshots ≤ 12 months; R4.2.3.1: logs ≥ 6 months).
  EXPECT_EQ(As(sys.token, "PUT", "/api/v1/admin/retention", {{"snapshot_months", 13}}).status, 400);
  EXPECT_EQ(As(sys.token, "PUT", "/api/v1/admin/retention", {{"snapshot_months", 0}}).status, 400);
  EXPECT_EQ(As(sys.token, "PUT", "/api/v1/admin/retention", {{"event_months", 3}}).status, 400);
  EXPECT_EQ(As(sys.token, "PUT", "/api/v1/admin/retention", json::object()).status, 400);
  EXPECT_EQ(
      As(RoleToken({"operator"}), "PUT", "/api/v1/admin/retention", {{"video_months", 1}}).status,
      403);

  r = As(sys.token, "PUT", "/api/v1/admin/retention",
         {{"snapshot_months", 6}, {"video_months", 1}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["snapshot_months"], 6);
  EXPECT_EQ(r.body["video_months"], 1);
  EXPECT_EQ(r.body["event_months"], 24);
  EXPECT_EQ(r.body["source"], "console");
  EXPECT_EQ(r.body["updated_by"], "admin");

  // Kept across a restart, and the retention job uses it.
  StopServer();
  StartServer();
  const auto sys2 = Ready("admin");
  r = As(sys2.token, "GET", "/api/v1/admin/retention");
  EXPECT_EQ(r.body["snapshot_months"], 6);
  const int64_t before = Now();
  const auto run = As(sys2.token, "POST", "/api/v1/admin/retention/run");
  ASSERT_EQ(run.status, 200) << run.body;
  const int64_t cutoff = run.body["snapshot_cutoff_ms"];
  EXPECT_GE(cutoff, MonthsBefore(before, 6));
  EXPECT_LE(cutoff, MonthsBefore(Now(), 6));
  EXPECT_GE(run.body["video_cutoff_ms"].get<int64_t>(), MonthsBefore(before, 1));
  EXPECT_LE(run.body["video_cutoff_ms"].get<int64_t>(), MonthsBefore(Now(), 1));
  r = As(sys2.token, "GET", "/api/v1/admin/retention");
  ASSERT_FALSE(r.body["last_run"].is_null()) << r.body;
  EXPECT_EQ(r.body["last_run"]["detail"]["snapshot_cutoff_ms"], cutoff);

  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=config.retention");
  ASSERT_EQ(audit.body["total"], 1) << audit.body;
  EXPECT_EQ(audit.body["items"][0]["detail"]["before"]["snapshot_months"], 12);
  EXPECT_EQ(audit.body["items"][0]["detail"]["after"]["snapshot_months"], 6);
}

TEST_F(AdminSettingsTest, KeysPageShowsIdsOnlyAndRotatesWithoutDowntime) {
  ASSERT_EQ(Api("POST", "/api/v1/persons",
                {{"code", "K1"}, {"name", "密钥"}, {"id_number", "110101199003071234"}})
                .status,
            201);
  const auto sec = Ready("secadmin");
  EXPECT_EQ(As(Ready("admin").token, "GET", "/api/v1/keys").status, 403);
  auto k = As(sec.token, "GET", "/api/v1/keys");
  ASSERT_EQ(k.status, 200) << k.body;
  const std::string master = k.body["master"]["id"];
  EXPECT_EQ(master.size(), 16u);
  ASSERT_EQ(k.body["class_keys"].size(), 3u);
  std::map<std::string, std::string> class_ids;
  for (const auto& c : k.body["class_keys"]) {
    EXPECT_EQ(c["master_id"], master) << c;
    class_ids[c["file"]] = c["key_id"];
  }
  EXPECT_EQ(k.body["server_sm2"]["fingerprint"].get<std::string>().size(), 16u);
  EXPECT_FALSE(k.body["tls"]["fingerprint"].get<std::string>().empty());
  EXPECT_TRUE(k.body["last_rotation"].is_null());
  // No key material: the master key file's hex does not appear.
  const std::string master_file = ReadFile(dir_ / "master.key");
  const std::string hex = master_file.substr(0, 32);
  EXPECT_EQ(k.body.dump().find(hex), std::string::npos);

  const auto rot = As(sec.token, "POST", "/api/v1/keys/rotate", {{"note", "年度轮换"}});
  ASSERT_EQ(rot.status, 200) << rot.body;
  const std::string new_master = rot.body["master"]["id"];
  EXPECT_NE(new_master, master);
  EXPECT_EQ(rot.body["rotation"]["old_master_id"], master);
  for (const auto& c : rot.body["class_keys"]) {
    EXPECT_EQ(c["master_id"], new_master) << c;
    EXPECT_EQ(c["key_id"], class_ids[c["file"]]) << "class keys stay the same";
  }
  EXPECT_EQ(rot.body["last_rotation"]["detail"]["new_master_id"], new_master);

  // No downtime: the running server still reads sealed data and seals new data.
  auto p = Api("GET", "/api/v1/persons/K1?reveal=true");
  EXPECT_EQ(p.body["id_number"], "110101199003071234");
  GiveConsent("K1");
  ImportFeature("K1", 11);
  // And after a restart with the new master key.
  StopServer();
  StartServer();
  p = Api("GET", "/api/v1/persons/K1?reveal=true");
  EXPECT_EQ(p.body["id_number"], "110101199003071234");
  EXPECT_EQ(p.body["features"], 1);
  EXPECT_EQ(As(Ready("secadmin").token, "GET", "/api/v1/keys").body["master"]["id"], new_master);
  EXPECT_EQ(As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=keys.rotate").body["total"],
            1);
}

}  // namespace
}  // namespace anju::server::testing
