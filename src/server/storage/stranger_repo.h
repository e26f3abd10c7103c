// Stranger clusters (visitors recognition did not know, with their sealed centroids) and
// the tenants whose authorisation let strangers in (tenant_strangers) in captures.db
// (docs/viid.md). Rows in, rows out, on the caller's connection. BUILDINGS, where given,
// keeps only sightings by cameras in those buildings (an account's sites); none = all.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

using Buildings = std::optional<std::vector<int64_t>>;

struct StrangerCentroidRow {
  int64_t id = 0;
  std::vector<uint8_t> centroid_sealed;
  int64_t members = 0;
};

// A cluster joined (or started) by a capture at TIME_MS.
struct StrangerSighting {
  int64_t id = 0;
  std::vector<uint8_t> centroid_sealed;
  int64_t members = 0;
  int64_t time_ms = 0;
  std::string capture_id, device_id;
};

// One stranger in a list: sightings in the period.
struct StrangerSummaryRow {
  int64_t id = 0, count = 0, first_ms = 0, last_ms = 0, devices = 0;
};

// Where one stranger was seen in the period, per camera.
struct StrangerPlaceRow {
  std::string device_id, place;
  std::optional<int64_t> building_id, unit_id;
  int64_t count = 0, last_ms = 0;
  std::string latest_capture;
};

struct StrangerRow {
  int64_t count = 0, first_ms = 0, last_ms = 0;
  std::string first_capture, last_capture, last_device;
};

struct StrangerDayRow {
  int64_t bucket_ms = 0, captures = 0, strangers = 0, devices = 0;
};

class StrangerRepo {
 public:
  // ---- clusters ----
  // The clusters with an id above AFTER_ID, by id.
  static std::vector<StrangerCentroidRow> Centroids(db::Conn& c, int64_t after_id = 0);
  // A fresh cluster id from the database's counter (a sequence on PostgreSQL): never the
  // same twice, whichever process draws it.
  static int64_t NextId(db::Conn& c);
  static void Upsert(db::Conn& c, const StrangerSighting& s);
  // One cluster's stored centroid and member count (nullopt when deleted).
  static std::optional<StrangerCentroidRow> Centroid(db::Conn& c, int64_t id);
  // Writes the cluster S grew to, only if its stored member count is still MEMBERS_BEFORE
  // (no other process grew it meanwhile: counts only rise); false otherwise.
  static bool Grow(db::Conn& c, const StrangerSighting& s, int64_t members_before);
  // Clusters last seen before BEFORE_MS are deleted; returns their ids.
  static std::vector<int64_t> DeleteIdle(db::Conn& c, int64_t before_ms);

  // ---- sightings (for alert rules) ----
  // Captures of CLUSTER in (FROM_MS, TO_MS] by DEVICE, or by any camera of UNIT; newest first.
  static std::vector<std::string> SightingsAtDevice(db::Conn& c, int64_t cluster, int64_t from_ms,
                                                    int64_t to_ms, const std::string& device);
  static std::vector<std::string> SightingsInUnit(db::Conn& c, int64_t cluster, int64_t from_ms,
                                                  int64_t to_ms, int64_t unit_id);
  // PERSON's authorisation let CLUSTER in (once per capture).
  static void LinkTenant(db::Conn& c, const std::string& person, int64_t cluster, int64_t time_ms,
                         const std::string& capture_id);
  // The distinct strangers PERSON let in after SINCE_MS, ascending.
  static std::vector<int64_t> StrangersLetInBy(db::Conn& c, const std::string& person,
                                               int64_t since_ms);
  static void ForgetCapture(db::Conn& c, const std::string& capture_id);

  // ---- queries ----
  // Strangers seen in [FROM_MS, TO_MS) (by DEVICE unless empty) at least MIN_COUNT times,
  // most seen first.
  static std::vector<StrangerSummaryRow> List(db::Conn& c, int64_t from_ms, int64_t to_ms,
                                              const std::string& device, int64_t min_count,
                                              int64_t limit, int64_t offset,
                                              const Buildings& buildings);
  static int64_t Count(db::Conn& c, int64_t from_ms, int64_t to_ms, const std::string& device,
                       const Buildings& buildings);
  static std::vector<StrangerPlaceRow> Places(db::Conn& c, int64_t id, int64_t from_ms,
                                              int64_t to_ms, const Buildings& buildings);
  // The cluster's figures (with BUILDINGS: of those cameras' sightings only).
  static std::optional<StrangerRow> Get(db::Conn& c, int64_t id, const Buildings& buildings);

  // ---- reports ----
  // Stranger sightings per local day (UTC+OFFSET_MS) in [FROM_MS, TO_MS).
  static std::vector<StrangerDayRow> Days(db::Conn& c, int64_t offset_ms, int64_t from_ms,
                                          int64_t to_ms, const Buildings& buildings);
  // Clusters first seen in [FROM_MS, TO_MS) (with BUILDINGS: first by one of those cameras).
  static int64_t CountNew(db::Conn& c, int64_t from_ms, int64_t to_ms, const Buildings& buildings);
};

}  // namespace anju::server::storage
