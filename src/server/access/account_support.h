// Helpers shared by the two halves of the account service (account_service.cpp,
// account_admin.cpp); not part of its interface.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "db/db.h"
#include "server/access/account_service.h"
#include "server/access/principal.h"

namespace anju::server {

inline constexpr int64_t kDayMs = 24 * 3600 * 1000;

// Session and API tokens are kept as SM3 hashes only.
std::string TokenHash(const std::string& token);
// A random 256-bit token, URL-safe base64 after PREFIX ("s." session, "t." API token).
std::string NewToken(const char* prefix);
// Local "YYYY-MM-DD HH:MM:SS".
std::string IsoTime(int64_t ms);
[[noreturn]] void NotFound(const std::string& what);
// kLocked with "until_ms"; WHAT is "账号" (account) or "来源地址" (address).
[[noreturn]] void Locked(int64_t until_ms, const std::string& what);
bool HasAdminRole(const std::vector<std::string>& roles);
crypto::Bytes TotpAad(const std::string& username);
void AuditAuth(db::Conn& conn, const std::string& actor, const std::string& action,
               const std::string& object, const std::string& source, const std::string& result,
               nlohmann::json detail = nlohmann::json::object());
// API tokens cannot manage accounts or decide approvals.
void RequireUser(const Principal& actor);
nlohmann::json OptJson(const std::optional<int64_t>& v);
bool PasswordExpired(int64_t changed_ms, const SecurityPolicy& policy, int64_t now_ms);
// Empty when PASSWORD meets the length, character-class and not-the-username rules.
std::string PasswordRuleViolation(const std::string& username, const std::string& password);

}  // namespace anju::server
