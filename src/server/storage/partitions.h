// Monthly partitions of the big time-ordered tables on PostgreSQL (R3.3.2.5: large,
// scalable storage; docs/storage.md, "Monthly partitions"). events and snapshots (events
// schema), captures, capture_images and capture_clips (captures schema) are
// PARTITION BY RANGE (time_ms), one partition per UTC calendar month named
// <table>_pYYYYMM, plus <table>_default for any time no month partition holds. Retention
// then drops whole months instead of deleting their rows one by one. SQLite keeps plain
// tables: every function here does nothing there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

// One UTC calendar month: [from_ms, to_ms), and its partition suffix "pYYYYMM".
struct Month {
  int64_t from_ms = 0, to_ms = 0;
  std::string suffix;
};
// The month holding MS.
Month MonthOf(int64_t ms);

// Months kept ready ahead of the current one, so that inserts never wait for a partition.
inline constexpr int kMonthsAhead = 2;
// Months before the current one that the migration gives a partition of their own when it
// finds rows that old; older rows go to the default partition (retention deletes those row
// by row). Longer than the longest default retention (24 months of events).
inline constexpr int kMonthsBack = 25;

// PostgreSQL DDL of the function ensure_month_partitions(parent, from_ms, to_ms) in the
// current schema, for the migrations that partition tables: it creates the missing month
// partitions of PARENT from the month of FROM_MS to that of TO_MS, under a transaction
// advisory lock so that servers sharing the database create each partition once. A month
// whose rows already sit in the default partition is left there (attaching it would fail).
const std::string& EnsureMonthPartitionsFunctionSql();

// Makes sure each of TABLES has its partitions from the month of NOW_MS to kMonthsAhead
// months later (each table in one short transaction of its own; C must not be in one).
void EnsureMonthPartitions(db::Conn& c, const std::vector<std::string>& tables, int64_t now_ms);

// The month partitions of TABLE that end at or before BEFORE_MS, oldest first.
std::vector<Month> MonthsWhollyBefore(db::Conn& c, const std::string& table, int64_t before_ms);
// Whether TABLE has a partition for MONTH.
bool HasMonthPartition(db::Conn& c, const std::string& table, const Month& month);
// The names of TABLE's partitions (month ones and the default), sorted.
std::vector<std::string> Partitions(db::Conn& c, const std::string& table);

// In the caller's transaction: drops TABLE's partition of MONTH, then deletes the rows of
// that month's time range that sit elsewhere (the default partition), so that afterwards
// no row of TABLE has a time in MONTH.
void DropMonth(db::Conn& c, const std::string& table, const Month& month);

}  // namespace anju::server::storage
