#include "server/viid/reports.h"

#include <array>
#include <map>
#include <tuple>

#include "server/events/event_store.h"
#include "server/storage/capture_repo.h"
#include "server/storage/stranger_repo.h"
#include "server/storage/viid_events_reader.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;
using storage::CaptureRepo;
using storage::StrangerRepo;

namespace {

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

json SnapshotReports::Traffic(int64_t from_ms, int64_t to_ms, const std::string& bucket, int off) {
  const int64_t size = bucket == "day" ? 86400000 : 3600000;
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  // Terminal devices get the building of a camera linked to them (the archive does not
  // place terminals), cameras their own.
  std::map<std::string, std::optional<int64_t>> building;
  for (const auto& d : cameras_.List()) {
    building[d.id] = d.building_id;
    if (!d.linked_device.empty() && d.building_id) building[d.linked_device] = d.building_id;
  }
  std::map<std::tuple<int64_t, std::string, std::string>, std::array<int64_t, 3>> rows;
  if (ctx_.deps().events) {
    storage::ViidEventsReader r(ctx_.deps().events->database());
    for (const auto& t : r.Traffic(int64_t(off) * 60000, size, from_ms, to)) {
      auto& v = rows[{t.bucket_ms, t.device_id, t.door}];
      v[0] += t.entries;
      v[1] += t.exits;
    }
  }
  {
    auto conn = ctx_.db().Acquire();
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

json SnapshotReports::Strangers(int64_t from_ms, int64_t to_ms, int off,
                                const std::optional<std::vector<int64_t>>& buildings) {
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  auto conn = ctx_.db().Acquire();
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

json SnapshotReports::Alerts(int64_t from_ms, int64_t to_ms, int64_t top) {
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  json items = json::array();
  if (ctx_.deps().events) {
    storage::ViidEventsReader r(ctx_.deps().events->database());
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
