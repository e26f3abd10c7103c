// The PostgreSQL backend of db.h through libpq: a pool of connections, statements prepared
// once per connection, parameters sent as text (bytea as binary), results read whole in
// text format, numbered migrations in schema_version under an advisory lock.
#include "db/postgres.h"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/clock.h"
#include "core/error.h"
#include "core/sha256.h"
#include "db/process.h"

namespace anju::db {

namespace {

namespace fs = std::filesystem;

// Type OIDs (src/include/catalog/pg_type.dat); stable across PostgreSQL versions.
constexpr Oid kBoolOid = 16;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
constexpr Oid kFloat8Oid = 701;

// The lock that serialises migrations of one database across servers ("anju" + 1).
constexpr int64_t kMigrationLockKey = 0x616e6a7500000001;

// "" or a lower-case SQL identifier that needs no quoting rules beyond double quotes.
bool IsPlainIdentifier(const std::string& s) {
  if (s.size() > 63) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char ch = s[i];
    const bool ok = (ch >= 'a' && ch <= 'z') || ch == '_' || (i > 0 && ch >= '0' && ch <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string TrimMessage(const char* m) {
  std::string s = m ? m : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool StartsWith(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

// SQLSTATE (Appendix A of the PostgreSQL manual) → anju::Error, like sqlite.cpp does for
// SQLite's result codes.
[[noreturn]] void ThrowSqlState(const std::string& name, const std::string& state,
                                const std::string& detail, const std::string& what) {
  const std::string msg =
      name + " database: " + what + ": " + detail + (state.empty() ? "" : " [" + state + "]");
  const std::string cls = state.substr(0, 2);
  if (cls == "23") throw Error(ErrorCode::kInvalidArgument, msg, "constraint");
  if (state == "53100" || (state == "58030" && detail.find("No space left") != std::string::npos))
    throw Error(ErrorCode::kStorageFull, "磁盘已满 / disk full: " + msg);
  if (state == "40001" || state == "40P01" ||
      (state == "0A000" && detail.find("cached plan") != std::string::npos))
    throw Error(ErrorCode::kUnavailable, "请重试 / try again: " + msg, "retry");
  if (state.empty() || cls == "08" || cls == "53" || state == "57P01" || state == "57P02" ||
      state == "57P03" || state == "57014" || state == "55P03")
    throw Error(ErrorCode::kUnavailable, "数据库不可用 / database unavailable: " + msg);
  if (state == "25P02")
    throw Error(ErrorCode::kInternal,
                msg +
                    " (a statement failed earlier in this transaction, which PostgreSQL "
                    "then aborts: docs/storage.md)",
                "aborted");
  if (state == "XX001" || state == "XX002")
    throw Error(ErrorCode::kCorrupt, "数据库损坏 / damaged " + msg);
  if (cls == "22") throw Error(ErrorCode::kInvalidArgument, msg);
  if (cls == "42" || cls == "0A") throw Error(ErrorCode::kInternal, msg);
  throw Error(ErrorCode::kIo, msg);
}

// Connection string for the command-line tools: URL's parameters without the password
// (which goes in PGPASSWORD, out of the process list).
std::pair<std::string, std::string> ToolConnInfo(const std::string& url) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &err);
  if (!opts) {
    const std::string m = err ? TrimMessage(err) : "malformed";
    PQfreemem(err);
    throw Error(ErrorCode::kInvalidArgument, "database URL: " + m);
  }
  std::string conninfo, password;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    if (std::strcmp(o->keyword, "password") == 0) {
      password = o->val;
      continue;
    }
    std::string v;
    for (const char* p = o->val; *p; ++p) {
      if (*p == '\'' || *p == '\\') v += '\\';
      v += *p;
    }
    conninfo += std::string(conninfo.empty() ? "" : " ") + o->keyword + "='" + v + "'";
  }
  PQconninfoFree(opts);
  return {conninfo, password};
}

// Where pg_dump / pg_restore live for a server of SERVER_VERSION (PQserverVersion).
std::string ToolPath(const PostgresOptions& o, int server_version, const std::string& tool) {
  if (!o.tools_dir.empty()) return (fs::path(o.tools_dir) / tool).string();
  const fs::path p =
      fs::path("/usr/lib/postgresql") / std::to_string(server_version / 10000) / "bin" / tool;
  std::error_code ec;
  return fs::exists(p, ec) ? p.string() : tool;
}

// The largest $N in SQL: the number of parameters the statement takes.
int CountParams(std::string_view sql) {
  int n = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {
      const size_t end = sql.find(c, i + 1);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const size_t end = sql.find('\n', i);
      if (end == std::string_view::npos) break;
      i = end;
    } else if (c == '$' && i + 1 < sql.size() && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      const char prev = i ? sql[i - 1] : ' ';
      const bool in_identifier =
          std::isalnum(static_cast<unsigned char>(prev)) || prev == '_' || prev == '$';
      size_t j = i + 1;
      int v = 0;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') v = v * 10 + (sql[j++] - '0');
      if (!in_identifier) n = std::max(n, v);
      i = j - 1;
    }
  }
  return n;
}

class PgConn;

class PgStmt final : public StmtBackend {
 public:
  PgStmt(PgConn& c, std::string_view sql);
  ~PgStmt() override { Clear(); }

  void BindInt(int i, int64_t v) override { Set(i, std::to_string(v), kInt8Oid, false); }
  void BindDouble(int i, double v) override {
    std::string s;
    if (std::isnan(v))
      s = "NaN";
    else if (std::isinf(v))
      s = v > 0 ? "Infinity" : "-Infinity";
    else {
      char buf[32];
      auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
      s.assign(buf, r.ptr);
    }
    Set(i, std::move(s), kFloat8Oid, false);
  }
  void BindText(int i, std::string_view v) override;
  void BindBlob(int i, std::span<const uint8_t> v) override {
    Set(i, std::string(reinterpret_cast<const char*>(v.data()), v.size()), kByteaOid, true);
  }
  void BindNull(int i) override {
    Check(i);
    values_[size_t(i - 1)].reset();
    types_[size_t(i - 1)] = 0;
    binary_[size_t(i - 1)] = 0;
  }
  bool Step() override;
  void Reset() override {
    Clear();
    for (auto& v : values_) v.reset();
    for (auto& t : types_) t = 0;
    for (auto& b : binary_) b = 0;
  }
  bool IsNull(int col) const override { return !Valid(col) || PQgetisnull(res_, row_, col); }
  int64_t Int(int col) const override {
    if (IsNull(col)) return 0;
    const char* v = PQgetvalue(res_, row_, col);
    if (PQftype(res_, col) == kBoolOid) return v[0] == 't' ? 1 : 0;
    const size_t len = size_t(PQgetlength(res_, row_, col));
    int64_t out = 0;
    auto r = std::from_chars(v, v + len, out);
    if (r.ec == std::errc() && r.ptr == v + len) return out;
    // numeric with a fraction, a float, an out-of-range value: truncated as SQLite does.
    const double d = std::strtod(v, nullptr);
    if (std::isnan(d)) return 0;
    if (d >= 9.2233720368547758e18) return INT64_MAX;
    if (d <= -9.2233720368547758e18) return INT64_MIN;
    return int64_t(d);
  }
  double Double(int col) const override {
    if (IsNull(col)) return 0;
    const char* v = PQgetvalue(res_, row_, col);
    if (PQftype(res_, col) == kBoolOid) return v[0] == 't' ? 1 : 0;
    return std::strtod(v, nullptr);  // also "Infinity", "-Infinity", "NaN"
  }
  std::string Text(int col) const override {
    if (IsNull(col)) return {};
    const Oid type = PQftype(res_, col);
    if (type == kByteaOid) {
      auto b = Blob(col);
      return std::string(b.begin(), b.end());
    }
    const char* v = PQgetvalue(res_, row_, col);
    if (type == kBoolOid) return v[0] == 't' ? "1" : "0";  // as SQLite would give it
    return std::string(v, size_t(PQgetlength(res_, row_, col)));
  }
  std::vector<uint8_t> Blob(int col) const override {
    if (IsNull(col)) return {};
    const auto* v = reinterpret_cast<const uint8_t*>(PQgetvalue(res_, row_, col));
    if (PQftype(res_, col) != kByteaOid)
      return std::vector<uint8_t>(v, v + PQgetlength(res_, row_, col));
    size_t n = 0;
    unsigned char* raw = PQunescapeBytea(v, &n);
    if (!raw) throw Error(ErrorCode::kUnavailable, "out of memory decoding bytea");
    std::vector<uint8_t> out(raw, raw + n);
    PQfreemem(raw);
    return out;
  }

 private:
  void Check(int i) const;
  void Set(int i, std::string v, Oid type, bool binary) {
    Check(i);
    values_[size_t(i - 1)] = std::move(v);
    types_[size_t(i - 1)] = type;
    binary_[size_t(i - 1)] = binary ? 1 : 0;
  }
  bool Valid(int col) const {
    return res_ && row_ >= 0 && row_ < rows_ && col >= 0 && col < PQnfields(res_);
  }
  void Clear() {
    if (res_) PQclear(res_);
    res_ = nullptr;
    executed_ = false;
    row_ = -1;
    rows_ = 0;
  }

  PgConn& c_;
  std::string sql_;
  std::vector<std::optional<std::string>> values_;
  std::vector<Oid> types_;
  std::vector<int> binary_;
  PGresult* res_ = nullptr;
  bool executed_ = false;
  int row_ = -1;
  int rows_ = 0;
};

// One pooled connection. Reconnects (a fresh session) when leased after it broke.
class PgConn final : public ConnBackend {
 public:
  PgConn(const std::string& name, const std::string& url, const PostgresOptions& o)
      : name_(name), url_(url), o_(o) {}
  ~PgConn() override { Close(); }

  Dialect dialect() const override { return Dialect::kPostgres; }
  std::unique_ptr<StmtBackend> Prepare(std::string_view sql) override {
    return std::make_unique<PgStmt>(*this, sql);
  }
  void Exec(std::string_view sql) override {
    PGresult* r = PQexec(pg_, std::string(sql).c_str());
    Consume(r, std::string(sql.substr(0, 60)));
    PQclear(r);
  }
  int64_t LastInsertId() override {
    // lastval() fails (and would abort the transaction) before any nextval in the session;
    // a seed sequence drawn at connect keeps it defined (0 until a real insert).
    PGresult* r = PQexec(pg_, "SELECT lastval()");
    Consume(r, "lastval");
    const int64_t v = std::strtoll(PQgetvalue(r, 0, 0), nullptr, 10);
    PQclear(r);
    return v;
  }
  int64_t Changes() override { return changes_; }
  void Begin() override { Exec("BEGIN"); }
  void Commit() override {
    PGresult* r = PQexec(pg_, "COMMIT");
    Consume(r, "commit");
    // COMMIT of a transaction a failed statement aborted answers ROLLBACK, without error.
    const bool rolled_back = std::strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
      throw Error(ErrorCode::kInternal,
                  name_ +
                      " database: commit: the transaction was aborted by an earlier error "
                      "and rolled back (docs/storage.md)",
                  "aborted");
  }
  void Rollback() noexcept override {
    if (!pg_ || PQstatus(pg_) != CONNECTION_OK) return;
    const auto s = PQtransactionStatus(pg_);
    if (s == PQTRANS_INTRANS || s == PQTRANS_INERROR) PQclear(PQexec(pg_, "ROLLBACK"));
  }
  void* native() override { return pg_; }

  // ---- for the pool and the statements ----

  // Before a lease: a live session, reconnecting if the server closed this one (restart,
  // admin termination) or it broke while in use. Throws kUnavailable when it cannot.
  void EnsureConnected() {
    if (pg_ && PQstatus(pg_) == CONNECTION_OK) {
      // An idle session gets nothing from the server unless it is being ended (restart,
      // pg_terminate_backend: a FATAL message, then the close). Anything to read = stale.
      pollfd p{PQsocket(pg_), POLLIN, 0};
      if (poll(&p, 1, 0) == 0) return;
    }
    Close();
    const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
    const std::string timeout = std::to_string(o_.connect_timeout_s);
    // dbname comes last and is expanded: parameters in the URL win over these defaults.
    const char* values[] = {timeout.c_str(), "anju", url_.c_str(), nullptr};
    pg_ = PQconnectdbParams(keys, values, 1);
    if (!pg_) throw Error(ErrorCode::kUnavailable, name_ + " database: out of memory");
    if (PQstatus(pg_) != CONNECTION_OK) {
      const std::string m = TrimMessage(PQerrorMessage(pg_));
      Close();
      throw Error(ErrorCode::kUnavailable,
                  "数据库不可用 / database unavailable: " + name_ + " database: connect: " + m);
    }
    PQsetNoticeProcessor(
        pg_, [](void*, const char*) {}, nullptr);
    // pg_catalog stays searched implicitly; a schema that does not exist yet (before the
    // migrations create it) is allowed in a search_path.
    if (!o_.schema.empty()) Exec("SET search_path TO \"" + o_.schema + "\"");
    try {
      Exec(
          "CREATE TEMP SEQUENCE IF NOT EXISTS anju_lastval_seed MINVALUE 0 START 0; "
          "SELECT nextval('anju_lastval_seed')");
    } catch (const Error&) {
      // A read-only standby has no temporary objects: LastInsertId is moot there.
      if (PQstatus(pg_) != CONNECTION_OK) {
        Close();
        throw;
      }
    }
    changes_ = 0;
  }

  // After a lease: back to a clean session for the next holder.
  void OnRelease() noexcept {
    if (!pg_) return;
    if (PQstatus(pg_) != CONNECTION_OK) return Close();
    const auto s = PQtransactionStatus(pg_);
    if (s == PQTRANS_ACTIVE || s == PQTRANS_UNKNOWN) return Close();
    if (s != PQTRANS_IDLE) PQclear(PQexec(pg_, "ROLLBACK"));
    if (holds_locks_) {
      PGresult* r = PQexec(pg_, "SELECT pg_advisory_unlock_all()");
      const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
      PQclear(r);
      if (!ok) return Close();  // the server drops the locks with the session
      holds_locks_ = false;
    }
  }

  void Close() noexcept {
    if (pg_) PQfinish(pg_);
    pg_ = nullptr;
    prepared_.clear();
    holds_locks_ = false;
  }

  PGconn* pg() { return pg_; }
  const std::string& name() const { return name_; }
  void set_holds_locks() { holds_locks_ = true; }

  // Runs a statement (prepared once per connection and parameter types when the options
  // say so); returns its result, owned by the caller.
  PGresult* Run(const std::string& sql, int n, const Oid* types, const char* const* values,
                const int* lengths, const int* binary, bool retried = false) {
    if (!o_.prepare) {
      PGresult* r = PQexecParams(pg_, sql.c_str(), n, types, values, lengths, binary, 0);
      Consume(r, sql.substr(0, 60));
      return r;
    }
    std::string key = sql;
    key.push_back('\0');
    key.append(reinterpret_cast<const char*>(types), sizeof(Oid) * size_t(n));
    auto it = prepared_.find(key);
    if (it == prepared_.end()) {
      if (prepared_.size() >= 1000) {  // statements built on the fly: start over
        PQclear(PQexec(pg_, "DEALLOCATE ALL"));
        prepared_.clear();
      }
      const std::string stmt_name = "anju_" + std::to_string(++prepared_count_);
      PGresult* p = PQprepare(pg_, stmt_name.c_str(), sql.c_str(), n, types);
      Consume(p, sql.substr(0, 60));
      PQclear(p);
      it = prepared_.emplace(std::move(key), stmt_name).first;
    }
    PGresult* r = PQexecPrepared(pg_, it->second.c_str(), n, values, lengths, binary, 0);
    const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (state && std::strcmp(state, "0A000") == 0) {
      // "cached plan must not change result type": another server changed the table (a
      // migration). Prepare again; outside a transaction nothing was lost, so retry now.
      prepared_.erase(it);
      if (PQtransactionStatus(pg_) == PQTRANS_IDLE && !retried) {
        PQclear(r);
        return Run(sql, n, types, values, lengths, binary, true);
      }
    }
    Consume(r, sql.substr(0, 60));
    return r;
  }

  // Throws (and frees R) when R is an error; records the rows a DML statement changed.
  void Consume(PGresult* r, const std::string& what) {
    const auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
      const std::string_view cmd = PQcmdStatus(r);
      if (StartsWith(cmd, "INSERT") || StartsWith(cmd, "UPDATE") || StartsWith(cmd, "DELETE") ||
          StartsWith(cmd, "MERGE"))
        changes_ = std::strtoll(PQcmdTuples(r), nullptr, 10);
      return;
    }
    changes_ = 0;
    const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
    std::string detail = TrimMessage(r ? PQresultErrorMessage(r) : nullptr);
    if (detail.empty()) detail = TrimMessage(PQerrorMessage(pg_));
    std::string sqlstate = state ? state : "";
    if (PQstatus(pg_) != CONNECTION_OK && !StartsWith(sqlstate, "57P"))
      sqlstate.clear();  // the connection broke: kUnavailable
    if (r) PQclear(r);
    ThrowSqlState(name_, sqlstate, detail, what);
  }

 private:
  const std::string& name_;
  const std::string& url_;
  const PostgresOptions& o_;
  PGconn* pg_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;
  uint64_t prepared_count_ = 0;
  int64_t changes_ = 0;
  bool holds_locks_ = false;
};

PgStmt::PgStmt(PgConn& c, std::string_view sql) : c_(c), sql_(ToDollarParams(sql)) {
  const size_t n = size_t(CountParams(sql_));
  values_.resize(n);
  types_.resize(n);
  binary_.resize(n);
}

void PgStmt::Check(int i) const {
  if (i < 1 || size_t(i) > values_.size())
    throw Error(ErrorCode::kInternal, c_.name() + " database: parameter " + std::to_string(i) +
                                          " out of range (" + std::to_string(values_.size()) +
                                          ") in " + sql_.substr(0, 60));
}

void PgStmt::BindText(int i, std::string_view v) {
  // Text goes as a C string: a NUL byte would cut it short without a word.
  if (v.find('\0') != std::string_view::npos)
    throw Error(ErrorCode::kInvalidArgument,
                c_.name() + " database: text with a NUL byte (bind it as a blob)");
  Set(i, std::string(v), 0, false);  // untyped, like a literal: the server infers the type
}

bool PgStmt::Step() {
  if (!executed_) {
    const size_t n = values_.size();
    std::vector<const char*> values(n);
    std::vector<int> lengths(n);
    for (size_t i = 0; i < n; ++i) {
      values[i] = values_[i] ? values_[i]->c_str() : nullptr;
      lengths[i] = values_[i] ? int(values_[i]->size()) : 0;
    }
    res_ = c_.Run(sql_, int(n), types_.data(), values.data(), lengths.data(), binary_.data());
    executed_ = true;
    rows_ = PQresultStatus(res_) == PGRES_TUPLES_OK ? PQntuples(res_) : 0;
    row_ = -1;
  }
  if (row_ < rows_) ++row_;
  return row_ < rows_;
}

class PgDb final : public Db {
 public:
  PgDb(const std::string& url, const Migrations& migrations, const PostgresOptions& o)
      : Db(o.name), url_(url), o_(o) {
    if (o_.pool_size < 1) o_.pool_size = 1;
    if (!IsPlainIdentifier(o_.schema))
      throw Error(ErrorCode::kInvalidArgument,
                  name() + " database: schema \"" + o_.schema +
                      "\" is not a lower-case identifier (letters, digits, '_')");
    for (int i = 0; i < o_.pool_size; ++i) {
      conns_.push_back(std::make_unique<PgConn>(name(), url_, o_));
      free_.push_back(conns_.back().get());
    }
    Migrate(migrations.postgres);
  }

  Dialect dialect() const override { return Dialect::kPostgres; }

  Conn Acquire() override {
    PgConn* c = nullptr;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::milliseconds(o_.acquire_timeout_ms),
                        [&] { return !free_.empty(); }))
        throw Error(ErrorCode::kUnavailable, "数据库繁忙 / database busy: " + name() +
                                                 " database: all " + std::to_string(o_.pool_size) +
                                                 " connections are in use");
      c = free_.front();
      free_.pop_front();
    }
    try {
      c->EnsureConnected();
    } catch (...) {
      Release(c);
      throw;
    }
    return Conn(
        c, [this, c] { Release(c); }, this);
  }

  int schema_version() const override { return version_; }

  void CopyTo(const fs::path& file) override {
    int server_version = 0;
    {
      Conn c = Acquire();
      server_version = PQserverVersion(static_cast<PGconn*>(c.backend().native()));
    }
    auto [conninfo, password] = ToolConnInfo(url_);
    std::vector<std::string> env;
    if (!password.empty()) env.push_back("PGPASSWORD=" + password);
    // pg_dump reads every table in one REPEATABLE READ snapshot: a consistent copy while
    // the servers keep writing; custom format, compressed, for pg_restore.
    std::vector<std::string> args = {ToolPath(o_, server_version, "pg_dump"),
                                     "--format=custom",
                                     "--no-owner",
                                     "--no-privileges",
                                     "--file=" + file.string(),
                                     "--dbname=" + conninfo};
    // Only this database's schema when several share the PostgreSQL database.
    if (!o_.schema.empty()) args.push_back("--schema=" + o_.schema);
    const auto r = detail::RunProcess(args, env);
    if (r.exit_code != 0) {
      std::error_code ec;
      fs::remove(file, ec);
      const std::string m = name() + " database: pg_dump: " + TrimMessage(r.output.c_str());
      if (r.output.find("No space left") != std::string::npos)
        throw Error(ErrorCode::kStorageFull, "磁盘已满 / disk full: " + m);
      throw Error(ErrorCode::kIo, m);
    }
  }

  int64_t SizeBytes() const override {
    Conn c = const_cast<PgDb*>(this)->Acquire();
    if (!o_.schema.empty()) {
      // The schema's tables, indexes and TOAST: its share of a database it shares.
      Stmt s(c,
             "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c "
             "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND "
             "c.relkind IN ('r', 'p', 'm')");
      s.Bind(1, o_.schema);
      s.Step();
      return s.Int(0);
    }
    Stmt s(c, "SELECT pg_database_size(current_database())");
    s.Step();
    return s.Int(0);
  }

 private:
  void Release(PgConn* c) {
    c->OnRelease();
    {
      std::lock_guard lock(mu_);
      free_.push_back(c);
    }
    cv_.notify_one();
  }

  void Migrate(const std::vector<std::string>& migrations) {
    Conn c = Acquire();
    // Session lock: a second server starting now waits here, then finds the work done.
    static_cast<PgConn&>(c.backend()).set_holds_locks();
    c.Exec("SELECT pg_advisory_lock(" + std::to_string(kMigrationLockKey) + ")");
    if (!o_.schema.empty()) c.Exec("CREATE SCHEMA IF NOT EXISTS \"" + o_.schema + "\"");
    c.Exec(
        "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL, applied_ms "
        "BIGINT)");
    {
      Stmt s(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
      s.Step();
      version_ = int(s.Int(0));
    }
    if (version_ > int(migrations.size()))
      throw Error(ErrorCode::kCorrupt,
                  name() + " database has schema version " + std::to_string(version_) +
                      ", newer than this program (" + std::to_string(migrations.size()) + ")");
    for (size_t v = size_t(version_); v < migrations.size(); ++v) {
      Transaction tx(c);  // PostgreSQL's DDL is transactional: all of a step or nothing
      c.Exec(migrations[v]);
      Stmt s(c, "INSERT INTO schema_version(version, applied_ms) VALUES(?, ?)");
      s.Bind(1, int64_t(v + 1)).Bind(2, NowMs()).Run();
      tx.Commit();
      version_ = int(v + 1);
    }
    c.Exec("SELECT pg_advisory_unlock(" + std::to_string(kMigrationLockKey) + ")");
  }

  std::string url_;
  PostgresOptions o_;
  std::vector<std::unique_ptr<PgConn>> conns_;
  std::deque<PgConn*> free_;
  std::mutex mu_;
  std::condition_variable cv_;
  int version_ = 0;
};

PgConn& PgOf(Conn& c, const char* what) {
  if (c.dialect() != Dialect::kPostgres)
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": PostgreSQL only");
  return static_cast<PgConn&>(c.backend());
}

bool QueryBool(Conn& c, const std::string& sql, int64_t key) {
  Stmt s(c, sql);
  s.Bind(1, key);
  s.Step();
  return s.Int(0) != 0;
}

}  // namespace

std::unique_ptr<Db> OpenPostgres(const std::string& url, const Migrations& migrations,
                                 PostgresOptions options) {
  return std::make_unique<PgDb>(url, migrations, options);
}

bool TryAdvisoryLock(Conn& c, int64_t key) {
  PgOf(c, "TryAdvisoryLock").set_holds_locks();
  return QueryBool(c, "SELECT pg_try_advisory_lock(?)", key);
}

void AdvisoryUnlock(Conn& c, int64_t key) {
  PgOf(c, "AdvisoryUnlock");
  QueryBool(c, "SELECT pg_advisory_unlock(?)", key);
}

bool HoldsAdvisoryLock(Conn& c, int64_t key) {
  PgOf(c, "HoldsAdvisoryLock");
  // pg_locks shows a bigint key as classid (high 32 bits), objid (low 32 bits), objsubid 1.
  Stmt s(c,
         "SELECT EXISTS(SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
         "WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid() AND "
         "d.datname = current_database() AND l.objsubid = 1 AND l.classid::bigint = ?1 AND "
         "l.objid::bigint = ?2)");
  const uint64_t u = uint64_t(key);
  s.Bind(1, int64_t(u >> 32)).Bind(2, int64_t(u & 0xffffffffu));
  s.Step();
  return s.Int(0) != 0;
}

void LockInTransaction(Conn& c, int64_t key) {
  if (!c.in_transaction())
    throw Error(ErrorCode::kInternal, "LockInTransaction outside a transaction");
  if (c.dialect() != Dialect::kPostgres) return;  // SQLite: the writer lock serialises
  Stmt s(c, "SELECT pg_advisory_xact_lock(?)");
  s.Bind(1, key).Run();
}

int64_t AdvisoryKey(std::string_view name) {
  const std::string hex = Sha256Hex(name.data(), name.size());
  return int64_t(std::stoull(hex.substr(0, 16), nullptr, 16));
}

void RestorePostgresDump(const std::string& url, const fs::path& file,
                         const PostgresOptions& options) {
  int server_version = 0;
  {
    PGconn* pg = PQconnectdb(url.c_str());
    if (PQstatus(pg) != CONNECTION_OK) {
      const std::string m = TrimMessage(PQerrorMessage(pg));
      PQfinish(pg);
      throw Error(ErrorCode::kUnavailable, "数据库不可用 / database unavailable: " + m);
    }
    server_version = PQserverVersion(pg);
    PQfinish(pg);
  }
  auto [conninfo, password] = ToolConnInfo(url);
  std::vector<std::string> env;
  if (!password.empty()) env.push_back("PGPASSWORD=" + password);
  const auto r = detail::RunProcess(
      {ToolPath(options, server_version, "pg_restore"), "--no-owner", "--no-privileges",
       "--exit-on-error", "--single-transaction", "--dbname=" + conninfo, file.string()},
      env);
  if (r.exit_code != 0)
    throw Error(ErrorCode::kIo,
                "restore " + file.string() + ": pg_restore: " + TrimMessage(r.output.c_str()));
}

}  // namespace anju::db
