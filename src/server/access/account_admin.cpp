// The administration of accounts: users, roles and sites, co-signed changes to security
// administrators, approvers, risk reviews, offline password resets (R4.2.1.1,
// docs/security.md "Roles").
#include <algorithm>
#include <cctype>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/password.h"
#include "server/access/account_service.h"
#include "server/access/account_support.h"
#include "server/access/rbac.h"
#include "server/audit/audit_log.h"
#include "server/storage/account_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::AccountRepo;

namespace {

storage::UserRow LoadAccount(db::Conn& conn, const std::string& username) {
  auto u = AccountRepo::UserByName(conn, username);
  if (!u) NotFound("user " + username);
  return *u;
}

bool Holds(const std::vector<std::string>& roles, const std::string& role) {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

// A pending change as shown to administrators (never the password hash it carries).
json ChangeJson(const storage::AdminChangeRow& r) {
  json change = json::parse(r.change);
  if (change.contains("password_hash")) {
    change.erase("password_hash");
    change["password"] = "***";
  }
  return {{"id", r.id},
          {"requester", r.requester},
          {"username", r.username},
          {"kind", r.kind},
          {"change", change},
          {"state", r.state},
          {"created_ms", r.created_ms},
          {"approver", r.approver ? json(*r.approver) : json()},
          {"decided_ms", OptJson(r.decided_ms)},
          {"note", r.note}};
}

}  // namespace

json AccountService::UserJson(int64_t user_id) {
  auto conn = db_.Acquire();
  const auto u = AccountRepo::User(conn, user_id);
  if (!u) NotFound("user " + std::to_string(user_id));
  const auto perms = PermissionsOf(u->roles);
  const int64_t now = NowMs();
  return {{"username", u->username},
          {"display_name", u->display_name},
          {"roles", u->roles},
          {"permissions", std::vector<std::string>(perms.begin(), perms.end())},
          {"sites", u->sites},
          {"must_change_password",
           u->must_change || PasswordExpired(u->password_changed_ms, policy_, now)},
          {"password_changed_ms", u->password_changed_ms},
          {"totp_enabled", u->totp_enabled},
          {"totp_required", policy_.totp_for_admins && HasAdminRole(u->roles)},
          {"disabled", u->disabled},
          {"locked_until_ms", u->locked_until_ms > now ? json(u->locked_until_ms) : json()},
          {"blocked_reason", u->blocked_reason},
          {"created_ms", u->created_ms},
          {"last_login_ms", OptJson(u->last_login_ms)}};
}

json AccountService::ListUsers() {
  std::vector<int64_t> ids;
  {
    auto conn = db_.Acquire();
    ids = AccountRepo::UserIdsByName(conn);
  }
  json items = json::array();
  for (int64_t id : ids) items.push_back(UserJson(id));
  return items;
}

json AccountService::CreateUser(const std::string& username, const std::string& display_name,
                                const std::string& password, const Principal& actor) {
  if (username.empty() || username.size() > 64 ||
      !std::all_of(username.begin(), username.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
      }))
    throw Error(ErrorCode::kInvalidArgument,
                "用户名只能包含字母、数字和 . _ - / username: letters, digits, . _ - (1-64)");
  if (auto why = CheckPolicy(username, password, 0); !why.empty())
    throw Error(ErrorCode::kInvalidArgument, why, "weak_password");
  storage::UserRow u;
  u.username = username;
  u.display_name = display_name;
  u.password_hash = crypto::HashPassword(password);
  u.password_changed_ms = u.created_ms = NowMs();
  u.must_change = true;
  u.created_by = actor.name;
  int64_t id = 0;
  {
    auto conn = db_.Acquire();
    if (AccountRepo::UserByName(conn, username))
      throw Error(ErrorCode::kConflict, "用户名已存在 / username taken: " + username);
    db::Transaction tx(conn);
    id = AccountRepo::InsertUser(conn, u);
    AccountRepo::AddPasswordHistory(conn, id, u.password_hash, u.created_ms);
    AuditAuth(conn, actor.name, "user.create", username, actor.source, "success");
    tx.Commit();
  }
  return UserJson(id);
}

void AccountService::ApplyChange(db::Conn& conn, int64_t id, const std::string& username,
                                 const std::string& kind, const json& change,
                                 const std::string& actor, const std::string& source) {
  // Inside the caller's transaction.
  const int64_t now = NowMs();
  if (kind == "roles") {
    AccountRepo::SetRolesAndSites(conn, id, change.at("roles").get<std::vector<std::string>>(),
                                  change.at("sites").get<std::vector<int64_t>>());
    AuditAuth(conn, actor, "user.roles", username, source, "success", change);
    return;
  }
  // A password someone else set is one-time.
  if (change.contains("password_hash"))
    AccountRepo::SetPassword(conn, id, change["password_hash"].get<std::string>(), now, true);
  if (change.contains("disabled"))
    AccountRepo::SetDisabled(conn, id, change["disabled"].get<bool>());
  if (change.value("unlock", false)) AccountRepo::Unlock(conn, id);
  if (change.value("reset_totp", false)) AccountRepo::ResetTotp(conn, id);
  // New credentials or a disabled account end the account's sessions.
  if (change.contains("password_hash") || change.value("reset_totp", false) ||
      change.value("disabled", false))
    AccountRepo::EndSessionsOf(conn, id, now);
  json logged = change;
  if (logged.contains("password_hash")) logged.erase("password_hash"), logged["password"] = "***";
  AuditAuth(conn, actor, "user.update", username, source, "success", logged);
}

json AccountService::ProposeChange(db::Conn& conn, const std::string& username,
                                   const std::string& kind, const json& change,
                                   const Principal& actor) {
  db::Transaction tx(conn);
  const int64_t id =
      AccountRepo::InsertChange(conn, actor.name, username, kind, change.dump(), NowMs());
  const json out = ChangeJson(*AccountRepo::Change(conn, id));
  AuditAuth(conn, actor.name, "admin_change.request", username, actor.source, "pending",
            {{"id", id}, {"kind", kind}, {"change", out["change"]}});
  tx.Commit();
  return {{"request", out},
          {"message",
           "对安全管理员账号的变更须由另一名管理员会签后生效 / a change to a security "
           "administrator's account takes effect once a second administrator approves it"}};
}

json AccountService::UpdateUser(const std::string& username, const json& change,
                                const Principal& actor) {
  RequireUser(actor);
  storage::UserRow target;
  {
    auto conn = db_.Acquire();
    target = LoadAccount(conn, username);
  }
  if (target.id == actor.user_id)
    throw Error(ErrorCode::kPermissionDenied,
                "不能在此修改自己的账号 / you cannot change your own account here (use "
                "/api/v1/auth/password)");
  if (HasAdminRole(target.roles) ? !actor.Can("roles.manage") : !actor.Can("users.manage"))
    throw Error(ErrorCode::kPermissionDenied,
                HasAdminRole(target.roles)
                    ? "管理员账号的凭据只能由安全管理员管理 / only the security administrator "
                      "manages administrators' credentials"
                    : "普通账号由系统管理员管理 / the system administrator manages accounts "
                      "without an administrator role");
  json stored = json::object();
  for (const char* k : {"disabled", "unlock", "reset_totp"})
    if (change.contains(k)) stored[k] = change[k];
  if (change.contains("password")) {
    const std::string pw = change["password"].get<std::string>();
    if (auto why = CheckPolicy(username, pw, target.id); !why.empty())
      throw Error(ErrorCode::kInvalidArgument, why, "weak_password");
    stored["password_hash"] = crypto::HashPassword(pw);
  }
  {
    auto conn = db_.Acquire();
    if (Holds(target.roles, "secadmin"))
      return ProposeChange(conn, username, "credentials", stored, actor);
    db::Transaction tx(conn);
    ApplyChange(conn, target.id, username, "credentials", stored, actor.name, actor.source);
    tx.Commit();
  }
  return UserJson(target.id);
}

json AccountService::SetRoles(const std::string& username, const std::vector<std::string>& roles,
                              const std::vector<int64_t>& sites, const Principal& actor) {
  RequireUser(actor);
  if (auto why = CheckRoleSet(roles); !why.empty()) throw Error(ErrorCode::kInvalidArgument, why);
  storage::UserRow target;
  {
    auto conn = db_.Acquire();
    target = LoadAccount(conn, username);
  }
  // By account id, not by name: a token or a renamed account cannot slip past.
  if (target.id == actor.user_id)
    throw Error(ErrorCode::kPermissionDenied,
                "不能修改自己的角色 / security administrators cannot change their own roles");
  const json change = {{"roles", roles}, {"sites", sites}};
  {
    auto conn = db_.Acquire();
    if (Holds(target.roles, "secadmin") || Holds(roles, "secadmin"))
      return ProposeChange(conn, username, "roles", change, actor);
    db::Transaction tx(conn);
    ApplyChange(conn, target.id, username, "roles", change, actor.name, actor.source);
    tx.Commit();
  }
  return UserJson(target.id);
}

json AccountService::ListAdminChanges() {
  auto conn = db_.Acquire();
  json items = json::array();
  for (const auto& r : AccountRepo::Changes(conn, 200)) items.push_back(ChangeJson(r));
  return items;
}

json AccountService::DecideAdminChange(int64_t id, bool approve, const std::string& note,
                                       const Principal& actor) {
  RequireUser(actor);
  auto conn = db_.Acquire();
  const auto r = AccountRepo::Change(conn, id);
  if (!r) NotFound("admin change " + std::to_string(id));
  if (r->state != "pending") throw Error(ErrorCode::kConflict, "申请已处理 / already " + r->state);
  if (r->requester == actor.name || r->username == actor.name)
    throw Error(ErrorCode::kPermissionDenied,
                "会签须由申请人和被变更账号以外的管理员进行 / a second administrator, neither "
                "the requester nor the account changed, must decide");
  const json change = json::parse(r->change);
  db::Transaction tx(conn);
  if (approve) {
    const auto target = LoadAccount(conn, r->username);
    if (r->kind == "roles")
      if (auto why = CheckRoleSet(change.at("roles").get<std::vector<std::string>>()); !why.empty())
        throw Error(ErrorCode::kInvalidArgument, why);
    ApplyChange(conn, target.id, r->username, r->kind, change,
                r->requester + " (cosigned by " + actor.name + ")", actor.source);
  }
  AccountRepo::DecideChange(conn, id, approve ? "approved" : "rejected", actor.name, NowMs(), note);
  AuditAuth(conn, actor.name, approve ? "admin_change.approve" : "admin_change.reject", r->username,
            actor.source, "success", {{"id", id}, {"note", note}});
  tx.Commit();
  return ChangeJson(*AccountRepo::Change(conn, id));
}

void AccountService::CheckApprover(db::Conn& conn, const std::string& requester,
                                   const Principal& approver) {
  if (approver.kind != "user")
    throw Error(ErrorCode::kPermissionDenied, "接口令牌不能审批 / API tokens cannot approve");
  if (requester == approver.name)
    throw Error(ErrorCode::kPermissionDenied,
                "不能审批自己的申请 / a request needs another user's approval");
  if (requester.rfind("token:", 0) == 0) {
    const auto creator = AccountRepo::TokenCreator(conn, requester.substr(6));
    if (creator && *creator == approver.name)
      throw Error(ErrorCode::kPermissionDenied,
                  "不能审批用自己创建的接口令牌提出的申请 / a request made with a token you "
                  "created needs another user's approval");
  }
}

json AccountService::Review(const std::string& username, const std::string& note,
                            const Principal& actor) {
  if (username.rfind("token:", 0) == 0) {
    auto conn = db_.Acquire();
    db::Transaction tx(conn);
    if (!AccountRepo::SetTokenBlocked(conn, username.substr(6), ""))
      NotFound("API token " + username.substr(6));
    AuditAuth(conn, actor.name, "token.review", username, actor.source, "unblocked",
              {{"note", note}});
    tx.Commit();
    return {{"username", username}, {"blocked_reason", ""}};
  }
  int64_t id = 0;
  {
    auto conn = db_.Acquire();
    id = LoadAccount(conn, username).id;
    db::Transaction tx(conn);
    AccountRepo::SetBlocked(conn, id, "");
    AuditAuth(conn, actor.name, "user.review", username, actor.source, "unblocked",
              {{"note", note}});
    tx.Commit();
  }
  // The counter starts again: the reviewed reads do not trip the warning at the next one.
  state_.Remove("views:" + std::to_string(NowMs() / 3600000) + ":" + username);
  return UserJson(id);
}

std::string AccountService::ResetPassword(const std::string& username, const std::string& actor) {
  int64_t id = 0;
  {
    auto conn = db_.Acquire();
    id = LoadAccount(conn, username).id;
  }
  const std::string pw = OneTimePassword();
  SetPassword(id, pw, true);
  auto conn = db_.Acquire();
  AccountRepo::Unlock(conn, id);
  AuditAuth(conn, actor, "user.reset_password", username, "local", "success");
  return pw;
}

}  // namespace anju::server
