// SQL of per-site calibration (archive.db, schema version 7: table site_thresholds; the
// residents' templates per site). Every function runs on the caller's connection (db::Conn),
// inside its transaction when there is one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

// One site's stored calibration.
struct SiteThresholdsRow {
  int64_t site_id = 0;
  std::string model_version;
  std::string thresholds_json;  // match::Thresholds::ToJson() (report included)
  std::string fingerprint;      // SiteGalleryFingerprints() at calibration time
  int64_t persons = 0, templates = 0;
  std::string kept_base;  // why the base levels were kept ("" = calibrated)
  int64_t elapsed_ms = 0;
  int64_t created_ms = 0;
};

// One template of a site's gallery.
struct SiteTemplate {
  std::string person;  // identity code
  int64_t feature_id = 0;
  std::vector<uint8_t> sealed;  // sealed at rest (server/audit/sealing.h OpenFeatureAtRest)
};

class SiteThresholdsRepo {
 public:
  static std::optional<SiteThresholdsRow> Get(db::Conn& c, int64_t site_id);
  static std::vector<SiteThresholdsRow> All(db::Conn& c);
  static void Put(db::Conn& c, const SiteThresholdsRow& row);
  static bool SiteExists(db::Conn& c, int64_t site_id);
  static std::vector<int64_t> Sites(db::Conn& c);
  // A site's gallery: the templates of MODEL_VERSION of its residents — active persons with
  // a standing consent, members of a household whose room lies in the site (a person in
  // households of two sites counts in both). Ordered by person, then template.
  static std::vector<SiteTemplate> Gallery(db::Conn& c, int64_t site_id,
                                           const std::string& model_version);
  // Per site with residents: SM3 over its (person, template id) list, the persons and the
  // templates; a site without any is absent. Cheap (ids only): run on every check.
  struct Fingerprint {
    std::string hash;
    int64_t persons = 0, templates = 0;
  };
  static std::map<int64_t, Fingerprint> Fingerprints(db::Conn& c, const std::string& model_version);
  static std::optional<int64_t> SiteOfBuilding(db::Conn& c, int64_t building_id);
  static std::optional<int64_t> SiteOfDevice(db::Conn& c, const std::string& device_id);
};

}  // namespace anju::server::storage
