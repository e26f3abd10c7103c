// Internal to src/server: everything the route handlers share (Server::Impl).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <thread>

#include "crypto/tls_cert.h"
#include "db/db.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "server/access/account_service.h"
#include "server/access/account_support.h"  // NotFound
#include "server/approvals/deletion_service.h"
#include "server/approvals/export_service.h"
#include "server/archive/person_service.h"
#include "server/archive/place_service.h"
#include "server/audit/server_keys.h"
#include "server/devices/device_service.h"
#include "server/devices/gallery_log.h"
#include "server/enrolment/enrolment_service.h"
#include "server/enrolment/face_gate.h"
#include "server/health/storage_health.h"
#include "server/http/console_files.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/matching/index_sync.h"
#include "server/matching/site_thresholds.h"
#include "server/platform/platform_hub.h"
#include "server/platform/uplink_sender.h"
#include "server/retention/retention.h"
#include "server/retention/retention_settings.h"
#include "server/runtime/runtime.h"
#include "server/server.h"
#include "server/viid/viid_service.h"

#include "server/events/event_store.h"

namespace anju::server {

struct Server::Impl {
  ServerOptions options;
  ServerKeys keys;
  // The queue, live stream, notifier, shared state and leases this process runs on
  // (embedded by default; server/runtime/runtime.h). First, so that it outlives every
  // service that uses it (DeviceService and IndexSync hold notifier subscriptions).
  runtime::Runtime runtime;
  std::unique_ptr<db::Db> db;
  std::unique_ptr<FaceGate> gate;
  std::unique_ptr<GalleryLog> sync;
  // Sealed enrolment photos, event snapshots and capture images (runtime/blob_store.h):
  // files under ServerOptions::blobs_dir (the data directory by default), or the schema
  // "blobs" of the PostgreSQL database. Before every service that keeps a pointer to it.
  std::unique_ptr<runtime::BlobStore> blobs;
  db::Db* blobs_db = nullptr;  // blobs' database when they are in PostgreSQL (backups)
  // Devices, their keys and the device protocol (devices/device_service.h).
  std::unique_ptr<DeviceService> devices;
  // Places, households and access groups (archive/place_service.h).
  std::unique_ptr<PlaceService> places;
  // Persons, consent, credentials (archive/person_service.h).
  std::unique_ptr<PersonService> persons;
  // Enrolment: the gate, photos, feature codes, the search by face, imports
  // (enrolment/enrolment_service.h).
  std::unique_ptr<EnrolmentService> enrolment;
  std::unique_ptr<match::FeatureIndex> index;  // enrolled features (duplicate check)
  // Keeps the index equal to the archive's features across processes (null: no model).
  std::unique_ptr<IndexSync> index_sync;
  float duplicate_threshold = 0.68f;
  // The recognition workers' default level (normal): "match" in the search by photo.
  float match_threshold = 0.60f;
  // The thresholds file's levels (nullopt without one): the base of every site's levels.
  std::optional<match::Thresholds> base_thresholds;
  std::unique_ptr<AccountService> accounts;
  std::unique_ptr<RetentionSettings> retention_settings;
  std::unique_ptr<ExportService> exports;
  std::unique_ptr<DeletionService> deletions;
  std::vector<std::pair<std::string, std::string>> initial_passwords;
  crypto::TlsFiles tls;
  std::unique_ptr<EventStore> events;
  // Per-site levels (server/matching/site_thresholds.h). Before the router: the snapshot
  // service, owned by the route handlers, asks it for levels until it is destroyed.
  std::unique_ptr<SiteThresholds> site_thresholds;
  // The snapshot service (GA/T 1400 cameras, viid/viid_service.h), shared with its route
  // handlers; after the event store, the index and the site levels it uses.
  std::shared_ptr<ViidService> viid;
  // The three-level platform (docs/platform.md): the link to the level above (idle without
  // an upstream) and, at a district or city, the links from below (null in a community).
  std::unique_ptr<UplinkSender> uplink;
  std::unique_ptr<PlatformHub> hub;
  // The data disk: 507 on a full disk, the storage_full alarm, /healthz (storage_health.h).
  std::unique_ptr<StorageHealth> storage;
  Router router;
  http::ConsoleFiles console;  // options.console_dir, served at "/" on the main listener
  std::unique_ptr<http::HttpServer> http;  // the main listener and the camera listener
  int bound_port = 0;
  int camera_port = 0;  // 0 = no camera listener
  bool started = false;
  // Background work (imports, retention) stops with the server.
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> workers;
  std::thread retention_thread;
  // The retention periods in force (retention/retention_settings.h); every run reads them.
  RetentionPolicy Retention() { return retention_settings->Current(); }

  // Authorization: Bearer <session or API token> (access/account_service.h).
  Principal Authenticate(const http::Request& req);
  // 404 when the route's path names a person, device, household, event or alarm outside
  // the principal's sites (http/admin_hooks.cpp, storage/site_scope.h).
  void CheckScope(const Route& route, const Request& req);
  // The device ids in P's sites (events, alarms); nullopt = every device.
  std::optional<std::vector<std::string>> ScopedDevices(const Principal& p);
  // The building ids in P's sites (snapshot cameras); nullopt = every building.
  std::optional<std::vector<int64_t>> ScopedBuildings(const Principal& p);
  // PersonId, and 404 when the person is outside P's sites; the caller holds db->mutex().
  int64_t ScopedPersonId(db::Conn& conn, const Principal& p, const std::string& code);
  // This process's feature index: {"persons", "templates", "log_applied"}; null without
  // a model.
  nlohmann::json IndexStatus() const;
  void LoadIndex();
  // Retention schedule (events); started by Server::Start.
  void StartBackground();
  // The health record this node sends up, and a command from above applied here
  // (docs/platform.md): (state, result) to confirm, state "" when relayed down.
  nlohmann::json PlatformHealth();
  std::pair<std::string, std::string> ApplyPlatformCommand(const storage::PlatformCommand& cmd);
  // Creates and starts the snapshot service on this process's runtime.
  void StartSnapshotService();

  // After every authenticated admin request: audits refusals and views of a person's
  // archive or photos, counts them for the risk warning (R4.2.2.1).
  void AfterRequest(const Route& route, const Request& req, int status);
  // Raises the data-leak risk alarm for P (the account is already blocked).
  void RaiseRiskAlarm(const Principal& p);
};

// A nullable integer column as JSON (null or the number).
inline nlohmann::json J(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

// Looks up a person's row id by identity code (404 when unknown). Caller holds the db lock.
int64_t PersonId(db::Conn& conn, const std::string& code);

}  // namespace anju::server
