// The live tail of the event store (access records and alarms onto the bus) and the two
// outboxes it feeds: the alarm webhook and forwarding to an upper platform (HTTP JSON or
// GA/T 1400 with Digest), each sent in order and retried (docs/viid.md).
#include "server/viid/viid_service.h"

#include <spdlog/spdlog.h>

#include <tuple>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "server/events/event_store.h"
#include "server/http/outbound_client.h"
#include "server/runtime/runtime.h"
#include "server/storage/forward_repo.h"
#include "server/storage/viid_events_reader.h"
#include "server/viid/common.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;
using cameras::NowMs;
using storage::ForwardRepo;
using storage::Outbox;

// ---- live tail of the event store, webhook ---------------------------------------------

void ViidService::Tail() {
  if (!deps_.events) return;
  int64_t event_seq = 0, alarm_id = 0;
  bool init = false;
  while (!Stopping()) {
    if (!leader_->IsLeader(runtime::kJobEventTail)) {
      init = false;  // another process publishes; from now on once this one takes over
      std::unique_lock lock(bg_mu_);
      bg_cv_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    try {
      storage::ViidEventsReader r(deps_.events->database_file());
      if (!init) {
        std::tie(event_seq, alarm_id) = r.Newest();
        init = true;
        // The webhook cursor survives restarts; the live stream starts from now.
        auto conn = db_->Acquire();
        ForwardRepo::AddSetting(conn, "webhook_alarm_cursor", std::to_string(alarm_id));
      }
      while (!Stopping() && leader_->IsLeader(runtime::kJobEventTail)) {
        std::vector<std::string> ids;
        for (const auto& e : r.EventsAfter(event_seq, 500)) {
          event_seq = e.seq;
          if (e.kind == "access") ids.push_back(e.id);
        }
        for (const auto& id : ids) bus_->Publish("access", ToJson(deps_.events->Get(id)));
        const std::vector<int64_t> alarms = r.AlarmsAfter(alarm_id, 500);
        if (!alarms.empty()) alarm_id = alarms.back();
        for (int64_t a : alarms) bus_->Publish("alarm", ToJson(deps_.events->GetAlarm(a)));
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
          db::Transaction tx(conn);
          for (auto& [a, body] : batch) {
            ForwardRepo::EnqueueWebhook(conn, body.dump(), NowMs());
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
    throw Error(ErrorCode::kInvalidArgument,
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

// Waits a second when another process holds JOB; true when this one may run it now.
bool ViidService::HoldsJob(const char* job) {
  if (leader_->IsLeader(job)) return true;
  std::unique_lock lock(bg_mu_);
  bg_cv_.wait_for(lock, std::chrono::seconds(1));
  return false;
}

void ViidService::WebhookSender() {
  while (!Stopping()) {
    if (!HoldsJob(runtime::kJobWebhook)) continue;
    std::string url;
    std::vector<storage::OutboxItem> batch;
    int64_t next_wait_ms = 1000;
    try {
      auto conn = db_->Acquire();
      url = ForwardRepo::Setting(conn, "webhook_url").value_or("");
      if (!url.empty()) batch = ForwardRepo::Due(conn, Outbox::kWebhook, NowMs(), 20);
    } catch (const std::exception& e) {
      spdlog::warn("viid: webhook: {}", e.what());
    }
    if (!batch.empty()) {
      // "http://host:port/path" → client + path.
      const size_t scheme_end = url.find("://") + 3;
      const size_t slash = url.find('/', scheme_end);
      const std::string base = slash == std::string::npos ? url : url.substr(0, slash);
      const std::string path = slash == std::string::npos ? "/" : url.substr(slash);
      http::OutboundClient client(base, 3, 5);
      for (const auto& item : batch) {
        if (Stopping()) break;
        const auto res = client.Post(path, {}, item.body, "application/json");
        auto conn = db_->Acquire();
        if (res.ok()) {
          ForwardRepo::Sent(conn, Outbox::kWebhook, item.seq);
          next_wait_ms = 0;
        } else {
          ForwardRepo::Failed(conn, Outbox::kWebhook, item.seq, NowMs(), res.Describe());
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
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
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
  db::Transaction tx(conn);
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
                              NowMs());
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
    if (!HoldsJob(runtime::kJobForward)) continue;
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
        batch = ForwardRepo::Due(conn, Outbox::kForward, NowMs(), 20);
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
      http::OutboundClient client(base, 3, 10);
      const std::string user = fwd.value("username", "");
      for (const auto& item : batch) {
        if (Stopping()) break;
        // item.kind: queued for the kind configured then; sent to the current target
        const std::string& body = item.body;
        auto post = [&] {
          std::vector<std::pair<std::string, std::string>> h;
          if (gat) {
            h.emplace_back("User-Identify", user);
            if (have_challenge)
              h.emplace_back("Authorization", viid::FormatAuthorization(viid::AnswerChallenge(
                                                  challenge, user, password, "POST", path, ++nc)));
          }
          return client.Post(path, h, body, "application/json");
        };
        http::OutboundReply res = post();
        if (gat && res.status == 401) {
          // A new or expired nonce: answer the challenge once.
          try {
            challenge = viid::ParseChallenge(res.www_authenticate);
            have_challenge = true;
            nc = 0;
            res = post();
          } catch (const Error&) {
          }
        }
        auto conn = db_->Acquire();
        if (res.ok()) {
          ForwardRepo::Sent(conn, Outbox::kForward, item.seq);
          wait_ms = 0;
        } else {
          ForwardRepo::Failed(conn, Outbox::kForward, item.seq, NowMs(), res.Describe());
          break;
        }
      }
    }
    std::unique_lock lock(bg_mu_);
    if (wait_ms > 0) bg_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms));
  }
}

}  // namespace anju::server
