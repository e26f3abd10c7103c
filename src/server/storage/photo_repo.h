// Biometric data in archive.db (schema: archive_schema.cpp): enrolment photos (sealed
// blobs of the server's runtime::BlobStore, key photos/<file>; the rows name the files) and feature
// codes (sealed at rest). Kept apart from the identity data of storage/person_repo.h. Rows in, rows
// out; every function runs on the caller's connection.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

class PhotoRepo {
 public:
  // ---- photos ----
  // Returns the new row id.
  static int64_t InsertPhoto(db::Conn& c, int64_t person_id, const std::string& file, int64_t bytes,
                             const std::string& quality_json, int64_t now_ms,
                             const std::string& actor);
  // (photo id, file name) of photo ID of the person; nullopt when there is none.
  static std::optional<std::pair<int64_t, std::string>> Photo(db::Conn& c, std::string_view id,
                                                              int64_t person_id);
  // [{"id", "bytes", "quality", "created_ms", "operator", "template", "model_version"}] by id.
  static nlohmann::json Photos(db::Conn& c, int64_t person_id);
  // The file names of the person's photos.
  static std::vector<std::string> PhotoFiles(db::Conn& c, int64_t person_id);
  // The blob key of photo file NAME (runtime::BlobStore): the path under the data
  // directory the file has always had, so existing data directories keep working.
  static std::string BlobKey(const std::string& name) { return "photos/" + name; }
  // The photo row and its feature codes; returns the ids of the feature codes deleted.
  static std::vector<int64_t> DeletePhoto(db::Conn& c, int64_t photo_id);

  // ---- feature codes ----
  // PHOTO_ID: nullopt for a feature code imported without a photo. Returns the new row id.
  static int64_t InsertFeature(db::Conn& c, int64_t person_id, std::optional<int64_t> photo_id,
                               const std::string& model_version, std::span<const uint8_t> sealed,
                               int64_t now_ms);
  static int64_t CountFeatures(db::Conn& c, int64_t person_id);
  // Every feature code of MODEL_VERSION with its person's identity code (the duplicate index).
  static void ForEachFeature(
      db::Conn& c, const std::string& model_version,
      const std::function<void(int64_t id, const std::string& code, std::span<const uint8_t>)>& f);
  // A person's photo rows and feature codes (the files are the caller's).
  static void DeleteBiometrics(db::Conn& c, int64_t person_id);
  // The person's identity code and feature codes of MODEL_VERSION (id, sealed); nullopt
  // when there is no such person.
  struct PersonFeatures {
    std::string code;
    std::vector<std::pair<int64_t, std::vector<uint8_t>>> features;
  };
  static std::optional<PersonFeatures> FeaturesOf(db::Conn& c, int64_t person_id,
                                                  const std::string& model_version);

  // ---- the feature change log (docs/distributed.md, "The gallery index") ----
  // Every function above that inserts or deletes feature codes appends the person to the
  // log as its transaction commits, under one lock, so the log's order is commit order:
  // a reader that has read up to sequence number N never later finds a smaller one.
  struct FeatureChange {
    int64_t seq = 0, person_id = 0;
  };
  // Changes after SEQ, in order, at most LIMIT.
  static std::vector<FeatureChange> FeatureChangesAfter(db::Conn& c, int64_t seq, int64_t limit);
  // The first and last sequence numbers in the log ({0, 0} when it is empty).
  static std::pair<int64_t, int64_t> FeatureLogBounds(db::Conn& c);
  // Drops changes older than BEFORE_MS; returns how many.
  static int64_t PruneFeatureLog(db::Conn& c, int64_t before_ms);
};

// Batch imports (POST /api/v1/imports): progress and per-row results.
class ImportRepo {
 public:
  static int64_t Insert(db::Conn& c, int64_t now_ms, const std::string& actor, int64_t total);
  // FINISHED_MS: nullopt while running.
  static void Save(db::Conn& c, int64_t id, const std::string& state, int64_t done,
                   const std::string& results_json, std::optional<int64_t> finished_ms);
  // {"id", "created_ms", "actor", "state", "total", "done", "results", "finished_ms"}.
  static std::optional<nlohmann::json> Get(db::Conn& c, std::string_view id);
};

}  // namespace anju::server::storage
