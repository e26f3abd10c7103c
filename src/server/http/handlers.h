// The handler groups of the HTTP API: each registers its routes (paths, schemas,
// permissions, summaries) on the router and calls one service. Registered in this order by
// the composition root (server.cpp); a route added earlier wins where paths overlap.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>

#include "crypto/envelope.h"
#include "db/db.h"

namespace anju::server {

class Router;
struct Request;
class AccountService;
class ExportService;
class DeletionService;
class RetentionSettings;

// Login, logout, one's password, TOTP and sessions (http/access_handlers.cpp).
void RegisterSessionHandlers(Router& router, AccountService& accounts);
// Users, roles, co-signed changes, API tokens, the security policy (TLS: whether the main
// API is HTTPS, shown with the policy).
void RegisterUserHandlers(Router& router, AccountService& accounts, bool tls);
// Bulk exports and bulk deletions with approval (http/approval_handlers.cpp).
void RegisterExportHandlers(Router& router, ExportService& exports);
void RegisterDeletionHandlers(Router& router, DeletionService& deletions);
// The audit log (http/audit_handlers.cpp).
void RegisterAuditHandlers(Router& router, db::Db& archive, const crypto::DataKey& audit_key);
// Retention periods and the key hierarchy: KEYS gives the hierarchy, ROTATE rotates the
// master key (audited) and gives the hierarchy after it.
void RegisterAdminHandlers(Router& router, RetentionSettings& retention, int64_t interval_s,
                           std::function<nlohmann::json()> keys,
                           std::function<nlohmann::json(const Request&)> rotate);

}  // namespace anju::server
