#include "server/retention/retention.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>

#include "core/error.h"

namespace anju::server {
using nlohmann::json;

int64_t MonthsBefore(int64_t now_ms, int months) {
  using namespace std::chrono;
  if (months < 0) throw Error(ErrorCode::kInvalidArgument, "retention months must be >= 0");
  const sys_time<milliseconds> now{milliseconds(now_ms)};
  const auto day = floor<days>(now);
  year_month_day ymd(day);
  year_month_day back = ymd.year() / ymd.month() / ymd.day() - std::chrono::months(months);
  if (!back.ok()) back = back.year() / back.month() / last;  // 31 May - 3 = 28/29 Feb
  const auto time_of_day = now - day;
  return (sys_days(back) + time_of_day).time_since_epoch().count();
}

int64_t RetentionReport::bytes_freed() const {
  return snapshot_bytes_freed + orphan_bytes_freed +
         std::max<int64_t>(0, db_bytes_before - db_bytes_after);
}

json ToJson(const RetentionReport& r) {
  return {{"now_ms", r.now_ms},
          {"snapshot_cutoff_ms", r.snapshot_cutoff_ms},
          {"video_cutoff_ms", r.video_cutoff_ms},
          {"event_cutoff_ms", r.event_cutoff_ms},
          {"quarantine_cutoff_ms", r.quarantine_cutoff_ms},
          {"snapshots_deleted", r.snapshots_deleted},
          {"snapshot_bytes_freed", r.snapshot_bytes_freed},
          {"orphan_files_deleted", r.orphan_files_deleted},
          {"orphan_bytes_freed", r.orphan_bytes_freed},
          {"events_deleted", r.events_deleted},
          {"video_refs_deleted", r.video_refs_deleted},
          {"quarantine_deleted", r.quarantine_deleted},
          {"partitions_dropped", r.partitions_dropped},
          {"db_bytes_before", r.db_bytes_before},
          {"db_bytes_after", r.db_bytes_after},
          {"bytes_freed", r.bytes_freed()}};
}

namespace {

std::optional<int> Number(const std::string& s, size_t digits) {
  if (s.size() != digits) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Removes snapshot blobs of whole days before CUTOFF_MS that no row names (left by a
// crash between writing a batch's blobs and its commit, or between a deletion's commit
// and its removal), then the emptied day / month / year directories. Lists month by
// month (snapshots/YYYY/MM/) only the months that began before the cutoff, so the days
// still kept are not walked.
void SweepOrphans(EventStore& store, int64_t cutoff_ms, size_t batch, const AuditFn& audit,
                  RetentionReport& report) {
  using namespace std::chrono;
  std::vector<std::string> removed;
  int64_t removed_bytes = 0;
  auto flush = [&] {
    if (removed.empty()) return;
    if (audit)
      audit("retention.orphan_files_deleted", {{"cutoff_ms", cutoff_ms},
                                               {"count", removed.size()},
                                               {"bytes", removed_bytes},
                                               {"files", removed}});
    report.orphan_files_deleted += int64_t(removed.size());
    report.orphan_bytes_freed += removed_bytes;
    removed.clear();
    removed_bytes = 0;
  };
  const year_month_day cutoff_day{floor<days>(sys_time<milliseconds>(milliseconds(cutoff_ms)))};
  std::vector<std::string> candidates;
  // Event times before 1970 do not exist; the store refuses anything before 2020 anyway.
  for (year_month m = year(1970) / January; m <= cutoff_day.year() / cutoff_day.month();
       m += months(1)) {
    char prefix[48];
    std::snprintf(prefix, sizeof prefix, "snapshots/%04d/%02u/", int(m.year()),
                  unsigned(m.month()));
    store.ListSnapshotKeys(prefix, [&](const std::string& key) {
      // snapshots/YYYY/MM/DD/<name>
      if (!key.starts_with(prefix)) return true;
      const std::string_view rest = std::string_view(key).substr(std::strlen(prefix));
      const auto slash = rest.find('/');
      if (slash == std::string_view::npos) return true;
      const auto d = Number(std::string(rest.substr(0, slash)), 2);
      if (!d) return true;
      const year_month_day ymd = m / day(unsigned(*d));
      // Only days that ended before the cutoff: everything in them is expired.
      if (!ymd.ok()) return true;
      const int64_t day_end_ms =
          duration_cast<milliseconds>((sys_days(ymd) + days(1)).time_since_epoch()).count();
      if (day_end_ms > cutoff_ms) return true;
      candidates.push_back(key);
      return true;
    });
  }
  std::sort(candidates.begin(), candidates.end());
  for (const std::string& key : candidates) {
    if (auto bytes = store.RemoveOrphanSnapshot(key)) {
      removed.push_back(key);
      removed_bytes += *bytes;
      if (removed.size() >= batch) flush();
    }
  }
  store.PruneSnapshotDirs();
  flush();
}

}  // namespace

RetentionReport RunRetention(EventStore& store, const RetentionPolicy& policy,
                             std::chrono::system_clock::time_point now, const AuditFn& audit) {
  if (policy.batch == 0) throw Error(ErrorCode::kInvalidArgument, "retention batch must be > 0");
  RetentionReport r;
  r.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  auto cutoff = [&](int months) { return months > 0 ? MonthsBefore(r.now_ms, months) : 0; };
  r.snapshot_cutoff_ms = cutoff(policy.snapshot_months);
  r.video_cutoff_ms = cutoff(policy.video_months);
  r.event_cutoff_ms = cutoff(policy.event_months);
  r.quarantine_cutoff_ms = cutoff(policy.quarantine_months);
  r.db_bytes_before = store.DatabaseBytes();

  // An event going away takes its snapshot with it, whatever the snapshot period says.
  const int64_t snapshot_cutoff = std::max(r.snapshot_cutoff_ms, r.event_cutoff_ms);
  // PostgreSQL: the coming months' partitions, then whole months dropped before any row is
  // deleted (R3.3.2.5; storage/partitions.h). Nothing on SQLite.
  store.PreparePartitions(r.now_ms);
  // The audit sees a dropped month as it sees deleted rows: in batches, with what went.
  auto audit_snapshots = [&](const std::vector<DeletedSnapshot>& gone) {
    for (size_t at = 0; at < gone.size(); at += policy.batch) {
      json items = json::array();
      int64_t bytes = 0;
      const size_t end = std::min(gone.size(), at + policy.batch);
      for (size_t i = at; i < end; ++i) {
        const auto& g = gone[i];
        bytes += g.bytes;
        items.push_back({{"event_id", g.event_id},
                         {"file", g.key},
                         {"bytes", g.bytes},
                         {"time_ms", g.time_ms}});
      }
      r.snapshots_deleted += int64_t(end - at);
      r.snapshot_bytes_freed += bytes;
      if (audit)
        audit("retention.snapshots_deleted", {{"cutoff_ms", snapshot_cutoff},
                                              {"count", end - at},
                                              {"bytes", bytes},
                                              {"snapshots", items}});
    }
  };
  if (snapshot_cutoff > 0) {
    while (auto gone = store.DropSnapshotMonth(snapshot_cutoff)) {
      ++r.partitions_dropped;
      audit_snapshots(*gone);
    }
    for (;;) {
      const auto gone = store.ExpireSnapshots(snapshot_cutoff, policy.batch);
      if (gone.empty()) break;
      audit_snapshots(gone);
      if (gone.size() < policy.batch) break;
    }
    SweepOrphans(store, snapshot_cutoff, policy.batch, audit, r);
  }
  auto run_rows = [&](int64_t cutoff_ms, const char* action, const char* key, auto&& step,
                      int64_t& counter) {
    if (cutoff_ms <= 0) return;
    for (;;) {
      const auto ids = step(cutoff_ms, policy.batch);
      if (ids.empty()) break;
      counter += int64_t(ids.size());
      if (audit) audit(action, {{"cutoff_ms", cutoff_ms}, {"count", ids.size()}, {key, ids}});
      if (ids.size() < policy.batch) break;
    }
  };
  if (r.event_cutoff_ms > 0) {
    while (auto ids = store.DropEventMonth(r.event_cutoff_ms)) {
      ++r.partitions_dropped;
      for (size_t at = 0; at < ids->size(); at += policy.batch) {
        const std::vector<std::string> part(
            ids->begin() + ptrdiff_t(at),
            ids->begin() + ptrdiff_t(std::min(ids->size(), at + policy.batch)));
        r.events_deleted += int64_t(part.size());
        if (audit)
          audit("retention.events_deleted",
                {{"cutoff_ms", r.event_cutoff_ms}, {"count", part.size()}, {"event_ids", part}});
      }
    }
  }
  run_rows(
      r.event_cutoff_ms, "retention.events_deleted", "event_ids",
      [&](int64_t c, size_t n) { return store.DeleteEventsBefore(c, n); }, r.events_deleted);
  run_rows(
      r.video_cutoff_ms, "retention.video_refs_deleted", "video_ref_ids",
      [&](int64_t c, size_t n) { return store.DeleteVideoRefsBefore(c, n); }, r.video_refs_deleted);
  run_rows(
      r.quarantine_cutoff_ms, "retention.quarantine_deleted", "quarantine_seqs",
      [&](int64_t c, size_t n) { return store.DeleteQuarantineBefore(c, n); },
      r.quarantine_deleted);

  store.ReclaimSpace();
  r.db_bytes_after = store.DatabaseBytes();
  if (audit) audit("retention.completed", ToJson(r));
  return r;
}

}  // namespace anju::server
