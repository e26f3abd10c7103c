// Per-site calibration on the server (docs/matching.md, "Per-site calibration"): the security
// levels of one site recomputed on its own gallery at its real size whenever that gallery
// changes, so that "normal" keeps meaning an open-set FPIR of 0.5% as the site fills up (a
// stranger's chance of being taken for *someone* grows with the number of residents; R3.1.2.3
// asks for 1:N at community scale with open-set thresholds, i.e. stranger rejection that holds
// for the whole gallery, not for one comparison).
//
//  * GalleryChanged() is called by every change of who a device must hold (GalleryLog's hook,
//    inside the change's transaction): it only marks the service dirty. A background thread
//    waits for the changes to settle (debounce: `delay_ms` after the last one, at most
//    10 × delay_ms after the first), then compares each site's gallery fingerprint (its
//    residents' template ids) with the stored one and recalibrates the sites that differ with
//    match::CalibrateGallery — never on the enrolment request's thread. A periodic recheck
//    catches changes that bypass the hook (a household moved to another building).
//  * The result (levels, report, creation time, the gallery's fingerprint) is stored in
//    archive.db (site_thresholds, schema v7) and cached here; a restart reads it back.
//  * Used by: the snapshot cameras' recognition (RecognitionWorkers, the camera's building → site),
//    the gallery sync (the site's terminals receive the levels: docs/device-protocol.md) and
//    GET /api/v1/sites/{id}/thresholds.
//  * A level never goes below the base (the shipped thresholds file): a site can only become
//    stricter. Below `min_persons` residents the base is kept (recorded as kept_base).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "match/calibration.h"
#include "match/thresholds.h"

namespace anju::server {

class SiteScope;

struct SiteCalibrationOptions {
  bool enabled = true;           // config "site_calibration": false turns the automatic runs off
  int64_t delay_ms = 30'000;     // quiet time after the last gallery change
  int64_t recheck_ms = 600'000;  // fingerprints compared at least this often (0 = never)
  match::SiteOptions site;       // targets, min_persons, max_probes (threads stay 1)
};

class SiteThresholds {
 public:
  // BASE: the shipped levels (nullopt: no thresholds file, nothing is calibrated). KEY opens
  // the features at rest.
  SiteThresholds(db::Db& db, const crypto::DataKey& key, std::optional<match::Thresholds> base,
                 SiteCalibrationOptions options);
  ~SiteThresholds();
  SiteThresholds(const SiteThresholds&) = delete;
  SiteThresholds& operator=(const SiteThresholds&) = delete;

  // Starts the background thread (a first check runs at once: sites changed while the
  // server was down). Nothing runs when disabled or without base levels.
  void Start();
  void Stop();

  // A gallery may have changed (cheap; any thread, any lock held).
  void GalleryChanged();
  // Compares every site's fingerprint now, on this thread, and recalibrates those that
  // differ (FORCE: every site). Returns the sites recalibrated.
  std::vector<int64_t> CheckNow(bool force = false);

  // The site's calibrated thresholds; nullopt when it has none (then the base applies).
  std::optional<match::Thresholds> ForSite(int64_t site_id) const;
  // The thresholds that apply at a site: its own, else the base (nullopt without either).
  std::optional<match::Thresholds> Effective(std::optional<int64_t> site_id) const;
  // GET /api/v1/sites/{id}/thresholds.
  nlohmann::json Describe(int64_t site_id) const;
  // The same for a caller who sees SCOPE: Error(kNotFound) for a site that does not exist
  // or lies outside SCOPE, answered alike (storage/site_scope.h).
  nlohmann::json Describe(const SiteScope& scope, int64_t site_id) const;
  // The levels as sent to a site's terminals (docs/device-protocol.md, "thresholds" of the
  // gallery answer); null when the site has no calibration of its own.
  nlohmann::json ForTerminals(std::optional<int64_t> site_id) const;

  const std::optional<match::Thresholds>& base() const { return base_; }
  const SiteCalibrationOptions& options() const { return options_; }
  bool automatic() const { return options_.enabled && base_.has_value(); }
  int64_t calibrations() const { return calibrations_; }

 private:
  struct Entry {
    match::Thresholds thresholds;
    std::string fingerprint;
    int64_t persons = 0, templates = 0, elapsed_ms = 0, created_ms = 0;
    std::string kept_base;
  };
  void Run();
  // Recalibrates SITE; false when its gallery is what the stored calibration was made on.
  bool Calibrate(int64_t site_id, bool force);
  std::string BaseId() const;

  db::Db& db_;
  crypto::DataKey key_;
  std::optional<match::Thresholds> base_;
  SiteCalibrationOptions options_;
  mutable std::mutex mu_;  // cache_, the schedule; never held while acquiring a connection
  std::condition_variable cv_;
  std::map<int64_t, Entry> cache_;
  bool dirty_ = false, stop_ = false;
  std::chrono::steady_clock::time_point first_change_, last_change_;
  std::mutex run_mu_;  // one check at a time (the thread and CheckNow)
  std::thread thread_;
  std::atomic<int64_t> calibrations_{0};
};

}  // namespace anju::server
