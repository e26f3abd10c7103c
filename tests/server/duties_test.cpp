// Separation of duties as invariants (R4.2.1.1, docs/security.md): no account or token holds
// the powers of two administrators; API tokens carry integration roles only, expire, keep to
// their creator's sites and never approve for their creator; only the security administrator
// manages administrators' credentials and roles; a change to a security administrator waits
// for a second administrator. The escalation test at the end walks every route that changes
// roles, tokens, credentials or approvals and tries each path from each kind of caller.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <chrono>
#include <regex>
#include <set>

#include "server/access/rbac.h"
#include "server_test_support.h"

namespace anju::server::testing {
namespace {

using nlohmann::json;

class DutiesTest : public ServerTest {
 protected:
  // Makes a sealed photo export request as TOKEN; returns its id.
  std::string RequestPhotoExport(const std::string& token) {
    const auto r = As(token, "POST", "/api/v1/exports",
                      {{"kind", "photos"}, {"reason", "核查 / check"}});
    EXPECT_EQ(r.status, 201) << r.body;
    return std::to_string(r.body.value("id", int64_t(0)));
  }
  // A second security administrator, granted with the co-signature it needs.
  Session SecondSecadmin() { return UserWithRoles("sec2", {"secadmin"}); }
  // Runs SQL on the stopped server's archive (test set-up of states no API makes, such as a
  // token whose time has passed).
  void Sql(const std::string& sql) {
    StopServer();
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "archive.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK)
        << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    // Sessions live in the archive: keep using them (a new login would wait for a new TOTP
    // step).
    const auto sessions = ready_;
    StartServer();
    ready_ = sessions;
  }
};

TEST_F(DutiesTest, TokensCarryIntegrationRolesOnlyExpireAndKeepToTheCreatorsSites) {
  const auto sec = Ready("secadmin");
  for (const char* role : {"sysadmin", "secadmin", "auditadmin"}) {
    const auto r = As(sec.token, "POST", "/api/v1/tokens", {{"name", "x"}, {"roles", {role}}});
    EXPECT_EQ(r.status, 400) << role << ": " << r.body;
    const auto mixed =
        As(sec.token, "POST", "/api/v1/tokens", {{"name", "y"}, {"roles", {"operator", role}}});
    EXPECT_EQ(mixed.status, 400) << role;
  }
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/tokens",
               {{"name", "z"}, {"roles", {"operator"}}, {"expires_in_days", 0}})
                .status,
            400);
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/tokens",
               {{"name", "z"}, {"roles", {"operator"}}, {"expires_in_days", 366}})
                .status,
            400);
  const auto made = As(sec.token, "POST", "/api/v1/tokens",
                       {{"name", "pms"}, {"roles", {"operator"}}, {"expires_in_days", 30}});
  ASSERT_EQ(made.status, 201) << made.body;
  const int64_t expires = made.body["expires_ms"];
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(double(expires - now), 30.0 * 86400000, 60000.0);
  const std::string token = made.body["token"];
  EXPECT_EQ(As(token, "GET", "/api/v1/persons").status, 200);
  // The bootstrap token is an integration token too.
  EXPECT_EQ(Api("GET", "/api/v1/users").status, 403);
  EXPECT_EQ(Api("GET", "/api/v1/audit").status, 403);
  // Past its time, a token is refused.
  Sql("UPDATE api_tokens SET expires_ms = 1 WHERE name = 'pms'");
  const auto expired = As(token, "GET", "/api/v1/persons");
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.body["error"]["code"], "token_expired");
  // An administrator's token left from before these rules grants nothing but its
  // integration roles.
  Sql("UPDATE api_tokens SET roles = '[\"viewer\",\"sysadmin\"]', expires_ms = 9e15 "
      "WHERE name = 'pms'");
  EXPECT_EQ(As(token, "GET", "/api/v1/persons").status, 200);
  EXPECT_EQ(As(token, "GET", "/api/v1/users").status, 403);

  // Sites: a security administrator limited to site A cannot mint a token for site B, and a
  // token made without sites keeps to A.
  const int64_t a = Api("POST", "/api/v1/sites", {{"name", "A"}}).body["id"];
  const int64_t b = Api("POST", "/api/v1/sites", {{"name", "B"}}).body["id"];
  SecondSecadmin();
  const auto granted =
      As(Ready("secadmin").token, "PUT", "/api/v1/users/sec2/roles",
         {{"roles", {"secadmin"}}, {"sites", {a}}});
  ASSERT_EQ(granted.status, 202) << granted.body;
  ASSERT_EQ(As(Ready("auditadmin").token, "POST",
               "/api/v1/admin-changes/" + std::to_string(granted.body["request"]["id"].get<int64_t>()) +
                   "/approve", json::object())
                .status,
            200);
  ready_.erase("sec2");
  const auto sec2 = Ready("sec2");
  EXPECT_EQ(sec2.user["sites"], json::array({a}));
  EXPECT_EQ(As(sec2.token, "POST", "/api/v1/tokens",
               {{"name", "b-token"}, {"roles", {"viewer"}}, {"sites", {b}}})
                .status,
            403);
  const auto scoped =
      As(sec2.token, "POST", "/api/v1/tokens", {{"name", "a-token"}, {"roles", {"viewer"}}});
  ASSERT_EQ(scoped.status, 201) << scoped.body;
  EXPECT_EQ(scoped.body["sites"], json::array({a}));
  CreatePerson("NOSITE", "无小区");
  // A person in no household belongs to no site: hidden from a token limited to A.
  EXPECT_EQ(As(scoped.body["token"], "GET", "/api/v1/persons/NOSITE").status, 404);
  EXPECT_EQ(As(token, "GET", "/api/v1/persons/NOSITE").status, 200);
}

TEST_F(DutiesTest, ASecurityAdministratorCannotApproveWhatItsOwnTokenRequested) {
  CreatePerson("P1", "照片一");
  const auto sec = Ready("secadmin");
  const auto made =
      As(sec.token, "POST", "/api/v1/tokens", {{"name", "mine"}, {"roles", {"operator"}}});
  ASSERT_EQ(made.status, 201);
  const std::string token = made.body["token"];
  // The attack: request every photo with one's own operator token, approve it oneself.
  const std::string id = RequestPhotoExport(token);
  const auto self = As(sec.token, "POST", "/api/v1/exports/" + id + "/approve", json::object());
  EXPECT_EQ(self.status, 403) << self.body;
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/exports/" + id + "/reject", json::object()).status, 403);
  // Tokens never approve: no integration role has export.approve.
  EXPECT_EQ(As(token, "POST", "/api/v1/exports/" + id + "/approve", json::object()).status, 403);
  // Deletions too.
  const auto del = As(token, "POST", "/api/v1/deletions",
                      {{"kind", "biometrics"}, {"persons", {"P1"}}, {"reason", "搬离 / moved"}});
  ASSERT_EQ(del.status, 201) << del.body;
  const std::string did = std::to_string(del.body["id"].get<int64_t>());
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/deletions/" + did + "/approve", json::object()).status, 403);
  // A second person may approve.
  const auto sec2 = SecondSecadmin();
  EXPECT_EQ(As(sec2.token, "POST", "/api/v1/exports/" + id + "/approve", json::object()).status, 200);
  EXPECT_EQ(As(sec2.token, "POST", "/api/v1/deletions/" + did + "/approve", json::object()).status, 200);
}

TEST_F(DutiesTest, OnlyTheSecurityAdministratorManagesAdministratorsWithASecondPersonForItself) {
  const auto sys = Ready("admin");
  const auto sec = Ready("secadmin");
  const auto audit = Ready("auditadmin");
  const auto sec2 = SecondSecadmin();
  const auto op = UserWithRoles("op", {"operator"});
  // The attack: the system administrator resets another security administrator's password
  // and TOTP, then logs in as it.
  const auto take = As(sys.token, "PATCH", "/api/v1/users/sec2",
                       {{"password", "Taken-0ver-Pass"}, {"reset_totp", true}});
  EXPECT_EQ(take.status, 403) << take.body;
  EXPECT_EQ(Login("sec2", "Taken-0ver-Pass").status, 401);
  for (const char* admin : {"secadmin", "auditadmin"})
    EXPECT_EQ(As(sys.token, "PATCH", std::string("/api/v1/users/") + admin,
                 {{"disabled", true}})
                  .status,
              403)
        << admin;
  // Ordinary accounts stay the system administrator's; the security administrator does
  // not manage them.
  EXPECT_EQ(As(sys.token, "PATCH", "/api/v1/users/op", {{"unlock", true}}).status, 200);
  EXPECT_EQ(As(sec.token, "PATCH", "/api/v1/users/op", {{"unlock", true}}).status, 403);
  // The security administrator resets the audit administrator's TOTP at once…
  EXPECT_EQ(As(sec.token, "PATCH", "/api/v1/users/auditadmin", {{"reset_totp", true}}).status,
            200);
  ready_.erase("auditadmin");
  totp_secret_.erase("auditadmin");
  const auto audit2 = Ready("auditadmin");  // logs in again and enrols a new TOTP
  // … but another security administrator's password only with a second person.
  const auto pending =
      As(sec.token, "PATCH", "/api/v1/users/sec2", {{"password", "Reset-by-Sec-1"}});
  ASSERT_EQ(pending.status, 202) << pending.body;
  const std::string cid = std::to_string(pending.body["request"]["id"].get<int64_t>());
  EXPECT_EQ(pending.body["request"]["change"]["password"], "***");
  EXPECT_EQ(Login("sec2", "Reset-by-Sec-1").status, 401);  // not applied yet
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/admin-changes/" + cid + "/approve", json::object()).status, 403);
  EXPECT_EQ(As(sec2.token, "POST", "/api/v1/admin-changes/" + cid + "/approve", json::object()).status, 403);
  EXPECT_EQ(As(op.token, "POST", "/api/v1/admin-changes/" + cid + "/approve", json::object()).status, 403);
  const auto cosigned = As(audit2.token, "POST", "/api/v1/admin-changes/" + cid + "/approve", json::object());
  ASSERT_EQ(cosigned.status, 200) << cosigned.body;
  EXPECT_EQ(cosigned.body["state"], "approved");
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/admin-changes/" + cid + "/approve", json::object()).status, 409);
  const auto relog = Login("sec2", "Reset-by-Sec-1");
  ASSERT_EQ(relog.status, 200) << relog.body;
  EXPECT_TRUE(relog.body["user"]["must_change_password"].get<bool>());
  // Taking the role away also waits; one's own roles never change.
  EXPECT_EQ(As(sec.token, "PUT", "/api/v1/users/sec2/roles", {{"roles", {"viewer"}}}).status, 202);
  EXPECT_EQ(As(sec.token, "PUT", "/api/v1/users/secadmin/roles", {{"roles", {"operator"}}}).status,
            403);
  // Every step is in the audit log: the grant of sec2 and this password reset.
  const auto log = As(audit2.token, "GET", "/api/v1/audit?action=admin_change.approve");
  EXPECT_EQ(log.body["total"], 2);
}

TEST_F(DutiesTest, TokensAndPersonListsCountTowardsTheRiskWarning) {
  SecurityPolicy policy;
  policy.views_per_hour_alarm = 5;
  StartServer(policy);
  for (int i = 0; i < 8; ++i) CreatePerson("L" + std::to_string(i), "列表");
  // A token's single reads count, and block the token; a second token of the same creator
  // does not double the allowance: the creator's tokens count together.
  const std::string token = RoleToken({"operator"});
  const std::string sibling = RoleToken({"operator"});
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(As(token, "GET", "/api/v1/persons/L" + std::to_string(i)).status, 200);
  EXPECT_EQ(As(sibling, "GET", "/api/v1/persons/L3").status, 200);
  EXPECT_EQ(As(sibling, "GET", "/api/v1/persons/L4").status, 200);  // the 5th: alarm
  const auto blocked = As(token, "GET", "/api/v1/persons/L0");
  EXPECT_EQ(blocked.status, 423);
  EXPECT_EQ(blocked.body["error"]["code"], "blocked_for_review");
  EXPECT_EQ(As(sibling, "GET", "/api/v1/persons/L0").status, 423);
  // The security administrator who made them is not locked out.
  EXPECT_EQ(As(Ready("secadmin").token, "GET", "/api/v1/tokens").status, 200);
  // Listed persons count (names and phones), each person once an hour.
  const auto op = UserWithRoles("lister", {"operator"});
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons?limit=4").status, 200);
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons?limit=4").status, 200);  // the same four
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons?limit=4").status, 200);
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons?limit=8").status, 200);  // four more: alarm
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons").status, 401);
  EXPECT_EQ(Login("lister", passwords_["lister"]).status, 423);
  // The security administrator reviews the token.
  const auto sec = Ready("secadmin");
  const auto tokens = As(sec.token, "GET", "/api/v1/tokens");
  std::string name;
  for (const auto& t : tokens.body["items"])
    if (!t["blocked_reason"].get<std::string>().empty() && name.empty()) name = t["name"];
  ASSERT_FALSE(name.empty());
  EXPECT_EQ(As(sec.token, "POST", "/api/v1/users/token:" + name + "/review",
               {{"note", "集成方确认 / confirmed with the integrator"}})
                .status,
            200);
  EXPECT_EQ(As(token, "GET", "/api/v1/persons/L1").status, 200);
}

TEST_F(DutiesTest, SmallerHoles) {
  CreatePerson("R1", "证件");
  ASSERT_EQ(Api("PATCH", "/api/v1/persons/R1", {{"id_number", "110101199001011234"}}).status, 200);
  // A viewer does not see a full ID number.
  const auto viewer = RoleToken({"viewer"});
  EXPECT_EQ(As(viewer, "GET", "/api/v1/persons/R1?reveal=true").status, 403);
  const auto masked = As(viewer, "GET", "/api/v1/persons/R1");
  EXPECT_EQ(masked.body["id_number"].get<std::string>().find("19900101"), std::string::npos);
  EXPECT_EQ(As(RoleToken({"operator"}), "GET", "/api/v1/persons/R1?reveal=true")
                .body["id_number"],
            "110101199001011234");
  // An unknown user name is locked like a real one: a 423 does not tell which names exist.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Login("nobody", "Wrong-Pass-1").status, 401);
  const auto ghost = Login("nobody", "Wrong-Pass-1");
  EXPECT_EQ(ghost.status, 423);
  EXPECT_EQ(ghost.body["error"]["code"], "locked");
}

// Every route that changes roles, tokens, credentials or approvals; a new one fails the test
// until it is added here with its escalation attempts.
TEST_F(DutiesTest, EveryEscalationPathIsClosed) {
  CreatePerson("X1", "升级");
  const auto sys = Ready("admin");
  const auto sec = Ready("secadmin");
  const auto aud = Ready("auditadmin");
  const auto sec2 = SecondSecadmin();
  const auto op = UserWithRoles("opx", {"operator"});
  struct Caller {
    std::string name;   // account, or "" for a token
    std::string token;
  };
  const std::vector<Caller> callers = {
      {"admin", sys.token},          {"secadmin", sec.token},      {"auditadmin", aud.token},
      {"opx", op.token},             {"", RoleToken({"operator"})}, {"", RoleToken({"viewer"})},
      {"", RoleToken({"installer"})}, {"", server_->admin_token()}};
  // Requests pending a decision, made by each caller that can make them.
  const std::string op_export = RequestPhotoExport(op.token);
  const std::string sec_token_export = RequestPhotoExport(
      As(sec.token, "POST", "/api/v1/tokens", {{"name", "sec-own"}, {"roles", {"operator"}}})
          .body["token"]);
  const auto change = As(sec.token, "PATCH", "/api/v1/users/sec2", {{"disabled", true}});
  ASSERT_EQ(change.status, 202);
  const std::string change_id = std::to_string(change.body["request"]["id"].get<int64_t>());

  const std::regex sensitive(
      R"(^(POST|PUT|PATCH|DELETE) /api/v1/(users.*|tokens.*|admin-changes.*|auth/(password|totp/.*|sessions/\{id\})|exports/\{id\}/(approve|reject)|deletions/\{id\}/(approve|reject)|keys/rotate)$)");
  std::set<std::string> covered;
  int attempts = 0;
  auto attempt = [&](const std::string& route, const Caller& c, const std::string& method,
                     const std::string& path, const json& body, std::set<int> allowed) {
    covered.insert(route);
    ++attempts;
    const auto r = As(c.token, method, path, body);
    EXPECT_TRUE(allowed.count(r.status) || r.status >= 400)
        << route << " as " << (c.name.empty() ? "a token" : c.name) << " got " << r.status << ": "
        << r.body;
    return r.status;
  };
  for (const auto& [method, path] : server_->Routes()) {
    const std::string route = method + " " + path;
    if (!std::regex_match(route, sensitive)) continue;
    for (const auto& c : callers) {
      const bool is_sec = c.name == "secadmin", is_sys = c.name == "admin";
      if (route == "POST /api/v1/users")
        attempt(route, c, method, path, {{"username", "new-" + std::to_string(attempts)},
                                         {"password", "New-Pass-123"}},
                is_sys ? std::set<int>{201} : std::set<int>{});
      else if (route == "PATCH /api/v1/users/{username}") {
        // Credentials of the other security administrator, of oneself, of an administrator.
        attempt(route, c, method, "/api/v1/users/sec2", {{"password", "Esc-Pass-9x"}},
                is_sec ? std::set<int>{202} : std::set<int>{});
        if (!c.name.empty())
          attempt(route, c, method, "/api/v1/users/" + c.name, {{"reset_totp", true}}, {});
        attempt(route, c, method, "/api/v1/users/auditadmin", {{"unlock", true}},
                is_sec ? std::set<int>{200} : std::set<int>{});
      } else if (route == "PUT /api/v1/users/{username}/roles") {
        for (const std::string target : {"secadmin", "sec2", "auditadmin", "opx"})
          attempt(route, c, method, "/api/v1/users/" + target + "/roles",
                  {{"roles", {"secadmin"}}},
                  is_sec && target != "secadmin" ? std::set<int>{202} : std::set<int>{});
        attempt(route, c, method, "/api/v1/users/opx/roles", {{"roles", {"sysadmin", "auditadmin"}}},
                {});
      } else if (route == "POST /api/v1/users/{username}/review")
        attempt(route, c, method, "/api/v1/users/opx/review", {{"note", "n"}},
                is_sec ? std::set<int>{200} : std::set<int>{});
      else if (route == "POST /api/v1/tokens") {
        for (const char* role : {"sysadmin", "secadmin", "auditadmin"})
          attempt(route, c, method, path, {{"name", "esc-" + std::to_string(attempts)},
                                           {"roles", {role}}},
                  {});
      } else if (route == "POST /api/v1/tokens/{id}/revoke")
        attempt(route, c, method, "/api/v1/tokens/999999/revoke", nullptr, {});
      else if (route == "POST /api/v1/admin-changes/{id}/approve" ||
               route == "POST /api/v1/admin-changes/{id}/reject") {
        // Only auditadmin or admin (neither requester nor target) may decide; the test
        // decides it last, below.
        if (c.name != "auditadmin" && c.name != "admin")
          attempt(route, c, method, "/api/v1/admin-changes/" + change_id + path.substr(path.rfind('/')),
                  json::object(), {});
      } else if (route == "POST /api/v1/exports/{id}/approve" ||
                 route == "POST /api/v1/exports/{id}/reject") {
        // The security administrator's own token's request: refused to it; the operator's
        // own request: refused to the operator (no permission).
        attempt(route, c, method, "/api/v1/exports/" + sec_token_export + path.substr(path.rfind('/')),
                json::object(), {});
        if (c.name != "secadmin")
          attempt(route, c, method, "/api/v1/exports/" + op_export + path.substr(path.rfind('/')),
                  json::object(), {});
      } else if (route == "POST /api/v1/deletions/{id}/approve" ||
                 route == "POST /api/v1/deletions/{id}/reject")
        attempt(route, c, method, "/api/v1/deletions/999999" + path.substr(path.rfind('/')),
                json::object(), {});
      else if (route == "POST /api/v1/auth/password")
        attempt(route, c, method, path, {{"old_password", "wrong"}, {"new_password", "Aa-1aaaaaaa"}},
                {});
      else if (route == "POST /api/v1/auth/totp/setup" || route == "POST /api/v1/auth/totp/confirm")
        // Self-service: an operator may start enrolling TOTP for itself.
        attempt(route, c, method, path, {{"code", "000000"}},
                c.name == "opx" && route.ends_with("setup") ? std::set<int>{200}
                                                            : std::set<int>{});
      else if (route == "DELETE /api/v1/auth/sessions/{id}")
        attempt(route, c, method, "/api/v1/auth/sessions/999999", nullptr, {});
      else if (route == "POST /api/v1/keys/rotate")
        attempt(route, c, method, path, json::object(),
                is_sec ? std::set<int>{200} : std::set<int>{});
    }
  }
  std::vector<std::string> missing;
  for (const auto& [method, path] : server_->Routes()) {
    const std::string route = method + " " + path;
    if (std::regex_match(route, sensitive) && !covered.count(route)) missing.push_back(route);
  }
  EXPECT_TRUE(missing.empty()) << "sensitive routes without escalation attempts: " << [&] {
    std::string s;
    for (const auto& m : missing) s += "\n  " + m;
    return s;
  }();
  EXPECT_GT(attempts, 150);
  // The invariants hold afterwards.
  const auto users = As(sec.token, "GET", "/api/v1/users");
  for (const auto& u : users.body["items"])
    EXPECT_EQ(CheckRoleSet(u["roles"].get<std::vector<std::string>>()), "") << u;
  for (const auto& u : users.body["items"]) {
    if (u["username"] == "secadmin") {
      EXPECT_EQ(u["roles"], json::array({"secadmin"}));
    }
    if (u["username"] == "sec2") {
      EXPECT_EQ(u["roles"], json::array({"secadmin"}));
      EXPECT_FALSE(u["disabled"].get<bool>());
    }
  }
  const auto tokens = As(sec.token, "GET", "/api/v1/tokens");  // kept alive for the loop
  for (const auto& t : tokens.body["items"])
    for (const auto& role : t["roles"])
      if (t["revoked_ms"].is_null()) {
        EXPECT_TRUE(IsIntegrationRole(role)) << t;
      }
  // Nothing approved the attacker's requests.
  const auto exports = As(sec.token, "GET", "/api/v1/exports");
  for (const auto& e : exports.body["items"]) EXPECT_EQ(e["state"], "pending") << e;
}

}  // namespace
}  // namespace anju::server::testing
