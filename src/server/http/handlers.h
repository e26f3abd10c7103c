// The handler groups of the HTTP API: each registers its routes (paths, schemas,
// permissions, summaries) on the router and calls one service. Registered in this order by
// the composition root (server.cpp); a route added earlier wins where paths overlap.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "server/runtime/blob_store.h"

namespace anju::server {

namespace http {
struct Request;
}
class Router;
struct Request;
class AccountService;
class ExportService;
class DeletionService;
class EventStore;
struct RetentionPolicy;
class RetentionSettings;
class DeviceService;
class PlaceService;
class PersonService;
class EnrolmentService;
class FaceGate;
struct Principal;
class StorageHealth;
class SiteThresholds;
class ViidService;
class PlatformHub;
class UplinkSender;

// Login, logout, one's password, TOTP and sessions (http/access_handlers.cpp).
void RegisterSessionHandlers(Router& router, AccountService& accounts);
// Users, roles, co-signed changes, API tokens, the security policy (TLS: whether the main
// API is HTTPS, shown with the policy).
void RegisterUserHandlers(Router& router, AccountService& accounts, bool tls);
// GET /healthz and the OpenAPI document (http/system_handlers.cpp). STATUS gives
// {"schema_version", "model_version", "persons", "devices"} (active devices).
void RegisterSystemHandlers(Router& router, StorageHealth& storage,
                            std::function<nlohmann::json()> status);
// Places, households, access groups (http/place_handlers.cpp).
void RegisterPlaceHandlers(Router& router, PlaceService& places);
// Persons, consent, credentials, history, removals, the batch (http/person_handlers.cpp).
void RegisterPersonHandlers(Router& router, PersonService& persons);
// The search by face, the quality check, photos, feature codes, imports
// (http/enrolment_handlers.cpp). VIEWED counts a search by face as a view of the archives
// it names (the risk warning, R4.2.2.1).
void RegisterEnrolmentHandlers(Router& router, EnrolmentService& enrolment, FaceGate& gate,
                               std::function<void(const Principal&)> viewed);
// Devices: administration and the device protocol (http/device_handlers.cpp).
void RegisterDeviceHandlers(Router& router, DeviceService& devices);
// The device id of a signed device-protocol request (401 otherwise): the router's device
// authentication hook.
std::string AuthenticateDevice(DeviceService& devices, const http::Request& req);
// Appends a record to the audit log (audit/audit_log.h): ACTOR did ACTION to OBJECT.
using AuditRecorder = std::function<void(const std::string& actor, const std::string& action,
                                         const std::string& object, const nlohmann::json& detail)>;

struct EventHandlerDeps {
  // The device ids in a principal's sites (storage/site_scope.h); nullopt = every device.
  std::function<std::optional<std::vector<std::string>>(const Principal&)> scoped_devices;
  AuditRecorder audit;  // snapshot views and alarm changes
};
// Events: the device upload, queries, snapshots, quarantine, alarms and their state
// (http/event_handlers.cpp).
void RegisterEventHandlers(Router& router, EventStore& events, EventHandlerDeps deps);

struct ViidHandlerDeps {
  std::function<std::optional<std::vector<std::string>>(const Principal&)> scoped_devices;
  // The building ids in a principal's sites (snapshot cameras); nullopt = every building.
  std::function<std::optional<std::vector<int64_t>>(const Principal&)> scoped_buildings;
  // A camera's own source-address list (http/address_list.h), checked after its digest
  // login: false = 403. Empty = every address the camera listener admitted.
  std::function<bool(const std::string& camera_id, const http::Request& req)> camera_source_allowed;
  AuditRecorder audit;  // camera changes, capture views, rules, webhook, forwarding
};
// GA/T 1400 intake and the admin side of snapshot cameras (http/viid_handlers.cpp). The
// handlers share SVC: it lives as long as the router.
void RegisterViidHandlers(Router& router, std::shared_ptr<ViidService> svc, ViidHandlerDeps deps);

struct MaintenanceDeps {
  EventStore* events = nullptr;
  std::function<RetentionPolicy()> retention;  // the periods in force at each run
  AuditRecorder audit;
  std::filesystem::path data_dir, backup_dir;
  const crypto::DataKey* backup_key = nullptr;
  // The blob store when it lies outside data_dir (backups take its blobs too), else null.
  const runtime::BlobStore* blobs = nullptr;
  // The databases when they are on PostgreSQL (backups take a dump of each), else empty.
  std::vector<db::Db*> postgres;
};
// Retention on demand and the online backup with its check (http/maintenance_handlers.cpp).
void RegisterMaintenanceHandlers(Router& router, MaintenanceDeps deps);
// Bulk exports and bulk deletions with approval (http/approval_handlers.cpp).
void RegisterExportHandlers(Router& router, ExportService& exports);
void RegisterDeletionHandlers(Router& router, DeletionService& deletions);
// A site's security levels (http/matching_handlers.cpp).
void RegisterMatchingHandlers(Router& router, SiteThresholds& thresholds);
// The audit log (http/audit_handlers.cpp).
// HEAD_FILE: this server's audit.head (audit/audit_log.h).
void RegisterAuditHandlers(Router& router, db::Db& archive, const crypto::DataKey& audit_key,
                           const std::filesystem::path& head_file);
// Retention periods and the key hierarchy: KEYS gives the hierarchy, ROTATE rotates the
// master key (audited) and gives the hierarchy after it.
void RegisterAdminHandlers(Router& router, RetentionSettings& retention, int64_t interval_s,
                           std::function<nlohmann::json()> keys,
                           std::function<nlohmann::json(const Request&)> rotate);

// The three-level platform (http/platform_handlers.cpp): this node's uplink and the notices
// from above always; with HUB (a district or city platform) the link from below, its nodes,
// commands down and the views across communities.
void RegisterPlatformHandlers(Router& router, PlatformHub* hub, UplinkSender& uplink,
                              db::Db& events);

}  // namespace anju::server
