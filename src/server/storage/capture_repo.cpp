#include "server/storage/capture_repo.h"

#include <functional>
#include <span>

#include "server/storage/partitions.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

constexpr const char* kCaptureCols =
    "c.id, c.device_id, c.face_id, c.time_ms, c.received_ms, c.box, c.images, c.state, "
    "c.outcome, c.person, c.score, c.second_score, c.stranger_id, c.quality, c.reasons, c.dark, "
    "c.recognised_ms, d.place, d.building_id, d.unit_id, "
    "(SELECT MIN(n) FROM capture_images x WHERE x.capture_id = c.id AND x.type = '11')";
constexpr const char* kFrom = " FROM captures c LEFT JOIN viid_devices d ON d.id = c.device_id";

bool IsPostgres(db::Conn& c) {
  return c.dialect() == db::Dialect::kPostgres;
}

std::optional<double> OptDouble(const Stmt& s, int col) {
  if (s.IsNull(col)) return std::nullopt;
  return s.Double(col);
}

CaptureRow ReadCapture(const Stmt& s) {
  CaptureRow r;
  r.id = s.Text(0);
  r.device_id = s.Text(1);
  r.face_id = s.Text(2);
  r.time_ms = s.Int(3);
  r.received_ms = s.Int(4);
  r.box = s.Text(5);
  r.images = s.Int(6);
  r.state = s.Text(7);
  r.outcome = s.Text(8);
  r.person = s.Text(9);
  r.score = OptDouble(s, 10);
  r.second_score = OptDouble(s, 11);
  r.stranger_id = s.OptInt(12);
  r.quality = s.Text(13);
  r.reasons = s.Text(14);
  r.dark = s.Int(15) != 0;
  r.recognised_ms = s.Int(16);
  r.place = s.OptText(17);
  r.building_id = s.OptInt(18);
  r.unit_id = s.OptInt(19);
  r.face_image = s.OptInt(20);
  return r;
}

// The WHERE clause of F and how to bind its values.
struct Where {
  std::string sql = " WHERE 1 = 1";
  std::vector<std::function<void(Stmt&, int&)>> binds;
  int Bind(Stmt& s) const {
    int i = 1;
    for (const auto& b : binds) b(s, i);
    return i;
  }
};

Where Filter(const CaptureFilter& q) {
  Where w;
  auto add = [&](const std::string& cond, auto value) {
    w.sql += " AND " + cond;
    w.binds.push_back([value](Stmt& s, int& i) { s.Bind(i++, value); });
  };
  if (q.from_ms) add("c.time_ms >= ?", q.from_ms);
  if (q.to_ms) add("c.time_ms < ?", q.to_ms);
  if (!q.device.empty()) add("c.device_id = ?", q.device);
  if (!q.person.empty()) add("c.person = ?", q.person);
  if (!q.outcome.empty()) add("c.outcome = ?", q.outcome);
  if (!q.state.empty()) add("c.state = ?", q.state);
  if (q.stranger) add("c.stranger_id = ?", q.stranger);
  if (q.buildings) {  // numbers from the account's scope, written inline
    std::string in;
    for (const int64_t b : *q.buildings) in += (in.empty() ? "" : ",") + std::to_string(b);
    w.sql += in.empty() ? " AND 1 = 0" : " AND d.building_id IN (" + in + ")";
  }
  return w;
}

CaptureFileRow ReadFileRow(const Stmt& s, bool clip) {
  CaptureFileRow r;
  r.n = s.Int(0);
  if (clip)
    r.offset_ms = s.Int(1);
  else
    r.type = s.Text(1);
  r.bytes = s.Int(2);
  r.width = s.Int(3);
  r.height = s.Int(4);
  return r;
}

std::optional<std::string> FileOf(db::Conn& c, const char* sql, const std::string& id, int64_t n) {
  Stmt s(c, sql);
  s.Bind(1, id).Bind(2, n);
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

}  // namespace

// ---- intake ----

bool CaptureRepo::HasFace(db::Conn& c, const std::string& device, const std::string& face_id) {
  Stmt s(c, IsPostgres(c) ? "SELECT 1 FROM capture_faces WHERE device_id = ? AND face_id = ?"
                          : "SELECT id FROM captures WHERE device_id = ? AND face_id = ?");
  s.Bind(1, device).Bind(2, face_id);
  return s.Step();
}

bool CaptureRepo::Insert(db::Conn& c, const NewCapture& n) {
  const bool postgres = IsPostgres(c);
  if (postgres) {
    // The (camera, face) claim first: a second copy, here or on another server, waits on
    // the key until the first commits, then does nothing (captures_schema.cpp, step 5).
    Stmt claim(c,
               "INSERT INTO capture_faces(device_id, face_id, capture_id, time_ms) "
               "VALUES(?,?,?,?) ON CONFLICT(device_id, face_id) DO NOTHING");
    claim.Bind(1, n.device_id).Bind(2, n.face_id).Bind(3, n.id).Bind(4, n.time_ms).Run();
    if (c.Changes() == 0) return false;
  }
  // On SQLite the captures table itself holds the (camera, face) key.
  Stmt s(c, std::string("INSERT INTO captures(id, device_id, face_id, time_ms, received_ms, box, "
                        "images, state) VALUES(?,?,?,?,?,?,?,'queued')") +
                (postgres ? "" : " ON CONFLICT(device_id, face_id) DO NOTHING"));
  s.Bind(1, n.id).Bind(2, n.device_id).Bind(3, n.face_id).Bind(4, n.time_ms);
  s.Bind(5, n.received_ms).Bind(6, n.box).Bind(7, n.images);
  s.Run();
  return c.Changes() > 0;
}

void CaptureRepo::InsertImage(db::Conn& c, const std::string& capture_id, const CaptureFileRow& r) {
  // PostgreSQL: the row goes to its capture's month (partitions.h); 0 (the default
  // partition) for an image without its capture.
  Stmt s(c, IsPostgres(c)
                ? "INSERT INTO capture_images(capture_id, n, type, file, bytes, width, "
                  "height, time_ms) VALUES(?1,?2,?3,?4,?5,?6,?7, COALESCE((SELECT time_ms FROM "
                  "captures WHERE id = ?1), 0))"
                : "INSERT INTO capture_images(capture_id, n, type, file, bytes, width, "
                  "height) VALUES(?1,?2,?3,?4,?5,?6,?7)");
  s.Bind(1, capture_id).Bind(2, r.n).Bind(3, r.type).Bind(4, r.file).Bind(5, r.bytes);
  s.Bind(6, r.width).Bind(7, r.height);
  s.Run();
}

void CaptureRepo::InsertClipFrame(db::Conn& c, const std::string& capture_id,
                                  const CaptureFileRow& r) {
  Stmt s(c, IsPostgres(c) ? "INSERT INTO capture_clips(capture_id, n, offset_ms, file, bytes, "
                            "width, height, time_ms) VALUES(?1,?2,?3,?4,?5,?6,?7, COALESCE((SELECT "
                            "time_ms FROM captures WHERE id = ?1), 0))"
                          : "INSERT INTO capture_clips(capture_id, n, offset_ms, file, bytes, "
                            "width, height) VALUES(?1,?2,?3,?4,?5,?6,?7)");
  s.Bind(1, capture_id).Bind(2, r.n).Bind(3, r.offset_ms).Bind(4, r.file).Bind(5, r.bytes);
  s.Bind(6, r.width).Bind(7, r.height);
  s.Run();
}

// ---- recognition ----

std::vector<std::string> CaptureRepo::Queued(db::Conn& c) {
  Stmt s(c, "SELECT id FROM captures WHERE state = 'queued' ORDER BY received_ms");
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::vector<std::string> CaptureRepo::QueuedBefore(db::Conn& c, int64_t before_ms, int64_t max) {
  Stmt s(c,
         "SELECT id FROM captures WHERE state = 'queued' AND received_ms < ? "
         "ORDER BY received_ms LIMIT ?");
  s.Bind(1, before_ms);
  s.Bind(2, max);
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::optional<CaptureHead> CaptureRepo::Head(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT device_id, time_ms, state FROM captures WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return CaptureHead{s.Text(0), s.Int(1), s.Text(2)};
}

std::optional<CaptureFileRow> CaptureRepo::BestImage(db::Conn& c, const std::string& id) {
  Stmt s(c,
         "SELECT n, file FROM capture_images WHERE capture_id = ? ORDER BY (type = '11') DESC, "
         "n LIMIT 1");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  CaptureFileRow r;
  r.n = s.Int(0);
  r.file = s.Text(1);
  return r;
}

bool CaptureRepo::SaveResult(db::Conn& c, const std::string& id, const CaptureResult& r) {
  Stmt s(c,
         "UPDATE captures SET state = ?, outcome = ?, person = ?, score = ?, second_score = "
         "?, stranger_id = ?, quality = ?, reasons = ?, dark = ?, feature_sealed = ?, "
         "recognised_ms = ? WHERE id = ? AND state = 'queued'");
  s.Bind(1, r.state).Bind(2, r.outcome).Bind(3, r.person).Bind(4, r.score);
  s.Bind(5, r.second_score).Bind(6, r.stranger_id).Bind(7, r.quality).Bind(8, r.reasons);
  s.Bind(9, int64_t(r.dark));
  if (r.feature_sealed.empty())
    s.BindNull(10);
  else
    s.Bind(10, std::span<const uint8_t>(r.feature_sealed));
  s.Bind(11, r.recognised_ms).Bind(12, id);
  s.Run();
  return c.Changes() > 0;
}

CaptureTally CaptureRepo::Tally(db::Conn& c) {
  db::Stmt s(c, "SELECT state, outcome, received_ms, recognised_ms FROM captures");
  CaptureTally t;
  while (s.Step()) {
    ++t.total;
    const std::string state = s.Text(0);
    if (state == "queued") {
      ++t.queued;
      continue;
    }
    ++t.outcomes[state == "done" ? s.Text(1) : state];
    if (s.Int(3) > 0) t.latency_ms.push_back(s.Int(3) - s.Int(2));
  }
  return t;
}

bool CaptureRepo::MarkFailed(db::Conn& c, const std::string& id, const std::string& reasons,
                             int64_t now_ms) {
  Stmt s(c,
         "UPDATE captures SET state = 'failed', reasons = ?, recognised_ms = ? WHERE id = ? AND "
         "state = 'queued'");
  s.Bind(1, reasons).Bind(2, now_ms).Bind(3, id);
  s.Run();
  return c.Changes() > 0;
}

std::optional<int64_t> CaptureRepo::LastSeen(db::Conn& c, const std::string& person) {
  Stmt s(c, "SELECT MAX(time_ms) FROM captures WHERE person = ?");
  s.Bind(1, person);
  if (!s.Step()) return std::nullopt;
  return s.OptInt(0);
}

// ---- queries ----

int64_t CaptureRepo::Count(db::Conn& c, const CaptureFilter& f) {
  const Where w = Filter(f);
  Stmt s(c, std::string("SELECT COUNT(*)") + kFrom + w.sql);
  w.Bind(s);
  s.Step();
  return s.Int(0);
}

std::vector<CaptureRow> CaptureRepo::List(db::Conn& c, const CaptureFilter& f, int64_t limit,
                                          int64_t offset) {
  const Where w = Filter(f);
  Stmt s(c, std::string("SELECT ") + kCaptureCols + kFrom + w.sql +
                " ORDER BY c.time_ms DESC, c.received_ms DESC LIMIT ? OFFSET ?");
  const int i = w.Bind(s);
  s.Bind(i, limit);
  s.Bind(i + 1, offset);
  std::vector<CaptureRow> out;
  while (s.Step()) out.push_back(ReadCapture(s));
  return out;
}

std::optional<CaptureRow> CaptureRepo::Get(db::Conn& c, const std::string& id) {
  Stmt s(c, std::string("SELECT ") + kCaptureCols + kFrom + " WHERE c.id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadCapture(s);
}

bool CaptureRepo::Exists(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT 1 FROM captures WHERE id = ?");
  s.Bind(1, id);
  return s.Step();
}

std::vector<CaptureRow> CaptureRepo::Latest(db::Conn& c) {
  Stmt s(c, std::string("SELECT ") + kCaptureCols + kFrom +
                " WHERE c.id IN "
                "(SELECT (SELECT id FROM captures x WHERE x.device_id = v.device_id ORDER BY "
                "x.received_ms DESC LIMIT 1) FROM (SELECT DISTINCT device_id FROM captures) v) "
                "ORDER BY c.device_id");
  std::vector<CaptureRow> out;
  while (s.Step()) out.push_back(ReadCapture(s));
  return out;
}

std::vector<CaptureFileRow> CaptureRepo::Images(db::Conn& c, const std::string& id) {
  Stmt s(c,
         "SELECT n, type, bytes, width, height FROM capture_images WHERE capture_id = ? ORDER BY "
         "n");
  s.Bind(1, id);
  std::vector<CaptureFileRow> out;
  while (s.Step()) out.push_back(ReadFileRow(s, false));
  return out;
}

std::optional<std::string> CaptureRepo::ImageFile(db::Conn& c, const std::string& id, int64_t n) {
  return FileOf(c, "SELECT file FROM capture_images WHERE capture_id = ? AND n = ?", id, n);
}

int64_t CaptureRepo::ClipFrameCount(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT COUNT(*) FROM capture_clips WHERE capture_id = ?");
  s.Bind(1, id);
  return s.Step() ? s.Int(0) : 0;
}

std::vector<CaptureFileRow> CaptureRepo::ClipFrames(db::Conn& c, const std::string& id) {
  Stmt s(c,
         "SELECT n, offset_ms, bytes, width, height FROM capture_clips WHERE capture_id = ? "
         "ORDER BY n");
  s.Bind(1, id);
  std::vector<CaptureFileRow> out;
  while (s.Step()) out.push_back(ReadFileRow(s, true));
  return out;
}

std::optional<std::string> CaptureRepo::ClipFile(db::Conn& c, const std::string& id, int64_t n) {
  return FileOf(c, "SELECT file FROM capture_clips WHERE capture_id = ? AND n = ?", id, n);
}

std::vector<CaptureRepo::BucketCount> CaptureRepo::CountByBucket(db::Conn& c, int64_t offset_ms,
                                                                 int64_t size_ms, int64_t from_ms,
                                                                 int64_t to_ms) {
  Stmt s(c,
         "SELECT ((time_ms + ?1) / ?2) * ?2 - ?1 AS b, device_id, COUNT(*) FROM captures "
         "WHERE time_ms >= ?3 AND time_ms < ?4 GROUP BY b, device_id");
  s.Bind(1, offset_ms).Bind(2, size_ms).Bind(3, from_ms).Bind(4, to_ms);
  std::vector<BucketCount> out;
  while (s.Step()) out.push_back({s.Int(0), s.Text(1), s.Int(2)});
  return out;
}

// ---- retention ----

std::vector<std::string> CaptureRepo::OlderThan(db::Conn& c, int64_t before_ms, int64_t max) {
  Stmt s(c, "SELECT id FROM captures WHERE time_ms < ? ORDER BY time_ms LIMIT ?");
  s.Bind(1, before_ms).Bind(2, max);
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::vector<std::string> CaptureRepo::Delete(db::Conn& c, const std::string& id) {
  std::vector<std::string> files;
  Stmt f(c, "SELECT file FROM capture_images WHERE capture_id = ?");
  f.Bind(1, id);
  while (f.Step()) files.push_back(f.Text(0));
  Stmt d1(c, "DELETE FROM capture_images WHERE capture_id = ?");
  d1.Bind(1, id);
  d1.Run();
  Stmt cf(c, "SELECT file FROM capture_clips WHERE capture_id = ?");
  cf.Bind(1, id);
  while (cf.Step()) files.push_back(cf.Text(0));
  Stmt dc(c, "DELETE FROM capture_clips WHERE capture_id = ?");
  dc.Bind(1, id);
  dc.Run();
  if (IsPostgres(c)) {
    Stmt df(c,
            "DELETE FROM capture_faces WHERE (device_id, face_id) IN (SELECT device_id, face_id "
            "FROM captures WHERE id = ?)");
    df.Bind(1, id).Run();
  }
  Stmt d2(c, "DELETE FROM captures WHERE id = ?");
  d2.Bind(1, id);
  d2.Run();
  return files;
}

const std::vector<std::string>& CaptureRepo::PartitionedTables() {
  static const std::vector<std::string> t = {"captures", "capture_images", "capture_clips"};
  return t;
}

void CaptureRepo::EnsurePartitions(db::Conn& c, int64_t now_ms) {
  EnsureMonthPartitions(c, PartitionedTables(), now_ms);
}

std::optional<CaptureRepo::DroppedMonth> CaptureRepo::DropMonthBefore(db::Conn& c,
                                                                      int64_t before_ms) {
  if (!IsPostgres(c)) return std::nullopt;
  const auto months = MonthsWhollyBefore(c, "captures", before_ms);
  if (months.empty()) return std::nullopt;
  DroppedMonth d;
  d.month = months.front();
  // What the rows name, listed before their month goes: the caller removes the blobs and
  // forgets the captures' stranger sightings as the row-by-row path does.
  Stmt ids(c, "SELECT id FROM captures WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms");
  ids.Bind(1, d.month.from_ms).Bind(2, d.month.to_ms);
  while (ids.Step()) d.ids.push_back(ids.Text(0));
  Stmt files(c,
             "SELECT file FROM capture_images WHERE time_ms >= ?1 AND time_ms < ?2 UNION ALL "
             "SELECT file FROM capture_clips WHERE time_ms >= ?1 AND time_ms < ?2");
  files.Bind(1, d.month.from_ms).Bind(2, d.month.to_ms);
  while (files.Step()) d.files.push_back(files.Text(0));
  for (const auto& table : PartitionedTables()) DropMonth(c, table, d.month);
  Stmt faces(c, "DELETE FROM capture_faces WHERE time_ms >= ? AND time_ms < ?");
  faces.Bind(1, d.month.from_ms).Bind(2, d.month.to_ms).Run();
  return d;
}

}  // namespace anju::server::storage
