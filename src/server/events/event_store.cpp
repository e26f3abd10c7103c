#include "server/events/event_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <unordered_set>

#include "core/error.h"
#include "core/file_io.h"
#include "crypto/bytes.h"
#include "db/db.h"
#include "server/events/event_validation.h"
#include "server/runtime/embedded.h"
#include "server/storage/alarm_repo.h"
#include "server/storage/event_db.h"
#include "server/storage/event_repo.h"

namespace anju::server {
namespace fs = std::filesystem;
using nlohmann::json;
using storage::AlarmRepo;
using storage::EventRepo;

namespace {

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// UTC civil date of a Unix millisecond time.
std::chrono::year_month_day UtcDate(int64_t ms) {
  using namespace std::chrono;
  return year_month_day(floor<days>(sys_time<milliseconds>(milliseconds(ms))));
}

// "2025-05-01 16:30:00" in UTC + OFFSET minutes.
std::string FormatLocal(int64_t ms, int offset_minutes) {
  using namespace std::chrono;
  const sys_time<milliseconds> t(milliseconds(ms + int64_t(offset_minutes) * 60000));
  const auto day = floor<days>(t);
  const year_month_day ymd(day);
  const hh_mm_ss hms(floor<seconds>(t - day));
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02lld:%02lld:%02lld", int(ymd.year()),
                unsigned(ymd.month()), unsigned(ymd.day()), (long long)hms.hours().count(),
                (long long)hms.minutes().count(), (long long)hms.seconds().count());
  return buf;
}

// RFC 4180 field; a leading = + - @ is neutralised so Excel never runs a formula a
// terminal (or a tenant's name) smuggled in.
std::string CsvField(std::string v) {
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@'))
    if (!(v[0] == '-' && v.size() > 1 && v[1] >= '0' && v[1] <= '9')) v.insert(0, "'");
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string JsonScalar(const json& pl, const char* key) {
  auto it = pl.find(key);
  if (it == pl.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4f", it->get<double>());
    return buf;
  }
  return it->dump();
}

void CheckLimit(size_t limit) {
  if (limit < 1 || limit > 1000)
    throw Error(ErrorCode::kInvalidArgument, "每页条数应为 1-1000 / limit must be 1..1000");
}

EventRecord FromRow(const storage::EventRow& r) {
  EventRecord e;
  e.id = r.id;
  e.device_id = r.device_id;
  e.kind = r.kind;
  e.created_ms = r.created_ms;
  e.time_ms = r.time_ms;
  e.received_ms = r.received_ms;
  e.door = r.door;
  e.person = r.person;
  e.decision = r.decision;
  e.alarm_type = r.alarm_type;
  e.payload = json::parse(r.payload, nullptr, false);
  e.has_snapshot = r.has_snapshot;
  e.snapshot_bytes = r.snapshot_bytes;
  e.snapshot_expired_ms = r.snapshot_expired_ms;
  return e;
}

Alarm FromRow(const storage::AlarmRow& r) {
  Alarm a;
  a.id = r.id;
  a.event_id = r.event_id;
  a.device_id = r.device_id;
  a.type = r.type;
  a.severity = r.severity;
  a.door = r.door;
  a.person = r.person;
  a.time_ms = r.time_ms;
  a.description = r.description;
  a.state = ParseAlarmState(r.state);
  a.acknowledged_by = r.acknowledged_by;
  a.acknowledged_ms = r.acknowledged_ms;
  a.acknowledge_note = r.acknowledge_note;
  a.closed_by = r.closed_by;
  a.closed_ms = r.closed_ms;
  a.close_note = r.close_note;
  return a;
}

storage::EventFilter FilterOf(const EventQuery& q) {
  storage::EventFilter f;
  f.from_ms = q.from_ms;
  f.to_ms = q.to_ms;
  f.door = q.door;
  f.device = q.device;
  f.person = q.person;
  f.kind = q.kind;
  f.decision = q.decision;
  f.devices = q.devices;
  return f;
}

// "TIME:SEQ" of the last row of the previous page.
storage::EventPosition ParseCursor(const std::string& cursor) {
  storage::EventPosition at;
  const auto colon = cursor.find(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no colon");
    size_t used = 0;
    at.time_ms = std::stoll(cursor.substr(0, colon), &used);
    if (used != colon) throw std::invalid_argument("junk");
    at.seq = std::stoll(cursor.substr(colon + 1), &used);
    if (used != cursor.size() - colon - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    throw Error(ErrorCode::kInvalidArgument, "翻页游标无效 / invalid cursor: " + cursor);
  }
  return at;
}

}  // namespace

// ---- JSON views -------------------------------------------------------------------------

json ToJson(const IngestResult& r) {
  json rejected = json::array();
  for (auto& x : r.rejected)
    rejected.push_back({{"id", x.id}, {"code", x.code}, {"message", x.message}});
  return {{"stored", r.stored}, {"duplicates", r.duplicates}, {"rejected", rejected}};
}

json ToJson(const EventRecord& e) {
  json j = {{"id", e.id},
            {"device_id", e.device_id},
            {"kind", e.kind},
            {"created_ms", e.created_ms},
            {"time_ms", e.time_ms},
            {"received_ms", e.received_ms},
            {"door", e.door.empty() ? json() : json(e.door)},
            {"person", e.person.empty() ? json() : json(e.person)},
            {"decision", e.decision.empty() ? json() : json(e.decision)},
            {"alarm_type", e.alarm_type.empty() ? json() : json(e.alarm_type)},
            {"payload", e.payload},
            {"has_snapshot", e.has_snapshot},
            {"snapshot_bytes", e.has_snapshot ? e.snapshot_bytes : 0}};
  if (e.snapshot_expired_ms) j["snapshot_expired_ms"] = e.snapshot_expired_ms;
  return j;
}

json ToJson(const EventPage& p) {
  json items = json::array();
  for (auto& e : p.items) items.push_back(ToJson(e));
  return {{"total", p.total},
          {"items", items},
          {"next_cursor", p.next_cursor.empty() ? json() : json(p.next_cursor)}};
}

const char* AlarmStateName(AlarmState s) {
  switch (s) {
    case AlarmState::kNew:
      return "new";
    case AlarmState::kAcknowledged:
      return "acknowledged";
    case AlarmState::kClosed:
      return "closed";
  }
  return "new";
}

AlarmState ParseAlarmState(std::string_view name) {
  if (name == "new") return AlarmState::kNew;
  if (name == "acknowledged") return AlarmState::kAcknowledged;
  if (name == "closed") return AlarmState::kClosed;
  throw Error(ErrorCode::kInvalidArgument,
              "告警状态错误 / alarm state must be new, acknowledged or closed, not '" +
                  std::string(name) + "'");
}

json ToJson(const Alarm& a) {
  auto opt = [](const std::string& s) { return s.empty() ? json() : json(s); };
  auto opt_ms = [](int64_t ms) { return ms ? json(ms) : json(); };
  return {{"id", a.id},
          {"event_id", a.event_id},
          {"device_id", a.device_id},
          {"type", a.type},
          {"severity", a.severity},
          {"door", opt(a.door)},
          {"person", opt(a.person)},
          {"time_ms", a.time_ms},
          {"description", opt(a.description)},
          {"state", AlarmStateName(a.state)},
          {"acknowledged_by", opt(a.acknowledged_by)},
          {"acknowledged_ms", opt_ms(a.acknowledged_ms)},
          {"acknowledge_note", opt(a.acknowledge_note)},
          {"closed_by", opt(a.closed_by)},
          {"closed_ms", opt_ms(a.closed_ms)},
          {"close_note", opt(a.close_note)}};
}

json ToJson(const AlarmPage& p) {
  json items = json::array();
  for (auto& a : p.items) items.push_back(ToJson(a));
  return {{"total", p.total}, {"items", items}};
}

// ---- opening ----------------------------------------------------------------------------

EventStore::EventStore(const fs::path& data_dir, const crypto::DataKey& key,
                       runtime::BlobStore& blobs, EventStoreOptions options)
    : data_dir_(data_dir), key_(key), options_(options), blobs_(&blobs) {
  Open();
}

EventStore::EventStore(const fs::path& data_dir, const crypto::DataKey& key,
                       EventStoreOptions options)
    : data_dir_(data_dir),
      key_(key),
      options_(options),
      own_blobs_(std::make_unique<runtime::FileBlobStore>(data_dir)),
      blobs_(own_blobs_.get()) {
  Open();
}

EventStore::EventStore(std::unique_ptr<db::Db> db, const fs::path& data_dir,
                       const crypto::DataKey& key, runtime::BlobStore& blobs,
                       EventStoreOptions options)
    : data_dir_(data_dir), key_(key), options_(options), blobs_(&blobs), db_(std::move(db)) {}

void EventStore::Open() {
  std::error_code ec;
  fs::create_directories(data_dir_, ec);
  if (ec || !fs::is_directory(data_dir_))
    throw Error(ErrorCode::kIo, "cannot create " + data_dir_.string() + ": " + ec.message());
  db_ = storage::OpenEventsDb(database_file());
  SyncDir(data_dir_);
}

EventStore::~EventStore() = default;

std::string EventStore::SnapshotKey(const std::string& event_id, int64_t time_ms) {
  const auto ymd = UtcDate(time_ms);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d/%02u/%02u", int(ymd.year()), unsigned(ymd.month()),
                unsigned(ymd.day()));
  return "snapshots/" + std::string(buf) + "/" + event_id + ".jpg.sealed";
}

fs::path EventStore::SnapshotPath(const std::string& event_id, int64_t time_ms) const {
  return data_dir_ / SnapshotKey(event_id, time_ms);
}

// ---- ingestion --------------------------------------------------------------------------

IngestResult EventStore::Ingest(const std::string& device_id, const json& body) {
  if (device_id.empty() || device_id.size() > 64)
    throw Error(ErrorCode::kInvalidArgument, "device id must be 1-64 characters");
  if (!body.is_object())
    throw Error(ErrorCode::kInvalidArgument,
                "请求体必须是 {\"events\": [...]} / body must be {\"events\": [...]}");
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "events")
      throw Error(ErrorCode::kInvalidArgument, "未知字段 / unknown field: " + it.key(),
                  "unknown_field");
  auto events = body.find("events");
  if (events == body.end() || !events->is_array())
    throw Error(ErrorCode::kInvalidArgument, "events 必须是数组 / events must be an array");
  if (events->size() > kMaxEventsPerBatch)
    throw Error(ErrorCode::kTooLarge, "单次最多上传 " + std::to_string(kMaxEventsPerBatch) +
                                          " 条 / at most " + std::to_string(kMaxEventsPerBatch) +
                                          " events per request");

  const int64_t now = WallClockMs();
  std::vector<UploadedEvent> parsed;
  parsed.reserve(events->size());
  for (const json& ev : *events) parsed.push_back(ParseUploadedEvent(ev, options_, now));

  IngestResult result;
  std::lock_guard lock(write_mutex_);
  std::vector<std::string> written;  // snapshot keys of this batch (removed on rollback)
  try {
    db::Conn c = db_->Acquire();
    db::Transaction txn(c);
    // Prepared once for the whole batch.
    EventRepo::Writer writer(c);
    AlarmRepo::Writer alarms(c);
    // Which events are new: not stored before and not earlier in this batch.
    std::unordered_set<std::string> seen;
    std::vector<bool> fresh(parsed.size(), false);
    for (size_t i = 0; i < parsed.size(); ++i) {
      UploadedEvent& p = parsed[i];
      if (!p.ok) continue;
      bool dup = !seen.insert(p.id).second;
      if (!dup) dup = writer.Exists(p.id);
      fresh[i] = !dup;
    }

    // Snapshots first, all of the batch in one PutMany (one durable batch, not one fsync
    // per file), durable before the rows that name them commit.
    std::vector<crypto::Bytes> sealed(parsed.size());
    std::vector<std::pair<std::string, std::span<const uint8_t>>> puts;
    for (size_t i = 0; i < parsed.size(); ++i) {
      UploadedEvent& p = parsed[i];
      if (!fresh[i] || p.jpeg.empty()) continue;
      sealed[i] = crypto::Seal(key_, p.jpeg, crypto::AsBytes(p.id));
      puts.emplace_back(SnapshotKey(p.id, p.time_ms), sealed[i]);
    }
    if (!puts.empty()) {
      for (const auto& put : puts) written.push_back(put.first);
      blobs_->PutMany(puts);
    }

    for (size_t i = 0; i < parsed.size(); ++i) {
      UploadedEvent& p = parsed[i];
      if (!p.ok) {
        writer.Quarantine({0, device_id, now, p.sent_id, p.code, p.message, p.raw});
        result.rejected.push_back({p.sent_id, p.code, p.message});
        continue;
      }
      if (!fresh[i]) {
        result.duplicates.push_back(p.id);
        continue;
      }
      storage::EventRow row;
      row.id = p.id;
      row.kind = p.kind;
      row.created_ms = p.created_ms;
      row.time_ms = p.time_ms;
      row.door = p.door;
      row.person = p.person;
      row.decision = p.decision;
      row.alarm_type = p.alarm_type;
      row.payload = std::move(p.payload_text);
      row.snapshot_bytes = int64_t(p.jpeg.size());
      writer.Insert(row, device_id, now);
      if (on_stored_) {
        row.device_id = device_id;
        row.received_ms = now;
        on_stored_(c, row);
      }
      if (!p.jpeg.empty())
        writer.InsertSnapshot(
            {p.id, p.time_ms, SnapshotKey(p.id, p.time_ms), int64_t(sealed[i].size())});
      if (p.creates_alarm) {
        storage::AlarmRow alarm;
        alarm.event_id = p.id;
        alarm.device_id = device_id;
        alarm.type = p.alarm_type;
        alarm.severity = p.severity;
        alarm.door = p.door;
        alarm.person = p.person;
        alarm.time_ms = p.time_ms;
        alarm.description = p.description;
        alarms.Insert(alarm);
        ++result.alarms_created;
      }
      result.stored.push_back(p.id);
    }
    txn.Commit();
  } catch (...) {
    // No committed row names these blobs: they would only be orphans.
    for (const auto& k : written) {
      try {
        blobs_->Remove(k);
      } catch (const std::exception&) {
        // Left as an orphan; retention sweeps it.
      }
    }
    throw;
  }
  return result;
}

// ---- queries ----------------------------------------------------------------------------

EventPage EventStore::Query(const EventQuery& q) const {
  CheckLimit(q.limit);
  const storage::EventFilter filter = FilterOf(q);
  std::optional<storage::EventPosition> after;
  if (!q.cursor.empty()) after = ParseCursor(q.cursor);
  db::Conn c = db_->AcquireReader();
  // One read transaction: the total and the page see the same snapshot of the table.
  db::ReadSnapshot snapshot(c);
  EventPage page;
  page.total = EventRepo::Count(c, filter);
  // One extra row tells whether a next page exists.
  const auto rows = EventRepo::Page(c, filter, after, int64_t(q.limit) + 1, int64_t(q.offset));
  for (const auto& r : rows) {
    if (page.items.size() == q.limit) {
      const auto& last = rows[q.limit - 1];
      page.next_cursor = std::to_string(last.time_ms) + ":" + std::to_string(last.seq);
      break;
    }
    page.items.push_back(FromRow(r));
  }
  return page;
}

EventRecord EventStore::Get(const std::string& event_id) const {
  db::Conn c = db_->AcquireReader();
  auto row = EventRepo::Get(c, NormaliseEventId(event_id).value_or(event_id));
  if (!row) throw Error(ErrorCode::kNotFound, "事件不存在 / no event " + event_id);
  return FromRow(*row);
}

std::vector<uint8_t> EventStore::Snapshot(const std::string& event_id) const {
  const std::string id = NormaliseEventId(event_id).value_or(event_id);
  std::string rel;
  {
    db::Conn c = db_->AcquireReader();
    auto file = EventRepo::SnapshotFile(c, id);
    if (!file) throw Error(ErrorCode::kNotFound, "该事件没有抓拍图 / no snapshot for " + id);
    rel = std::move(*file);
  }
  const std::vector<uint8_t> sealed = blobs_->Get(rel);
  try {
    return crypto::Open(key_, sealed, crypto::AsBytes(id));
  } catch (const Error& e) {
    throw Error(ErrorCode::kCrypto, "抓拍图无法解密（密钥错误或文件被改动） / snapshot " + rel +
                                        " does not open: " + e.what());
  }
}

size_t EventStore::ExportCsv(const EventQuery& q, std::ostream& out, int utc_offset_minutes) const {
  const storage::EventFilter filter = FilterOf(q);
  char tz[16];
  std::snprintf(tz, sizeof tz, "UTC%+03d:%02d", utc_offset_minutes / 60,
                std::abs(utc_offset_minutes % 60));
  out << "\xEF\xBB\xBF";  // BOM: Excel reads the file as UTF-8
  out << "事件ID / event id,时间 / time (" << tz
      << "),time_ms,类型 / kind,结果 / decision,告警类型 / alarm type,门 / door,人员 / "
         "person,设备 / device,比对分数 / score,活体分数 / liveness,说明 / description,"
         "抓拍 / snapshot\r\n";
  // A connection of its own: a long export holds up neither uploads nor other queries
  // (SQLite: its own read-only file handle; PostgreSQL: one of the pool's).
  std::unique_ptr<db::Db> export_db;
  if (db_->dialect() == db::Dialect::kSqlite)
    export_db = storage::OpenEventsDbReadOnly(database_file());
  db::Conn c = export_db ? export_db->Acquire() : db_->AcquireReader();
  db::ReadSnapshot snapshot(c);
  size_t rows = 0;
  EventRepo::ForEach(c, filter, [&](const storage::EventRow& row) {
    const EventRecord e = FromRow(row);
    const json& pl = e.payload;
    std::string description = JsonScalar(pl, "description");
    if (description.empty()) description = JsonScalar(pl, "description_zh");
    if (description.empty()) description = JsonScalar(pl, "reason");
    const char* snap =
        e.has_snapshot ? "有 / yes" : (e.snapshot_expired_ms ? "已过期删除 / expired" : "");
    out << CsvField(e.id) << ',' << CsvField(FormatLocal(e.time_ms, utc_offset_minutes)) << ','
        << e.time_ms << ',' << CsvField(e.kind) << ',' << CsvField(e.decision) << ','
        << CsvField(e.alarm_type) << ',' << CsvField(e.door) << ',' << CsvField(e.person) << ','
        << CsvField(e.device_id) << ',' << CsvField(JsonScalar(pl, "score")) << ','
        << CsvField(JsonScalar(pl, "liveness")) << ',' << CsvField(description) << ','
        << CsvField(snap) << "\r\n";
    ++rows;
  });
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "CSV export: the output stream failed");
  return rows;
}

int64_t EventStore::QuarantineCount(const std::optional<std::vector<std::string>>& devices) const {
  db::Conn c = db_->AcquireReader();
  return EventRepo::QuarantineCount(c, devices);
}

// ---- alarms -----------------------------------------------------------------------------

AlarmPage EventStore::Alarms(const AlarmQuery& q) const {
  CheckLimit(q.limit);
  storage::AlarmFilter f;
  f.from_ms = q.from_ms;
  f.to_ms = q.to_ms;
  if (q.state) f.state = AlarmStateName(*q.state);
  f.type = q.type;
  f.door = q.door;
  f.device = q.device;
  f.devices = q.devices;
  db::Conn c = db_->AcquireReader();
  db::ReadSnapshot snapshot(c);
  AlarmPage page;
  page.total = AlarmRepo::Count(c, f);
  for (const auto& r : AlarmRepo::List(c, f, int64_t(q.limit), int64_t(q.offset)))
    page.items.push_back(FromRow(r));
  return page;
}

Alarm EventStore::GetAlarm(int64_t alarm_id) const {
  db::Conn c = db_->AcquireReader();
  auto row = AlarmRepo::Get(c, alarm_id);
  if (!row) throw Error(ErrorCode::kNotFound, "告警不存在 / no alarm " + std::to_string(alarm_id));
  return FromRow(*row);
}

Alarm EventStore::SetAlarmState(int64_t alarm_id, AlarmState to, const std::string& actor,
                                const std::string& note) {
  if (actor.empty() || actor.size() > 128)
    throw Error(ErrorCode::kInvalidArgument, "处理人不能为空 / actor must be 1-128 characters");
  if (note.size() > 4096)
    throw Error(ErrorCode::kInvalidArgument, "备注过长 / note longer than 4096 bytes");
  {
    std::lock_guard lock(write_mutex_);
    db::Conn c = db_->Acquire();
    db::Transaction txn(c);
    const auto state = AlarmRepo::State(c, alarm_id);
    if (!state)
      throw Error(ErrorCode::kNotFound, "告警不存在 / no alarm " + std::to_string(alarm_id));
    const AlarmState from = ParseAlarmState(*state);
    const bool allowed = (from == AlarmState::kNew && to == AlarmState::kAcknowledged) ||
                         (from == AlarmState::kAcknowledged && to == AlarmState::kClosed);
    if (!allowed)
      throw Error(ErrorCode::kConflict, std::string("告警状态不能从 ") + AlarmStateName(from) +
                                            " 变为 " + AlarmStateName(to) + " / alarm " +
                                            std::to_string(alarm_id) + " cannot go from " +
                                            AlarmStateName(from) + " to " + AlarmStateName(to) +
                                            " (allowed: new → acknowledged → closed)");
    AlarmRepo::SetState(c, alarm_id, AlarmStateName(from), AlarmStateName(to), actor, note,
                        WallClockMs());
    txn.Commit();
  }
  return GetAlarm(alarm_id);
}

// ---- video references, quarantine, counts -----------------------------------------------

int64_t EventStore::AddVideoRef(const VideoRef& ref) {
  if (ref.uri.empty() || ref.uri.size() > 2048)
    throw Error(ErrorCode::kInvalidArgument, "video reference needs a uri of 1-2048 bytes");
  if (ref.start_ms <= 0 || ref.end_ms < ref.start_ms)
    throw Error(ErrorCode::kInvalidArgument, "video reference needs 0 < start_ms <= end_ms");
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  return EventRepo::InsertVideoRef(
      c, {0, ref.device_id, ref.door, ref.event_id, ref.start_ms, ref.end_ms, ref.uri},
      WallClockMs());
}

std::vector<VideoRef> EventStore::VideoRefs(int64_t from_ms, int64_t to_ms) const {
  db::Conn c = db_->AcquireReader();
  std::vector<VideoRef> out;
  for (auto& r : EventRepo::VideoRefs(c, from_ms, to_ms))
    out.push_back({r.id, r.device_id, r.door, r.event_id, r.start_ms, r.end_ms, r.uri});
  return out;
}

std::vector<json> EventStore::Quarantine(
    size_t limit, size_t offset, const std::optional<std::vector<std::string>>& devices) const {
  db::Conn c = db_->AcquireReader();
  std::vector<json> out;
  for (auto& r : EventRepo::Quarantined(c, devices, int64_t(limit), int64_t(offset)))
    out.push_back({{"seq", r.seq},
                   {"device_id", r.device_id},
                   {"received_ms", r.received_ms},
                   {"event_id", r.event_id},
                   {"code", r.code},
                   {"message", r.message},
                   {"raw", r.raw}});
  return out;
}

EventStore::Counts EventStore::Count() const {
  db::Conn c = db_->AcquireReader();
  const auto n = EventRepo::Counts(c);
  return {n.events, n.snapshots, n.alarms, n.quarantined, n.video_refs};
}

// ---- retention primitives ---------------------------------------------------------------

std::vector<DeletedSnapshot> EventStore::ExpireSnapshots(int64_t before_ms, size_t max) {
  std::vector<DeletedSnapshot> out;
  {
    std::lock_guard lock(write_mutex_);
    db::Conn c = db_->Acquire();
    db::Transaction txn(c);
    const auto rows = EventRepo::SnapshotsBefore(c, before_ms, int64_t(max));
    EventRepo::ExpireSnapshots(c, rows, WallClockMs());
    txn.Commit();
    for (auto& r : rows) out.push_back({r.event_id, r.file, r.bytes, r.time_ms});
  }
  // After the commit: a crash here leaves blobs no row names; the orphan sweep takes them.
  for (auto& d : out) blobs_->Remove(d.key);
  return out;
}

std::vector<std::string> EventStore::DeleteEventsBefore(int64_t before_ms, size_t max) {
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  db::Transaction txn(c);
  auto ids = EventRepo::EventsWithoutSnapshotBefore(c, before_ms, int64_t(max));
  EventRepo::DeleteEvents(c, ids);
  // An open alarm keeps its own copy of what it needs; closed ones go with their event.
  AlarmRepo::DeleteClosedOf(c, ids);
  txn.Commit();
  return ids;
}

void EventStore::PreparePartitions(int64_t now_ms) {
  db::Conn c = db_->Acquire();
  EventRepo::EnsurePartitions(c, now_ms);
}

std::optional<std::vector<DeletedSnapshot>> EventStore::DropSnapshotMonth(int64_t before_ms) {
  std::vector<DeletedSnapshot> out;
  {
    std::lock_guard lock(write_mutex_);
    db::Conn c = db_->Acquire();
    const auto months = EventRepo::SnapshotMonthsBefore(c, before_ms);
    if (months.empty()) return std::nullopt;
    db::Transaction txn(c);
    const auto rows = EventRepo::DropSnapshotMonth(c, months.front(), WallClockMs());
    txn.Commit();
    for (auto& r : rows) out.push_back({r.event_id, r.file, r.bytes, r.time_ms});
  }
  // After the commit, as ExpireSnapshots: a crash here leaves orphans the sweep takes.
  for (auto& d : out) blobs_->Remove(d.key);
  return out;
}

std::optional<std::vector<std::string>> EventStore::DropEventMonth(int64_t before_ms) {
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  for (const auto& month : EventRepo::EventMonthsBefore(c, before_ms)) {
    db::Transaction txn(c);
    // Before the events go (it finds the alarms through them); rolled back with the rest
    // when the month still has snapshots.
    AlarmRepo::DeleteClosedOfEventsIn(c, month.from_ms, month.to_ms);
    auto ids = EventRepo::DropEventMonth(c, month);
    if (!ids) continue;
    txn.Commit();
    return ids;
  }
  return std::nullopt;
}

std::vector<int64_t> EventStore::DeleteVideoRefsBefore(int64_t before_ms, size_t max) {
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  db::Transaction txn(c);
  auto ids = EventRepo::DeleteVideoRefsBefore(c, before_ms, int64_t(max));
  txn.Commit();
  return ids;
}

std::vector<int64_t> EventStore::DeleteQuarantineBefore(int64_t before_ms, size_t max) {
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  db::Transaction txn(c);
  auto ids = EventRepo::DeleteQuarantineBefore(c, before_ms, int64_t(max));
  txn.Commit();
  return ids;
}

void EventStore::ListSnapshotKeys(const std::string& prefix,
                                  const std::function<bool(const std::string& key)>& fn) const {
  blobs_->List(prefix, fn);
}

std::optional<int64_t> EventStore::RemoveOrphanSnapshot(const std::string& key) {
  const std::string name = fs::path(key).filename().string();
  const std::string suffix = ".jpg.sealed";
  if (!key.starts_with("snapshots/") || name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix))
    return std::nullopt;
  // Under the write lock: an ingest writes its blobs and commits their rows while holding
  // it, so a blob seen here without a row is not one that is about to get one.
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  const auto row = EventRepo::SnapshotFile(c, name.substr(0, name.size() - suffix.size()));
  if (row && fs::path(*row).lexically_normal() == fs::path(key).lexically_normal())
    return std::nullopt;
  const auto size = blobs_->Size(key);
  if (!size || !blobs_->Remove(key)) return std::nullopt;
  return *size;
}

void EventStore::PruneSnapshotDirs() {
  // Under the write lock: an ingest never finds its day's directory taken.
  std::lock_guard lock(write_mutex_);
  blobs_->Prune("snapshots");
}

void EventStore::ReclaimSpace() {
  // In steps of 4096 pages (16 MiB), releasing the write lock in between, so a large
  // deletion does not hold up uploads while the file is compacted.
  for (int64_t last = -1;;) {
    std::lock_guard lock(write_mutex_);
    db::Conn c = db_->Acquire();
    const int64_t free_pages = storage::FreePages(c);
    if (free_pages == 0 || free_pages == last) break;  // done, or auto_vacuum is off
    last = free_pages;
    storage::IncrementalVacuum(c, 4096);
  }
  std::lock_guard lock(write_mutex_);
  db::Conn c = db_->Acquire();
  // TRUNCATE waits for readers to move on; a short wait only: if a long export is still
  // reading, the WAL shrinks at the next run instead of stalling uploads.
  storage::TruncateWal(c, 1000);
}

int64_t EventStore::DatabaseBytes() const {
  return db_->SizeBytes();
}

}  // namespace anju::server
