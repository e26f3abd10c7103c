// Strangers (R3.2.1.1, docs/viid.md): unknown faces grouped into visitor identities
// (StrangerClusters, kept in memory and persisted sealed in captures.db), their lists and
// sightings, and the retention of idle ones. Cluster ids come from the database's counter.
// When several processes recognise (ViidDeps::distributed), a face that matches none of
// this process's clusters is first compared with the clusters the others started since it
// last looked, and a cluster grows in the database only from the member count this process
// last saw: when another process grew it meanwhile, this one reads the stored centroid and
// joins the face again (optimistic concurrency; counts only rise), so no growth is lost.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/viid/context.h"
#include "server/viid/stranger_clusters.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class StrangerDirectory {
 public:
  // Loads the persisted clusters; THRESHOLD: similarity to join one.
  StrangerDirectory(ViidContext& ctx, float threshold);

  // Joins FEATURE (of capture CAPTURE_ID by DEVICE at TIME_MS) to a visitor cluster or
  // starts one, persisted; returns the cluster id.
  int64_t Assign(std::span<const float> feature, int64_t time_ms, const std::string& capture_id,
                 const std::string& device);

  StrangerPage List(const StrangerQuery& q);
  // Error(kNotFound) for an unknown one, or one no camera in BUILDINGS saw.
  StrangerDetail Get(int64_t id, const std::optional<std::vector<int64_t>>& buildings);

  // Retention, inside the caller's transaction on captures.db: forgets the sightings of
  // the deleted CAPTURE_IDS and deletes clusters not seen since BEFORE_MS (a centroid is
  // biometric data).
  void Forget(db::Conn& conn, const std::vector<std::string>& capture_ids, int64_t before_ms);

  size_t size() const { return clusters_.size(); }

 private:
  // Loads the clusters stored with an id above the highest one loaded so far.
  void LoadNewer();
  // Replaces this process's copy of cluster ID with the stored one (drops it when deleted).
  void Reload(db::Conn& conn, int64_t id);

  ViidContext& ctx_;
  StrangerClusters clusters_;
  std::mutex load_mu_;
  int64_t loaded_up_to_ = 0;
};

}  // namespace anju::server
