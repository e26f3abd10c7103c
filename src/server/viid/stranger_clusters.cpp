#include "server/viid/stranger_clusters.h"

#include <algorithm>
#include <cmath>

namespace anju::server {

namespace {
float CosineToSum(std::span<const float> f, const std::vector<float>& sum) {
  if (f.size() != sum.size()) return -1;
  double dot = 0, norm = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    dot += double(f[i]) * sum[i];
    norm += double(sum[i]) * sum[i];
  }
  return norm > 0 ? float(dot / std::sqrt(norm)) : -1;
}
}  // namespace

void StrangerClusters::Load(int64_t id, std::span<const float> centroid, int64_t members) {
  std::lock_guard lock(mu_);
  // The stored centroid is unit length: scale by the count so later updates weigh right.
  std::vector<float> sum(centroid.begin(), centroid.end());
  for (auto& v : sum) v *= float(std::max<int64_t>(members, 1));
  std::erase_if(clusters_, [&](const Cluster& c) { return c.id == id; });
  clusters_.push_back({id, std::move(sum), std::max<int64_t>(members, 1)});
}

StrangerAssignment StrangerClusters::Match(std::span<const float> feature) const {
  StrangerAssignment best;
  float best_sim = -2;
  for (const auto& c : clusters_) {
    const float s = CosineToSum(feature, c.sum);
    if (s > best_sim) best_sim = s, best.cluster = c.id, best.members = c.members;
  }
  if (best.cluster != 0 && best_sim >= threshold_) {
    best.similarity = best_sim;
    return best;
  }
  return {};
}

StrangerAssignment StrangerClusters::Nearest(std::span<const float> feature) const {
  std::lock_guard lock(mu_);
  return Match(feature);
}

int64_t StrangerClusters::Update(int64_t id, std::span<const float> feature) {
  for (auto& c : clusters_) {
    if (c.id != id) continue;
    if (c.members > 0)
      for (size_t i = 0; i < c.sum.size() && i < feature.size(); ++i) c.sum[i] += feature[i];
    return ++c.members;
  }
  return 0;
}

std::vector<float> StrangerClusters::Centroid(int64_t id) const {
  std::lock_guard lock(mu_);
  for (const auto& c : clusters_) {
    if (c.id != id) continue;
    double norm = 0;
    for (float v : c.sum) norm += double(v) * v;
    std::vector<float> out(c.sum);
    if (norm > 0)
      for (auto& v : out) v = float(v / std::sqrt(norm));
    return out;
  }
  return {};
}

int64_t StrangerClusters::MaxId() const {
  std::lock_guard lock(mu_);
  int64_t m = 0;
  for (const auto& c : clusters_) m = std::max(m, c.id);
  return m;
}

void StrangerClusters::Remove(const std::vector<int64_t>& ids) {
  std::lock_guard lock(mu_);
  std::erase_if(clusters_, [&](const Cluster& c) {
    return std::find(ids.begin(), ids.end(), c.id) != ids.end();
  });
}

size_t StrangerClusters::size() const {
  std::lock_guard lock(mu_);
  return clusters_.size();
}

}  // namespace anju::server
