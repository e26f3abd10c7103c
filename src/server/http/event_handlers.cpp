// The HTTP shape of events (events/event_store.h; R3.2.1.1, R3.4.2.2): the device upload,
// queries, snapshots, quarantine, alarms and their handling state.
#include <nlohmann/json.hpp>

#include "protocol/api_error.h"
#include "server/access/account_support.h"
#include "server/events/event_store.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/http/thumbnail.h"

namespace anju::server {

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

void RegisterEventHandlers(Router& router, EventStore& events, EventHandlerDeps deps) {
  router
      .Add("POST", "/api/v1/device/events", "device protocol", Auth::kDevice,
           "Upload access records, alarms and door events (idempotent by event id; ≤ 500 per "
           "request)",
           [&events](Request& r) { return Reply::Json(ToJson(events.Ingest(r.actor, r.body))); })
      .Body(
          Obj({Req("events", Arr(Obj({}, "{id, kind, created_ms, payload, snapshot?}").Open()))}));

  router
      .Add("GET", "/api/v1/events", "events", Auth::kAdmin, "events.read",
           "Query events, newest first (filters, limit/offset or cursor, total)",
           [&events, deps](Request& r) {
             EventQuery q = ReadEventQuery(r);
             q.devices = deps.scoped_devices(r.principal);
             return Reply::Json(ToJson(events.Query(q)));
           })
      .Query(PagingParams([] {
        auto q = EventFilters();
        q.emplace_back("cursor", JType::kString, "next_cursor of the previous page");
        return q;
      }()));

  router
      .Add("GET", "/api/v1/events/quarantine", "events", Auth::kAdmin, "devices.read",
           "Uploaded events the server refused, kept verbatim",
           [&events, deps](Request& r) {
             const Paging p = ReadPaging(r);
             const auto devices = deps.scoped_devices(r.principal);
             json items = json::array();
             for (auto& q : events.Quarantine(size_t(p.limit), size_t(p.offset), devices))
               items.push_back(std::move(q));
             return Reply::Json(PageJson(
                 items, devices ? events.QuarantineCount(devices) : events.Count().quarantined, p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/events/{id}", "events", Auth::kAdmin, "events.read", "One event",
             [&events](Request& r) { return Reply::Json(ToJson(events.Get(r.Path("id")))); });

  router
      .Add("GET", "/api/v1/events/{id}/snapshot", "events", Auth::kAdmin, "photos.read",
           "The event's snapshot (decrypted JPEG; audited)",
           [&events, deps](Request& r) {
             ThumbnailSize(r);  // a bad size: 400 before anything is read or audited
             const auto jpeg = events.Snapshot(r.Path("id"));
             deps.audit(r.actor, "snapshot_view", "events/" + r.Path("id"), json::object());
             return Reply::Jpeg(SizedImage(r, {jpeg.begin(), jpeg.end()}));
           })
      .Query({{"size", JType::kInteger, "a thumbnail: the longer side at most this (16-1024 px)"}})
      .Returns("image/jpeg", "the snapshot");

  router
      .Add("GET", "/api/v1/alarms", "events", Auth::kAdmin, "events.read",
           "Alarms with their handling state",
           [&events, deps](Request& r) {
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
             q.devices = deps.scoped_devices(r.principal);
             return Reply::Json(ToJson(events.Alarms(q)));
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
           [&events, deps](Request& r) {
             const std::string& ids = r.Path("id");
             if (ids.empty() || ids.size() > 18 ||
                 ids.find_first_not_of("0123456789") != std::string::npos)
               NotFound("alarm " + ids);
             const Alarm a = events.SetAlarmState(
                 std::stoll(ids), ParseAlarmState(r.body["state"].get<std::string>()), r.actor,
                 r.body.value("note", ""));
             deps.audit(r.actor, "alarm_state", "alarms/" + ids, r.body);
             return Reply::Json(ToJson(a));
           })
      .Body(Obj({Req("state", Str().Enum({"acknowledged", "closed"})),
                 Opt("note", Str().MaxLength(2000))}));
}

}  // namespace anju::server
