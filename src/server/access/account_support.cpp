#include "server/access/account_support.h"
#include "core/error.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include "crypto/sm3.h"
#include "server/access/rbac.h"
#include "server/audit/audit_log.h"
#include "server/common/detailed_error.h"

namespace anju::server {

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

void NotFound(const std::string& what) {
  throw Error(ErrorCode::kNotFound, "不存在 / not found: " + what);
}

void Locked(int64_t until_ms, const std::string& what) {
  throw DetailedError(ErrorCode::kLocked,
                      what + "已锁定至 " + IsoTime(until_ms) + " / " +
                          (what == "账号" ? "account" : "address") + " locked until " +
                          IsoTime(until_ms),
                      "locked", {{"until_ms", until_ms}});
}

bool HasAdminRole(const std::vector<std::string>& roles) {
  return std::any_of(roles.begin(), roles.end(), IsAdminRole);
}

crypto::Bytes TotpAad(const std::string& username) {
  return crypto::ToBytes("anju-totp/v1/" + username);
}

void AuditAuth(db::Conn& conn, const std::string& actor, const std::string& action,
               const std::string& object, const std::string& source, const std::string& result,
               nlohmann::json detail) {
  Audit(conn, AuditEntry{actor, source, action, object, result, std::move(detail)});
}

void RequireUser(const Principal& actor) {
  if (actor.kind != "user")
    throw Error(ErrorCode::kPermissionDenied,
                "接口令牌不能管理账号 / API tokens cannot manage accounts");
}

nlohmann::json OptJson(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

bool PasswordExpired(int64_t changed_ms, const SecurityPolicy& policy, int64_t now_ms) {
  return policy.password_max_age_days > 0 &&
         now_ms - changed_ms > int64_t(policy.password_max_age_days) * kDayMs;
}

std::string PasswordRuleViolation(const std::string& username, const std::string& password) {
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
  return "";
}

}  // namespace anju::server
