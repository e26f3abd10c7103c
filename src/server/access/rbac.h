// Roles and permissions (R4.2.1.1, docs/security.md). Roles are fixed and split the administrator's
// powers three ways (三权分立): the system administrator runs devices, configuration and
// accounts; the security administrator grants roles, keys and policies and approves
// exports; the audit administrator reads and verifies the audit log. No account may hold
// more than one of the three. Every authenticated route names one permission
// (Route::Perm); a role is a set of permissions.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace anju::server {

// Every authenticated principal holds this one (its own session, password, TOTP).
inline constexpr const char* kPermSelf = "self";

// All permissions a route may name, with a one-line description each ("中文 / English").
const std::vector<std::pair<std::string, std::string>>& AllPermissions();
bool IsPermission(const std::string& p);

// sysadmin, secadmin, auditadmin (the administrators), operator, viewer, installer.
const std::vector<std::string>& AllRoles();
bool IsRole(const std::string& role);
bool IsAdminRole(const std::string& role);  // one of the three administrators
// The roles an API token may carry (operator, viewer, installer): never an administrator's,
// so no token holds administrative powers and none can approve (R4.2.1.1).
bool IsIntegrationRole(const std::string& role);
const std::set<std::string>& RolePermissions(const std::string& role);
// Union of the roles' permissions plus kPermSelf.
std::set<std::string> PermissionsOf(const std::vector<std::string>& roles);
// Empty when ROLES may be held together by one account, else why not ("中文 / English").
std::string CheckRoleSet(const std::vector<std::string>& roles);
// Empty when ROLES may be carried by an API token (integration roles only, at least one).
std::string CheckTokenRoles(const std::vector<std::string>& roles);

}  // namespace anju::server
