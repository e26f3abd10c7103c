#include "server/viid_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <tuple>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "protocol/api_error.h"
#include "server/event_store.h"
#include "server/storage/alert_repo.h"
#include "server/storage/capture_repo.h"
#include "server/storage/captures_schema.h"
#include "server/storage/forward_repo.h"
#include "server/storage/stranger_repo.h"
#include "server/storage/viid_camera_repo.h"
#include "server/storage/viid_events_reader.h"
#include "store/gallery.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
namespace viid = protocol::viid;
using storage::AlertRepo;
using storage::CaptureRepo;
using storage::ForwardRepo;
using storage::Outbox;
using storage::StrangerRepo;
using storage::ViidCameraRepo;

namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DeviceAad(const std::string& id) {
  return "anju-viid-device/v1/" + id;
}
std::string ImageAad(const std::string& id, int n) {
  return "anju-capture/v1/" + id + "/" + std::to_string(n);
}
std::string ClipAad(const std::string& id, int n) {
  return "anju-capture-clip/v1/" + id + "/" + std::to_string(n);
}
std::string FeatureAad(const std::string& id) {
  return "anju-capture-feature/v1/" + id;
}

std::vector<uint8_t> FeatureBytes(std::span<const float> f) {
  std::vector<uint8_t> b(f.size() * sizeof(float));
  std::memcpy(b.data(), f.data(), b.size());
  return b;
}
std::vector<float> BytesFeature(const std::vector<uint8_t>& b) {
  std::vector<float> f(b.size() / sizeof(float));
  std::memcpy(f.data(), b.data(), f.size() * sizeof(float));
  return f;
}

void WriteDurable(const fs::path& file, std::span<const uint8_t> bytes) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::kIo, "cannot write " + file.string());
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      ::close(fd);
      throw Error(errno == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                  "cannot write " + file.string());
    }
    off += size_t(n);
  }
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw Error(ErrorCode::kIo, "fsync failed: " + file.string());
}

std::vector<uint8_t> ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "missing file " + file.string());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

// Minutes since local midnight at UTC+OFFSET.
int LocalMinute(int64_t ms, int offset_minutes) {
  const int64_t m = (ms / 60000 + offset_minutes) % 1440;
  return int(m < 0 ? m + 1440 : m);
}

int ParseHhMm(const json& v, const char* what) {
  if (!v.is_string()) throw protocol::ApiError(400, "bad_request", std::string(what) + ": HH:MM");
  const std::string s = v.get<std::string>();
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || std::sscanf(s.c_str(), "%2d:%2d", &h, &m) != 2 || h > 23 ||
      m > 59 || h < 0 || m < 0)
    throw protocol::ApiError(400, "bad_request",
                             std::string("时间格式 HH:MM / ") + what + " must be HH:MM");
  return h * 60 + m;
}

std::string Csv(std::string_view v) {
  if (v.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

std::string NewUuid() {
  auto b = crypto::RandomBytes(16);
  b[6] = uint8_t((b[6] & 0x0f) | 0x40);
  b[8] = uint8_t((b[8] & 0x3f) | 0x80);
  const std::string h = crypto::ToHex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) +
         "-" + h.substr(20);
}

// ---- queue -----------------------------------------------------------------------------

void InProcessQueue::Push(RecognitionJob job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::optional<RecognitionJob> InProcessQueue::Pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !jobs_.empty(); });
  if (jobs_.empty()) return std::nullopt;
  RecognitionJob j = std::move(jobs_.front());
  jobs_.pop_front();
  return j;
}

size_t InProcessQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void InProcessQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

// ---- records ---------------------------------------------------------------------------

json ViidDevice::ToJson() const {
  return {{"id", id},
          {"name", name},
          {"place", place},
          {"building_id", building_id ? json(*building_id) : json()},
          {"unit_id", unit_id ? json(*unit_id) : json()},
          {"linked_device", linked_device},
          {"status", status},
          {"registered", registered},
          {"last_seen_ms", last_seen_ms},
          {"online", registered && Now() - last_seen_ms < 3 * 60 * 1000},
          {"created_ms", created_ms}};
}

json AlertRule::ToJson() const {
  return {{"id", id},           {"type", type},     {"name", name},
          {"enabled", enabled}, {"params", params}, {"created_ms", created_ms}};
}

AlertRule ValidateRule(AlertRule r) {
  auto bad = [](const std::string& m) { throw protocol::ApiError(400, "bad_request", m); };
  if (!r.params.is_object()) bad("params 必须是对象 / params must be an object");
  json& p = r.params;
  auto positive = [&](const char* key, int64_t def, int64_t max) {
    if (!p.contains(key)) p[key] = def;
    if (!p[key].is_number_integer() || p[key].get<int64_t>() < 1 || p[key].get<int64_t>() > max)
      bad(std::string("参数超出范围 / params.") + key + " must be an integer in 1.." +
          std::to_string(max));
  };
  auto allowed = [&](std::initializer_list<const char*> keys) {
    for (auto& [k, v] : p.items()) {
      bool ok = false;
      for (const char* a : keys) ok = ok || k == a;
      if (!ok) throw protocol::ApiError(400, "unknown_field", "未知参数 / unknown params." + k);
    }
  };
  if (r.type == "repeated_stranger") {
    allowed({"count", "window_hours", "scope"});
    positive("count", 5, 100000);
    positive("window_hours", 168, 24 * 366);
    if (!p.contains("scope")) p["scope"] = "device";
    if (p["scope"] != "device" && p["scope"] != "unit")
      bad("params.scope 必须是 device 或 unit / params.scope must be device or unit");
  } else if (r.type == "stranger_at_night") {
    allowed({"start", "end", "utc_offset_minutes"});
    if (!p.contains("start")) p["start"] = "22:00";
    if (!p.contains("end")) p["end"] = "06:00";
    ParseHhMm(p["start"], "params.start");
    ParseHhMm(p["end"], "params.end");
    if (!p.contains("utc_offset_minutes")) p["utc_offset_minutes"] = 480;
    if (!p["utc_offset_minutes"].is_number_integer() ||
        std::abs(p["utc_offset_minutes"].get<int64_t>()) > 14 * 60)
      bad("params.utc_offset_minutes 无效 / invalid");
  } else if (r.type == "tenant_absent") {
    allowed({"days"});
    positive("days", 7, 3650);
  } else if (r.type == "shared_authorisation") {
    allowed({"distinct", "window_hours", "match_seconds"});
    positive("distinct", 3, 1000);
    positive("window_hours", 168, 24 * 366);
    positive("match_seconds", 10, 600);
  } else if (r.type == "blacklist") {
    allowed({"persons", "strangers"});
    if (!p.contains("persons")) p["persons"] = json::array();
    if (!p.contains("strangers")) p["strangers"] = json::array();
    if (!p["persons"].is_array() || !p["strangers"].is_array())
      bad("params.persons / strangers 必须是数组 / must be arrays");
    for (const auto& c : p["persons"])
      if (!c.is_string() || !viid::ValidId(c.get<std::string>()))
        bad("params.persons: 人员编码 / identity codes");
    for (const auto& s : p["strangers"])
      if (!s.is_number_integer()) bad("params.strangers: 陌生人编号 / stranger ids");
  } else {
    bad("未知规则类型 / unknown rule type (repeated_stranger, stranger_at_night, "
        "tenant_absent, shared_authorisation, blacklist)");
  }
  if (r.name.empty()) r.name = r.type;
  return r;
}

namespace {

storage::ViidCameraRow ToRow(const ViidDevice& d) {
  return {d.id,     d.name,       d.place,        d.building_id, d.unit_id, d.linked_device,
          d.status, d.registered, d.last_seen_ms, d.created_ms};
}

ViidDevice FromRow(storage::ViidCameraRow r) {
  ViidDevice d;
  d.id = std::move(r.id);
  d.name = std::move(r.name);
  d.place = std::move(r.place);
  d.building_id = r.building_id;
  d.unit_id = r.unit_id;
  d.linked_device = std::move(r.linked_device);
  d.status = std::move(r.status);
  d.registered = r.registered;
  d.last_seen_ms = r.last_seen_ms;
  d.created_ms = r.created_ms;
  return d;
}

}  // namespace

// ---- service ---------------------------------------------------------------------------

ViidService::ViidService(ViidDeps deps, const crypto::DataKey& key, ViidOptions options)
    : deps_(std::move(deps)),
      key_(key),
      options_(std::move(options)),
      auth_failures_(options_.auth_failures) {
  db_ = storage::OpenCapturesDb(deps_.data_dir / "captures.db");
  {
    // Registrations are sessions in memory (sessions_): after a restart none is known, and
    // the cameras are told to register again at their next keepalive.
    auto conn = db_->Acquire();
    ViidCameraRepo::UnregisterAll(conn);
  }
  nonce_key_ = crypto::RandomBytes(32);
  float low = 0.53f;
  level_ = {0.60f, 0.04f, 1e-5};
  if (!deps_.model_version.empty() && !deps_.thresholds_file.empty()) {
    try {
      const auto t = match::Thresholds::Load(deps_.thresholds_file, deps_.model_version);
      level_ = t.at(options_.level);
      low = t.at(match::SecurityLevel::kLow).threshold;
    } catch (const Error& e) {
      spdlog::warn("viid: default recognition thresholds: {}", e.what());
    }
  }
  clusters_ = std::make_unique<StrangerClusters>(
      options_.cluster_threshold > 0 ? options_.cluster_threshold : low);
  auto conn = db_->Acquire();
  for (const auto& row : StrangerRepo::Centroids(conn)) {
    try {
      const auto c = crypto::Open(key_, row.centroid_sealed,
                                  crypto::AsBytes("anju-stranger/v1/" + std::to_string(row.id)));
      clusters_->Load(row.id, BytesFeature(c), row.members);
    } catch (const Error& e) {
      spdlog::error("viid: stranger {} does not open: {}", row.id, e.what());
    }
  }
  queue_ = std::make_unique<InProcessQueue>();
}

ViidService::~ViidService() {
  Stop();
}

bool ViidService::Stopping() const {
  return stop_ || (deps_.stopping && deps_.stopping->load());
}

void ViidService::Start() {
  if (started_) return;
  started_ = true;
  // Captures that were stored but not recognised before a restart.
  {
    auto conn = db_->Acquire();
    for (auto& id : CaptureRepo::Queued(conn)) queue_->Push({std::move(id), Now(), {}});
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i)
    threads_.emplace_back([this] { Worker(); });
  threads_.emplace_back([this] { Tail(); });
  threads_.emplace_back([this] { Periodic(); });
  threads_.emplace_back([this] { WebhookSender(); });
  threads_.emplace_back([this] { ForwardSender(); });
}

void ViidService::Stop() {
  stop_ = true;
  live_cv_.notify_all();
  queue_->Close();
  bus_.Close();
  bg_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

// ---- devices ---------------------------------------------------------------------------

ViidDevice ViidService::AddDevice(ViidDevice d, const std::string& password) {
  if (!viid::ValidId(d.id))
    throw protocol::ApiError(400, "bad_request",
                             "设备编号应为 1-64 位 [A-Za-z0-9_.-] / id: 1-64 of [A-Za-z0-9_.-]");
  if (password.size() < 8)
    throw protocol::ApiError(400, "bad_request", "密码至少 8 位 / password: at least 8 characters");
  const std::string ha1 = viid::DigestHa1(d.id, options_.realm, password);
  const auto sealed = crypto::Seal(key_, crypto::AsBytes(ha1), crypto::AsBytes(DeviceAad(d.id)));
  d.created_ms = Now();
  auto conn = db_->Acquire();
  if (ViidCameraRepo::Exists(conn, d.id))
    throw protocol::ApiError(409, "conflict", "设备已存在 / device exists: " + d.id);
  ViidCameraRepo::Insert(conn, ToRow(d), options_.realm, sealed);
  return d;
}

std::vector<ViidDevice> ViidService::Devices() {
  auto conn = db_->Acquire();
  std::vector<ViidDevice> out;
  for (auto& row : ViidCameraRepo::List(conn)) out.push_back(FromRow(std::move(row)));
  return out;
}

std::optional<ViidDevice> ViidService::Device(const std::string& id) {
  auto conn = db_->Acquire();
  auto row = ViidCameraRepo::Get(conn, id);
  if (!row) return std::nullopt;
  return FromRow(std::move(*row));
}

bool ViidService::RemoveDevice(const std::string& id) {
  {
    std::lock_guard lock(session_mu_);
    sessions_.erase(id);
  }
  auto conn = db_->Acquire();
  // Revoked, not deleted: its captures keep naming it.
  return ViidCameraRepo::Revoke(conn, id);
}

// ---- GA/T 1400 -------------------------------------------------------------------------

namespace {
ViidService::HttpAnswer StatusAnswer(int http, const std::string& url, int code,
                                     const std::string& text, const std::string& id) {
  ViidService::HttpAnswer a;
  a.status = http;
  a.body = viid::ToJson(viid::ResponseStatus{url, code, text, id, ""});
  return a;
}
}  // namespace

std::string ViidService::NewNonce(int64_t now_ms) const {
  const std::string t = std::to_string(now_ms);
  const auto mac = crypto::HmacSm3(nonce_key_, options_.realm + "|" + t);
  return t + "." + crypto::ToHex(crypto::ByteView(mac.data(), 16));
}

bool ViidService::NonceFresh(const std::string& nonce, int64_t now_ms, bool* valid) const {
  *valid = false;
  const size_t dot = nonce.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 15) return false;
  const std::string t = nonce.substr(0, dot);
  if (t.find_first_not_of("0123456789") != std::string::npos) return false;
  const auto mac = crypto::HmacSm3(nonce_key_, options_.realm + "|" + t);
  const std::string want = crypto::ToHex(crypto::ByteView(mac.data(), 16));
  const std::string got = nonce.substr(dot + 1);
  if (!crypto::ConstantTimeEqual(crypto::AsBytes(want), crypto::AsBytes(got))) return false;
  *valid = true;
  const int64_t issued = std::stoll(t);
  return now_ms - issued <= options_.nonce_ttl_ms && issued <= now_ms + 60000;
}

void ViidService::OnAuthFailure(const std::string& remote_addr, const std::string& username,
                                const std::string& why) {
  // The username is the client's text: only id characters reach the log and the alarm.
  std::string camera = username.substr(0, 64);
  for (auto& ch : camera)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-')
      ch = '?';
  spdlog::warn("viid: digest login failed for camera '{}' from {}: {}", camera, remote_addr,
               why.substr(0, 200));
  const int64_t now = Now();
  const auto trip = auth_failures_.Record(remote_addr, camera, now);
  if (!trip) return;
  const auto& o = auth_failures_.options();
  const std::string window = std::to_string(o.window_ms / 60000);
  std::string who_zh, who_en;
  if (!trip->address.empty()) who_zh += "来自 " + trip->address, who_en += "from " + trip->address;
  if (!trip->camera.empty()) {
    who_zh += std::string(who_zh.empty() ? "" : "、") + "摄像机 " + trip->camera;
    who_en += std::string(who_en.empty() ? "" : ", ") + "as camera " + trip->camera;
  }
  const int failures = std::max(trip->address.empty() ? 0 : trip->address_failures,
                                trip->camera.empty() ? 0 : trip->camera_failures);
  // The server's own alarm, stored like the others (R4.2.2.1 risk warning); one per address
  // or camera per window (AuthFailureWatch).
  const json evidence = {{"address", trip->address},
                         {"camera", trip->camera},
                         {"failures", failures},
                         {"window_s", o.window_ms / 1000},
                         {"last_reason", why.substr(0, 200)}};
  const bool raised = RaiseAlarm(
      "camera_auth_failure|" + trip->address + "|" + trip->camera, o.window_ms, "",
      "camera_auth_failure", "major",
      "摄像机登录反复失败（" + who_zh + "，" + window + " 分钟内 " + std::to_string(failures) +
          " 次），可能在猜测密码或密码配置错误 / repeated failed camera logins (" + who_en + ", " +
          std::to_string(failures) + " within " + window +
          " minutes): password guessing or a misconfigured camera",
      "", now, evidence, {});
  spdlog::warn("viid: {} failed camera logins {} within {} min: alarm {}", failures, who_en, window,
               raised ? "raised" : "not stored");
}

std::variant<std::string, ViidService::HttpAnswer> ViidService::Authenticate(
    const std::string& method, const std::string& target, const std::string& authorization,
    const std::string& user_identify, const std::string& remote_addr, bool require_digest) {
  const int64_t now = Now();
  auto challenge = [&](bool stale, const std::string& why) {
    HttpAnswer a =
        StatusAnswer(401, target, viid::kInvalidOperation, "未认证 / unauthorised: " + why, "");
    viid::DigestChallenge c;
    c.realm = options_.realm;
    c.nonce = NewNonce(now);
    const auto opaque = crypto::HmacSm3(nonce_key_, std::string_view("opaque"));
    c.opaque = crypto::ToHex(crypto::ByteView(opaque.data(), 8));
    c.stale = stale;
    a.headers.emplace_back("WWW-Authenticate", viid::FormatChallenge(c));
    return a;
  };
  // A wrong password, an unknown camera, a malformed or replayed Authorization: a failed
  // login. A foreign or stale nonce is not (the previous server process issued it).
  auto failed = [&](const std::string& camera, const std::string& why) {
    OnAuthFailure(remote_addr, camera, why);
    return challenge(false, why);
  };
  if (!authorization.empty()) {
    viid::DigestCredentials c;
    try {
      c = viid::ParseAuthorization(authorization);
    } catch (const Error& e) {
      return failed("", e.what());
    }
    if (c.realm != options_.realm) return challenge(false, "realm");
    if (c.uri != target) return challenge(false, "uri");
    bool nonce_valid = false;
    const bool fresh = NonceFresh(c.nonce, now, &nonce_valid);
    if (!nonce_valid) return challenge(false, "nonce");
    std::string ha1, status;
    {
      auto conn = db_->Acquire();
      const auto cred = ViidCameraRepo::Credentials(conn, c.username);
      if (!cred) return failed(c.username, "credentials");
      try {
        const auto h = crypto::Open(key_, cred->ha1_sealed, crypto::AsBytes(DeviceAad(c.username)));
        ha1.assign(h.begin(), h.end());
      } catch (const Error&) {
        return failed(c.username, "credentials");
      }
      status = cred->status;
    }
    if (!viid::VerifyDigest(c, ha1, method)) return failed(c.username, "credentials");
    if (status != "active")
      return StatusAnswer(403, target, viid::kInvalidOperation, "设备已吊销 / device revoked",
                          c.username);
    if (!fresh) return challenge(true, "stale nonce");
    const uint32_t nc = uint32_t(std::stoul(c.nc, nullptr, 16));
    bool replayed = false;
    {
      std::lock_guard lock(session_mu_);
      if (nonce_counts_.size() > 10000) nonce_counts_.clear();
      auto [it, inserted] = nonce_counts_.emplace(c.nonce, nc);
      if (!inserted) {
        replayed = nc <= it->second;
        if (!replayed) it->second = nc;
      }
    }
    if (replayed) return failed(c.username, "nonce count replayed");
    return c.username;
  }
  if (!require_digest && !user_identify.empty()) {
    std::lock_guard lock(session_mu_);
    auto it = sessions_.find(user_identify);
    if (it != sessions_.end() && it->second.addr == remote_addr && it->second.expires_ms > now)
      return user_identify;
  }
  return challenge(false, "credentials required");
}

ViidService::HttpAnswer ViidService::Register(const std::string& device, const std::string& body,
                                              const std::string& remote_addr) {
  std::string id;
  try {
    id = viid::ParseSystemObject(body, viid::SystemObject::kRegister);
  } catch (const Error& e) {
    return StatusAnswer(400, viid::kPathRegister, viid::kInvalidJsonContent, e.what(), device);
  }
  if (id != device)
    return StatusAnswer(403, viid::kPathRegister, viid::kInvalidOperation,
                        "DeviceID 与认证用户不符 / DeviceID differs from the digest username", id);
  const int64_t now = Now();
  {
    auto conn = db_->Acquire();
    ViidCameraRepo::SetRegistered(conn, id, now);
  }
  {
    std::lock_guard lock(session_mu_);
    sessions_[id] = {remote_addr, now + options_.session_ttl_ms};
  }
  spdlog::info("viid: camera {} registered from {}", id, remote_addr);
  return StatusAnswer(200, viid::kPathRegister, viid::kOk, "正常 / OK", id);
}

ViidService::HttpAnswer ViidService::Unregister(const std::string& device,
                                                const std::string& body) {
  std::string id;
  try {
    id = viid::ParseSystemObject(body, viid::SystemObject::kUnRegister);
  } catch (const Error& e) {
    return StatusAnswer(400, viid::kPathUnRegister, viid::kInvalidJsonContent, e.what(), device);
  }
  if (id != device)
    return StatusAnswer(403, viid::kPathUnRegister, viid::kInvalidOperation,
                        "DeviceID 与认证用户不符 / DeviceID differs from the authenticated device",
                        id);
  {
    std::lock_guard lock(session_mu_);
    sessions_.erase(id);
  }
  auto conn = db_->Acquire();
  ViidCameraRepo::SetUnregistered(conn, id);
  spdlog::info("viid: camera {} unregistered", id);
  return StatusAnswer(200, viid::kPathUnRegister, viid::kOk, "正常 / OK", id);
}

ViidService::HttpAnswer ViidService::Keepalive(const std::string& device, const std::string& body,
                                               const std::string& remote_addr) {
  std::string id;
  try {
    id = viid::ParseSystemObject(body, viid::SystemObject::kKeepalive);
  } catch (const Error& e) {
    return StatusAnswer(400, viid::kPathKeepalive, viid::kInvalidJsonContent, e.what(), device);
  }
  if (id != device)
    return StatusAnswer(403, viid::kPathKeepalive, viid::kInvalidOperation,
                        "DeviceID 与认证用户不符 / DeviceID differs from the authenticated device",
                        id);
  const int64_t now = Now();
  // Only a registration this server holds, from the address that registered and not lapsed,
  // is kept alive; any other keepalive is answered like an unregistered device's, so that the
  // camera registers again (a GA/T 1400 registration expires without requests).
  bool known = false;
  {
    std::lock_guard lock(session_mu_);
    auto it = sessions_.find(id);
    known = it != sessions_.end() && it->second.addr == remote_addr && it->second.expires_ms > now;
    if (known)
      it->second.expires_ms = now + options_.session_ttl_ms;
    else if (it != sessions_.end())
      sessions_.erase(it);
  }
  auto conn = db_->Acquire();
  if (!known) {
    ViidCameraRepo::SetUnregistered(conn, id);
    spdlog::info("viid: keepalive of unregistered camera {} from {}: told to register again", id,
                 remote_addr);
    return StatusAnswer(
        401, viid::kPathKeepalive, viid::kInvalidOperation,
        "设备未注册或注册已失效，请重新注册 / device not registered (or its registration lapsed): "
        "register again",
        id);
  }
  ViidCameraRepo::Touch(conn, id, now);
  spdlog::info("viid: keepalive from camera {} ({})", id, remote_addr);
  return StatusAnswer(200, viid::kPathKeepalive, viid::kOk, "正常 / OK", id);
}

fs::path ViidService::ImagePath(const std::string& id, int n, int64_t time_ms) const {
  const std::string ymd = viid::FormatTime(time_ms, 0).substr(0, 8);
  return deps_.data_dir / "captures" / ymd.substr(0, 4) / ymd.substr(4, 2) / ymd.substr(6, 2) /
         (id + "-" + std::to_string(n) + ".jpg.sealed");
}

ViidService::HttpAnswer ViidService::Faces(const std::string& device, const std::string& body,
                                           const std::string& remote_addr) {
  viid::ParsedFaceList parsed;
  try {
    parsed = viid::ParseFaceList(body);
  } catch (const Error& e) {
    spdlog::info("viid: upload from camera {} refused: {}", device, e.what());
    return StatusAnswer(400, viid::kPathFaces, viid::kInvalidJsonFormat, e.what(), "");
  }
  // Images given only as a URL are fetched from the uploading camera itself (image_fetch.h).
  const size_t fetched = cameras::ResolveStoragePaths(parsed, remote_addr, options_.image_fetch);
  const int64_t now = Now();
  {
    // Any accepted request keeps a registration alive (the standard's registration lapses
    // only without requests).
    std::lock_guard lock(session_mu_);
    auto it = sessions_.find(device);
    if (it != sessions_.end() && it->second.addr == remote_addr && it->second.expires_ms > now)
      it->second.expires_ms = now + options_.session_ttl_ms;
  }
  std::vector<viid::ResponseStatus> statuses;
  struct Pending {
    std::string id;
    const viid::FaceObject* face;
    int64_t time_ms;
    std::vector<fs::path> files;
  };
  std::vector<Pending> pending;
  std::vector<RecognitionJob> jobs;
  for (const auto& f : parsed.list.faces) {
    {
      auto conn = db_->Acquire();
      if (CaptureRepo::HasFace(conn, device, f.face_id)) {
        // sent again after a lost answer: first copy wins
        statuses.push_back({viid::kPathFaces, viid::kOk, "重复 / duplicate", f.face_id, ""});
        continue;
      }
    }
    int64_t t = now;
    for (const std::string* ts : {&f.face_appear_time, &f.location_mark_time})
      if (!ts->empty()) {
        t = viid::ParseTime(*ts);
        break;
      }
    if (t == now && !f.images.empty() && !f.images[0].shot_time.empty())
      t = viid::ParseTime(f.images[0].shot_time);
    // A camera with a wrong clock: keep the arrival time (the event store refuses such
    // times too).
    if (t < 1577836800000 || t > now + 24 * 3600 * 1000) t = now;
    Pending p{NewUuid(), &f, t, {}};
    try {
      for (size_t n = 0; n < f.images.size(); ++n) {
        const auto sealed =
            crypto::Seal(key_, f.images[n].data, crypto::AsBytes(ImageAad(p.id, int(n))));
        const fs::path file = ImagePath(p.id, int(n), t);
        WriteDurable(file, sealed);
        p.files.push_back(file);
      }
      for (size_t n = 0; n < f.clip.size(); ++n) {
        const auto sealed =
            crypto::Seal(key_, f.clip[n].data, crypto::AsBytes(ClipAad(p.id, int(n))));
        fs::path file = ImagePath(p.id, int(n), t);
        file.replace_filename(p.id + "-clip" + std::to_string(n) + ".jpg.sealed");
        WriteDurable(file, sealed);
        p.files.push_back(file);
      }
    } catch (const Error& e) {
      for (const auto& file : p.files) fs::remove(file);
      spdlog::error("viid: cannot store capture: {}", e.what());
      statuses.push_back(
          {viid::kPathFaces, viid::kDeviceBusy, "存储失败 / storage failed", f.face_id, ""});
      continue;
    }
    pending.push_back(std::move(p));
  }
  if (!pending.empty()) {
    std::error_code ec;
    // Directory entries of new files are durable too.
    std::set<fs::path> dirs;
    for (const auto& p : pending)
      for (const auto& f : p.files) dirs.insert(f.parent_path());
    for (const auto& d : dirs) {
      const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0) ::fsync(fd), ::close(fd);
    }
    auto conn = db_->Acquire();
    Transaction tx(conn);
    for (const auto& p : pending) {
      const auto& f = *p.face;
      const json box = {f.left_top_x, f.left_top_y, f.right_btm_x, f.right_btm_y};
      if (!CaptureRepo::Insert(conn, {p.id, device, f.face_id, p.time_ms, now, box.dump(),
                                      int64_t(f.images.size())})) {
        // the same face twice in one request
        for (const auto& file : p.files) fs::remove(file, ec);
        statuses.push_back({viid::kPathFaces, viid::kOk, "重复 / duplicate", f.face_id, ""});
        continue;
      }
      for (size_t n = 0; n < f.images.size(); ++n) {
        storage::CaptureFileRow img;
        img.n = int64_t(n);
        img.type = f.images[n].type;
        img.file = fs::relative(p.files[n], deps_.data_dir).string();
        img.bytes = int64_t(f.images[n].data.size());
        img.width = f.images[n].width;
        img.height = f.images[n].height;
        CaptureRepo::InsertImage(conn, p.id, img);
      }
      for (size_t n = 0; n < f.clip.size(); ++n) {
        storage::CaptureFileRow frame;
        frame.n = int64_t(n);
        frame.offset_ms = int64_t(f.clip[n].offset_ms);
        frame.file = fs::relative(p.files[f.images.size() + n], deps_.data_dir).string();
        frame.bytes = int64_t(f.clip[n].data.size());
        frame.width = f.clip[n].width;
        frame.height = f.clip[n].height;
        CaptureRepo::InsertClipFrame(conn, p.id, frame);
      }
      const auto* crop = f.Image(viid::kImageTypeFace);
      jobs.push_back({p.id, now, crop ? crop->data : f.images[0].data});
      statuses.push_back({viid::kPathFaces, viid::kOk, "正常 / OK", f.face_id, ""});
    }
    ViidCameraRepo::Touch(conn, device, now);
    tx.Commit();
  }
  for (const auto& e : parsed.errors)
    statuses.push_back({viid::kPathFaces, viid::kInvalidJsonContent, e.message, e.face_id, ""});
  stats_.received += int64_t(jobs.size());
  spdlog::info("viid: upload from camera {} ({}): {} faces stored, {} refused, {} images fetched",
               device, remote_addr, jobs.size(), parsed.errors.size(), fetched);
  for (const auto& e : parsed.errors)
    spdlog::info("viid: face '{}' of camera {} refused: {}", e.face_id, device, e.message);
  for (auto& j : jobs) queue_->Push(std::move(j));
  HttpAnswer a;
  a.body = viid::ToJson(statuses);
  return a;
}

// ---- recognition -----------------------------------------------------------------------

void ViidService::Worker() {
  std::unique_ptr<vision::FaceEngine> engine;
  bool engine_failed = false;
  while (!Stopping()) {
    auto job = queue_->Pop(std::chrono::milliseconds(200));
    if (!job) continue;
    ++busy_;
    if (!engine && !engine_failed && !deps_.model_version.empty()) {
      try {
        engine = vision::FaceEngine::Open(deps_.model_dir);
      } catch (const Error& e) {
        engine_failed = true;
        spdlog::error("viid: no recognition engine: {}", e.what());
      }
    }
    try {
      Recognise(*job, engine.get());
    } catch (const std::exception& e) {
      ++stats_.failed;
      spdlog::error("viid: recognition of {} failed: {}", job->capture_id, e.what());
      auto conn = db_->Acquire();
      CaptureRepo::MarkFailed(
          conn, job->capture_id,
          json::array({e.what()}).dump(-1, ' ', false, json::error_handler_t::replace), Now());
    }
    --busy_;
  }
}

bool ViidService::WaitIdle(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (queue_->size() == 0 && busy_ == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void ViidService::Recognise(RecognitionJob& job, void* engine_ptr) {
  auto* engine = static_cast<vision::FaceEngine*>(engine_ptr);
  std::string device;
  int64_t time_ms = 0;
  {
    auto conn = db_->Acquire();
    const auto head = CaptureRepo::Head(conn, job.capture_id);
    if (!head || head->state != "queued") return;
    device = head->device_id;
    time_ms = head->time_ms;
  }
  std::vector<uint8_t> crop = std::move(job.face_jpeg);
  if (crop.empty()) {
    auto conn = db_->Acquire();
    if (const auto best = CaptureRepo::BestImage(conn, job.capture_id))
      crop = crypto::Open(key_, ReadFile(deps_.data_dir / best->file),
                          crypto::AsBytes(ImageAad(job.capture_id, int(best->n))));
  }
  auto finish = [&](const std::string& state, const std::string& outcome, const std::string& person,
                    std::optional<double> score, std::optional<double> second,
                    std::optional<int64_t> stranger, const json& quality, const json& reasons,
                    bool dark, const std::vector<uint8_t>& feature_sealed) {
    const int64_t now = Now();
    {
      auto conn = db_->Acquire();
      CaptureRepo::SaveResult(conn, job.capture_id,
                              {state, outcome, person, score, second, stranger, quality.dump(),
                               reasons.dump(), dark, feature_sealed, now});
    }
    const int64_t latency = now - job.enqueued_ms;
    stats_.latency_sum_ms += latency;
    int64_t prev = stats_.latency_max_ms.load();
    while (latency > prev && !stats_.latency_max_ms.compare_exchange_weak(prev, latency)) {
    }
    ++stats_.recognised;
    bus_.Publish("capture", Capture(job.capture_id));
    if (state == "done") ForwardCapture(job.capture_id, crop);
  };
  if (!engine) {
    finish("unrecognised", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"models_missing"}), false, {});
    return;
  }
  cv::Mat image;
  try {
    image = vision::DecodeImage(crop);
  } catch (const Error&) {
    ++stats_.failed;
    finish("failed", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"bad_image"}), false, {});
    return;
  }
  const auto face = engine->DetectLargest(image);
  if (!face) {
    ++stats_.no_face;
    finish("no_face", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"no_face"}), false, {});
    return;
  }
  const vision::Quality q = engine->AssessQuality(image, *face);
  const bool dark = q.brightness < engine->options().dark_level;
  json quality = {{"score", q.score},         {"inter_pupil", q.inter_pupil},
                  {"sharpness", q.sharpness}, {"brightness", q.brightness},
                  {"yaw", q.pose.yaw},        {"pitch", q.pose.pitch},
                  {"roll", q.pose.roll},      {"found_by", face->found_by}};
  json reasons = json::array();
  if (q.inter_pupil < options_.min_inter_pupil) reasons.push_back("too_small");
  if (std::abs(q.pose.yaw) > options_.max_yaw || std::abs(q.pose.pitch) > options_.max_pitch)
    reasons.push_back("not_frontal");
  if (q.sharpness < options_.min_sharpness) reasons.push_back("blurred");
  if (!reasons.empty()) {
    ++stats_.rejected;
    finish("rejected", "", "", std::nullopt, std::nullopt, std::nullopt, quality, reasons, dark,
           {});
    return;
  }
  // Embed normalises a dark aligned crop itself (EngineOptions::dark_level, R3.1.4.1 night).
  const vision::Feature feature = engine->Embed(*face);
  const auto sealed_feature =
      crypto::Seal(key_, FeatureBytes(feature.values), crypto::AsBytes(FeatureAad(job.capture_id)));
  match::Decision d;
  d.score = -1;
  // The camera's site may have levels calibrated on its own gallery (stricter than the file's).
  match::LevelSetting level = level_;
  bool site_level = false;
  if (deps_.site_level)
    if (const auto dev = Device(device); dev && dev->building_id)
      if (const auto l = deps_.site_level(*dev->building_id, options_.level))
        level = *l, site_level = true;
  quality["threshold"] = level.threshold;
  quality["threshold_source"] = site_level ? "site" : "base";
  match::FeatureIndex* index = deps_.index ? deps_.index() : nullptr;
  if (index && index->size() > 0) {
    match::SearchOptions so;
    so.k = 2;
    const auto ranked = index->Search(feature.values, feature.model_version, so);
    d = match::Decide(ranked, level);
  }
  if (d.outcome == match::Outcome::kAccept) {
    ++stats_.accepted;
    finish("done", "accept", d.person, d.score, d.second_score, std::nullopt, quality, reasons,
           dark, sealed_feature);
    OnPerson(job.capture_id, device, time_ms, d.person, crop);
    return;
  }
  if (d.outcome == match::Outcome::kUncertain) {
    finish("done", "uncertain", d.person, d.score, d.second_score, std::nullopt, quality, reasons,
           dark, sealed_feature);
    return;
  }
  // Stranger: join or start a visitor cluster, persisted with the capture.
  ++stats_.strangers;
  int64_t next_id = 0;
  {
    auto conn = db_->Acquire();
    next_id = std::max(StrangerRepo::MaxId(conn), clusters_->MaxId()) + 1;
  }
  const StrangerAssignment a = clusters_->Assign(feature.values, [&] { return next_id; });
  {
    const auto centroid = clusters_->Centroid(a.cluster);
    const auto sealed =
        crypto::Seal(key_, FeatureBytes(centroid),
                     crypto::AsBytes("anju-stranger/v1/" + std::to_string(a.cluster)));
    auto conn = db_->Acquire();
    StrangerRepo::Upsert(conn, {a.cluster, sealed, a.members, time_ms, job.capture_id, device});
  }
  finish("done", "stranger", "",
         index && index->size() > 0 ? std::optional<double>(d.score) : std::nullopt, std::nullopt,
         a.cluster, quality, reasons, dark, sealed_feature);
  OnStranger(job.capture_id, device, time_ms, a.cluster, crop);
}

// ---- alerts ----------------------------------------------------------------------------

bool ViidService::RaiseAlarm(const std::string& key, int64_t dedup_ms, const std::string& device,
                             const std::string& type, const std::string& severity,
                             const std::string& description, const std::string& person,
                             int64_t time_ms, json evidence, const std::vector<uint8_t>& snapshot) {
  const int64_t now = Now();
  {
    auto conn = db_->Acquire();
    if (const auto last = AlertRepo::LastRaised(conn, key); last && now - *last < dedup_ms)
      return false;
    AlertRepo::SetRaised(conn, key, now);
  }
  if (!deps_.events) return false;
  json payload = {{"time_ms", time_ms},           {"alarm_type", type},
                  {"severity", severity},         {"description", description},
                  {"source", "anju-server/viid"}, {"evidence", std::move(evidence)}};
  if (!person.empty()) payload["person"] = person;
  json ev = {{"id", NewUuid()}, {"kind", "alarm"}, {"created_ms", now}, {"payload", payload}};
  if (!snapshot.empty() && snapshot.size() <= kMaxSnapshotBytes) {
    ev["snapshot"] = crypto::ToBase64(snapshot);
  }
  const auto r = deps_.events->Ingest(device.empty() ? "anju-server" : device,
                                      json{{"events", json::array({ev})}});
  if (!r.rejected.empty()) {
    spdlog::error("viid: alarm refused by the event store: {}", r.rejected[0].message);
    return false;
  }
  ++stats_.alarms;
  return true;
}

std::vector<AlertRule> ViidService::Rules() {
  auto conn = db_->Acquire();
  std::vector<AlertRule> out;
  for (auto& row : AlertRepo::Rules(conn)) {
    AlertRule r;
    r.id = row.id;
    r.type = std::move(row.type);
    r.name = std::move(row.name);
    r.enabled = row.enabled;
    r.params = json::parse(row.params, nullptr, false);
    r.created_ms = row.created_ms;
    out.push_back(std::move(r));
  }
  return out;
}

AlertRule ViidService::AddRule(AlertRule rule) {
  rule = ValidateRule(std::move(rule));
  rule.created_ms = Now();
  auto conn = db_->Acquire();
  rule.id = AlertRepo::InsertRule(
      conn, {0, rule.type, rule.name, rule.enabled, rule.params.dump(), rule.created_ms});
  return rule;
}

AlertRule ViidService::UpdateRule(int64_t id, const json& patch) {
  AlertRule r;
  bool found = false;
  for (auto& x : Rules())
    if (x.id == id) r = x, found = true;
  if (!found)
    throw protocol::ApiError(404, "not_found", "不存在 / not found: rule " + std::to_string(id));
  if (patch.contains("name")) r.name = patch["name"].get<std::string>();
  if (patch.contains("enabled")) r.enabled = patch["enabled"].get<bool>();
  if (patch.contains("params")) r.params = patch["params"];
  r = ValidateRule(std::move(r));
  auto conn = db_->Acquire();
  AlertRepo::UpdateRule(conn, id, r.name, r.enabled, r.params.dump());
  return r;
}

bool ViidService::RemoveRule(int64_t id) {
  auto conn = db_->Acquire();
  return AlertRepo::DeleteRule(conn, id);
}

void ViidService::OnStranger(const std::string& capture_id, const std::string& device,
                             int64_t time_ms, int64_t cluster, const std::vector<uint8_t>& crop) {
  const auto cam = Device(device);
  for (const auto& r : Rules()) {
    if (!r.enabled) continue;
    const json& p = r.params;
    const std::string rid = "rule" + std::to_string(r.id);
    if (r.type == "repeated_stranger") {
      const int64_t window = p["window_hours"].get<int64_t>() * 3600 * 1000;
      const bool by_unit = p["scope"] == "unit" && cam && cam->unit_id;
      std::vector<std::string> ids;
      {
        auto conn = db_->Acquire();
        ids = by_unit ? StrangerRepo::SightingsInUnit(conn, cluster, time_ms - window, time_ms,
                                                      *cam->unit_id)
                      : StrangerRepo::SightingsAtDevice(conn, cluster, time_ms - window, time_ms,
                                                        device);
      }
      if (int64_t(ids.size()) < p["count"].get<int64_t>()) continue;
      const std::string where = by_unit ? "unit " + std::to_string(*cam->unit_id) : device;
      if (ids.size() > 20) ids.resize(20);
      RaiseAlarm(rid + "/s" + std::to_string(cluster) + "/" + where, window, device,
                 "repeated_stranger", "major",
                 "陌生人反复出现 / the same stranger seen repeatedly (" +
                     std::to_string(ids.size()) + "+ times) at " + where,
                 "", time_ms,
                 {{"rule_id", r.id},
                  {"stranger_id", cluster},
                  {"count", ids.size()},
                  {"window_hours", p["window_hours"]},
                  {"scope", by_unit ? "unit" : "device"},
                  {"where", where},
                  {"captures", ids}},
                 crop);
    } else if (r.type == "stranger_at_night") {
      const int off = p["utc_offset_minutes"].get<int>();
      const int start = ParseHhMm(p["start"], "start"), end = ParseHhMm(p["end"], "end");
      const int m = LocalMinute(time_ms, off);
      const bool night = start <= end ? (m >= start && m < end) : (m >= start || m < end);
      if (!night) continue;
      char hhmm[32];
      std::snprintf(hhmm, sizeof hhmm, "%02d:%02d", m / 60, m % 60);
      RaiseAlarm(rid + "/s" + std::to_string(cluster) + "/" + device, 6 * 3600 * 1000, device,
                 "stranger_at_night", "major",
                 std::string("夜间陌生人 / stranger at night (") + hhmm + ")", "", time_ms,
                 {{"rule_id", r.id},
                  {"stranger_id", cluster},
                  {"capture", capture_id},
                  {"local_time", hhmm}},
                 crop);
    } else if (r.type == "shared_authorisation") {
      // Approximate: whose authorisation opened the linked door within ±match_seconds of
      // the stranger's capture. An access record uploaded later than the capture is
      // not seen (terminals upload within seconds; see docs/viid.md).
      if (!cam || cam->linked_device.empty() || !deps_.events) continue;
      const int64_t ms = p["match_seconds"].get<int64_t>() * 1000;
      EventQuery q;
      q.device = cam->linked_device;
      q.kind = "access";
      q.decision = "open";
      q.from_ms = time_ms - ms;
      q.to_ms = time_ms + ms + 1;
      q.limit = 10;
      std::set<std::string> persons;
      for (const auto& e : deps_.events->Query(q).items)
        if (!e.person.empty()) persons.insert(e.person);
      const int64_t window = p["window_hours"].get<int64_t>() * 3600 * 1000;
      for (const auto& person : persons) {
        std::vector<int64_t> distinct;
        {
          auto conn = db_->Acquire();
          StrangerRepo::LinkTenant(conn, person, cluster, time_ms, capture_id);
          distinct = StrangerRepo::StrangersLetInBy(conn, person, time_ms - window);
        }
        if (int64_t(distinct.size()) < p["distinct"].get<int64_t>()) continue;
        RaiseAlarm(rid + "/" + person, window, device, "shared_authorisation", "major",
                   "多名陌生人使用同一住户权限进入 / several strangers entered with one tenant's "
                   "authorisation (" +
                       std::to_string(distinct.size()) + ")",
                   person, time_ms,
                   {{"rule_id", r.id},
                    {"person", person},
                    {"strangers", distinct},
                    {"capture", capture_id},
                    {"approximate", true}},
                   crop);
      }
    } else if (r.type == "blacklist") {
      bool listed = false;
      for (const auto& s : p["strangers"]) listed = listed || s.get<int64_t>() == cluster;
      if (!listed) continue;
      RaiseAlarm(rid + "/s" + std::to_string(cluster) + "/" + device, 10 * 60 * 1000, device,
                 "blacklist", "critical", "黑名单人员出现 / blacklisted visitor seen", "", time_ms,
                 {{"rule_id", r.id}, {"stranger_id", cluster}, {"capture", capture_id}}, crop);
    }
  }
}

void ViidService::OnPerson(const std::string& capture_id, const std::string& device,
                           int64_t time_ms, const std::string& person,
                           const std::vector<uint8_t>& crop) {
  for (const auto& r : Rules()) {
    if (!r.enabled || r.type != "blacklist") continue;
    bool listed = false;
    for (const auto& c : r.params["persons"]) listed = listed || c.get<std::string>() == person;
    if (!listed) continue;
    RaiseAlarm("rule" + std::to_string(r.id) + "/" + person + "/" + device, 10 * 60 * 1000, device,
               "blacklist", "critical", "黑名单人员出现 / blacklisted person seen", person, time_ms,
               {{"rule_id", r.id}, {"person", person}, {"capture", capture_id}}, crop);
  }
}

int ViidService::EvaluatePeriodic(int64_t now) {
  int raised = 0;
  if (!deps_.archive || !deps_.events) return 0;
  for (const auto& r : Rules()) {
    if (!r.enabled || r.type != "tenant_absent") continue;
    const int64_t days = r.params["days"].get<int64_t>();
    const int64_t window = days * 24 * 3600 * 1000;
    std::vector<storage::TenantRow> tenants;
    {
      auto conn = deps_.archive->Acquire();
      tenants = AlertRepo::ActiveTenants(conn);
    }
    for (const auto& t : tenants) {
      int64_t last = t.since_ms;
      EventQuery q;
      q.person = t.code;
      q.kind = "access";  // not the alarms about them
      q.limit = 1;
      const auto page = deps_.events->Query(q);
      if (!page.items.empty()) last = std::max(last, page.items[0].time_ms);
      {
        auto conn = db_->Acquire();
        if (const auto seen = CaptureRepo::LastSeen(conn, t.code)) last = std::max(last, *seen);
      }
      if (now - last < window) continue;
      if (RaiseAlarm("rule" + std::to_string(r.id) + "/" + t.code + "/" + std::to_string(last),
                     window, "anju-server", "tenant_absent", "minor",
                     "住户长时间未出现 / tenant not seen for " +
                         std::to_string((now - last) / (24 * 3600 * 1000)) + " days",
                     t.code, std::min(now, Now()),
                     {{"rule_id", r.id},
                      {"person", t.code},
                      {"last_seen_ms", last},
                      {"days", days},
                      {"as_of_ms", now}},
                     {}))
        ++raised;
    }
  }
  return raised;
}

void ViidService::Periodic() {
  std::unique_lock lock(bg_mu_);
  while (!Stopping()) {
    lock.unlock();
    try {
      EvaluatePeriodic(Now());
      RetainExpired();
    } catch (const std::exception& e) {
      spdlog::error("viid: periodic rules / retention failed: {}", e.what());
    }
    lock.lock();
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.periodic_interval_ms);
    while (!Stopping() && std::chrono::steady_clock::now() < until)
      bg_cv_.wait_for(lock, std::chrono::milliseconds(500));
  }
}

// ---- live tail of the event store, webhook ---------------------------------------------

void ViidService::Tail() {
  if (!deps_.events) return;
  int64_t event_seq = 0, alarm_id = 0;
  bool init = false;
  while (!Stopping()) {
    try {
      storage::ViidEventsReader r(deps_.events->database_file());
      if (!init) {
        std::tie(event_seq, alarm_id) = r.Newest();
        init = true;
        // The webhook cursor survives restarts; the live stream starts from now.
        auto conn = db_->Acquire();
        ForwardRepo::AddSetting(conn, "webhook_alarm_cursor", std::to_string(alarm_id));
      }
      while (!Stopping()) {
        std::vector<std::string> ids;
        for (const auto& e : r.EventsAfter(event_seq, 500)) {
          event_seq = e.seq;
          if (e.kind == "access") ids.push_back(e.id);
        }
        for (const auto& id : ids) bus_.Publish("access", ToJson(deps_.events->Get(id)));
        const std::vector<int64_t> alarms = r.AlarmsAfter(alarm_id, 500);
        if (!alarms.empty()) alarm_id = alarms.back();
        for (int64_t a : alarms) bus_.Publish("alarm", ToJson(deps_.events->GetAlarm(a)));
        // Webhook: every alarm past the durable cursor goes to the outbox, once.
        int64_t cursor = 0;
        std::string url;
        {
          auto conn = db_->Acquire();
          const auto set = ForwardRepo::Settings(conn, {"webhook_alarm_cursor", "webhook_url"});
          if (auto it = set.find("webhook_url"); it != set.end()) url = it->second;
          if (auto it = set.find("webhook_alarm_cursor"); it != set.end())
            cursor = std::stoll(it->second);
        }
        if (!url.empty() && cursor < alarm_id) {
          std::vector<std::pair<int64_t, json>> batch;
          for (int64_t a : r.AlarmsAfter(cursor, 200)) {
            json body = {{"type", "alarm"}, {"alarm", ToJson(deps_.events->GetAlarm(a))}};
            try {
              const auto ev = deps_.events->Get(body["alarm"]["event_id"].get<std::string>());
              if (ev.payload.contains("evidence")) body["evidence"] = ev.payload["evidence"];
            } catch (const Error&) {
            }
            batch.emplace_back(a, std::move(body));
          }
          auto conn = db_->Acquire();
          Transaction tx(conn);
          for (auto& [a, body] : batch) {
            ForwardRepo::EnqueueWebhook(conn, body.dump(), Now());
            cursor = a;
          }
          ForwardRepo::UpdateSetting(conn, "webhook_alarm_cursor", std::to_string(cursor));
          tx.Commit();
          bg_cv_.notify_all();
        }
        // Forwarding (http kind): every alarm past its own durable cursor.
        json fwd;
        int64_t fcursor = 0;
        {
          auto conn = db_->Acquire();
          const auto set = ForwardRepo::Settings(conn, {"forward", "forward_alarm_cursor"});
          if (auto it = set.find("forward"); it != set.end())
            fwd = json::parse(it->second, nullptr, false);
          if (auto it = set.find("forward_alarm_cursor"); it != set.end())
            fcursor = std::stoll(it->second);
        }
        if (fwd.is_object() && fwd.value("kind", "") == "http" && fwd.value("alarms", true) &&
            fcursor < alarm_id) {
          for (int64_t a : r.AlarmsAfter(fcursor, 200)) {
            EnqueueForward("alarm",
                           {{"type", "alarm"}, {"alarm", ToJson(deps_.events->GetAlarm(a))}});
            fcursor = a;
          }
          auto conn = db_->Acquire();
          ForwardRepo::PutSetting(conn, "forward_alarm_cursor", std::to_string(fcursor));
        } else if (!(fwd.is_object() && fwd.value("kind", "") == "http")) {
          // Not forwarding alarms: the cursor follows, so enabling it later starts from then.
          auto conn = db_->Acquire();
          ForwardRepo::PutSetting(conn, "forward_alarm_cursor", std::to_string(alarm_id));
        }
        std::unique_lock lock(bg_mu_);
        bg_cv_.wait_for(lock, std::chrono::milliseconds(options_.tail_interval_ms));
      }
    } catch (const std::exception& e) {
      spdlog::warn("viid: event tail: {}", e.what());
      std::unique_lock lock(bg_mu_);
      bg_cv_.wait_for(lock, std::chrono::seconds(1));
    }
  }
}

void ViidService::SetWebhook(const std::string& url) {
  if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://"))
    throw protocol::ApiError(400, "bad_request",
                             "url 须以 http:// 或 https:// 开头 / url must start with http(s)://");
  auto conn = db_->Acquire();
  ForwardRepo::PutSetting(conn, "webhook_url", url);
}

namespace {
void PutOutboxState(json& out, const storage::OutboxState& st) {
  out["pending"] = st.pending;
  out["max_attempts"] = st.max_attempts;
  out["oldest_ms"] = st.oldest_ms;
  out["last_error"] = st.last_error;
}
}  // namespace

json ViidService::Webhook() {
  auto conn = db_->Acquire();
  json out = {{"url", ForwardRepo::Setting(conn, "webhook_url").value_or("")}};
  PutOutboxState(out, ForwardRepo::State(conn, Outbox::kWebhook));
  return out;
}

void ViidService::WebhookSender() {
  while (!Stopping()) {
    std::string url;
    std::vector<storage::OutboxItem> batch;
    int64_t next_wait_ms = 1000;
    try {
      auto conn = db_->Acquire();
      url = ForwardRepo::Setting(conn, "webhook_url").value_or("");
      if (!url.empty()) batch = ForwardRepo::Due(conn, Outbox::kWebhook, Now(), 20);
    } catch (const std::exception& e) {
      spdlog::warn("viid: webhook: {}", e.what());
    }
    if (!batch.empty()) {
      // "http://host:port/path" → client + path.
      const size_t scheme_end = url.find("://") + 3;
      const size_t slash = url.find('/', scheme_end);
      const std::string base = slash == std::string::npos ? url : url.substr(0, slash);
      const std::string path = slash == std::string::npos ? "/" : url.substr(slash);
      httplib::Client client(base);
      client.set_connection_timeout(3, 0);
      client.set_read_timeout(5, 0);
      client.set_write_timeout(5, 0);
      for (const auto& item : batch) {
        if (Stopping()) break;
        auto res = client.Post(path, item.body, "application/json");
        auto conn = db_->Acquire();
        if (res && res->status >= 200 && res->status < 300) {
          ForwardRepo::Sent(conn, Outbox::kWebhook, item.seq);
          next_wait_ms = 0;
        } else {
          const std::string err =
              res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error());
          ForwardRepo::Failed(conn, Outbox::kWebhook, item.seq, Now(), err);
          break;  // the receiver is down: keep the order, retry later
        }
      }
    }
    std::unique_lock lock(bg_mu_);
    if (next_wait_ms > 0) bg_cv_.wait_for(lock, std::chrono::milliseconds(next_wait_ms));
  }
}

// ---- forwarding ------------------------------------------------------------------------

void ViidService::SetForward(const json& c) {
  auto bad = [](const std::string& m) { throw protocol::ApiError(400, "bad_request", m); };
  if (!c.is_object()) bad("body must be an object");
  const std::string kind = c.value("kind", "");
  if (kind != "" && kind != "http" && kind != "gat1400") bad("kind: \"\" | http | gat1400");
  const std::string url = c.value("url", "");
  if (!kind.empty() && !url.starts_with("http://") && !url.starts_with("https://"))
    bad("url 须以 http:// 或 https:// 开头 / url must start with http(s)://");
  json stored = {{"kind", kind},
                 {"url", url},
                 {"username", c.value("username", "")},
                 {"captures", c.value("captures", true)},
                 {"alarms", c.value("alarms", true)}};
  const std::string password = c.value("password", "");
  auto conn = db_->Acquire();
  Transaction tx(conn);
  ForwardRepo::PutSetting(conn, "forward", stored.dump());
  if (c.contains("password"))
    ForwardRepo::PutSetting(
        conn, "forward_password",
        crypto::ToBase64(crypto::Seal(key_, crypto::AsBytes(password),
                                      crypto::AsBytes("anju-viid-forward/v1"))));
  tx.Commit();
}

json ViidService::Forward() {
  auto conn = db_->Acquire();
  json out = {{"kind", ""}, {"url", ""}};
  if (const auto v = ForwardRepo::Setting(conn, "forward")) out = json::parse(*v, nullptr, false);
  PutOutboxState(out, ForwardRepo::State(conn, Outbox::kForward));
  return out;
}

void ViidService::EnqueueForward(const std::string& kind, const json& body) {
  auto conn = db_->Acquire();
  ForwardRepo::EnqueueForward(conn, kind, body.dump(-1, ' ', false, json::error_handler_t::replace),
                              Now());
}

void ViidService::ForwardCapture(const std::string& capture_id, const std::vector<uint8_t>& crop) {
  json fwd;
  {
    auto conn = db_->Acquire();
    if (const auto v = ForwardRepo::Setting(conn, "forward")) fwd = json::parse(*v, nullptr, false);
  }
  if (!fwd.is_object() || fwd.value("kind", "").empty() || !fwd.value("captures", true)) return;
  const json c = Capture(capture_id);
  if (fwd["kind"] == "http") {
    EnqueueForward("http",
                   {{"type", "capture"}, {"capture", c}, {"face_image", crypto::ToBase64(crop)}});
    return;
  }
  // GA/T 1400: the face as the camera sent it, FaceID and DeviceID kept.
  viid::FaceObject f;
  f.face_id = c["face_id"];
  f.device_id = c["device_id"];
  const json& box = c["box"];
  if (box.is_array() && box.size() == 4) {
    f.left_top_x = box[0], f.left_top_y = box[1], f.right_btm_x = box[2], f.right_btm_y = box[3];
  }
  f.face_appear_time = viid::FormatTime(c["time_ms"].get<int64_t>());
  viid::SubImageInfo img;
  img.type = viid::kImageTypeFace;
  img.shot_time = f.face_appear_time;
  img.data = crop;
  f.images.push_back(std::move(img));
  viid::FaceList list;
  list.faces.push_back(std::move(f));
  EnqueueForward("gat1400", viid::ToJson(list));
}

void ViidService::ForwardSender() {
  viid::DigestChallenge challenge;
  bool have_challenge = false;
  uint32_t nc = 0;
  while (!Stopping()) {
    json fwd;
    std::string password;
    std::vector<storage::OutboxItem> batch;
    int64_t wait_ms = 1000;
    try {
      auto conn = db_->Acquire();
      const auto set = ForwardRepo::Settings(conn, {"forward", "forward_password"});
      if (auto it = set.find("forward"); it != set.end())
        fwd = json::parse(it->second, nullptr, false);
      if (auto it = set.find("forward_password"); it != set.end()) {
        const auto p = crypto::Open(key_, crypto::FromBase64(it->second),
                                    crypto::AsBytes("anju-viid-forward/v1"));
        password.assign(p.begin(), p.end());
      }
      if (fwd.is_object() && !fwd.value("kind", "").empty())
        batch = ForwardRepo::Due(conn, Outbox::kForward, Now(), 20);
    } catch (const std::exception& e) {
      spdlog::warn("viid: forward: {}", e.what());
    }
    if (!batch.empty()) {
      const std::string url = fwd["url"];
      const size_t scheme_end = url.find("://") + 3;
      const size_t slash = url.find('/', scheme_end);
      const std::string base = slash == std::string::npos ? url : url.substr(0, slash);
      std::string path = slash == std::string::npos ? "" : url.substr(slash);
      const bool gat = fwd["kind"] == "gat1400";
      if (gat) {
        while (path.ends_with("/")) path.pop_back();
        path += viid::kPathFaces;
      } else if (path.empty()) {
        path = "/";
      }
      httplib::Client client(base);
      client.set_connection_timeout(3, 0);
      client.set_read_timeout(10, 0);
      client.set_write_timeout(10, 0);
      const std::string user = fwd.value("username", "");
      for (const auto& item : batch) {
        if (Stopping()) break;
        // item.kind: queued for the kind configured then; sent to the current target
        const std::string& body = item.body;
        auto post = [&] {
          httplib::Headers h;
          if (gat) {
            h.emplace("User-Identify", user);
            if (have_challenge)
              h.emplace("Authorization", viid::FormatAuthorization(viid::AnswerChallenge(
                                             challenge, user, password, "POST", path, ++nc)));
          }
          return client.Post(path, h, body, "application/json");
        };
        httplib::Result res = post();
        if (gat && res && res->status == 401) {
          // A new or expired nonce: answer the challenge once.
          try {
            challenge = viid::ParseChallenge(res->get_header_value("WWW-Authenticate"));
            have_challenge = true;
            nc = 0;
            res = post();
          } catch (const Error&) {
          }
        }
        auto conn = db_->Acquire();
        if (res && res->status >= 200 && res->status < 300) {
          ForwardRepo::Sent(conn, Outbox::kForward, item.seq);
          wait_ms = 0;
        } else {
          const std::string err =
              res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error());
          ForwardRepo::Failed(conn, Outbox::kForward, item.seq, Now(), err);
          break;
        }
      }
    }
    std::unique_lock lock(bg_mu_);
    if (wait_ms > 0) bg_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
  }
}

int64_t ViidService::RetainExpired(int64_t* before_ms) {
  const int months = deps_.retention_months ? deps_.retention_months() : options_.retention_months;
  const int64_t cutoff = Now() - int64_t(months) * 2629746000LL;
  if (before_ms) *before_ms = cutoff;
  int64_t total = 0;
  if (months <= 0) return 0;  // keep forever (server/retention.h)
  for (int64_t n; !Stopping() && (n = RetainCaptures(cutoff)) > 0;) total += n;
  return total;
}

int64_t ViidService::RetainCaptures(int64_t before_ms, int64_t max) {
  std::vector<std::string> ids;
  std::vector<fs::path> files;
  {
    auto conn = db_->Acquire();
    Transaction tx(conn);
    ids = CaptureRepo::OlderThan(conn, before_ms, max);
    for (const auto& id : ids) {
      for (const auto& f : CaptureRepo::Delete(conn, id)) files.push_back(deps_.data_dir / f);
      StrangerRepo::ForgetCapture(conn, id);
    }
    // A visitor cluster not seen since the cutoff goes too (its centroid is biometric data).
    const std::vector<int64_t> gone = StrangerRepo::DeleteIdle(conn, before_ms);
    clusters_->Remove(gone);
    tx.Commit();
  }
  // After the commit: a crash in between leaves files no row names, never the reverse.
  std::error_code ec;
  for (const auto& f : files) fs::remove(f, ec);
  return int64_t(ids.size());
}

// ---- queries ---------------------------------------------------------------------------

namespace {
json CaptureJson(const storage::CaptureRow& r) {
  auto opt_d = [](const std::optional<double>& v) { return v ? json(*v) : json(); };
  auto opt_i = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(); };
  return {{"id", r.id},
          {"device_id", r.device_id},
          {"face_id", r.face_id},
          {"time_ms", r.time_ms},
          {"received_ms", r.received_ms},
          {"box", json::parse(r.box, nullptr, false)},
          {"images", r.images},
          {"state", r.state},
          {"outcome", r.outcome},
          {"person", r.person.empty() ? json() : json(r.person)},
          {"score", opt_d(r.score)},
          {"second_score", opt_d(r.second_score)},
          {"stranger_id", opt_i(r.stranger_id)},
          {"quality", json::parse(r.quality, nullptr, false)},
          {"reasons", json::parse(r.reasons, nullptr, false)},
          {"dark", r.dark},
          {"recognised_ms", r.recognised_ms},
          {"place", r.place ? json(*r.place) : json()},
          {"building_id", opt_i(r.building_id)},
          {"unit_id", opt_i(r.unit_id)},
          // The face image's number (type 11), for a thumbnail in lists; null without one.
          {"face_image", opt_i(r.face_image)}};
}
}  // namespace

json ViidService::Captures(const CaptureQuery& q) {
  storage::CaptureFilter f;
  f.from_ms = q.from_ms;
  f.to_ms = q.to_ms;
  f.device = q.device;
  f.person = q.person;
  f.outcome = q.outcome;
  f.state = q.state;
  f.stranger = q.stranger;
  f.buildings = q.buildings;
  auto conn = db_->Acquire();
  const int64_t total = CaptureRepo::Count(conn, f);
  json items = json::array();
  for (const auto& r : CaptureRepo::List(conn, f, q.limit, q.offset))
    items.push_back(CaptureJson(r));
  return {{"items", items}, {"total", total}, {"limit", q.limit}, {"offset", q.offset}};
}

json ViidService::Capture(const std::string& id) {
  auto conn = db_->Acquire();
  const auto row = CaptureRepo::Get(conn, id);
  if (!row) throw protocol::ApiError(404, "not_found", "不存在 / not found: capture " + id);
  json c = CaptureJson(*row);
  json imgs = json::array();
  for (const auto& i : CaptureRepo::Images(conn, id))
    imgs.push_back({{"n", i.n},
                    {"type", i.type},
                    {"bytes", i.bytes},
                    {"width", i.width},
                    {"height", i.height}});
  c["image_list"] = imgs;
  c["clip_frames"] = CaptureRepo::ClipFrameCount(conn, id);
  return c;
}

std::vector<uint8_t> ViidService::CaptureImage(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = db_->Acquire();
    file = CaptureRepo::ImageFile(conn, id, n);
  }
  if (!file)
    throw protocol::ApiError(404, "not_found",
                             "不存在 / not found: image " + id + "/" + std::to_string(n));
  return crypto::Open(key_, ReadFile(deps_.data_dir / *file), crypto::AsBytes(ImageAad(id, n)));
}

json ViidService::Clip(const std::string& id) {
  auto conn = db_->Acquire();
  if (!CaptureRepo::Exists(conn, id))
    throw protocol::ApiError(404, "not_found", "不存在 / not found: capture " + id);
  json frames = json::array();
  for (const auto& f : CaptureRepo::ClipFrames(conn, id))
    frames.push_back({{"n", f.n},
                      {"offset_ms", f.offset_ms},
                      {"bytes", f.bytes},
                      {"width", f.width},
                      {"height", f.height}});
  if (frames.empty())
    throw protocol::ApiError(404, "not_found", "该抓拍没有片段 / capture " + id + " has no clip");
  return {{"capture_id", id}, {"frames", frames}};
}

std::vector<uint8_t> ViidService::ClipFrame(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = db_->Acquire();
    file = CaptureRepo::ClipFile(conn, id, n);
  }
  if (!file)
    throw protocol::ApiError(404, "not_found",
                             "不存在 / not found: clip frame " + id + "/" + std::to_string(n));
  return crypto::Open(key_, ReadFile(deps_.data_dir / *file), crypto::AsBytes(ClipAad(id, n)));
}

// ---- live preview ----------------------------------------------------------------------

ViidService::HttpAnswer ViidService::PutLiveFrame(const std::string& device,
                                                  const std::string& body) {
  if (body.size() < 4 || static_cast<uint8_t>(body[0]) != 0xFF ||
      static_cast<uint8_t>(body[1]) != 0xD8 || static_cast<uint8_t>(body[2]) != 0xFF)
    return StatusAnswer(400, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "不是 JPEG / body is not a JPEG", device);
  if (body.size() > viid::kMaxImageBytes)
    return StatusAnswer(413, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "图像过大 / image too large", device);
  {
    std::lock_guard lock(live_mu_);
    LiveFrame& f = live_[device];
    f.jpeg = std::make_shared<const std::string>(body);
    f.time_ms = Now();
    f.seq = ++live_seq_;
  }
  live_cv_.notify_all();
  return StatusAnswer(200, viid::kPathLiveFrame, viid::kOk, "正常 / OK", device);
}

std::optional<LiveFrame> ViidService::Live(const std::string& device, uint64_t after_seq,
                                           std::chrono::milliseconds wait) {
  std::unique_lock lock(live_mu_);
  auto fresh = [&]() -> const LiveFrame* {
    auto it = live_.find(device);
    if (it == live_.end() || it->second.seq <= after_seq ||
        it->second.time_ms < Now() - options_.live_max_age_ms)
      return nullptr;
    return &it->second;
  };
  if (wait.count() > 0)
    live_cv_.wait_for(lock, wait, [&] { return Stopping() || fresh() != nullptr; });
  const LiveFrame* f = Stopping() ? nullptr : fresh();
  if (!f) return std::nullopt;
  return *f;
}

bool ViidService::EnterLiveStream() {
  if (++live_streams_ > options_.max_live_streams) {
    --live_streams_;
    return false;
  }
  return true;
}

void ViidService::LeaveLiveStream() {
  --live_streams_;
}

json ViidService::Latest() {
  auto conn = db_->Acquire();
  json out = json::array();
  for (const auto& r : CaptureRepo::Latest(conn)) out.push_back(CaptureJson(r));
  return out;
}

json ViidService::Strangers(int64_t from_ms, int64_t to_ms, const std::string& device,
                            int64_t min_count, int64_t limit, int64_t offset,
                            const std::optional<std::vector<int64_t>>& buildings) {
  auto conn = db_->Acquire();
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  json items = json::array();
  for (const auto& s :
       StrangerRepo::List(conn, from_ms, to, device, min_count, limit, offset, buildings)) {
    json it = {{"id", s.id},
               {"count", s.count},
               {"first_ms", s.first_ms},
               {"last_ms", s.last_ms},
               {"devices", s.devices}};
    json places = json::array();
    for (const auto& p : StrangerRepo::Places(conn, s.id, from_ms, to, buildings)) {
      places.push_back({{"device_id", p.device_id},
                        {"place", p.place},
                        {"building_id", p.building_id ? json(*p.building_id) : json()},
                        {"unit_id", p.unit_id ? json(*p.unit_id) : json()},
                        {"count", p.count},
                        {"last_ms", p.last_ms}});
      it["latest_capture"] = p.latest_capture;
    }
    it["places"] = places;
    items.push_back(std::move(it));
  }
  const int64_t total = StrangerRepo::Count(conn, from_ms, to, device, buildings);
  return {{"items", items}, {"total", total}, {"limit", limit}, {"offset", offset}};
}

json ViidService::Stranger(int64_t id, const std::optional<std::vector<int64_t>>& buildings) {
  json out;
  {
    auto conn = db_->Acquire();
    const auto s = StrangerRepo::Get(conn, id, buildings);
    if (!s)
      throw protocol::ApiError(404, "not_found",
                               "不存在 / not found: stranger " + std::to_string(id));
    out = {{"id", id},
           {"count", s->count},
           {"first_ms", s->first_ms},
           {"last_ms", s->last_ms},
           {"first_capture", s->first_capture},
           {"last_capture", s->last_capture},
           {"last_device", s->last_device}};
  }
  CaptureQuery q;
  q.stranger = id;
  q.limit = 100;
  q.buildings = buildings;
  out["captures"] = Captures(q)["items"];
  return out;
}

// ---- reports ---------------------------------------------------------------------------

json ViidService::TrafficReport(int64_t from_ms, int64_t to_ms, const std::string& bucket,
                                int off) {
  const int64_t size = bucket == "day" ? 86400000 : 3600000;
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  // Terminal devices get the building of a camera linked to them (the archive does not
  // place terminals), cameras their own.
  std::map<std::string, std::optional<int64_t>> building;
  for (const auto& d : Devices()) {
    building[d.id] = d.building_id;
    if (!d.linked_device.empty() && d.building_id) building[d.linked_device] = d.building_id;
  }
  std::map<std::tuple<int64_t, std::string, std::string>, std::array<int64_t, 3>> rows;
  if (deps_.events) {
    storage::ViidEventsReader r(deps_.events->database_file());
    for (const auto& t : r.Traffic(int64_t(off) * 60000, size, from_ms, to)) {
      auto& v = rows[{t.bucket_ms, t.device_id, t.door}];
      v[0] += t.entries;
      v[1] += t.exits;
    }
  }
  {
    auto conn = db_->Acquire();
    for (const auto& c : CaptureRepo::CountByBucket(conn, int64_t(off) * 60000, size, from_ms, to))
      rows[{c.bucket_ms, c.device_id, ""}][2] += c.count;
  }
  json items = json::array();
  for (const auto& [k, v] : rows) {
    const auto& [b, device, door] = k;
    auto bit = building.find(device);
    items.push_back(
        {{"bucket_ms", b},
         {"bucket", viid::FormatTime(b, off).substr(0, bucket == "day" ? 8 : 10)},
         {"building_id", bit != building.end() && bit->second ? json(*bit->second) : json()},
         {"device_id", device},
         {"door", door},
         {"entries", v[0]},
         {"exits", v[1]},
         {"captures", v[2]}});
  }
  return {
      {"bucket", bucket == "day" ? "day" : "hour"},
      {"utc_offset_minutes", off},
      {"columns", {"bucket", "building_id", "device_id", "door", "entries", "exits", "captures"}},
      {"items", items}};
}

json ViidService::StrangerReport(int64_t from_ms, int64_t to_ms, int off,
                                 const std::optional<std::vector<int64_t>>& buildings) {
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  auto conn = db_->Acquire();
  json items = json::array();
  for (const auto& d : StrangerRepo::Days(conn, int64_t(off) * 60000, from_ms, to, buildings))
    items.push_back({{"bucket_ms", d.bucket_ms},
                     {"day", viid::FormatTime(d.bucket_ms, off).substr(0, 8)},
                     {"captures", d.captures},
                     {"strangers", d.strangers},
                     {"devices", d.devices},
                     // New for a scoped account: first seen (anywhere) that day by one of its
                     // cameras.
                     {"new_strangers", StrangerRepo::CountNew(conn, d.bucket_ms,
                                                              d.bucket_ms + 86400000, buildings)}});
  return {{"utc_offset_minutes", off},
          {"columns", {"day", "captures", "strangers", "new_strangers", "devices"}},
          {"items", items}};
}

json ViidService::AlertReport(int64_t from_ms, int64_t to_ms, int64_t top) {
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  json items = json::array();
  if (deps_.events) {
    storage::ViidEventsReader r(deps_.events->database_file());
    for (const auto& a : r.AlarmCounts(from_ms, to, top))
      items.push_back({{"type", a.type},
                       {"device_id", a.device_id},
                       {"count", a.count},
                       {"open", a.open},
                       {"last_ms", a.last_ms},
                       {"severity", a.severity}});
  }
  return {{"columns", {"type", "device_id", "count", "open", "last_ms", "severity"}},
          {"items", items}};
}

json ViidService::StatsJson() const {
  const int64_t n = stats_.recognised.load();
  return {{"received", stats_.received.load()},
          {"recognised", n},
          {"accepted", stats_.accepted.load()},
          {"strangers", stats_.strangers.load()},
          {"rejected", stats_.rejected.load()},
          {"no_face", stats_.no_face.load()},
          {"failed", stats_.failed.load()},
          {"alarms", stats_.alarms.load()},
          {"queued", queue_->size()},
          {"busy", busy_.load()},
          {"latency_mean_ms", n ? double(stats_.latency_sum_ms.load()) / double(n) : 0.0},
          {"latency_max_ms", stats_.latency_max_ms.load()},
          {"clusters", clusters_->size()}};
}

// The CSV of a report (UTF-8 with BOM for Excel): its "columns" in order.
std::string ReportCsv(const json& report) {
  std::string out = "\xEF\xBB\xBF";
  const auto& cols = report["columns"];
  for (size_t i = 0; i < cols.size(); ++i) out += (i ? "," : "") + cols[i].get<std::string>();
  out += "\r\n";
  for (const auto& row : report["items"]) {
    for (size_t i = 0; i < cols.size(); ++i) {
      const json& v = row.value(cols[i].get<std::string>(), json());
      out += i ? "," : "";
      if (v.is_string())
        out += Csv(v.get<std::string>());
      else if (!v.is_null())
        out += v.dump();
    }
    out += "\r\n";
  }
  return out;
}

}  // namespace anju::server
