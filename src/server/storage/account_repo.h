// Accounts, sessions, API tokens and pending changes to administrators in archive.db
// (schema: storage/archive_schema.cpp, versions 2 and 6). Rows in, rows out; the rules live
// in access/account_service.h. Every function runs on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

struct UserRow {
  int64_t id = 0;
  std::string username, display_name, password_hash;
  int64_t password_changed_ms = 0;
  bool must_change = false;
  std::vector<std::string> roles;
  std::vector<int64_t> sites;
  std::optional<std::vector<uint8_t>> totp_sealed;
  bool totp_enabled = false;
  int64_t totp_last_step = 0;
  int64_t failures = 0;
  int64_t locked_until_ms = 0;
  std::string blocked_reason;
  bool disabled = false;
  int64_t created_ms = 0;
  std::string created_by;
  std::optional<int64_t> last_login_ms;
};

struct SessionRow {
  int64_t id = 0;
  int64_t user_id = 0;
  std::string source;
  int64_t created_ms = 0, last_ms = 0, expires_ms = 0;
  std::optional<int64_t> revoked_ms;
};

struct TokenRow {
  int64_t id = 0;
  std::string name;
  std::vector<std::string> roles;
  std::string created_by;
  int64_t created_ms = 0;
  std::optional<int64_t> last_used_ms, revoked_ms, expires_ms;
  std::vector<int64_t> sites;
  std::string blocked_reason;
};

struct AdminChangeRow {
  int64_t id = 0;
  std::string requester, username, kind;
  std::string change;  // JSON text
  std::string state;
  int64_t created_ms = 0;
  std::optional<std::string> approver;
  std::optional<int64_t> decided_ms;
  std::string note;
};

class AccountRepo {
 public:
  // ---- users ----
  static int64_t CountUsers(db::Conn& c);
  // A new account; returns its id.
  static int64_t InsertUser(db::Conn& c, const UserRow& u);
  static std::optional<UserRow> UserByName(db::Conn& c, const std::string& username);
  static std::optional<UserRow> User(db::Conn& c, int64_t id);
  static std::vector<int64_t> UserIdsByName(db::Conn& c);  // ordered by username
  // The new failure count.
  static int64_t AddFailure(db::Conn& c, int64_t id);
  static void Lock(db::Conn& c, int64_t id, int64_t until_ms);  // and resets the count
  static void Unlock(db::Conn& c, int64_t id);
  static void LoggedIn(db::Conn& c, int64_t id, int64_t now_ms);  // resets failures
  static void SetTotpLastStep(db::Conn& c, int64_t id, int64_t step);
  static void StartTotp(db::Conn& c, int64_t id, const std::vector<uint8_t>& sealed);
  static void EnableTotp(db::Conn& c, int64_t id, int64_t step);
  static void ResetTotp(db::Conn& c, int64_t id);
  // Sets the hash (and clears failures) and records it in the password history.
  static void SetPassword(db::Conn& c, int64_t id, const std::string& hash, int64_t now_ms,
                          bool must_change);
  static void AddPasswordHistory(db::Conn& c, int64_t id, const std::string& hash, int64_t now_ms);
  static std::vector<std::string> RecentPasswordHashes(db::Conn& c, int64_t id, int limit);
  static void SetRolesAndSites(db::Conn& c, int64_t id, const std::vector<std::string>& roles,
                               const std::vector<int64_t>& sites);
  static void SetDisabled(db::Conn& c, int64_t id, bool disabled);
  static void SetBlocked(db::Conn& c, int64_t id, const std::string& reason);
  // The latest change to the users table's settings (for reports); none here.

  // ---- sessions ----
  static void InsertSession(db::Conn& c, const std::string& token_hash, int64_t user_id,
                            const std::string& source, int64_t now_ms, int64_t expires_ms);
  // The session and its account, by token hash.
  static std::optional<std::pair<SessionRow, UserRow>> SessionByHash(db::Conn& c,
                                                                     const std::string& hash);
  static std::optional<SessionRow> Session(db::Conn& c, int64_t id);
  static void TouchSession(db::Conn& c, int64_t id, int64_t now_ms);
  // True when it was open.
  static bool EndSession(db::Conn& c, int64_t id, int64_t now_ms);
  // Ends USER_ID's open sessions except EXCEPT_ID.
  static void EndSessionsOf(db::Conn& c, int64_t user_id, int64_t now_ms, int64_t except_id = 0);
  // USER_ID's sessions not ended and used after ACTIVE_AFTER_MS, newest first.
  static std::vector<SessionRow> OpenSessions(db::Conn& c, int64_t user_id,
                                              int64_t active_after_ms);

  // ---- API tokens ----
  // Creates NAME or updates its hash, roles and expiry (a revoked token stays revoked).
  static void UpsertToken(db::Conn& c, const std::string& name, const std::string& hash,
                          const std::vector<std::string>& roles, int64_t now_ms,
                          int64_t expires_ms);
  static std::optional<TokenRow> TokenByHash(db::Conn& c, const std::string& hash);
  static bool TokenNameTaken(db::Conn& c, const std::string& name);
  static int64_t InsertToken(db::Conn& c, const TokenRow& t, const std::string& hash);
  static void TouchToken(db::Conn& c, int64_t id, int64_t now_ms);
  static std::vector<TokenRow> Tokens(db::Conn& c);
  // True when it was active.
  static bool RevokeToken(db::Conn& c, int64_t id, int64_t now_ms);
  static std::optional<std::string> TokenCreator(db::Conn& c, const std::string& name);
  // True when the token exists.
  static bool SetTokenBlocked(db::Conn& c, const std::string& name, const std::string& reason);
  static void BlockTokensOf(db::Conn& c, const std::string& creator, const std::string& reason);

  // ---- changes to administrators waiting for a second person ----
  static int64_t InsertChange(db::Conn& c, const std::string& requester,
                              const std::string& username, const std::string& kind,
                              const std::string& change_json, int64_t now_ms);
  static std::optional<AdminChangeRow> Change(db::Conn& c, int64_t id);
  static std::vector<AdminChangeRow> Changes(db::Conn& c, int limit);  // newest first
  static void DecideChange(db::Conn& c, int64_t id, const std::string& state,
                           const std::string& approver, int64_t now_ms, const std::string& note);
};

}  // namespace anju::server::storage
