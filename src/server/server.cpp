#include "server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/paths.h"
#include "core/uuid.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "server/audit/audit_log.h"
#include "server/audit/key_info.h"
#include "server/audit/sealing.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/runtime/embedded.h"
#include "server/server_state.h"
#include "server/storage/archive_schema.h"
#include "server/storage/databases.h"
#include "server/storage/device_repo.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "server/storage/postgres_blob_store.h"
#include "server/storage/site_thresholds_repo.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t PersonId(db::Conn& conn, const std::string& code) {
  return PersonService::Id(conn, code);
}

fs::path DefaultServerDataDir() {
  if (const char* d = std::getenv("ANJU_SERVER_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "anju" / "server";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".local" / "share" / "anju" / "server";
}

bool BlobsInDatabase(const ServerOptions& options) {
  return options.blobs_dir == kBlobsInDatabase;
}

bool BlobsElsewhere(const ServerOptions& options) {
  if (options.blobs_dir.empty() || BlobsInDatabase(options)) return false;
  std::error_code ec;
  const fs::path blobs = fs::weakly_canonical(fs::absolute(options.blobs_dir), ec);
  const fs::path data = fs::weakly_canonical(fs::absolute(options.data_dir), ec);
  return blobs.lexically_normal() != data.lexically_normal();
}

std::unique_ptr<runtime::BlobStore> MakeBlobStore(const ServerOptions& options, db::Db** database) {
  if (database) *database = nullptr;
  if (BlobsInDatabase(options)) {
    if (!storage::IsPostgresUrl(options.database))
      throw Error(ErrorCode::kInvalidArgument,
                  "blobs_dir = database 需要 PostgreSQL 数据库 / blobs in the database need "
                  "database = postgresql://… (the SQLite files cannot hold them)");
    auto store = storage::OpenPostgresBlobStore(options.database);
    if (database) *database = &store->database();
    return store;
  }
  return std::make_unique<runtime::FileBlobStore>(options.blobs_dir.empty() ? options.data_dir
                                                                            : options.blobs_dir);
}

namespace {

constexpr int64_t kDayS = 86'400;
constexpr int64_t kYearS = 365 * kDayS;

[[noreturn]] void BadConfig(const std::string& key, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "config key \"" + key + "\" " + why);
}

// The role and the bus must fit: without a shared bus the API servers' queue would reach
// no worker, and a worker would see no capture.
void CheckRole(const ServerOptions& options) {
  if (options.role != ServerRole::kAll && options.bus.empty())
    BadConfig("role", std::string(ServerRoleName(options.role)) +
                          " 需要共享总线 / needs a shared bus (bus = nats://…)");
  if (options.recognition_workers < 1 &&
      (options.role == ServerRole::kWorker || options.bus.empty()))
    BadConfig("recognition_workers",
              "0 leaves every capture queued: only API servers with workers elsewhere may "
              "have none");
}

// The seams OPTIONS.bus names (ServerOptions::bus). NATS: Error(kUnavailable) when its
// server cannot be reached or has no JetStream, unless OPTIONS.wait_for_bus: then waited
// for (ServerOptions::wait_for_bus).
runtime::Runtime MakeRuntime(const ServerOptions& options) {
  if (options.bus.empty()) return runtime::Runtime::Embedded();
  if (!options.bus.starts_with("nats://") && !options.bus.starts_with("tls://"))
    BadConfig("bus", "must be \"\" (embedded) or nats://HOST:PORT[,…], not " + options.bus);
  runtime::NatsOptions n;
  n.url = options.bus;
  n.prefix = options.bus_prefix;
  n.name = "anju-server";
  if (options.wait_for_bus)
    return runtime::Runtime::Nats(
        runtime::NatsConnection::ConnectWaiting(std::move(n), options.stop_waiting));
  return runtime::Runtime::Nats(std::move(n));
}

// An integer config value within [LO, HI], else Error(kInvalidArgument) naming KEY. A
// fraction or a number such as 1e99 is refused rather than converted (converting it to an
// integer type was undefined behaviour), and the bounds keep every value derived from it
// representable (seconds as milliseconds, MiB as bytes): found by fuzz_config,
// docs/fuzzing.md.
int64_t Integer(const json& v, const std::string& key, int64_t lo, int64_t hi) {
  if (!v.is_number_integer())
    BadConfig(key,
              "must be an integer, got " + (v.is_number() ? v.dump() : std::string(v.type_name())));
  const bool beyond_int64 =
      v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (beyond_int64 || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    BadConfig(key, v.dump() + " is outside " + std::to_string(lo) + " … " + std::to_string(hi));
  return v.get<int64_t>();
}
int Int(const json& v, const std::string& key, int lo, int hi) {
  return static_cast<int>(Integer(v, key, lo, hi));
}

void ApplySecurity(const json& c, SecurityPolicy& p) {
  if (!c.is_object()) throw Error(ErrorCode::kInvalidArgument, "\"security\" must be an object");
  for (const auto& [key, v] : c.items()) {
    const std::string k = "security." + key;
    if (key == "max_failures")
      p.max_failures = std::max(1, Int(v, k, 0, 1'000'000));
    else if (key == "lockout_s")
      p.lockout_ms = Integer(v, k, 0, kYearS) * 1000;
    else if (key == "source_max_failures")
      p.source_max_failures = std::max(1, Int(v, k, 0, 1'000'000));
    else if (key == "idle_timeout_s")
      p.idle_timeout_ms = std::max<int64_t>(1, Integer(v, k, 0, kYearS)) * 1000;
    else if (key == "session_max_s")
      p.session_max_ms = std::max<int64_t>(60, Integer(v, k, 0, kYearS)) * 1000;
    else if (key == "password_max_age_days")
      p.password_max_age_days = Int(v, k, 0, 36'500);
    else if (key == "password_history")
      p.password_history = Int(v, k, 0, 1000);
    else if (key == "totp_for_admins")
      p.totp_for_admins = v.get<bool>();
    else if (key == "views_per_hour_alarm")
      p.views_per_hour_alarm = Int(v, k, 0, 1'000'000'000);
    else
      throw Error(ErrorCode::kInvalidArgument, "unknown config key \"security." + key + "\"");
  }
}

void ApplySiteCalibration(const json& c, SiteCalibrationOptions& o) {
  if (c.is_boolean()) {
    o.enabled = c.get<bool>();
    return;
  }
  if (!c.is_object())
    throw Error(ErrorCode::kInvalidArgument,
                "\"site_calibration\" must be true, false or an object");
  for (const auto& [key, v] : c.items()) {
    const std::string k = "site_calibration." + key;
    if (key == "enabled")
      o.enabled = v.get<bool>();
    else if (key == "delay_s")
      o.delay_ms = Integer(v, k, 0, kYearS) * 1000;
    else if (key == "recheck_s")
      o.recheck_ms = Integer(v, k, 0, kYearS) * 1000;
    else if (key == "min_persons")
      o.site.min_persons = std::max<size_t>(2, Integer(v, k, 0, 100'000'000));
    else if (key == "target_fpir") {
      const auto t = v.get<std::vector<double>>();
      if (t.size() != 3 ||
          !std::all_of(t.begin(), t.end(), [](double x) { return x > 0 && x < 1; }))
        throw Error(ErrorCode::kInvalidArgument,
                    "site_calibration.target_fpir: three rates in (0, 1): high, normal, low");
      for (int i = 0; i < 3; ++i) o.site.target_fpir[i] = t[i];
    } else
      throw Error(ErrorCode::kInvalidArgument,
                  "unknown config key \"site_calibration." + key + "\"");
  }
}

}  // namespace

ServerRole ParseServerRole(const std::string& s) {
  if (s == "all") return ServerRole::kAll;
  if (s == "api") return ServerRole::kApi;
  if (s == "worker") return ServerRole::kWorker;
  throw Error(ErrorCode::kInvalidArgument,
              "role 须为 all、api 或 worker / role must be all, api or worker, not \"" + s + "\"");
}

const char* ServerRoleName(ServerRole r) {
  switch (r) {
    case ServerRole::kApi:
      return "api";
    case ServerRole::kWorker:
      return "worker";
    case ServerRole::kAll:
      break;
  }
  return "all";
}

namespace {

void ApplyPlatform(const json& v, PlatformOptions& p) {
  if (!v.is_object()) BadConfig("platform", "must be an object");
  for (const auto& [k, x] : v.items()) {
    const std::string key = "platform." + k;
    if (k == "level")
      p.level = x.get<std::string>();
    else if (k == "id")
      p.id = x.get<std::string>();
    else if (k == "name")
      p.name = x.get<std::string>();
    else if (k == "upstream")
      p.upstream = x.get<std::string>();
    else if (k == "upstream_secret_file")
      p.upstream_secret_file = x.get<std::string>();
    else if (k == "upstream_ca_file")
      p.upstream_ca_file = x.get<std::string>();
    else if (k == "send_photos")
      p.send_photos = x.get<bool>();
    else if (k == "heartbeat_ms")
      p.heartbeat_ms = Int(x, key, 100, 600000);
    else if (k == "health_interval_s")
      p.health_interval_s = Int(x, key, 1, 86400);
    else if (k == "batch")
      p.batch = Int(x, key, 1, 5000);
    else
      throw Error(ErrorCode::kInvalidArgument, "unknown config key \"" + key + "\"");
  }
  ValidatePlatformOptions(p);
}

}  // namespace

void ServerOptions::ApplyConfig(const json& c) {
  if (!c.is_object()) throw Error(ErrorCode::kInvalidArgument, "config must be a JSON object");
  for (const auto& [key, v] : c.items()) {
    try {
      if (key == "host")
        host = v.get<std::string>();
      else if (key == "port")
        port = Int(v, key, 0, 65'535);
      else if (key == "model_dir")
        model_dir = v.get<std::string>();
      else if (key == "thresholds_file")
        thresholds_file = v.get<std::string>();
      else if (key == "http_threads")
        http_threads = std::max(2, Int(v, key, 0, 4096));
      else if (key == "max_body_mib")
        max_body_bytes = static_cast<size_t>(Integer(v, key, 1, 4096)) << 20;
      else if (key == "enrolment_code_ttl_hours")
        enrolment_code_ttl_ms = Integer(v, key, 0, 100 * 365 * 24) * 3600 * 1000;
      else if (key == "retention_interval_s")
        retention_interval_s = Integer(v, key, 0, 10 * kYearS);
      else if (key == "snapshot_retention_months")
        snapshot_retention_months = Int(v, key, 0, 1200);
      else if (key == "video_retention_months")
        video_retention_months = Int(v, key, 0, 1200);
      else if (key == "event_retention_months")
        event_retention_months = Int(v, key, 0, 1200);
      else if (key == "quarantine_retention_months")
        quarantine_retention_months = Int(v, key, 0, 1200);
      else if (key == "console_dir")
        console_dir = v.get<std::string>();
      else if (key == "backup_dir")
        backup_dir = v.get<std::string>();
      else if (key == "import_dir")
        import_dir = v.get<std::string>();
      else if (key == "tls")
        tls = v.get<bool>();
      else if (key == "tls_cert_file")
        tls_cert_file = v.get<std::string>();
      else if (key == "tls_key_file")
        tls_key_file = v.get<std::string>();
      else if (key == "camera_listen")
        camera_listen = v.get<std::string>();
      else if (key == "bus")
        bus = v.get<std::string>();
      else if (key == "bus_prefix")
        bus_prefix = v.get<std::string>();
      else if (key == "blobs_dir")
        blobs_dir = v.get<std::string>();
      else if (key == "database") {
        database = v.get<std::string>();
        storage::CheckDatabaseLocation(database);
      } else if (key == "role")
        role = ParseServerRole(v.get<std::string>());
      else if (key == "recognition_workers")
        recognition_workers = int(Integer(v, key, 0, 64));
      else if (key == "index_precision") {
        const std::string precision = v.get<std::string>();
        match::ParsePrecision(precision);  // refused now, not at the index's load
        index_precision = precision;
      } else if (key == "snapshot_mirror")
        snapshot_mirror = v.get<bool>();
      else if (key == "camera_tls")
        camera_tls = http::ParseTlsMode(v.get<std::string>());
      else if (key == "camera_allow_from") {
        camera_allow_from = v.get<std::vector<std::string>>();
        http::AddressList::Parse(camera_allow_from);  // refused now, not at Start
      } else if (key == "http_io_threads")
        http_limits.io_threads = std::clamp(Int(v, key, 0, 4096), 1, 16);
      else if (key == "max_connections")
        http_limits.max_connections = std::max<size_t>(16, Integer(v, key, 0, 100'000'000));
      else if (key == "max_connections_per_address")
        http_limits.max_connections_per_address =
            std::max<size_t>(1, Integer(v, key, 0, 100'000'000));
      else if (key == "header_timeout_s")
        http_limits.header_timeout =
            std::chrono::seconds(std::max<int64_t>(1, Integer(v, key, 0, kDayS)));
      else if (key == "idle_timeout_s")
        http_limits.idle_timeout =
            std::chrono::seconds(std::max<int64_t>(1, Integer(v, key, 0, kDayS)));
      else if (key == "body_timeout_s")
        http_limits.body_timeout =
            std::chrono::seconds(std::max<int64_t>(1, Integer(v, key, 0, kDayS)));
      else if (key == "security")
        ApplySecurity(v, security);
      else if (key == "site_calibration")
        ApplySiteCalibration(v, site_calibration);
      else if (key == "platform")
        ApplyPlatform(v, platform);
      else if (key == "check_liveness")
        gate.check_liveness = v.get<bool>();
      else if (key == "liveness_threshold") {
        // A score is a probability; a double such as 1e300 does not fit a float (UB).
        if (!v.is_number() || v.get<double>() < 0.0 || v.get<double>() > 1.0)
          BadConfig(key, "must be a number from 0 to 1, got " + v.dump());
        gate.liveness_threshold = static_cast<float>(v.get<double>());
      } else
        throw Error(ErrorCode::kInvalidArgument, "unknown config key \"" + key + "\"");
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument,
                  "config key \"" + key + "\" has the wrong type: " + e.what());
    }
  }
}

json Server::Impl::IndexStatus() const {
  if (!index) return nullptr;
  return {{"persons", index->persons()},
          {"templates", index->size()},
          {"precision", match::PrecisionName(index->options().precision)},
          {"log_applied", index_sync ? index_sync->applied() : 0}};
}

json Server::IndexStatus() const {
  return impl_->IndexStatus();
}

void Server::Impl::LoadIndex() {
  if (gate->model_version().empty()) return;
  match::IndexOptions io;
  io.model_version = gate->model_version();
  io.precision = match::ParsePrecision(options.index_precision);
  // Person scores are fused as the levels were calibrated for (centroid in the shipped file).
  if (base_thresholds) io.fusion = base_thresholds->fusion;
  index = std::make_unique<match::FeatureIndex>(io);
  index_sync = std::make_unique<IndexSync>(*db, *index, keys.data_key, runtime.notifier.get());
  index_sync->LoadAll();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (options.data_dir.empty()) options.data_dir = DefaultServerDataDir();
  m.options = std::move(options);
  // Backups written and imports read over the API stay inside these two folders (beside
  // the data directory by default), so an API call cannot reach any other file.
  const std::string base = fs::absolute(m.options.data_dir).lexically_normal().string();
  const std::string stem = base.ends_with("/") ? base.substr(0, base.size() - 1) : base;
  if (m.options.backup_dir.empty()) m.options.backup_dir = stem + "-backups";
  if (m.options.import_dir.empty()) m.options.import_dir = stem + "-imports";
  std::error_code ec;
  fs::create_directories(m.options.data_dir, ec);
  if (ec)
    throw Error(ErrorCode::kIo, "cannot create data directory " + m.options.data_dir.string() +
                                    ": " + ec.message());
  fs::permissions(m.options.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  CheckRole(m.options);
  ValidatePlatformOptions(m.options.platform);
  m.keys = ServerKeys::LoadOrCreate(m.options.data_dir);
  m.db = storage::OpenArchiveAt(m.options.database, m.options.data_dir);
  AuditPolicy audit_policy;
  audit_policy.head_file = m.options.data_dir / "audit.head";
  AttachAuditKey(*m.db, m.keys.audit_key, audit_policy);
  m.runtime = MakeRuntime(m.options);
  m.blobs = MakeBlobStore(m.options, &m.blobs_db);
  m.accounts = std::make_unique<AccountService>(*m.db, m.keys.data_key, m.options.security,
                                                *m.runtime.state);
  m.initial_passwords = m.accounts->Bootstrap();
  // The bootstrap integration token (admin.token, readable only on this machine) carries
  // integration roles only and is good for 30 days from each start (R4.2.1.1).
  m.accounts->EnsureToken("bootstrap", m.keys.admin_token, {"operator", "installer"},
                          NowMs() + int64_t(30) * 24 * 3600 * 1000);
  if (m.options.tls ||
      (!m.options.camera_listen.empty() && m.options.camera_tls != http::TlsMode::kOff)) {
    const fs::path dir = m.options.data_dir / "tls";
    m.tls = crypto::EnsureSelfSignedCert(
        m.options.tls_cert_file.empty() ? dir / "server.crt" : m.options.tls_cert_file,
        m.options.tls_key_file.empty() ? dir / "server.key" : m.options.tls_key_file, "anju-server",
        {m.options.host});
  }
  m.gate = std::make_unique<FaceGate>(m.options.model_dir, m.options.gate);
  m.sync = std::make_unique<GalleryLog>(m.keys.data_key, m.gate->model_version());
  if (!m.gate->model_version().empty()) {
    fs::path tf = m.options.thresholds_file.empty()
                      ? match::DefaultThresholdsPath(m.options.model_dir)
                      : m.options.thresholds_file;
    try {
      if (!tf.empty()) {
        const auto th = match::Thresholds::Load(tf, m.gate->model_version());
        m.duplicate_threshold = th.at(match::SecurityLevel::kHigh).threshold;
        m.match_threshold = th.at(match::SecurityLevel::kNormal).threshold;
        m.base_thresholds = th;
      }
    } catch (const Error& e) {
      spdlog::warn("duplicate check uses the default threshold {}: {}", m.duplicate_threshold,
                   e.what());
    }
  }
  m.LoadIndex();
  // Per-site levels (docs/matching.md, "Per-site calibration"): every change of who a
  // device holds marks the galleries dirty; the service recalibrates in the background.
  m.site_thresholds = std::make_unique<SiteThresholds>(*m.db, m.keys.data_key, m.base_thresholds,
                                                       m.options.site_calibration);
  m.sync->set_on_change([&m](db::Conn& conn) {
    m.site_thresholds->GalleryChanged();
    // The other processes' indexes (a feature change always changes some gallery).
    if (m.index_sync) m.index_sync->Announce(conn);
  });
  m.devices = std::make_unique<DeviceService>(
      DeviceDeps{m.db.get(), m.sync.get(), m.keys.data_key, m.keys.server_key.PublicPem(),
                 m.gate->model_version(), m.options.enrolment_code_ttl_ms,
                 [st = m.site_thresholds.get()](db::Conn& conn, const std::string& device) {
                   return st->ForTerminals(storage::SiteThresholdsRepo::SiteOfDevice(conn, device));
                 },
                 m.runtime.distributed() ? m.runtime.notifier.get() : nullptr,
                 m.runtime.distributed() ? m.runtime.state.get() : nullptr});
  m.persons = std::make_unique<PersonService>(
      PersonDeps{m.db.get(), m.sync.get(), m.keys.data_key, m.blobs.get(), m.index.get(),
                 m.gate->model_version(), m.duplicate_threshold});
  m.enrolment = std::make_unique<EnrolmentService>(
      EnrolmentDeps{m.db.get(), m.sync.get(), m.gate.get(), m.index.get(), m.keys.data_key,
                    m.blobs.get(), m.options.import_dir, m.duplicate_threshold, m.match_threshold,
                    [&m](std::function<void()> work) {
                      std::lock_guard lock(m.bg_mu);
                      m.workers.emplace_back(std::move(work));
                    },
                    &m.stopping});
  m.places =
      std::make_unique<PlaceService>(*m.db, *m.sync, &PersonService::ScopedId,
                                     [st = m.site_thresholds.get()] { st->GalleryChanged(); });
  RetentionPolicy defaults;
  defaults.snapshot_months = m.options.snapshot_retention_months;
  defaults.video_months = m.options.video_retention_months;
  defaults.event_months = m.options.event_retention_months;
  defaults.quarantine_months = m.options.quarantine_retention_months;
  m.retention_settings = std::make_unique<RetentionSettings>(*m.db, defaults);
  m.retention_settings->Load();
  m.deletions = std::make_unique<DeletionService>(
      *m.db, *m.accounts,
      PersonDeletion{
          // PersonChanged is devices/gallery_log.h's.
          [](db::Conn& conn, const std::string& code) {
            return storage::PersonRepo::IdByCode(conn, code);
          },
          [&m](db::Conn& conn, int64_t pid) { return m.persons->DeleteBiometrics(conn, pid); },
          [](db::Conn& conn, int64_t pid) {
            storage::ErasePersonalData(conn, pid, DeletionService::kErasedName, NowMs());
          },
          [&m](db::Conn& conn, int64_t pid, const std::string& reason) {
            m.sync->PersonChanged(conn, pid, reason);
          },
          [&m](const std::string& code, const std::vector<std::string>& photos) {
            m.persons->FinishDelete(code, photos);
          }});
  if (m.runtime.leader->IsLeader(runtime::kJobDeletions)) m.deletions->ResumeUnfinished();
  m.events = m.options.database.empty()
                 ? std::make_unique<EventStore>(m.options.data_dir, m.keys.events_key, *m.blobs)
                 : std::make_unique<EventStore>(
                       storage::OpenEventsAt(m.options.database, m.options.data_dir),
                       m.options.data_dir, m.keys.events_key, *m.blobs);
  // The link to the level above (docs/platform.md): every stored event is queued for it in
  // its own transaction (R3.3.2.4); the captures' outbox joins once the snapshot service runs.
  m.uplink = std::make_unique<UplinkSender>(
      m.options.platform, UplinkSender::Deps{&m.events->database(), nullptr, m.runtime.leader.get(),
                                             [&m] { return m.PlatformHealth(); },
                                             [&m](const storage::PlatformCommand& cmd) {
                                               return m.ApplyPlatformCommand(cmd);
                                             }});
  m.events->SetOnStored(
      [&m](db::Conn& conn, const storage::EventRow& row) { m.uplink->OnEvent(conn, row); });
  m.exports = std::make_unique<ExportService>(
      ExportDeps{m.db.get(), m.accounts.get(),
                 // An approved export's events: the event store's CSV under the filter the
                 // request was approved with, limited to the requester's devices.
                 [&m](const json& filter, const std::optional<std::vector<std::string>>& devices,
                      std::ostream& out) {
                   EventQuery q;
                   q.from_ms = filter.value("from_ms", int64_t(0));
                   q.to_ms = filter.value("to_ms", int64_t(0));
                   q.door = filter.value("door", "");
                   q.device = filter.value("device", "");
                   q.person = filter.value("person", "");
                   q.kind = filter.value("kind", "");
                   q.decision = filter.value("decision", "");
                   q.devices = devices;
                   return int64_t(m.events->ExportCsv(q, out));
                 },
                 [&m](const Principal& p) { return m.ScopedDevices(p); },
                 [&m](const std::string& name) {
                   const auto b = m.enrolment->ReadPhoto(name);
                   return std::vector<uint8_t>(b.begin(), b.end());
                 },
                 [&m](const Principal& p) { m.RaiseRiskAlarm(p); }});
  m.storage = std::make_unique<StorageHealth>(
      m.options.data_dir, StorageHealth::kDefaultReserveBytes, [&m](const StorageHealth::State& s) {
        // The server's own alarm, listed by the console like a device's (R3.2.1.1).
        const json ev = {{"id", anju::NewUuid()},
                         {"kind", "alarm"},
                         {"created_ms", NowMs()},
                         {"payload",
                          {{"time_ms", s.since_ms},
                           {"alarm_type", "storage_full"},
                           {"severity", "critical"},
                           {"source", "anju-server"},
                           {"description",
                            "服务器数据盘已满，写入被拒绝（507），请释放空间 / the server's data "
                            "disk is full, writes are refused (507); free some space"},
                           {"error", s.error.substr(0, 512)},
                           {"available_bytes", s.available_bytes}}}};
        try {
          const auto r = m.events->Ingest("anju-server", json{{"events", json::array({ev})}});
          if (!r.rejected.empty())
            spdlog::error("storage_full alarm refused: {}", r.rejected[0].message);
          return r.rejected.empty();
        } catch (const std::exception& e) {
          spdlog::error("storage_full alarm not stored yet: {}", e.what());
          return false;
        }
      });
  m.storage->Prepare();
  RegisterSystemHandlers(m.router, *m.storage, [&m] {
    int64_t persons = 0, devices = 0;
    {
      auto conn = m.db->Acquire();
      persons = storage::PersonRepo::CountAll(conn);
      devices = storage::DeviceRepo::CountActive(conn);
    }
    return json{{"schema_version", m.db->schema_version()},
                {"model_version", m.gate->model_version()},
                {"persons", persons},
                {"devices", devices},
                {"role", ServerRoleName(m.options.role)},
                {"index", m.IndexStatus()}};
  });
  RegisterPlaceHandlers(m.router, *m.places);
  RegisterPersonHandlers(m.router, *m.persons);
  RegisterEnrolmentHandlers(m.router, *m.enrolment, *m.gate, [&m](const Principal& p) {
    if (m.accounts->CountViews(p, 1)) m.RaiseRiskAlarm(p);
  });
  RegisterDeviceHandlers(m.router, *m.devices);
  // Each record in its own archive transaction: the events live in events.db.
  const AuditRecorder audit = [&m](const std::string& actor, const std::string& action,
                                   const std::string& object, const json& detail) {
    auto conn = m.db->Acquire();
    Audit(conn, actor, action, object, detail);
  };
  if (m.options.platform.upper())
    m.hub = std::make_unique<PlatformHub>(m.options.platform, m.events->database(),
                                          m.keys.events_key, audit);
  // Before the event routes: GET /api/v1/events/stream must not match /events/{id}.
  m.StartSnapshotService();
  m.uplink->SetCaptures(&m.viid->database());
  RegisterPlatformHandlers(m.router, m.hub.get(), *m.uplink, m.events->database());
  RegisterViidHandlers(m.router, m.viid,
                       {[&m](const Principal& p) { return m.ScopedDevices(p); },
                        [&m](const Principal& p) { return m.ScopedBuildings(p); },
                        {},
                        audit});
  RegisterEventHandlers(m.router, *m.events,
                        {[&m](const Principal& p) { return m.ScopedDevices(p); }, audit});
  std::vector<db::Db*> postgres;
  if (!m.options.database.empty())
    postgres = {m.db.get(), &m.events->database(), &m.viid->database()};
  if (m.blobs_db) postgres.push_back(m.blobs_db);
  RegisterMaintenanceHandlers(
      m.router, {m.events.get(), [&m] { return m.Retention(); }, audit, m.options.data_dir,
                 m.options.backup_dir, &m.keys.backup_key,
                 BlobsElsewhere(m.options) ? m.blobs.get() : nullptr, std::move(postgres)});
  RegisterAuditHandlers(m.router, *m.db, m.keys.audit_key, m.options.data_dir / "audit.head");
  RegisterSessionHandlers(m.router, *m.accounts);
  RegisterUserHandlers(m.router, *m.accounts, m.options.tls);
  RegisterExportHandlers(m.router, *m.exports);
  RegisterAdminHandlers(
      m.router, *m.retention_settings, m.options.retention_interval_s,
      [&m] {
        auto conn = m.db->Acquire();
        return KeyHierarchy(
            m.options.data_dir, m.keys,
            m.options.tls ? std::optional<TlsInfo>(TlsInfo{m.tls.cert.string(), m.tls.fingerprint})
                          : std::nullopt,
            LatestAudit(conn, "keys.rotate"));
      },
      [&m](const Request& r) {
        const RotateResult res = RotateMasterKey(m.options.data_dir);
        json out;
        {
          auto conn = m.db->Acquire();
          Audit(conn, AuditEntry{r.actor,
                                 r.principal.source,
                                 "keys.rotate",
                                 "master.key",
                                 "ok",
                                 {{"old_master_id", res.old_master_id},
                                  {"new_master_id", res.new_master_id},
                                  {"rewrapped", res.rewrapped},
                                  {"recovered", res.recovered},
                                  {"note", r.body.value("note", "")}}});
          out = KeyHierarchy(m.options.data_dir, m.keys,
                             m.options.tls ? std::optional<TlsInfo>(
                                                 TlsInfo{m.tls.cert.string(), m.tls.fingerprint})
                                           : std::nullopt,
                             LatestAudit(conn, "keys.rotate"));
        }
        out["rotation"] = {{"old_master_id", res.old_master_id},
                           {"new_master_id", res.new_master_id},
                           {"rewrapped", res.rewrapped}};
        return out;
      });
  RegisterDeletionHandlers(m.router, *m.deletions);
  RegisterMatchingHandlers(m.router, *m.site_thresholds);
}

Server::~Server() {
  Stop();
  if (impl_->db) DetachAuditKey(*impl_->db);
}

namespace {

// "HOST:PORT" (an IPv6 host in brackets: "[::1]:8641").
std::pair<std::string, int> HostPort(const std::string& listen, const std::string& what) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    throw Error(ErrorCode::kInvalidArgument, what + " needs HOST:PORT: \"" + listen + "\"");
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string p = listen.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535)
    throw Error(ErrorCode::kInvalidArgument, what + ": bad port in \"" + listen + "\"");
  return {host, std::stoi(p)};
}

}  // namespace

void Server::Start() {
  Impl& m = *impl_;
  if (m.started) return;
  m.router.Install(AuthHooks{
      [&m](const http::Request& r) { return m.Authenticate(r); },
      [&m](const http::Request& r) { return AuthenticateDevice(*m.devices, r); },
      [&m](const std::string& d, const std::string& n, int status, const std::string& body) {
        return protocol::SignResponse(m.keys.server_key, d, n, status, body);
      },
      [&m](const Route& route, const Request& req, int status) {
        m.AfterRequest(route, req, status);
      },
      [&m](const Route& route, const Request& req) { m.CheckScope(route, req); }});
  if (m.index_sync) m.index_sync->Start();
  if (m.options.role == ServerRole::kWorker) {
    // A worker serves nothing: it takes the recognition queue and, when it leads them,
    // the singleton jobs (docs/distributed.md).
    m.started = true;
    m.StartBackground();
    m.site_thresholds->Start();
    m.uplink->Start();
    spdlog::info("worker: {} recognition threads, no listener", m.options.recognition_workers);
    return;
  }
  if (!m.options.console_dir.empty() && fs::exists(m.options.console_dir / "index.html") &&
      !m.console.Mount(m.options.console_dir))
    spdlog::warn("cannot serve the console from {}", m.options.console_dir.string());
  http::Limits limits = m.options.http_limits;
  limits.max_body_bytes = m.options.max_body_bytes;
  limits.worker_threads = std::max(2, m.options.http_threads);
  auto handler = [&m](http::Request& req) -> http::Response {
    static const std::set<std::string> kMethods = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"};
    if (!kMethods.count(req.method))
      return ErrorResponse(405, "method_not_allowed", "方法不允许 / method not allowed");
    if (auto res = m.router.Dispatch(req)) {
      // A refused write for lack of space raises the alarm; while the disk is full every
      // request also looks (at most once a second) whether space has returned.
      if (res->status == 507)
        m.storage->ReportFull(res->body.substr(0, 512));
      else if (m.storage->full())
        m.storage->Check();
      return std::move(*res);
    }
    // The camera listener serves GA/T 1400 only (Route::OnCameraListener).
    if (req.listener == http::Listener::kMain)
      if (auto file = m.console.Serve(req)) return std::move(*file);
    return ErrorResponse(404, "not_found", "没有这个资源 / no such resource");
  };
  auto server = std::make_unique<http::HttpServer>(limits, handler);
  http::ListenerConfig main;
  main.kind = http::Listener::kMain;
  main.host = m.options.host;
  main.port = m.options.port;
  // TLS 1.3 only (R4.2.4.1 asks for strong transport; every client we ship speaks it).
  main.tls = m.options.tls ? http::TlsMode::kTls13 : http::TlsMode::kOff;
  main.cert_file = m.tls.cert;
  main.key_file = m.tls.key;
  m.bound_port = server->Listen(main);
  m.camera_port = 0;
  if (!m.options.camera_listen.empty()) {
    http::ListenerConfig cam;
    cam.kind = http::Listener::kCamera;
    std::tie(cam.host, cam.port) = HostPort(m.options.camera_listen, "camera_listen");
    cam.tls = m.options.camera_tls;
    cam.cert_file = m.tls.cert;
    cam.key_file = m.tls.key;
    cam.allow_from = http::AddressList::Parse(m.options.camera_allow_from);
    m.camera_port = server->Listen(cam);
    spdlog::info("camera listener on {}:{} ({}, {})", cam.host, m.camera_port,
                 http::TlsModeName(cam.tls),
                 cam.allow_from.empty()
                     ? std::string("any source address")
                     : std::to_string(cam.allow_from.entries().size()) + " allowed sources");
  }
  server->Start();
  m.http = std::move(server);
  m.started = true;
  m.StartBackground();
  m.site_thresholds->Start();
  m.uplink->Start();
}

void Server::Impl::StartSnapshotService() {
  ViidDeps deps;
  deps.data_dir = options.data_dir;
  deps.database = options.database;
  deps.events = events.get();
  deps.archive = db.get();
  deps.index = [this] { return index.get(); };
  deps.model_dir = options.model_dir;
  deps.model_version = gate->model_version();
  deps.thresholds_file = options.thresholds_file.empty()
                             ? match::DefaultThresholdsPath(options.model_dir)
                             : options.thresholds_file;
  deps.site_level = [this](int64_t building,
                           match::SecurityLevel l) -> std::optional<match::LevelSetting> {
    std::optional<int64_t> site;
    {
      auto conn = db->AcquireReader();
      site = storage::SiteThresholdsRepo::SiteOfBuilding(conn, building);
    }
    if (!site) return std::nullopt;
    const auto t = site_thresholds->ForSite(*site);
    if (!t) return std::nullopt;
    return t->at(l);
  };
  deps.stopping = &stopping;
  deps.retention_months = [this] { return Retention().snapshot_months; };
  deps.queue = runtime.recognition.get();
  deps.bus = runtime.events.get();
  deps.state = runtime.state.get();
  deps.leader = runtime.leader.get();
  deps.blobs = blobs.get();
  deps.distributed = runtime.distributed();
  deps.nats = runtime.nats;
  deps.on_finished = [this](db::Conn& conn, const CaptureDetail& d,
                            const std::vector<uint8_t>& crop) {
    if (uplink) uplink->OnCapture(conn, d, crop);
  };
  ViidOptions vo;
  vo.workers = options.role == ServerRole::kApi ? 0 : options.recognition_workers;
  vo.embed_flip = options.snapshot_mirror;
  viid = std::make_shared<ViidService>(std::move(deps), keys.events_key, vo);
  viid->Start();
}

json Server::Impl::PlatformHealth() {
  json out;
  {
    auto conn = db->AcquireReader();
    out["persons"] = storage::PersonRepo::CountAll(conn);
    out["devices"] = storage::DeviceRepo::CountActive(conn);
  }
  if (viid) {
    int64_t cameras = 0, online = 0;
    for (const auto& d : viid->cameras().List()) {
      ++cameras;
      if (d.registered) ++online;
    }
    out["cameras"] = cameras;
    out["cameras_registered"] = online;
  }
  out["role"] = ServerRoleName(options.role);
  return out;
}

std::pair<std::string, std::string> Server::Impl::ApplyPlatformCommand(
    const storage::PlatformCommand& cmd) {
  // A district hands its communities' commands down; a community applies them.
  if (hub) return hub->Relay(cmd);
  if (cmd.kind != "policy") return {"failed", "未知指令 / unknown command " + cmd.kind};
  const json body = json::parse(cmd.body);
  Principal who;
  who.name = "platform:" + cmd.issuer;
  who.source = "uplink";
  json applied = json::object();
  if (body.contains("retention_max_months")) {
    // Limits from above: a period longer than the limit is shortened to it, never below
    // what the guideline requires here (RetentionSettings' own minimums, R3.3.2.6).
    static const std::map<std::string, std::string> kKeys = {
        {"snapshots", "snapshot_months"}, {"events", "event_months"}, {"video", "video_months"}};
    const RetentionPolicy now = retention_settings->Current();
    json change = json::object();
    for (const auto& [what, months] : body["retention_max_months"].items()) {
      const auto key = kKeys.find(what);
      if (key == kKeys.end()) continue;
      for (const auto& l : RetentionSettings::Limits())
        if (key->second == l.key && now.*l.field > months.get<int>())
          change[l.key] = months.get<int>();
    }
    if (!change.empty()) retention_settings->Update(change, who);
    applied["retention"] = change;
  }
  if (body.contains("alert_rules")) {
    json rules = json::array();
    for (const auto& r : body["alert_rules"]) {
      const std::string type = r["type"].get<std::string>();
      const json params = r.value("params", json::object());
      bool found = false;
      for (const auto& have : viid->alerts().Rules())
        if (have.type == type) {
          viid->alerts().UpdateRule(have.id, {{"params", params}, {"enabled", true}});
          found = true;
        }
      if (!found) {
        AlertRule rule;
        rule.type = type;
        rule.name = "上级策略 / policy from " + cmd.issuer;
        rule.params = params;
        viid->alerts().AddRule(rule);
      }
      rules.push_back(type);
    }
    applied["alert_rules"] = rules;
  }
  {
    auto conn = db->Acquire();
    Audit(conn, who.name, "platform.policy.apply", cmd.issuer + "/" + std::to_string(cmd.issuer_id),
          applied);
  }
  return {"applied", applied.dump()};
}

void Server::Impl::StartBackground() {
  if (options.retention_interval_s <= 0) return;
  retention_thread = std::thread([this] {
    std::unique_lock lock(bg_mu);
    while (!stopping) {
      if (!runtime.leader->IsLeader(runtime::kJobRetention)) {
        // Another process holds the job: look again soon, it may go away.
        bg_cv.wait_for(lock,
                       std::chrono::seconds(std::min<int64_t>(15, options.retention_interval_s)),
                       [this] { return stopping.load(); });
        continue;
      }
      lock.unlock();
      try {
        const RetentionPolicy policy = Retention();
        const auto report = RunRetention(*events, policy, std::chrono::system_clock::now(),
                                         [this](std::string a, json d) {
                                           auto conn = db->Acquire();
                                           Audit(conn, "retention", a, "events", d);
                                         });
        spdlog::info("retention: {}", ToJson(report).dump());
      } catch (const std::exception& e) {
        spdlog::error("retention failed: {}", e.what());
      }
      // The snapshot cameras' captures, their images and idle stranger clusters: the same
      // schedule and the same calendar months (R3.3.2.6).
      try {
        int64_t cutoff = 0;
        if (viid) {
          const int64_t n = viid->captures().RetainExpired(&cutoff);
          if (n > 0) spdlog::info("retention: {} captures before {} deleted", n, cutoff);
        }
      } catch (const std::exception& e) {
        spdlog::error("capture retention failed: {}", e.what());
      }
      lock.lock();
      bg_cv.wait_for(lock, std::chrono::seconds(options.retention_interval_s),
                     [this] { return stopping.load(); });
    }
  });
}

void Server::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.bg_mu);
    m.stopping = true;
  }
  m.bg_cv.notify_all();
  if (m.started) {
    if (m.http) m.http->Stop();
    m.started = false;
  }
  if (m.uplink) m.uplink->Stop();
  if (m.viid) m.viid->Stop();
  if (m.site_thresholds) m.site_thresholds->Stop();
  if (m.index_sync) m.index_sync->Stop();
  if (m.retention_thread.joinable()) m.retention_thread.join();
  for (auto& t : m.workers)
    if (t.joinable()) t.join();
  m.workers.clear();
}

int Server::port() const {
  return impl_->bound_port;
}
std::string Server::url() const {
  return std::string(impl_->options.tls ? "https://" : "http://") + impl_->options.host + ":" +
         std::to_string(impl_->bound_port);
}
int Server::camera_port() const {
  return impl_->camera_port;
}
std::string Server::camera_url() const {
  if (!impl_->camera_port) return "";
  const auto [host, port] = HostPort(impl_->options.camera_listen, "camera_listen");
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(impl_->options.camera_tls == http::TlsMode::kOff ? "http://" : "https://") +
         (v6 ? "[" + host + "]" : host) + ":" + std::to_string(impl_->camera_port);
}
http::Stats Server::http_stats() const {
  return impl_->http ? impl_->http->stats() : http::Stats{};
}
const std::string& Server::admin_token() const {
  return impl_->keys.admin_token;
}
fs::path Server::admin_token_file() const {
  return impl_->keys.admin_token_file;
}
const fs::path& Server::data_dir() const {
  return impl_->options.data_dir;
}
bool Server::first_start() const {
  return impl_->keys.created;
}
const std::vector<std::pair<std::string, std::string>>& Server::initial_passwords() const {
  return impl_->initial_passwords;
}
fs::path Server::tls_cert_file() const {
  return impl_->tls.cert;
}
const std::string& Server::tls_fingerprint() const {
  return impl_->tls.fingerprint;
}
bool Server::tls_cert_created() const {
  return impl_->tls.created;
}
NewDevice Server::CreateDevice(const std::string& name, int doors, const std::string& actor) {
  return impl_->devices->Create(name, doors, actor);
}
std::string Server::ResetPassword(const std::string& username) {
  return impl_->accounts->ResetPassword(username, "local-admin");
}
const std::string& Server::model_version() const {
  return impl_->gate->model_version();
}

json Server::OpenApi() const {
  return impl_->router.OpenApi("anju-server", "1");
}

std::vector<std::pair<std::string, std::string>> Server::Routes() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : impl_->router.routes()) out.emplace_back(r.method, r.path);
  return out;
}

}  // namespace anju::server
