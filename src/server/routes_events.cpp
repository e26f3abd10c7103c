// Events (R3.2.1.1, R3.4.2.2): the device upload, queries, CSV export, snapshots, alarms
// with their state; retention (R3.3.2.6) on a schedule and on demand; online backup
// (R3.3.2.5). The storage is server/event_store.h, retention.h and backup.h.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"
#include "server/thumbnail.h"

#include "server/backup.h"
#include "server/retention.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

EventQuery ReadEventQuery(const Request& r) {
  EventQuery q;
  q.from_ms = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53);
  q.to_ms = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53);
  q.door = r.Query("door").value_or("");
  q.device = r.Query("device").value_or("");
  q.person = r.Query("person").value_or("");
  q.kind = r.Query("kind").value_or("");
  q.decision = r.Query("decision").value_or("");
  q.limit = size_t(r.QueryInt("limit", 50, 1, 1000));
  q.offset = size_t(r.QueryInt("offset", 0, 0, int64_t(1) << 40));
  q.cursor = r.Query("cursor").value_or("");
  return q;
}

std::vector<QueryParam> EventFilters() {
  return {{"from_ms", JType::kInteger, "event time ≥ (Unix ms)"},
          {"to_ms", JType::kInteger, "event time < (Unix ms)"},
          {"door", JType::kString, "door"},
          {"device", JType::kString, "device id"},
          {"person", JType::kString, "identity code"},
          {"kind", JType::kString, "access | alarm | door_event"},
          {"decision", JType::kString, "open | deny | stranger | spoof | uncertain"}};
}

}  // namespace

void Server::Impl::StartBackground() {
  if (options.retention_interval_s <= 0) return;
  retention_thread = std::thread([this] {
    std::unique_lock lock(bg_mu);
    while (!stopping) {
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
      lock.lock();
      bg_cv.wait_for(lock, std::chrono::seconds(options.retention_interval_s),
                     [this] { return stopping.load(); });
    }
  });
}

void Server::Impl::AddEventRoutes() {
  router
      .Add("POST", "/api/v1/device/events", "device protocol", Auth::kDevice,
           "Upload access records, alarms and door events (idempotent by event id; ≤ 500 per "
           "request)",
           [this](Request& r) { return Reply::Json(ToJson(events->Ingest(r.actor, r.body))); })
      .Body(
          Obj({Req("events", Arr(Obj({}, "{id, kind, created_ms, payload, snapshot?}").Open()))}));

  router
      .Add("GET", "/api/v1/events", "events", Auth::kAdmin, "events.read",
           "Query events, newest first (filters, limit/offset or cursor, total)",
           [this](Request& r) {
             EventQuery q = ReadEventQuery(r);
             q.devices = ScopedDevices(r.principal);
             return Reply::Json(ToJson(events->Query(q)));
           })
      .Query(PagingParams([] {
        auto q = EventFilters();
        q.emplace_back("cursor", JType::kString, "next_cursor of the previous page");
        return q;
      }()));

  router
      .Add("GET", "/api/v1/events/quarantine", "events", Auth::kAdmin, "devices.read",
           "Uploaded events the server refused, kept verbatim",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             const auto devices = ScopedDevices(r.principal);
             json items = json::array();
             for (auto& q : events->Quarantine(size_t(p.limit), size_t(p.offset), devices))
               items.push_back(std::move(q));
             return Reply::Json(PageJson(
                 items, devices ? events->QuarantineCount(devices) : events->Count().quarantined,
                 p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/events/{id}", "events", Auth::kAdmin, "events.read", "One event",
             [this](Request& r) { return Reply::Json(ToJson(events->Get(r.Path("id")))); });

  router
      .Add("GET", "/api/v1/events/{id}/snapshot", "events", Auth::kAdmin, "photos.read",
           "The event's snapshot (decrypted JPEG; audited)",
           [this](Request& r) {
             ThumbnailSize(r);  // a bad size: 400 before anything is read or audited
             const auto jpeg = events->Snapshot(r.Path("id"));
             {
               auto conn = db->Acquire();
               Audit(conn, r.actor, "snapshot_view", "events/" + r.Path("id"));
             }
             return Reply::Jpeg(SizedImage(r, {jpeg.begin(), jpeg.end()}));
           })
      .Query({{"size", JType::kInteger, "a thumbnail: the longer side at most this (16-1024 px)"}})
      .Returns("image/jpeg", "the snapshot");

  router
      .Add("GET", "/api/v1/alarms", "events", Auth::kAdmin, "events.read",
           "Alarms with their handling state",
           [this](Request& r) {
             AlarmQuery q;
             q.from_ms = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53);
             q.to_ms = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53);
             if (auto s = r.Query("state"); s && !s->empty()) {
               try {
                 q.state = ParseAlarmState(*s);
               } catch (const Error& e) {
                 throw protocol::ApiError(400, "bad_request", e.what());
               }
             }
             q.type = r.Query("type").value_or("");
             q.door = r.Query("door").value_or("");
             q.device = r.Query("device").value_or("");
             q.limit = size_t(r.QueryInt("limit", 50, 1, 1000));
             q.offset = size_t(r.QueryInt("offset", 0, 0, int64_t(1) << 40));
             q.devices = ScopedDevices(r.principal);
             return Reply::Json(ToJson(events->Alarms(q)));
           })
      .Query(PagingParams({{"from_ms", JType::kInteger, "alarm time ≥"},
                           {"to_ms", JType::kInteger, "alarm time <"},
                           {"state", JType::kString, "new | acknowledged | closed"},
                           {"type", JType::kString, "alarm type"},
                           {"door", JType::kString, "door"},
                           {"device", JType::kString, "device id"}}));

  router
      .Add("POST", "/api/v1/alarms/{id}/state", "events", Auth::kAdmin, "alarms.handle",
           "Acknowledge or close an alarm (new → acknowledged → closed; 409 otherwise)",
           [this](Request& r) {
             const std::string& ids = r.Path("id");
             if (ids.empty() || ids.size() > 18 ||
                 ids.find_first_not_of("0123456789") != std::string::npos)
               NotFound("alarm " + ids);
             const Alarm a = events->SetAlarmState(
                 std::stoll(ids), ParseAlarmState(r.body["state"].get<std::string>()), r.actor,
                 r.body.value("note", ""));
             {
               auto conn = db->Acquire();
               Audit(conn, r.actor, "alarm_state", "alarms/" + ids, r.body);
             }
             return Reply::Json(ToJson(a));
           })
      .Body(Obj({Req("state", Str().Enum({"acknowledged", "closed"})),
                 Opt("note", Str().MaxLength(2000))}));

  router.Add("POST", "/api/v1/admin/retention/run", "maintenance", Auth::kAdmin, "maintenance",
             "Run the retention job now (snapshots 12 months, video references 3 months, ...)",
             [this](Request& r) {
               const RetentionPolicy policy = Retention();
               const std::string actor = r.actor;
               const auto report = RunRetention(*events, policy, std::chrono::system_clock::now(),
                                                [this, actor](std::string a, json d) {
                                                  auto conn = db->Acquire();
                                                  Audit(conn, actor, a, "events", d);
                                                });
               return Reply::Json(ToJson(report));
             });

  router
      .Add("POST", "/api/v1/admin/backup", "maintenance", Auth::kAdmin, "maintenance",
           "Online backup of the data directory into an SM4-encrypted archive on the server "
           "(key: backup.key in the data directory)",
           [this](Request& r) {
             const fs::path out =
                 InsideFolder(options.backup_dir, r.body["file"].get<std::string>(), "file");
             std::error_code ec;
             fs::create_directories(options.backup_dir, ec);
             const BackupInfo info = CreateBackup(options.data_dir, out, keys.backup_key);
             auto conn = db->Acquire();
             Audit(conn, r.actor, "backup", out.string(),
                   {{"bytes", info.bytes}, {"files", info.files()}});
             return Reply::Json(ToJson(info), 201);
           })
      .Body(Obj({Req("file", Str("absolute path of the new archive inside the backup folder "
                                 "(backup_dir)"))}));

  router
      .Add("POST", "/api/v1/admin/backup/verify", "maintenance", Auth::kAdmin, "maintenance",
           "Read and authenticate a backup archive without restoring it",
           [this](Request& r) {
             return Reply::Json(ToJson(VerifyBackup(
                 InsideFolder(options.backup_dir, r.body["file"].get<std::string>(), "file"),
                 keys.backup_key)));
           })
      .Body(Obj({Req("file", Str("archive path inside the backup folder (backup_dir)"))}));
}

}  // namespace anju::server
