// Traffic, stranger and alert reports (R3.4.2.2, docs/viid.md "Reports"): tables of
// "columns" and "items", as JSON or CSV.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/viid/camera_registry.h"
#include "server/viid/context.h"

namespace anju::server {

class SnapshotReports {
 public:
  SnapshotReports(ViidContext& ctx, CameraRegistry& cameras) : ctx_(ctx), cameras_(cameras) {}

  // Entries, exits and captures per (bucket, building, device, door); BUCKET hour | day in
  // the time zone UTC+UTC_OFFSET_MINUTES.
  nlohmann::json Traffic(int64_t from_ms, int64_t to_ms, const std::string& bucket,
                         int utc_offset_minutes);
  // Stranger captures, distinct and new visitor identities per day; BUILDINGS: only
  // cameras there (an account's sites), none = all.
  nlohmann::json Strangers(int64_t from_ms, int64_t to_ms, int utc_offset_minutes,
                           const std::optional<std::vector<int64_t>>& buildings = std::nullopt);
  // The TOP (type, device) pairs by alarm count.
  nlohmann::json Alerts(int64_t from_ms, int64_t to_ms, int64_t top);

 private:
  ViidContext& ctx_;
  CameraRegistry& cameras_;
};

// The CSV of a report (UTF-8 with BOM, CRLF): its "columns" in order, one line per item.
std::string ReportCsv(const nlohmann::json& report);

}  // namespace anju::server
