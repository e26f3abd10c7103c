#include "fake_device_server.h"

#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "protocol/feature_codec.h"

namespace anju::testing {

using nlohmann::json;

FakeDeviceServer::FakeDeviceServer(std::string model_version)
    : model_version_(std::move(model_version)) {
  Start();
}

FakeDeviceServer::FakeDeviceServer(std::string model_version, std::filesystem::path tls_cert,
                                   std::filesystem::path tls_key)
    : model_version_(std::move(model_version)),
      tls_cert_(std::move(tls_cert)),
      tls_key_(std::move(tls_key)) {
  Start();
}

FakeDeviceServer::~FakeDeviceServer() {
  Stop();
}

void FakeDeviceServer::Bind() {
  if (tls_cert_.empty())
    http_ = std::make_unique<httplib::Server>();
  else
    http_ = std::make_unique<httplib::SSLServer>(tls_cert_.c_str(), tls_key_.c_str());
  // Idle kept-alive connections would hold Stop() for the default 5 s.
  http_->set_keep_alive_timeout(1);
  http_->Post("/api/v1/device/register", [this](const httplib::Request& req,
                                                httplib::Response& res) {
    try {
      const json j = json::parse(req.body);
      std::lock_guard lock(mu_);
      const std::string code = j.at("enrolment_code").get<std::string>();
      if (!codes_.erase(code)) {
        res.status = 403;
        res.set_content(protocol::ErrorBody("enrolment_code_invalid", "注册码无效 / invalid code"),
                        "application/json");
        return;
      }
      if (j.value("model_version", "") != model_version_) {
        res.status = 409;
        res.set_content(protocol::ErrorBody("conflict", "模型版本不符 / model version differs"),
                        "application/json");
        return;
      }
      Device d{"dev-" + std::to_string(next_device_++),
               crypto::Sm2Key::FromPublicPem(j.at("public_key").get<std::string>()),
               crypto::DataKey::Generate()};
      devices_.emplace(d.id, d);
      const json answer = {{"device_id", d.id},
                           {"data_key", crypto::ToHex(d.key.Encrypt(d.data_key.bytes()))},
                           {"server_public_key", server_key_.PublicPem()},
                           {"server_time_ms", protocol::NowMs()}};
      res.set_content(answer.dump(), "application/json");
    } catch (const std::exception& e) {
      res.status = 400;
      res.set_content(protocol::ErrorBody("bad_request", e.what()), "application/json");
    }
  });

  Route("GET", "/api/v1/device/gallery",
        [this](const std::string&, const httplib::Request& req, json& answer) {
          int64_t since = std::stoll(req.get_param_value("since"));
          const size_t limit =
              req.has_param("limit") ? std::stoul(req.get_param_value("limit")) : size_t{200};
          std::lock_guard lock(mu_);
          last_since_ = since;
          if (since > seq_) since = 0;  // a device ahead of a restored server: everything again
          if (gallery_pages_left_ == 0) {
            answer = json::parse(protocol::ErrorBody("unavailable", "维护中 / maintenance"));
            return 503;
          }
          if (gallery_pages_left_ > 0) --gallery_pages_left_;
          std::vector<std::pair<int64_t, std::string>> changed;
          for (const auto& [person, e] : people_)
            if (e.seq > since) changed.emplace_back(e.seq, person);
          std::sort(changed.begin(), changed.end());
          const bool more = changed.size() > limit;
          if (more) changed.resize(limit);
          const int64_t version = more ? changed.back().first : seq_;
          json changes = json::array();
          for (const auto& [seq, person] : changed) {
            const Entry& e = people_.at(person);
            if (e.remove) {
              changes.push_back({{"op", "remove"}, {"person", person}, {"reason", e.reason}});
              continue;
            }
            // Sealed with the data key of the device asking.
            json templates = json::array();
            const auto& dk = devices_.at(req.get_header_value(protocol::kHeaderDevice)).data_key;
            for (size_t i = 0; i < e.features.size(); ++i)
              templates.push_back({{"id", "t-" + std::to_string(seq) + "-" + std::to_string(i)},
                                   {"feature", protocol::SealFeature(dk, person, e.features[i])}});
            changes.push_back({{"op", "upsert"},
                               {"person", person},
                               {"display_name", e.display_name},
                               {"templates", templates},
                               {"rules", e.rules}});
          }
          answer = {{"model_version", model_version_},
                    {"since", since},
                    {"version", version},
                    {"latest", seq_},
                    {"more", more},
                    {"changes", changes}};
          if (!thresholds_.is_null()) answer["thresholds"] = thresholds_;
          return 200;
        });

  Route("GET", "/api/v1/device/commands",
        [this](const std::string&, const httplib::Request&, json& answer) {
          std::lock_guard lock(mu_);
          answer = {{"commands", commands_}};
          return 200;
        });
  Route("POST", "/api/v1/device/commands/ack",
        [this](const std::string&, const httplib::Request& req, json& answer) {
          const json j = json::parse(req.body);
          std::lock_guard lock(mu_);
          int n = 0;
          for (const auto& id : j.at("ids")) {
            const auto before = commands_.size();
            std::erase_if(commands_, [&](const json& c) { return c.at("id") == id; });
            if (commands_.size() != before) ++n, acked_.push_back(id.get<std::string>());
          }
          answer = {{"acked", n}};
          return 200;
        });
  Route("POST", "/api/v1/device/heartbeat",
        [this](const std::string&, const httplib::Request& req, json& answer) {
          static const std::set<std::string> allowed = {
              "software_version", "gallery_version", "outbox_count", "outbox_bytes",
              "outbox_oldest_ms", "camera",          "uptime_s"};
          const json j = json::parse(req.body);
          for (const auto& [k, v] : j.items())
            if (!allowed.count(k)) {
              answer = json::parse(protocol::ErrorBody("unknown_field", "unknown field " + k));
              return 400;
            }
          std::lock_guard lock(mu_);
          heartbeat_ = j;
          ++heartbeats_;
          answer = {{"server_time_ms", protocol::NowMs()},
                    {"latest_gallery_version", seq_},
                    {"commands_pending", commands_.size()}};
          return 200;
        });
  Route("POST", "/api/v1/device/events",
        [this](const std::string&, const httplib::Request& req, json& answer) {
          std::chrono::milliseconds slow{0};
          {
            std::lock_guard lock(mu_);
            slow = slow_events_;
          }
          if (slow.count()) std::this_thread::sleep_for(slow);
          const json j = json::parse(req.body);
          json stored = json::array(), duplicates = json::array(), rejected = json::array();
          std::chrono::milliseconds delay{0};
          {
            std::lock_guard lock(mu_);
            ++event_requests_;
            for (const auto& e : j.at("events")) {
              const std::string id = e.at("id").get<std::string>();
              const bool seen = receipts_[id]++ > 0;
              static const std::set<std::string> kinds = {"access", "alarm", "door_event"};
              if (seen) {
                duplicates.push_back(id);
              } else if (!kinds.count(e.at("kind").get<std::string>())) {
                rejected.push_back({{"id", id}, {"code", "bad_request"}, {"message", "kind"}});
              } else {
                events_.push_back(e);
                stored.push_back(id);
              }
            }
            if (delay_replies_ > 0) --delay_replies_, delay = reply_delay_;
          }
          // The events are stored; the device does not hear about it in time.
          if (delay.count()) std::this_thread::sleep_for(delay);
          answer = {{"stored", stored}, {"duplicates", duplicates}, {"rejected", rejected}};
          return 200;
        });
}

void FakeDeviceServer::Route(const char* method, const char* path, Handler handler) {
  auto wrapped = [this, handler](const httplib::Request& req, httplib::Response& res) {
    const protocol::SignedHeaders h{req.get_header_value(protocol::kHeaderDevice),
                                    req.get_header_value(protocol::kHeaderTime),
                                    req.get_header_value(protocol::kHeaderNonce),
                                    req.get_header_value(protocol::kHeaderSignature)};
    json answer;
    int status = 200;
    std::optional<crypto::Sm2Key> pub;
    {
      std::lock_guard lock(mu_);
      auto it = devices_.find(h.device);
      if (it != devices_.end()) pub = it->second.key.PublicOnly();
    }
    const auto auth = pub ? protocol::VerifyRequest(h, *pub, req.method, req.target, req.body)
                          : protocol::AuthResult::kMalformed;
    if (auth != protocol::AuthResult::kOk) {
      status = 401;
      answer = json::parse(protocol::ErrorBody("unauthenticated", protocol::AuthResultName(auth)));
    } else if (!nonces_.CheckAndRemember(h.device, h.nonce)) {
      status = 401;
      answer = json::parse(protocol::ErrorBody("replayed", "nonce seen before"));
    } else {
      try {
        status = handler(h.device, req, answer);
      } catch (const std::exception& e) {
        status = 400;
        answer = json::parse(protocol::ErrorBody("bad_request", e.what()));
      }
    }
    res.status = status;
    res.set_content(answer.dump(), "application/json");
    res.set_header(protocol::kHeaderSignature,
                   protocol::SignResponse(server_key_, h.device, h.nonce, status, res.body));
  };
  if (std::string(method) == "GET")
    http_->Get(path, wrapped);
  else
    http_->Post(path, wrapped);
}

void FakeDeviceServer::Start() {
  Stop();
  Bind();
  if (port_ == 0) {
    port_ = http_->bind_to_any_port("127.0.0.1");
  } else {
    // The same address again after a cut (the old socket may linger briefly).
    bool bound = false;
    for (int i = 0; i < 100 && !bound; ++i) {
      bound = http_->bind_to_port("127.0.0.1", port_);
      if (!bound) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!bound) throw std::runtime_error("cannot bind port " + std::to_string(port_) + " again");
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  while (!http_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void FakeDeviceServer::Stop() {
  if (!http_) return;
  http_->stop();
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

std::string FakeDeviceServer::NewEnrolmentCode() {
  std::lock_guard lock(mu_);
  const std::string code = "CODE-" + crypto::ToHex(crypto::RandomBytes(4));
  codes_.insert(code);
  return code;
}

FakeDeviceServer::Device FakeDeviceServer::AddDevice() {
  std::lock_guard lock(mu_);
  Device d{"dev-" + std::to_string(next_device_++), crypto::Sm2Key::Generate(),
           crypto::DataKey::Generate()};
  devices_.emplace(d.id, Device{d.id, d.key.PublicOnly(), d.data_key});
  return d;
}

void FakeDeviceServer::Upsert(const std::string& person, const std::string& display_name,
                              const std::vector<std::vector<float>>& features, const json& rules) {
  std::lock_guard lock(mu_);
  people_[person] = Entry{++seq_, false, display_name, "", features, rules};
}

void FakeDeviceServer::Remove(const std::string& person, const std::string& reason) {
  std::lock_guard lock(mu_);
  people_[person] = Entry{++seq_, true, "", reason, {}, json::object()};
}

void FakeDeviceServer::ResetLog() {
  std::lock_guard lock(mu_);
  people_.clear();
  seq_ = 0;
}

int64_t FakeDeviceServer::latest() const {
  std::lock_guard lock(mu_);
  return seq_;
}

void FakeDeviceServer::QueueCommand(json command) {
  std::lock_guard lock(mu_);
  commands_.push_back(std::move(command));
}

std::vector<std::string> FakeDeviceServer::acked_commands() const {
  std::lock_guard lock(mu_);
  return acked_;
}

size_t FakeDeviceServer::pending_commands() const {
  std::lock_guard lock(mu_);
  return commands_.size();
}

json FakeDeviceServer::last_heartbeat() const {
  std::lock_guard lock(mu_);
  return heartbeat_;
}

std::vector<json> FakeDeviceServer::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

std::map<std::string, int> FakeDeviceServer::receipts() const {
  std::lock_guard lock(mu_);
  return receipts_;
}

void FakeDeviceServer::DelayEventReplies(int count, std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delay_replies_ = count;
  reply_delay_ = delay;
}

void FakeDeviceServer::SlowEventRequests(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  slow_events_ = delay;
}

void FakeDeviceServer::SetThresholds(nlohmann::json levels) {
  std::lock_guard lock(mu_);
  thresholds_ = std::move(levels);
}

void FakeDeviceServer::FailGalleryAfter(int pages) {
  std::lock_guard lock(mu_);
  gallery_pages_left_ = pages;
}

}  // namespace anju::testing
