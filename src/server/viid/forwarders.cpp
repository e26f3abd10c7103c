#include "server/viid/forwarders.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <tuple>
#include <utility>

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

namespace {

OutboxStatus StatusOf(const storage::OutboxState& st) {
  return {st.pending, st.max_attempts, st.oldest_ms, st.last_error};
}

ForwardTarget TargetOf(const json& stored) {
  ForwardTarget t;
  if (!stored.is_object()) return t;
  t.kind = stored.value("kind", "");
  t.url = stored.value("url", "");
  t.username = stored.value("username", "");
  t.captures = stored.value("captures", true);
  t.alarms = stored.value("alarms", true);
  t.keepalive_s = stored.value("keepalive_s", 30);
  return t;
}

// "http://host:port/path" → {"http://host:port", "/path"} ("" when there is no path).
std::pair<std::string, std::string> SplitUrl(const std::string& url) {
  const size_t scheme_end = url.find("://") + 3;
  const size_t slash = url.find('/', scheme_end);
  if (slash == std::string::npos) return {url, ""};
  return {url.substr(0, slash), url.substr(slash)};
}

// Why the platform did not take a request: "" when it did (2xx and, when it answered a
// ResponseStatus, every StatusCode 0), else the HTTP status or transport error with the
// platform's StatusCode and StatusString when it gave them.
std::string Refusal(const http::OutboundReply& r) {
  std::string why = r.ok() ? "" : r.Describe();
  if (!r.answered()) return why;
  try {
    for (const auto& st : viid::ParseResponseStatus(r.body))
      if (st.status_code != viid::kOk)
        return (why.empty() ? "" : why + ", ") + "StatusCode " + std::to_string(st.status_code) +
               (st.status_string.empty() ? "" : " (" + st.status_string + ")");
  } catch (const Error&) {
    // not a ResponseStatus: the HTTP status says it
  }
  return why;
}

json SessionJson(const ForwardSession& s) {
  return {{"registered", s.registered},
          {"last_register_ms", s.last_register_ms},
          {"last_keepalive_ms", s.last_keepalive_ms},
          {"registrations", s.registrations},
          {"last_error", s.last_error}};
}

ForwardSession SessionOf(const json& j) {
  ForwardSession s;
  if (!j.is_object()) return s;
  s.registered = j.value("registered", false);
  s.last_register_ms = j.value("last_register_ms", int64_t(0));
  s.last_keepalive_ms = j.value("last_keepalive_ms", int64_t(0));
  s.registrations = j.value("registrations", int64_t(0));
  s.last_error = j.value("last_error", "");
  return s;
}

}  // namespace

// The lower platform's side of a GA/T 1400 cascade (GA/T 1400.4 registration, keepalive,
// unregistration as DeviceID = the username; docs/viid.md "Forwarding"): requests to the
// upper platform under URL's path, with User-Identify and HTTP Digest, a challenge answered
// once per request (a new or expired nonce).
class Forwarders::Cascade {
 public:
  Cascade(const std::string& url, std::string user, std::string password)
      : base_(SplitUrl(url).first),
        prefix_(SplitUrl(url).second),
        user_(std::move(user)),
        password_(std::move(password)),
        client_(base_, 3, 10) {
    while (prefix_.ends_with("/")) prefix_.pop_back();
  }

  http::OutboundReply Call(const char* path, const std::string& body) {
    return Call(client_, path, body);
  }

  // "" when the platform took the registration, else why not.
  std::string Register() {
    const auto r = Call(viid::kPathRegister, SystemBody(viid::SystemObject::kRegister));
    if (r.status == 401)
      return "HTTP 401: 上级平台拒绝了用户名或密码 / the upper platform refused the username or "
             "password";
    return Refusal(r);
  }

  std::string Keepalive() {
    return Refusal(Call(viid::kPathKeepalive, SystemBody(viid::SystemObject::kKeepalive)));
  }

  // Best effort, within a few seconds: the platform also forgets a silent registration.
  void Unregister() {
    http::OutboundClient quick(base_, 1, 2);
    const std::string why =
        Refusal(Call(quick, viid::kPathUnRegister, SystemBody(viid::SystemObject::kUnRegister)));
    if (why.empty())
      spdlog::info("viid: forward: unregistered from the upper platform");
    else
      spdlog::info("viid: forward: unregistering from the upper platform: {}", why);
  }

 private:
  std::string SystemBody(viid::SystemObject kind) const {
    return viid::MakeSystemObject(kind, user_).dump();
  }

  http::OutboundReply Call(http::OutboundClient& client, const char* p, const std::string& body) {
    const std::string path = prefix_ + p;
    auto post = [&] {
      std::vector<std::pair<std::string, std::string>> h;
      h.emplace_back("User-Identify", user_);
      if (have_challenge_)
        h.emplace_back("Authorization", viid::FormatAuthorization(viid::AnswerChallenge(
                                            challenge_, user_, password_, "POST", path, ++nc_)));
      return client.Post(path, h, body, "application/json");
    };
    http::OutboundReply r = post();
    if (r.status == 401) {
      // A new or expired nonce: answer the challenge once.
      try {
        challenge_ = viid::ParseChallenge(r.www_authenticate);
        have_challenge_ = true;
        nc_ = 0;
        r = post();
      } catch (const Error&) {
      }
    }
    return r;
  }

  std::string base_, prefix_, user_, password_;
  http::OutboundClient client_;
  viid::DigestChallenge challenge_;
  bool have_challenge_ = false;
  uint32_t nc_ = 0;
};

// Runs WRITE on a connection until it succeeds (the database may be away for a while);
// false when the process stops first. An exception leaving a sender's thread would end
// the process.
bool Forwarders::Record(const std::function<void(db::Conn&)>& write) {
  for (;;) {
    try {
      auto conn = ctx_.db().Acquire();
      write(conn);
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("viid: outbox: {}; retrying", e.what());
    }
    if (ctx_.Stopping()) return false;
    ctx_.Sleep(std::chrono::milliseconds(500));
  }
}

// ---- live tail of the event store, webhook ---------------------------------------------

void Forwarders::RunTail() {
  if (!ctx_.deps().events) return;
  int64_t event_seq = 0, alarm_id = 0;
  bool init = false;
  while (!ctx_.Stopping()) {
    if (!ctx_.leader().IsLeader(runtime::kJobEventTail)) {
      init = false;  // another process publishes; from now on once this one takes over
      ctx_.Sleep(std::chrono::seconds(1));
      continue;
    }
    try {
      storage::ViidEventsReader r(ctx_.deps().events->database());
      if (!init) {
        std::tie(event_seq, alarm_id) = r.Newest();
        init = true;
        // The webhook cursor survives restarts; the live stream starts from now.
        auto conn = ctx_.db().Acquire();
        ForwardRepo::AddSetting(conn, "webhook_alarm_cursor", std::to_string(alarm_id));
      }
      while (!ctx_.Stopping() && ctx_.leader().IsLeader(runtime::kJobEventTail)) {
        std::vector<std::string> ids;
        for (const auto& e : r.EventsAfter(event_seq, 500)) {
          event_seq = e.seq;
          if (e.kind == "access") ids.push_back(e.id);
        }
        for (const auto& id : ids)
          ctx_.bus().Publish("access", ToJson(ctx_.deps().events->Get(id)));
        const std::vector<int64_t> alarms = r.AlarmsAfter(alarm_id, 500);
        if (!alarms.empty()) alarm_id = alarms.back();
        for (int64_t a : alarms)
          ctx_.bus().Publish("alarm", ToJson(ctx_.deps().events->GetAlarm(a)));
        // Webhook: every alarm past the durable cursor goes to the outbox, once.
        int64_t cursor = 0;
        std::string url;
        {
          auto conn = ctx_.db().Acquire();
          const auto set = ForwardRepo::Settings(conn, {"webhook_alarm_cursor", "webhook_url"});
          if (auto it = set.find("webhook_url"); it != set.end()) url = it->second;
          if (auto it = set.find("webhook_alarm_cursor"); it != set.end())
            cursor = std::stoll(it->second);
        }
        if (!url.empty() && cursor < alarm_id) {
          std::vector<std::pair<int64_t, json>> batch;
          for (int64_t a : r.AlarmsAfter(cursor, 200)) {
            json body = {{"type", "alarm"}, {"alarm", ToJson(ctx_.deps().events->GetAlarm(a))}};
            try {
              const auto ev = ctx_.deps().events->Get(body["alarm"]["event_id"].get<std::string>());
              if (ev.payload.contains("evidence")) body["evidence"] = ev.payload["evidence"];
            } catch (const Error&) {
            }
            batch.emplace_back(a, std::move(body));
          }
          auto conn = ctx_.db().Acquire();
          db::Transaction tx(conn);
          for (auto& [a, body] : batch) {
            ForwardRepo::EnqueueWebhook(conn, body.dump(), NowMs());
            cursor = a;
          }
          ForwardRepo::UpdateSetting(conn, "webhook_alarm_cursor", std::to_string(cursor));
          tx.Commit();
          ctx_.Wake();
        }
        // Forwarding (http kind): every alarm past its own durable cursor.
        ForwardTarget fwd;
        int64_t fcursor = 0;
        {
          auto conn = ctx_.db().Acquire();
          const auto set = ForwardRepo::Settings(conn, {"forward", "forward_alarm_cursor"});
          if (auto it = set.find("forward"); it != set.end())
            fwd = TargetOf(json::parse(it->second, nullptr, false));
          if (auto it = set.find("forward_alarm_cursor"); it != set.end())
            fcursor = std::stoll(it->second);
        }
        if (fwd.kind == "http" && fwd.alarms && fcursor < alarm_id) {
          std::vector<std::pair<int64_t, json>> batch;
          for (int64_t a : r.AlarmsAfter(fcursor, 200))
            batch.emplace_back(
                a, json{{"type", "alarm"}, {"alarm", ToJson(ctx_.deps().events->GetAlarm(a))}});
          // The alarms and the cursor past them in one transaction: each queued once.
          auto conn = ctx_.db().Acquire();
          db::Transaction tx(conn);
          for (auto& [a, body] : batch) {
            EnqueueForward(conn, "alarm", body);
            fcursor = a;
          }
          ForwardRepo::PutSetting(conn, "forward_alarm_cursor", std::to_string(fcursor));
          tx.Commit();
        } else if (fwd.kind != "http") {
          // Not forwarding alarms: the cursor follows, so enabling it later starts from then.
          auto conn = ctx_.db().Acquire();
          ForwardRepo::PutSetting(conn, "forward_alarm_cursor", std::to_string(alarm_id));
        }
        ctx_.Sleep(std::chrono::milliseconds(ctx_.options().tail_interval_ms));
      }
    } catch (const std::exception& e) {
      spdlog::warn("viid: event tail: {}", e.what());
      ctx_.Sleep(std::chrono::seconds(1));
    }
  }
}

void Forwarders::SetWebhook(const std::string& url) {
  if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://"))
    throw Error(ErrorCode::kInvalidArgument,
                "url 须以 http:// 或 https:// 开头 / url must start with http(s)://");
  auto conn = ctx_.db().Acquire();
  ForwardRepo::PutSetting(conn, "webhook_url", url);
}

WebhookStatus Forwarders::Webhook() {
  auto conn = ctx_.db().Acquire();
  return {ForwardRepo::Setting(conn, "webhook_url").value_or(""),
          StatusOf(ForwardRepo::State(conn, Outbox::kWebhook))};
}

void Forwarders::RunWebhookSender() {
  while (!ctx_.Stopping()) {
    if (!ctx_.HoldsJob(runtime::kJobWebhook)) continue;
    std::string url;
    std::vector<storage::OutboxItem> batch;
    int64_t next_wait_ms = 1000;
    try {
      auto conn = ctx_.db().Acquire();
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
        if (ctx_.Stopping()) break;
        const auto res = client.Post(path, {}, item.body, "application/json");
        const bool ok = res.ok();
        if (!Record([&](db::Conn& conn) {
              if (ok)
                ForwardRepo::Sent(conn, Outbox::kWebhook, item.seq);
              else
                ForwardRepo::Failed(conn, Outbox::kWebhook, item.seq, NowMs(), res.Describe());
            }))
          break;         // stopping
        if (!ok) break;  // the receiver is down: keep the order, retry later
        next_wait_ms = 0;
      }
    }
    if (next_wait_ms > 0) ctx_.Sleep(std::chrono::milliseconds(next_wait_ms));
  }
}

// ---- forwarding ------------------------------------------------------------------------

void Forwarders::SetForward(const ForwardTarget& t, const std::optional<std::string>& password) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (t.kind != "" && t.kind != "http" && t.kind != "gat1400") bad("kind: \"\" | http | gat1400");
  if (!t.kind.empty() && !t.url.starts_with("http://") && !t.url.starts_with("https://"))
    bad("url 须以 http:// 或 https:// 开头 / url must start with http(s)://");
  if (t.keepalive_s < ForwardTarget::kMinKeepaliveS ||
      t.keepalive_s > ForwardTarget::kMaxKeepaliveS)
    bad("keepalive_s 须在 1…3600 之间 / keepalive_s must be 1…3600");
  auto conn = ctx_.db().Acquire();
  db::Transaction tx(conn);
  ForwardRepo::PutSetting(conn, "forward", ToJson(t).dump());
  if (password)
    ForwardRepo::PutSetting(
        conn, "forward_password",
        crypto::ToBase64(crypto::Seal(ctx_.key(), crypto::AsBytes(*password),
                                      crypto::AsBytes("anju-viid-forward/v1"))));
  tx.Commit();
}

ForwardStatus Forwarders::Forward() {
  auto conn = ctx_.db().Acquire();
  ForwardStatus out;
  if (const auto v = ForwardRepo::Setting(conn, "forward"))
    out.target = TargetOf(json::parse(*v, nullptr, false));
  out.outbox = StatusOf(ForwardRepo::State(conn, Outbox::kForward));
  if (out.target.kind == "gat1400")
    if (const auto v = ForwardRepo::Setting(conn, "forward_session"))
      out.session = SessionOf(json::parse(*v, nullptr, false));
  return out;
}

void Forwarders::EnqueueForward(db::Conn& conn, const std::string& kind, const json& body) {
  ForwardRepo::EnqueueForward(conn, kind, body.dump(-1, ' ', false, json::error_handler_t::replace),
                              NowMs());
}

void Forwarders::ForwardCapture(db::Conn& conn, const CaptureDetail& d,
                                const std::vector<uint8_t>& crop) {
  ForwardTarget fwd;
  if (const auto v = ForwardRepo::Setting(conn, "forward"))
    fwd = TargetOf(json::parse(*v, nullptr, false));
  if (fwd.kind.empty() || !fwd.captures) return;
  if (fwd.kind == "http") {
    EnqueueForward(
        conn, "http",
        {{"type", "capture"}, {"capture", ToJson(d)}, {"face_image", crypto::ToBase64(crop)}});
    return;
  }
  // GA/T 1400: the face as the camera sent it, FaceID and DeviceID kept.
  const CaptureRecord& c = d.capture;
  viid::FaceObject f;
  f.face_id = c.face_id;
  f.device_id = c.device_id;
  if (c.box.is_array() && c.box.size() == 4) {
    f.left_top_x = c.box[0], f.left_top_y = c.box[1], f.right_btm_x = c.box[2],
    f.right_btm_y = c.box[3];
  }
  f.face_appear_time = viid::FormatTime(c.time_ms);
  viid::SubImageInfo img;
  img.type = viid::kImageTypeFace;
  img.shot_time = f.face_appear_time;
  img.data = crop;
  f.images.push_back(std::move(img));
  viid::FaceList list;
  list.faces.push_back(std::move(f));
  EnqueueForward(conn, "gat1400", viid::ToJson(list));
}

void Forwarders::RunForwardSender() {
  // gat1400: the cascade session with the upper platform, kept while the target (URL,
  // username, password) stays the same and this process holds the forward job.
  std::unique_ptr<Cascade> cascade;
  std::string cascade_key = "\x01";  // never a real key: the first round starts afresh
  ForwardSession session;
  int64_t next_register_ms = 0, register_backoff_ms = 0, next_keepalive_ms = 0;
  // What the senders' status shows (any process answers GET /api/v1/viid/forward); a
  // database away for the moment only delays it.
  auto save = [&] {
    try {
      auto conn = ctx_.db().Acquire();
      ForwardRepo::PutSetting(conn, "forward_session", SessionJson(session).dump());
    } catch (const std::exception& e) {
      spdlog::warn("viid: forward: session state not stored: {}", e.what());
    }
  };
  auto interval_ms = [](const ForwardTarget& t) {
    return int64_t(std::clamp(t.keepalive_s, ForwardTarget::kMinKeepaliveS,
                              ForwardTarget::kMaxKeepaliveS)) *
           1000;
  };
  auto do_register = [&](const ForwardTarget& t) {
    const int64_t now = NowMs();
    const std::string err = cascade->Register();
    if (err.empty()) {
      session.registered = true;
      ++session.registrations;
      session.last_register_ms = now;
      session.last_error.clear();
      next_keepalive_ms = now + interval_ms(t);
      register_backoff_ms = 0;
      spdlog::info("viid: forward: registered with the upper platform {} as {}", t.url, t.username);
    } else {
      session.registered = false;
      session.last_error =
          "向上级平台注册失败 / registering with the upper platform failed: " + err;
      register_backoff_ms = std::clamp<int64_t>(register_backoff_ms * 2, 2000, 60000);
      next_register_ms = now + register_backoff_ms;
      spdlog::warn("viid: forward: {}", session.last_error);
    }
    save();
    return session.registered;
  };
  while (!ctx_.Stopping()) {
    if (!ctx_.HoldsJob(runtime::kJobForward)) {
      // Another process sends (and registers); on taking the job over this one starts afresh.
      cascade.reset();
      cascade_key = "\x01";
      continue;
    }
    ForwardTarget fwd;
    std::string password;
    std::vector<storage::OutboxItem> batch;
    int64_t wait_ms = 1000;
    try {
      auto conn = ctx_.db().Acquire();
      const auto set = ForwardRepo::Settings(conn, {"forward", "forward_password"});
      if (auto it = set.find("forward"); it != set.end())
        fwd = TargetOf(json::parse(it->second, nullptr, false));
      if (auto it = set.find("forward_password"); it != set.end()) {
        const auto p = crypto::Open(ctx_.key(), crypto::FromBase64(it->second),
                                    crypto::AsBytes("anju-viid-forward/v1"));
        password.assign(p.begin(), p.end());
      }
      if (!fwd.kind.empty()) batch = ForwardRepo::Due(conn, Outbox::kForward, NowMs(), 20);
    } catch (const std::exception& e) {
      spdlog::warn("viid: forward: {}", e.what());
      ctx_.Sleep(std::chrono::milliseconds(wait_ms));
      continue;
    }
    const bool gat = fwd.kind == "gat1400";
    // A new target: leave the old platform, start a session with the new one.
    const std::string key = gat ? fwd.url + '\n' + fwd.username + '\n' + password : "";
    if (key != cascade_key) {
      if (cascade && session.registered) cascade->Unregister();
      cascade.reset();
      if (gat) cascade = std::make_unique<Cascade>(fwd.url, fwd.username, password);
      cascade_key = key;
      session = {};
      next_register_ms = register_backoff_ms = next_keepalive_ms = 0;
      save();
    }
    if (gat) {
      // Registered before anything is sent, kept alive even when nothing is to be sent, and
      // registered again when the platform no longer knows this one (it restarted, or the
      // registration lapsed).
      const int64_t now = NowMs();
      if (session.registered && now >= next_keepalive_ms) {
        const std::string err = cascade->Keepalive();
        if (err.empty()) {
          session.last_keepalive_ms = now;
          next_keepalive_ms = now + interval_ms(fwd);
        } else {
          session.registered = false;
          session.last_error =
              "上级平台保活失败，重新注册 / keepalive refused by the upper platform, registering "
              "again: " +
              err;
          next_register_ms = now;
          spdlog::warn("viid: forward: {}", session.last_error);
        }
        save();
      }
      if (!session.registered && now >= next_register_ms) do_register(fwd);
    }
    if (!batch.empty() && (!gat || session.registered)) {
      std::unique_ptr<http::OutboundClient> client;
      std::string path;
      if (!gat) {
        const auto [base, p] = SplitUrl(fwd.url);
        client = std::make_unique<http::OutboundClient>(base, 3, 10);
        path = p.empty() ? "/" : p;
      }
      for (const auto& item : batch) {
        // Sent once (R3.3.2.4): a process that lost the lease meanwhile leaves the rest to
        // the new holder.
        if (ctx_.Stopping() || !ctx_.leader().IsLeader(runtime::kJobForward)) break;
        // item.kind: queued for the kind configured then; sent to the current target
        http::OutboundReply res;
        if (gat) {
          res = cascade->Call(viid::kPathFaces, item.body);
          // 401 with the challenge answered: the platform no longer knows this one (it
          // restarted or dropped the registration): register again, then send it again.
          if (res.status == 401) {
            spdlog::info(
                "viid: forward: the upper platform answered 401 to Faces; registering "
                "again");
            session.registered = false;
            if (do_register(fwd)) res = cascade->Call(viid::kPathFaces, item.body);
          }
        } else {
          res = client->Post(path, {}, item.body, "application/json");
        }
        // What the platform answered is recorded before anything else is sent: an item it
        // took is marked even if the database is away for a while (PostgreSQL restarting),
        // so it is not sent again once the database is back (R3.3.2.4). Only a process
        // that dies between the answer and the mark sends it twice; the GA/T 1400
        // platform knows it by its FaceID (docs/viid.md).
        const bool ok = res.ok();
        if (!Record([&](db::Conn& conn) {
              if (ok)
                ForwardRepo::Sent(conn, Outbox::kForward, item.seq);
              else
                ForwardRepo::Failed(conn, Outbox::kForward, item.seq, NowMs(), res.Describe());
            }))
          break;  // stopping
        if (!ok) break;
        wait_ms = 0;
      }
    }
    if (wait_ms > 0) ctx_.Sleep(std::chrono::milliseconds(wait_ms));
  }
  // A clean stop: leave the platform (best effort, short timeouts).
  if (cascade && session.registered) {
    cascade->Unregister();
    session.registered = false;
    save();
  }
}

}  // namespace anju::server
