// Who is calling the server: a user's session or an API token, with its roles, the
// permissions they give (access/rbac.h) and the sites it is limited to (R4.2.1.1).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace anju::server {

// Made by the account service for every authenticated request.
struct Principal {
  std::string name;  // the username, or "token:<name>" for an API token
  std::string kind;  // "user" or "token"
  int64_t user_id = 0;
  int64_t session_id = 0;
  std::vector<std::string> roles;
  std::set<std::string> permissions;
  std::vector<int64_t> sites;  // empty = every site
  // Non-empty while the session may only reach its own account ("self" routes):
  // "password_change_required" or "totp_enrolment_required".
  std::string restriction;
  std::string source;  // client address
  // For an API token: the account that created it (approvals and the risk warning treat
  // the token's acts as that person's, R4.2.1.1 / R4.2.2.1).
  std::string creator;
  bool Can(const std::string& permission) const { return permissions.count(permission) > 0; }
};

// The sites an account is limited to: a typed predicate that storage turns into SQL
// (storage/scope_sql.h). No sites = every site.
struct Scope {
  std::vector<int64_t> sites;
  bool unscoped() const { return sites.empty(); }
};
inline Scope ScopeOf(const Principal& p) { return Scope{p.sites}; }

}  // namespace anju::server
