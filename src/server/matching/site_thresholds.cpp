#include "server/matching/site_thresholds.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "core/error.h"
#include "crypto/sm3.h"
#include "match/index.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/storage/site_scope.h"
#include "server/storage/site_thresholds_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::SiteThresholdsRepo;

namespace {

std::string UtcStamp(int64_t ms) {
  const std::time_t t = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json LevelsJson(const match::Thresholds& t, const std::optional<match::Thresholds>& base) {
  json out = json::object();
  for (auto l : match::kAllLevels) {
    json v = {{"threshold", t.at(l).threshold},
              {"margin", t.at(l).margin},
              {"target_fmr", t.at(l).target_fmr}};
    if (base) v["base"] = base->at(l).threshold;
    out[match::LevelName(l)] = v;
  }
  return out;
}

}  // namespace

SiteThresholds::SiteThresholds(db::Db& db, const crypto::DataKey& key,
                               std::optional<match::Thresholds> base,
                               SiteCalibrationOptions options)
    : db_(db), key_(key), base_(std::move(base)), options_(std::move(options)) {
  // The calibration shares the machine with the door traffic: one thread.
  options_.site.threads = 1;
  // Off: the stored levels are not applied either (they would go stale); the base applies.
  if (!base_ || !options_.enabled) return;
  std::vector<storage::SiteThresholdsRow> rows;
  {
    auto conn = db_.AcquireReader();
    rows = SiteThresholdsRepo::All(conn);
  }
  for (const auto& row : rows) {
    // Levels of another model version mean nothing for this one (the next check redoes them).
    if (row.model_version != base_->model_version) continue;
    try {
      Entry e;
      e.thresholds = match::Thresholds::Parse(row.thresholds_json, base_->model_version,
                                              "site " + std::to_string(row.site_id));
      e.fingerprint = row.fingerprint;
      e.persons = row.persons;
      e.templates = row.templates;
      e.elapsed_ms = row.elapsed_ms;
      e.created_ms = row.created_ms;
      e.kept_base = row.kept_base;
      cache_[row.site_id] = std::move(e);
    } catch (const Error& err) {
      spdlog::error("site {} thresholds do not parse (recalibrated at the next check): {}",
                    row.site_id, err.what());
    }
  }
}

SiteThresholds::~SiteThresholds() {
  Stop();
}

void SiteThresholds::Start() {
  if (!automatic() || thread_.joinable()) return;
  {
    std::lock_guard l(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void SiteThresholds::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SiteThresholds::GalleryChanged() {
  {
    std::lock_guard l(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!dirty_) first_change_ = now;
    dirty_ = true;
    last_change_ = now;
  }
  cv_.notify_all();
}

void SiteThresholds::Run() {
  using clock = std::chrono::steady_clock;
  const auto delay = std::chrono::milliseconds(std::max<int64_t>(0, options_.delay_ms));
  const auto recheck = std::chrono::milliseconds(options_.recheck_ms);
  auto check = [this] {
    try {
      CheckNow();
    } catch (const std::exception& e) {
      spdlog::error("site calibration failed (the previous levels stay): {}", e.what());
    }
  };
  check();  // what changed while the server was down
  std::unique_lock l(mu_);
  auto next_recheck = options_.recheck_ms > 0 ? clock::now() + recheck : clock::time_point::max();
  while (!stop_) {
    auto due = next_recheck;
    if (dirty_) due = std::min({due, last_change_ + delay, first_change_ + 10 * delay});
    if (clock::now() >= due) {
      l.unlock();
      check();
      l.lock();
      if (options_.recheck_ms > 0) next_recheck = clock::now() + recheck;
      continue;
    }
    if (due == clock::time_point::max())
      cv_.wait(l);
    else
      cv_.wait_until(l, due);
  }
}

std::string SiteThresholds::BaseId() const {
  // The stored levels are stale when the base they were calibrated from changes (a new
  // shipped thresholds file): its levels and fusion are part of the fingerprint.
  std::string s = base_->model_version + "|" + match::FusionName(base_->fusion);
  for (auto l : match::kAllLevels)
    s += "|" + std::to_string(base_->at(l).threshold) + "," + std::to_string(base_->at(l).margin);
  return crypto::Sm3Hex(std::string_view(s)).substr(0, 16);
}

std::vector<int64_t> SiteThresholds::CheckNow(bool force) {
  std::vector<int64_t> done;
  if (!base_) return done;
  std::lock_guard run(run_mu_);
  {
    std::lock_guard l(mu_);
    dirty_ = false;
  }
  std::vector<int64_t> sites;
  std::map<int64_t, SiteThresholdsRepo::Fingerprint> prints;
  {
    auto conn = db_.AcquireReader();
    sites = SiteThresholdsRepo::Sites(conn);
    prints = SiteThresholdsRepo::Fingerprints(conn, base_->model_version);
  }
  const std::string base_id = BaseId();
  const std::string empty = crypto::Sm3Hex(std::string_view(""));
  for (const int64_t site : sites) {
    const auto it = prints.find(site);
    const std::string expected = (it == prints.end() ? empty : it->second.hash) + "/" + base_id;
    bool same = false;
    {
      std::lock_guard l(mu_);
      const auto c = cache_.find(site);
      same = c != cache_.end() && c->second.fingerprint == expected;
    }
    if (same && !force) continue;
    try {
      if (Calibrate(site, force)) done.push_back(site);
    } catch (const std::exception& e) {
      spdlog::error("site {} calibration failed (its previous levels stay): {}", site, e.what());
    }
  }
  return done;
}

bool SiteThresholds::Calibrate(int64_t site_id, bool force) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<storage::SiteTemplate> rows;
  {
    auto conn = db_.AcquireReader();
    rows = SiteThresholdsRepo::Gallery(conn, site_id, base_->model_version);
  }
  // The fingerprint of exactly what is calibrated (same text as SiteThresholdsRepo's).
  std::string text;
  for (const auto& r : rows) text += r.person + ":" + std::to_string(r.feature_id) + "\n";
  const std::string fingerprint = crypto::Sm3Hex(std::string_view(text)) + "/" + BaseId();
  if (!force) {
    std::lock_guard l(mu_);
    const auto c = cache_.find(site_id);
    if (c != cache_.end() && c->second.fingerprint == fingerprint) return false;
  }
  // Features are opened outside the database lock (enrolment goes on meanwhile).
  std::vector<std::pair<std::string, std::vector<float>>> features;
  features.reserve(rows.size());
  size_t dim = 0;
  for (const auto& r : rows) {
    try {
      auto f = OpenFeatureAtRest(key_, r.person, r.sealed);
      if (dim == 0) dim = f.size();
      if (f.size() != dim) continue;
      features.emplace_back(r.person, std::move(f));
    } catch (const Error& e) {
      spdlog::error("site {}: template {} of {} does not open: {}", site_id, r.feature_id, r.person,
                    e.what());
    }
  }
  match::FeatureIndex index(
      {.model_version = base_->model_version, .dim = dim ? dim : 512, .fusion = base_->fusion});
  std::vector<match::FeatureIndex::Entry> entries;
  entries.reserve(features.size());
  for (size_t i = 0; i < features.size(); ++i)
    entries.push_back({features[i].first, match::TemplateId(i + 1), features[i].second});
  if (!entries.empty()) index.PutBatch(entries, base_->model_version);
  auto cal = match::CalibrateGallery(index, *base_, options_.site);
  const int64_t now = NowMs();
  cal.thresholds.model_version = base_->model_version;
  cal.thresholds.created = UtcStamp(now);
  cal.thresholds.report_json = cal.report.dump();
  Entry e;
  e.thresholds = cal.thresholds;
  e.fingerprint = fingerprint;
  e.persons = int64_t(index.persons());
  e.templates = int64_t(index.size());
  e.created_ms = now;
  e.kept_base = cal.report.value("kept_base", "");
  e.elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  json levels = json::object();
  for (auto l : match::kAllLevels) levels[match::LevelName(l)] = e.thresholds.at(l).threshold;
  {
    auto conn = db_.Acquire();
    db::Transaction tx(conn);
    if (!SiteThresholdsRepo::SiteExists(conn, site_id)) return false;  // deleted meanwhile
    SiteThresholdsRepo::Put(
        conn, {site_id, base_->model_version, e.thresholds.ToJson(), e.fingerprint, e.persons,
               e.templates, e.kept_base, e.elapsed_ms, e.created_ms});
    Audit(conn, "system", "site_thresholds.calibrated", "sites/" + std::to_string(site_id),
          {{"persons", e.persons},
           {"templates", e.templates},
           {"levels", levels},
           {"kept_base", e.kept_base}});
    tx.Commit();
  }
  spdlog::info(
      "site {} calibrated on {} persons / {} templates in {} ms: high {:.4f} normal "
      "{:.4f} low {:.4f}{}",
      site_id, e.persons, e.templates, e.elapsed_ms,
      e.thresholds.at(match::SecurityLevel::kHigh).threshold,
      e.thresholds.at(match::SecurityLevel::kNormal).threshold,
      e.thresholds.at(match::SecurityLevel::kLow).threshold,
      e.kept_base.empty() ? "" : " (base kept: " + e.kept_base + ")");
  {
    std::lock_guard l(mu_);
    cache_[site_id] = std::move(e);
  }
  ++calibrations_;
  return true;
}

std::optional<match::Thresholds> SiteThresholds::ForSite(int64_t site_id) const {
  std::lock_guard l(mu_);
  const auto c = cache_.find(site_id);
  // A gallery too small to say anything kept the base: the site has no levels of its own.
  if (c == cache_.end() || !c->second.kept_base.empty()) return std::nullopt;
  return c->second.thresholds;
}

std::optional<match::Thresholds> SiteThresholds::Effective(std::optional<int64_t> site_id) const {
  if (site_id)
    if (auto t = ForSite(*site_id)) return t;
  return base_;
}

json SiteThresholds::Describe(const SiteScope& scope, int64_t site_id) const {
  {
    auto conn = db_.AcquireReader();
    if (!storage::SiteThresholdsRepo::SiteExists(conn, site_id) || !scope.HasSite(site_id))
      throw Error(ErrorCode::kNotFound, "不存在 / not found: site " + std::to_string(site_id));
  }
  return Describe(site_id);
}

json SiteThresholds::Describe(int64_t site_id) const {
  json out = {{"site_id", site_id},
              {"automatic", automatic()},
              {"min_persons", options_.site.min_persons},
              {"target_fpir",
               {{"high", options_.site.target_fpir[0]},
                {"normal", options_.site.target_fpir[1]},
                {"low", options_.site.target_fpir[2]}}}};
  std::lock_guard l(mu_);
  out["pending"] = dirty_;
  const auto c = cache_.find(site_id);
  if (c == cache_.end()) {
    out["source"] = base_ ? "base" : "none";
    if (base_) {
      out["model_version"] = base_->model_version;
      out["fusion"] = match::FusionName(base_->fusion);
      out["levels"] = LevelsJson(*base_, base_);
    }
    return out;
  }
  const Entry& e = c->second;
  out["source"] = "site";
  out["model_version"] = e.thresholds.model_version;
  out["fusion"] = match::FusionName(e.thresholds.fusion);
  out["levels"] = LevelsJson(e.thresholds, base_);
  out["created"] = e.thresholds.created;
  out["created_ms"] = e.created_ms;
  out["persons"] = e.persons;
  out["templates"] = e.templates;
  out["elapsed_ms"] = e.elapsed_ms;
  out["kept_base"] = e.kept_base.empty() ? json() : json(e.kept_base);
  out["report"] = json::parse(e.thresholds.report_json, nullptr, false);
  return out;
}

json SiteThresholds::ForTerminals(std::optional<int64_t> site_id) const {
  if (!site_id) return nullptr;
  std::lock_guard l(mu_);
  const auto c = cache_.find(*site_id);
  if (c == cache_.end() || !c->second.kept_base.empty()) return nullptr;
  const auto& t = c->second.thresholds;
  json levels = json::object();
  for (auto lv : match::kAllLevels)
    levels[match::LevelName(lv)] = {{"threshold", t.at(lv).threshold}, {"margin", t.at(lv).margin}};
  return {{"model_version", t.model_version},
          {"fusion", match::FusionName(t.fusion)},
          {"created", t.created},
          {"persons", c->second.persons},
          {"levels", levels}};
}

}  // namespace anju::server
