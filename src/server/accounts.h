// User accounts, sessions and API tokens (issue 7, MLPS level 3 identification):
// scrypt password hashes with a policy (length, character classes, expiry, history),
// lockout per account and per source address, idle and absolute session timeouts,
// TOTP for administrators, revocable sessions and scoped API tokens. Every login, failure,
// lockout and account change is audited.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "server/http/router.h"
#include "server/sqlite_db.h"

namespace anju::server {

struct SecurityPolicy {
  int max_failures = 5;                 // per account, then locked
  int64_t lockout_ms = 30 * 60 * 1000;  // how long a lockout lasts
  // Per client address (consecutive failures, any account): higher than per account, as
  // a property office behind one NAT address shares it.
  int source_max_failures = 20;
  int64_t idle_timeout_ms = 30 * 60 * 1000;  // session idle timeout
  int64_t session_max_ms = 12 * 3600 * 1000;
  int password_max_age_days = 90;  // 0 = never expires
  int password_history = 5;        // refuse the last N passwords
  bool totp_for_admins = true;     // sysadmin / secadmin / auditadmin need TOTP
  // Risk warning (R4.2.2.1): more archive / photo views or export rows than this per user
  // and hour raises an alarm and blocks the account until a security administrator
  // reviews it. 0 = off.
  int views_per_hour_alarm = 500;
};

// The result of a successful login.
struct LoginResult {
  std::string token;
  int64_t expires_ms = 0;
  nlohmann::json user;
};

class Accounts {
 public:
  Accounts(Database& db, const crypto::DataKey& key, SecurityPolicy policy);

  // First start (no users yet): creates the three administrators "admin" (sysadmin),
  // "secadmin" and "auditadmin" with one-time passwords they must change at first login.
  // Returns (username, password) pairs; empty when users already exist.
  std::vector<std::pair<std::string, std::string>> Bootstrap();
  // Records TOKEN as the API token NAME with ROLES (integration roles only), valid until
  // EXPIRES_MS: the bootstrap integration token in admin.token, re-armed at every start by
  // whoever can read that file on the server. A revoked token stays revoked.
  void EnsureToken(const std::string& name, const std::string& token,
                   const std::vector<std::string>& roles, int64_t expires_ms);

  // POST /api/v1/auth/login. Throws ApiError 401 (wrong credentials, "totp_required"),
  // DetailedApiError 423 "locked" with "until_ms", 403 "account_disabled".
  LoginResult Login(const std::string& username, const std::string& password,
                    const std::string& totp, const std::string& source);
  // Authorization: Bearer <session or API token>. Throws ApiError(401 "unauthenticated" /
  // "session_expired") or DetailedApiError(423) for a blocked account.
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
  // Disable / enable, unlock, set a one-time password, reset TOTP. Separation of duties
  // (R4.2.1.1): the system administrator changes accounts without an administrator role;
  // only the security administrator changes an administrator's; nobody changes their own
  // here; a change to a security administrator's account waits for a second administrator
  // (returns {"request": …} then, see DecideAdminChange). Else returns the user.
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
  // Throws 403 unless APPROVER may decide a request made by REQUESTER (a principal name):
  // tokens never approve, nobody approves their own request nor one made with a token they
  // created (R4.2.1.1). The caller holds the database lock.
  void CheckApprover(const std::string& requester, const Principal& approver);
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

  // Counts N sensitive reads (archive / photo views, listed persons, exported rows) by P in
  // the current hour; a token's reads count for the token and for all the tokens of its
  // creator together. Returns true when this crosses the policy's threshold: the account
  // (or the token, or all the creator's tokens) is now blocked and the caller raises the
  // alarm.
  bool CountViews(const Principal& p, int64_t n);
  // Counts the persons of a list page that P has not seen listed this hour (paging back
  // and forth through the same page does not add up), through CountViews.
  bool CountListed(const Principal& p, const std::vector<std::string>& codes);

  const SecurityPolicy& policy() const { return policy_; }

 private:
  // Failures per client address, and per user name that names no account (locked like a
  // real one, so that a 423 does not tell which names exist). A failure window starts at
  // the first failure and lasts lockout_ms; a success does not reset it.
  struct FailureState {
    int failures = 0;
    int64_t window_start_ms = 0;
    int64_t locked_until_ms = 0;
  };
  // Counts a failure in ST; true when it locks.
  bool CountFailure(FailureState& st, int limit, int64_t now);
  // Carries out an account change (roles or credentials) that passed its checks.
  void ApplyChange(int64_t user_id, const std::string& username, const std::string& kind,
                   const nlohmann::json& change, const std::string& actor,
                   const std::string& source);
  nlohmann::json ProposeChange(const std::string& username, const std::string& kind,
                               const nlohmann::json& change, const Principal& actor);
  bool Block(const std::string& name, const std::string& why, const Principal& p);
  std::string CheckPolicy(const std::string& username, const std::string& password,
                          int64_t user_id);
  void SetPassword(int64_t user_id, const std::string& password, bool must_change);
  void Fail(int64_t user_id, const std::string& username, const std::string& source,
            const std::string& why);

  Database& db_;
  crypto::DataKey key_;
  SecurityPolicy policy_;
  std::mutex mu_;  // sources_, views_
  std::map<std::string, FailureState> sources_;
  std::map<std::string, FailureState> unknown_names_;
  std::map<std::string, std::pair<int64_t, int64_t>> views_;  // name -> (hour, count)
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> listed_;  // name -> (hour, codes)
};

// A random one-time password that satisfies the policy.
std::string OneTimePassword();

}  // namespace anju::server
