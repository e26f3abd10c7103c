// anju-server: the community platform. One object owns the archive database,
// the keys, the face gate, the gallery change log, the event store and the HTTP server.
//
// In-process use (tests, `anju bench ingest`, end-to-end tests with a terminal):
//
//   server::ServerOptions o;
//   o.data_dir = dir;          // created if missing
//   o.port = 0;                // ephemeral
//   server::Server s(o);
//   s.Start();                 // listening when it returns
//   std::string url = s.url(); // "https://127.0.0.1:<port>" (trust s.tls_cert_file())
//   std::string code = s.CreateDevice("gate", 1).enrolment_code;  // or POST /api/v1/devices
//   ... protocol::DeviceClient::Register(url, key, {code, ...}) ...
//   s.Stop();                  // also done by the destructor
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "db/db.h"
#include "server/access/account_service.h"
#include "server/devices/device_service.h"
#include "server/enrolment/face_gate.h"
#include "server/http/http_server.h"
#include "server/matching/site_thresholds.h"
#include "server/platform/platform_options.h"
#include "server/runtime/blob_store.h"

namespace anju::server {

enum class ServerRole { kAll, kApi, kWorker };
// "all", "api", "worker"; Error(kInvalidArgument) for anything else.
ServerRole ParseServerRole(const std::string& s);
const char* ServerRoleName(ServerRole r);

struct ServerOptions {
  std::filesystem::path data_dir;  // required
  std::string host = "127.0.0.1";
  int port = 8640;                        // 0 = any free port
  std::filesystem::path model_dir;        // empty = DefaultModelDir()
  std::filesystem::path thresholds_file;  // empty = match::DefaultThresholdsPath()
  GatePolicy gate;
  size_t max_body_bytes = 16u << 20;
  // Worker threads that run request handlers (server/http/http_server.h). Connections cost
  // no thread: idle and kept-alive ones wait on the I/O threads.
  int http_threads = 32;
  // The rest of the HTTP front's limits (connections, deadlines, body budget);
  // max_body_bytes and http_threads above override its max_body_bytes and worker_threads.
  http::Limits http_limits;
  // The camera listener (docs/viid.md): "HOST:PORT" serving only /VIID/... (GA/T 1400
  // cameras, digest authentication), "" = none. CAMERA_TLS: plain HTTP (most cameras), TLS
  // 1.2 and up, or 1.3 only, with the main certificate. CAMERA_ALLOW_FROM: the source
  // addresses / CIDR networks admitted on it (empty = any).
  std::string camera_listen;
  http::TlsMode camera_tls = http::TlsMode::kOff;
  std::vector<std::string> camera_allow_from;
  int64_t enrolment_code_ttl_ms = 24 * 3600 * 1000;
  // Retention (R3.3.2.6, server/retention/retention.h): run at start and then every interval;
  // 0 = never scheduled (POST /api/v1/admin/retention/run only). Periods in months,
  // 0 = keep forever.
  int64_t retention_interval_s = 3600;
  int snapshot_retention_months = 12;
  int video_retention_months = 3;
  int event_retention_months = 24;
  int quarantine_retention_months = 12;
  // The web console's built files (index.html, assets/), served at "/" when the directory
  // has an index.html; empty = no console. anju-server defaults it to <bin>/../console.
  std::filesystem::path console_dir;
  // Where POST /api/v1/admin/backup writes and /backup/verify reads (empty: the data
  // directory's path + "-backups"), and where an import's photo_dir must lie (empty: +
  // "-imports"). Paths outside them are refused.
  std::filesystem::path backup_dir;
  std::filesystem::path import_dir;
  // HTTPS (TLS 1.3 only) unless false. Empty paths = <data_dir>/tls/server.crt and
  // server.key, a self-signed pair made at first start (replace both files to install a
  // real certificate).
  bool tls = true;
  std::filesystem::path tls_cert_file;
  std::filesystem::path tls_key_file;
  // The runtime seams (docs/distributed.md): "" = embedded, everything in this process;
  // "nats://HOST:PORT[,nats://…]" = NATS JetStream, shared by every server process of the
  // installation (the recognition queue, the live stream, camera sessions and nonces,
  // login counters and lockouts, the leases of the singleton jobs). BUS_PREFIX namespaces
  // its subjects, streams and buckets (two installations on one NATS).
  std::string bus;
  std::string bus_prefix = "anju";
  // Where the sealed blobs are kept — enrolment photos (photos/), event snapshots
  // (snapshots/) and capture images (captures/) — (empty: the data directory): a path every
  // server and worker process of the installation mounts when they run on several
  // machines (NFS, a cluster file system), or the word "database" (kBlobsInDatabase): the
  // schema "blobs" of the PostgreSQL database (needs database = postgresql://…;
  // server/storage/postgres_blob_store.h). A directory called "database" is "./database".
  std::filesystem::path blobs_dir;
  // Where the archive, events and captures databases are (server/storage/databases.h):
  // "" = SQLite files in the data directory; "postgresql://…" = three schemas of that
  // PostgreSQL database, shared by every server and worker process of the installation
  // (docs/distributed.md). Every process of one installation needs the same key files
  // (master.key, data.key, events.key, audit.key, server_sm2.pem, backup.key, admin.token).
  std::string database;
  // What this process does (docs/distributed.md): kAll = everything (the default);
  // kApi = the HTTP front and camera listener, no recognition (workers elsewhere take
  // the queue); kWorker = snapshot recognition only, no listener. kApi and kWorker need a
  // shared bus (nats://).
  ServerRole role = ServerRole::kAll;
  // With a bus: while its server cannot be reached at start, wait for it (retrying 0.5 s
  // doubling to 5 s) instead of failing at once, until STOP_WAITING says to give up
  // (anju-server: on SIGTERM / SIGINT), so that no supervisor has to start a process
  // again because nats-server came up after it (R3.4.2.1). Off: Error(kUnavailable) at
  // once, as a library caller (a test) wants.
  bool wait_for_bus = false;
  std::function<bool()> stop_waiting;
  // Recognition threads of kAll and kWorker (each owns a face engine, ~1 CPU core busy).
  int recognition_workers = 1;
  // Precision of the in-memory 1:N index: "int8" scans a quarter of the memory of "fp32"
  // (0.54 vs 1.8 ms per search at 20,000 templates) with the same rank-1 on LFW and FNIR
  // within 0.004 (BENCHMARKS.md, "1:N identification"); "fp32" keeps the exact scores.
  std::string index_precision = "int8";
  // Snapshot recognition embeds each face and its mirror image (R3.1.4.1): +0.17 points on
  // LFW pairs for 40% more embedding time (BENCHMARKS.md, "Snapshot fast path"); a site
  // short of recognition throughput can turn it off.
  bool snapshot_mirror = true;
  // Lockout, sessions, passwords, TOTP, risk warnings (server/accounts.h).
  SecurityPolicy security;
  // Per-site calibration after gallery changes (server/matching/site_thresholds.h).
  SiteCalibrationOptions site_calibration;
  // Community, district or city, and the link to the level above (docs/platform.md).
  PlatformOptions platform;

  // The config file: a JSON object with any of the keys "host", "port", "model_dir",
  // "thresholds_file", "max_body_mib", "http_threads", "enrolment_code_ttl_hours",
  // "retention_interval_s", "snapshot_retention_months", "video_retention_months",
  // "event_retention_months", "quarantine_retention_months", "check_liveness",
  // "console_dir", "backup_dir", "import_dir", "tls", "tls_cert_file", "tls_key_file",
  // "camera_listen", "camera_tls", "camera_allow_from", "bus", "bus_prefix", "blobs_dir",
  // "database", "role", "recognition_workers", "index_precision", "snapshot_mirror",
  // "http_io_threads", "max_connections",
  // "max_connections_per_address", "header_timeout_s", "idle_timeout_s", "body_timeout_s",
  // and "security": {"max_failures",
  // "lockout_s", "source_max_failures", "idle_timeout_s", "session_max_s",
  // "password_max_age_days", "password_history", "totp_for_admins", "views_per_hour_alarm"}.
  // "liveness_threshold", "site_calibration": false | {"enabled", "delay_s", "recheck_s",
  // "min_persons", "target_fpir": [high, normal, low]}, "platform": {"level", "id", "name",
  // "upstream", "upstream_secret_file", "upstream_ca_file", "send_photos", "heartbeat_ms",
  // "health_interval_s", "batch"}. Unknown keys, and numbers that are
  // not integers within the key's range (port 0–65535, …), are refused (Error
  // kInvalidArgument).
  void ApplyConfig(const nlohmann::json& config);
};

// $ANJU_SERVER_DIR, else $XDG_DATA_HOME/anju/server, else ~/.local/share/anju/server.
std::filesystem::path DefaultServerDataDir();

// ServerOptions::blobs_dir for blobs kept in the PostgreSQL database (R3.3.2.5).
inline constexpr const char* kBlobsInDatabase = "database";
bool BlobsInDatabase(const ServerOptions& options);

// Whether OPTIONS keep the blobs in a directory of their own (blobs_dir set and not the
// data directory; not in the database): backups then take them from there.
bool BlobsElsewhere(const ServerOptions& options);

// The blob store OPTIONS name: FileBlobStore on blobs_dir (or the data directory), or
// storage::PostgresBlobStore in options.database (Error(kInvalidArgument) when blobs_dir
// is "database" and database is not a postgresql:// URL). DATABASE, when given, is set
// to the blob store's db::Db when it is in PostgreSQL (for backups), else null.
std::unique_ptr<runtime::BlobStore> MakeBlobStore(const ServerOptions& options,
                                                  db::Db** database = nullptr);

class Server {
 public:
  // Opens the data directory (creating keys and archive.db at first start). Throws
  // anju::Error when the keys or the database cannot be opened.
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and serves on a background thread; throws Error(kUnavailable) when the address
  // cannot be bound. Also starts the retention schedule.
  void Start();
  // Stops serving and waits for the threads (idempotent).
  void Stop();

  int port() const;
  std::string url() const;  // https://host:port (http:// with tls = false)
  // The camera listener's port and URL (http:// or https://); 0 and "" without one.
  int camera_port() const;
  std::string camera_url() const;
  // Connection and refusal counters of the HTTP front (zeros before Start).
  http::Stats http_stats() const;
  // The bootstrap integration API token (roles operator + sysadmin) and its file.
  const std::string& admin_token() const;
  std::filesystem::path admin_token_file() const;
  // The initial administrators' one-time passwords, on the first start only.
  const std::vector<std::pair<std::string, std::string>>& initial_passwords() const;
  // TLS certificate file (clients trust it) and its SHA-256 fingerprint; empty without TLS.
  std::filesystem::path tls_cert_file() const;
  const std::string& tls_fingerprint() const;
  bool tls_cert_created() const;
  const std::filesystem::path& data_dir() const;
  bool first_start() const;                  // keys were created by this process
  const std::string& model_version() const;  // "" without installed models
  // Offline recovery of an account: a new one-time password (anju-server reset-password).
  std::string ResetPassword(const std::string& username);

  // Same as POST /api/v1/devices (audited as ACTOR).
  NewDevice CreateDevice(const std::string& name, int doors, const std::string& actor = "admin");

  // The OpenAPI document and the registered (method, path) pairs.
  nlohmann::json OpenApi() const;
  // This process's copy of the feature index (docs/distributed.md, "The gallery index"):
  // {"persons", "templates", "log_applied"} (the feature log's sequence number it has
  // applied); null when no face model is installed. Also in GET /healthz ("index").
  nlohmann::json IndexStatus() const;
  std::vector<std::pair<std::string, std::string>> Routes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace anju::server
