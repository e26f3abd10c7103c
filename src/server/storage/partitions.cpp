#include "server/storage/partitions.h"

#include <chrono>
#include <cstdio>

#include "core/error.h"

namespace anju::server::storage {

namespace {

int64_t MsOf(std::chrono::year_month ym) {
  using namespace std::chrono;
  return duration_cast<milliseconds>(sys_days(ym / 1).time_since_epoch()).count();
}

Month MonthAt(std::chrono::year_month ym) {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "p%04d%02u", int(ym.year()), unsigned(ym.month()));
  return {MsOf(ym), MsOf(ym + std::chrono::months(1)), suffix};
}

// "pYYYYMM" → its month; nullopt for anything else (the default partition).
std::optional<Month> ParseSuffix(const std::string& suffix) {
  if (suffix.size() != 7 || suffix[0] != 'p') return std::nullopt;
  for (size_t i = 1; i < suffix.size(); ++i)
    if (suffix[i] < '0' || suffix[i] > '9') return std::nullopt;
  const int y = std::stoi(suffix.substr(1, 4));
  const unsigned m = unsigned(std::stoi(suffix.substr(5, 2)));
  if (m < 1 || m > 12) return std::nullopt;
  return MonthAt(std::chrono::year(y) / std::chrono::month(m));
}

bool IsPostgres(db::Conn& c) {
  return c.dialect() == db::Dialect::kPostgres;
}

}  // namespace

Month MonthOf(int64_t ms) {
  using namespace std::chrono;
  const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(ms)))};
  return MonthAt(d.year() / d.month());
}

const std::string& EnsureMonthPartitionsFunctionSql() {
  // Epoch of a timestamp without time zone is its UTC reading: month bounds in UTC.
  static const std::string sql = R"(
CREATE OR REPLACE FUNCTION ensure_month_partitions(parent TEXT, from_ms BIGINT, to_ms BIGINT)
RETURNS INTEGER LANGUAGE plpgsql AS $fn$
DECLARE
  m DATE := date_trunc('month', to_timestamp(from_ms / 1000.0) AT TIME ZONE 'UTC')::date;
  last_m DATE := date_trunc('month', to_timestamp(to_ms / 1000.0) AT TIME ZONE 'UTC')::date;
  lo BIGINT;
  hi BIGINT;
  part TEXT;
  taken BOOLEAN;
  made INTEGER := 0;
BEGIN
  -- Servers sharing the database: the second waits here, then finds the partition made.
  PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.' || parent || ' partitions'));
  WHILE m <= last_m LOOP
    part := parent || '_p' || to_char(m, 'YYYYMM');
    lo := (extract(epoch FROM m::timestamp) * 1000)::bigint;
    hi := (extract(epoch FROM (m + interval '1 month')) * 1000)::bigint;
    IF to_regclass(format('%I.%I', current_schema(), part)) IS NULL THEN
      EXECUTE format('SELECT EXISTS(SELECT 1 FROM %I.%I WHERE time_ms >= $1 AND time_ms < $2)',
                     current_schema(), parent || '_default') INTO taken USING lo, hi;
      IF NOT taken THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I FOR VALUES FROM (%s) TO (%s)',
                       current_schema(), part, current_schema(), parent, lo, hi);
        made := made + 1;
      END IF;
    END IF;
    m := (m + interval '1 month')::date;
  END LOOP;
  RETURN made;
END
$fn$;
)";
  return sql;
}

void EnsureMonthPartitions(db::Conn& c, const std::vector<std::string>& tables, int64_t now_ms) {
  if (!IsPostgres(c)) return;
  const Month first = MonthOf(now_ms);
  const auto ym = [&] {
    using namespace std::chrono;
    const year_month_day d{floor<days>(sys_time<milliseconds>(milliseconds(now_ms)))};
    return d.year() / d.month();
  }();
  const Month last = MonthAt(ym + std::chrono::months(kMonthsAhead));
  for (const auto& table : tables) {
    db::Transaction tx(c);
    db::Stmt s(c, "SELECT ensure_month_partitions(?, ?, ?)");
    s.Bind(1, table).Bind(2, first.from_ms).Bind(3, last.from_ms).Run();
    tx.Commit();
  }
}

std::vector<std::string> Partitions(db::Conn& c, const std::string& table) {
  std::vector<std::string> out;
  if (!IsPostgres(c)) return out;
  db::Stmt s(c,
             "SELECT k.relname FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid "
             "WHERE i.inhparent = to_regclass(?) ORDER BY k.relname");
  s.Bind(1, table);
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::vector<Month> MonthsWhollyBefore(db::Conn& c, const std::string& table, int64_t before_ms) {
  std::vector<Month> out;
  const std::string prefix = table + "_";
  for (const auto& name : Partitions(c, table)) {
    if (!name.starts_with(prefix)) continue;
    const auto m = ParseSuffix(name.substr(prefix.size()));
    if (m && m->to_ms <= before_ms) out.push_back(*m);
  }
  return out;  // names sort by month
}

bool HasMonthPartition(db::Conn& c, const std::string& table, const Month& month) {
  if (!IsPostgres(c)) return false;
  db::Stmt s(c, "SELECT to_regclass(?) IS NOT NULL");
  s.Bind(1, table + "_" + month.suffix);
  s.Step();
  return s.Int(0) != 0;
}

void DropMonth(db::Conn& c, const std::string& table, const Month& month) {
  if (!IsPostgres(c)) throw Error(ErrorCode::kInternal, "DropMonth: PostgreSQL only");
  // Names from MonthAt and the fixed table list: no quoting needed beyond the identifier.
  c.Exec("DROP TABLE IF EXISTS \"" + table + "_" + month.suffix + "\"");
  db::Stmt s(c, "DELETE FROM " + table + " WHERE time_ms >= ? AND time_ms < ?");
  s.Bind(1, month.from_ms).Bind(2, month.to_ms).Run();
}

}  // namespace anju::server::storage
