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
  // Records TOKEN as the API token NAME with ROLES when no token has that name (the
  // bootstrap integration token in admin.token).
  void EnsureToken(const std::string& name, const std::string& token,
                   const std::vector<std::string>& roles);

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
  // Sysadmin: disable / enable, unlock, set a one-time password.
  nlohmann::json UpdateUser(const std::string& username, const nlohmann::json& change,
                            const Principal& actor);
  // Secadmin: roles (three-way separation enforced) and sites.
  nlohmann::json SetRoles(const std::string& username, const std::vector<std::string>& roles,
                          const std::vector<int64_t>& sites, const Principal& actor);
  // Secadmin: lifts a risk block after review.
  nlohmann::json Review(const std::string& username, const std::string& note,
                        const Principal& actor);
  // Offline recovery (anju-server reset-password): a new one-time password.
  std::string ResetPassword(const std::string& username, const std::string& actor);

  nlohmann::json ListTokens();
  // {"id", "name", "token"}; the token is shown once.
  nlohmann::json CreateToken(const std::string& name, const std::vector<std::string>& roles,
                             const Principal& actor);
  void RevokeToken(int64_t id, const Principal& actor);
  nlohmann::json ListSessions(int64_t user_id);
  void RevokeSession(int64_t session_id, const Principal& actor);

  // Counts N sensitive reads (archive / photo views, exported rows) by P in the current
  // hour. Returns true when this crosses the policy's threshold: the account is now
  // blocked and the caller raises the alarm.
  bool CountViews(const Principal& p, int64_t n);

  const SecurityPolicy& policy() const { return policy_; }

 private:
  struct SourceState {
    int failures = 0;
    int64_t locked_until_ms = 0;
  };
  std::string CheckPolicy(const std::string& username, const std::string& password,
                          int64_t user_id);
  void SetPassword(int64_t user_id, const std::string& password, bool must_change);
  void Fail(int64_t user_id, const std::string& username, const std::string& source,
            const std::string& why);

  Database& db_;
  crypto::DataKey key_;
  SecurityPolicy policy_;
  std::mutex mu_;  // sources_, views_
  std::map<std::string, SourceState> sources_;
  std::map<std::string, std::pair<int64_t, int64_t>> views_;  // name -> (hour, count)
};

// A random one-time password that satisfies the policy.
std::string OneTimePassword();

}  // namespace anju::server
