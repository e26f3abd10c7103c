// User accounts, sessions and API tokens (MLPS level 3 identification, R4.2.1.1,
// docs/security.md): scrypt password hashes with a policy (length, character classes,
// expiry, history), lockout per account, per source address and per unknown name, idle and
// absolute session timeouts, TOTP for administrators, revocable sessions, API tokens with
// integration roles only, separation of duties as invariants (changes to a security
// administrator wait for a second person) and the risk warning's counters (R4.2.2.1).
// Every login, failure, lockout and account change is audited in the same transaction.
//
// Errors are anju::Error: kUnauthenticated (reasons "totp_required", "session_expired",
// "token_expired"), kPermissionDenied ("account_disabled"), kLocked (DetailedError with
// "until_ms"; reason "blocked_for_review" for a risk block), kNotFound, kConflict,
// kInvalidArgument ("weak_password").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "server/access/principal.h"
#include "server/runtime/shared_state.h"

namespace anju::server {

struct SecurityPolicy {
  int max_failures = 5;                 // per account, then locked
  int64_t lockout_ms = 30 * 60 * 1000;  // how long a lockout lasts
  // Per client address (failures within lockout_ms, any account): higher than per
  // account, as a property office behind one NAT address shares it.
  int source_max_failures = 20;
  int64_t idle_timeout_ms = 30 * 60 * 1000;  // session idle timeout
  int64_t session_max_ms = 12 * 3600 * 1000;
  int password_max_age_days = 90;  // 0 = never expires
  int password_history = 5;        // refuse the last N passwords
  bool totp_for_admins = true;     // sysadmin / secadmin / auditadmin need TOTP
  // Risk warning (R4.2.2.1): more archive / photo views, listed persons or export rows
  // than this per account (or token) and hour raises an alarm and blocks it until a
  // security administrator reviews it. 0 = off.
  int views_per_hour_alarm = 500;
};

// The result of a successful login.
struct LoginResult {
  std::string token;
  int64_t expires_ms = 0;
  nlohmann::json user;
};

class AccountService {
 public:
  // DB: the archive database; KEY seals TOTP secrets; STATE holds the failure and view
  // counters (shared between server processes when there are several).
  AccountService(db::Db& db, const crypto::DataKey& key, SecurityPolicy policy,
                 runtime::SharedState& state);

  // First start (no users yet): creates the three administrators "admin" (sysadmin),
  // "secadmin" and "auditadmin" with one-time passwords they must change at first login.
  // Returns (username, password) pairs; empty when users already exist.
  std::vector<std::pair<std::string, std::string>> Bootstrap();
  // Records TOKEN as the API token NAME with ROLES (integration roles only), valid until
  // EXPIRES_MS: the bootstrap integration token in admin.token, re-armed at every start by
  // whoever can read that file on the server. A revoked token stays revoked.
  void EnsureToken(const std::string& name, const std::string& token,
                   const std::vector<std::string>& roles, int64_t expires_ms);

  LoginResult Login(const std::string& username, const std::string& password,
                    const std::string& totp, const std::string& source);
  // The principal of a session or API token (the text after "Bearer ").
  Principal Authenticate(const std::string& bearer, const std::string& source);
  void Logout(const Principal& p);

  void ChangePassword(const Principal& p, const std::string& old_password,
                      const std::string& new_password);
  // {"secret", "otpauth_uri"}: a new secret, enabled once Confirm sees a valid code.
  nlohmann::json StartTotp(const Principal& p);
  void ConfirmTotp(const Principal& p, const std::string& code);

  nlohmann::json UserJson(int64_t user_id);
  nlohmann::json ListUsers();
  // Sysadmin: a new account without roles that must change PASSWORD at first login.
  nlohmann::json CreateUser(const std::string& username, const std::string& display_name,
                            const std::string& password, const Principal& actor);
  // Disable / enable, unlock, set a one-time password, reset TOTP. The system administrator
  // changes accounts without an administrator role; only the security administrator changes
  // an administrator's; nobody changes their own here; a change to a security
  // administrator's account waits for a second administrator (returns {"request": …}
  // then, see DecideAdminChange). Else returns the user.
  nlohmann::json UpdateUser(const std::string& username, const nlohmann::json& change,
                            const Principal& actor);
  // Secadmin: roles (three-way separation enforced) and sites, never one's own. Granting or
  // taking away the secadmin role waits for a second administrator ({"request": …}).
  nlohmann::json SetRoles(const std::string& username, const std::vector<std::string>& roles,
                          const std::vector<int64_t>& sites, const Principal& actor);
  // Changes waiting for a second administrator (newest first).
  nlohmann::json ListAdminChanges();
  // A second administrator (not the requester, not the account changed) approves or
  // rejects a pending change; approval applies it. Returns the request.
  nlohmann::json DecideAdminChange(int64_t id, bool approve, const std::string& note,
                                   const Principal& actor);
  // Throws kPermissionDenied unless APPROVER may decide a request made by REQUESTER (a
  // principal name): tokens never approve, nobody approves their own request nor one made
  // with a token they created (R4.2.1.1). On the caller's connection.
  void CheckApprover(db::Conn& conn, const std::string& requester, const Principal& approver);
  // Secadmin: lifts a risk block after review (USERNAME may be "token:NAME").
  nlohmann::json Review(const std::string& username, const std::string& note,
                        const Principal& actor);
  // Offline recovery (anju-server reset-password): a new one-time password.
  std::string ResetPassword(const std::string& username, const std::string& actor);

  nlohmann::json ListTokens();
  // {"id", "name", "token", …}; the token is shown once. Integration roles only; it expires
  // after TTL_DAYS (1–365) and is limited to SITES, which must lie within the creator's
  // own sites when the creator is limited (empty = the creator's scope).
  nlohmann::json CreateToken(const std::string& name, const std::vector<std::string>& roles,
                             const std::vector<int64_t>& sites, int ttl_days,
                             const Principal& actor);
  void RevokeToken(int64_t id, const Principal& actor);
  nlohmann::json ListSessions(int64_t user_id);
  void RevokeSession(int64_t session_id, const Principal& actor);

  // Counts N sensitive reads (archive / photo views, exported rows) by P in the current
  // hour; a token's reads count for the token and for all the tokens of its creator
  // together. Returns true when this crosses the policy's threshold: the account (or the
  // token, or all the creator's tokens) is now blocked and the caller raises the alarm.
  bool CountViews(const Principal& p, int64_t n);
  // Counts the items KEYS (persons listed, faces shown as thumbnails) that P has not seen
  // this hour, through CountViews: paging back and forth over the same items does not add
  // up. KIND separates what the keys name ("person", "thumb").
  bool CountDistinct(const Principal& p, const std::string& kind,
                     const std::vector<std::string>& keys);

  const SecurityPolicy& policy() const { return policy_; }

 private:
  std::string CheckPolicy(const std::string& username, const std::string& password,
                          int64_t user_id);
  void SetPassword(int64_t user_id, const std::string& password, bool must_change);
  void Fail(int64_t user_id, const std::string& username, const std::string& source,
            const std::string& why);
  // Counts a failure under KEY; true when it locks (the lock is kept under "lock:" + KEY).
  bool CountFailure(const std::string& key, int limit);
  int64_t LockedUntil(const std::string& key) const;
  // Carries out an account change (roles or credentials) that passed its checks.
  void ApplyChange(db::Conn& conn, int64_t user_id, const std::string& username,
                   const std::string& kind, const nlohmann::json& change,
                   const std::string& actor, const std::string& source);
  nlohmann::json ProposeChange(db::Conn& conn, const std::string& username,
                               const std::string& kind, const nlohmann::json& change,
                               const Principal& actor);
  bool Block(const std::string& name, const std::string& why, const Principal& p);

  db::Db& db_;
  crypto::DataKey key_;
  SecurityPolicy policy_;
  runtime::SharedState& state_;
};

// A random one-time password that satisfies the policy.
std::string OneTimePassword();

}  // namespace anju::server
