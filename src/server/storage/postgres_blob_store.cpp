#include "server/storage/postgres_blob_store.h"

#include <chrono>
#include <cstdio>
#include <string_view>

#include "core/clock.h"
#include "core/error.h"
#include "db/postgres.h"
#include "server/storage/databases.h"

namespace anju::server::storage {

namespace {

constexpr const char* kUndated = "0001-01-01";

// bytes STORAGE EXTERNAL: sealed bytes do not compress, so TOAST keeps them out of line
// without trying.
const db::Migrations kMigrations = {{}, {R"(CREATE TABLE blob(
  key TEXT COLLATE "C" NOT NULL,
  month DATE NOT NULL,
  size BIGINT NOT NULL,
  stored_ms BIGINT NOT NULL,
  bytes BYTEA NOT NULL,
  PRIMARY KEY(key, month)) PARTITION BY RANGE (month);
ALTER TABLE blob ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE TABLE blob_undated PARTITION OF blob FOR VALUES FROM (MINVALUE) TO ('1000-01-01');
CREATE TABLE blob_default PARTITION OF blob DEFAULT;)"}};

bool Digits(std::string_view s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Keys name files in a FileBlobStore: the same keys are refused here, so both stores
// keep the same set.
void CheckKey(const std::string& key) {
  bool bad = key.empty() || key.front() == '/' || key.find('\0') != std::string::npos;
  for (size_t b = 0; !bad && b <= key.size();) {
    const size_t e = std::min(key.find('/', b), key.size());
    if (std::string_view(key).substr(b, e - b) == "..") bad = true;
    b = e + 1;
  }
  if (bad) throw Error(ErrorCode::kInvalidArgument, "blob key leaves the store: " + key);
}

std::string PartitionName(int year, int month) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "blob_y%04dm%02d", year, month);
  return buf;
}

std::string MonthText(int year, int month) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-01", year, month);
  return buf;
}

std::string CurrentMonth() {
  using namespace std::chrono;
  const year_month_day ymd{floor<days>(sys_time<milliseconds>(milliseconds(NowMs())))};
  return MonthText(int(ymd.year()), int(unsigned(ymd.month())));
}

}  // namespace

const db::Migrations& BlobsMigrations() {
  return kMigrations;
}

std::string PostgresBlobStore::MonthOf(const std::string& key) {
  // The first YYYY/MM/DD run of directories (a file follows the day).
  std::vector<std::string_view> parts;
  for (size_t b = 0; b <= key.size();) {
    const size_t e = std::min(key.find('/', b), key.size());
    parts.push_back(std::string_view(key).substr(b, e - b));
    b = e + 1;
  }
  for (size_t i = 0; i + 3 < parts.size(); ++i) {
    if (!Digits(parts[i], 4) || !Digits(parts[i + 1], 2) || !Digits(parts[i + 2], 2)) continue;
    const int y = ToInt(parts[i]), m = ToInt(parts[i + 1]), d = ToInt(parts[i + 2]);
    if (y >= 1000 && m >= 1 && m <= 12 && d >= 1 && d <= 31) return MonthText(y, m);
  }
  return kUndated;
}

PostgresBlobStore::PostgresBlobStore(std::unique_ptr<db::Db> db) : db_(std::move(db)) {
  if (db_->dialect() != db::Dialect::kPostgres)
    throw Error(ErrorCode::kInvalidArgument, "PostgresBlobStore needs a PostgreSQL database");
  EnsureMonth(CurrentMonth());
}

void PostgresBlobStore::EnsureMonth(const std::string& month) {
  if (month == kUndated) return;
  const int y = ToInt(std::string_view(month).substr(0, 4));
  const int m = ToInt(std::string_view(month).substr(5, 2));
  std::lock_guard lock(mu_);
  if (months_.count(month)) return;
  // This month and the next: the first put of a month seldom waits for the DDL.
  std::vector<std::pair<int, int>> wanted = {{y, m}, {m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1}};
  auto c = db_->Acquire();
  db::Transaction tx(c);
  // Servers sharing the database create a partition once: the second waits here, then
  // finds it (IF NOT EXISTS).
  db::LockInTransaction(c, db::AdvisoryKey("blobs-partitions"));
  for (const auto& [yy, mm] : wanted) {
    const auto [ny, nm] = mm == 12 ? std::pair{yy + 1, 1} : std::pair{yy, mm + 1};
    const std::string name = PartitionName(yy, mm);
    c.Exec("CREATE TABLE IF NOT EXISTS " + name + " PARTITION OF blob FOR VALUES FROM ('" +
           MonthText(yy, mm) + "') TO ('" + MonthText(ny, nm) + "')");
    c.Exec("ALTER TABLE " + name + " ALTER COLUMN bytes SET STORAGE EXTERNAL");
  }
  tx.Commit();
  // Only the month itself counts as known: the next one is checked again when first used
  // (cheap, and it is then the month to make ahead of).
  months_.insert(month);
}

void PostgresBlobStore::PutMany(
    const std::vector<std::pair<std::string, std::span<const uint8_t>>>& blobs) {
  if (blobs.empty()) return;
  std::vector<std::string> months;
  months.reserve(blobs.size());
  for (const auto& [key, bytes] : blobs) {
    CheckKey(key);
    months.push_back(MonthOf(key));
  }
  for (const std::string& m : std::set<std::string>(months.begin(), months.end())) EnsureMonth(m);
  const int64_t now = NowMs();
  auto c = db_->Acquire();
  db::Transaction tx(c);
  db::Stmt s(c,
             "INSERT INTO blob(key, month, size, stored_ms, bytes) VALUES(?, ?, ?, ?, ?) "
             "ON CONFLICT (key, month) DO UPDATE SET size = excluded.size, "
             "stored_ms = excluded.stored_ms, bytes = excluded.bytes");
  for (size_t i = 0; i < blobs.size(); ++i) {
    s.Reset()
        .Bind(1, blobs[i].first)
        .Bind(2, months[i])
        .Bind(3, int64_t(blobs[i].second.size()))
        .Bind(4, now)
        .Bind(5, blobs[i].second)
        .Run();
  }
  tx.Commit();
}

std::vector<uint8_t> PostgresBlobStore::Get(const std::string& key) const {
  CheckKey(key);
  auto c = db_->AcquireReader();
  db::Stmt s(c, "SELECT bytes FROM blob WHERE key = ? AND month = ?");
  s.Bind(1, key).Bind(2, MonthOf(key));
  if (!s.Step()) throw Error(ErrorCode::kNotFound, "没有此文件 / no blob " + key);
  return s.Blob(0);
}

bool PostgresBlobStore::Exists(const std::string& key) const {
  return Size(key).has_value();
}

std::optional<int64_t> PostgresBlobStore::Size(const std::string& key) const {
  CheckKey(key);
  auto c = db_->AcquireReader();
  db::Stmt s(c, "SELECT size FROM blob WHERE key = ? AND month = ?");
  s.Bind(1, key).Bind(2, MonthOf(key));
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

bool PostgresBlobStore::Remove(const std::string& key) {
  CheckKey(key);
  auto c = db_->Acquire();
  db::Stmt s(c, "DELETE FROM blob WHERE key = ? AND month = ?");
  s.Bind(1, key).Bind(2, MonthOf(key)).Run();
  return c.Changes() > 0;
}

void PostgresBlobStore::List(const std::string& prefix,
                             const std::function<bool(const std::string& key)>& fn) const {
  // The directory PREFIX: keys in [dir, dir with its '/' raised to '0'), byte order (the
  // column's collation is "C"). Read a page at a time so FN may run long and call back.
  std::string from, to;
  if (!prefix.empty()) {
    from = prefix.ends_with('/') ? prefix : prefix + "/";
    to = from.substr(0, from.size() - 1) + "0";
  }
  constexpr int kPage = 1000;
  std::string after;
  bool first = true;
  for (;;) {
    std::vector<std::string> keys;
    {
      auto c = db_->AcquireReader();
      std::string sql = "SELECT key FROM blob WHERE ";
      sql += first ? "key >= ?" : "key > ?";
      if (!to.empty()) sql += " AND key < ?";
      sql += " ORDER BY key LIMIT " + std::to_string(kPage);
      db::Stmt s(c, sql);
      s.Bind(1, first ? from : after);
      if (!to.empty()) s.Bind(2, to);
      while (s.Step()) keys.push_back(s.Text(0));
    }
    for (const std::string& k : keys)
      if (!fn(k)) return;
    if (keys.size() < size_t(kPage)) return;
    after = keys.back();
    first = false;
  }
}

std::vector<std::string> PostgresBlobStore::MonthPartitions() const {
  auto c = db_->AcquireReader();
  db::Stmt s(c,
             "SELECT child.relname FROM pg_inherits "
             "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
             "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
             "JOIN pg_namespace n ON n.oid = parent.relnamespace "
             "WHERE parent.relname = 'blob' AND n.nspname = current_schema() "
             "AND child.relname LIKE 'blob\\_y%' ORDER BY child.relname");
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::unique_ptr<PostgresBlobStore> OpenPostgresBlobStore(const std::string& url) {
  if (!IsPostgresUrl(url))
    throw Error(ErrorCode::kInvalidArgument,
                "数据库中的文件需要 PostgreSQL / blobs in the database need database = "
                "postgresql://… (got \"" +
                    url + "\")");
  db::PostgresOptions o;
  o.name = "blobs";
  o.schema = "blobs";
  o.pool_size = 8;
  return std::make_unique<PostgresBlobStore>(db::OpenPostgres(url, kMigrations, o));
}

}  // namespace anju::server::storage
