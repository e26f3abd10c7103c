#include "server/event_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <set>
#include <thread>
#include <unordered_set>
#include <variant>

#include "core/error.h"
#include "core/sha256.h"
#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "store/sqlite_stmt.h"

namespace anju::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int32_t kApplicationId = 0x414E4A45;  // "ANJE"
constexpr int kFormatVersion = 1;               // PRAGMA user_version

[[noreturn]] void Fail(sqlite3* db, int rc, const std::string& what) {
  store::ThrowSqliteError(db, rc, what, "event database",
                          "事件库已损坏 / event database is damaged or not an event store",
                          "磁盘已满 / disk full writing events");
}

void ExecSql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Fail(nullptr, rc, std::string(sql).substr(0, 48) + ": " + msg);
  }
}

class EventStmt : public store::SqliteStmt {
 public:
  EventStmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, Fail) {}
  EventStmt(sqlite3* db, const std::string& sql) : SqliteStmt(db, sql.c_str(), Fail) {}
};

int64_t WallClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Canonical UUID text (8-4-4-4-12 hex digits), lower-cased so "ABC…" and "abc…" are one id.
std::optional<std::string> NormaliseUuid(const std::string& s) {
  if (s.size() != 36) return std::nullopt;
  std::string out = s;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
    } else if (!IsHex(s[i])) {
      return std::nullopt;
    } else if (s[i] >= 'A' && s[i] <= 'F') {
      out[i] = char(s[i] - 'A' + 'a');
    }
  }
  return out;
}

bool IsIdentityCode(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

bool IsSnakeName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
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

void SyncFd(int fd, const fs::path& what) {
  if (::fsync(fd) != 0)
    throw Error(ErrorCode::kIo, "fsync " + what.string() + ": " + std::strerror(errno));
}

void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kIo, "open " + dir.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::kIo, "fsync " + dir.string() + ": " + std::strerror(err));
}

// Writes the whole buffer to a new (or truncated) file of mode 0600; fsyncs when asked.
void WriteWholeFile(const fs::path& path, crypto::ByteView data, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                "cannot write snapshot " + path.string() + ": " + std::strerror(err));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(err == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                  "cannot write snapshot " + path.string() + ": " + std::strerror(err));
    }
    done += size_t(n);
  }
  try {
    if (sync) SyncFd(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

// fsyncs every path (files and directories) at once, one thread each (up to 32): the file
// system commits concurrent fsyncs in one journal transaction, so a batch with ten
// snapshots costs about one fsync instead of ten (docs/events-and-retention.md).
void SyncInParallel(const std::vector<fs::path>& paths) {
  const size_t threads = std::min<size_t>(paths.size(), 32);
  std::vector<int> errors(paths.size(), 0);
  auto work = [&](size_t first) {
    for (size_t i = first; i < paths.size(); i += threads) {
      int fd = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::fsync(fd) != 0) errors[i] = errno ? errno : EIO;
      if (fd >= 0) ::close(fd);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  if (threads) work(0);
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < paths.size(); ++i)
    if (errors[i])
      throw Error(ErrorCode::kIo, "fsync " + paths[i].string() + ": " + std::strerror(errors[i]));
}

std::vector<uint8_t> ReadWholeFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                "cannot read " + path.string() + ": " + std::strerror(err));
  }
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorCode::kIo, "cannot read " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

// One uploaded event after validation.
struct Parsed {
  bool ok = false;
  std::string sent_id;  // id as sent (for the rejected list)
  std::string id;       // normalised
  std::string kind;
  int64_t created_ms = 0;
  int64_t time_ms = 0;
  std::string door, person, decision, alarm_type, severity, description;
  std::string payload_text;
  std::vector<uint8_t> jpeg;
  std::string code, message;  // when !ok
  std::string raw;            // the event as parsed, JSON text (quarantine)
  bool creates_alarm = false;
};

struct Reject {
  std::string code, message;
};

const std::set<std::string>& Decisions() {
  static const std::set<std::string> s{"open", "deny", "stranger", "spoof", "uncertain"};
  return s;
}

// Validates one event of an upload; fills P or throws Reject.
void Validate(const json& ev, const EventStoreOptions& opt, int64_t now_ms, Parsed& p) {
  if (!ev.is_object()) throw Reject{"bad_request", "事件必须是对象 / event must be a JSON object"};
  for (auto it = ev.begin(); it != ev.end(); ++it) {
    const std::string& k = it.key();
    if (k != "id" && k != "kind" && k != "created_ms" && k != "payload" && k != "snapshot")
      throw Reject{"unknown_field", "未知字段 / unknown field: " + k};
  }
  auto id = ev.find("id");
  if (id == ev.end() || !id->is_string())
    throw Reject{"bad_request", "缺少事件ID / id must be a UUID string"};
  p.sent_id = id->get<std::string>();
  auto norm = NormaliseUuid(p.sent_id);
  if (!norm) throw Reject{"bad_request", "事件ID格式错误 / id is not a UUID: " + p.sent_id};
  p.id = *norm;

  p.kind = Text(ev, "kind");
  if (p.kind != "access" && p.kind != "alarm" && p.kind != "door_event")
    throw Reject{"bad_request", "未知事件类型 / kind must be access, alarm or door_event"};

  auto created = ev.find("created_ms");
  if (created == ev.end() || !created->is_number_integer())
    throw Reject{"bad_request", "缺少时间 / created_ms must be an integer (Unix ms)"};
  p.created_ms = created->get<int64_t>();
  auto check_time = [&](int64_t t, const char* name) {
    if (t < opt.min_time_ms || t > now_ms + opt.max_future_ms)
      throw Reject{"bad_request",
                   std::string("时间不合理（终端时钟错误？） / ") + name +
                       " out of range (terminal clock wrong?): " + std::to_string(t)};
  };
  check_time(p.created_ms, "created_ms");

  auto payload = ev.find("payload");
  if (payload == ev.end() || !payload->is_object())
    throw Reject{"bad_request", "payload 必须是对象 / payload must be a JSON object"};
  p.payload_text = payload->dump();
  if (p.payload_text.size() > kMaxPayloadBytes)
    throw Reject{"too_large", "payload 过大 / payload larger than " +
                                  std::to_string(kMaxPayloadBytes) + " bytes"};
  const json& pl = *payload;

  p.time_ms = p.created_ms;
  if (auto t = pl.find("time_ms"); t != pl.end() && !t->is_null()) {
    if (!t->is_number_integer())
      throw Reject{"bad_request", "payload.time_ms must be an integer (Unix ms)"};
    p.time_ms = t->get<int64_t>();
    check_time(p.time_ms, "payload.time_ms");
  }
  if (auto d = pl.find("door"); d != pl.end() && !d->is_null()) {
    if (d->is_number_integer() && d->get<int64_t>() >= 0)
      p.door = std::to_string(d->get<int64_t>());
    else if (d->is_string() && !d->get<std::string>().empty() && d->get<std::string>().size() <= 64)
      p.door = d->get<std::string>();
    else
      throw Reject{"bad_request", "门编号错误 / payload.door must be a door number or name"};
  }
  if (auto who = pl.find("person"); who != pl.end() && !who->is_null()) {
    if (!who->is_string() || !IsIdentityCode(who->get<std::string>()))
      throw Reject{"bad_request",
                   "人员编码错误 / payload.person must be 1-64 characters of [A-Za-z0-9_.-]"};
    p.person = who->get<std::string>();
  }
  p.description = Text(pl, "description");
  if (p.description.empty()) p.description = Text(pl, "description_zh");

  if (p.kind == "access") {
    p.decision = Text(pl, "decision");
    if (!Decisions().count(p.decision))
      throw Reject{"bad_request",
                   "识别结果错误 / payload.decision must be open, deny, stranger, spoof or "
                   "uncertain"};
    // The alarm itself comes as an alarm record (docs/device-protocol.md): anju-terminal
    // sends one with the whole frame for every stranger and spoof, so an access record
    // raising one too would double every alarm. The type is kept for queries.
    if (p.decision == "stranger" || p.decision == "spoof") p.alarm_type = p.decision;
  } else if (p.kind == "alarm") {
    p.alarm_type = Text(pl, "alarm_type");
    if (!IsSnakeName(p.alarm_type))
      throw Reject{"bad_request", "告警类型错误 / payload.alarm_type must be 1-32 of [a-z0-9_]"};
    p.severity = Text(pl, "severity");
    if (p.severity.empty()) p.severity = "major";
    if (p.severity != "critical" && p.severity != "major" && p.severity != "minor")
      throw Reject{"bad_request",
                   "告警级别错误 / payload.severity must be critical, major or minor"};
    p.creates_alarm = true;
  }

  if (auto snap = ev.find("snapshot"); snap != ev.end() && !snap->is_null()) {
    if (!snap->is_string())
      throw Reject{"bad_request", "抓拍图必须是 base64 / snapshot must be a base64 string"};
    const std::string& b64 = snap->get_ref<const std::string&>();
    if (b64.size() / 4 * 3 > kMaxSnapshotBytes + 3)
      throw Reject{"too_large", "抓拍图过大 / snapshot larger than " +
                                    std::to_string(kMaxSnapshotBytes) + " bytes"};
    try {
      p.jpeg = crypto::FromBase64(b64);
    } catch (const Error&) {
      throw Reject{"bad_request", "抓拍图不是合法 base64 / snapshot is not valid base64"};
    }
    if (p.jpeg.size() < 4 || p.jpeg[0] != 0xFF || p.jpeg[1] != 0xD8 || p.jpeg[2] != 0xFF)
      throw Reject{"bad_request", "抓拍图不是 JPEG / snapshot is not a JPEG image"};
  }
  p.ok = true;
}

const char* kEventColumns =
    "e.id, e.device_id, e.kind, e.created_ms, e.time_ms, e.received_ms, e.door, e.person, "
    "e.decision, e.alarm_type, e.payload, e.snapshot_bytes, e.snapshot_expired_ms, "
    "(s.event_id IS NOT NULL), e.seq";

EventRecord ReadEvent(const EventStmt& s) {
  EventRecord r;
  r.id = s.Text(0);
  r.device_id = s.Text(1);
  r.kind = s.Text(2);
  r.created_ms = s.Int(3);
  r.time_ms = s.Int(4);
  r.received_ms = s.Int(5);
  r.door = s.Text(6);
  r.person = s.Text(7);
  r.decision = s.Text(8);
  r.alarm_type = s.Text(9);
  r.payload = json::parse(s.Text(10), nullptr, false);
  r.snapshot_bytes = s.Int(11);
  r.snapshot_expired_ms = s.Int(12);
  r.has_snapshot = s.Int(13) != 0;
  return r;
}

// WHERE clause and its bound values for an event query (cursor excluded).
struct Where {
  std::string sql;
  std::vector<std::variant<int64_t, std::string>> args;
  void Add(const char* cond, int64_t v) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql += cond;
    args.emplace_back(v);
  }
  void Add(const char* cond, const std::string& v) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql += cond;
    args.emplace_back(v);
  }
  // COLUMN IN (VALUES…); an empty list matches nothing.
  void AddIn(const char* column, const std::vector<std::string>& values) {
    sql += sql.empty() ? " WHERE " : " AND ";
    if (values.empty()) {
      sql += "0";
      return;
    }
    sql += std::string(column) + " IN (";
    for (size_t i = 0; i < values.size(); ++i) {
      sql += i ? ",?" : "?";
      args.emplace_back(values[i]);
    }
    sql += ")";
  }
  int Bind(EventStmt& s, int first = 1) const {
    int i = first;
    for (auto& a : args) {
      if (auto* n = std::get_if<int64_t>(&a))
        s.Bind(i++, *n);
      else
        s.Bind(i++, std::string_view(std::get<std::string>(a)));
    }
    return i;
  }
};

Where EventWhere(const EventQuery& q) {
  Where w;
  if (q.from_ms) w.Add("e.time_ms >= ?", q.from_ms);
  if (q.to_ms) w.Add("e.time_ms < ?", q.to_ms);
  if (!q.door.empty()) w.Add("e.door = ?", q.door);
  if (!q.device.empty()) w.Add("e.device_id = ?", q.device);
  if (!q.person.empty()) w.Add("e.person = ?", q.person);
  if (!q.kind.empty()) w.Add("e.kind = ?", q.kind);
  if (!q.decision.empty()) w.Add("e.decision = ?", q.decision);
  if (q.devices) w.AddIn("e.device_id", *q.devices);
  return w;
}

void CheckLimit(size_t limit) {
  if (limit < 1 || limit > 1000)
    throw Error(ErrorCode::kInvalidArgument, "每页条数应为 1-1000 / limit must be 1..1000");
}

Alarm ReadAlarm(const EventStmt& s) {
  Alarm a;
  a.id = s.Int(0);
  a.event_id = s.Text(1);
  a.device_id = s.Text(2);
  a.type = s.Text(3);
  a.severity = s.Text(4);
  a.door = s.Text(5);
  a.person = s.Text(6);
  a.time_ms = s.Int(7);
  a.description = s.Text(8);
  a.state = ParseAlarmState(s.Text(9));
  a.acknowledged_by = s.Text(10);
  a.acknowledged_ms = s.Int(11);
  a.acknowledge_note = s.Text(12);
  a.closed_by = s.Text(13);
  a.closed_ms = s.Int(14);
  a.close_note = s.Text(15);
  return a;
}

const char* kAlarmColumns =
    "id, event_id, device_id, type, severity, door, person, time_ms, description, state, "
    "acknowledged_by, acknowledged_ms, acknowledge_note, closed_by, closed_ms, close_note";

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

// Relative path of a snapshot file under the data directory.
fs::path SnapshotRelPath(const std::string& event_id, int64_t time_ms) {
  const auto ymd = UtcDate(time_ms);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d/%02u/%02u", int(ymd.year()), unsigned(ymd.month()),
                unsigned(ymd.day()));
  return fs::path("snapshots") / buf / (event_id + ".jpg.sealed");
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
                       EventStoreOptions options)
    : data_dir_(data_dir), key_(key), options_(options) {
  std::error_code ec;
  fs::create_directories(snapshot_dir(), ec);
  if (ec || !fs::is_directory(snapshot_dir()))
    throw Error(ErrorCode::kIo, "cannot create " + snapshot_dir().string() + ": " + ec.message());
  const fs::path file = database_file();
  auto open = [&](sqlite3** db) {
    int rc =
        sqlite3_open_v2(file.c_str(), db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc);
      sqlite3_close(*db);
      *db = nullptr;
      throw Error(ErrorCode::kIo, "cannot open event database " + file.string() + ": " + msg);
    }
    sqlite3_busy_timeout(*db, 10000);
  };
  try {
    open(&write_db_);
    CreateSchema();
    open(&read_db_);
    Exec(read_db_, "PRAGMA query_only=1");
  } catch (...) {
    sqlite3_close(read_db_);
    sqlite3_close(write_db_);
    throw;
  }
  SyncDir(data_dir_);
}

EventStore::~EventStore() {
  sqlite3_close(read_db_);
  sqlite3_close(write_db_);
}

void EventStore::Exec(sqlite3* db, const char* sql) const {
  ExecSql(db, sql);
}

void EventStore::CreateSchema() {
  sqlite3* db = write_db_;
  int64_t app_id = 0, tables = 0;
  {
    EventStmt s(db, "PRAGMA application_id");
    if (s.Step()) app_id = s.Int(0);
  }
  {
    EventStmt s(db, "SELECT count(*) FROM sqlite_master");
    if (s.Step()) tables = s.Int(0);
  }
  const bool fresh = app_id == 0 && tables == 0;
  if (!fresh && app_id != kApplicationId)
    throw Error(ErrorCode::kCorrupt,
                database_file().string() + " 不是事件库 / is not an anju event database");
  // Set before the first table exists: retention can then hand pages back.
  if (fresh) Exec(db, "PRAGMA auto_vacuum=INCREMENTAL");
  {
    EventStmt s(db, "PRAGMA journal_mode=WAL");
    if (!s.Step() || s.Text(0) != "wal")
      throw Error(ErrorCode::kIo, "cannot switch " + database_file().string() + " to WAL mode");
  }
  // FULL: a batch acknowledged to a terminal survives power loss, not only a crash.
  Exec(db, "PRAGMA synchronous=FULL");
  Exec(db, "PRAGMA foreign_keys=OFF");
  if (!fresh) {
    EventStmt s(db, "PRAGMA user_version");
    if (!s.Step() || s.Int(0) != kFormatVersion)
      throw Error(ErrorCode::kCorrupt,
                  "unsupported event database format in " + database_file().string());
    return;
  }
  Exec(db, "BEGIN IMMEDIATE");
  try {
    Exec(db,
         "CREATE TABLE events("
         " seq INTEGER PRIMARY KEY,"
         " id TEXT NOT NULL UNIQUE,"
         " device_id TEXT NOT NULL,"
         " kind TEXT NOT NULL,"
         " created_ms INTEGER NOT NULL,"
         " time_ms INTEGER NOT NULL,"
         " received_ms INTEGER NOT NULL,"
         " door TEXT NOT NULL,"
         " person TEXT NOT NULL,"
         " decision TEXT NOT NULL,"
         " alarm_type TEXT NOT NULL,"
         " payload TEXT NOT NULL,"
         " snapshot_bytes INTEGER NOT NULL DEFAULT 0,"
         " snapshot_expired_ms INTEGER NOT NULL DEFAULT 0);"
         "CREATE INDEX events_time ON events(time_ms);"
         "CREATE INDEX events_door ON events(door, time_ms);"
         "CREATE INDEX events_device ON events(device_id, time_ms);"
         "CREATE INDEX events_person ON events(person, time_ms);"
         "CREATE INDEX events_kind ON events(kind, decision, time_ms);"
         "CREATE TABLE snapshots("
         " event_id TEXT PRIMARY KEY,"
         " time_ms INTEGER NOT NULL,"
         " file TEXT NOT NULL,"
         " bytes INTEGER NOT NULL) WITHOUT ROWID;"
         "CREATE INDEX snapshots_time ON snapshots(time_ms);"
         "CREATE TABLE alarms("
         " id INTEGER PRIMARY KEY AUTOINCREMENT,"
         " event_id TEXT NOT NULL UNIQUE,"
         " device_id TEXT NOT NULL,"
         " type TEXT NOT NULL,"
         " severity TEXT NOT NULL,"
         " door TEXT NOT NULL,"
         " person TEXT NOT NULL,"
         " time_ms INTEGER NOT NULL,"
         " description TEXT NOT NULL,"
         " state TEXT NOT NULL,"
         " acknowledged_by TEXT NOT NULL DEFAULT '',"
         " acknowledged_ms INTEGER NOT NULL DEFAULT 0,"
         " acknowledge_note TEXT NOT NULL DEFAULT '',"
         " closed_by TEXT NOT NULL DEFAULT '',"
         " closed_ms INTEGER NOT NULL DEFAULT 0,"
         " close_note TEXT NOT NULL DEFAULT '');"
         "CREATE INDEX alarms_time ON alarms(time_ms);"
         "CREATE INDEX alarms_state ON alarms(state, time_ms);"
         "CREATE TABLE alarm_actions("
         " seq INTEGER PRIMARY KEY,"
         " alarm_id INTEGER NOT NULL,"
         " from_state TEXT NOT NULL,"
         " to_state TEXT NOT NULL,"
         " actor TEXT NOT NULL,"
         " note TEXT NOT NULL,"
         " at_ms INTEGER NOT NULL);"
         "CREATE INDEX alarm_actions_alarm ON alarm_actions(alarm_id);"
         "CREATE TABLE quarantine("
         " seq INTEGER PRIMARY KEY,"
         " device_id TEXT NOT NULL,"
         " received_ms INTEGER NOT NULL,"
         " event_id TEXT NOT NULL,"
         " code TEXT NOT NULL,"
         " message TEXT NOT NULL,"
         " raw TEXT NOT NULL,"
         " raw_sha256 TEXT NOT NULL,"
         " UNIQUE(device_id, raw_sha256));"
         "CREATE INDEX quarantine_time ON quarantine(received_ms);"
         "CREATE TABLE video_refs("
         " id INTEGER PRIMARY KEY,"
         " device_id TEXT NOT NULL,"
         " door TEXT NOT NULL,"
         " event_id TEXT NOT NULL,"
         " start_ms INTEGER NOT NULL,"
         " end_ms INTEGER NOT NULL,"
         " uri TEXT NOT NULL,"
         " created_ms INTEGER NOT NULL);"
         "CREATE INDEX video_refs_start ON video_refs(start_ms);");
    Exec(db, ("PRAGMA application_id=" + std::to_string(kApplicationId) +
              "; PRAGMA user_version=" + std::to_string(kFormatVersion))
                 .c_str());
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

fs::path EventStore::SnapshotPath(const std::string& event_id, int64_t time_ms) const {
  return data_dir_ / SnapshotRelPath(event_id, time_ms);
}

// ---- ingestion --------------------------------------------------------------------------

IngestResult EventStore::Ingest(const std::string& device_id, const json& body) {
  if (device_id.empty() || device_id.size() > 64)
    throw Error(ErrorCode::kInvalidArgument, "device id must be 1-64 characters");
  if (!body.is_object())
    throw protocol::ApiError(400, "bad_request",
                             "请求体必须是 {\"events\": [...]} / body must be {\"events\": [...]}");
  for (auto it = body.begin(); it != body.end(); ++it)
    if (it.key() != "events")
      throw protocol::ApiError(400, "unknown_field", "未知字段 / unknown field: " + it.key());
  auto events = body.find("events");
  if (events == body.end() || !events->is_array())
    throw protocol::ApiError(400, "bad_request", "events 必须是数组 / events must be an array");
  if (events->size() > kMaxEventsPerBatch)
    throw protocol::ApiError(413, "too_large",
                             "单次最多上传 " + std::to_string(kMaxEventsPerBatch) +
                                 " 条 / at most " + std::to_string(kMaxEventsPerBatch) +
                                 " events per request");

  const int64_t now = WallClockMs();
  std::vector<Parsed> parsed(events->size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    const json& ev = (*events)[i];
    Parsed& p = parsed[i];
    try {
      Validate(ev, options_, now, p);
    } catch (const Reject& r) {
      p.ok = false;
      p.code = r.code;
      p.message = r.message;
      if (p.sent_id.empty() && ev.is_object())
        if (auto id = ev.find("id"); id != ev.end() && id->is_string()) p.sent_id = *id;
      p.raw = ev.dump(-1, ' ', false, json::error_handler_t::replace);
    }
  }

  IngestResult result;
  std::lock_guard lock(write_mutex_);
  sqlite3* db = write_db_;
  Exec(db, "BEGIN IMMEDIATE");
  std::vector<fs::path> written;  // snapshot files of this batch (removed on rollback)
  try {
    EventStmt exists(db, "SELECT 1 FROM events WHERE id = ?");
    // Which events are new: not stored before and not earlier in this batch.
    std::unordered_set<std::string> seen;
    std::vector<bool> fresh(parsed.size(), false);
    for (size_t i = 0; i < parsed.size(); ++i) {
      Parsed& p = parsed[i];
      if (!p.ok) continue;
      bool dup = !seen.insert(p.id).second;
      if (!dup) {
        exists.Reset().Bind(1, std::string_view(p.id));
        dup = exists.Step();
      }
      fresh[i] = !dup;
    }

    // Snapshot files first, durable before the rows that name them commit.
    const bool per_file = options_.snapshot_sync == SnapshotSync::kPerFile;
    std::set<fs::path> dirs_to_sync;
    std::vector<int64_t> sealed_sizes(parsed.size(), 0);
    for (size_t i = 0; i < parsed.size(); ++i) {
      Parsed& p = parsed[i];
      if (!fresh[i] || p.jpeg.empty()) continue;
      const fs::path file = SnapshotPath(p.id, p.time_ms);
      const fs::path dir = file.parent_path();
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec) throw Error(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
        // New YYYY, MM, DD directories: their entries must reach the disk too.
        for (fs::path d = dir; d != snapshot_dir() && d.has_parent_path(); d = d.parent_path())
          dirs_to_sync.insert(d.parent_path());
      }
      dirs_to_sync.insert(dir);
      const crypto::Bytes sealed = crypto::Seal(key_, p.jpeg, crypto::AsBytes(p.id));
      written.push_back(file);
      WriteWholeFile(file, sealed, per_file);
      sealed_sizes[i] = int64_t(sealed.size());
    }
    if (!written.empty()) {
      if (per_file) {
        for (auto& d : dirs_to_sync) SyncDir(d);
      } else if (options_.snapshot_sync == SnapshotSync::kParallel) {
        std::vector<fs::path> paths = written;
        paths.insert(paths.end(), dirs_to_sync.begin(), dirs_to_sync.end());
        SyncInParallel(paths);
      } else {
        int fd = ::open(snapshot_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || ::syncfs(fd) != 0) {
          const int err = errno;
          if (fd >= 0) ::close(fd);
          throw Error(ErrorCode::kIo, std::string("syncfs: ") + std::strerror(err));
        }
        ::close(fd);
      }
    }

    EventStmt ins_event(db,
                        "INSERT INTO events(id, device_id, kind, created_ms, time_ms, received_ms, "
                        "door, person, decision, alarm_type, payload, snapshot_bytes) "
                        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    EventStmt ins_snap(db, "INSERT INTO snapshots(event_id, time_ms, file, bytes) VALUES(?,?,?,?)");
    EventStmt ins_alarm(db,
                        "INSERT OR IGNORE INTO alarms(event_id, device_id, type, severity, door, "
                        "person, time_ms, description, state) VALUES(?,?,?,?,?,?,?,?,'new')");
    EventStmt ins_quarantine(db,
                             "INSERT OR IGNORE INTO quarantine(device_id, received_ms, event_id, "
                             "code, message, raw, raw_sha256) VALUES(?,?,?,?,?,?,?)");
    for (size_t i = 0; i < parsed.size(); ++i) {
      Parsed& p = parsed[i];
      if (!p.ok) {
        ins_quarantine.Reset()
            .Bind(1, std::string_view(device_id))
            .Bind(2, now)
            .Bind(3, std::string_view(p.sent_id))
            .Bind(4, std::string_view(p.code))
            .Bind(5, std::string_view(p.message))
            .Bind(6, std::string_view(p.raw))
            .Bind(7, std::string_view(Sha256Hex(p.raw.data(), p.raw.size())));
        ins_quarantine.Step();
        result.rejected.push_back({p.sent_id, p.code, p.message});
        continue;
      }
      if (!fresh[i]) {
        result.duplicates.push_back(p.id);
        continue;
      }
      ins_event.Reset()
          .Bind(1, std::string_view(p.id))
          .Bind(2, std::string_view(device_id))
          .Bind(3, std::string_view(p.kind))
          .Bind(4, p.created_ms)
          .Bind(5, p.time_ms)
          .Bind(6, now)
          .Bind(7, std::string_view(p.door))
          .Bind(8, std::string_view(p.person))
          .Bind(9, std::string_view(p.decision))
          .Bind(10, std::string_view(p.alarm_type))
          .Bind(11, std::string_view(p.payload_text))
          .Bind(12, int64_t(p.jpeg.size()));
      ins_event.Step();
      if (!p.jpeg.empty()) {
        ins_snap.Reset()
            .Bind(1, std::string_view(p.id))
            .Bind(2, p.time_ms)
            .Bind(3, std::string_view(SnapshotRelPath(p.id, p.time_ms).string()))
            .Bind(4, sealed_sizes[i]);
        ins_snap.Step();
      }
      if (p.creates_alarm) {
        ins_alarm.Reset()
            .Bind(1, std::string_view(p.id))
            .Bind(2, std::string_view(device_id))
            .Bind(3, std::string_view(p.alarm_type))
            .Bind(4, std::string_view(p.severity))
            .Bind(5, std::string_view(p.door))
            .Bind(6, std::string_view(p.person))
            .Bind(7, p.time_ms)
            .Bind(8, std::string_view(p.description));
        ins_alarm.Step();
        ++result.alarms_created;
      }
      result.stored.push_back(p.id);
    }
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    // No committed row names these files: they would only be orphans.
    for (auto& f : written) {
      std::error_code ec;
      fs::remove(f, ec);
    }
    throw;
  }
  return result;
}

// ---- queries ----------------------------------------------------------------------------

EventPage EventStore::Query(const EventQuery& q) const {
  CheckLimit(q.limit);
  const Where where = EventWhere(q);
  int64_t cursor_time = 0, cursor_seq = 0;
  const bool has_cursor = !q.cursor.empty();
  if (has_cursor) {
    const auto colon = q.cursor.find(':');
    try {
      if (colon == std::string::npos) throw std::invalid_argument("no colon");
      size_t used = 0;
      cursor_time = std::stoll(q.cursor.substr(0, colon), &used);
      if (used != colon) throw std::invalid_argument("junk");
      cursor_seq = std::stoll(q.cursor.substr(colon + 1), &used);
      if (used != q.cursor.size() - colon - 1) throw std::invalid_argument("junk");
    } catch (const std::exception&) {
      throw Error(ErrorCode::kInvalidArgument, "翻页游标无效 / invalid cursor: " + q.cursor);
    }
  }
  std::lock_guard lock(read_mutex_);
  sqlite3* db = read_db_;
  // One read transaction: the total and the page see the same snapshot of the table.
  Exec(db, "BEGIN");
  EventPage page;
  try {
    {
      EventStmt s(db, "SELECT count(*) FROM events e" + where.sql);
      where.Bind(s);
      if (s.Step()) page.total = s.Int(0);
    }
    std::string sql = std::string("SELECT ") + kEventColumns +
                      " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id" + where.sql;
    if (has_cursor)
      sql += std::string(where.sql.empty() ? " WHERE " : " AND ") +
             "(e.time_ms < ? OR (e.time_ms = ? AND e.seq < ?))";
    sql += " ORDER BY e.time_ms DESC, e.seq DESC LIMIT ?";
    if (!has_cursor) sql += " OFFSET ?";
    EventStmt s(db, sql);
    int i = where.Bind(s);
    if (has_cursor) {
      s.Bind(i++, cursor_time);
      s.Bind(i++, cursor_time);
      s.Bind(i++, cursor_seq);
    }
    s.Bind(i++, int64_t(q.limit) + 1);  // one extra row tells whether a next page exists
    if (!has_cursor) s.Bind(i++, int64_t(q.offset));
    int64_t last_seq = 0;
    while (s.Step()) {
      if (page.items.size() == q.limit) {
        page.next_cursor =
            std::to_string(page.items.back().time_ms) + ":" + std::to_string(last_seq);
        break;
      }
      page.items.push_back(ReadEvent(s));
      last_seq = s.Int(14);
    }
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return page;
}

EventRecord EventStore::Get(const std::string& event_id) const {
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_,
              std::string("SELECT ") + kEventColumns +
                  " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id WHERE e.id = ?");
  s.Bind(1, std::string_view(NormaliseUuid(event_id).value_or(event_id)));
  if (!s.Step()) throw Error(ErrorCode::kNotFound, "事件不存在 / no event " + event_id);
  return ReadEvent(s);
}

std::vector<uint8_t> EventStore::Snapshot(const std::string& event_id) const {
  const std::string id = NormaliseUuid(event_id).value_or(event_id);
  std::string rel;
  {
    std::lock_guard lock(read_mutex_);
    EventStmt s(read_db_, "SELECT file FROM snapshots WHERE event_id = ?");
    s.Bind(1, std::string_view(id));
    if (!s.Step()) throw Error(ErrorCode::kNotFound, "该事件没有抓拍图 / no snapshot for " + id);
    rel = s.Text(0);
  }
  const std::vector<uint8_t> sealed = ReadWholeFile(data_dir_ / rel);
  try {
    return crypto::Open(key_, sealed, crypto::AsBytes(id));
  } catch (const Error& e) {
    throw Error(ErrorCode::kCrypto, "抓拍图无法解密（密钥错误或文件被改动） / snapshot " + rel +
                                        " does not open: " + e.what());
  }
}

size_t EventStore::ExportCsv(const EventQuery& q, std::ostream& out, int utc_offset_minutes) const {
  const Where where = EventWhere(q);
  char tz[16];
  std::snprintf(tz, sizeof tz, "UTC%+03d:%02d", utc_offset_minutes / 60,
                std::abs(utc_offset_minutes % 60));
  out << "\xEF\xBB\xBF";  // BOM: Excel reads the file as UTF-8
  out << "事件ID / event id,时间 / time (" << tz
      << "),time_ms,类型 / kind,结果 / decision,告警类型 / alarm type,门 / door,人员 / "
         "person,设备 / device,比对分数 / score,活体分数 / liveness,说明 / description,"
         "抓拍 / snapshot\r\n";
  // A connection of its own: a long export holds up neither uploads nor other queries.
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(database_file().c_str(), &db,
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    throw Error(ErrorCode::kIo, "cannot open event database for export: " + msg);
  }
  std::unique_ptr<sqlite3, int (*)(sqlite3*)> closer(db, sqlite3_close);
  sqlite3_busy_timeout(db, 10000);
  Exec(db, "BEGIN");
  size_t rows = 0;
  try {
    EventStmt s(db, std::string("SELECT ") + kEventColumns +
                        " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id" + where.sql +
                        " ORDER BY e.time_ms DESC, e.seq DESC");
    where.Bind(s);
    while (s.Step()) {
      const EventRecord e = ReadEvent(s);
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
    }
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "CSV export: the output stream failed");
  return rows;
}

int64_t EventStore::QuarantineCount(const std::optional<std::vector<std::string>>& devices) const {
  Where w;
  if (devices) w.AddIn("device_id", *devices);
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_, "SELECT COUNT(*) FROM quarantine" + w.sql);
  w.Bind(s);
  s.Step();
  return s.Int(0);
}

// ---- alarms -----------------------------------------------------------------------------

AlarmPage EventStore::Alarms(const AlarmQuery& q) const {
  CheckLimit(q.limit);
  Where w;
  if (q.from_ms) w.Add("time_ms >= ?", q.from_ms);
  if (q.to_ms) w.Add("time_ms < ?", q.to_ms);
  if (q.state) w.Add("state = ?", std::string(AlarmStateName(*q.state)));
  if (!q.type.empty()) w.Add("type = ?", q.type);
  if (!q.door.empty()) w.Add("door = ?", q.door);
  if (!q.device.empty()) w.Add("device_id = ?", q.device);
  if (q.devices) w.AddIn("device_id", *q.devices);
  std::lock_guard lock(read_mutex_);
  sqlite3* db = read_db_;
  Exec(db, "BEGIN");
  AlarmPage page;
  try {
    {
      EventStmt s(db, "SELECT count(*) FROM alarms" + w.sql);
      w.Bind(s);
      if (s.Step()) page.total = s.Int(0);
    }
    EventStmt s(db, std::string("SELECT ") + kAlarmColumns + " FROM alarms" + w.sql +
                        " ORDER BY time_ms DESC, id DESC LIMIT ? OFFSET ?");
    int i = w.Bind(s);
    s.Bind(i++, int64_t(q.limit));
    s.Bind(i++, int64_t(q.offset));
    while (s.Step()) page.items.push_back(ReadAlarm(s));
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return page;
}

Alarm EventStore::GetAlarm(int64_t alarm_id) const {
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_, std::string("SELECT ") + kAlarmColumns + " FROM alarms WHERE id = ?");
  s.Bind(1, alarm_id);
  if (!s.Step())
    throw Error(ErrorCode::kNotFound, "告警不存在 / no alarm " + std::to_string(alarm_id));
  return ReadAlarm(s);
}

Alarm EventStore::SetAlarmState(int64_t alarm_id, AlarmState to, const std::string& actor,
                                const std::string& note) {
  if (actor.empty() || actor.size() > 128)
    throw Error(ErrorCode::kInvalidArgument, "处理人不能为空 / actor must be 1-128 characters");
  if (note.size() > 4096)
    throw Error(ErrorCode::kInvalidArgument, "备注过长 / note longer than 4096 bytes");
  std::lock_guard lock(write_mutex_);
  sqlite3* db = write_db_;
  Exec(db, "BEGIN IMMEDIATE");
  try {
    AlarmState from;
    {
      EventStmt s(db, "SELECT state FROM alarms WHERE id = ?");
      s.Bind(1, alarm_id);
      if (!s.Step())
        throw Error(ErrorCode::kNotFound, "告警不存在 / no alarm " + std::to_string(alarm_id));
      from = ParseAlarmState(s.Text(0));
    }
    const bool allowed = (from == AlarmState::kNew && to == AlarmState::kAcknowledged) ||
                         (from == AlarmState::kAcknowledged && to == AlarmState::kClosed);
    if (!allowed)
      throw protocol::ApiError(409, "conflict",
                               std::string("告警状态不能从 ") + AlarmStateName(from) + " 变为 " +
                                   AlarmStateName(to) + " / alarm " + std::to_string(alarm_id) +
                                   " cannot go from " + AlarmStateName(from) + " to " +
                                   AlarmStateName(to) + " (allowed: new → acknowledged → closed)");
    const int64_t now = WallClockMs();
    const char* sql =
        to == AlarmState::kAcknowledged
            ? "UPDATE alarms SET state = ?, acknowledged_by = ?, acknowledged_ms = ?, "
              "acknowledge_note = ? WHERE id = ?"
            : "UPDATE alarms SET state = ?, closed_by = ?, closed_ms = ?, close_note = ? "
              "WHERE id = ?";
    EventStmt up(db, sql);
    up.Bind(1, std::string_view(AlarmStateName(to)))
        .Bind(2, std::string_view(actor))
        .Bind(3, now)
        .Bind(4, std::string_view(note))
        .Bind(5, alarm_id);
    up.Step();
    EventStmt log(db,
                  "INSERT INTO alarm_actions(alarm_id, from_state, to_state, actor, note, at_ms) "
                  "VALUES(?,?,?,?,?,?)");
    log.Bind(1, alarm_id)
        .Bind(2, std::string_view(AlarmStateName(from)))
        .Bind(3, std::string_view(AlarmStateName(to)))
        .Bind(4, std::string_view(actor))
        .Bind(5, std::string_view(note))
        .Bind(6, now);
    log.Step();
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
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
  EventStmt s(
      write_db_,
      "INSERT INTO video_refs(device_id, door, event_id, start_ms, end_ms, uri, created_ms) "
      "VALUES(?,?,?,?,?,?,?)");
  s.Bind(1, std::string_view(ref.device_id))
      .Bind(2, std::string_view(ref.door))
      .Bind(3, std::string_view(ref.event_id))
      .Bind(4, ref.start_ms)
      .Bind(5, ref.end_ms)
      .Bind(6, std::string_view(ref.uri))
      .Bind(7, WallClockMs());
  s.Step();
  return sqlite3_last_insert_rowid(write_db_);
}

std::vector<VideoRef> EventStore::VideoRefs(int64_t from_ms, int64_t to_ms) const {
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_,
              "SELECT id, device_id, door, event_id, start_ms, end_ms, uri FROM video_refs "
              "WHERE start_ms >= ? AND (? = 0 OR start_ms < ?) ORDER BY start_ms, id");
  s.Bind(1, from_ms).Bind(2, to_ms).Bind(3, to_ms);
  std::vector<VideoRef> out;
  while (s.Step())
    out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Text(6)});
  return out;
}

std::vector<json> EventStore::Quarantine(
    size_t limit, size_t offset, const std::optional<std::vector<std::string>>& devices) const {
  Where w;
  if (devices) w.AddIn("device_id", *devices);
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_,
              "SELECT seq, device_id, received_ms, event_id, code, message, raw FROM quarantine" +
                  w.sql + " ORDER BY seq LIMIT ? OFFSET ?");
  const int n = w.Bind(s);
  s.Bind(n, int64_t(limit)).Bind(n + 1, int64_t(offset));
  std::vector<json> out;
  while (s.Step())
    out.push_back({{"seq", s.Int(0)},
                   {"device_id", s.Text(1)},
                   {"received_ms", s.Int(2)},
                   {"event_id", s.Text(3)},
                   {"code", s.Text(4)},
                   {"message", s.Text(5)},
                   {"raw", s.Text(6)}});
  return out;
}

EventStore::Counts EventStore::Count() const {
  std::lock_guard lock(read_mutex_);
  EventStmt s(read_db_,
              "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM snapshots), "
              "(SELECT count(*) FROM alarms), (SELECT count(*) FROM quarantine), "
              "(SELECT count(*) FROM video_refs)");
  s.Step();
  return {s.Int(0), s.Int(1), s.Int(2), s.Int(3), s.Int(4)};
}

// ---- retention primitives ---------------------------------------------------------------

std::vector<DeletedSnapshot> EventStore::ExpireSnapshots(int64_t before_ms, size_t max) {
  std::vector<DeletedSnapshot> out;
  {
    std::lock_guard lock(write_mutex_);
    sqlite3* db = write_db_;
    Exec(db, "BEGIN IMMEDIATE");
    try {
      EventStmt sel(db,
                    "SELECT event_id, file, bytes, time_ms FROM snapshots WHERE time_ms < ? "
                    "ORDER BY time_ms LIMIT ?");
      sel.Bind(1, before_ms).Bind(2, int64_t(max));
      while (sel.Step())
        out.push_back({sel.Text(0), data_dir_ / sel.Text(1), sel.Int(2), sel.Int(3)});
      EventStmt del(db, "DELETE FROM snapshots WHERE event_id = ?");
      EventStmt mark(db, "UPDATE events SET snapshot_expired_ms = ? WHERE id = ?");
      const int64_t now = WallClockMs();
      for (auto& d : out) {
        del.Reset().Bind(1, std::string_view(d.event_id));
        del.Step();
        mark.Reset().Bind(1, now).Bind(2, std::string_view(d.event_id));
        mark.Step();
      }
      Exec(db, "COMMIT");
    } catch (...) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  // After the commit: a crash here leaves files no row names; the orphan sweep takes them.
  for (auto& d : out) {
    std::error_code ec;
    if (!fs::remove(d.file, ec) && ec)
      throw Error(ErrorCode::kIo, "cannot delete " + d.file.string() + ": " + ec.message());
  }
  return out;
}

std::vector<std::string> EventStore::DeleteEventsBefore(int64_t before_ms, size_t max) {
  std::vector<std::string> ids;
  std::lock_guard lock(write_mutex_);
  sqlite3* db = write_db_;
  Exec(db, "BEGIN IMMEDIATE");
  try {
    EventStmt sel(db,
                  "SELECT e.id FROM events e WHERE e.time_ms < ? AND NOT EXISTS (SELECT 1 FROM "
                  "snapshots s WHERE s.event_id = e.id) ORDER BY e.time_ms LIMIT ?");
    sel.Bind(1, before_ms).Bind(2, int64_t(max));
    while (sel.Step()) ids.push_back(sel.Text(0));
    EventStmt del(db, "DELETE FROM events WHERE id = ?");
    EventStmt del_actions(
        db,
        "DELETE FROM alarm_actions WHERE alarm_id IN (SELECT id FROM alarms WHERE "
        "event_id = ? AND state = 'closed')");
    EventStmt del_alarm(db, "DELETE FROM alarms WHERE event_id = ? AND state = 'closed'");
    for (auto& id : ids) {
      del.Reset().Bind(1, std::string_view(id));
      del.Step();
      del_actions.Reset().Bind(1, std::string_view(id));
      del_actions.Step();
      del_alarm.Reset().Bind(1, std::string_view(id));
      del_alarm.Step();
    }
    Exec(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return ids;
}

namespace {
std::vector<int64_t> DeleteRowsBefore(sqlite3* db, const char* select_sql, const char* delete_sql,
                                      int64_t before_ms, size_t max) {
  std::vector<int64_t> ids;
  ExecSql(db, "BEGIN IMMEDIATE");
  try {
    EventStmt sel(db, select_sql);
    sel.Bind(1, before_ms).Bind(2, int64_t(max));
    while (sel.Step()) ids.push_back(sel.Int(0));
    EventStmt del(db, delete_sql);
    for (int64_t id : ids) {
      del.Reset().Bind(1, id);
      del.Step();
    }
    ExecSql(db, "COMMIT");
  } catch (...) {
    sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  return ids;
}
}  // namespace

std::vector<int64_t> EventStore::DeleteVideoRefsBefore(int64_t before_ms, size_t max) {
  std::lock_guard lock(write_mutex_);
  return DeleteRowsBefore(write_db_,
                          "SELECT id FROM video_refs WHERE start_ms < ? ORDER BY start_ms LIMIT ?",
                          "DELETE FROM video_refs WHERE id = ?", before_ms, max);
}

std::vector<int64_t> EventStore::DeleteQuarantineBefore(int64_t before_ms, size_t max) {
  std::lock_guard lock(write_mutex_);
  return DeleteRowsBefore(write_db_,
                          "SELECT seq FROM quarantine WHERE received_ms < ? ORDER BY seq LIMIT ?",
                          "DELETE FROM quarantine WHERE seq = ?", before_ms, max);
}

std::optional<int64_t> EventStore::RemoveOrphanSnapshot(const fs::path& file) {
  const std::string name = file.filename().string();
  const std::string suffix = ".jpg.sealed";
  if (name.size() <= suffix.size() ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix))
    return std::nullopt;
  // Under the write lock: an ingest writes its files and commits their rows while holding
  // it, so a file seen here without a row is not one that is about to get one.
  std::lock_guard lock(write_mutex_);
  EventStmt s(write_db_, "SELECT file FROM snapshots WHERE event_id = ?");
  s.Bind(1, std::string_view(name.substr(0, name.size() - suffix.size())));
  if (s.Step() && fs::path(s.Text(0)) == file.lexically_relative(data_dir_)) return std::nullopt;
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec || !fs::remove(file, ec)) return std::nullopt;
  return int64_t(size);
}

bool EventStore::RemoveSnapshotDirIfEmpty(const fs::path& dir) {
  std::lock_guard lock(write_mutex_);
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_empty(dir, ec) && fs::remove(dir, ec);
}

void EventStore::ReclaimSpace() {
  // In steps of 4096 pages (16 MiB), releasing the write lock in between, so a large
  // deletion does not hold up uploads while the file is compacted.
  for (int64_t last = -1;;) {
    std::lock_guard lock(write_mutex_);
    int64_t free_pages = 0;
    {
      EventStmt s(write_db_, "PRAGMA freelist_count");
      if (s.Step()) free_pages = s.Int(0);
    }
    if (free_pages == 0 || free_pages == last) break;  // done, or auto_vacuum is off
    last = free_pages;
    Exec(write_db_, "PRAGMA incremental_vacuum(4096)");
  }
  std::lock_guard lock(write_mutex_);
  // TRUNCATE waits for readers to move on; a short wait only: if a long export is still
  // reading, the WAL shrinks at the next run instead of stalling uploads.
  sqlite3_busy_timeout(write_db_, 1000);
  try {
    Exec(write_db_, "PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (...) {
    sqlite3_busy_timeout(write_db_, 10000);
    throw;
  }
  sqlite3_busy_timeout(write_db_, 10000);
}

int64_t EventStore::DatabaseBytes() const {
  int64_t total = 0;
  for (const char* suffix : {"", "-wal"}) {
    std::error_code ec;
    const auto n = fs::file_size(database_file().string() + suffix, ec);
    if (!ec) total += int64_t(n);
  }
  return total;
}

}  // namespace anju::server
