// Incremental clustering of unknown faces into visitor identities (R3.2.1.1):
// a face joins the cluster whose centroid is most similar when that similarity reaches
// the threshold, else it starts a new cluster. The centroid is the running mean of the
// members' unit features, re-normalised, so a visitor photographed from several angles
// drifts towards their average face rather than their first photo. Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

namespace anju::server {

struct StrangerAssignment {
  int64_t cluster = 0;
  bool created = false;
  float similarity = 0;  // to the centroid before the update (0 when created)
  int64_t members = 0;   // after the update
};

class StrangerClusters {
 public:
  explicit StrangerClusters(float threshold) : threshold_(threshold) {}

  // Restores a cluster (from the database) with its centroid and member count, in place of
  // this instance's cluster of that id if it has one.
  void Load(int64_t id, std::span<const float> centroid, int64_t members);
  // Assigns FEATURE (unit, any dimension fixed per instance). NEXT_ID gives a fresh id when
  // a cluster is created.
  template <typename NextId>
  StrangerAssignment Assign(std::span<const float> feature, NextId next_id) {
    std::lock_guard lock(mu_);
    StrangerAssignment a = Match(feature);
    if (a.cluster == 0) {
      a.cluster = next_id();
      a.created = true;
      clusters_.push_back({a.cluster, std::vector<float>(feature.begin(), feature.end()), 0});
      a.similarity = 0;
    }
    a.members = Update(a.cluster, feature);
    return a;
  }
  // Best cluster at or above the threshold (cluster 0 when none); does not change anything.
  StrangerAssignment Nearest(std::span<const float> feature) const;
  // The centroid of a cluster (empty when unknown).
  std::vector<float> Centroid(int64_t id) const;
  size_t size() const;
  int64_t MaxId() const;  // 0 when empty
  void Remove(const std::vector<int64_t>& ids);
  float threshold() const { return threshold_; }

 private:
  struct Cluster {
    int64_t id;
    std::vector<float> sum;  // sum of member features (centroid = sum / |sum|)
    int64_t members;
  };
  StrangerAssignment Match(std::span<const float> feature) const;
  int64_t Update(int64_t id, std::span<const float> feature);

  float threshold_;
  mutable std::mutex mu_;
  std::vector<Cluster> clusters_;
};

}  // namespace anju::server
