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
#include "match/index.h"
#include "protocol/device_auth.h"
#include "server/accounts.h"
#include "server/face_gate.h"
#include "server/gallery_sync.h"
#include "server/http/console_files.h"
#include "server/http/http_server.h"
#include "server/http/router.h"
#include "server/retention.h"
#include "server/server.h"
#include "server/server_keys.h"
#include "server/sqlite_db.h"

#include "server/event_store.h"

namespace anju::server {

struct DeviceKeys {
  crypto::Sm2Key public_key;
  crypto::DataKey data_key;
  bool active = false;
};

struct Server::Impl {
  ServerOptions options;
  ServerKeys keys;
  std::unique_ptr<Database> db;
  std::unique_ptr<FaceGate> gate;
  std::unique_ptr<GallerySync> sync;
  std::unique_ptr<match::FeatureIndex> index;  // enrolled features (duplicate check)
  float duplicate_threshold = 0.68f;
  // The recognition workers' default level (normal): "match" in the search by photo.
  float match_threshold = 0.60f;
  std::unique_ptr<Accounts> accounts;
  std::vector<std::pair<std::string, std::string>> initial_passwords;
  crypto::TlsFiles tls;
  protocol::NonceCache nonces;
  std::mutex device_mu;
  std::map<std::string, DeviceKeys> device_cache;
  std::unique_ptr<EventStore> events;
  Router router;
  http::ConsoleFiles console;  // options.console_dir, served at "/" on the main listener
  std::unique_ptr<http::HttpServer> http;  // the main listener and the camera listener
  int bound_port = 0;
  int camera_port = 0;  // 0 = no camera listener
  // Per-camera source-address check for GA/T 1400 requests (after digest authentication,
  // routes_viid.cpp): false = refused (403). Empty = every address the listener admitted.
  std::function<bool(const std::string& camera_id, const http::Request& req)> camera_source_allowed;
  bool started = false;
  // Background work (imports, retention) stops with the server.
  std::mutex bg_mu;
  std::condition_variable bg_cv;
  std::atomic<bool> stopping{false};
  std::vector<std::thread> workers;
  std::thread retention_thread;
  // The config file's periods, overridden by those saved from the console (settings table,
  // routes_admin.cpp); every retention run reads them afresh.
  std::mutex retention_mu;
  RetentionPolicy retention;
  RetentionPolicy Retention();
  // The config file's periods with the settings saved in the archive applied over them (at
  // start, and after the console changes them).
  void LoadSettings();
  // Carries out an approved bulk deletion (routes_deletions.cpp), batch by batch; at start,
  // ResumeDeletions finishes any a stop interrupted.
  void RunDeletion(int64_t id, const std::string& actor, const std::string& source);
  void ResumeDeletions();

  // Looks a device up (cached); nullopt when unknown.
  std::optional<DeviceKeys> Device(const std::string& id);
  void ForgetDevice(const std::string& id);
  std::string VerifyDevice(const http::Request& req);
  // Authorization: Bearer <session or API token> (server/accounts.h).
  Principal Authenticate(const http::Request& req);
  // 404 when the route's path names a person, device, household, event or alarm outside
  // the principal's sites (site_scope.cpp).
  void CheckScope(const Route& route, const Request& req);
  // The device ids in P's sites (events, alarms); nullopt = every device.
  std::optional<std::vector<std::string>> ScopedDevices(const Principal& p);
  // The building ids in P's sites (snapshot cameras); nullopt = every building.
  std::optional<std::vector<int64_t>> ScopedBuildings(const Principal& p);
  // PersonId, and 404 when the person is outside P's sites; the caller holds db->mutex().
  int64_t ScopedPersonId(const Principal& p, const std::string& code);
  void LoadIndex();
  // Deletes a person's photo rows and features (inside the caller's transaction) and
  // returns the photo files to unlink once it commits. Caller holds the db lock.
  std::vector<std::filesystem::path> DeleteBiometrics(int64_t person_id);
  // After the commit: unlink the files, drop the person from the duplicate index.
  void FinishDelete(const std::string& code, const std::vector<std::filesystem::path>& files);
  // Enrols one photo for CODE (consent required, quality gate, duplicate check). Returns
  // the HTTP status and body (201 on success; 4xx bodies carry the API error plus
  // "reasons" / "candidates").
  std::pair<int, nlohmann::json> Enrol(const std::string& code, std::span<const uint8_t> image,
                                       bool accept_duplicate, const std::string& actor);
  // nullopt when CODE may be enrolled (exists, active, consent on record); else the refusal.
  // Caller holds the db lock.
  std::optional<std::pair<int, nlohmann::json>> CheckEnrollable(const std::string& code);
  // The JPEG of the enrolment photo file NAME (photos/NAME, SM4-sealed), decrypted.
  crypto::Bytes ReadPhoto(const std::string& name);
  // Duplicate check, sealed photo file (when IMAGE is not empty), rows, change log, index.
  std::pair<int, nlohmann::json> StoreTemplate(const std::string& code,
                                               std::span<const float> feature,
                                               std::span<const uint8_t> image,
                                               const nlohmann::json& assessment,
                                               bool accept_duplicate, const std::string& actor,
                                               std::chrono::steady_clock::time_point t0);
  // SITES: the importing account's scope (empty = every site; server/site_scope.h).
  void RunImport(int64_t import_id, nlohmann::json request, std::string actor,
                 std::vector<int64_t> sites);
  NewDevice CreateDevice(const std::string& name, int doors, const std::string& actor,
                         std::optional<int64_t> site_id = std::nullopt);
  // Retention schedule (events); started by Server::Start.
  void StartBackground();

  // Route groups (one file each).
  void AddSystemRoutes();
  void AddArchiveRoutes();
  void AddPersonRoutes();
  void AddEnrolmentRoutes();
  void AddDeviceRoutes();
  void AddEventRoutes();
  void AddViidRoutes();      // GA/T 1400 intake (routes_viid.cpp)
  void AddAuthRoutes();      // sessions, users, roles, tokens, exports (routes_auth.cpp)
  void AddAdminRoutes();     // retention settings, keys (routes_admin.cpp)
  void AddDeletionRoutes();  // bulk deletions with approval (routes_deletions.cpp)

  // After every authenticated admin request: audits refusals and views of a person's
  // archive or photos, counts them for the risk warning (R4.2.2.1).
  void AfterRequest(const Route& route, const Request& req, int status);
  // Raises the data-leak risk alarm for P (the account is already blocked).
  void RaiseRiskAlarm(const Principal& p);
  // The file of an approved export; *ROWS = data rows (photos). WATERMARK names the
  // export and its requester; photos carry it in every image.
  std::string RenderExport(const std::string& kind, const nlohmann::json& filter,
                           const Principal& who, const std::string& watermark, int64_t* rows);
  // kind "photos": a tar of watermarked JPEGs, a manifest and WATERMARK.txt.
  std::string RenderPhotoExport(const nlohmann::json& filter, const Principal& who,
                                const std::string& watermark, int64_t* rows);
};

// GET of approval requests (exports, deletions): one page of TABLE, newest first, through
// SELECT (its column list ... FROM TABLE) and TO_JSON; every request for an account with
// export.approve, else the caller's own.
nlohmann::json ApprovalRequestPage(Database& db, const Request& r, const std::string& table,
                                   const std::string& select,
                                   const std::function<nlohmann::json(Stmt&)>& to_json);

// A nullable integer column as JSON (null or the number).
inline nlohmann::json J(const std::optional<int64_t>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

// PATH (absolute) made canonical, or 403 forbidden when it lies outside ROOT (checked before
// anything touches the file, so a refusal says nothing about what exists there).
std::filesystem::path InsideFolder(const std::filesystem::path& root, const std::string& path,
                                   const std::string& what);

// 404 not_found naming the thing.
[[noreturn]] void NotFound(const std::string& what);
// Looks up a person's row id by identity code (404 when unknown). Caller holds the db lock.
int64_t PersonId(Database& db, const std::string& code);

}  // namespace anju::server
