// Bulk deletion with approval (R4.2.1.1): nothing is deleted until another user
// approves; then the photos, feature codes (and for archives the personal fields) are
// really gone, every person is audited, and a restart finishes an interrupted deletion.
#include <sqlite3.h>

#include <filesystem>

#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class DeletionTest : public ServerTest {
 protected:
  // Photo files in the data directory.
  size_t PhotoFiles() const {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_ / "photos"))
      if (e.is_regular_file()) ++n;
    return n;
  }
  // Enrols the first photo of PERSON the gate accepts (LFW); true on success.
  bool EnrolFrom(const fs::path& lfw, const std::string& person, const std::string& code) {
    for (const auto& p : PhotosOf(lfw, person))
      if (Api("POST", "/api/v1/persons/" + code + "/photos", ImageBody(ReadFile(p))).status == 201)
        return true;
    return false;
  }
  json Person(const std::string& code) { return Api("GET", "/api/v1/persons/" + code).body; }
  std::string Request(const std::string& token, const json& body) {
    const auto r = As(token, "POST", "/api/v1/deletions", body);
    EXPECT_EQ(r.status, 201) << r.body;
    return std::to_string(r.body.value("id", int64_t(0)));
  }
};

TEST_F(DeletionTest, FaceDataIsDeletedOnlyAfterAnotherUsersApproval) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  for (const auto& [code, name] :
       {std::pair{"D1", "Tony_Blair"}, std::pair{"D2", "Colin_Powell"}}) {
    CreatePerson(code, name);
    GiveConsent(code);
    ASSERT_TRUE(EnrolFrom(lfw, name, code)) << name;
  }
  CreatePerson("D3", "留下 / stays");
  GiveConsent("D3");
  ImportFeature("D3", 3);
  ASSERT_EQ(PhotoFiles(), 2u);

  const auto op = UserWithRoles("liu", {"operator"});
  EXPECT_EQ(As(RoleToken({"viewer"}), "POST", "/api/v1/deletions",
               {{"kind", "biometrics"}, {"persons", {"D1"}}, {"reason", "x"}})
                .status,
            403);
  // Unknown persons are refused, so the approver never sees a list with holes.
  EXPECT_EQ(As(op.token, "POST", "/api/v1/deletions",
               {{"kind", "biometrics"}, {"persons", {"D1", "nobody"}}, {"reason", "x"}})
                .status,
            404);
  const auto req = As(op.token, "POST", "/api/v1/deletions",
                      {{"kind", "biometrics"},
                       {"persons", {"D2", "D1", "D1"}},
                       {"reason", "退租清理 / tenants left"}});
  ASSERT_EQ(req.status, 201) << req.body;
  EXPECT_EQ(req.body["state"], "pending");
  EXPECT_EQ(req.body["count"], 2);
  EXPECT_EQ(req.body["persons"], json({"D1", "D2"}));
  const std::string id = std::to_string(req.body["id"].get<int64_t>());

  // Nothing is deleted before approval; the requester cannot approve.
  EXPECT_EQ(PhotoFiles(), 2u);
  EXPECT_EQ(Person("D1")["photos"].size(), 1u);
  EXPECT_EQ(As(op.token, "POST", "/api/v1/deletions/" + id + "/approve", json::object()).status,
            403);
  // Another operator does not see the request; the approver does, with every code.
  const auto other = UserWithRoles("zhao", {"operator"});
  EXPECT_EQ(As(other.token, "GET", "/api/v1/deletions").body["total"], 0);
  EXPECT_EQ(As(other.token, "GET", "/api/v1/deletions/" + id).status, 404);
  const auto sec = Ready("secadmin");
  const auto listed = As(sec.token, "GET", "/api/v1/deletions/" + id);
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(listed.body["persons"], json({"D1", "D2"}));

  const auto ok = As(sec.token, "POST", "/api/v1/deletions/" + id + "/approve", {{"note", "同意"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body["state"], "done");
  EXPECT_EQ(ok.body["approver"], "secadmin");
  EXPECT_EQ(ok.body["deleted"], 2);
  EXPECT_EQ(ok.body["photos_deleted"], 2);
  EXPECT_EQ(PhotoFiles(), 0u) << "photo files must be unlinked";
  for (const char* code : {"D1", "D2"}) {
    const json p = Person(code);
    EXPECT_TRUE(p["photos"].empty()) << p;
    EXPECT_EQ(p["status"], "active") << "face data only: the archive stays";
  }
  EXPECT_EQ(Person("D1")["name"], "Tony_Blair");
  // D3 was not on the list: its feature code is still there.
  EXPECT_EQ(Person("D3")["features"], 1) << Person("D3");
  // Once is enough.
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/deletions/" + id + "/approve", json::object()).status,
            409);
  // Every person's deletion is in the audit log.
  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=biometrics.delete");
  ASSERT_EQ(audit.body["total"], 2) << audit.body;
  EXPECT_EQ(audit.body["items"][0]["actor"], "secadmin");
  EXPECT_EQ(
      As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=deletion.request").body["total"],
      1);
}

TEST_F(DeletionTest, ArchivesByFilterAreErasedButTheCodeStays) {
  uint32_t seed = 20;
  for (const char* code : {"M1", "M2", "S1"}) {
    ASSERT_EQ(Api("POST", "/api/v1/persons",
                  {{"code", code},
                   {"name", std::string("住户") + code},
                   {"phone", "13800138000"},
                   {"id_number", "110101199003071234"}})
                  .status,
              201);
    GiveConsent(code);
    ImportFeature(code, ++seed);
  }
  ASSERT_EQ(Api("POST", "/api/v1/persons/M1/consents",
                {{"notice_version", "2026-01"},
                 {"purpose", "门禁"},
                 {"guardian_name", "王监护"},
                 {"guardian_relation", "父亲"}})
                .status,
            201);
  for (const char* code : {"M1", "M2"})
    ASSERT_EQ(
        Api("POST", "/api/v1/persons/" + std::string(code) + "/move-out", json::object()).status,
        200);
  const auto op = UserWithRoles("liu", {"operator"});
  const auto sec = Ready("secadmin");
  // A rejected request deletes nothing and cannot be approved after.
  const std::string rejected = Request(
      op.token, {{"kind", "archives"}, {"filter", {{"status", "moved_out"}}}, {"reason", "x"}});
  ASSERT_EQ(As(sec.token, "POST", "/api/v1/deletions/" + rejected + "/reject", {{"note", "不同意"}})
                .body["state"],
            "rejected");
  EXPECT_EQ(
      As(sec.token, "POST", "/api/v1/deletions/" + rejected + "/approve", json::object()).status,
      409);
  EXPECT_EQ(Person("M1")["name"], "住户M1");

  const auto req = As(op.token, "POST", "/api/v1/deletions",
                      {{"kind", "archives"},
                       {"filter", {{"status", "moved_out"}}},
                       {"reason", "迁出满两年 / moved out two years ago"}});
  ASSERT_EQ(req.status, 201) << req.body;
  EXPECT_EQ(req.body["persons"], json({"M1", "M2"}));
  const std::string id = std::to_string(req.body["id"].get<int64_t>());
  const auto ok = As(sec.token, "POST", "/api/v1/deletions/" + id + "/approve", json::object());
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body["deleted"], 2);

  const json m1 = Api("GET", "/api/v1/persons/M1?reveal=true").body;
  EXPECT_EQ(m1["name"], "（已销毁）/ (erased)");
  EXPECT_EQ(m1["phone"], "");
  EXPECT_FALSE(m1.contains("id_number")) << m1;
  EXPECT_EQ(m1["features"], 0);
  ASSERT_EQ(m1["consents"].size(), 2u) << "consent records stay as proof";
  for (const auto& c : m1["consents"]) EXPECT_EQ(c["guardian_name"], "") << c;
  const auto history = Api("GET", "/api/v1/persons/M1/history");
  ASSERT_EQ(history.body["total"], 1) << history.body;
  EXPECT_EQ(history.body["items"][0]["action"], "archive_erased");
  // S1 is active, not matched by the filter: untouched.
  const json s1 = Api("GET", "/api/v1/persons/S1?reveal=true").body;
  EXPECT_EQ(s1["name"], "住户S1");
  EXPECT_EQ(s1["id_number"], "110101199003071234");
  EXPECT_EQ(s1["features"], 1);
  // Erased archives match no later filter.
  EXPECT_EQ(As(op.token, "POST", "/api/v1/deletions",
               {{"kind", "archives"}, {"filter", {{"status", "moved_out"}}}, {"reason", "x"}})
                .status,
            400);
}

TEST_F(DeletionTest, DevicesAreToldToRemoveTheDeletedFaces) {
  auto dev = RegisterDevice("单元门");
  const int64_t group = CreateGroupOn(dev.id);
  for (const char* code : {"G1", "G2", "G3"}) {
    CreatePerson(code, code);
    GiveConsent(code);
    ImportFeature(code, uint32_t(code[1]));
  }
  AddToGroup(group, {"G1", "G2", "G3"});
  std::vector<json> changes;
  const int64_t v = SyncAll(*dev.client, 0, 100, &changes);
  ASSERT_EQ(changes.size(), 3u);
  const auto op = UserWithRoles("liu", {"operator"});
  const std::string id =
      Request(op.token, {{"kind", "biometrics"}, {"persons", {"G1", "G3"}}, {"reason", "x"}});
  ASSERT_EQ(
      As(Ready("secadmin").token, "POST", "/api/v1/deletions/" + id + "/approve", json::object())
          .status,
      200);
  changes.clear();
  SyncAll(*dev.client, v, 100, &changes);
  ASSERT_EQ(changes.size(), 2u);
  for (const auto& c : changes) {
    EXPECT_EQ(c["op"], "remove") << c;
    EXPECT_EQ(c["reason"], "biometrics_deleted") << c;
    EXPECT_NE(c["person"], "G2") << c;
  }
  EXPECT_EQ(Api("GET", "/api/v1/persons/G1/removals").body["removals"].size(), 1u);
}

TEST_F(DeletionTest, AnApproverCannotApproveTheirOwnRequest) {
  CreatePerson("O1", "自己");
  const auto both = UserWithRoles("wu", {"operator", "secadmin"});
  const std::string id =
      Request(both.token, {{"kind", "biometrics"}, {"persons", {"O1"}}, {"reason", "x"}});
  const auto r = As(both.token, "POST", "/api/v1/deletions/" + id + "/approve", json::object());
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(As(both.token, "GET", "/api/v1/deletions/" + id).body["state"], "pending");
}

TEST_F(DeletionTest, ARestartFinishesAnApprovedDeletion) {
  CreatePerson("R1", "重启");
  GiveConsent("R1");
  ImportFeature("R1", 7);
  const auto op = UserWithRoles("liu", {"operator"});
  const std::string id =
      Request(op.token, {{"kind", "biometrics"}, {"persons", {"R1"}}, {"reason", "x"}});
  StopServer();
  // As a crash between the approval and the deletion leaves it.
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "archive.db").c_str(), &h), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(h,
                         ("UPDATE deletions SET state = 'approved', approver = 'secadmin' WHERE "
                          "id = " +
                          id)
                             .c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(h);
  StartServer();
  EXPECT_EQ(Person("R1")["features"], 0);
  const auto d = As(RoleToken({"secadmin"}), "GET", "/api/v1/deletions/" + id);
  EXPECT_EQ(d.body["state"], "done") << d.body;
  EXPECT_EQ(d.body["deleted"], 1);
}

}  // namespace
}  // namespace anju::server::testing
