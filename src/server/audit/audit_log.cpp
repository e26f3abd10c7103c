#include "server/audit/audit_log.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "crypto/sm3.h"
#include "db/postgres.h"
#include "server/storage/audit_repo.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::AuditRepo;

namespace {

constexpr std::string_view kRecordLabel = "anju-audit/v1";
constexpr std::string_view kMacLabel = "anju/audit/v1/hmac-sm3";

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
  // The newest record written by the open transaction, for the head file.
  bool pending = false;
  int64_t pending_id = 0, pending_time = 0;
  std::string pending_hash;
};

// The audit key of each open database (AttachAuditKey … DetachAuditKey).
std::mutex registry_mu;
std::map<const db::Db*, std::shared_ptr<KeyState>>& Registry() {
  static std::map<const db::Db*, std::shared_ptr<KeyState>> r;
  return r;
}

std::shared_ptr<KeyState> Lookup(const db::Db* db) {
  std::lock_guard lock(registry_mu);
  auto& r = Registry();
  auto it = r.find(db);
  return it == r.end() ? nullptr : it->second;
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

// The head is written just before the transaction that added records commits: a head that
// cannot be written turns the commit into a rollback (no audit record without its head),
// and a crash in between leaves the head one transaction ahead, which AttachAuditKey
// records at the next start.
void WriteHeadBeforeCommit(db::Conn& conn, const std::shared_ptr<KeyState>& k, int64_t id) {
  conn.BeforeCommit([k, id] {
    if (!k->pending || k->pending_id != id) return;  // a later record's hook writes it
    try {
      WriteHead(*k, k->pending_id, k->pending_hash, k->pending_time);
      k->pending = false;
    } catch (const std::exception& e) {
      spdlog::error("audit head {} not written, transaction rolled back: {}",
                    k->policy.head_file.string(), e.what());
      throw;
    }
  });
}

crypto::Sm3Digest FromHexDigest(const std::string& hex) {
  crypto::Sm3Digest d{};
  const crypto::Bytes b = crypto::FromHex(hex);
  if (b.size() != d.size()) throw Error(ErrorCode::kCorrupt, "audit hash of the wrong size");
  std::copy(b.begin(), b.end(), d.begin());
  return d;
}

// Chains records written before the chain existed (schema v3). Returns the last hash.
crypto::Sm3Digest ChainLegacy(db::Conn& conn) {
  crypto::Sm3Digest prev{};
  std::vector<std::pair<int64_t, std::string>> updates;
  AuditRepo::ForEach(conn, [&](const AuditRecord& r) {
    if (!r.hash.empty()) {
      prev = FromHexDigest(r.hash);
      return true;
    }
    prev = ChainHash(prev, r);
    updates.emplace_back(r.id, crypto::ToHex(prev));
    return true;
  });
  for (const auto& [id, hash] : updates) AuditRepo::SetHash(conn, id, hash);
  if (!updates.empty())
    spdlog::info("audit: chained {} records written before the hash chain", updates.size());
  return prev;
}

struct Last {
  int64_t id = 0;
  crypto::Sm3Digest hash{};
};

Last LastRecord(db::Conn& conn) {
  const auto last = AuditRepo::Last(conn);
  if (!last) return {};
  if (last->second.empty()) return {last->first, ChainLegacy(conn)};
  return {last->first, FromHexDigest(last->second)};
}

void WriteCheckpoint(db::Conn& conn, KeyState& k, const std::string& reason, bool force) {
  // The next checkpoint id is the last + 1: on PostgreSQL two servers starting or stopping
  // at once would both take it, so under the chain's lock like the records (part of the
  // caller's transaction when there is one).
  db::Transaction tx(conn);
  db::LockInTransaction(conn, db::AdvisoryKey("audit-chain"));
  const auto last_cp = AuditRepo::LastCheckpoint(conn);
  const int64_t last_cp_audit = last_cp ? last_cp->audit_id : 0;
  const int64_t last_cp_time = last_cp ? last_cp->time_ms : 0;
  const Last last = LastRecord(conn);
  if (last.id == 0 || last.id == last_cp_audit) return;
  const int64_t now = NowMs();
  const bool due =
      force ||
      (k.policy.checkpoint_every > 0 && last.id - last_cp_audit >= k.policy.checkpoint_every) ||
      (k.policy.checkpoint_interval_ms > 0 &&
       now - last_cp_time >= k.policy.checkpoint_interval_ms);
  if (!due) return;
  storage::CheckpointRow cp;
  cp.id = AuditRepo::NextCheckpointId(conn);
  cp.audit_id = last.id;
  cp.hash = crypto::ToHex(last.hash);
  cp.time_ms = now;
  cp.reason = reason;
  cp.key_id = k.key.id();
  cp.mac = CheckpointMac(k.mac_key, cp.id, last.id, cp.hash, now, reason);
  AuditRepo::InsertCheckpoint(conn, cp);
  tx.Commit();
}

int64_t AppendLocked(db::Conn& conn, const AuditEntry& e, const std::shared_ptr<KeyState>& k,
                     const std::string& cp_reason) {
  // Its own transaction in autocommit mode (record and checkpoint commit together), part of
  // the caller's otherwise.
  db::Transaction tx(conn);
  // Read the head of the chain, append after it: SQLite's single writer serialises that, on
  // PostgreSQL two servers would both append after the same record (docs/storage.md).
  db::LockInTransaction(conn, db::AdvisoryKey("audit-chain"));
  const Last last = LastRecord(conn);
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
  AuditRepo::Insert(conn, r);
  if (k) {
    WriteCheckpoint(conn, *k, cp_reason, false);
    k->pending = true;
    k->pending_id = r.id;
    k->pending_hash = r.hash;
    k->pending_time = r.time_ms;
    WriteHeadBeforeCommit(conn, k, r.id);
  }
  tx.Commit();
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
// SHARED: several server processes append to this log (PostgreSQL): the head file is
// this process's own last record, and records after it by the others are expected.
AuditVerifyResult VerifyHandle(db::Conn& h, const std::optional<crypto::DataKey>& key,
                               const fs::path& head_file, bool shared = false) {
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
    int64_t expect = 1, prev_audit = 0;
    for (const auto& row : AuditRepo::Checkpoints(h)) {
      Cp c{row.id, row.audit_id, row.time_ms, row.hash, row.reason, row.key_id, row.mac};
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
  AuditRepo::ForEach(h, [&](const AuditRecord& r) {
    if (r.id != prev_id + 1) {
      problems.push_back({prev_id + 1, "记录缺失 / records " + std::to_string(prev_id + 1) + ".." +
                                           std::to_string(r.id - 1) + " are missing (deleted)"});
      return false;
    }
    if (r.hash.empty()) {
      problems.push_back({r.id, "记录未入链 / record " + std::to_string(r.id) +
                                    " has no chain hash (written before the chain; start "
                                    "the server once to chain it)"});
      return false;
    }
    prev = ChainHash(prev, r);
    ++res.checked;
    prev_id = r.id;
    res.last_id = r.id;
    if (crypto::ToHex(prev) != r.hash) {
      problems.push_back({r.id, "记录被篡改 / record " + std::to_string(r.id) +
                                    " does not match its chain hash: edited, inserted or moved"});
      return false;
    }
    if (by_audit.count(r.id)) hashes_at_cp[r.id] = r.hash;
    return true;
  });
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
        else if (id < res.last_id && problems.empty() && !shared)
          problems.push_back({id + 1, "记录无密钥覆盖 / records " + std::to_string(id + 1) + ".." +
                                          std::to_string(res.last_id) +
                                          " come after the head: appended without the key"});
        else {
          const auto stored = AuditRepo::HashOf(h, id);
          if (stored && *stored != hash)
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

std::unique_ptr<db::Db> OpenReadOnly(const fs::path& file) {
  db::SqliteOptions o;
  o.name = "archive";
  o.read_only = true;
  return db::OpenSqlite(file, {}, o);
}

size_t ExportHandle(db::Conn& h, const AuditQuery& q, const std::string& format,
                    std::ostream& out) {
  if (format != "csv" && format != "json")
    throw Error(ErrorCode::kInvalidArgument,
                "导出格式只能是 csv 或 json / export format must be csv or json");
  const std::vector<AuditRecord> rows = AuditRepo::Query(h, q, true);
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

int64_t Audit(db::Conn& conn, const AuditEntry& entry) {
  return AppendLocked(conn, entry, Lookup(conn.owner()), "records");
}

void Audit(db::Conn& conn, const std::string& actor, const std::string& action,
           const std::string& object, const json& detail) {
  AuditEntry e;
  e.actor = actor;
  e.action = action;
  e.object = object;
  e.detail = detail;
  Audit(conn, e);
}

void History(db::Conn& conn, int64_t person_id, const std::string& action, const std::string& actor,
             const json& detail) {
  AuditRepo::InsertHistory(conn, person_id, action, detail.dump(), actor, NowMs());
}

void AttachAuditKey(db::Db& db, const crypto::DataKey& audit_key, AuditPolicy policy) {
  // The head file is one server's file, written before each of its commits. With several
  // servers on one PostgreSQL archive no single file follows the log: each server's head
  // names its own last record (which must stay in the log, unchanged), and records after it
  // are the others' (docs/storage.md, "The audit chain on PostgreSQL").
  const bool shared = db.dialect() != db::Dialect::kSqlite;
  if (shared && policy.head_file.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "审计头文件须指定 / the audit key on a PostgreSQL archive needs the server's own "
                "head file (AuditPolicy::head_file)");
  auto k = std::make_shared<KeyState>(
      KeyState{audit_key, MacKey(audit_key), std::move(policy), false, 0, 0, ""});
  if (k->policy.head_file.empty()) k->policy.head_file = DefaultHead(db.file());
  auto conn = db.Acquire();
  {
    std::lock_guard rlock(registry_mu);
    Registry()[&db] = k;
  }

  db::Transaction tx(conn);
  const Last last = LastRecord(conn);  // chains legacy records
  const bool have_checkpoints = AuditRepo::LastCheckpoint(conn).has_value();
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
      const std::string at_id = AuditRepo::HashOf(conn, id).value_or("");
      if (!mac_ok) {
        notice.action = "audit_head_invalid";
      } else if (id > last.id) {
        notice.action = "audit_head_ahead";
      } else if (at_id != hash) {
        notice.action = "audit_head_mismatch";
      } else if (id < last.id && !shared) {
        notice.action = "audit_head_behind";
      }
      notice.detail = {{"head_id", id}, {"head_hash", hash}, {"last_id", last.id}};
    } catch (const std::exception& e) {
      notice.action = "audit_head_invalid";
      notice.detail = {{"error", e.what()}, {"last_id", last.id}};
    }
  } else if (have_checkpoints && !shared) {
    // (Shared: a server new to the installation has no head yet; it starts at the last
    // record below, like a first start.)
    notice.action = "audit_head_missing";
    notice.detail = {{"last_id", last.id}};
  }
  if (!notice.action.empty()) {
    spdlog::warn("audit: {} ({}), recorded in the audit log", notice.action, notice.detail.dump());
    AppendLocked(conn, notice, k, "start");
  } else if (!fs::exists(head) && last.id > 0) {
    // First start with a key on an existing log: the head starts at its last record.
    k->pending = true;
    k->pending_id = last.id;
    k->pending_hash = crypto::ToHex(last.hash);
    k->pending_time = AuditRepo::TimeOf(conn, last.id).value_or(0);
    WriteHeadBeforeCommit(conn, k, last.id);
  }
  WriteCheckpoint(conn, *k, "start", true);
  tx.Commit();
}

void DetachAuditKey(db::Db& db) {
  const auto k = Lookup(&db);
  if (!k) return;
  {
    auto conn = db.Acquire();
    try {
      WriteCheckpoint(conn, *k, "shutdown", true);
    } catch (const std::exception& e) {
      spdlog::error("audit: shutdown checkpoint failed: {}", e.what());
    }
  }
  std::lock_guard rlock(registry_mu);
  Registry().erase(&db);
}

void AuditCheckpoint(db::Conn& conn, const std::string& reason) {
  const auto k = Lookup(conn.owner());
  if (!k) return;
  WriteCheckpoint(conn, *k, reason, true);
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

AuditVerifyResult VerifyAudit(db::Conn& conn, const std::optional<crypto::DataKey>& audit_key,
                              const fs::path& head_file) {
  // Without a key only the chain is checked, which works on both backends; the keyed check
  // needs a head file: next to a SQLite archive.db, or the server's own on PostgreSQL.
  const bool shared = conn.dialect() != db::Dialect::kSqlite;
  if (audit_key && head_file.empty() && shared)
    throw Error(ErrorCode::kInvalidArgument,
                "审计头文件须指定 / a keyed audit verification of a PostgreSQL archive needs the "
                "server's head file (docs/storage.md)");
  return VerifyHandle(
      conn, audit_key,
      head_file.empty() && conn.owner() ? DefaultHead(conn.owner()->file()) : head_file, shared);
}

AuditVerifyResult VerifyAuditFile(const fs::path& archive_db,
                                  const std::optional<crypto::DataKey>& audit_key,
                                  const fs::path& head_file) {
  const auto db = OpenReadOnly(archive_db);
  auto conn = db->Acquire();
  // A consistent snapshot while the server keeps writing.
  db::ReadSnapshot snapshot(conn);
  return VerifyHandle(conn, audit_key, head_file.empty() ? DefaultHead(archive_db) : head_file);
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

std::vector<AuditRecord> ReadAudit(db::Conn& conn, const AuditQuery& q) {
  return AuditRepo::Query(conn, q, false);
}

json LatestAudit(db::Conn& conn, const std::string& action) {
  const auto r = AuditRepo::LatestWithAction(conn, action);
  if (!r) return nullptr;
  json detail;
  try {
    detail = json::parse(r->detail);
  } catch (const json::exception&) {
    detail = r->detail;
  }
  return {{"time_ms", r->time_ms}, {"actor", r->actor}, {"detail", detail}};
}

size_t ExportAudit(db::Conn& conn, const AuditQuery& q, const std::string& format,
                   std::ostream& out) {
  return ExportHandle(conn, q, format, out);
}

size_t ExportAuditFile(const fs::path& archive_db, const AuditQuery& q, const std::string& format,
                       std::ostream& out) {
  const auto db = OpenReadOnly(archive_db);
  auto conn = db->Acquire();
  return ExportHandle(conn, q, format, out);
}

}  // namespace anju::server
