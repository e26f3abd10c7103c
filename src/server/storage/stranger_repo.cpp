#include "server/storage/stranger_repo.h"

#include <span>

#include "core/error.h"
#include "server/storage/site_scope.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

std::string Cameras(const Buildings& buildings, const std::string& device_id) {
  return SiteScope::CameraCondition(buildings, device_id);
}

std::string ListFilter(const Buildings& buildings) {
  return " FROM captures c WHERE c.stranger_id IS NOT NULL AND c.time_ms >= ?1 AND c.time_ms < "
         "?2 AND (?3 = '' OR c.device_id = ?3) AND " +
         Cameras(buildings, "c.device_id");
}

}  // namespace

// ---- clusters ----

std::vector<StrangerCentroidRow> StrangerRepo::Centroids(db::Conn& c, int64_t after_id) {
  Stmt s(c, "SELECT id, centroid_sealed, members FROM strangers WHERE id > ? ORDER BY id");
  s.Bind(1, after_id);
  std::vector<StrangerCentroidRow> out;
  while (s.Step()) out.push_back({s.Int(0), s.Blob(1), s.Int(2)});
  return out;
}

int64_t StrangerRepo::NextId(db::Conn& c) {
  Stmt s(c, c.dialect() == db::Dialect::kPostgres
                ? "SELECT nextval('stranger_ids')"
                : "UPDATE stranger_ids SET next = next + 1 RETURNING next - 1");
  if (!s.Step()) throw Error(ErrorCode::kCorrupt, "captures: the stranger id counter is missing");
  return s.Int(0);
}

void StrangerRepo::Upsert(db::Conn& c, const StrangerSighting& x) {
  Stmt s(c,
         "INSERT INTO strangers(id, centroid_sealed, members, first_ms, last_ms, first_capture, "
         "last_capture, last_device) VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET "
         "centroid_sealed = excluded.centroid_sealed, members = excluded.members, "
         "first_ms = CASE WHEN excluded.first_ms < strangers.first_ms THEN excluded.first_ms "
         "ELSE strangers.first_ms END, last_ms = CASE WHEN excluded.last_ms > strangers.last_ms "
         "THEN excluded.last_ms ELSE strangers.last_ms END, "
         "last_capture = excluded.last_capture, last_device = excluded.last_device");
  s.Bind(1, x.id).Bind(2, std::span<const uint8_t>(x.centroid_sealed)).Bind(3, x.members);
  s.Bind(4, x.time_ms).Bind(5, x.time_ms).Bind(6, x.capture_id).Bind(7, x.capture_id);
  s.Bind(8, x.device_id);
  s.Run();
}

std::optional<StrangerCentroidRow> StrangerRepo::Centroid(db::Conn& c, int64_t id) {
  Stmt s(c, "SELECT id, centroid_sealed, members FROM strangers WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return StrangerCentroidRow{s.Int(0), s.Blob(1), s.Int(2)};
}

bool StrangerRepo::Grow(db::Conn& c, const StrangerSighting& x, int64_t members_before) {
  Stmt s(c,
         "UPDATE strangers SET centroid_sealed = ?, members = ?, last_ms = CASE WHEN ? > last_ms "
         "THEN ? ELSE last_ms END, last_capture = ?, last_device = ? WHERE id = ? AND members = ?");
  s.Bind(1, std::span<const uint8_t>(x.centroid_sealed)).Bind(2, x.members);
  s.Bind(3, x.time_ms).Bind(4, x.time_ms).Bind(5, x.capture_id).Bind(6, x.device_id);
  s.Bind(7, x.id).Bind(8, members_before);
  s.Run();
  return c.Changes() == 1;
}

std::vector<int64_t> StrangerRepo::DeleteIdle(db::Conn& c, int64_t before_ms) {
  std::vector<int64_t> gone;
  Stmt q(c, "SELECT id FROM strangers WHERE last_ms < ?");
  q.Bind(1, before_ms);
  while (q.Step()) gone.push_back(q.Int(0));
  Stmt d(c, "DELETE FROM strangers WHERE last_ms < ?");
  d.Bind(1, before_ms);
  d.Run();
  return gone;
}

// ---- sightings ----

std::vector<std::string> StrangerRepo::SightingsAtDevice(db::Conn& c, int64_t cluster,
                                                         int64_t from_ms, int64_t to_ms,
                                                         const std::string& device) {
  Stmt s(c,
         "SELECT id FROM captures WHERE stranger_id = ? AND time_ms > ? AND "
         "time_ms <= ? AND device_id = ? ORDER BY time_ms DESC");
  s.Bind(1, cluster).Bind(2, from_ms).Bind(3, to_ms).Bind(4, device);
  std::vector<std::string> ids;
  while (s.Step()) ids.push_back(s.Text(0));
  return ids;
}

std::vector<std::string> StrangerRepo::SightingsInUnit(db::Conn& c, int64_t cluster,
                                                       int64_t from_ms, int64_t to_ms,
                                                       int64_t unit_id) {
  Stmt s(c,
         "SELECT c.id FROM captures c JOIN viid_devices d ON d.id = c.device_id "
         "WHERE c.stranger_id = ? AND c.time_ms > ? AND c.time_ms <= ? AND "
         "d.unit_id = ? ORDER BY c.time_ms DESC");
  s.Bind(1, cluster).Bind(2, from_ms).Bind(3, to_ms).Bind(4, unit_id);
  std::vector<std::string> ids;
  while (s.Step()) ids.push_back(s.Text(0));
  return ids;
}

void StrangerRepo::LinkTenant(db::Conn& c, const std::string& person, int64_t cluster,
                              int64_t time_ms, const std::string& capture_id) {
  Stmt s(c,
         "INSERT INTO tenant_strangers(person, stranger_id, time_ms, capture_id) "
         "VALUES(?,?,?,?) ON CONFLICT(person, capture_id) DO NOTHING");
  s.Bind(1, person).Bind(2, cluster).Bind(3, time_ms).Bind(4, capture_id);
  s.Run();
}

std::vector<int64_t> StrangerRepo::StrangersLetInBy(db::Conn& c, const std::string& person,
                                                    int64_t since_ms) {
  Stmt s(c,
         "SELECT DISTINCT stranger_id FROM tenant_strangers WHERE person = ? AND "
         "time_ms > ? ORDER BY stranger_id");
  s.Bind(1, person).Bind(2, since_ms);
  std::vector<int64_t> out;
  while (s.Step()) out.push_back(s.Int(0));
  return out;
}

void StrangerRepo::ForgetCapture(db::Conn& c, const std::string& capture_id) {
  Stmt s(c, "DELETE FROM tenant_strangers WHERE capture_id = ?");
  s.Bind(1, capture_id);
  s.Run();
}

// ---- queries ----

std::vector<StrangerSummaryRow> StrangerRepo::List(db::Conn& c, int64_t from_ms, int64_t to_ms,
                                                   const std::string& device, int64_t min_count,
                                                   int64_t limit, int64_t offset,
                                                   const Buildings& buildings) {
  Stmt s(c,
         "SELECT c.stranger_id, COUNT(*) AS n, MIN(c.time_ms), MAX(c.time_ms), "
         "COUNT(DISTINCT c.device_id)" +
             ListFilter(buildings) +
             " GROUP BY c.stranger_id HAVING n >= ?4 ORDER BY n DESC, "
             "MAX(c.time_ms) DESC LIMIT ?5 OFFSET ?6");
  s.Bind(1, from_ms).Bind(2, to_ms).Bind(3, device).Bind(4, min_count).Bind(5, limit);
  s.Bind(6, offset);
  std::vector<StrangerSummaryRow> out;
  while (s.Step()) out.push_back({s.Int(0), s.Int(1), s.Int(2), s.Int(3), s.Int(4)});
  return out;
}

int64_t StrangerRepo::Count(db::Conn& c, int64_t from_ms, int64_t to_ms, const std::string& device,
                            const Buildings& buildings) {
  Stmt s(c, "SELECT COUNT(DISTINCT c.stranger_id)" + ListFilter(buildings));
  s.Bind(1, from_ms).Bind(2, to_ms).Bind(3, device);
  s.Step();
  return s.Int(0);
}

std::vector<StrangerPlaceRow> StrangerRepo::Places(db::Conn& c, int64_t id, int64_t from_ms,
                                                   int64_t to_ms, const Buildings& buildings) {
  Stmt p(c,
         "SELECT c.device_id, COALESCE(d.place, ''), d.building_id, d.unit_id, COUNT(*), "
         "MAX(c.time_ms), (SELECT id FROM captures y WHERE y.stranger_id = ?1 AND " +
             Cameras(buildings, "y.device_id") +
             " ORDER BY y.time_ms DESC LIMIT 1) FROM captures c LEFT JOIN viid_devices d ON "
             "d.id = c.device_id WHERE c.stranger_id = ?1 AND c.time_ms >= ?2 AND c.time_ms < "
             "?3 AND " +
             Cameras(buildings, "c.device_id") + " GROUP BY c.device_id ORDER BY COUNT(*) DESC");
  p.Bind(1, id).Bind(2, from_ms).Bind(3, to_ms);
  std::vector<StrangerPlaceRow> out;
  while (p.Step())
    out.push_back({p.Text(0), p.Text(1), p.OptInt(2), p.OptInt(3), p.Int(4), p.Int(5), p.Text(6)});
  return out;
}

std::optional<StrangerRow> StrangerRepo::Get(db::Conn& c, int64_t id, const Buildings& buildings) {
  // A scoped account gets the figures of its own cameras' sightings only.
  Stmt s(c, buildings
                ? "SELECT * FROM (SELECT COUNT(*) AS n, MIN(c.time_ms), MAX(c.time_ms), (SELECT "
                  "y.id FROM captures "
                  "y WHERE y.stranger_id = ?1 AND " +
                      Cameras(buildings, "y.device_id") +
                      " ORDER BY y.time_ms LIMIT 1), (SELECT y.id FROM captures y WHERE "
                      "y.stranger_id = ?1 AND " +
                      Cameras(buildings, "y.device_id") +
                      " ORDER BY y.time_ms DESC LIMIT 1), (SELECT y.device_id FROM captures y "
                      "WHERE y.stranger_id = ?1 AND " +
                      Cameras(buildings, "y.device_id") +
                      " ORDER BY y.time_ms DESC LIMIT 1) FROM captures c WHERE c.stranger_id = "
                      "?1 AND " +
                      Cameras(buildings, "c.device_id") + ") WHERE n > 0"
                : std::string("SELECT members, first_ms, last_ms, first_capture, last_capture, "
                              "last_device FROM strangers WHERE id = ?1"));
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return StrangerRow{s.Int(0), s.Int(1), s.Int(2), s.Text(3), s.Text(4), s.Text(5)};
}

// ---- reports ----

std::vector<StrangerDayRow> StrangerRepo::Days(db::Conn& c, int64_t offset_ms, int64_t from_ms,
                                               int64_t to_ms, const Buildings& buildings) {
  Stmt s(c,
         "SELECT ((time_ms + ?1) / 86400000) * 86400000 - ?1 AS b, COUNT(*), "
         "COUNT(DISTINCT stranger_id), COUNT(DISTINCT device_id) FROM captures WHERE stranger_id "
         "IS NOT NULL AND time_ms >= ?2 AND time_ms < ?3 AND " +
             Cameras(buildings, "device_id") + " GROUP BY b ORDER BY b");
  s.Bind(1, offset_ms).Bind(2, from_ms).Bind(3, to_ms);
  std::vector<StrangerDayRow> out;
  while (s.Step()) out.push_back({s.Int(0), s.Int(1), s.Int(2), s.Int(3)});
  return out;
}

int64_t StrangerRepo::CountNew(db::Conn& c, int64_t from_ms, int64_t to_ms,
                               const Buildings& buildings) {
  Stmt n(c, "SELECT COUNT(*) FROM strangers WHERE first_ms >= ? AND first_ms < ?" +
                (buildings ? " AND first_capture IN (SELECT id FROM captures WHERE " +
                                 Cameras(buildings, "device_id") + ")"
                           : std::string()));
  n.Bind(1, from_ms).Bind(2, to_ms);
  n.Step();
  return n.Int(0);
}

}  // namespace anju::server::storage
