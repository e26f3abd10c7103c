// Logins, sessions, passwords, TOTP, API tokens and the risk warning's counters. The
// administration of accounts (users, roles, co-signed changes) is in account_admin.cpp.
#include "server/access/account_service.h"
#include "core/error.h"

#include <algorithm>
#include <cctype>

#include "core/clock.h"
#include "crypto/bytes.h"
#include "crypto/password.h"
#include "crypto/totp.h"
#include "server/access/account_support.h"
#include "server/access/rbac.h"
#include "server/audit/audit_log.h"
#include "server/common/detailed_error.h"
#include "server/storage/account_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::AccountRepo;

std::string OneTimePassword() {
  // 12 random URL-safe characters plus one of each class the policy asks for.
  std::string b = crypto::ToBase64(crypto::RandomBytes(9));
  for (auto& c : b) {
    if (c == '+') c = 'x';
    if (c == '/') c = 'y';
  }
  return "Aj-" + b + "7";
}

AccountService::AccountService(db::Db& db, const crypto::DataKey& key, SecurityPolicy policy,
                               runtime::SharedState& state)
    : db_(db), key_(key), policy_(policy), state_(state) {}

std::vector<std::pair<std::string, std::string>> AccountService::Bootstrap() {
  auto conn = db_.Acquire();
  if (AccountRepo::CountUsers(conn) > 0) return {};
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<std::tuple<std::string, std::string, std::string>> admins = {
      {"admin", "系统管理员 / system administrator", "sysadmin"},
      {"secadmin", "安全管理员 / security administrator", "secadmin"},
      {"auditadmin", "审计管理员 / audit administrator", "auditadmin"}};
  db::Transaction tx(conn);
  for (const auto& [name, display, role] : admins) {
    const std::string pw = OneTimePassword();
    storage::UserRow u;
    u.username = name;
    u.display_name = display;
    u.password_hash = crypto::HashPassword(pw);
    u.password_changed_ms = u.created_ms = NowMs();
    u.must_change = true;
    u.roles = {role};
    u.created_by = "system";
    AccountRepo::InsertUser(conn, u);
    Audit(conn, "system", "user.create", name, {{"roles", {role}}, {"initial", true}});
    out.emplace_back(name, pw);
  }
  tx.Commit();
  return out;
}

void AccountService::EnsureToken(const std::string& name, const std::string& token,
                                 const std::vector<std::string>& roles, int64_t expires_ms) {
  if (auto why = CheckTokenRoles(roles); !why.empty()) throw Error(ErrorCode::kInternal, why);
  auto conn = db_.Acquire();
  AccountRepo::UpsertToken(conn, name, TokenHash(token), roles, NowMs(), expires_ms);
}

// ---- failures and lockouts ---------------------------------------------------------------

bool AccountService::CountFailure(const std::string& key, int limit) {
  const std::chrono::milliseconds window(policy_.lockout_ms);
  // The window starts at the first failure and lasts lockout_ms; a success does not reset it.
  if (state_.Add("login-failures:" + key, 1, window) < limit) return false;
  state_.Remove("login-failures:" + key);
  state_.Put("login-lock:" + key, std::to_string(NowMs() + policy_.lockout_ms), window);
  return true;
}

int64_t AccountService::LockedUntil(const std::string& key) const {
  const auto v = state_.Get("login-lock:" + key);
  return v ? std::stoll(*v) : 0;
}

void AccountService::Fail(int64_t user_id, const std::string& username, const std::string& source,
                          const std::string& why) {
  const int64_t now = NowMs();
  CountFailure("source:" + source, policy_.source_max_failures);
  // An unknown name locks like an account, so a 423 does not tell which names exist.
  bool locked = user_id <= 0 && CountFailure("name:" + username, policy_.max_failures);
  auto conn = db_.Acquire();
  if (user_id > 0 && AccountRepo::AddFailure(conn, user_id) >= policy_.max_failures) {
    AccountRepo::Lock(conn, user_id, now + policy_.lockout_ms);
    locked = true;
  }
  AuditAuth(conn, username.empty() ? "-" : username, "auth.login", username, source, "failure",
            {{"reason", why}});
  if (locked)
    AuditAuth(conn, "system", "auth.lockout", username, source, "locked",
              {{"until_ms", now + policy_.lockout_ms}});
}

// ---- sessions ----------------------------------------------------------------------------

LoginResult AccountService::Login(const std::string& username, const std::string& password,
                                  const std::string& totp, const std::string& source) {
  const int64_t now = NowMs();
  if (const int64_t until = LockedUntil("source:" + source); until > now) Locked(until, "来源地址");
  std::optional<storage::UserRow> user;
  {
    auto conn = db_.Acquire();
    user = AccountRepo::UserByName(conn, username);
  }
  const int64_t id = user ? user->id : 0;
  const int64_t locked_until = user ? user->locked_until_ms : LockedUntil("name:" + username);
  if (locked_until > now) {
    auto conn = db_.Acquire();
    AuditAuth(conn, username, "auth.login", username, source, "locked");
    Locked(locked_until, "账号");
  }
  // Verify outside the database lock (scrypt takes tens of milliseconds); an unknown user
  // costs the same time as a wrong password.
  static const std::string kDummy = crypto::HashPassword("anju-dummy-password");
  const bool ok = crypto::VerifyPassword(password, user ? user->password_hash : kDummy) && user;
  if (!ok) {
    Fail(id, username, source, user ? "wrong password" : "unknown user");
    throw Error(ErrorCode::kUnauthenticated, "用户名或口令错误 / wrong username or password");
  }
  if (user->disabled) {
    auto conn = db_.Acquire();
    AuditAuth(conn, username, "auth.login", username, source, "disabled");
    throw Error(ErrorCode::kPermissionDenied, "账号已停用 / account disabled", "account_disabled");
  }
  if (!user->blocked_reason.empty()) {
    auto conn = db_.Acquire();
    AuditAuth(conn, username, "auth.login", username, source, "blocked");
    throw DetailedError(ErrorCode::kLocked,
                        "账号因风险告警被冻结，待安全管理员复核 / account blocked by a risk "
                        "alarm until a security administrator reviews it: " +
                            user->blocked_reason,
                        "blocked_for_review", {{"until_ms", nullptr}});
  }
  if (user->totp_enabled) {
    if (totp.empty())
      throw Error(ErrorCode::kUnauthenticated, "请输入动态口令 / TOTP code required",
                  "totp_required");
    std::optional<int64_t> step;
    try {
      const auto secret =
          crypto::Open(key_, user->totp_sealed.value_or(crypto::Bytes{}), TotpAad(username));
      step = crypto::VerifyTotp(secret, totp, now / 1000);
    } catch (const Error&) {
      step.reset();
    }
    if (!step || *step <= user->totp_last_step) {
      Fail(id, username, source, step ? "replayed TOTP" : "wrong TOTP");
      throw Error(ErrorCode::kUnauthenticated, "动态口令错误 / wrong or reused TOTP code",
                  "totp_required");
    }
    auto conn = db_.Acquire();
    AccountRepo::SetTotpLastStep(conn, id, *step);
  }
  // A success does not clear the address's failures: one valid account must not reopen
  // guessing at others from the same address.
  LoginResult r;
  r.token = NewToken("s.");
  r.expires_ms = now + policy_.session_max_ms;
  {
    auto conn = db_.Acquire();
    db::Transaction tx(conn);
    AccountRepo::LoggedIn(conn, id, now);
    AccountRepo::InsertSession(conn, TokenHash(r.token), id, source, now, r.expires_ms);
    AuditAuth(conn, username, "auth.login", username, source, "success");
    tx.Commit();
  }
  r.user = UserJson(id);
  return r;
}

Principal AccountService::Authenticate(const std::string& bearer, const std::string& source) {
  if (bearer.empty())
    throw Error(ErrorCode::kUnauthenticated,
                "请先登录 / log in first (Authorization: Bearer <session or API token>)");
  const std::string h = TokenHash(bearer);
  const int64_t now = NowMs();
  Principal p;
  p.source = source;
  auto conn = db_.Acquire();
  if (const auto t = AccountRepo::TokenByHash(conn, h)) {
    if (t->revoked_ms)
      throw Error(ErrorCode::kUnauthenticated, "接口令牌已吊销 / API token revoked");
    if (!t->expires_ms || *t->expires_ms <= now)
      throw Error(ErrorCode::kUnauthenticated, "接口令牌已过期 / API token expired",
                  "token_expired");
    if (!t->blocked_reason.empty())
      throw DetailedError(ErrorCode::kLocked,
                          "接口令牌因风险告警被冻结 / API token blocked by a risk alarm",
                          "blocked_for_review", {{"until_ms", nullptr}});
    p.kind = "token";
    p.name = "token:" + t->name;
    // Integration roles only; a stored administrator role (from before that rule) grants
    // nothing.
    for (const auto& role : t->roles)
      if (IsIntegrationRole(role)) p.roles.push_back(role);
    p.permissions = PermissionsOf(p.roles);
    p.sites = t->sites;
    p.creator = t->created_by;
    if (!t->last_used_ms || now - *t->last_used_ms > 60000)
      AccountRepo::TouchToken(conn, t->id, now);
    return p;
  }
  const auto found = AccountRepo::SessionByHash(conn, h);
  if (!found)
    throw Error(ErrorCode::kUnauthenticated,
                "会话无效，请重新登录 / unknown session: log in again");
  const auto& [s, u] = *found;
  if (s.revoked_ms)
    throw Error(ErrorCode::kUnauthenticated, "会话已结束，请重新登录 / session ended: log in again",
                "session_expired");
  if (now - s.last_ms > policy_.idle_timeout_ms || now > s.expires_ms) {
    AccountRepo::EndSession(conn, s.id, now);
    throw Error(ErrorCode::kUnauthenticated,
                "会话超时，请重新登录 / session timed out: log in again", "session_expired");
  }
  if (u.disabled)
    throw Error(ErrorCode::kUnauthenticated, "账号已停用 / account disabled", "session_expired");
  if (!u.blocked_reason.empty())
    throw DetailedError(ErrorCode::kLocked,
                        "账号因风险告警被冻结 / account blocked by a risk alarm",
                        "blocked_for_review", {{"until_ms", nullptr}});
  p.kind = "user";
  p.session_id = s.id;
  p.user_id = u.id;
  p.name = u.username;
  p.roles = u.roles;
  p.sites = u.sites;
  p.permissions = PermissionsOf(p.roles);
  if (u.must_change || PasswordExpired(u.password_changed_ms, policy_, now))
    p.restriction = "password_change_required";
  else if (policy_.totp_for_admins && HasAdminRole(p.roles) && !u.totp_enabled)
    p.restriction = "totp_enrolment_required";
  if (now - s.last_ms > 1000) AccountRepo::TouchSession(conn, s.id, now);
  return p;
}

void AccountService::Logout(const Principal& p) {
  if (p.session_id == 0) return;
  auto conn = db_.Acquire();
  AccountRepo::EndSession(conn, p.session_id, NowMs());
  AuditAuth(conn, p.name, "auth.logout", p.name, p.source, "success");
}

nlohmann::json AccountService::ListSessions(int64_t user_id) {
  auto conn = db_.Acquire();
  json items = json::array();
  for (const auto& s : AccountRepo::OpenSessions(conn, user_id, NowMs() - policy_.idle_timeout_ms))
    items.push_back({{"id", s.id},
                     {"source", s.source},
                     {"created_ms", s.created_ms},
                     {"last_ms", s.last_ms},
                     {"expires_ms", s.expires_ms}});
  return items;
}

void AccountService::RevokeSession(int64_t session_id, const Principal& actor) {
  auto conn = db_.Acquire();
  const auto s = AccountRepo::Session(conn, session_id);
  if (!s) NotFound("session " + std::to_string(session_id));
  // One's own sessions, or anyone's with users.manage.
  if (s->user_id != actor.user_id && !actor.Can("users.manage"))
    throw Error(ErrorCode::kPermissionDenied, "只能结束自己的会话 / only your own sessions");
  AccountRepo::EndSession(conn, session_id, NowMs());
  AuditAuth(conn, actor.name, "session.revoke", std::to_string(session_id), actor.source,
            "success");
}

// ---- passwords and TOTP ------------------------------------------------------------------

std::string AccountService::CheckPolicy(const std::string& username, const std::string& password,
                                        int64_t user_id) {
  if (auto why = PasswordRuleViolation(username, password); !why.empty()) return why;
  if (user_id > 0 && policy_.password_history > 0) {
    std::vector<std::string> old;
    {
      auto conn = db_.Acquire();
      old = AccountRepo::RecentPasswordHashes(conn, user_id, policy_.password_history);
    }
    for (const auto& h : old)
      if (crypto::VerifyPassword(password, h))
        return "不能重复使用最近 " + std::to_string(policy_.password_history) +
               " 次的口令 / must differ from the last " + std::to_string(policy_.password_history) +
               " passwords";
  }
  return "";
}

void AccountService::SetPassword(int64_t user_id, const std::string& password, bool must_change) {
  const std::string hash = crypto::HashPassword(password);
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  AccountRepo::SetPassword(conn, user_id, hash, NowMs(), must_change);
  tx.Commit();
}

void AccountService::ChangePassword(const Principal& p, const std::string& old_password,
                                    const std::string& new_password) {
  if (p.kind != "user")
    throw Error(ErrorCode::kInvalidArgument, "接口令牌没有口令 / API tokens have no password");
  std::string hash;
  {
    auto conn = db_.Acquire();
    const auto u = AccountRepo::User(conn, p.user_id);
    if (!u) throw Error(ErrorCode::kUnauthenticated, "账号不存在 / no such account");
    hash = u->password_hash;
  }
  if (!crypto::VerifyPassword(old_password, hash)) {
    Fail(p.user_id, p.name, p.source, "wrong old password");
    throw Error(ErrorCode::kUnauthenticated, "原口令错误 / wrong current password");
  }
  if (old_password == new_password)
    throw Error(ErrorCode::kInvalidArgument, "新口令不能与原口令相同 / choose a new password",
                "weak_password");
  if (auto why = CheckPolicy(p.name, new_password, p.user_id); !why.empty())
    throw Error(ErrorCode::kInvalidArgument, why, "weak_password");
  SetPassword(p.user_id, new_password, false);
  auto conn = db_.Acquire();
  // Other sessions of the account end with the old password.
  AccountRepo::EndSessionsOf(conn, p.user_id, NowMs(), p.session_id);
  AuditAuth(conn, p.name, "auth.password_change", p.name, p.source, "success");
}

json AccountService::StartTotp(const Principal& p) {
  if (p.kind != "user") throw Error(ErrorCode::kInvalidArgument, "仅限用户账号 / users only");
  const auto secret = crypto::RandomBytes(20);
  auto conn = db_.Acquire();
  const auto u = AccountRepo::User(conn, p.user_id);
  if (u && u->totp_enabled)
    throw Error(ErrorCode::kConflict,
                "动态口令已绑定；请安全管理员重置 / TOTP already enrolled (ask for a reset)");
  AccountRepo::StartTotp(conn, p.user_id, crypto::Seal(key_, secret, TotpAad(p.name)));
  AuditAuth(conn, p.name, "auth.totp_setup", p.name, p.source, "started");
  return {{"secret", crypto::ToBase32(secret)},
          {"otpauth_uri", crypto::TotpUri("anju", p.name, secret)}};
}

void AccountService::ConfirmTotp(const Principal& p, const std::string& code) {
  auto conn = db_.Acquire();
  const auto u = AccountRepo::User(conn, p.user_id);
  if (!u || !u->totp_sealed)
    throw Error(ErrorCode::kConflict, "请先获取密钥 / call /api/v1/auth/totp/setup first");
  if (u->totp_enabled) throw Error(ErrorCode::kConflict, "动态口令已绑定 / TOTP already enrolled");
  const auto secret = crypto::Open(key_, *u->totp_sealed, TotpAad(p.name));
  const auto step = crypto::VerifyTotp(secret, code, NowMs() / 1000);
  if (!step) {
    AuditAuth(conn, p.name, "auth.totp_confirm", p.name, p.source, "failure");
    throw Error(ErrorCode::kInvalidArgument, "动态口令错误 / wrong TOTP code");
  }
  AccountRepo::EnableTotp(conn, p.user_id, *step);
  AuditAuth(conn, p.name, "auth.totp_confirm", p.name, p.source, "success");
}

// ---- API tokens --------------------------------------------------------------------------

json AccountService::ListTokens() {
  auto conn = db_.Acquire();
  json items = json::array();
  for (const auto& t : AccountRepo::Tokens(conn))
    items.push_back({{"id", t.id},
                     {"name", t.name},
                     {"roles", t.roles},
                     {"created_by", t.created_by},
                     {"created_ms", t.created_ms},
                     {"last_used_ms", OptJson(t.last_used_ms)},
                     {"revoked_ms", OptJson(t.revoked_ms)},
                     {"expires_ms", OptJson(t.expires_ms)},
                     {"sites", t.sites},
                     {"blocked_reason", t.blocked_reason}});
  return items;
}

json AccountService::CreateToken(const std::string& name, const std::vector<std::string>& roles,
                                 const std::vector<int64_t>& sites, int ttl_days,
                                 const Principal& actor) {
  RequireUser(actor);
  if (auto why = CheckTokenRoles(roles); !why.empty())
    throw Error(ErrorCode::kInvalidArgument, why);
  if (name.empty() || name.size() > 64)
    throw Error(ErrorCode::kInvalidArgument, "名称 1-64 个字符 / name: 1-64 characters");
  if (ttl_days < 1 || ttl_days > 365)
    throw Error(ErrorCode::kInvalidArgument, "有效期 1-365 天 / expires_in_days: 1-365");
  // Bound to the creator's scope: a limited creator cannot mint a token that sees more.
  std::vector<int64_t> scope = sites;
  if (!actor.sites.empty()) {
    if (scope.empty()) scope = actor.sites;
    for (int64_t site : scope)
      if (std::find(actor.sites.begin(), actor.sites.end(), site) == actor.sites.end())
        throw Error(ErrorCode::kPermissionDenied,
                    "令牌的小区须在本人的权限范围内 / a token's sites must be within yours");
  }
  const std::string token = NewToken("t.");
  storage::TokenRow t;
  t.name = name;
  t.roles = roles;
  t.created_by = actor.name;
  t.created_ms = NowMs();
  t.expires_ms = t.created_ms + int64_t(ttl_days) * kDayMs;
  t.sites = scope;
  auto conn = db_.Acquire();
  if (AccountRepo::TokenNameTaken(conn, name))
    throw Error(ErrorCode::kConflict, "名称已存在 / name taken: " + name);
  db::Transaction tx(conn);
  const int64_t id = AccountRepo::InsertToken(conn, t, TokenHash(token));
  AuditAuth(conn, actor.name, "token.create", name, actor.source, "success",
            {{"roles", roles}, {"sites", scope}, {"expires_ms", *t.expires_ms}});
  tx.Commit();
  return {{"id", id},
          {"name", name},
          {"roles", roles},
          {"sites", scope},
          {"expires_ms", *t.expires_ms},
          {"token", token}};
}

void AccountService::RevokeToken(int64_t id, const Principal& actor) {
  auto conn = db_.Acquire();
  if (!AccountRepo::RevokeToken(conn, id, NowMs()))
    NotFound("active API token " + std::to_string(id));
  AuditAuth(conn, actor.name, "token.revoke", std::to_string(id), actor.source, "success");
}

// ---- the risk warning (R4.2.2.1) ---------------------------------------------------------

bool AccountService::CountViews(const Principal& p, int64_t n) {
  if (policy_.views_per_hour_alarm <= 0 || n <= 0) return false;
  const int64_t hour = NowMs() / 3600000;
  // A token's reads count for the token and for all the tokens its creator made together,
  // so minting more tokens does not multiply the allowance; crossing the family's
  // threshold blocks every token of that creator (not the creator's own account).
  std::vector<std::string> counted = {p.name};
  if (p.kind == "token" && !p.creator.empty() && p.creator != "system")
    counted.push_back("tokens-of:" + p.creator);
  std::vector<std::string> crossed;
  for (const auto& name : counted) {
    const int64_t count =
        state_.Add("views:" + std::to_string(hour) + ":" + name, n, std::chrono::hours(1));
    const int64_t limit = policy_.views_per_hour_alarm;
    if (count - n < limit && count >= limit) crossed.push_back(name);
  }
  if (crossed.empty()) return false;
  const std::string why = "1 小时内查看/导出 " + std::to_string(policy_.views_per_hour_alarm) +
                          " 条以上 / more than " + std::to_string(policy_.views_per_hour_alarm) +
                          " archive or photo reads within an hour";
  bool blocked = false;
  for (const auto& name : crossed) blocked |= Block(name, why, p);
  return blocked;
}

bool AccountService::CountDistinct(const Principal& p, const std::string& kind,
                                   const std::vector<std::string>& keys) {
  if (policy_.views_per_hour_alarm <= 0) return false;
  const std::string prefix =
      "seen:" + std::to_string(NowMs() / 3600000) + ":" + p.name + ":" + kind + ":";
  int64_t fresh = 0;
  for (const auto& k : keys) fresh += state_.PutIfAbsent(prefix + k, "1", std::chrono::hours(1));
  return CountViews(p, fresh);
}

bool AccountService::Block(const std::string& name, const std::string& why, const Principal& p) {
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  if (name.rfind("token:", 0) == 0) {
    AccountRepo::SetTokenBlocked(conn, name.substr(6), why);
  } else if (name.rfind("tokens-of:", 0) == 0) {
    AccountRepo::BlockTokensOf(conn, name.substr(10), why);
  } else {
    const auto u = AccountRepo::UserByName(conn, name);
    if (!u) return false;
    AccountRepo::SetBlocked(conn, u->id, why);
    AccountRepo::EndSessionsOf(conn, u->id, NowMs());
  }
  AuditAuth(conn, "system", "risk.block", name, p.source, "blocked",
            {{"reason", why}, {"via", p.name}});
  tx.Commit();
  return true;
}

}  // namespace anju::server
