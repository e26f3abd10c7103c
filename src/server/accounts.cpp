#include "server/accounts.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "crypto/bytes.h"
#include "crypto/password.h"
#include "crypto/sm3.h"
#include "crypto/totp.h"
#include "protocol/api_error.h"
#include "server/audit.h"
#include "server/rbac.h"

namespace anju::server {

using nlohmann::json;
using protocol::ApiError;

namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000;

std::string TokenHash(const std::string& token) {
  return crypto::Sm3Hex(std::string_view(token));
}

std::string NewToken(const char* prefix) {
  std::string b = crypto::ToBase64(crypto::RandomBytes(32));
  for (auto& c : b) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  b.erase(std::remove(b.begin(), b.end(), '='), b.end());
  return prefix + b;
}

std::string IsoTime(int64_t ms) {
  const std::time_t t = std::time_t(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

[[noreturn]] void NotFound(const std::string& what) {
  throw ApiError(404, "not_found", "不存在 / not found: " + what);
}

[[noreturn]] void Locked(int64_t until_ms, const std::string& what) {
  throw DetailedApiError(423, "locked",
                         what + "已锁定至 " + IsoTime(until_ms) + " / " +
                             (what == "账号" ? "account" : "address") + " locked until " +
                             IsoTime(until_ms),
                         {{"until_ms", until_ms}});
}

std::vector<std::string> RolesOf(const std::string& text) {
  try {
    return json::parse(text).get<std::vector<std::string>>();
  } catch (const json::exception&) {
    return {};
  }
}

std::vector<int64_t> SitesOf(const std::string& text) {
  try {
    return json::parse(text).get<std::vector<int64_t>>();
  } catch (const json::exception&) {
    return {};
  }
}

bool HasAdminRole(const std::vector<std::string>& roles) {
  return std::any_of(roles.begin(), roles.end(), IsAdminRole);
}

crypto::Bytes TotpAad(const std::string& username) {
  return crypto::ToBytes("anju-totp/v1/" + username);
}

void AuditAuth(Database& db, const std::string& actor, const std::string& action,
               const std::string& object, const std::string& source, const std::string& result,
               json detail = json::object()) {
  Audit(db, AuditEntry{actor, source, action, object, result, std::move(detail)});
}

}  // namespace

std::string OneTimePassword() {
  // 12 random URL-safe characters plus one of each class the policy asks for.
  std::string b = crypto::ToBase64(crypto::RandomBytes(9));
  for (auto& c : b) {
    if (c == '+') c = 'x';
    if (c == '/') c = 'y';
  }
  return "Aj-" + b + "7";
}

Accounts::Accounts(Database& db, const crypto::DataKey& key, SecurityPolicy policy)
    : db_(db), key_(key), policy_(policy) {}

std::vector<std::pair<std::string, std::string>> Accounts::Bootstrap() {
  std::lock_guard lock(db_.mutex());
  Stmt c(db_.handle(), "SELECT COUNT(*) FROM users");
  c.Step();
  if (c.Int(0) > 0) return {};
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<std::tuple<std::string, std::string, std::string>> admins = {
      {"admin", "系统管理员 / system administrator", "sysadmin"},
      {"secadmin", "安全管理员 / security administrator", "secadmin"},
      {"auditadmin", "审计管理员 / audit administrator", "auditadmin"}};
  Transaction tx(db_);
  for (const auto& [name, display, role] : admins) {
    const std::string pw = OneTimePassword();
    Stmt s(db_.handle(),
           "INSERT INTO users(username, display_name, password_hash, password_changed_ms, "
           "must_change, roles, created_ms, created_by) VALUES(?,?,?,?,1,?,?, 'system')");
    s.Bind(1, name)
        .Bind(2, display)
        .Bind(3, crypto::HashPassword(pw))
        .Bind(4, NowMs())
        .Bind(5, json::array({role}).dump())
        .Bind(6, NowMs())
        .Run();
    Audit(db_, "system", "user.create", name, {{"roles", {role}}, {"initial", true}});
    out.emplace_back(name, pw);
  }
  tx.Commit();
  return out;
}

void Accounts::EnsureToken(const std::string& name, const std::string& token,
                           const std::vector<std::string>& roles, int64_t expires_ms) {
  if (auto why = CheckTokenRoles(roles); !why.empty()) throw Error(ErrorCode::kInternal, why);
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(),
         "INSERT INTO api_tokens(name, token_hash, roles, created_by, created_ms, expires_ms) "
         "VALUES(?,?,?, 'system', ?, ?) ON CONFLICT(name) DO UPDATE SET "
         "token_hash = excluded.token_hash, roles = excluded.roles, "
         "expires_ms = excluded.expires_ms");
  s.Bind(1, name).Bind(2, TokenHash(token)).Bind(3, json(roles).dump()).Bind(4, NowMs());
  s.Bind(5, expires_ms).Run();
}

bool Accounts::CountFailure(FailureState& st, int limit, int64_t now) {
  if (now - st.window_start_ms > policy_.lockout_ms) st.failures = 0, st.window_start_ms = now;
  if (++st.failures < limit) return false;
  st.locked_until_ms = now + policy_.lockout_ms;
  st.failures = 0;
  st.window_start_ms = now;
  return true;
}

void Accounts::Fail(int64_t user_id, const std::string& username, const std::string& source,
                    const std::string& why) {
  const int64_t now = NowMs();
  bool locked = false;
  {
    std::lock_guard lock(mu_);
    CountFailure(sources_[source], policy_.source_max_failures, now);
    if (user_id <= 0) {
      // Bounded: a flood of invented names must not grow the map without end.
      if (unknown_names_.size() > 100000) unknown_names_.clear();
      locked = CountFailure(unknown_names_[username], policy_.max_failures, now);
    }
  }
  std::lock_guard lock(db_.mutex());
  if (user_id > 0) {
    Stmt s(db_.handle(), "UPDATE users SET failures = failures + 1 WHERE id = ?");
    s.Bind(1, user_id).Run();
    Stmt q(db_.handle(), "SELECT failures FROM users WHERE id = ?");
    q.Bind(1, user_id).Step();
    if (q.Int(0) >= policy_.max_failures) {
      Stmt l(db_.handle(), "UPDATE users SET failures = 0, locked_until_ms = ? WHERE id = ?");
      l.Bind(1, now + policy_.lockout_ms).Bind(2, user_id).Run();
      locked = true;
    }
  }
  AuditAuth(db_, username.empty() ? "-" : username, "auth.login", username, source, "failure",
            {{"reason", why}});
  if (locked)
    AuditAuth(db_, "system", "auth.lockout", username, source, "locked",
              {{"until_ms", now + policy_.lockout_ms}});
}

LoginResult Accounts::Login(const std::string& username, const std::string& password,
                            const std::string& totp, const std::string& source) {
  const int64_t now = NowMs();
  {
    std::lock_guard lock(mu_);
    if (auto it = sources_.find(source); it != sources_.end() && it->second.locked_until_ms > now)
      Locked(it->second.locked_until_ms, "来源地址");
  }
  int64_t id = 0, locked_until = 0, last_step = 0;
  std::string hash, blocked;
  bool disabled = false, totp_enabled = false;
  crypto::Bytes totp_sealed;
  std::vector<std::string> roles;
  {
    std::lock_guard lock(db_.mutex());
    Stmt s(db_.handle(),
           "SELECT id, password_hash, locked_until_ms, disabled, blocked_reason, totp_enabled, "
           "totp_sealed, totp_last_step, roles FROM users WHERE username = ?");
    s.Bind(1, username);
    if (s.Step()) {
      id = s.Int(0);
      hash = s.Text(1);
      locked_until = s.Int(2);
      disabled = s.Int(3) != 0;
      blocked = s.Text(4);
      totp_enabled = s.Int(5) != 0;
      if (!s.IsNull(6)) totp_sealed = s.Blob(6);
      last_step = s.Int(7);
      roles = RolesOf(s.Text(8));
    }
  }
  if (id <= 0) {
    std::lock_guard lock(mu_);
    if (auto it = unknown_names_.find(username); it != unknown_names_.end())
      locked_until = it->second.locked_until_ms;
  }
  if (locked_until > now) {
    std::lock_guard lock(db_.mutex());
    AuditAuth(db_, username, "auth.login", username, source, "locked");
    Locked(locked_until, "账号");
  }
  // Verify outside the database lock (scrypt takes tens of milliseconds); an unknown user
  // costs the same time as a wrong password.
  static const std::string kDummy = crypto::HashPassword("anju-dummy-password");
  const bool ok = crypto::VerifyPassword(password, id > 0 ? hash : kDummy) && id > 0;
  if (!ok) {
    Fail(id, username, source, id > 0 ? "wrong password" : "unknown user");
    throw ApiError(401, "unauthenticated", "用户名或口令错误 / wrong username or password");
  }
  if (disabled) {
    std::lock_guard lock(db_.mutex());
    AuditAuth(db_, username, "auth.login", username, source, "disabled");
    throw ApiError(403, "account_disabled", "账号已停用 / account disabled");
  }
  if (!blocked.empty()) {
    std::lock_guard lock(db_.mutex());
    AuditAuth(db_, username, "auth.login", username, source, "blocked");
    throw DetailedApiError(423, "blocked_for_review",
                           "账号因风险告警被冻结，待安全管理员复核 / account blocked by a risk "
                           "alarm until a security administrator reviews it: " +
                               blocked,
                           {{"until_ms", nullptr}});
  }
  if (totp_enabled) {
    if (totp.empty()) throw ApiError(401, "totp_required", "请输入动态口令 / TOTP code required");
    std::optional<int64_t> step;
    try {
      const auto secret = crypto::Open(key_, totp_sealed, TotpAad(username));
      step = crypto::VerifyTotp(secret, totp, now / 1000);
    } catch (const Error&) {
      step.reset();
    }
    if (!step || *step <= last_step) {
      Fail(id, username, source, step ? "replayed TOTP" : "wrong TOTP");
      throw ApiError(401, "totp_required", "动态口令错误 / wrong or reused TOTP code");
    }
    std::lock_guard lock(db_.mutex());
    Stmt s(db_.handle(), "UPDATE users SET totp_last_step = ? WHERE id = ?");
    s.Bind(1, *step).Bind(2, id).Run();
  }
  // A success does not clear the address's failures: one valid account must not reopen
  // guessing at others from the same address.
  LoginResult r;
  r.token = NewToken("s.");
  r.expires_ms = now + policy_.session_max_ms;
  {
    std::lock_guard lock(db_.mutex());
    Transaction tx(db_);
    Stmt u(db_.handle(), "UPDATE users SET failures = 0, last_login_ms = ? WHERE id = ?");
    u.Bind(1, now).Bind(2, id).Run();
    Stmt s(db_.handle(),
           "INSERT INTO sessions(token_hash, user_id, source, created_ms, last_ms, expires_ms) "
           "VALUES(?,?,?,?,?,?)");
    s.Bind(1, TokenHash(r.token))
        .Bind(2, id)
        .Bind(3, source)
        .Bind(4, now)
        .Bind(5, now)
        .Bind(6, r.expires_ms)
        .Run();
    AuditAuth(db_, username, "auth.login", username, source, "success");
    tx.Commit();
  }
  r.user = UserJson(id);
  return r;
}

Principal Accounts::Authenticate(const std::string& bearer, const std::string& source) {
  if (bearer.empty())
    throw ApiError(401, "unauthenticated",
                   "请先登录 / log in first (Authorization: Bearer <session or API token>)");
  const std::string h = TokenHash(bearer);
  const int64_t now = NowMs();
  Principal p;
  p.source = source;
  std::lock_guard lock(db_.mutex());
  {
    Stmt t(db_.handle(),
           "SELECT id, name, roles, revoked_ms, last_used_ms, expires_ms, sites, blocked_reason, "
           "created_by FROM api_tokens WHERE token_hash = ?");
    t.Bind(1, h);
    if (t.Step()) {
      if (!t.IsNull(3))
        throw ApiError(401, "unauthenticated", "接口令牌已吊销 / API token revoked");
      if (t.IsNull(5) || t.Int(5) <= now)
        throw ApiError(401, "token_expired", "接口令牌已过期 / API token expired");
      if (!t.Text(7).empty())
        throw DetailedApiError(423, "blocked_for_review",
                               "接口令牌因风险告警被冻结 / API token blocked by a risk alarm",
                               {{"until_ms", nullptr}});
      p.kind = "token";
      p.name = "token:" + t.Text(1);
      // Integration roles only; a stored administrator role (from before that rule) grants
      // nothing.
      for (const auto& role : RolesOf(t.Text(2)))
        if (IsIntegrationRole(role)) p.roles.push_back(role);
      p.permissions = PermissionsOf(p.roles);
      p.sites = SitesOf(t.Text(6));
      p.creator = t.Text(8);
      const int64_t id = t.Int(0);
      if (t.IsNull(4) || now - t.Int(4) > 60000) {
        Stmt u(db_.handle(), "UPDATE api_tokens SET last_used_ms = ? WHERE id = ?");
        u.Bind(1, now).Bind(2, id).Run();
      }
      return p;
    }
  }
  Stmt s(db_.handle(),
         "SELECT s.id, s.last_ms, s.expires_ms, s.revoked_ms, u.id, u.username, u.roles, u.sites, "
         "u.must_change, u.password_changed_ms, u.totp_enabled, u.disabled, u.blocked_reason "
         "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?");
  s.Bind(1, h);
  if (!s.Step())
    throw ApiError(401, "unauthenticated", "会话无效，请重新登录 / unknown session: log in again");
  const int64_t sid = s.Int(0);
  if (!s.IsNull(3))
    throw ApiError(401, "session_expired", "会话已结束，请重新登录 / session ended: log in again");
  if (now - s.Int(1) > policy_.idle_timeout_ms || now > s.Int(2)) {
    Stmt r(db_.handle(), "UPDATE sessions SET revoked_ms = ? WHERE id = ?");
    r.Bind(1, now).Bind(2, sid).Run();
    throw ApiError(401, "session_expired",
                   "会话超时，请重新登录 / session timed out: log in again");
  }
  if (s.Int(11) != 0) throw ApiError(401, "session_expired", "账号已停用 / account disabled");
  if (!s.Text(12).empty())
    throw DetailedApiError(423, "blocked_for_review",
                           "账号因风险告警被冻结 / account blocked by a risk alarm",
                           {{"until_ms", nullptr}});
  p.kind = "user";
  p.session_id = sid;
  p.user_id = s.Int(4);
  p.name = s.Text(5);
  p.roles = RolesOf(s.Text(6));
  p.sites = SitesOf(s.Text(7));
  p.permissions = PermissionsOf(p.roles);
  const bool expired = policy_.password_max_age_days > 0 &&
                       now - s.Int(9) > int64_t(policy_.password_max_age_days) * kDayMs;
  if (s.Int(8) != 0 || expired)
    p.restriction = "password_change_required";
  else if (policy_.totp_for_admins && HasAdminRole(p.roles) && s.Int(10) == 0)
    p.restriction = "totp_enrolment_required";
  if (now - s.Int(1) > 1000) {
    Stmt u(db_.handle(), "UPDATE sessions SET last_ms = ? WHERE id = ?");
    u.Bind(1, now).Bind(2, sid).Run();
  }
  return p;
}

void Accounts::Logout(const Principal& p) {
  if (p.session_id == 0) return;
  std::lock_guard lock(db_.mutex());
  Stmt r(db_.handle(), "UPDATE sessions SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  r.Bind(1, NowMs()).Bind(2, p.session_id).Run();
  AuditAuth(db_, p.name, "auth.logout", p.name, p.source, "success");
}

std::string Accounts::CheckPolicy(const std::string& username, const std::string& password,
                                  int64_t user_id) {
  if (password.size() < 8) return "口令至少 8 位 / at least 8 characters";
  int lower = 0, upper = 0, digit = 0, other = 0;
  for (unsigned char c : password) {
    if (std::islower(c))
      lower = 1;
    else if (std::isupper(c))
      upper = 1;
    else if (std::isdigit(c))
      digit = 1;
    else
      other = 1;
  }
  if (lower + upper + digit + other < 3)
    return "口令须包含大写、小写、数字、符号中的至少三类 / use at least 3 of: upper case, lower "
           "case, digits, symbols";
  std::string lp = password, lu = username;
  for (auto& c : lp) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (auto& c : lu) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (!lu.empty() && lp.find(lu) != std::string::npos)
    return "口令不能包含用户名 / the password must not contain the username";
  if (user_id > 0 && policy_.password_history > 0) {
    std::vector<std::string> old;
    {
      std::lock_guard lock(db_.mutex());
      Stmt s(db_.handle(),
             "SELECT hash FROM password_history WHERE user_id = ? ORDER BY changed_ms DESC, "
             "rowid DESC LIMIT ?");
      s.Bind(1, user_id).Bind(2, int64_t(policy_.password_history));
      while (s.Step()) old.push_back(s.Text(0));
    }
    for (const auto& h : old)
      if (crypto::VerifyPassword(password, h))
        return "不能重复使用最近 " + std::to_string(policy_.password_history) +
               " 次的口令 / must differ from the last " + std::to_string(policy_.password_history) +
               " passwords";
  }
  return "";
}

void Accounts::SetPassword(int64_t user_id, const std::string& password, bool must_change) {
  const std::string hash = crypto::HashPassword(password);
  std::lock_guard lock(db_.mutex());
  Transaction tx(db_);
  Stmt s(db_.handle(),
         "UPDATE users SET password_hash = ?, password_changed_ms = ?, must_change = ?, "
         "failures = 0 WHERE id = ?");
  s.Bind(1, hash).Bind(2, NowMs()).Bind(3, int64_t(must_change)).Bind(4, user_id).Run();
  Stmt h(db_.handle(), "INSERT INTO password_history(user_id, hash, changed_ms) VALUES(?,?,?)");
  h.Bind(1, user_id).Bind(2, hash).Bind(3, NowMs()).Run();
  tx.Commit();
}

void Accounts::ChangePassword(const Principal& p, const std::string& old_password,
                              const std::string& new_password) {
  if (p.kind != "user")
    throw ApiError(400, "bad_request", "接口令牌没有口令 / API tokens have no password");
  std::string hash;
  {
    std::lock_guard lock(db_.mutex());
    Stmt s(db_.handle(), "SELECT password_hash FROM users WHERE id = ?");
    s.Bind(1, p.user_id);
    if (!s.Step()) throw ApiError(401, "unauthenticated", "账号不存在 / no such account");
    hash = s.Text(0);
  }
  if (!crypto::VerifyPassword(old_password, hash)) {
    Fail(p.user_id, p.name, p.source, "wrong old password");
    throw ApiError(401, "unauthenticated", "原口令错误 / wrong current password");
  }
  if (old_password == new_password)
    throw ApiError(400, "weak_password", "新口令不能与原口令相同 / choose a new password");
  if (auto why = CheckPolicy(p.name, new_password, p.user_id); !why.empty())
    throw ApiError(400, "weak_password", why);
  SetPassword(p.user_id, new_password, false);
  std::lock_guard lock(db_.mutex());
  // Other sessions of the account end with the old password.
  Stmt r(db_.handle(),
         "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND id != ? AND revoked_ms IS "
         "NULL");
  r.Bind(1, NowMs()).Bind(2, p.user_id).Bind(3, p.session_id).Run();
  AuditAuth(db_, p.name, "auth.password_change", p.name, p.source, "success");
}

json Accounts::StartTotp(const Principal& p) {
  if (p.kind != "user") throw ApiError(400, "bad_request", "仅限用户账号 / users only");
  const auto secret = crypto::RandomBytes(20);
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(), "SELECT totp_enabled FROM users WHERE id = ?");
  s.Bind(1, p.user_id).Step();
  if (s.Int(0) != 0)
    throw ApiError(409, "conflict",
                   "动态口令已绑定；请安全管理员重置 / TOTP already enrolled (ask for a reset)");
  Stmt u(db_.handle(), "UPDATE users SET totp_sealed = ?, totp_last_step = 0 WHERE id = ?");
  u.Bind(1, crypto::Seal(key_, secret, TotpAad(p.name))).Bind(2, p.user_id).Run();
  AuditAuth(db_, p.name, "auth.totp_setup", p.name, p.source, "started");
  return {{"secret", crypto::ToBase32(secret)},
          {"otpauth_uri", crypto::TotpUri("anju", p.name, secret)}};
}

void Accounts::ConfirmTotp(const Principal& p, const std::string& code) {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(), "SELECT totp_sealed, totp_enabled FROM users WHERE id = ?");
  s.Bind(1, p.user_id);
  if (!s.Step() || s.IsNull(0))
    throw ApiError(409, "conflict", "请先获取密钥 / call /api/v1/auth/totp/setup first");
  if (s.Int(1) != 0) throw ApiError(409, "conflict", "动态口令已绑定 / TOTP already enrolled");
  const auto secret = crypto::Open(key_, s.Blob(0), TotpAad(p.name));
  const auto step = crypto::VerifyTotp(secret, code, NowMs() / 1000);
  if (!step) {
    AuditAuth(db_, p.name, "auth.totp_confirm", p.name, p.source, "failure");
    throw ApiError(400, "bad_request", "动态口令错误 / wrong TOTP code");
  }
  Stmt u(db_.handle(), "UPDATE users SET totp_enabled = 1, totp_last_step = ? WHERE id = ?");
  u.Bind(1, *step).Bind(2, p.user_id).Run();
  AuditAuth(db_, p.name, "auth.totp_confirm", p.name, p.source, "success");
}

json Accounts::UserJson(int64_t user_id) {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(),
         "SELECT username, display_name, roles, sites, must_change, password_changed_ms, "
         "totp_enabled, disabled, locked_until_ms, blocked_reason, created_ms, last_login_ms "
         "FROM users WHERE id = ?");
  s.Bind(1, user_id);
  if (!s.Step()) NotFound("user " + std::to_string(user_id));
  const auto roles = RolesOf(s.Text(2));
  const auto perms = PermissionsOf(roles);
  const int64_t now = NowMs();
  const bool expired = policy_.password_max_age_days > 0 &&
                       now - s.Int(5) > int64_t(policy_.password_max_age_days) * kDayMs;
  return {{"username", s.Text(0)},
          {"display_name", s.Text(1)},
          {"roles", roles},
          {"permissions", std::vector<std::string>(perms.begin(), perms.end())},
          {"sites", SitesOf(s.Text(3))},
          {"must_change_password", s.Int(4) != 0 || expired},
          {"password_changed_ms", s.Int(5)},
          {"totp_enabled", s.Int(6) != 0},
          {"totp_required", policy_.totp_for_admins && HasAdminRole(roles)},
          {"disabled", s.Int(7) != 0},
          {"locked_until_ms", s.Int(8) > now ? json(s.Int(8)) : json()},
          {"blocked_reason", s.Text(9)},
          {"created_ms", s.Int(10)},
          {"last_login_ms", s.IsNull(11) ? json() : json(s.Int(11))}};
}

json Accounts::ListUsers() {
  std::vector<int64_t> ids;
  {
    std::lock_guard lock(db_.mutex());
    Stmt s(db_.handle(), "SELECT id FROM users ORDER BY username");
    while (s.Step()) ids.push_back(s.Int(0));
  }
  json items = json::array();
  for (int64_t id : ids) items.push_back(UserJson(id));
  return items;
}

namespace {
int64_t UserId(Database& db, const std::string& username) {
  Stmt s(db.handle(), "SELECT id FROM users WHERE username = ?");
  s.Bind(1, username);
  if (!s.Step()) NotFound("user " + username);
  return s.Int(0);
}
}  // namespace

json Accounts::CreateUser(const std::string& username, const std::string& display_name,
                          const std::string& password, const Principal& actor) {
  if (username.empty() || username.size() > 64 ||
      !std::all_of(username.begin(), username.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '.' || c == '_' || c == '-';
      }))
    throw ApiError(400, "bad_request",
                   "用户名只能包含字母、数字和 . _ - / username: letters, digits, . _ - (1-64)");
  if (auto why = CheckPolicy(username, password, 0); !why.empty())
    throw ApiError(400, "weak_password", why);
  const std::string hash = crypto::HashPassword(password);
  int64_t id = 0;
  {
    std::lock_guard lock(db_.mutex());
    Stmt e(db_.handle(), "SELECT 1 FROM users WHERE username = ?");
    e.Bind(1, username);
    if (e.Step()) throw ApiError(409, "conflict", "用户名已存在 / username taken: " + username);
    Transaction tx(db_);
    Stmt s(db_.handle(),
           "INSERT INTO users(username, display_name, password_hash, password_changed_ms, "
           "must_change, created_ms, created_by) VALUES(?,?,?,?,1,?,?)");
    s.Bind(1, username)
        .Bind(2, display_name)
        .Bind(3, hash)
        .Bind(4, NowMs())
        .Bind(5, NowMs())
        .Bind(6, actor.name)
        .Run();
    id = db_.LastInsertId();
    Stmt h(db_.handle(), "INSERT INTO password_history(user_id, hash, changed_ms) VALUES(?,?,?)");
    h.Bind(1, id).Bind(2, hash).Bind(3, NowMs()).Run();
    AuditAuth(db_, actor.name, "user.create", username, actor.source, "success");
    tx.Commit();
  }
  return UserJson(id);
}

namespace {

struct Account {
  int64_t id = 0;
  std::vector<std::string> roles;
};

Account LoadAccount(Database& db, const std::string& username) {
  Stmt s(db.handle(), "SELECT id, roles FROM users WHERE username = ?");
  s.Bind(1, username);
  if (!s.Step()) NotFound("user " + username);
  return {s.Int(0), RolesOf(s.Text(1))};
}

bool Holds(const std::vector<std::string>& roles, const std::string& role) {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

void RequireUser(const Principal& actor) {
  if (actor.kind != "user")
    throw ApiError(403, "forbidden", "接口令牌不能管理账号 / API tokens cannot manage accounts");
}

// A pending change as shown to administrators (never the password hash it carries).
json ChangeJson(Stmt& s) {
  json change = json::parse(s.Text(4));
  if (change.contains("password_hash")) {
    change.erase("password_hash");
    change["password"] = "***";
  }
  return {{"id", s.Int(0)},
          {"requester", s.Text(1)},
          {"username", s.Text(2)},
          {"kind", s.Text(3)},
          {"change", change},
          {"state", s.Text(5)},
          {"created_ms", s.Int(6)},
          {"approver", s.IsNull(7) ? json() : json(s.Text(7))},
          {"decided_ms", s.IsNull(8) ? json() : json(s.Int(8))},
          {"note", s.Text(9)}};
}

constexpr const char* kChangeCols =
    "SELECT id, requester, username, kind, change, state, created_ms, approver, decided_ms, note "
    "FROM admin_changes";

}  // namespace

void Accounts::ApplyChange(int64_t id, const std::string& username, const std::string& kind,
                           const json& change, const std::string& actor,
                           const std::string& source) {
  // Caller holds the database lock and a transaction.
  const int64_t now = NowMs();
  if (kind == "roles") {
    Stmt s(db_.handle(), "UPDATE users SET roles = ?, sites = ? WHERE id = ?");
    s.Bind(1, change.at("roles").dump()).Bind(2, change.at("sites").dump()).Bind(3, id).Run();
    AuditAuth(db_, actor, "user.roles", username, source, "success", change);
    return;
  }
  if (change.contains("password_hash")) {
    const std::string hash = change["password_hash"].get<std::string>();
    // A password someone else set is one-time.
    Stmt s(db_.handle(),
           "UPDATE users SET password_hash = ?, password_changed_ms = ?, must_change = 1, "
           "failures = 0 WHERE id = ?");
    s.Bind(1, hash).Bind(2, now).Bind(3, id).Run();
    Stmt h(db_.handle(), "INSERT INTO password_history(user_id, hash, changed_ms) VALUES(?,?,?)");
    h.Bind(1, id).Bind(2, hash).Bind(3, now).Run();
  }
  if (change.contains("disabled")) {
    Stmt s(db_.handle(), "UPDATE users SET disabled = ? WHERE id = ?");
    s.Bind(1, int64_t(change["disabled"].get<bool>())).Bind(2, id).Run();
  }
  if (change.value("unlock", false)) {
    Stmt s(db_.handle(), "UPDATE users SET failures = 0, locked_until_ms = 0 WHERE id = ?");
    s.Bind(1, id).Run();
  }
  if (change.value("reset_totp", false)) {
    Stmt s(db_.handle(),
           "UPDATE users SET totp_enabled = 0, totp_sealed = NULL, totp_last_step = 0 WHERE id = ?");
    s.Bind(1, id).Run();
  }
  // New credentials or a disabled account end the account's sessions.
  if (change.contains("password_hash") || change.value("reset_totp", false) ||
      change.value("disabled", false)) {
    Stmt r(db_.handle(),
           "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL");
    r.Bind(1, now).Bind(2, id).Run();
  }
  json logged = change;
  if (logged.contains("password_hash")) logged.erase("password_hash"), logged["password"] = "***";
  AuditAuth(db_, actor, "user.update", username, source, "success", logged);
}

json Accounts::ProposeChange(const std::string& username, const std::string& kind,
                             const json& change, const Principal& actor) {
  // Caller holds the database lock.
  Stmt s(db_.handle(),
         "INSERT INTO admin_changes(requester, username, kind, change, state, created_ms) "
         "VALUES(?,?,?,?, 'pending', ?)");
  s.Bind(1, actor.name).Bind(2, username).Bind(3, kind).Bind(4, change.dump()).Bind(5, NowMs());
  s.Run();
  const int64_t id = db_.LastInsertId();
  Stmt q(db_.handle(), std::string(kChangeCols) + " WHERE id = ?");
  q.Bind(1, id).Step();
  json out = ChangeJson(q);
  AuditAuth(db_, actor.name, "admin_change.request", username, actor.source, "pending",
            {{"id", id}, {"kind", kind}, {"change", out["change"]}});
  return {{"request", out},
          {"message",
           "对安全管理员账号的变更须由另一名管理员会签后生效 / a change to a security "
           "administrator's account takes effect once a second administrator approves it"}};
}

json Accounts::UpdateUser(const std::string& username, const json& change, const Principal& actor) {
  RequireUser(actor);
  Account target;
  {
    std::lock_guard lock(db_.mutex());
    target = LoadAccount(db_, username);
  }
  if (target.id == actor.user_id)
    throw ApiError(403, "forbidden",
                   "不能在此修改自己的账号 / you cannot change your own account here (use "
                   "/api/v1/auth/password)");
  if (HasAdminRole(target.roles) ? !actor.Can("roles.manage") : !actor.Can("users.manage"))
    throw ApiError(403, "forbidden",
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
      throw ApiError(400, "weak_password", why);
    stored["password_hash"] = crypto::HashPassword(pw);
  }
  {
    std::lock_guard lock(db_.mutex());
    if (Holds(target.roles, "secadmin"))
      return ProposeChange(username, "credentials", stored, actor);
    Transaction tx(db_);
    ApplyChange(target.id, username, "credentials", stored, actor.name, actor.source);
    tx.Commit();
  }
  return UserJson(target.id);
}

json Accounts::SetRoles(const std::string& username, const std::vector<std::string>& roles,
                        const std::vector<int64_t>& sites, const Principal& actor) {
  RequireUser(actor);
  if (auto why = CheckRoleSet(roles); !why.empty()) throw ApiError(400, "bad_request", why);
  Account target;
  {
    std::lock_guard lock(db_.mutex());
    target = LoadAccount(db_, username);
  }
  // By account id, not by name: a token or a renamed account cannot slip past.
  if (target.id == actor.user_id)
    throw ApiError(403, "forbidden",
                   "不能修改自己的角色 / security administrators cannot change their own roles");
  const json change = {{"roles", roles}, {"sites", sites}};
  {
    std::lock_guard lock(db_.mutex());
    if (Holds(target.roles, "secadmin") || Holds(roles, "secadmin"))
      return ProposeChange(username, "roles", change, actor);
    Transaction tx(db_);
    ApplyChange(target.id, username, "roles", change, actor.name, actor.source);
    tx.Commit();
  }
  return UserJson(target.id);
}

json Accounts::ListAdminChanges() {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(), std::string(kChangeCols) + " ORDER BY id DESC LIMIT 200");
  json items = json::array();
  while (s.Step()) items.push_back(ChangeJson(s));
  return items;
}

json Accounts::DecideAdminChange(int64_t id, bool approve, const std::string& note,
                                 const Principal& actor) {
  RequireUser(actor);
  std::lock_guard lock(db_.mutex());
  Stmt q(db_.handle(), "SELECT requester, username, kind, change, state FROM admin_changes "
                       "WHERE id = ?");
  q.Bind(1, id);
  if (!q.Step()) NotFound("admin change " + std::to_string(id));
  const std::string requester = q.Text(0), username = q.Text(1), kind = q.Text(2);
  const json change = json::parse(q.Text(3));
  if (q.Text(4) != "pending") throw ApiError(409, "conflict", "申请已处理 / already " + q.Text(4));
  if (requester == actor.name || username == actor.name)
    throw ApiError(403, "forbidden",
                   "会签须由申请人和被变更账号以外的管理员进行 / a second administrator, neither "
                   "the requester nor the account changed, must decide");
  Transaction tx(db_);
  if (approve) {
    const Account target = LoadAccount(db_, username);
    if (kind == "roles")
      if (auto why = CheckRoleSet(change.at("roles").get<std::vector<std::string>>());
          !why.empty())
        throw ApiError(400, "bad_request", why);
    ApplyChange(target.id, username, kind, change, requester + " (cosigned by " + actor.name + ")",
                actor.source);
  }
  Stmt u(db_.handle(),
         "UPDATE admin_changes SET state = ?, approver = ?, decided_ms = ?, note = ? WHERE id = ?");
  u.Bind(1, approve ? "approved" : "rejected").Bind(2, actor.name).Bind(3, NowMs());
  u.Bind(4, note).Bind(5, id).Run();
  AuditAuth(db_, actor.name, approve ? "admin_change.approve" : "admin_change.reject", username,
            actor.source, "success", {{"id", id}, {"note", note}});
  tx.Commit();
  Stmt s(db_.handle(), std::string(kChangeCols) + " WHERE id = ?");
  s.Bind(1, id).Step();
  return ChangeJson(s);
}

void Accounts::CheckApprover(const std::string& requester, const Principal& approver) {
  if (approver.kind != "user")
    throw ApiError(403, "forbidden", "接口令牌不能审批 / API tokens cannot approve");
  if (requester == approver.name)
    throw ApiError(403, "forbidden", "不能审批自己的申请 / a request needs another user's approval");
  if (requester.rfind("token:", 0) == 0) {
    Stmt s(db_.handle(), "SELECT created_by FROM api_tokens WHERE name = ?");
    s.Bind(1, requester.substr(6));
    if (s.Step() && s.Text(0) == approver.name)
      throw ApiError(403, "forbidden",
                     "不能审批用自己创建的接口令牌提出的申请 / a request made with a token you "
                     "created needs another user's approval");
  }
}

json Accounts::Review(const std::string& username, const std::string& note,
                      const Principal& actor) {
  if (username.rfind("token:", 0) == 0) {
    {
      std::lock_guard lock(db_.mutex());
      Stmt s(db_.handle(), "UPDATE api_tokens SET blocked_reason = '' WHERE name = ?");
      s.Bind(1, username.substr(6)).Run();
      if (db_.Changes() == 0) NotFound("API token " + username.substr(6));
      AuditAuth(db_, actor.name, "token.review", username, actor.source, "unblocked",
                {{"note", note}});
    }
    std::lock_guard lock(mu_);
    views_.erase(username);
    return {{"username", username}, {"blocked_reason", ""}};
  }
  int64_t id = 0;
  {
    std::lock_guard lock(db_.mutex());
    id = UserId(db_, username);
    Stmt s(db_.handle(), "UPDATE users SET blocked_reason = '' WHERE id = ?");
    s.Bind(1, id).Run();
    AuditAuth(db_, actor.name, "user.review", username, actor.source, "unblocked",
              {{"note", note}});
  }
  {
    std::lock_guard lock(mu_);
    views_.erase(username);
  }
  return UserJson(id);
}

std::string Accounts::ResetPassword(const std::string& username, const std::string& actor) {
  int64_t id = 0;
  {
    std::lock_guard lock(db_.mutex());
    id = UserId(db_, username);
  }
  const std::string pw = OneTimePassword();
  SetPassword(id, pw, true);
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(), "UPDATE users SET locked_until_ms = 0, failures = 0 WHERE id = ?");
  s.Bind(1, id).Run();
  AuditAuth(db_, actor, "user.reset_password", username, "local", "success");
  return pw;
}

json Accounts::ListTokens() {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(),
         "SELECT id, name, roles, created_by, created_ms, last_used_ms, revoked_ms, expires_ms, "
         "sites, blocked_reason FROM api_tokens ORDER BY id");
  json items = json::array();
  while (s.Step())
    items.push_back({{"id", s.Int(0)},
                     {"name", s.Text(1)},
                     {"roles", RolesOf(s.Text(2))},
                     {"created_by", s.Text(3)},
                     {"created_ms", s.Int(4)},
                     {"last_used_ms", s.IsNull(5) ? json() : json(s.Int(5))},
                     {"revoked_ms", s.IsNull(6) ? json() : json(s.Int(6))},
                     {"expires_ms", s.IsNull(7) ? json() : json(s.Int(7))},
                     {"sites", SitesOf(s.Text(8))},
                     {"blocked_reason", s.Text(9)}});
  return items;
}

json Accounts::CreateToken(const std::string& name, const std::vector<std::string>& roles,
                           const std::vector<int64_t>& sites, int ttl_days,
                           const Principal& actor) {
  RequireUser(actor);
  if (auto why = CheckTokenRoles(roles); !why.empty()) throw ApiError(400, "bad_request", why);
  if (name.empty() || name.size() > 64)
    throw ApiError(400, "bad_request", "名称 1-64 个字符 / name: 1-64 characters");
  if (ttl_days < 1 || ttl_days > 365)
    throw ApiError(400, "bad_request", "有效期 1-365 天 / expires_in_days: 1-365");
  // Bound to the creator's scope: a limited creator cannot mint a token that sees more.
  std::vector<int64_t> scope = sites;
  if (!actor.sites.empty()) {
    if (scope.empty()) scope = actor.sites;
    for (int64_t site : scope)
      if (std::find(actor.sites.begin(), actor.sites.end(), site) == actor.sites.end())
        throw ApiError(403, "forbidden",
                       "令牌的小区须在本人的权限范围内 / a token's sites must be within yours");
  }
  const std::string token = NewToken("t.");
  const int64_t now = NowMs(), expires = now + int64_t(ttl_days) * kDayMs;
  std::lock_guard lock(db_.mutex());
  Stmt e(db_.handle(), "SELECT 1 FROM api_tokens WHERE name = ?");
  e.Bind(1, name);
  if (e.Step()) throw ApiError(409, "conflict", "名称已存在 / name taken: " + name);
  Stmt s(db_.handle(),
         "INSERT INTO api_tokens(name, token_hash, roles, created_by, created_ms, expires_ms, "
         "sites) VALUES(?,?,?,?,?,?,?)");
  s.Bind(1, name).Bind(2, TokenHash(token)).Bind(3, json(roles).dump()).Bind(4, actor.name);
  s.Bind(5, now).Bind(6, expires).Bind(7, json(scope).dump()).Run();
  const int64_t id = db_.LastInsertId();
  AuditAuth(db_, actor.name, "token.create", name, actor.source, "success",
            {{"roles", roles}, {"sites", scope}, {"expires_ms", expires}});
  return {{"id", id},         {"name", name},         {"roles", roles},
          {"sites", scope},   {"expires_ms", expires}, {"token", token}};
}

void Accounts::RevokeToken(int64_t id, const Principal& actor) {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(), "UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  s.Bind(1, NowMs()).Bind(2, id).Run();
  if (db_.Changes() == 0) NotFound("active API token " + std::to_string(id));
  AuditAuth(db_, actor.name, "token.revoke", std::to_string(id), actor.source, "success");
}

json Accounts::ListSessions(int64_t user_id) {
  std::lock_guard lock(db_.mutex());
  Stmt s(db_.handle(),
         "SELECT id, source, created_ms, last_ms, expires_ms FROM sessions WHERE user_id = ? "
         "AND revoked_ms IS NULL AND last_ms > ? ORDER BY id DESC");
  s.Bind(1, user_id).Bind(2, NowMs() - policy_.idle_timeout_ms);
  json items = json::array();
  while (s.Step())
    items.push_back({{"id", s.Int(0)},
                     {"source", s.Text(1)},
                     {"created_ms", s.Int(2)},
                     {"last_ms", s.Int(3)},
                     {"expires_ms", s.Int(4)}});
  return items;
}

void Accounts::RevokeSession(int64_t session_id, const Principal& actor) {
  std::lock_guard lock(db_.mutex());
  Stmt o(db_.handle(), "SELECT user_id FROM sessions WHERE id = ?");
  o.Bind(1, session_id);
  if (!o.Step()) NotFound("session " + std::to_string(session_id));
  // One's own sessions, or anyone's with users.manage.
  if (o.Int(0) != actor.user_id && !actor.Can("users.manage"))
    throw ApiError(403, "forbidden", "只能结束自己的会话 / only your own sessions");
  Stmt s(db_.handle(), "UPDATE sessions SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  s.Bind(1, NowMs()).Bind(2, session_id).Run();
  AuditAuth(db_, actor.name, "session.revoke", std::to_string(session_id), actor.source, "success");
}

bool Accounts::CountViews(const Principal& p, int64_t n) {
  if (policy_.views_per_hour_alarm <= 0 || n <= 0) return false;
  const int64_t hour = NowMs() / 3600000;
  // A token's reads count for the token and for all the tokens its creator made together,
  // so minting more tokens does not multiply the allowance; crossing the family's
  // threshold blocks every token of that creator (not the creator's own account).
  std::vector<std::string> counted = {p.name};
  if (p.kind == "token" && !p.creator.empty() && p.creator != "system")
    counted.push_back("tokens-of:" + p.creator);
  std::vector<std::string> crossed;
  {
    std::lock_guard lock(mu_);
    for (const auto& name : counted) {
      auto& [h, count] = views_[name];
      if (h != hour) h = hour, count = 0;
      if (count < policy_.views_per_hour_alarm && count + n >= policy_.views_per_hour_alarm)
        crossed.push_back(name);
      count += n;
    }
  }
  if (crossed.empty()) return false;
  const std::string why = "1 小时内查看/导出 " + std::to_string(policy_.views_per_hour_alarm) +
                          " 条以上 / more than " + std::to_string(policy_.views_per_hour_alarm) +
                          " archive or photo reads within an hour";
  bool blocked = false;
  for (const auto& name : crossed) blocked |= Block(name, why, p);
  return blocked;
}

bool Accounts::CountListed(const Principal& p, const std::vector<std::string>& codes) {
  if (policy_.views_per_hour_alarm <= 0) return false;
  const int64_t hour = NowMs() / 3600000;
  int64_t fresh = 0;
  {
    std::lock_guard lock(mu_);
    auto& [h, seen] = listed_[p.name];
    if (h != hour) h = hour, seen.clear();
    for (const auto& c : codes) fresh += seen.insert(c).second;
  }
  return CountViews(p, fresh);
}

bool Accounts::Block(const std::string& name, const std::string& why, const Principal& p) {
  std::lock_guard lock(db_.mutex());
  if (name.rfind("token:", 0) == 0) {
    Stmt s(db_.handle(), "UPDATE api_tokens SET blocked_reason = ? WHERE name = ?");
    s.Bind(1, why).Bind(2, name.substr(6)).Run();
  } else if (name.rfind("tokens-of:", 0) == 0) {
    Stmt s(db_.handle(),
           "UPDATE api_tokens SET blocked_reason = ? WHERE created_by = ? AND revoked_ms IS NULL");
    s.Bind(1, why).Bind(2, name.substr(10)).Run();
  } else {
    Stmt u(db_.handle(), "SELECT id FROM users WHERE username = ?");
    u.Bind(1, name);
    if (!u.Step()) return false;
    const int64_t id = u.Int(0);
    Stmt s(db_.handle(), "UPDATE users SET blocked_reason = ? WHERE id = ?");
    s.Bind(1, why).Bind(2, id).Run();
    Stmt r(db_.handle(),
           "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND revoked_ms IS NULL");
    r.Bind(1, NowMs()).Bind(2, id).Run();
  }
  AuditAuth(db_, "system", "risk.block", name, p.source, "blocked",
            {{"reason", why}, {"via", p.name}});
  return true;
}

}  // namespace anju::server
