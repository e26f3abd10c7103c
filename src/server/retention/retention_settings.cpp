#include "server/retention/retention_settings.h"
#include "core/error.h"

#include "core/clock.h"
#include "server/audit/audit_log.h"
#include "server/storage/settings_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::SettingsRepo;

const std::vector<RetentionSettings::Limit>& RetentionSettings::Limits() {
  static const std::vector<Limit> limits = {
      {"snapshot_months", &RetentionPolicy::snapshot_months, 1, 12},
      {"video_months", &RetentionPolicy::video_months, 1, 3},
      {"event_months", &RetentionPolicy::event_months, 6, 120},
      {"quarantine_months", &RetentionPolicy::quarantine_months, 1, 24},
  };
  return limits;
}

RetentionSettings::RetentionSettings(db::Db& archive, RetentionPolicy defaults)
    : archive_(archive), defaults_(defaults), current_(defaults) {}

RetentionPolicy RetentionSettings::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

void RetentionSettings::Load() {
  RetentionPolicy m = defaults_;
  std::map<std::string, std::string> saved;
  {
    auto conn = archive_.Acquire();
    saved = SettingsRepo::All(conn);
  }
  for (const auto& l : Limits())
    if (auto it = saved.find(l.key); it != saved.end()) m.*l.field = std::stoi(it->second);
  std::lock_guard lock(mu_);
  current_ = m;
}

json RetentionSettings::Json(int64_t interval_s) {
  const RetentionPolicy m = Current();
  json out = {{"interval_s", interval_s}};
  json limits = json::object();
  for (const auto& l : Limits()) {
    out[l.key] = m.*l.field;
    limits[l.key] = {{"min", l.min}, {"max", l.max}};
  }
  out["limits"] = limits;
  auto conn = archive_.Acquire();
  out["source"] = "config";
  if (const auto last = SettingsRepo::LatestChange(conn, "_months")) {
    out["source"] = "console";
    out["updated_ms"] = last->first;
    out["updated_by"] = last->second;
  }
  out["last_run"] = LatestAudit(conn, "retention.completed");
  out["last_capture_run"] = LatestAudit(conn, "capture_retention");
  return out;
}

void RetentionSettings::Update(const json& change, const Principal& who) {
  if (change.empty()) throw Error(ErrorCode::kInvalidArgument, "未指定保留期 / no period given");
  json before = json::object(), after = json::object();
  {
    auto conn = archive_.Acquire();
    db::Transaction tx(conn);
    const RetentionPolicy now = Current();
    for (const auto& l : Limits()) {
      if (!change.contains(l.key)) continue;
      const int v = change[l.key].get<int>();
      if (v < l.min || v > l.max)
        throw Error(ErrorCode::kInvalidArgument, std::string(l.key) + ": " + std::to_string(l.min) +
                                                     ".." + std::to_string(l.max));
      before[l.key] = now.*l.field;
      after[l.key] = v;
      SettingsRepo::Put(conn, l.key, std::to_string(v), NowMs(), who.name);
    }
    Audit(conn, AuditEntry{who.name,
                           who.source,
                           "config.retention",
                           "retention",
                           "ok",
                           {{"before", before}, {"after", after}}});
    tx.Commit();
  }
  Load();
}

}  // namespace anju::server
