#include "server/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "crypto/sm3.h"
#include "match/thresholds.h"
#include "protocol/api_error.h"
#include "server/archive_schema.h"
#include "server/audit.h"
#include "server/sealing.h"
#include "server/server_state.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

void NotFound(const std::string& what) {
  throw protocol::ApiError(404, "not_found", "不存在 / not found: " + what);
}

int64_t PersonId(Database& db, const std::string& code) {
  Stmt s(db.handle(), "SELECT id FROM persons WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) NotFound("person " + code);
  return s.Int(0);
}

fs::path DefaultServerDataDir() {
  if (const char* d = std::getenv("ANJU_SERVER_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return fs::path(x) / "anju" / "server";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : ".") / ".local" / "share" / "anju" / "server";
}

void ServerOptions::ApplyConfig(const json& c) {
  if (!c.is_object()) throw Error(ErrorCode::kInvalidArgument, "config must be a JSON object");
  for (const auto& [key, v] : c.items()) {
    try {
      if (key == "host")
        host = v.get<std::string>();
      else if (key == "port")
        port = v.get<int>();
      else if (key == "model_dir")
        model_dir = v.get<std::string>();
      else if (key == "thresholds_file")
        thresholds_file = v.get<std::string>();
      else if (key == "http_threads")
        http_threads = std::max(2, v.get<int>());
      else if (key == "max_body_mib")
        max_body_bytes = v.get<size_t>() << 20;
      else if (key == "enrolment_code_ttl_hours")
        enrolment_code_ttl_ms = v.get<int64_t>() * 3600 * 1000;
      else if (key == "retention_interval_s")
        retention_interval_s = v.get<int64_t>();
      else if (key == "snapshot_retention_months")
        snapshot_retention_months = v.get<int>();
      else if (key == "video_retention_months")
        video_retention_months = v.get<int>();
      else if (key == "event_retention_months")
        event_retention_months = v.get<int>();
      else if (key == "quarantine_retention_months")
        quarantine_retention_months = v.get<int>();
      else if (key == "console_dir")
        console_dir = v.get<std::string>();
      else if (key == "check_liveness")
        gate.check_liveness = v.get<bool>();
      else if (key == "liveness_threshold")
        gate.liveness_threshold = v.get<float>();
      else
        throw Error(ErrorCode::kInvalidArgument, "unknown config key \"" + key + "\"");
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kInvalidArgument,
                  "config key \"" + key + "\" has the wrong type: " + e.what());
    }
  }
}

std::optional<DeviceKeys> Server::Impl::Device(const std::string& id) {
  {
    std::lock_guard lock(device_mu);
    if (auto it = device_cache.find(id); it != device_cache.end()) return it->second;
  }
  std::lock_guard dblock(db->mutex());
  Stmt s(db->handle(),
         "SELECT public_key, data_key_sealed, status FROM devices WHERE id = ? AND public_key "
         "IS NOT NULL");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  DeviceKeys k{crypto::Sm2Key::FromPublicPem(s.Text(0)),
               OpenDeviceKey(keys.data_key, id, s.Blob(1)), s.Text(2) == "active"};
  std::lock_guard lock(device_mu);
  device_cache.emplace(id, k);
  return k;
}

void Server::Impl::ForgetDevice(const std::string& id) {
  std::lock_guard lock(device_mu);
  device_cache.erase(id);
}

std::string Server::Impl::VerifyDevice(const httplib::Request& req) {
  protocol::SignedHeaders h{req.get_header_value(protocol::kHeaderDevice),
                            req.get_header_value(protocol::kHeaderTime),
                            req.get_header_value(protocol::kHeaderNonce),
                            req.get_header_value(protocol::kHeaderSignature)};
  auto refuse = [](const std::string& code, const std::string& msg) {
    throw protocol::ApiError(401, code, msg);
  };
  if (h.device.empty() || h.signature.empty())
    refuse("unauthenticated", "缺少设备签名 / device signature headers missing");
  const auto dev = Device(h.device);
  if (!dev || !dev->active)
    refuse("unauthenticated", "未知或已吊销的设备 / unknown or revoked device");
  const auto verdict =
      protocol::VerifyRequest(h, dev->public_key, req.method, req.target, req.body);
  if (verdict == protocol::AuthResult::kClockSkew)
    refuse("clock_skew", "设备时钟偏差超过 5 分钟 / device clock more than 5 minutes off");
  if (verdict != protocol::AuthResult::kOk)
    refuse("unauthenticated", "设备签名无效 / bad device signature");
  if (!nonces.CheckAndRemember(h.device, h.nonce))
    refuse("replayed", "重复的请求 / nonce already used (replayed request)");
  return h.device;
}

void Server::Impl::LoadIndex() {
  if (gate->model_version().empty()) return;
  match::IndexOptions io;
  io.model_version = gate->model_version();
  index = std::make_unique<match::FeatureIndex>(io);
  std::lock_guard lock(db->mutex());
  Stmt s(db->handle(),
         "SELECT f.id, p.code, f.sealed FROM features f JOIN persons p ON p.id = f.person_id "
         "WHERE f.model_version = ?");
  s.Bind(1, io.model_version);
  while (s.Step()) {
    const std::string code = s.Text(1);
    const auto f = OpenFeatureAtRest(keys.data_key, code, s.Blob(2));
    index->Put(code, match::TemplateId(s.Int(0)), f, io.model_version);
  }
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  if (options.data_dir.empty()) options.data_dir = DefaultServerDataDir();
  m.options = std::move(options);
  std::error_code ec;
  fs::create_directories(m.options.data_dir, ec);
  if (ec)
    throw Error(ErrorCode::kIo, "cannot create data directory " + m.options.data_dir.string() +
                                    ": " + ec.message());
  fs::permissions(m.options.data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  fs::create_directories(m.options.data_dir / "photos", ec);
  m.keys = ServerKeys::LoadOrCreate(m.options.data_dir);
  m.admin = std::make_unique<AdminAuth>(m.keys.admin_token);
  m.db = std::make_unique<Database>(m.options.data_dir / "archive.db", ArchiveMigrations());
  m.gate = std::make_unique<FaceGate>(m.options.model_dir, m.options.gate);
  m.sync = std::make_unique<GallerySync>(*m.db, m.keys.data_key, m.gate->model_version());
  if (!m.gate->model_version().empty()) {
    fs::path tf = m.options.thresholds_file.empty()
                      ? match::DefaultThresholdsPath(m.options.model_dir)
                      : m.options.thresholds_file;
    try {
      if (!tf.empty())
        m.duplicate_threshold = match::Thresholds::Load(tf, m.gate->model_version())
                                    .at(match::SecurityLevel::kHigh)
                                    .threshold;
    } catch (const Error& e) {
      spdlog::warn("duplicate check uses the default threshold {}: {}", m.duplicate_threshold,
                   e.what());
    }
  }
  m.LoadIndex();
#if ANJU_SERVER_HAVE_EVENTS
  m.events = std::make_unique<EventStore>(m.options.data_dir, m.keys.data_key);
#endif
  m.AddSystemRoutes();
  m.AddArchiveRoutes();
  m.AddPersonRoutes();
  m.AddEnrolmentRoutes();
  m.AddDeviceRoutes();
  m.AddEventRoutes();
  m.AddViidRoutes();
}

Server::~Server() {
  Stop();
}

void Server::Start() {
  Impl& m = *impl_;
  if (m.started) return;
  m.http.set_payload_max_length(m.options.max_body_bytes);
  const size_t threads = size_t(std::max(2, m.options.http_threads));
  m.http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  m.http.set_read_timeout(30, 0);
  if (!m.options.console_dir.empty() && fs::exists(m.options.console_dir / "index.html") &&
      !m.http.set_mount_point("/", m.options.console_dir.string()))
    spdlog::warn("cannot serve the console from {}", m.options.console_dir.string());
  m.http.set_write_timeout(30, 0);
  m.router.Install(m.http,
                   AuthHooks{[&m](const httplib::Request& r) { return m.admin->Authenticate(r); },
                             [&m](const httplib::Request& r) { return m.VerifyDevice(r); },
                             [&m](const std::string& d, const std::string& n, int status,
                                  const std::string& body) {
                               return protocol::SignResponse(m.keys.server_key, d, n, status, body);
                             }});
  if (m.options.port == 0) {
    m.bound_port = m.http.bind_to_any_port(m.options.host);
    if (m.bound_port <= 0)
      throw Error(ErrorCode::kUnavailable, "cannot bind " + m.options.host + " on any port");
  } else {
    if (!m.http.bind_to_port(m.options.host, m.options.port))
      throw Error(ErrorCode::kUnavailable, "cannot listen on " + m.options.host + ":" +
                                               std::to_string(m.options.port) +
                                               " (in use or not permitted)");
    m.bound_port = m.options.port;
  }
  m.http_thread = std::thread([&m] { m.http.listen_after_bind(); });
  m.started = true;
  m.StartBackground();
}

void Server::Stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.bg_mu);
    m.stopping = true;
  }
  m.bg_cv.notify_all();
  if (m.started) {
    m.http.stop();
    if (m.http_thread.joinable()) m.http_thread.join();
    m.started = false;
  }
  if (m.retention_thread.joinable()) m.retention_thread.join();
  for (auto& t : m.workers)
    if (t.joinable()) t.join();
  m.workers.clear();
}

int Server::port() const {
  return impl_->bound_port;
}
std::string Server::url() const {
  return "http://" + impl_->options.host + ":" + std::to_string(impl_->bound_port);
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
