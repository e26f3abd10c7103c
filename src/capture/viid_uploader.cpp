#include "capture/viid_uploader.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>

#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/json_limits.h"

namespace anju::capture {

namespace {

using nlohmann::json;

std::atomic<uint32_t> g_counter{0};

// GA/T 1400 integers sometimes arrive as decimal strings.
int AsInt(const json& v) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) return std::stoi(v.get<std::string>());
  throw std::invalid_argument("not an integer");
}

// Statuses of an answer: ResponseStatusListObject or one ResponseStatusObject.
std::vector<std::pair<std::string, int>> Statuses(const json& j) {
  std::vector<std::pair<std::string, int>> out;
  auto one = [&](const json& o) { out.emplace_back(o.value("Id", ""), AsInt(o.at("StatusCode"))); };
  if (j.contains("ResponseStatusListObject")) {
    const json& l = j.at("ResponseStatusListObject").at("ResponseStatusObject");
    if (l.is_array())
      for (const auto& o : l) one(o);
    else
      one(l);
  } else {
    one(j.at("ResponseStatusObject"));
  }
  return out;
}

size_t WireSize(const store::OutboxItem& item) {
  return item.payload.size() + (item.attachment.size() + 2) / 3 * 4 + 200;
}

}  // namespace

std::string ViidTime(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t) + 8 * 3600;
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string MakeFaceId(const std::string& device_id, std::chrono::system_clock::time_point t) {
  static const bool seeded = [] {
    // A random start keeps ids of a restarted process (same second) apart: all of the
    // 100,000 counter values, not the first 65,536 only.
    const auto r = crypto::RandomBytes(4);
    g_counter = (uint32_t(r[0]) << 24 | uint32_t(r[1]) << 16 | uint32_t(r[2]) << 8 | r[3]) % 100000;
    return true;
  }();
  (void)seeded;
  const uint32_t n = g_counter.fetch_add(1) % 100000;
  char seq[8];
  std::snprintf(seq, sizeof seq, "%05u", n);
  return device_id + "02" + ViidTime(t) + seq + "06" + seq;
}

json FaceObjectJson(const Capture& c, const std::string& device_id, const std::string& face_id,
                    bool with_data) {
  const std::string shot = ViidTime(c.shot_time);
  const std::string source_id = face_id.substr(0, face_id.size() >= 7 ? face_id.size() - 7 : 0);
  auto image = [&](const char* type, const std::vector<uint8_t>& jpeg, cv::Size size) {
    json o = {{"DeviceID", device_id}, {"Type", type},        {"FileFormat", "Jpeg"},
              {"ShotTime", shot},      {"Width", size.width}, {"Height", size.height}};
    // The scene is the source image the FaceObject's SourceID names.
    if (std::string(type) == "14") o["ImageID"] = source_id;
    if (with_data) o["Data"] = crypto::ToBase64(jpeg);
    return o;
  };
  json images = json::array();
  if (!c.face_jpeg.empty()) images.push_back(image("11", c.face_jpeg, c.crop.size()));
  if (!c.frame_jpeg.empty()) images.push_back(image("14", c.frame_jpeg, c.frame_size));
  return {{"FaceID", face_id},
          {"InfoKind", 1},
          {"SourceID", source_id},
          {"DeviceID", device_id},
          {"LeftTopX", cvRound(c.box.x)},
          {"LeftTopY", cvRound(c.box.y)},
          {"RightBtmX", cvRound(c.box.x + c.box.width)},
          {"RightBtmY", cvRound(c.box.y + c.box.height)},
          {"LocationMarkTime", shot},
          {"FaceAppearTime", ViidTime(c.appear_time)},
          {"FaceDisAppearTime", ViidTime(c.disappear_time)},
          {"SubImageList", {{"SubImageInfoObject", images}}}};
}

json ClipJson(const Capture& c, bool with_data) {
  json frames = json::array();
  for (const auto& f : c.clip) {
    json o = {{"OffsetMs", f.offset_ms}, {"Width", f.size.width}, {"Height", f.size.height}};
    if (with_data) o["Data"] = crypto::ToBase64(f.jpeg);
    frames.push_back(std::move(o));
  }
  return {{"Frames", frames}};
}

std::string EnqueueCapture(store::Outbox& outbox, const Capture& c, const std::string& device_id) {
  const std::string face_id = MakeFaceId(device_id, c.shot_time);
  json payload = {{"face", FaceObjectJson(c, device_id, face_id, false)},
                  {"face_bytes", c.face_jpeg.size()},
                  {"frame_bytes", c.frame_jpeg.size()},
                  {"camera", c.camera_id},
                  {"track", c.track_id},
                  {"rank", c.rank},
                  {"quality", c.quality.score}};
  std::vector<uint8_t> attachment = c.face_jpeg;
  attachment.insert(attachment.end(), c.frame_jpeg.begin(), c.frame_jpeg.end());
  if (!c.clip.empty()) {
    // The clip travels in the same outbox item (evidence, as durable as the capture); its
    // JPEGs follow the face and frame in the attachment.
    payload["face"][kClipKey] = ClipJson(c, false);
    json sizes = json::array();
    for (const auto& f : c.clip) {
      sizes.push_back(f.jpeg.size());
      attachment.insert(attachment.end(), f.jpeg.begin(), f.jpeg.end());
    }
    payload["clip_bytes"] = sizes;
  }
  outbox.Append(kOutboxKind, payload.dump(), attachment);
  return face_id;
}

json ViidStats::ToJson() const {
  return {{"registered", registered}, {"registrations", registrations},
          {"keepalives", keepalives}, {"requests", requests},
          {"acked", acked},           {"refused", refused},
          {"failures", failures},     {"last_error", last_error}};
}

struct ViidUploader::Http {
  std::mutex mu;
  httplib::Client client;
  explicit Http(const std::string& url) : client(url) {}
};

ViidUploader::ViidUploader(store::Outbox& outbox, ViidOptions options)
    : outbox_(outbox), options_(std::move(options)) {
  if (options_.server_url.rfind("http://", 0) != 0 && options_.server_url.rfind("https://", 0) != 0)
    throw Error(ErrorCode::kInvalidArgument,
                "服务器地址应以 http:// 或 https:// 开头 / server url must start with http:// or "
                "https://: '" +
                    options_.server_url + "'");
  if (options_.username.empty()) options_.username = options_.device_id;
  http_ = std::make_unique<Http>(options_.server_url);
  auto& cli = http_->client;
  if (!cli.is_valid())
    throw Error(ErrorCode::kInvalidArgument,
                "服务器地址无效 / bad server url: " + options_.server_url);
  cli.set_connection_timeout(options_.connect_timeout);
  cli.set_read_timeout(options_.read_timeout);
  cli.set_write_timeout(options_.read_timeout);
  cli.set_keep_alive(true);
  if (!options_.password.empty()) cli.set_digest_auth(options_.username, options_.password);
  if (!options_.ca_file.empty()) cli.set_ca_cert_path(options_.ca_file);
  cli.enable_server_certificate_verification(options_.verify_tls);
  cli.set_default_headers({{"User-Identify", options_.device_id}});
}

ViidUploader::~ViidUploader() {
  Stop();
}

json ViidUploader::Post(const char* path, const json& body, int* status) {
  std::lock_guard lock(http_->mu);
  const std::string text = body.dump();
  httplib::Result r = http_->client.Post(path, text, "application/VIID+JSON;charset=UTF-8");
  // A kept-alive connection the server has closed fails on first use: one retry on a new
  // connection (a repeated Faces request is harmless: FaceIDs make it idempotent).
  if (!r && (r.error() == httplib::Error::Write || r.error() == httplib::Error::Read))
    r = http_->client.Post(path, text, "application/VIID+JSON;charset=UTF-8");
  if (!r)
    throw Error(ErrorCode::kUnavailable,
                std::string("视图库服务器无法连接 / VIID server unreachable (") + path +
                    "): " + httplib::to_string(r.error()));
  *status = r->status;
  if (r->status == 401)
    throw Error(ErrorCode::kCrypto, std::string("视图库服务器拒绝认证 / VIID server refused the "
                                                "credentials (401) at ") +
                                        path);
  try {
    return protocol::ParseJson(r->body);  // peer limits (json_limits.h)
  } catch (const Error&) {
    if (r->status >= 200 && r->status < 300)
      throw Error(ErrorCode::kCorrupt,
                  std::string("视图库应答不是 JSON / VIID answer is not JSON at ") + path + ": " +
                      r->body.substr(0, 200));
    return json::object();  // an error page; the status says what happened
  }
}

void ViidUploader::Register() {
  std::vector<std::string> ids = {options_.device_id};
  for (const auto& id : options_.other_device_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  for (const auto& id : ids) {
    int status = 0;
    json a = Post("/VIID/System/Register", {{"RegisterObject", {{"DeviceID", id}}}}, &status);
    int code = -1;
    try {
      code = Statuses(a).at(0).second;
    } catch (const std::exception&) {
      if (status >= 200 && status < 300)
        throw Error(ErrorCode::kCorrupt,
                    "注册应答格式错误 / malformed Register answer: " + a.dump());
    }
    if (status < 200 || status >= 300 || code != 0)
      throw Error(ErrorCode::kUnavailable, "注册被拒绝 / registration of " + id +
                                               " refused (HTTP " + std::to_string(status) +
                                               ", StatusCode " + std::to_string(code) + ")");
  }
  ++registrations_;
  registered_ = true;
  spdlog::info("已在视图库注册 / registered with the VIID server {} as {}", options_.server_url,
               options_.device_id);
}

void ViidUploader::Keepalive() {
  int status = 0;
  try {
    json a = Post("/VIID/System/Keepalive",
                  {{"KeepaliveObject", {{"DeviceID", options_.device_id}}}}, &status);
    if (status < 200 || status >= 300) {
      // The server forgot us (restart): register again before the next upload.
      registered_ = false;
      throw Error(ErrorCode::kUnavailable,
                  "保活被拒绝 / keepalive refused (HTTP " + std::to_string(status) + ")");
    }
    ++keepalives_;
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kCrypto) registered_ = false;
    throw;
  }
}

size_t ViidUploader::UploadOnce() {
  std::vector<store::OutboxItem> items = outbox_.Peek(options_.max_faces);
  if (items.empty()) return 0;
  if (!registered_) Register();
  size_t bytes = 0, n = 0;
  for (; n < items.size(); ++n) {
    bytes += WireSize(items[n]);
    if (n > 0 && bytes > options_.max_bytes) break;
  }
  items.resize(n);

  std::map<std::string, std::string> by_face;  // FaceID → outbox id
  std::vector<std::string> ack;
  json faces = json::array();
  for (const auto& item : items) {
    json p;
    try {
      p = json::parse(item.payload);
      json face = p.at("face");
      const size_t fb = p.at("face_bytes").get<size_t>(), sb = p.at("frame_bytes").get<size_t>();
      std::vector<size_t> cb;
      if (p.contains("clip_bytes")) cb = p.at("clip_bytes").get<std::vector<size_t>>();
      size_t total = fb + sb;
      for (size_t b : cb) total += b;
      json& subs = face["SubImageList"]["SubImageInfoObject"];
      if (item.attachment_dropped || item.attachment.size() != total) {
        subs = json::array();  // the buffer was full: the record goes without pictures
        face.erase(kClipKey);
      } else {
        size_t off = 0;
        for (auto& s : subs) {
          const size_t len = s.at("Type") == "11" ? fb : sb;
          s["Data"] = crypto::ToBase64(crypto::ByteView(item.attachment).subspan(off, len));
          off += len;
        }
        if (face.contains(kClipKey)) {
          json& frames = face[kClipKey]["Frames"];
          for (size_t k = 0; k < frames.size() && k < cb.size(); ++k) {
            frames[k]["Data"] =
                crypto::ToBase64(crypto::ByteView(item.attachment).subspan(off, cb[k]));
            off += cb[k];
          }
        }
      }
      by_face[face.at("FaceID").get<std::string>()] = item.id;
      faces.push_back(std::move(face));
    } catch (const std::exception& e) {
      spdlog::warn("缓冲区中的抓拍记录损坏，丢弃 / dropping unreadable buffered capture {}: {}",
                   item.id, e.what());
      ack.push_back(item.id);
    }
  }
  if (!faces.empty()) {
    int status = 0;
    json a;
    try {
      a = Post("/VIID/Faces", {{"FaceListObject", {{"FaceObject", faces}}}}, &status);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCrypto) registered_ = false;
      throw;
    }
    if (status == 413 && items.size() > 1) {
      options_.max_faces = std::max<size_t>(1, items.size() / 2);  // try smaller batches
      throw Error(ErrorCode::kUnavailable,
                  "请求过大，减小批量 / request too large, smaller batches");
    }
    if (status >= 500 || status == 429 || status == 408)
      throw Error(ErrorCode::kUnavailable,
                  "视图库服务器错误 / VIID server error HTTP " + std::to_string(status));
    ++requests_;
    std::vector<std::pair<std::string, int>> st;
    try {
      st = Statuses(a);
    } catch (const std::exception&) {
      if (status >= 200 && status < 300)
        throw Error(ErrorCode::kCorrupt,
                    "Faces 应答格式错误 / malformed Faces answer: " + a.dump().substr(0, 200));
    }
    if (status >= 200 && status < 300 && st.size() == 1 && st[0].first.empty() &&
        st[0].second == 0) {
      for (const auto& [face, id] : by_face) ack.push_back(id);  // one status for the list
    } else if (status >= 200 && status < 300) {
      for (const auto& [face, code] : st) {
        auto it = by_face.find(face);
        if (it == by_face.end()) continue;
        // 0 = stored (or a duplicate); 7/8 = this face is malformed and never will be
        // accepted: acknowledged so it cannot block the queue, with a warning.
        if (code == 0 || code == 7 || code == 8) ack.push_back(it->second);
        if (code != 0) {
          ++refused_;
          spdlog::warn("视图库拒收抓拍 / VIID server refused face {} (StatusCode {})", face, code);
        }
      }
    } else if (items.size() == 1 && (status == 400 || status == 413)) {
      // One face the server will never take (malformed for it, or too large).
      ++refused_;
      spdlog::warn("视图库拒收抓拍 / VIID server refused face {} (HTTP {})", by_face.begin()->first,
                   status);
      ack.push_back(items[0].id);
    } else {
      throw Error(ErrorCode::kUnavailable,
                  "Faces 请求失败 / Faces request failed: HTTP " + std::to_string(status));
    }
  }
  const size_t removed = outbox_.Ack(ack);
  acked_ += removed;
  return ack.size();
}

size_t ViidUploader::Drain() {
  size_t total = 0;
  while (outbox_.Stats().count > 0) {
    const size_t n = UploadOnce();
    if (n == 0)
      throw Error(ErrorCode::kUnavailable,
                  "服务器未确认任何抓拍 / the server acknowledged none of the faces sent");
    total += n;
  }
  return total;
}

void ViidUploader::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void ViidUploader::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ViidUploader::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void ViidUploader::Loop() {
  int failures = 0;
  auto next_keepalive = std::chrono::steady_clock::now();
  for (;;) {
    std::chrono::milliseconds delay = options_.idle_poll;
    try {
      if (!registered_) {
        Register();
        next_keepalive = std::chrono::steady_clock::now() + options_.keepalive;
      }
      if (std::chrono::steady_clock::now() >= next_keepalive) {
        Keepalive();
        next_keepalive = std::chrono::steady_clock::now() + options_.keepalive;
      }
      const size_t n = UploadOnce();
      if (failures > 0)
        spdlog::info("视图库上传已恢复 / VIID upload resumed ({} items waiting)",
                     outbox_.Stats().count);
      failures = 0;
      if (n > 0 && outbox_.Stats().count > 0) delay = std::chrono::milliseconds(0);
    } catch (const std::exception& e) {
      ++failures_;
      {
        std::lock_guard lock(mu_);
        last_error_ = e.what();
      }
      if (failures < 3 || failures % 10 == 0)
        spdlog::warn("视图库上传失败 / VIID upload failed (attempt {}): {}", failures + 1,
                     e.what());
      ++failures;
      auto d = options_.backoff_initial;
      for (int i = 1; i < failures && d < options_.backoff_max; ++i) d *= 2;
      delay = std::min(d, options_.backoff_max);
    }
    std::unique_lock lock(mu_);
    if (delay.count() > 0)
      cv_.wait_for(lock, delay, [&] { return stop_ || (wake_ && failures == 0); });
    if (stop_) return;
    wake_ = false;
  }
}

ViidStats ViidUploader::stats() const {
  ViidStats s;
  s.registrations = registrations_;
  s.keepalives = keepalives_;
  s.requests = requests_;
  s.acked = acked_;
  s.refused = refused_;
  s.failures = failures_;
  s.registered = registered_;
  std::lock_guard lock(mu_);
  s.last_error = last_error_;
  return s;
}

}  // namespace anju::capture
