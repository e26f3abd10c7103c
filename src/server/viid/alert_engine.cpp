#include "server/viid/alert_engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>

#include "core/error.h"
#include "core/uuid.h"
#include "crypto/bytes.h"
#include "server/events/event_store.h"
#include "server/storage/alert_repo.h"
#include "server/storage/capture_repo.h"
#include "server/storage/stranger_repo.h"
#include "server/viid/alert_rules.h"
#include "server/viid/common.h"

namespace anju::server {

using cameras::LocalMinute;
using cameras::NowMs;
using cameras::ParseHhMm;
using nlohmann::json;
using storage::AlertRepo;
using storage::CaptureRepo;
using storage::StrangerRepo;

bool AlertEngine::RaiseAlarm(const std::string& key, int64_t dedup_ms, const std::string& device,
                             const std::string& type, const std::string& severity,
                             const std::string& description, const std::string& person,
                             int64_t time_ms, json evidence, const std::vector<uint8_t>& snapshot) {
  const int64_t now = NowMs();
  {
    auto conn = ctx_.db().Acquire();
    if (const auto last = AlertRepo::LastRaised(conn, key); last && now - *last < dedup_ms)
      return false;
    AlertRepo::SetRaised(conn, key, now);
  }
  if (!ctx_.deps().events) return false;
  json payload = {{"time_ms", time_ms},           {"alarm_type", type},
                  {"severity", severity},         {"description", description},
                  {"source", "anju-server/viid"}, {"evidence", std::move(evidence)}};
  if (!person.empty()) payload["person"] = person;
  json ev = {{"id", NewUuid()}, {"kind", "alarm"}, {"created_ms", now}, {"payload", payload}};
  if (!snapshot.empty() && snapshot.size() <= kMaxSnapshotBytes) {
    ev["snapshot"] = crypto::ToBase64(snapshot);
  }
  const auto r = ctx_.deps().events->Ingest(device.empty() ? "anju-server" : device,
                                            json{{"events", json::array({ev})}});
  if (!r.rejected.empty()) {
    spdlog::error("viid: alarm refused by the event store: {}", r.rejected[0].message);
    return false;
  }
  ++ctx_.stats().alarms;
  return true;
}

std::vector<AlertRule> AlertEngine::Rules() {
  auto conn = ctx_.db().Acquire();
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

AlertRule AlertEngine::AddRule(AlertRule rule) {
  rule = ValidateRule(std::move(rule));
  rule.created_ms = NowMs();
  auto conn = ctx_.db().Acquire();
  rule.id = AlertRepo::InsertRule(
      conn, {0, rule.type, rule.name, rule.enabled, rule.params.dump(), rule.created_ms});
  return rule;
}

AlertRule AlertEngine::UpdateRule(int64_t id, const json& patch) {
  AlertRule r;
  bool found = false;
  for (auto& x : Rules())
    if (x.id == id) r = x, found = true;
  if (!found) throw Error(ErrorCode::kNotFound, "不存在 / not found: rule " + std::to_string(id));
  if (patch.contains("name")) r.name = patch["name"].get<std::string>();
  if (patch.contains("enabled")) r.enabled = patch["enabled"].get<bool>();
  if (patch.contains("params")) r.params = patch["params"];
  r = ValidateRule(std::move(r));
  auto conn = ctx_.db().Acquire();
  AlertRepo::UpdateRule(conn, id, r.name, r.enabled, r.params.dump());
  return r;
}

bool AlertEngine::RemoveRule(int64_t id) {
  auto conn = ctx_.db().Acquire();
  return AlertRepo::DeleteRule(conn, id);
}

void AlertEngine::OnStranger(const std::string& capture_id, const std::string& device,
                             const std::optional<ViidDevice>& cam, int64_t time_ms, int64_t cluster,
                             const std::vector<uint8_t>& crop) {
  for (const auto& r : Rules()) {
    if (!r.enabled) continue;
    const json& p = r.params;
    const std::string rid = "rule" + std::to_string(r.id);
    if (r.type == "repeated_stranger") {
      const int64_t window = p["window_hours"].get<int64_t>() * 3600 * 1000;
      const bool by_unit = p["scope"] == "unit" && cam && cam->unit_id;
      std::vector<std::string> ids;
      {
        auto conn = ctx_.db().Acquire();
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
      if (!cam || cam->linked_device.empty() || !ctx_.deps().events) continue;
      const int64_t ms = p["match_seconds"].get<int64_t>() * 1000;
      EventQuery q;
      q.device = cam->linked_device;
      q.kind = "access";
      q.decision = "open";
      q.from_ms = time_ms - ms;
      q.to_ms = time_ms + ms + 1;
      q.limit = 10;
      std::set<std::string> persons;
      for (const auto& e : ctx_.deps().events->Query(q).items)
        if (!e.person.empty()) persons.insert(e.person);
      const int64_t window = p["window_hours"].get<int64_t>() * 3600 * 1000;
      for (const auto& person : persons) {
        std::vector<int64_t> distinct;
        {
          auto conn = ctx_.db().Acquire();
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

void AlertEngine::OnPerson(const std::string& capture_id, const std::string& device,
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

int64_t AlertEngine::LastSeen(const std::string& person, int64_t since_ms) {
  int64_t last = since_ms;
  EventQuery q;
  q.person = person;
  q.kind = "access";  // not the alarms about them
  q.limit = 1;
  const auto page = ctx_.deps().events->Query(q);
  if (!page.items.empty()) last = std::max(last, page.items[0].time_ms);
  auto conn = ctx_.db().Acquire();
  if (const auto seen = CaptureRepo::LastSeen(conn, person)) last = std::max(last, *seen);
  return last;
}

namespace {

// The latest date of birth of someone MIN_AGE years old on NOW_MS's day (UTC+8, the
// archive's local day), "YYYY-MM-DD". Born on 29 February: of age on 1 March in common years.
std::string BornBy(int64_t now_ms, int64_t min_age) {
  using namespace std::chrono;
  const year_month_day today{floor<days>(sys_time<milliseconds>(milliseconds(now_ms)) + hours(8))};
  year_month_day by = today - years(min_age);
  if (!by.ok()) by = by.year() / by.month() / last;  // 29 February → 28 February
  char s[16];
  std::snprintf(s, sizeof s, "%04d-%02u-%02u", int(by.year()), unsigned(by.month()),
                unsigned(by.day()));
  return s;
}

}  // namespace

int AlertEngine::EvaluatePeriodic(int64_t now) {
  int raised = 0;
  if (!ctx_.deps().archive || !ctx_.deps().events) return 0;
  for (const auto& r : Rules()) {
    if (!r.enabled) continue;
    if (r.type == "tenant_absent") {
      const int64_t days = r.params["days"].get<int64_t>();
      const int64_t window = days * 24 * 3600 * 1000;
      std::vector<storage::TenantRow> tenants;
      {
        auto conn = ctx_.deps().archive->Acquire();
        tenants = AlertRepo::ActiveTenants(conn);
      }
      for (const auto& t : tenants) {
        const int64_t last = LastSeen(t.code, t.since_ms);
        if (now - last < window) continue;
        if (RaiseAlarm("rule" + std::to_string(r.id) + "/" + t.code + "/" + std::to_string(last),
                       window, "anju-server", "tenant_absent", "minor",
                       "住户长时间未出现 / tenant not seen for " +
                           std::to_string((now - last) / (24 * 3600 * 1000)) + " days",
                       t.code, std::min(now, NowMs()),
                       {{"rule_id", r.id},
                        {"person", t.code},
                        {"last_seen_ms", last},
                        {"days", days},
                        {"as_of_ms", now}},
                       {}))
          ++raised;
      }
    } else if (r.type == "elderly_not_seen") {
      // R3.4.2.2, "an elderly tenant not seen": a resident (tenant or family) of min_age
      // years or more, by the date of birth in the archive, with no access record and no
      // recognised capture for `hours` since the later of moving in and their last sighting
      // (so a newcomer does not raise it at once). Severity major, the event store's level
      // above minor: someone living alone may need a visit soon.
      const int64_t min_age = r.params["min_age"].get<int64_t>();
      const int64_t hours = r.params["hours"].get<int64_t>();
      const int64_t window = hours * 3600 * 1000;
      std::vector<storage::TenantRow> elderly;
      {
        auto conn = ctx_.deps().archive->Acquire();
        elderly = AlertRepo::ElderlyResidents(conn, BornBy(now, min_age));
      }
      for (const auto& t : elderly) {
        const int64_t last = LastSeen(t.code, t.since_ms);
        if (now - last < window) continue;
        // Keyed by the last sighting, as tenant_absent: the same absence raises at most once
        // per `hours` (a re-evaluation stays quiet); a new sighting starts a new absence.
        if (RaiseAlarm("rule" + std::to_string(r.id) + "/" + t.code + "/" + std::to_string(last),
                       window, "anju-server", "elderly_not_seen", "major",
                       "老人已 " + std::to_string((now - last) / (3600 * 1000)) +
                           " 小时未出现 / elderly tenant not seen for " +
                           std::to_string((now - last) / (3600 * 1000)) + " h",
                       t.code, std::min(now, NowMs()),
                       {{"rule_id", r.id},
                        {"person", t.code},
                        {"last_seen_ms", last},
                        {"min_age", min_age},
                        {"hours", hours},
                        {"as_of_ms", now}},
                       {}))
          ++raised;
      }
    }
  }
  return raised;
}

}  // namespace anju::server
