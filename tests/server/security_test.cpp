// Accounts, sessions, lockout, TOTP, three-way separated roles (with an
// authorisation matrix over every route), export approval, risk warnings, TLS.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/password.h"
#include "crypto/tls_cert.h"
#include "crypto/totp.h"
#include "server/access/rbac.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class SecurityTest : public ServerTest {};

TEST(Passwords, ScryptHashVerifiesOnlyTheSamePassword) {
  const auto h = crypto::HashPassword("Correct-Horse-9");
  EXPECT_EQ(h.rfind("scrypt$", 0), 0u);
  EXPECT_TRUE(crypto::VerifyPassword("Correct-Horse-9", h));
  EXPECT_FALSE(crypto::VerifyPassword("correct-horse-9", h));
  EXPECT_NE(crypto::HashPassword("Correct-Horse-9"), h);  // salted
  for (const char* bad : {"", "scrypt$", "scrypt$1$8$1$AA==$AA==", "md5$x", "scrypt$x$y$z$a$b"})
    EXPECT_FALSE(crypto::VerifyPassword("x", bad)) << bad;
}

TEST(Totp, Rfc6238TestVectors) {
  // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits.
  const auto secret = crypto::ToBytes("12345678901234567890");
  EXPECT_EQ(crypto::Totp(secret, 59, 30, 8), "94287082");
  EXPECT_EQ(crypto::Totp(secret, 1111111109, 30, 8), "07081804");
  EXPECT_EQ(crypto::Totp(secret, 1234567890, 30, 8), "89005924");
  EXPECT_EQ(crypto::Totp(secret, 20000000000, 30, 8), "65353130");
  // Base32 round trip (RFC 4648 vector) and the ±1 step window.
  EXPECT_EQ(crypto::ToBase32(crypto::ToBytes("foobar")), "MZXW6YTBOI");
  EXPECT_EQ(crypto::FromBase32("mzxw 6ytb oi=="), crypto::ToBytes("foobar"));
  const std::string now = crypto::Totp(secret, 1'000'000'000);
  EXPECT_TRUE(crypto::VerifyTotp(secret, now, 1'000'000'000 + 30));
  EXPECT_FALSE(crypto::VerifyTotp(secret, now, 1'000'000'000 + 90));
  EXPECT_FALSE(crypto::VerifyTotp(secret, "12345", 1'000'000'000));
}

TEST(Roles, ThreeWaySeparation) {
  EXPECT_EQ(CheckRoleSet({"sysadmin", "operator"}), "");
  EXPECT_NE(CheckRoleSet({"sysadmin", "secadmin"}), "");
  EXPECT_NE(CheckRoleSet({"auditadmin", "secadmin"}), "");
  EXPECT_NE(CheckRoleSet({"root"}), "");
  // No role can both grant roles and read the audit log, or manage users and keys.
  for (const auto& r : AllRoles()) {
    const auto& p = RolePermissions(r);
    EXPECT_FALSE(p.count("roles.manage") && p.count("audit.read")) << r;
    EXPECT_FALSE(p.count("users.manage") && p.count("roles.manage")) << r;
    EXPECT_FALSE(p.count("export.request") && p.count("export.approve")) << r;
  }
}

TEST_F(SecurityTest, FirstLoginForcesPasswordChangeThenTotp) {
  ASSERT_EQ(server_->initial_passwords().size(), 3u);
  const std::string pw = passwords_.at("admin");
  // Wrong password 401; right one 200 with a session that must change the password first.
  EXPECT_EQ(Login("admin", "wrong-Passw0rd").status, 401);
  const auto login = Login("admin", pw);
  ASSERT_EQ(login.status, 200) << login.body;
  const std::string token = login.body["token"];
  EXPECT_TRUE(login.body["user"]["must_change_password"].get<bool>());
  EXPECT_EQ(As(token, "GET", "/api/v1/devices").body["error"]["code"], "password_change_required");
  // Weak passwords are refused with the reason.
  for (const std::string& weak :
       std::vector<std::string>{"short1A", "alllowercase", "admin-Passw0rd", pw}) {
    const auto r =
        As(token, "POST", "/api/v1/auth/password", {{"old_password", pw}, {"new_password", weak}});
    EXPECT_EQ(r.status, 400) << weak;
  }
  ASSERT_EQ(As(token, "POST", "/api/v1/auth/password",
               {{"old_password", pw}, {"new_password", "Gate-Keeper-2026"}})
                .status,
            200);
  // An administrator must enrol TOTP before anything else.
  EXPECT_EQ(As(token, "GET", "/api/v1/devices").body["error"]["code"], "totp_enrolment_required");
  const auto setup = As(token, "POST", "/api/v1/auth/totp/setup");
  ASSERT_EQ(setup.status, 200);
  EXPECT_NE(setup.body["otpauth_uri"].get<std::string>().find("otpauth://totp/"),
            std::string::npos);
  const auto secret = crypto::FromBase32(setup.body["secret"].get<std::string>());
  EXPECT_EQ(As(token, "POST", "/api/v1/auth/totp/confirm", {{"code", "000000"}}).status, 400);
  const int64_t step = std::time(nullptr) / 30;
  ASSERT_EQ(As(token, "POST", "/api/v1/auth/totp/confirm",
               {{"code", crypto::Hotp(secret, uint64_t(step))}})
                .status,
            200);
  EXPECT_EQ(As(token, "GET", "/api/v1/devices").status, 200);
  // From now on the password alone is not enough; a replayed code is refused.
  auto r = Raw("POST", "/api/v1/auth/login",
               json{{"username", "admin"}, {"password", "Gate-Keeper-2026"}}.dump());
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "totp_required");
  r = Raw("POST", "/api/v1/auth/login",
          json{{"username", "admin"},
               {"password", "Gate-Keeper-2026"},
               {"totp", crypto::Hotp(secret, uint64_t(step))}}
              .dump());
  EXPECT_EQ(r->status, 401) << "replayed TOTP accepted";
  r = Raw("POST", "/api/v1/auth/login",
          json{{"username", "admin"},
               {"password", "Gate-Keeper-2026"},
               {"totp", crypto::Hotp(secret, uint64_t(step + 1))}}
              .dump());
  EXPECT_EQ(r->status, 200) << r->body;
  // The old password is no longer accepted, nor reusable.
  EXPECT_EQ(Login("admin", pw).status, 401);
}

TEST_F(SecurityTest, LockoutAfterFiveFailuresSaysUntilWhen) {
  const auto op = UserWithRoles("zhang", {"operator"});
  const std::string pw = passwords_["zhang"];
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Login("zhang", "Wrong-pass-" + std::to_string(i)).status, 401);
  const auto locked = Login("zhang", pw);  // even the right password
  ASSERT_EQ(locked.status, 423) << locked.body;
  EXPECT_EQ(locked.body["error"]["code"], "locked");
  const int64_t until = locked.body["error"]["until_ms"];
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  EXPECT_NEAR(double(until - now), 30.0 * 60 * 1000, 5000.0);
  // The system administrator unlocks it.
  ASSERT_EQ(As(Ready("admin").token, "PATCH", "/api/v1/users/zhang", {{"unlock", true}}).status,
            200);
  const auto unlocked = Login("zhang", pw);
  EXPECT_EQ(unlocked.status, 200) << unlocked.body;
  // The audit administrator's session, before the address is locked below.
  const std::string audit_token = RoleToken({"auditadmin"});
  // Lockout per source address too: twenty failures from one address lock it (the five
  // above count: a successful login does not reset the address's failures).
  for (int i = 0; i < 20; ++i) {
    const int status = Login("ghost" + std::to_string(i), "x-Passw0rd").status;
    EXPECT_TRUE(status == 401 || (i >= 14 && status == 423)) << i << ": " << status;
  }
  EXPECT_EQ(Login("zhang", pw).status, 423);
  // The audit log has the failures and the lockout.
  const auto audit = As(audit_token, "GET", "/api/v1/audit?limit=1000");
  int failures = 0, lockouts = 0;
  for (const auto& a : audit.body["items"]) {
    failures += a["action"] == "auth.login" && a["result"] == "failure";
    lockouts += a["action"] == "auth.lockout";
  }
  EXPECT_GE(failures, 10);
  EXPECT_GE(lockouts, 1);
}

TEST_F(SecurityTest, IdleSessionsExpireAndLogoutEndsThem) {
  SecurityPolicy policy;
  // Wide enough that a loaded CI machine (scrypt on each login and password change) still
  // makes the first call inside the window.
  policy.idle_timeout_ms = 4000;
  StartServer(policy);
  const auto s = UserWithRoles("li", {"viewer"});
  EXPECT_EQ(As(s.token, "GET", "/api/v1/persons").status, 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(4600));
  const auto expired = As(s.token, "GET", "/api/v1/persons");
  EXPECT_EQ(expired.status, 401);
  EXPECT_EQ(expired.body["error"]["code"], "session_expired");
  const auto again = Login("li", passwords_["li"]);
  ASSERT_EQ(again.status, 200);
  const std::string t = again.body["token"];
  EXPECT_EQ(As(t, "POST", "/api/v1/auth/logout").status, 200);
  EXPECT_EQ(As(t, "GET", "/api/v1/persons").status, 401);
}

TEST_F(SecurityTest, RolesCannotBeCombinedAndTokensAreRevocable) {
  const auto sec = Ready("secadmin");
  const auto sys = Ready("admin");
  ASSERT_EQ(
      As(sys.token, "POST", "/api/v1/users", {{"username", "wang"}, {"password", "Temp-Pass-123"}})
          .status,
      201);
  EXPECT_EQ(
      As(sec.token, "PUT", "/api/v1/users/wang/roles", {{"roles", {"sysadmin", "auditadmin"}}})
          .status,
      400);
  // The system administrator creates accounts but cannot grant roles.
  EXPECT_EQ(As(sys.token, "PUT", "/api/v1/users/wang/roles", {{"roles", {"operator"}}}).status,
            403);
  EXPECT_EQ(As(sec.token, "PUT", "/api/v1/users/secadmin/roles", {{"roles", {"operator"}}}).status,
            403);
  const std::string token = RoleToken({"viewer"});
  EXPECT_EQ(As(token, "GET", "/api/v1/persons").status, 200);
  EXPECT_EQ(As(token, "POST", "/api/v1/persons", {{"code", "X1"}, {"name", "x"}}).status, 403);
  const auto list = As(sec.token, "GET", "/api/v1/tokens");
  int64_t id = 0;
  for (const auto& t : list.body["items"])
    if (t["roles"] == json::array({"viewer"})) id = t["id"];
  ASSERT_GT(id, 0);
  ASSERT_EQ(As(sec.token, "POST", "/api/v1/tokens/" + std::to_string(id) + "/revoke").status, 200);
  EXPECT_EQ(As(token, "GET", "/api/v1/persons").status, 401);
}

// Every route of the server, with the permission it must require. A route added without
// a line here fails the test: decide who may call it.
const std::map<std::string, std::string>& ExpectedRules() {
  static const std::map<std::string, std::string> rules = {
      {"GET /healthz", "public"},
      {"GET /api/openapi.json", "public"},
      {"POST /api/v1/auth/login", "public"},
      {"POST /api/v1/device/register", "public"},
      {"GET /api/v1/device/gallery", "device"},
      {"GET /api/v1/device/commands", "device"},
      {"POST /api/v1/device/commands/ack", "device"},
      {"POST /api/v1/device/heartbeat", "device"},
      {"POST /api/v1/device/events", "device"},
      {"GET /api/v1/device/notices", "device"},
      {"GET /api/v1/notices", "events.read"},
      {"GET /api/v1/platform/uplink", "reports.read"},
      {"POST /api/v1/auth/logout", "self"},
      {"GET /api/v1/auth/me", "self"},
      {"POST /api/v1/auth/password", "self"},
      {"POST /api/v1/auth/totp/setup", "self"},
      {"POST /api/v1/auth/totp/confirm", "self"},
      {"GET /api/v1/auth/sessions", "self"},
      {"DELETE /api/v1/auth/sessions/{id}", "self"},
      {"GET /api/v1/users", "users.manage|roles.manage"},
      {"POST /api/v1/users", "users.manage"},
      {"PATCH /api/v1/users/{username}", "users.manage|roles.manage"},
      {"GET /api/v1/admin-changes", "admin.cosign"},
      {"POST /api/v1/admin-changes/{id}/approve", "admin.cosign"},
      {"POST /api/v1/admin-changes/{id}/reject", "admin.cosign"},
      {"GET /api/v1/roles", "roles.manage"},
      {"PUT /api/v1/users/{username}/roles", "roles.manage"},
      {"POST /api/v1/users/{username}/review", "policy.manage"},
      {"GET /api/v1/security/policy", "policy.manage"},
      {"GET /api/v1/tokens", "roles.manage"},
      {"POST /api/v1/tokens", "roles.manage"},
      {"POST /api/v1/tokens/{id}/revoke", "roles.manage"},
      {"POST /api/v1/exports", "export.request"},
      {"GET /api/v1/exports", "self"},
      {"POST /api/v1/exports/{id}/approve", "export.approve"},
      {"POST /api/v1/exports/{id}/reject", "export.approve"},
      {"POST /api/v1/exports/{id}/download", "export.request"},
      {"POST /api/v1/deletions", "archive.write"},
      {"GET /api/v1/deletions", "self"},
      {"GET /api/v1/deletions/{id}", "self"},
      {"POST /api/v1/deletions/{id}/approve", "export.approve"},
      {"POST /api/v1/deletions/{id}/reject", "export.approve"},
      {"GET /api/v1/admin/retention", "maintenance"},
      {"PUT /api/v1/admin/retention", "config.manage"},
      {"GET /api/v1/keys", "keys.manage"},
      {"POST /api/v1/keys/rotate", "keys.manage"},
      {"GET /api/v1/audit", "audit.read"},
      {"POST /api/v1/audit/verify", "audit.read"},
      {"GET /api/v1/audit/export", "audit.read"},
      {"GET /api/v1/sites/{id}/thresholds", "archive.read"},
      {"GET /api/v1/persons", "archive.read"},
      {"POST /api/v1/persons", "archive.write"},
      {"POST /api/v1/persons/batch", "archive.write"},
      {"GET /api/v1/persons/{code}", "archive.read"},
      {"PATCH /api/v1/persons/{code}", "archive.write"},
      {"POST /api/v1/persons/{code}/move-out", "archive.write"},
      {"POST /api/v1/persons/{code}/consents", "archive.write"},
      {"POST /api/v1/persons/{code}/consents/withdraw", "archive.write"},
      {"POST /api/v1/persons/{code}/credentials", "archive.write"},
      {"DELETE /api/v1/persons/{code}/credentials/{id}", "archive.write"},
      {"GET /api/v1/persons/{code}/history", "archive.read"},
      {"GET /api/v1/persons/{code}/removals", "archive.read"},
      {"POST /api/v1/persons/search-by-face", "photos.read"},
      {"POST /api/v1/faces/check", "enrol"},
      {"POST /api/v1/persons/{code}/photos", "enrol"},
      {"GET /api/v1/persons/{code}/photos/{id}", "photos.read"},
      {"DELETE /api/v1/persons/{code}/photos/{id}", "enrol"},
      {"POST /api/v1/persons/{code}/features", "enrol"},
      {"POST /api/v1/imports", "enrol"},
      {"GET /api/v1/imports/{id}", "archive.read"},
      {"POST /api/v1/households/{id}/members", "archive.write"},
      {"GET /api/v1/households/{id}/members", "archive.read"},
      {"DELETE /api/v1/households/{id}/members/{code}", "archive.write"},
      {"POST /api/v1/access-groups/{id}/members", "archive.write"},
      {"GET /api/v1/access-groups/{id}/members", "archive.read"},
      {"PUT /api/v1/access-groups/{id}/doors", "archive.write"},
      {"GET /api/v1/access-groups/{id}/doors", "archive.read"},
      {"POST /api/v1/devices", "devices.manage"},
      {"GET /api/v1/devices", "devices.read"},
      {"GET /api/v1/devices/{id}", "devices.read"},
      {"PATCH /api/v1/devices/{id}", "devices.manage"},
      {"POST /api/v1/devices/{id}/enrolment-code", "devices.manage"},
      {"POST /api/v1/devices/{id}/revoke", "devices.manage"},
      {"POST /api/v1/devices/{id}/commands", "devices.manage"},
      {"GET /api/v1/devices/{id}/commands", "devices.read"},
      {"GET /api/v1/events", "events.read"},
      {"GET /api/v1/events/quarantine", "devices.read"},
      {"GET /api/v1/events/{id}", "events.read"},
      {"GET /api/v1/events/{id}/snapshot", "photos.read"},
      {"GET /api/v1/alarms", "events.read"},
      {"POST /api/v1/alarms/{id}/state", "alarms.handle"},
      {"POST /api/v1/admin/retention/run", "maintenance"},
      {"POST /api/v1/admin/backup", "maintenance"},
      {"POST /api/v1/admin/backup/verify", "maintenance"},
      {"POST /VIID/System/Register", "public"},
      {"POST /VIID/System/UnRegister", "public"},
      {"POST /VIID/System/Keepalive", "public"},
      {"GET /VIID/System/Time", "public"},
      {"POST /VIID/Faces", "public"},
      {"POST /VIID/Anju/LiveFrame", "public"},
      {"POST /api/v1/viid/devices", "devices.manage"},
      {"GET /api/v1/viid/devices", "devices.read"},
      {"DELETE /api/v1/viid/devices/{id}", "devices.manage"},
      {"GET /api/v1/viid/devices/{id}/preview", "photos.read"},
      {"GET /api/v1/captures", "events.read"},
      {"GET /api/v1/captures/latest", "events.read"},
      {"GET /api/v1/captures/{id}", "events.read"},
      {"GET /api/v1/captures/{id}/images/{n}", "photos.read"},
      {"GET /api/v1/viid/devices/{id}/live.jpg", "photos.read"},
      {"GET /api/v1/viid/devices/{id}/live.mjpeg", "photos.read"},
      {"GET /api/v1/captures/{id}/clip", "photos.read"},
      {"GET /api/v1/captures/{id}/clip/{n}.jpg", "photos.read"},
      {"GET /api/v1/strangers", "events.read"},
      {"GET /api/v1/strangers/{id}", "events.read"},
      {"GET /api/v1/alert-rules", "config.manage"},
      {"POST /api/v1/alert-rules", "config.manage"},
      {"PATCH /api/v1/alert-rules/{id}", "config.manage"},
      {"DELETE /api/v1/alert-rules/{id}", "config.manage"},
      {"POST /api/v1/alert-rules/evaluate", "config.manage"},
      {"GET /api/v1/alerts/webhook", "config.manage"},
      {"PUT /api/v1/alerts/webhook", "config.manage"},
      {"GET /api/v1/viid/forward", "config.manage"},
      {"PUT /api/v1/viid/forward", "config.manage"},
      {"POST /api/v1/viid/retention/run", "maintenance"},
      {"GET /api/v1/viid/stats", "devices.read"},
      {"GET /api/v1/events/stream", "events.read"},
      {"GET /api/v1/reports/traffic", "reports.read"},
      {"GET /api/v1/reports/strangers", "reports.read"},
      {"GET /api/v1/reports/alerts", "reports.read"},
  };
  return rules;
}

// The archive's generic resources (sites, buildings, units, rooms, households, access
// groups): GET reads the archive, everything else writes it.
std::string GenericRule(const std::string& method, const std::string& path) {
  for (const char* base : {"/api/v1/sites", "/api/v1/buildings", "/api/v1/units", "/api/v1/rooms",
                           "/api/v1/households", "/api/v1/access-groups"}) {
    const std::string b = base;
    if (path == b || path == b + "/{id}") return method == "GET" ? "archive.read" : "archive.write";
  }
  return "";
}

TEST_F(SecurityTest, AuthorisationMatrixCoversEveryRouteAndRole) {
  std::map<std::string, std::string> tokens;
  for (const auto& role : AllRoles()) tokens[role] = RoleToken({role});
  std::vector<std::string> missing;
  int checked = 0;
  // Administrators call with their sessions: logging out comes last.
  auto routes = server_->Routes();
  std::stable_partition(routes.begin(), routes.end(),
                        [](const auto& r) { return r.second != "/api/v1/auth/logout"; });
  for (const auto& [method, path] : routes) {
    const std::string key = method + " " + path;
    std::string rule;
    if (auto it = ExpectedRules().find(key); it != ExpectedRules().end())
      rule = it->second;
    else
      rule = GenericRule(method, path);
    if (rule.empty()) {
      missing.push_back(key);
      continue;
    }
    std::string url = path;
    for (size_t open; (open = url.find('{')) != std::string::npos;)
      url.replace(open, url.find('}', open) - open + 1, "999999");
    if (path == "/api/v1/events/stream") url += "?wait_s=0";  // else it waits for news
    // Nobody without credentials gets past anything but the public routes.
    if (rule != "public") {
      const auto anon = Raw(method, url, "{}");
      ASSERT_TRUE(anon);
      EXPECT_EQ(anon->status, 401) << key << " without credentials";
    }
    if (rule == "public") continue;
    for (const auto& role : AllRoles()) {
      const auto res = Raw(method, url, "{}", {{"Authorization", "Bearer " + tokens[role]}});
      ASSERT_TRUE(res) << key;
      ++checked;
      if (rule == "device") {
        EXPECT_EQ(res->status, 401) << key << " as " << role << " (devices only)";
        continue;
      }
      bool allowed = rule == "self";
      for (size_t b = 0, e; !allowed && b <= rule.size(); b = e + 1) {
        e = rule.find('|', b);
        if (e == std::string::npos) e = rule.size();
        allowed = RolePermissions(role).count(rule.substr(b, e - b)) > 0;
      }
      if (allowed)
        EXPECT_NE(res->status, 403) << key << " as " << role << ": " << res->body;
      else
        EXPECT_EQ(res->status, 403) << key << " as " << role << " must be refused";
    }
  }
  EXPECT_TRUE(missing.empty()) << "routes without a rule in this test: " << [&] {
    std::string s;
    for (const auto& m : missing) s += "\n  " + m;
    return s;
  }();
  EXPECT_GT(checked, 300);
  // A refusal is audited. (The administrators' sessions ended with the logout route.)
  ready_.erase("auditadmin");
  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=access.denied");
  EXPECT_GT(audit.body["total"].get<int>(), 50);
}

TEST_F(SecurityTest, ExportNeedsAnotherUsersApprovalAndIsEncryptedAndWatermarked) {
  CreatePerson("E1", "导出一");
  CreatePerson("E2", "导出二");
  const auto op = UserWithRoles("liu", {"operator"});
  const auto req = As(op.token, "POST", "/api/v1/exports",
                      {{"kind", "persons"}, {"reason", "月度核查 / monthly check"}});
  ASSERT_EQ(req.status, 201) << req.body;
  const std::string id = std::to_string(req.body["id"].get<int64_t>());
  // Not approved yet: refused.
  auto dl = As(op.token, "POST", "/api/v1/exports/" + id + "/download",
               {{"passphrase", "Export-Pass-1"}});
  EXPECT_EQ(dl.status, 403);
  EXPECT_EQ(dl.body["error"]["code"], "approval_required");
  // The requester cannot approve (no permission); the security administrator can.
  EXPECT_EQ(As(op.token, "POST", "/api/v1/exports/" + id + "/approve").status, 403);
  const auto sec = Ready("secadmin");
  // The approver sees every pending request; a viewer sees none.
  const auto pending = As(sec.token, "GET", "/api/v1/exports");
  ASSERT_EQ(pending.status, 200);
  EXPECT_EQ(pending.body["total"], 1);
  EXPECT_EQ(As(RoleToken({"viewer"}), "GET", "/api/v1/exports").body["total"], 0);
  const auto ok = As(sec.token, "POST", "/api/v1/exports/" + id + "/approve", {{"note", "同意"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body["approver"], "secadmin");
  // Only the requester downloads, once.
  const auto other = UserWithRoles("zhao", {"operator"});
  EXPECT_EQ(As(other.token, "POST", "/api/v1/exports/" + id + "/download",
               {{"passphrase", "Export-Pass-1"}})
                .status,
            403);
  auto res =
      Raw("POST", "/api/v1/exports/" + id + "/download",
          json{{"passphrase", "Export-Pass-1"}}.dump(), {{"Authorization", "Bearer " + op.token}});
  ASSERT_EQ(res->status, 200) << res->body;
  std::string header;
  const auto plain =
      crypto::OpenWithPassphrase("Export-Pass-1", crypto::AsBytes(res->body), &header);
  const std::string csv(plain.begin(), plain.end());
  EXPECT_NE(csv.find("导出一"), std::string::npos);
  EXPECT_NE(csv.find("E2"), std::string::npos);
  EXPECT_NE(csv.find("申请人 liu"), std::string::npos) << "watermark missing";
  EXPECT_EQ(json::parse(header)["requester"], "liu");
  EXPECT_EQ(anju::testing::CodeOf([&] {
              crypto::OpenWithPassphrase("wrong-pass", crypto::AsBytes(res->body), nullptr);
            }),
            ErrorCode::kCrypto);
  EXPECT_EQ(
      As(op.token, "POST", "/api/v1/exports/" + id + "/download", {{"passphrase", "Export-Pass-1"}})
          .status,
      409);
}

TEST_F(SecurityTest, UnusualViewVolumeRaisesAnAlarmAndBlocksTheAccount) {
  SecurityPolicy policy;
  policy.views_per_hour_alarm = 5;
  StartServer(policy);
  CreatePerson("V1", "查看");
  const auto op = UserWithRoles("sun", {"operator"});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(As(op.token, "GET", "/api/v1/persons/V1").status, 200);
  EXPECT_EQ(As(op.token, "GET", "/api/v1/persons/V1").status, 200);  // the 5th: alarm
  const auto blocked = As(op.token, "GET", "/api/v1/persons/V1");
  EXPECT_EQ(blocked.status, 401);  // its sessions were ended
  const auto relog = Login("sun", passwords_["sun"]);
  EXPECT_EQ(relog.status, 423);
  EXPECT_EQ(relog.body["error"]["code"], "blocked_for_review");
  const auto alarms = Api("GET", "/api/v1/alarms");
  bool found = false;
  for (const auto& a : alarms.body["items"]) found |= a["type"] == "data_leak_risk";
  EXPECT_TRUE(found) << alarms.body;
  const auto sec = Ready("secadmin");
  ASSERT_EQ(As(sec.token, "POST", "/api/v1/users/sun/review", {{"note", "核实为正常工作"}}).status,
            200);
  EXPECT_EQ(Login("sun", passwords_["sun"]).status, 200);
  // The views are in the audit log.
  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=view.person");
  EXPECT_GE(audit.body["total"].get<int>(), 5);
}

TEST_F(SecurityTest, HttpsOnlyWithTls13AndTheSelfSignedCertificate) {
  ASSERT_EQ(server_->url().rfind("https://", 0), 0u);
  ASSERT_TRUE(fs::exists(server_->tls_cert_file()));
  EXPECT_EQ(server_->tls_fingerprint(), crypto::CertFingerprint(server_->tls_cert_file()));
  EXPECT_EQ(fs::status(dir_ / "tls" / "server.key").permissions() & fs::perms::group_read,
            fs::perms::none);
  auto ok = Client()->Get("/healthz");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
  // Plain HTTP on the same port gets no answer.
  httplib::Client plain("http://127.0.0.1:" + std::to_string(server_->port()));
  plain.set_read_timeout(3, 0);
  auto bad = plain.Get("/healthz");
  EXPECT_TRUE(!bad || bad->status != 200);
  // A client that does not trust the certificate refuses the connection.
  httplib::Client untrusting(server_->url());
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/healthz"));
  // The certificate survives a restart (same fingerprint).
  const std::string fp = server_->tls_fingerprint();
  StartServer();
  EXPECT_EQ(server_->tls_fingerprint(), fp);
  EXPECT_FALSE(server_->tls_cert_created());
}

}  // namespace
}  // namespace anju::server::testing
