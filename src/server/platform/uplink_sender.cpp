#include "server/platform/uplink_sender.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "server/http/outbound_client.h"
#include "server/platform/link_seal.h"

namespace anju::server {

using nlohmann::json;
using storage::PlatformRepo;
using storage::UplinkRecord;

namespace {

crypto::DataKey ReadSecret(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in)
    throw Error(ErrorCode::kNotFound,
                "读不到上级链路密钥文件 / cannot read the upstream secret file " + file.string());
  std::string hex;
  in >> hex;
  if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument,
                "上级链路密钥须为 64 位十六进制 / the upstream secret must be 64 hex digits: " +
                    file.string());
  return crypto::DataKey::FromHex(hex);
}

json RecordJson(const UplinkRecord& r, const std::string& self, const std::string& stream) {
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  return {{"origin", r.origin.empty() ? self : r.origin},
          {"stream", r.stream.empty() ? stream : r.stream},
          {"seq", r.seq},
          {"community", r.community},
          {"district", r.district},
          {"kind", r.kind},
          {"time_ms", r.time_ms},
          {"device_id", r.device_id},
          {"person", r.person},
          {"alarm_type", r.alarm_type},
          {"body", std::move(body)}};
}

}  // namespace

json ToJson(const UplinkStatus& s) {
  return {{"configured", s.configured},
          {"upstream", s.upstream},
          {"backlog", s.backlog},
          {"oldest_ms", s.oldest_ms},
          {"sent", s.sent},
          {"pushes", s.pushes},
          {"last_ok_ms", s.last_ok_ms},
          {"last_attempt_ms", s.last_attempt_ms},
          {"commands_applied", s.commands_applied},
          {"down_cursor", s.down_cursor},
          {"last_error", s.last_error}};
}

UplinkSender::UplinkSender(PlatformOptions options, Deps deps)
    : options_(std::move(options)), deps_(std::move(deps)) {
  if (enabled()) key_ = ReadSecret(options_.upstream_secret_file);
  status_.configured = enabled();
  status_.upstream = options_.upstream;
}

UplinkSender::~UplinkSender() {
  Stop();
}

void UplinkSender::OnEvent(db::Conn& conn, const storage::EventRow& row) {
  if (!enabled()) return;
  UplinkRecord r;
  r.community = options_.level == "community" ? options_.id : "";
  r.kind = row.kind;
  r.time_ms = row.time_ms;
  r.device_id = row.device_id;
  r.person = row.person;
  r.alarm_type = row.alarm_type;
  // Minimal by default: what happened, where and to whom; no photo, no payload.
  r.body = json{{"id", row.id}, {"decision", row.decision}, {"door", row.door}}.dump();
  PlatformRepo::Enqueue(conn, r, NowMs());
}

void UplinkSender::OnCapture(db::Conn& conn, const CaptureDetail& capture,
                             const std::vector<uint8_t>& crop) {
  if (!enabled()) return;
  const CaptureRecord& c = capture.capture;
  UplinkRecord r;
  r.community = options_.level == "community" ? options_.id : "";
  r.kind = "capture";
  r.time_ms = c.time_ms;
  r.device_id = c.device_id;
  r.person = c.person;
  json body = {{"id", c.id}, {"state", c.state}, {"outcome", c.outcome}};
  if (c.score) body["score"] = *c.score;
  if (c.stranger_id) body["stranger_id"] = *c.stranger_id;
  if (options_.send_photos && !crop.empty()) body["crop_jpeg"] = crypto::ToBase64(crop);
  r.alarm_type = c.outcome == "stranger" ? "stranger" : "";
  r.body = body.dump();
  PlatformRepo::Enqueue(conn, r, NowMs());
}

void UplinkSender::Start() {
  if (!enabled() || thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void UplinkSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

UplinkStatus UplinkSender::Status() {
  UplinkStatus s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s = status_;
  }
  try {
    auto c = deps_.events->AcquireReader();
    s.backlog = PlatformRepo::Backlog(c);
    s.oldest_ms = PlatformRepo::OldestMs(c);
    if (auto cur = PlatformRepo::State(c, "uplink_down_cursor")) s.down_cursor = std::stoll(*cur);
    if (deps_.captures) {
      auto cc = deps_.captures->AcquireReader();
      s.backlog += PlatformRepo::Backlog(cc);
      const int64_t oldest = PlatformRepo::OldestMs(cc);
      if (oldest && (!s.oldest_ms || oldest < s.oldest_ms)) s.oldest_ms = oldest;
    }
  } catch (const std::exception& e) {
    s.last_error = e.what();
  }
  return s;
}

bool UplinkSender::PushNow() {
  if (!enabled()) return false;
  bool more = true;
  while (more)
    if (!PushOnce(&more)) return false;
  return true;
}

void UplinkSender::QueueHealth(int64_t now_ms) {
  json body = deps_.health ? deps_.health() : json::object();
  body["level"] = options_.level;
  body["name"] = options_.name;
  UplinkRecord r;
  r.community = options_.level == "community" ? options_.id : "";
  r.kind = "health";
  r.time_ms = now_ms;
  auto c = deps_.events->Acquire();
  body["backlog"] = PlatformRepo::Backlog(c);
  r.body = body.dump();
  PlatformRepo::Enqueue(c, r, now_ms);
  last_health_ms_ = now_ms;
}

bool UplinkSender::PushOnce(bool* more) {
  std::lock_guard<std::mutex> push(push_mu_);
  *more = false;
  const int64_t now = NowMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.last_attempt_ms = now;
  }
  struct Source {
    db::Db* db;
    const char* stream;
    std::vector<UplinkRecord> records;
  };
  std::vector<Source> sources = {{deps_.events, "events", {}}};
  if (deps_.captures) sources.push_back({deps_.captures, "captures", {}});
  json records = json::array();
  int64_t backlog = 0, cursor = 0;
  for (auto& s : sources) {
    auto c = s.db->Acquire();
    {
      db::Transaction tx(c);
      PlatformRepo::Number(c, options_.batch);
      tx.Commit();
    }
    s.records = PlatformRepo::Numbered(c, options_.batch);
    for (const auto& r : s.records) records.push_back(RecordJson(r, options_.id, s.stream));
    backlog += PlatformRepo::Backlog(c);
    if (s.db == deps_.events)
      if (auto cur = PlatformRepo::State(c, "uplink_down_cursor")) cursor = std::stoll(*cur);
    if (int64_t(s.records.size()) >= options_.batch) *more = true;
  }
  const json request = {{"node", options_.id}, {"level", options_.level}, {"name", options_.name},
                        {"backlog", backlog},  {"down_ack", cursor},      {"records", records}};
  http::OutboundClient client(options_.upstream, 5, 60);
  if (!options_.upstream_ca_file.empty())
    client.TrustCertificate(options_.upstream_ca_file.string());
  const http::OutboundReply reply = client.Post(
      "/api/v1/platform/uplink", {},
      platform::SealLink(*key_, options_.id, platform::LinkDirection::kUp, request).dump(),
      "application/json");
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.last_error = why;
    *more = false;
    return false;
  };
  if (!reply.ok()) {
    std::string why = reply.Describe();
    const json j = json::parse(reply.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object())
      why += ": " + j["error"].value("message", "");
    return fail(why);
  }
  json answer;
  try {
    answer = platform::OpenLink(*key_, options_.id, platform::LinkDirection::kDown,
                                json::parse(reply.body));
  } catch (const std::exception& e) {
    return fail(std::string("上级应答无效 / bad answer from the level above: ") + e.what());
  }
  // Stored above: delete what it took.
  for (auto& s : sources) {
    if (s.records.empty()) continue;
    auto c = s.db->Acquire();
    PlatformRepo::Acked(c, s.records.back().link_seq);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.sent += int64_t(records.size());
    ++status_.pushes;
    status_.last_ok_ms = NowMs();
    status_.last_error.clear();
  }
  if (answer.contains("down") && answer["down"].is_array() && !answer["down"].empty()) {
    ApplyCommands(answer["down"]);
    *more = true;  // confirmations to send, maybe more commands
  }
  return true;
}

void UplinkSender::ApplyCommands(const json& down) {
  int64_t cursor = 0;
  {
    auto c = deps_.events->Acquire();
    if (auto cur = PlatformRepo::State(c, "uplink_down_cursor")) cursor = std::stoll(*cur);
  }
  for (const auto& d : down) {
    storage::PlatformCommand cmd;
    cmd.id = d.value("id", int64_t(0));
    if (cmd.id <= cursor) continue;
    cmd.issuer = d.value("issuer", "");
    cmd.issuer_id = d.value("issuer_id", int64_t(0));
    cmd.target = d.value("target", "");
    cmd.kind = d.value("kind", "");
    cmd.body = d.contains("body") ? d["body"].dump() : "{}";
    cmd.created_by = d.value("created_by", "");
    cmd.created_ms = d.value("created_ms", int64_t(0));
    std::pair<std::string, std::string> outcome;
    try {
      if (options_.level == "community" && cmd.kind == "notice") {
        const json b = json::parse(cmd.body);
        PlatformRepo::Notice n;
        n.id = cmd.issuer + "/" + std::to_string(cmd.issuer_id);
        n.title = b.value("title", "");
        n.text = b.value("text", "");
        n.from_ms = b.value("from_ms", int64_t(0));
        n.until_ms = b.value("until_ms", int64_t(0));
        n.created_ms = NowMs();
        auto c = deps_.events->Acquire();
        PlatformRepo::PutNotice(c, n);
        outcome = {"applied", "已发布到终端 / published to the terminals"};
      } else if (deps_.apply) {
        outcome = deps_.apply(cmd);
      } else {
        outcome = {"failed", "本级不支持 / not supported at this level"};
      }
    } catch (const std::exception& e) {
      outcome = {"failed", e.what()};
    }
    auto c = deps_.events->Acquire();
    db::Transaction tx(c);
    PlatformRepo::PutState(c, "uplink_down_cursor", std::to_string(cmd.id));
    if (!outcome.first.empty()) {
      UplinkRecord r;
      r.community = options_.level == "community" ? options_.id : cmd.target;
      r.kind = "confirm";
      r.time_ms = NowMs();
      r.body =
          json{{"issuer", cmd.issuer}, {"issuer_id", cmd.issuer_id}, {"target", cmd.target},
               {"kind", cmd.kind},     {"state", outcome.first},     {"result", outcome.second}}
              .dump();
      PlatformRepo::Enqueue(c, r, r.time_ms);
    }
    tx.Commit();
    cursor = cmd.id;
    std::lock_guard<std::mutex> lock(mu_);
    ++status_.commands_applied;
  }
}

void UplinkSender::Run() {
  int64_t backoff_ms = 1000;
  while (true) {
    int64_t wait_ms = options_.heartbeat_ms;
    if (deps_.leader && !deps_.leader->IsLeader(kJobUplink)) {
      wait_ms = 1000;
    } else {
      try {
        const int64_t now = NowMs();
        if (now - last_health_ms_ >= int64_t(options_.health_interval_s) * 1000) QueueHealth(now);
        bool more = false;
        if (PushOnce(&more)) {
          backoff_ms = 1000;
          if (more) wait_ms = 0;
        } else {
          wait_ms = backoff_ms;
          backoff_ms = std::min<int64_t>(backoff_ms * 2, 30000);
        }
      } catch (const std::exception& e) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          status_.last_error = e.what();
        }
        wait_ms = backoff_ms;
        backoff_ms = std::min<int64_t>(backoff_ms * 2, 30000);
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [this] { return stop_; })) return;
  }
}

void ValidatePlatformOptions(const PlatformOptions& o) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (o.level != "community" && o.level != "district" && o.level != "city")
    bad("platform.level 须为 community、district 或 city / must be community, district or city");
  if ((o.upper() || !o.upstream.empty()) && o.id.empty())
    bad("platform.id 必填 / platform.id is required for a district, a city or an upstream");
  if (o.id.size() > 64 || o.id.find_first_of("/ \t\r\n") != std::string::npos)
    bad("platform.id 无效 / invalid platform.id");
  if (o.level == "city" && !o.upstream.empty())
    bad("市级平台没有上级 / a city platform has no upstream");
  if (!o.upstream.empty()) {
    if (!o.upstream.starts_with("http://") && !o.upstream.starts_with("https://"))
      bad("platform.upstream 须以 http(s):// 开头 / must start with http(s)://");
    if (o.upstream_secret_file.empty())
      bad("platform.upstream_secret_file 必填 / is required with an upstream");
  }
  if (o.heartbeat_ms < 100 || o.heartbeat_ms > 600000)
    bad("platform.heartbeat_ms 须在 100–600000 / must be 100–600000");
  if (o.health_interval_s < 1 || o.health_interval_s > 86400)
    bad("platform.health_interval_s 须在 1–86400 / must be 1–86400");
  if (o.batch < 1 || o.batch > 5000) bad("platform.batch 须在 1–5000 / must be 1–5000");
}

}  // namespace anju::server
