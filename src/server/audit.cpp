#include "server/audit.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "crypto/sm3.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr std::string_view kRecordLabel = "anju-audit/v1";
constexpr std::string_view kMacLabel = "anju/audit/v1/hmac-sm3";
constexpr const char* kSelectRecord =
    "SELECT id, time_ms, actor, source, action, object, result, detail, hash FROM audit";

void PutU64(crypto::Bytes& b, uint64_t v) {
  for (int i = 7; i >= 0; --i) b.push_back(uint8_t(v >> (8 * i)));
}
void PutStr(crypto::Bytes& b, std::string_view s) {
  const uint32_t n = uint32_t(s.size());
  for (int i = 3; i >= 0; --i) b.push_back(uint8_t(n >> (8 * i)));
  b.insert(b.end(), s.begin(), s.end());
}

crypto::Sm3Digest ChainHash(const crypto::Sm3Digest& prev, const AuditRecord& r) {
  crypto::Bytes c;
  c.reserve(64 + r.actor.size() + r.source.size() + r.action.size() + r.object.size() +
            r.result.size() + r.detail.size() + 24);
  c.insert(c.end(), kRecordLabel.begin(), kRecordLabel.end());
  PutU64(c, uint64_t(r.id));
  PutU64(c, uint64_t(r.time_ms));
  for (const std::string* f : {&r.actor, &r.source, &r.action, &r.object, &r.result, &r.detail})
    PutStr(c, *f);
  crypto::Sm3Hasher h;
  h.Update(crypto::ByteView(prev));
  h.Update(crypto::ByteView(c));
  return h.Final();
}

AuditRecord ReadRecord(const Stmt& s) {
  AuditRecord r;
  r.id = s.Int(0);
  r.time_ms = s.Int(1);
  r.actor = s.Text(2);
  r.source = s.Text(3);
  r.action = s.Text(4);
  r.object = s.Text(5);
  r.result = s.Text(6);
  r.detail = s.Text(7);
  r.hash = s.IsNull(8) ? "" : s.Text(8);
  return r;
}

crypto::Bytes MacKey(const crypto::DataKey& key) {
  return crypto::DeriveKey(key.bytes(), kMacLabel, 32);
}

std::string CheckpointMac(crypto::ByteView mac_key, int64_t cp_id, int64_t audit_id,
                          const std::string& hash, int64_t time_ms, const std::string& reason) {
  const std::string msg = "anju-audit-checkpoint/v1|" + std::to_string(cp_id) + "|" +
                          std::to_string(audit_id) + "|" + hash + "|" + std::to_string(time_ms) +
                          "|" + reason;
  return crypto::ToHex(crypto::HmacSm3(mac_key, msg));
}

std::string HeadMac(crypto::ByteView mac_key, int64_t audit_id, const std::string& hash,
                    int64_t time_ms) {
  const std::string msg =
      "anju-audit-head/v1|" + std::to_string(audit_id) + "|" + hash + "|" + std::to_string(time_ms);
  return crypto::ToHex(crypto::HmacSm3(mac_key, msg));
}

fs::path DefaultHead(const fs::path& db_file) {
  return db_file.parent_path() / "audit.head";
}

// What a database with an attached key needs between Audit() and the commit hook.
struct KeyState {
  crypto::DataKey key;
  crypto::Bytes mac_key;
  AuditPolicy policy;
  sqlite3* handle = nullptr;
  fs::path file;
  // The newest record written by the open transaction, for the head file.
  bool pending = false;
  int64_t pending_id = 0, pending_time = 0;
  std::string pending_hash;
};

std::mutex registry_mu;
std::map<const Database*, std::shared_ptr<KeyState>>& Registry() {
  static std::map<const Database*, std::shared_ptr<KeyState>> r;
  return r;
}

std::shared_ptr<KeyState> Lookup(Database& db) {
  std::lock_guard lock(registry_mu);
  auto& r = Registry();
  auto it = r.find(&db);
  if (it == r.end()) return nullptr;
  // A stale entry of a destroyed Database whose address was reused.
  if (it->second->handle != db.handle() || it->second->file != db.file()) {
    r.erase(it);
    return nullptr;
  }
  return it->second;
}

void WriteHead(const KeyState& k, int64_t id, const std::string& hash, int64_t time_ms) {
  const json head = {{"format", "anju-audit-head"},
                     {"version", 1},
                     {"audit_id", id},
                     {"hash", hash},
                     {"time_ms", time_ms},
                     {"key_id", k.key.id()},
                     {"mac", HeadMac(k.mac_key, id, hash, time_ms)}};
  crypto::WriteSecretFile(k.policy.head_file, head.dump() + "\n");
}

// SQLite calls these on the connection's thread, under the caller's db.mutex(). The head is
// written before the commit completes: a head that cannot be written turns the commit into
// a rollback (no audit record without its head), and a crash in between leaves the head one
// transaction ahead, which AttachAuditKey records at the next start.
int CommitHook(void* arg) {
  auto* k = static_cast<KeyState*>(arg);
  if (!k->pending) return 0;
  try {
    WriteHead(*k, k->pending_id, k->pending_hash, k->pending_time);
    k->pending = false;
    return 0;
  } catch (const Error& e) {
    spdlog::error("audit head {} not written, transaction rolled back: {}",
                  k->policy.head_file.string(), e.what());
    // The COMMIT then fails with the reason (a full disk is 507), not "constraint failed".
    RefuseCommit(e.code(), "audit head not written: " + std::string(e.what()));
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("audit head {} not written, transaction rolled back: {}",
                  k->policy.head_file.string(), e.what());
    RefuseCommit(ErrorCode::kIo, "audit head not written: " + std::string(e.what()));
    return 1;
  }
}
void RollbackHook(void* arg) {
  static_cast<KeyState*>(arg)->pending = false;
}

// A savepoint around one audit write: its own transaction in autocommit mode (record and
// checkpoint commit together), nested in the caller's transaction otherwise.
class Savepoint {
 public:
  explicit Savepoint(Database& db) : db_(db) { db_.Exec("SAVEPOINT anju_audit"); }
  ~Savepoint() {
    if (done_) return;
    try {
      db_.Exec("ROLLBACK TO anju_audit");
      db_.Exec("RELEASE anju_audit");
    } catch (...) {
    }
  }
  void Release() {
    db_.Exec("RELEASE anju_audit");
    done_ = true;
  }

 private:
  Database& db_;
  bool done_ = false;
};

crypto::Sm3Digest FromHexDigest(const std::string& hex) {
  crypto::Sm3Digest d{};
  const crypto::Bytes b = crypto::FromHex(hex);
  if (b.size() != d.size()) throw Error(ErrorCode::kCorrupt, "audit hash of the wrong size");
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

// Chains records written before the chain existed (schema v3). Returns the last hash.
crypto::Sm3Digest ChainLegacy(Database& db) {
  crypto::Sm3Digest prev{};
  std::vector<std::pair<int64_t, std::string>> updates;
  {
    Stmt s(db.handle(), std::string(kSelectRecord) + " ORDER BY id");
    while (s.Step()) {
      const AuditRecord r = ReadRecord(s);
      if (!r.hash.empty()) {
        prev = FromHexDigest(r.hash);
        continue;
      }
      prev = ChainHash(prev, r);
      updates.emplace_back(r.id, crypto::ToHex(prev));
    }
  }
  Stmt u(db.handle(), "UPDATE audit SET hash = ? WHERE id = ? AND hash IS NULL");
  for (const auto& [id, hash] : updates) {
    u.Reset();
    u.Bind(1, hash).Bind(2, id).Run();
  }
  if (!updates.empty())
    spdlog::info("audit: chained {} records written before the hash chain", updates.size());
  return prev;
}

struct Last {
  int64_t id = 0;
  crypto::Sm3Digest hash{};
};

Last LastRecord(Database& db) {
  Stmt s(db.handle(), "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1");
  if (!s.Step()) return {};
  if (s.IsNull(1)) {
    const int64_t id = s.Int(0);
    return {id, ChainLegacy(db)};
  }
  return {s.Int(0), FromHexDigest(s.Text(1))};
}

void WriteCheckpoint(Database& db, KeyState& k, const std::string& reason, bool force) {
  int64_t last_cp_audit = 0, last_cp_time = 0;
  {
    Stmt s(db.handle(), "SELECT audit_id, time_ms FROM audit_checkpoints ORDER BY id DESC LIMIT 1");
    if (s.Step()) last_cp_audit = s.Int(0), last_cp_time = s.Int(1);
  }
  const Last last = LastRecord(db);
  if (last.id == 0 || last.id == last_cp_audit) return;
  const int64_t now = NowMs();
  const bool due =
      force ||
      (k.policy.checkpoint_every > 0 && last.id - last_cp_audit >= k.policy.checkpoint_every) ||
      (k.policy.checkpoint_interval_ms > 0 &&
       now - last_cp_time >= k.policy.checkpoint_interval_ms);
  if (!due) return;
  int64_t cp_id = 1;
  {
    Stmt s(db.handle(), "SELECT COALESCE(MAX(id), 0) + 1 FROM audit_checkpoints");
    s.Step();
    cp_id = s.Int(0);
  }
  const std::string hash = crypto::ToHex(last.hash);
  Stmt ins(db.handle(),
           "INSERT INTO audit_checkpoints(id, audit_id, hash, time_ms, reason, key_id, mac) "
           "VALUES(?,?,?,?,?,?,?)");
  ins.Bind(1, cp_id)
      .Bind(2, last.id)
      .Bind(3, hash)
      .Bind(4, now)
      .Bind(5, reason)
      .Bind(6, k.key.id())
      .Bind(7, CheckpointMac(k.mac_key, cp_id, last.id, hash, now, reason))
      .Run();
}

int64_t AppendLocked(Database& db, const AuditEntry& e, KeyState* k, const std::string& cp_reason) {
  Savepoint sp(db);
  const Last last = LastRecord(db);
  AuditRecord r;
  r.id = last.id + 1;
  r.time_ms = NowMs();
  r.actor = e.actor;
  r.source = e.source;
  r.action = e.action;
  r.object = e.object;
  r.result = e.result;
  r.detail = e.detail.dump();
  r.hash = crypto::ToHex(ChainHash(last.hash, r));
  Stmt s(db.handle(),
         "INSERT INTO audit(id, time_ms, actor, source, action, object, result, detail, hash) "
         "VALUES(?,?,?,?,?,?,?,?,?)");
  s.Bind(1, r.id)
      .Bind(2, r.time_ms)
      .Bind(3, r.actor)
      .Bind(4, r.source)
      .Bind(5, r.action)
      .Bind(6, r.object)
      .Bind(7, r.result)
      .Bind(8, r.detail)
      .Bind(9, r.hash)
      .Run();
  if (k) {
    WriteCheckpoint(db, *k, cp_reason, false);
    // Set last: the release below may be the commit that runs the hook.
    k->pending = true;
    k->pending_id = r.id;
    k->pending_hash = r.hash;
    k->pending_time = r.time_ms;
  }
  sp.Release();
  return r.id;
}

std::string IsoUtc(int64_t ms) {
  const std::time_t t = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

std::string CsvField(std::string v) {
  if (!v.empty() && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@')) v.insert(0, "'");
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

struct Problem {
  int64_t id;
  std::string what;
};

// The verification on a raw connection (the server's or a read-only one).
AuditVerifyResult VerifyHandle(sqlite3* h, const std::optional<crypto::DataKey>& key,
                               const fs::path& head_file) {
  AuditVerifyResult res;
  res.keyed = key.has_value();
  const crypto::Bytes mac_key = key ? MacKey(*key) : crypto::Bytes{};
  std::vector<Problem> problems;

  struct Cp {
    int64_t id, audit_id, time_ms;
    std::string hash, reason, key_id, mac;
  };
  std::multimap<int64_t, Cp> by_audit;  // checkpoints by the record they cover
  {
    Stmt s(h,
           "SELECT id, audit_id, hash, time_ms, reason, key_id, mac FROM audit_checkpoints "
           "ORDER BY id");
    int64_t expect = 1, prev_audit = 0;
    while (s.Step()) {
      Cp c{s.Int(0), s.Int(1), s.Int(3), s.Text(2), s.Text(4), s.Text(5), s.Text(6)};
      if (c.id != expect)
        problems.push_back({prev_audit + 1, "检查点 " + std::to_string(expect) +
                                                " 缺失 / checkpoint " + std::to_string(expect) +
                                                " is missing (deleted)"});
      expect = c.id + 1;
      if (c.audit_id < prev_audit)
        problems.push_back({c.audit_id, "检查点顺序错误 / checkpoint " + std::to_string(c.id) +
                                            " goes backwards (record " +
                                            std::to_string(c.audit_id) + ")"});
      prev_audit = std::max(prev_audit, c.audit_id);
      if (key) {
        if (c.key_id != key->id())
          problems.push_back({c.audit_id, "检查点密钥不符 / checkpoint " + std::to_string(c.id) +
                                              " was made with key " + c.key_id +
                                              ", not the audit key " + key->id()});
        else if (!crypto::ConstantTimeEqual(
                     crypto::AsBytes(c.mac),
                     crypto::AsBytes(
                         CheckpointMac(mac_key, c.id, c.audit_id, c.hash, c.time_ms, c.reason))))
          problems.push_back({c.audit_id, "检查点被篡改 / checkpoint " + std::to_string(c.id) +
                                              " (record " + std::to_string(c.audit_id) +
                                              ") has a bad HMAC: forged or altered"});
        else
          ++res.checkpoints;
      }
      by_audit.emplace(c.audit_id, std::move(c));
    }
  }

  crypto::Sm3Digest prev{};
  int64_t prev_id = 0, last_good_cp = 0;
  std::map<int64_t, std::string> hashes_at_cp;  // recomputed hash at each checkpointed id
  {
    Stmt s(h, std::string(kSelectRecord) + " ORDER BY id");
    while (s.Step()) {
      const AuditRecord r = ReadRecord(s);
      if (r.id != prev_id + 1) {
        problems.push_back({prev_id + 1, "记录缺失 / records " + std::to_string(prev_id + 1) +
                                             ".." + std::to_string(r.id - 1) +
                                             " are missing (deleted)"});
        break;
      }
      if (r.hash.empty()) {
        problems.push_back({r.id, "记录未入链 / record " + std::to_string(r.id) +
                                      " has no chain hash (written before the chain; start "
                                      "the server once to chain it)"});
        break;
      }
      prev = ChainHash(prev, r);
      ++res.checked;
      prev_id = r.id;
      res.last_id = r.id;
      if (crypto::ToHex(prev) != r.hash) {
        problems.push_back({r.id, "记录被篡改 / record " + std::to_string(r.id) +
                                      " does not match its chain hash: edited, inserted or moved"});
        break;
      }
      if (by_audit.count(r.id)) hashes_at_cp[r.id] = r.hash;
    }
  }
  // A chain recomputed after an edit is consistent in itself; the checkpoints are not.
  for (const auto& [audit_id, c] : by_audit) {
    auto it = hashes_at_cp.find(audit_id);
    if (it == hashes_at_cp.end()) {
      if (audit_id > res.last_id && problems.empty())
        problems.push_back(
            {res.last_id + 1, "记录被截断 / records " + std::to_string(res.last_id + 1) + ".." +
                                  std::to_string(audit_id) + " are missing: checkpoint " +
                                  std::to_string(c.id) + " covers record " +
                                  std::to_string(audit_id)});
      continue;
    }
    if (it->second != c.hash) {
      problems.push_back({last_good_cp + 1, "链被重算 / records " +
                                                std::to_string(last_good_cp + 1) + ".." +
                                                std::to_string(audit_id) +
                                                " were altered and the chain recomputed: "
                                                "checkpoint " +
                                                std::to_string(c.id) + " does not match record " +
                                                std::to_string(audit_id)});
      break;
    }
    last_good_cp = audit_id;
  }

  if (key) {
    const fs::path head = head_file;
    if (!fs::exists(head)) {
      if (!by_audit.empty())
        problems.push_back({res.last_id + 1, "审计头文件缺失 / " + head.string() +
                                                 " is missing although checkpoints exist: the "
                                                 "tail of the log cannot be proven complete"});
    } else {
      json j;
      try {
        j = json::parse(crypto::ReadSecretFile(head));
        const int64_t id = j.at("audit_id").get<int64_t>();
        const std::string hash = j.at("hash").get<std::string>();
        const int64_t t = j.at("time_ms").get<int64_t>();
        if (j.at("key_id").get<std::string>() != key->id() ||
            !crypto::ConstantTimeEqual(crypto::AsBytes(j.at("mac").get<std::string>()),
                                       crypto::AsBytes(HeadMac(mac_key, id, hash, t))))
          problems.push_back({std::min(id, res.last_id + 1),
                              "审计头文件被篡改 / " + head.string() +
                                  " has a bad HMAC or another key: forged or altered"});
        else if (id > res.last_id)
          problems.push_back({res.last_id + 1, "记录被截断 / records " +
                                                   std::to_string(res.last_id + 1) + ".." +
                                                   std::to_string(id) +
                                                   " are missing (tail deleted): the head names "
                                                   "record " +
                                                   std::to_string(id)});
        else if (id < res.last_id && problems.empty())
          problems.push_back({id + 1, "记录无密钥覆盖 / records " + std::to_string(id + 1) + ".." +
                                          std::to_string(res.last_id) +
                                          " come after the head: appended without the key"});
        else {
          Stmt s(h, "SELECT hash FROM audit WHERE id = ?");
          s.Bind(1, id);
          if (s.Step() && s.Text(0) != hash)
            problems.push_back({id, "记录被篡改 / record " + std::to_string(id) +
                                        " does not match the head file"});
        }
      } catch (const json::exception& e) {
        problems.push_back(
            {res.last_id + 1, "审计头文件损坏 / " + head.string() + " is malformed: " + e.what()});
      }
    }
  }

  if (problems.empty()) {
    res.ok = true;
    return res;
  }
  const Problem* first = &problems[0];
  for (const auto& p : problems)
    if (p.id < first->id) first = &p;
  res.first_bad = first->id;
  res.problem = first->what;
  return res;
}

sqlite3* OpenReadOnly(const fs::path& file) {
  if (!fs::exists(file))
    throw Error(ErrorCode::kNotFound, "没有档案数据库 / no archive database " + file.string());
  sqlite3* h = nullptr;
  const int rc = sqlite3_open_v2(file.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    sqlite3_close(h);
    throw Error(ErrorCode::kIo, "cannot open " + file.string() + ": " + msg);
  }
  sqlite3_busy_timeout(h, 5000);
  return h;
}

struct HandleCloser {
  sqlite3* h;
  ~HandleCloser() { sqlite3_close(h); }
};

// The WHERE clause of Q with its values in bind order.
std::string Where(const AuditQuery& q, std::vector<json>& binds) {
  std::string w = " WHERE id > ?";
  binds.push_back(q.after_id);
  if (q.before_id > 0) w += " AND id < ?", binds.push_back(q.before_id);
  if (q.from_ms) w += " AND time_ms >= ?", binds.push_back(*q.from_ms);
  if (q.to_ms) w += " AND time_ms < ?", binds.push_back(*q.to_ms);
  if (!q.actor.empty()) w += " AND actor = ?", binds.push_back(q.actor);
  if (!q.action.empty()) w += " AND action = ?", binds.push_back(q.action);
  if (!q.object_prefix.empty()) {
    w += " AND substr(object, 1, length(?)) = ?";
    binds.push_back(q.object_prefix);
    binds.push_back(q.object_prefix);
  }
  return w;
}

std::vector<AuditRecord> ReadHandle(sqlite3* h, const AuditQuery& q, bool all) {
  std::vector<json> binds;
  std::string sql = std::string(kSelectRecord) + Where(q, binds);
  sql += q.newest_first ? " ORDER BY id DESC" : " ORDER BY id";
  if (!all && q.limit > 0) sql += " LIMIT " + std::to_string(q.limit);
  Stmt s(h, sql);
  for (size_t i = 0; i < binds.size(); ++i) {
    if (binds[i].is_string())
      s.Bind(int(i + 1), binds[i].get<std::string>());
    else
      s.Bind(int(i + 1), binds[i].get<int64_t>());
  }
  std::vector<AuditRecord> out;
  while (s.Step()) out.push_back(ReadRecord(s));
  return out;
}

size_t ExportHandle(sqlite3* h, const AuditQuery& q, const std::string& format, std::ostream& out) {
  if (format != "csv" && format != "json")
    throw Error(ErrorCode::kInvalidArgument,
                "导出格式只能是 csv 或 json / export format must be csv or json");
  const std::vector<AuditRecord> rows = ReadHandle(h, q, true);
  if (format == "csv") {
    out << "\xEF\xBB\xBF"
        << "id,time_utc,time_ms,actor,source,action,object,result,detail,hash\r\n";
    for (const auto& r : rows)
      out << r.id << ',' << IsoUtc(r.time_ms) << ',' << r.time_ms << ',' << CsvField(r.actor) << ','
          << CsvField(r.source) << ',' << CsvField(r.action) << ',' << CsvField(r.object) << ','
          << CsvField(r.result) << ',' << CsvField(r.detail) << ',' << r.hash << "\r\n";
  } else {
    for (const auto& r : rows) out << ToJson(r).dump() << "\n";
  }
  return rows.size();
}

}  // namespace

int64_t Audit(Database& db, const AuditEntry& entry) {
  const auto k = Lookup(db);
  return AppendLocked(db, entry, k.get(), "records");
}

void Audit(Database& db, const std::string& actor, const std::string& action,
           const std::string& object, const json& detail) {
  AuditEntry e;
  e.actor = actor;
  e.action = action;
  e.object = object;
  e.detail = detail;
  Audit(db, e);
}

void History(Database& db, int64_t person_id, const std::string& action, const std::string& actor,
             const json& detail) {
  Stmt s(db.handle(),
         "INSERT INTO history(person_id, action, detail, actor, time_ms) VALUES(?,?,?,?,?)");
  s.Bind(1, person_id).Bind(2, action).Bind(3, detail.dump()).Bind(4, actor).Bind(5, NowMs()).Run();
}

void AttachAuditKey(Database& db, const crypto::DataKey& audit_key, AuditPolicy policy) {
  auto k = std::make_shared<KeyState>(KeyState{audit_key, MacKey(audit_key), std::move(policy),
                                               db.handle(), db.file(), false, 0, 0, ""});
  if (k->policy.head_file.empty()) k->policy.head_file = DefaultHead(db.file());
  std::lock_guard lock(db.mutex());
  {
    std::lock_guard rlock(registry_mu);
    Registry()[&db] = k;
  }
  sqlite3_commit_hook(db.handle(), CommitHook, k.get());
  sqlite3_rollback_hook(db.handle(), RollbackHook, k.get());

  Transaction tx(db);
  const Last last = LastRecord(db);  // chains legacy records
  bool have_checkpoints = false;
  {
    Stmt s(db.handle(), "SELECT 1 FROM audit_checkpoints LIMIT 1");
    have_checkpoints = s.Step();
  }
  // Compare the head with the log; a mismatch is itself written into the log.
  AuditEntry notice;
  notice.actor = "system";
  notice.object = "audit";
  notice.result = "alert";
  const fs::path& head = k->policy.head_file;
  if (fs::exists(head)) {
    try {
      const json j = json::parse(crypto::ReadSecretFile(head));
      const int64_t id = j.at("audit_id").get<int64_t>();
      const std::string hash = j.at("hash").get<std::string>();
      const bool mac_ok =
          j.at("key_id").get<std::string>() == audit_key.id() &&
          crypto::ConstantTimeEqual(
              crypto::AsBytes(j.at("mac").get<std::string>()),
              crypto::AsBytes(HeadMac(k->mac_key, id, hash, j.at("time_ms").get<int64_t>())));
      std::string at_id;
      {
        Stmt s(db.handle(), "SELECT hash FROM audit WHERE id = ?");
        s.Bind(1, id);
        if (s.Step()) at_id = s.Text(0);
      }
      if (!mac_ok) {
        notice.action = "audit_head_invalid";
      } else if (id > last.id) {
        notice.action = "audit_head_ahead";
      } else if (at_id != hash) {
        notice.action = "audit_head_mismatch";
      } else if (id < last.id) {
        notice.action = "audit_head_behind";
      }
      notice.detail = {{"head_id", id}, {"head_hash", hash}, {"last_id", last.id}};
    } catch (const std::exception& e) {
      notice.action = "audit_head_invalid";
      notice.detail = {{"error", e.what()}, {"last_id", last.id}};
    }
  } else if (have_checkpoints) {
    notice.action = "audit_head_missing";
    notice.detail = {{"last_id", last.id}};
  }
  if (!notice.action.empty()) {
    spdlog::warn("audit: {} ({}), recorded in the audit log", notice.action, notice.detail.dump());
    AppendLocked(db, notice, k.get(), "start");
  } else if (!fs::exists(head) && last.id > 0) {
    // First start with a key on an existing log: the head starts at its last record.
    k->pending = true;
    k->pending_id = last.id;
    k->pending_hash = crypto::ToHex(last.hash);
    Stmt s(db.handle(), "SELECT time_ms FROM audit WHERE id = ?");
    s.Bind(1, last.id);
    k->pending_time = s.Step() ? s.Int(0) : 0;
  }
  WriteCheckpoint(db, *k, "start", true);
  tx.Commit();
}

void DetachAuditKey(Database& db) {
  const auto k = Lookup(db);
  if (!k) return;
  std::lock_guard lock(db.mutex());
  try {
    WriteCheckpoint(db, *k, "shutdown", true);
  } catch (const std::exception& e) {
    spdlog::error("audit: shutdown checkpoint failed: {}", e.what());
  }
  sqlite3_commit_hook(db.handle(), nullptr, nullptr);
  sqlite3_rollback_hook(db.handle(), nullptr, nullptr);
  std::lock_guard rlock(registry_mu);
  Registry().erase(&db);
}

void AuditCheckpoint(Database& db, const std::string& reason) {
  const auto k = Lookup(db);
  if (!k) return;
  WriteCheckpoint(db, *k, reason, true);
}

json AuditVerifyResult::ToJson() const {
  json j = {{"ok", ok},
            {"checked", checked},
            {"checkpoints", checkpoints},
            {"last_id", last_id},
            {"keyed", keyed}};
  if (first_bad) j["first_bad"] = *first_bad;
  if (!problem.empty()) j["problem"] = problem;
  return j;
}

AuditVerifyResult VerifyAudit(Database& db, const std::optional<crypto::DataKey>& audit_key,
                              const fs::path& head_file) {
  return VerifyHandle(db.handle(), audit_key,
                      head_file.empty() ? DefaultHead(db.file()) : head_file);
}

AuditVerifyResult VerifyAuditFile(const fs::path& archive_db,
                                  const std::optional<crypto::DataKey>& audit_key,
                                  const fs::path& head_file) {
  HandleCloser c{OpenReadOnly(archive_db)};
  // One read transaction: a consistent snapshot while the server keeps writing.
  sqlite3_exec(c.h, "BEGIN", nullptr, nullptr, nullptr);
  return VerifyHandle(c.h, audit_key, head_file.empty() ? DefaultHead(archive_db) : head_file);
}

json ToJson(const AuditRecord& r) {
  json detail;
  try {
    detail = json::parse(r.detail.empty() ? "{}" : r.detail);
  } catch (const json::exception&) {
    detail = r.detail;
  }
  return {{"id", r.id},         {"time_ms", r.time_ms}, {"time", IsoUtc(r.time_ms)},
          {"actor", r.actor},   {"source", r.source},   {"action", r.action},
          {"object", r.object}, {"result", r.result},   {"detail", detail},
          {"hash", r.hash}};
}

std::vector<AuditRecord> ReadAudit(Database& db, const AuditQuery& q) {
  return ReadHandle(db.handle(), q, false);
}

size_t ExportAudit(Database& db, const AuditQuery& q, const std::string& format,
                   std::ostream& out) {
  return ExportHandle(db.handle(), q, format, out);
}

size_t ExportAuditFile(const fs::path& archive_db, const AuditQuery& q, const std::string& format,
                       std::ostream& out) {
  HandleCloser c{OpenReadOnly(archive_db)};
  return ExportHandle(c.h, q, format, out);
}

}  // namespace anju::server
