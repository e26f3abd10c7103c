#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace anju::eval {

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}

double StdDev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = Mean(v), s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / v.size());
}

double AccuracyAt(const std::vector<ScoredPair>& pairs, float t) {
  if (pairs.empty()) return 0;
  size_t ok = 0;
  for (auto& p : pairs) ok += ((p.score >= t) == p.same);
  return static_cast<double>(ok) / pairs.size();
}

float BestThreshold(const std::vector<ScoredPair>& pairs) {
  if (pairs.empty()) return 0;
  std::vector<ScoredPair> s = pairs;
  std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.score < b.score; });
  // Sweep: threshold just above s[i] accepts s[i+1..]. Count correct decisions.
  size_t genuine_total = 0;
  for (auto& p : s) genuine_total += p.same;
  size_t correct = genuine_total;  // threshold below everything: all accepted
  size_t best = correct;
  float best_t = s.front().score - 1e-4f;
  for (size_t i = 0; i < s.size(); ++i) {
    correct += s[i].same ? -1 : 1;  // s[i] now rejected
    bool boundary = i + 1 == s.size() || s[i + 1].score != s[i].score;
    if (boundary && correct > best) {
      best = correct;
      best_t = i + 1 < s.size() ? (s[i].score + s[i + 1].score) / 2 : s[i].score + 1e-4f;
    }
  }
  return best_t;
}

KFoldResult KFoldAccuracy(const std::vector<ScoredPair>& pairs) {
  std::set<int> folds;
  for (auto& p : pairs) folds.insert(p.fold);
  KFoldResult r;
  for (int f : folds) {
    std::vector<ScoredPair> train, test;
    for (auto& p : pairs) (p.fold == f ? test : train).push_back(p);
    if (train.empty()) train = test;  // a single fold: report its own best accuracy
    float t = BestThreshold(train);
    r.fold_threshold.push_back(t);
    r.fold_accuracy.push_back(AccuracyAt(test, t));
  }
  r.mean_accuracy = Mean(r.fold_accuracy);
  r.std_accuracy = StdDev(r.fold_accuracy);
  double ts = 0;
  for (float t : r.fold_threshold) ts += t;
  r.mean_threshold =
      r.fold_threshold.empty() ? 0.f : static_cast<float>(ts / r.fold_threshold.size());
  return r;
}

RatePoint TarAtFar(const std::vector<ScoredPair>& pairs, double far) {
  std::vector<float> imp, gen;
  for (auto& p : pairs) (p.same ? gen : imp).push_back(p.score);
  RatePoint r;
  if (imp.empty() || gen.empty()) return r;
  std::sort(imp.begin(), imp.end(), std::greater<>());
  // Allow k impostors above the threshold, k = floor(far · N).
  size_t k = static_cast<size_t>(std::floor(far * imp.size()));
  r.resolved = far * imp.size() >= 1.0;
  float t = std::nextafter(imp[std::min(k, imp.size() - 1)], 10.f);
  if (k >= imp.size()) t = imp.back();
  r.threshold = t;
  size_t acc = 0, fa = 0;
  for (float g : gen) acc += g >= t;
  for (float i : imp) fa += i >= t;
  r.tar = static_cast<double>(acc) / gen.size();
  r.far_achieved = static_cast<double>(fa) / imp.size();
  return r;
}

PadRates PadRatesAt(const std::vector<float>& live, const std::vector<float>& attack, float t) {
  PadRates r;
  r.threshold = t;
  size_t a = 0, b = 0;
  for (float s : attack) a += s >= t;  // attack accepted as live
  for (float s : live) b += s < t;     // live rejected
  r.apcer = attack.empty() ? 0 : static_cast<double>(a) / attack.size();
  r.bpcer = live.empty() ? 0 : static_cast<double>(b) / live.size();
  r.acer = (r.apcer + r.bpcer) / 2;
  return r;
}

PadRates EqualErrorPoint(const std::vector<float>& live, const std::vector<float>& attack) {
  std::vector<float> cand(live);
  cand.insert(cand.end(), attack.begin(), attack.end());
  std::sort(cand.begin(), cand.end());
  PadRates best;
  double gap = 2;
  for (float t : cand) {
    auto r = PadRatesAt(live, attack, t);
    double g = std::abs(r.apcer - r.bpcer);
    if (g < gap || (g == gap && r.acer < best.acer)) gap = g, best = r;
  }
  return best;
}

}  // namespace anju::eval
