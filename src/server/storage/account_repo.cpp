#include "server/storage/account_repo.h"

#include <nlohmann/json.hpp>

#include "server/storage/repo_sql.h"

namespace anju::server::storage {

using db::Stmt;
using nlohmann::json;

namespace {

std::vector<std::string> Strings(const std::string& text) {
  try {
    return json::parse(text).get<std::vector<std::string>>();
  } catch (const json::exception&) {
    return {};
  }
}

std::vector<int64_t> Ints(const std::string& text) {
  try {
    return json::parse(text).get<std::vector<int64_t>>();
  } catch (const json::exception&) {
    return {};
  }
}

constexpr const char* kUserCols =
    "u.id, u.username, u.display_name, u.password_hash, u.password_changed_ms, u.must_change, "
    "u.roles, u.sites, u.totp_sealed, u.totp_enabled, u.totp_last_step, u.failures, "
    "u.locked_until_ms, u.blocked_reason, u.disabled, u.created_ms, u.created_by, "
    "u.last_login_ms";

UserRow ReadUser(const Stmt& s, int at) {
  UserRow u;
  u.id = s.Int(at + 0);
  u.username = s.Text(at + 1);
  u.display_name = s.Text(at + 2);
  u.password_hash = s.Text(at + 3);
  u.password_changed_ms = s.Int(at + 4);
  u.must_change = s.Int(at + 5) != 0;
  u.roles = Strings(s.Text(at + 6));
  u.sites = Ints(s.Text(at + 7));
  if (!s.IsNull(at + 8)) u.totp_sealed = s.Blob(at + 8);
  u.totp_enabled = s.Int(at + 9) != 0;
  u.totp_last_step = s.Int(at + 10);
  u.failures = s.Int(at + 11);
  u.locked_until_ms = s.Int(at + 12);
  u.blocked_reason = s.Text(at + 13);
  u.disabled = s.Int(at + 14) != 0;
  u.created_ms = s.Int(at + 15);
  u.created_by = s.Text(at + 16);
  u.last_login_ms = s.OptInt(at + 17);
  return u;
}

constexpr const char* kTokenCols =
    "id, name, roles, created_by, created_ms, last_used_ms, revoked_ms, expires_ms, sites, "
    "blocked_reason";

TokenRow ReadToken(const Stmt& s) {
  TokenRow t;
  t.id = s.Int(0);
  t.name = s.Text(1);
  t.roles = Strings(s.Text(2));
  t.created_by = s.Text(3);
  t.created_ms = s.Int(4);
  t.last_used_ms = s.OptInt(5);
  t.revoked_ms = s.OptInt(6);
  t.expires_ms = s.OptInt(7);
  t.sites = Ints(s.Text(8));
  t.blocked_reason = s.Text(9);
  return t;
}

constexpr const char* kSessionCols =
    "s.id, s.user_id, s.source, s.created_ms, s.last_ms, s.expires_ms, s.revoked_ms";

SessionRow ReadSession(const Stmt& s) {
  return {s.Int(0), s.Int(1), s.Text(2), s.Int(3), s.Int(4), s.Int(5), s.OptInt(6)};
}

constexpr const char* kChangeCols =
    "id, requester, username, kind, change, state, created_ms, approver, decided_ms, note";

AdminChangeRow ReadChange(const Stmt& s) {
  return {s.Int(0),  s.Text(1), s.Text(2),    s.Text(3),   s.Text(4),
          s.Text(5), s.Int(6),  s.OptText(7), s.OptInt(8), s.Text(9)};
}

}  // namespace

// ---- users -------------------------------------------------------------------------------

int64_t AccountRepo::CountUsers(db::Conn& c) {
  Stmt s(c, "SELECT COUNT(*) FROM users");
  s.Step();
  return s.Int(0);
}

int64_t AccountRepo::InsertUser(db::Conn& c, const UserRow& u) {
  Stmt s(c,
         "INSERT INTO users(username, display_name, password_hash, password_changed_ms, "
         "must_change, roles, created_ms, created_by) VALUES(?,?,?,?,?,?,?,?) RETURNING id");
  s.Bind(1, u.username)
      .Bind(2, u.display_name)
      .Bind(3, u.password_hash)
      .Bind(4, u.password_changed_ms)
      .Bind(5, int64_t(u.must_change))
      .Bind(6, json(u.roles).dump())
      .Bind(7, u.created_ms)
      .Bind(8, u.created_by);
  return InsertReturningId(s);
}

std::optional<UserRow> AccountRepo::UserByName(db::Conn& c, const std::string& username) {
  Stmt s(c, std::string("SELECT ") + kUserCols + " FROM users u WHERE u.username = ?");
  s.Bind(1, username);
  if (!s.Step()) return std::nullopt;
  return ReadUser(s, 0);
}

std::optional<UserRow> AccountRepo::User(db::Conn& c, int64_t id) {
  Stmt s(c, std::string("SELECT ") + kUserCols + " FROM users u WHERE u.id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadUser(s, 0);
}

std::vector<int64_t> AccountRepo::UserIdsByName(db::Conn& c) {
  Stmt s(c, "SELECT id FROM users ORDER BY username");
  std::vector<int64_t> ids;
  while (s.Step()) ids.push_back(s.Int(0));
  return ids;
}

int64_t AccountRepo::AddFailure(db::Conn& c, int64_t id) {
  Stmt u(c, "UPDATE users SET failures = failures + 1 WHERE id = ?");
  u.Bind(1, id).Run();
  Stmt q(c, "SELECT failures FROM users WHERE id = ?");
  q.Bind(1, id).Step();
  return q.Int(0);
}

void AccountRepo::Lock(db::Conn& c, int64_t id, int64_t until_ms) {
  Stmt s(c, "UPDATE users SET failures = 0, locked_until_ms = ? WHERE id = ?");
  s.Bind(1, until_ms).Bind(2, id).Run();
}

void AccountRepo::Unlock(db::Conn& c, int64_t id) {
  Stmt s(c, "UPDATE users SET failures = 0, locked_until_ms = 0 WHERE id = ?");
  s.Bind(1, id).Run();
}

void AccountRepo::LoggedIn(db::Conn& c, int64_t id, int64_t now_ms) {
  Stmt s(c, "UPDATE users SET failures = 0, last_login_ms = ? WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, id).Run();
}

void AccountRepo::SetTotpLastStep(db::Conn& c, int64_t id, int64_t step) {
  Stmt s(c, "UPDATE users SET totp_last_step = ? WHERE id = ?");
  s.Bind(1, step).Bind(2, id).Run();
}

void AccountRepo::StartTotp(db::Conn& c, int64_t id, const std::vector<uint8_t>& sealed) {
  Stmt s(c, "UPDATE users SET totp_sealed = ?, totp_last_step = 0 WHERE id = ?");
  s.Bind(1, sealed).Bind(2, id).Run();
}

void AccountRepo::EnableTotp(db::Conn& c, int64_t id, int64_t step) {
  Stmt s(c, "UPDATE users SET totp_enabled = 1, totp_last_step = ? WHERE id = ?");
  s.Bind(1, step).Bind(2, id).Run();
}

void AccountRepo::ResetTotp(db::Conn& c, int64_t id) {
  Stmt s(c,
         "UPDATE users SET totp_enabled = 0, totp_sealed = NULL, totp_last_step = 0 WHERE id = ?");
  s.Bind(1, id).Run();
}

void AccountRepo::SetPassword(db::Conn& c, int64_t id, const std::string& hash, int64_t now_ms,
                              bool must_change) {
  Stmt s(c,
         "UPDATE users SET password_hash = ?, password_changed_ms = ?, must_change = ?, "
         "failures = 0 WHERE id = ?");
  s.Bind(1, hash).Bind(2, now_ms).Bind(3, int64_t(must_change)).Bind(4, id).Run();
  AddPasswordHistory(c, id, hash, now_ms);
}

void AccountRepo::AddPasswordHistory(db::Conn& c, int64_t id, const std::string& hash,
                                     int64_t now_ms) {
  Stmt h(c, "INSERT INTO password_history(user_id, hash, changed_ms) VALUES(?,?,?)");
  h.Bind(1, id).Bind(2, hash).Bind(3, now_ms).Run();
}

std::vector<std::string> AccountRepo::RecentPasswordHashes(db::Conn& c, int64_t id, int limit) {
  // Two changes in the same millisecond keep their insertion order through the row id
  // (SQLite's implicit one; a column of that name on PostgreSQL: archive_schema.cpp).
  Stmt s(c,
         "SELECT hash FROM password_history WHERE user_id = ? ORDER BY changed_ms DESC, "
         "rowid DESC LIMIT ?");
  s.Bind(1, id).Bind(2, int64_t(limit));
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

void AccountRepo::SetRolesAndSites(db::Conn& c, int64_t id, const std::vector<std::string>& roles,
                                   const std::vector<int64_t>& sites) {
  Stmt s(c, "UPDATE users SET roles = ?, sites = ? WHERE id = ?");
  s.Bind(1, json(roles).dump()).Bind(2, json(sites).dump()).Bind(3, id).Run();
}

void AccountRepo::SetDisabled(db::Conn& c, int64_t id, bool disabled) {
  Stmt s(c, "UPDATE users SET disabled = ? WHERE id = ?");
  s.Bind(1, int64_t(disabled)).Bind(2, id).Run();
}

void AccountRepo::SetBlocked(db::Conn& c, int64_t id, const std::string& reason) {
  Stmt s(c, "UPDATE users SET blocked_reason = ? WHERE id = ?");
  s.Bind(1, reason).Bind(2, id).Run();
}

// ---- sessions ----------------------------------------------------------------------------

void AccountRepo::InsertSession(db::Conn& c, const std::string& token_hash, int64_t user_id,
                                const std::string& source, int64_t now_ms, int64_t expires_ms) {
  Stmt s(c,
         "INSERT INTO sessions(token_hash, user_id, source, created_ms, last_ms, expires_ms) "
         "VALUES(?,?,?,?,?,?)");
  s.Bind(1, token_hash)
      .Bind(2, user_id)
      .Bind(3, source)
      .Bind(4, now_ms)
      .Bind(5, now_ms)
      .Bind(6, expires_ms)
      .Run();
}

std::optional<std::pair<SessionRow, UserRow>> AccountRepo::SessionByHash(db::Conn& c,
                                                                         const std::string& hash) {
  Stmt s(c, std::string("SELECT ") + kSessionCols + ", " + kUserCols +
                " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?");
  s.Bind(1, hash);
  if (!s.Step()) return std::nullopt;
  return std::pair{ReadSession(s), ReadUser(s, 7)};
}

std::optional<SessionRow> AccountRepo::Session(db::Conn& c, int64_t id) {
  Stmt s(c, std::string("SELECT ") + kSessionCols + " FROM sessions s WHERE s.id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadSession(s);
}

void AccountRepo::TouchSession(db::Conn& c, int64_t id, int64_t now_ms) {
  Stmt s(c, "UPDATE sessions SET last_ms = ? WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, id).Run();
}

bool AccountRepo::EndSession(db::Conn& c, int64_t id, int64_t now_ms) {
  Stmt s(c, "UPDATE sessions SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  s.Bind(1, now_ms).Bind(2, id).Run();
  return c.Changes() > 0;
}

void AccountRepo::EndSessionsOf(db::Conn& c, int64_t user_id, int64_t now_ms, int64_t except_id) {
  Stmt s(c,
         "UPDATE sessions SET revoked_ms = ? WHERE user_id = ? AND id <> ? AND revoked_ms IS "
         "NULL");
  s.Bind(1, now_ms).Bind(2, user_id).Bind(3, except_id).Run();
}

std::vector<SessionRow> AccountRepo::OpenSessions(db::Conn& c, int64_t user_id,
                                                  int64_t active_after_ms) {
  Stmt s(c, std::string("SELECT ") + kSessionCols +
                " FROM sessions s WHERE s.user_id = ? AND s.revoked_ms IS NULL AND s.last_ms > ? "
                "ORDER BY s.id DESC");
  s.Bind(1, user_id).Bind(2, active_after_ms);
  std::vector<SessionRow> out;
  while (s.Step()) out.push_back(ReadSession(s));
  return out;
}

// ---- API tokens --------------------------------------------------------------------------

void AccountRepo::UpsertToken(db::Conn& c, const std::string& name, const std::string& hash,
                              const std::vector<std::string>& roles, int64_t now_ms,
                              int64_t expires_ms) {
  Stmt s(c,
         "INSERT INTO api_tokens(name, token_hash, roles, created_by, created_ms, expires_ms) "
         "VALUES(?,?,?, 'system', ?, ?) ON CONFLICT(name) DO UPDATE SET "
         "token_hash = excluded.token_hash, roles = excluded.roles, "
         "expires_ms = excluded.expires_ms");
  s.Bind(1, name).Bind(2, hash).Bind(3, json(roles).dump()).Bind(4, now_ms).Bind(5, expires_ms);
  s.Run();
}

std::optional<TokenRow> AccountRepo::TokenByHash(db::Conn& c, const std::string& hash) {
  Stmt s(c, std::string("SELECT ") + kTokenCols + " FROM api_tokens WHERE token_hash = ?");
  s.Bind(1, hash);
  if (!s.Step()) return std::nullopt;
  return ReadToken(s);
}

bool AccountRepo::TokenNameTaken(db::Conn& c, const std::string& name) {
  Stmt s(c, "SELECT 1 FROM api_tokens WHERE name = ?");
  s.Bind(1, name);
  return s.Step();
}

int64_t AccountRepo::InsertToken(db::Conn& c, const TokenRow& t, const std::string& hash) {
  Stmt s(c,
         "INSERT INTO api_tokens(name, token_hash, roles, created_by, created_ms, expires_ms, "
         "sites) VALUES(?,?,?,?,?,?,?) RETURNING id");
  s.Bind(1, t.name).Bind(2, hash).Bind(3, json(t.roles).dump()).Bind(4, t.created_by);
  s.Bind(5, t.created_ms).Bind(6, t.expires_ms).Bind(7, json(t.sites).dump());
  return InsertReturningId(s);
}

void AccountRepo::TouchToken(db::Conn& c, int64_t id, int64_t now_ms) {
  Stmt u(c, "UPDATE api_tokens SET last_used_ms = ? WHERE id = ?");
  u.Bind(1, now_ms).Bind(2, id).Run();
}

std::vector<TokenRow> AccountRepo::Tokens(db::Conn& c) {
  Stmt s(c, std::string("SELECT ") + kTokenCols + " FROM api_tokens ORDER BY id");
  std::vector<TokenRow> out;
  while (s.Step()) out.push_back(ReadToken(s));
  return out;
}

bool AccountRepo::RevokeToken(db::Conn& c, int64_t id, int64_t now_ms) {
  Stmt s(c, "UPDATE api_tokens SET revoked_ms = ? WHERE id = ? AND revoked_ms IS NULL");
  s.Bind(1, now_ms).Bind(2, id).Run();
  return c.Changes() > 0;
}

std::optional<std::string> AccountRepo::TokenCreator(db::Conn& c, const std::string& name) {
  Stmt s(c, "SELECT created_by FROM api_tokens WHERE name = ?");
  s.Bind(1, name);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

bool AccountRepo::SetTokenBlocked(db::Conn& c, const std::string& name, const std::string& reason) {
  Stmt s(c, "UPDATE api_tokens SET blocked_reason = ? WHERE name = ?");
  s.Bind(1, reason).Bind(2, name).Run();
  return c.Changes() > 0;
}

void AccountRepo::BlockTokensOf(db::Conn& c, const std::string& creator,
                                const std::string& reason) {
  Stmt s(c, "UPDATE api_tokens SET blocked_reason = ? WHERE created_by = ? AND revoked_ms IS NULL");
  s.Bind(1, reason).Bind(2, creator).Run();
}

// ---- admin changes -----------------------------------------------------------------------

int64_t AccountRepo::InsertChange(db::Conn& c, const std::string& requester,
                                  const std::string& username, const std::string& kind,
                                  const std::string& change_json, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO admin_changes(requester, username, kind, change, state, created_ms) "
         "VALUES(?,?,?,?, 'pending', ?) RETURNING id");
  s.Bind(1, requester).Bind(2, username).Bind(3, kind).Bind(4, change_json).Bind(5, now_ms);
  return InsertReturningId(s);
}

std::optional<AdminChangeRow> AccountRepo::Change(db::Conn& c, int64_t id) {
  Stmt s(c, std::string("SELECT ") + kChangeCols + " FROM admin_changes WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadChange(s);
}

std::vector<AdminChangeRow> AccountRepo::Changes(db::Conn& c, int limit) {
  Stmt s(c, std::string("SELECT ") + kChangeCols + " FROM admin_changes ORDER BY id DESC LIMIT ?");
  s.Bind(1, int64_t(limit));
  std::vector<AdminChangeRow> out;
  while (s.Step()) out.push_back(ReadChange(s));
  return out;
}

void AccountRepo::DecideChange(db::Conn& c, int64_t id, const std::string& state,
                               const std::string& approver, int64_t now_ms,
                               const std::string& note) {
  Stmt u(c,
         "UPDATE admin_changes SET state = ?, approver = ?, decided_ms = ?, note = ? WHERE id = ?");
  u.Bind(1, state).Bind(2, approver).Bind(3, now_ms).Bind(4, note).Bind(5, id).Run();
}

}  // namespace anju::server::storage
