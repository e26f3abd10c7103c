// The HTTP shape of accounts (access/account_service.h): login, logout, password and TOTP
// of one's own account; users, roles and sites, co-signed changes to security
// administrators, API tokens and the security policy (R4.2.1.1, docs/security.md).
#include <nlohmann/json.hpp>

#include "server/access/account_service.h"
#include "server/access/rbac.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

namespace {

std::vector<std::string> Strings(const json& j) {
  return j.get<std::vector<std::string>>();
}

}  // namespace

void RegisterSessionHandlers(Router& router, AccountService& accounts) {
  // ---- sessions ------------------------------------------------------------------------
  router
      .Add("POST", "/api/v1/auth/login", "auth", Auth::kNone,
           "Log in: 200 with a session token; 401 wrong credentials or TOTP needed; 423 locked "
           "(with until_ms)",
           [&accounts](Request& r) {
             const auto res = accounts.Login(r.body.at("username").get<std::string>(),
                                             r.body.at("password").get<std::string>(),
                                             r.body.value("totp", ""), r.http.remote_addr);
             return Reply::Json({{"token", res.token},
                                 {"expires_ms", res.expires_ms},
                                 {"idle_timeout_s", accounts.policy().idle_timeout_ms / 1000},
                                 {"user", res.user}});
           })
      .Body(Obj({Req("username", Str().MaxLength(64)), Req("password", Str().MaxLength(256)),
                 Opt("totp", Str("6-digit code (administrators)").MaxLength(16))}));

  router.Add("POST", "/api/v1/auth/logout", "auth", Auth::kAdmin, kPermSelf, "End this session",
             [&accounts](Request& r) {
               accounts.Logout(r.principal);
               return Reply::Json({{"ok", true}});
             });

  router.Add("GET", "/api/v1/auth/me", "auth", Auth::kAdmin, kPermSelf,
             "The logged-in user (roles, permissions, what must happen first)",
             [&accounts](Request& r) {
               if (r.principal.kind != "user")
                 return Reply::Json({{"username", r.principal.name},
                                     {"roles", r.principal.roles},
                                     {"permissions", r.principal.permissions},
                                     {"must_change_password", false},
                                     {"totp_required", false},
                                     {"totp_enabled", false}});
               json u = accounts.UserJson(r.principal.user_id);
               u["restriction"] = r.principal.restriction;
               return Reply::Json(u);
             });

  router
      .Add("POST", "/api/v1/auth/password", "auth", Auth::kAdmin, kPermSelf,
           "Change one's password (policy: ≥ 8 characters, 3 classes, not a recent one)",
           [&accounts](Request& r) {
             accounts.ChangePassword(r.principal, r.body.at("old_password").get<std::string>(),
                                     r.body.at("new_password").get<std::string>());
             return Reply::Json(accounts.UserJson(r.principal.user_id));
           })
      .Body(Obj(
          {Req("old_password", Str().MaxLength(256)), Req("new_password", Str().MaxLength(256))}));

  router.Add("POST", "/api/v1/auth/totp/setup", "auth", Auth::kAdmin, kPermSelf,
             "Start TOTP enrolment: a secret and otpauth URI for an authenticator app",
             [&accounts](Request& r) { return Reply::Json(accounts.StartTotp(r.principal)); });

  router
      .Add("POST", "/api/v1/auth/totp/confirm", "auth", Auth::kAdmin, kPermSelf,
           "Finish TOTP enrolment with a current code",
           [&accounts](Request& r) {
             accounts.ConfirmTotp(r.principal, r.body.at("code").get<std::string>());
             return Reply::Json(accounts.UserJson(r.principal.user_id));
           })
      .Body(Obj({Req("code", Str().MaxLength(16))}));

  router.Add("GET", "/api/v1/auth/sessions", "auth", Auth::kAdmin, kPermSelf, "One's open sessions",
             [&accounts](Request& r) {
               return Reply::Json({{"items", accounts.ListSessions(r.principal.user_id)}});
             });
  router.Add("DELETE", "/api/v1/auth/sessions/{id}", "auth", Auth::kAdmin, kPermSelf,
             "End a session (one's own; any with users.manage)", [&accounts](Request& r) {
               accounts.RevokeSession(std::stoll(r.Path("id")), r.principal);
               return Reply::Json({{"ok", true}});
             });
}

void RegisterUserHandlers(Router& router, AccountService& accounts, bool tls) {
  // ---- users (sysadmin) and roles (secadmin) ---------------------------------------------
  router
      .Add("GET", "/api/v1/users", "users", Auth::kAdmin, "users.manage",
           "User accounts (the security administrator reads them to grant roles)",
           [&accounts](Request&) {
             return Reply::Json({{"items", accounts.ListUsers()}});
           })
      .OrPerm("roles.manage");
  router.Add("GET", "/api/v1/roles", "users", Auth::kAdmin, "roles.manage",
             "Roles and their permissions", [](Request&) {
               json roles = json::array();
               for (const auto& role : AllRoles())
                 roles.push_back({{"role", role},
                                  {"admin", IsAdminRole(role)},
                                  {"permissions", RolePermissions(role)}});
               json perms = json::array();
               for (const auto& [p, d] : AllPermissions())
                 perms.push_back({{"permission", p}, {"description", d}});
               return Reply::Json({{"roles", roles}, {"permissions", perms}});
             });
  router
      .Add("POST", "/api/v1/users", "users", Auth::kAdmin, "users.manage",
           "Create an account (no roles until a security administrator grants them; the "
           "password is one-time)",
           [&accounts](Request& r) {
             return Reply::Json(
                 accounts.CreateUser(r.body.at("username").get<std::string>(),
                                     r.body.value("display_name", ""),
                                     r.body.at("password").get<std::string>(), r.principal),
                 201);
           })
      .Body(Obj({Req("username", Str().MaxLength(64)), Opt("display_name", Str().MaxLength(100)),
                 Req("password", Str("one-time password").MaxLength(256))}));
  router
      .Add("PATCH", "/api/v1/users/{username}", "users", Auth::kAdmin, "users.manage",
           "Disable / enable, unlock, set a one-time password, reset TOTP (users.manage for "
           "accounts without an administrator role, roles.manage for administrators'; 202 "
           "when a change to a security administrator waits for a second administrator)",
           [&accounts](Request& r) {
             json out = accounts.UpdateUser(r.Path("username"), r.body, r.principal);
             return Reply::Json(out, out.contains("request") ? 202 : 200);
           })
      .OrPerm("roles.manage")
      .Body(Obj({Opt("disabled", Bool()), Opt("unlock", Bool()),
                 Opt("password", Str().MaxLength(256)), Opt("reset_totp", Bool())}));
  router
      .Add("PUT", "/api/v1/users/{username}/roles", "users", Auth::kAdmin, "roles.manage",
           "Grant roles and sites (an account holds at most one administrator role; 202 when "
           "granting or taking away secadmin waits for a second administrator)",
           [&accounts](Request& r) {
             std::vector<int64_t> sites;
             if (r.body.contains("sites")) sites = r.body["sites"].get<std::vector<int64_t>>();
             json out = accounts.SetRoles(r.Path("username"), Strings(r.body.at("roles")), sites,
                                          r.principal);
             return Reply::Json(out, out.contains("request") ? 202 : 200);
           })
      .Body(Obj({Req("roles", Arr(Str().Enum(AllRoles()))), Opt("sites", Arr(Int()))}));
  router
      .Add("POST", "/api/v1/users/{username}/review", "users", Auth::kAdmin, "policy.manage",
           "Lift a risk block after review",
           [&accounts](Request& r) {
             return Reply::Json(
                 accounts.Review(r.Path("username"), r.body.value("note", ""), r.principal));
           })
      .Body(Obj({Req("note", Str().MaxLength(1000))}));

  // ---- changes to a security administrator, co-signed (R4.2.1.1) --------------------------
  router.Add("GET", "/api/v1/admin-changes", "users", Auth::kAdmin, "admin.cosign",
             "Changes to security administrators' accounts and their co-signatures",
             [&accounts](Request&) {
               return Reply::Json({{"items", accounts.ListAdminChanges()}});
             });
  for (const std::string decision : {"approve", "reject"})
    router
        .Add("POST", "/api/v1/admin-changes/{id}/" + decision, "users", Auth::kAdmin,
             "admin.cosign",
             decision == "approve"
                 ? "Co-sign a change to a security administrator (another administrator than "
                   "the requester and the account changed); it takes effect"
                 : "Refuse a change to a security administrator",
             [&accounts, decision](Request& r) {
               return Reply::Json(
                   accounts.DecideAdminChange(std::stoll(r.Path("id")), decision == "approve",
                                              r.body.value("note", ""), r.principal));
             })
        .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- API tokens (secadmin) -------------------------------------------------------------
  router.Add("GET", "/api/v1/tokens", "users", Auth::kAdmin, "roles.manage",
             "API tokens for integrations", [&accounts](Request&) {
               return Reply::Json({{"items", accounts.ListTokens()}});
             });
  router
      .Add("POST", "/api/v1/tokens", "users", Auth::kAdmin, "roles.manage",
           "Create an API token (shown once) with integration roles (operator, viewer, "
           "installer), limited to sites within the creator's, expiring after 1–365 days",
           [&accounts](Request& r) {
             std::vector<int64_t> sites;
             if (r.body.contains("sites")) sites = r.body["sites"].get<std::vector<int64_t>>();
             return Reply::Json(
                 accounts.CreateToken(r.body.at("name").get<std::string>(),
                                      Strings(r.body.at("roles")), sites,
                                      r.body.value("expires_in_days", 90), r.principal),
                 201);
           })
      .Body(Obj({Req("name", Str().MaxLength(64)), Req("roles", Arr(Str().Enum(AllRoles()))),
                 Opt("sites", Arr(Int())), Opt("expires_in_days", Int("1–365, default 90"))}));
  router.Add("POST", "/api/v1/tokens/{id}/revoke", "users", Auth::kAdmin, "roles.manage",
             "Revoke an API token", [&accounts](Request& r) {
               accounts.RevokeToken(std::stoll(r.Path("id")), r.principal);
               return Reply::Json({{"ok", true}});
             });

  // ---- security policy (secadmin reads it; the config file sets it) ----------------------
  router.Add("GET", "/api/v1/security/policy", "users", Auth::kAdmin, "policy.manage",
             "Lockout, session, password and risk-warning settings", [&accounts, tls](Request&) {
               const auto& p = accounts.policy();
               return Reply::Json({{"max_failures", p.max_failures},
                                   {"lockout_s", p.lockout_ms / 1000},
                                   {"source_max_failures", p.source_max_failures},
                                   {"idle_timeout_s", p.idle_timeout_ms / 1000},
                                   {"session_max_s", p.session_max_ms / 1000},
                                   {"password_max_age_days", p.password_max_age_days},
                                   {"password_history", p.password_history},
                                   {"totp_for_admins", p.totp_for_admins},
                                   {"views_per_hour_alarm", p.views_per_hour_alarm},
                                   {"tls", tls}});
             });
}

}  // namespace anju::server
