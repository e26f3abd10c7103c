#include "match/calibration.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "match/kernels.h"

namespace anju::match {

using nlohmann::json;

PairScores AllPairScores(std::span<const float> F, size_t dim, std::span<const std::string> label) {
  if (dim == 0 || F.size() % dim)
    throw Error(ErrorCode::kInvalidArgument, "AllPairScores: features are not n × dim");
  const size_t n = F.size() / dim;
  if (label.size() != n)
    throw Error(ErrorCode::kInvalidArgument, "AllPairScores: one label per feature needed");
  PairScores out;
  out.impostor.reserve(n * (n - 1) / 2);
  const auto& kern = BestKernels();
  std::vector<float> buf(kMaxProbes * n);
  for (size_t i = 0; i < n; i += kMaxProbes) {
    const int P = int(std::min<size_t>(kMaxProbes, n - i));
    const size_t rows = n - i;
    kern.dots_f32(F.data() + i * dim, P, F.data() + i * dim, rows, dim, buf.data());
    for (int p = 0; p < P; ++p)
      for (size_t r = p + 1; r < rows; ++r)
        (label[i + p] == label[i + r] ? out.genuine : out.impostor).push_back(buf[p * rows + r]);
  }
  return out;
}

namespace {

json LevelFigures(const PairScores& s, const std::array<FmrPoint, 3>& pts) {
  json levels = json::object();
  for (auto l : kAllLevels) {
    const auto& pt = pts[int(l)];
    levels[LevelName(l)] = {{"threshold", pt.threshold},
                            {"resolved", pt.resolved},
                            {"expected_false_matches", pt.expected_false},
                            {"fmr", pt.fmr},
                            {"fnmr", RateBelow(s.genuine, pt.threshold)}};
  }
  const float max_imp =
      s.impostor.empty() ? 0.f : *std::max_element(s.impostor.begin(), s.impostor.end());
  return {{"genuine_pairs", s.genuine.size()},
          {"impostor_pairs", s.impostor.size()},
          {"max_impostor", max_imp},
          {"levels", levels}};
}

// The KEEP highest scores of a stream, highest first (bounded memory: the gallery's pairs are
// never all held).
class TopScores {
 public:
  explicit TopScores(size_t keep) : keep_(std::max<size_t>(keep, 1)) {}
  void Offer(float s) {
    if (v_.size() >= keep_ && s <= floor_) return;
    v_.push_back(s);
    if (v_.size() >= 2 * keep_) Trim();
  }
  std::vector<float> Sorted() {
    Trim();
    std::sort(v_.begin(), v_.end(), std::greater<float>());
    return v_;
  }

 private:
  void Trim() {
    if (v_.size() <= keep_) return;
    std::nth_element(v_.begin(), v_.begin() + (keep_ - 1), v_.end(), std::greater<float>());
    v_.resize(keep_);
    floor_ = *std::min_element(v_.begin(), v_.end());
  }
  size_t keep_;
  float floor_ = -2.f;
  std::vector<float> v_;
};

}  // namespace

Calibration CalibrateReference(ReferenceScores lfw, ReferenceScores ea, const ReferenceOptions& o) {
  auto& li = lfw.scores.impostor;
  auto& ei = ea.scores.impostor;
  if (li.empty() || ei.empty())
    throw Error(ErrorCode::kInvalidArgument, "calibration needs impostor pairs in both sets");
  // East-Asian tail against LFW's at the quantiles the East-Asian pairs resolve: the East-Asian
  // impostor tail is taken as LFW's shifted by the largest such offset. The deeper quantiles
  // matter: the gap may widen towards the tail, where the thresholds live.
  float offset = 0;
  json offsets = json::array();
  for (double q : o.offset_quantiles) {
    const double above = q * double(ei.size());
    if (above < double(o.min_tail_pairs)) continue;
    const float off = UpperQuantile(ei, q) - UpperQuantile(li, q);
    offsets.push_back({{"quantile", q}, {"offset", off}, {"east_asian_pairs_above", above}});
    offset = std::max(offset, off);
  }
  std::array<FmrPoint, 3> lp, ep, xp;
  Calibration c;
  c.thresholds.fusion = o.fusion;
  json chosen = json::object();
  for (auto l : kAllLevels) {
    const int i = int(l);
    const double fmr = TargetFmr(l);
    lp[i] = ThresholdAtFmr(li, fmr, o.unresolved_margin);
    ep[i] = ThresholdAtFmr(ei, fmr, o.unresolved_margin);
    xp[i] = lp[i];
    xp[i].threshold = lp[i].threshold + offset;
    xp[i].fmr = RateAtOrAbove(ei, xp[i].threshold);
    float t = std::max(lp[i].threshold, xp[i].threshold);
    std::string basis = t == lp[i].threshold ? "lfw" : "east-asian (lfw tail + offset)";
    if (ep[i].resolved && ep[i].threshold > t) t = ep[i].threshold, basis = "east-asian";
    const float estimate = t;
    if (o.floor && o.floor->at(l).threshold > t) t = o.floor->at(l).threshold, basis = "floor";
    c.thresholds.at(l) = {t, o.margins[i], fmr};
    chosen[LevelName(l)] = {{"threshold", t},
                            {"basis", basis},
                            {"estimate", estimate},
                            {"lfw_fmr", RateAtOrAbove(li, t)},
                            {"lfw_fnmr", RateBelow(lfw.scores.genuine, t)},
                            {"asian_fmr", RateAtOrAbove(ei, t)},
                            {"asian_fnmr", RateBelow(ea.scores.genuine, t)}};
  }
  // Levels are ordered by construction (stricter target → higher threshold); keep it so when a
  // floor (the empirical East-Asian point) lifts a looser level above a stricter one.
  auto& T = c.thresholds;
  T.at(SecurityLevel::kNormal).threshold =
      std::max(T.at(SecurityLevel::kNormal).threshold, T.at(SecurityLevel::kLow).threshold);
  T.at(SecurityLevel::kHigh).threshold =
      std::max(T.at(SecurityLevel::kHigh).threshold, T.at(SecurityLevel::kNormal).threshold);
  T.datasets = {lfw.name, ea.name};
  json asian_x = LevelFigures(ea.scores, xp);
  c.report = {{"lfw", LevelFigures(lfw.scores, lp)},
              {"asian", LevelFigures(ea.scores, ep)},
              {"asian_extrapolated",
               {{"method",
                 "LFW impostor tail shifted by the largest East-Asian−LFW offset at the upper "
                 "quantiles with at least " +
                     std::to_string(o.min_tail_pairs) + " East-Asian pairs above them"},
                {"offset", offset},
                {"offsets", offsets},
                {"levels", asian_x["levels"]}}},
              {"chosen", chosen}};
  if (o.floor) {
    json floor = json::object();
    for (auto l : kAllLevels) floor[LevelName(l)] = o.floor->at(l).threshold;
    c.report["floor"] = floor;
  }
  return c;
}

Calibration CalibrateGallery(const FeatureIndex& gallery, const Thresholds& base,
                             const SiteOptions& o) {
  Calibration c;
  c.thresholds = base;
  const auto stored = gallery.Export();
  const size_t persons = gallery.persons();
  const size_t N = std::max(o.gallery_persons, persons);
  json report = {
      {"persons", persons},
      {"templates", stored.size()},
      {"gallery_persons_target", N},
      {"target_fpir",
       {{"high", o.target_fpir[0]}, {"normal", o.target_fpir[1]}, {"low", o.target_fpir[2]}}},
      {"never_below_base", o.never_below_base},
      {"probes", std::min(stored.size(), std::max<size_t>(o.max_probes, 1))}};
  if (persons < std::max<size_t>(o.min_persons, 2)) {
    report["kept_base"] = "too few persons enrolled (" + std::to_string(persons) + " < " +
                          std::to_string(o.min_persons) + ")";
    c.report = report;
    return c;
  }
  const size_t dim = gallery.options().dim;
  const size_t R = stored.size();
  std::vector<float> F(R * dim);
  for (size_t r = 0; r < R; ++r) std::copy_n(stored[r].feature.begin(), dim, F.begin() + r * dim);

  // Probes: every template, or an even sample of at most max_probes of them (a large gallery:
  // the cost is probes × templates, the resolution 1 / probes).
  std::vector<size_t> probe_rows;
  const size_t P = std::min(R, std::max<size_t>(o.max_probes, 1));
  for (size_t k = 0; k < P; ++k) probe_rows.push_back(k * R / P);
  std::vector<float> Q(P * dim);
  for (size_t k = 0; k < P; ++k)
    std::copy_n(F.begin() + probe_rows[k] * dim, dim, Q.begin() + k * dim);

  // Leave-one-out: each probe template against the other persons, as a stranger meets them.
  const auto ranked = gallery.SearchBatch(Q, gallery.options().model_version,
                                          {.k = 2, .threads = std::max(1, o.threads)});
  // Pairs at or above the base's high threshold are what the duplicate check at enrolment
  // flags (one face under two identities, or twins the staff let in on purpose): known to the
  // site, they would otherwise set every level by themselves. They are left out and counted.
  const float flagged = base.at(SecurityLevel::kHigh).threshold;
  size_t flagged_loo = 0, flagged_pairs = 0;
  std::vector<float> loo;
  loo.reserve(P);
  for (size_t k = 0; k < P; ++k)
    for (const auto& cand : ranked[k])
      if (cand.person != stored[probe_rows[k]].person) {
        if (cand.score >= flagged)
          ++flagged_loo;
        else
          loo.push_back(cand.score);
        break;
      }

  // Probe × template pairs of different persons (a pair of two probes counts twice, which
  // leaves every rate as it is); only the highest few scores are kept (the tail).
  std::map<std::string, size_t> per_person;
  for (const auto& s : stored) ++per_person[s.person];
  double impostor_pairs = 0;
  for (size_t r : probe_rows) impostor_pairs += double(R - per_person[stored[r].person]);
  // Per-comparison rate each level needs at size N: FPIR(N) = 1 − (1 − p)^N.
  std::array<double, 3> need{};
  size_t keep = 1;
  for (auto l : kAllLevels) {
    need[int(l)] = 1 - std::pow(1 - o.target_fpir[int(l)], 1.0 / double(N));
    keep = std::max(keep, size_t(std::floor(need[int(l)] * impostor_pairs)) + 1);
  }
  keep = std::min<size_t>(keep, size_t(1) << 22);
  TopScores top(keep);
  {
    const auto& kern = BestKernels();
    const size_t block = 4096;
    std::vector<float> buf(kMaxProbes * block);
    for (size_t i = 0; i < P; i += kMaxProbes) {
      const int np = int(std::min<size_t>(kMaxProbes, P - i));
      for (size_t b0 = 0; b0 < R; b0 += block) {
        const size_t n = std::min(block, R - b0);
        kern.dots_f32(Q.data() + i * dim, np, F.data() + b0 * dim, n, dim, buf.data());
        for (int p = 0; p < np; ++p) {
          const std::string& who = stored[probe_rows[i + p]].person;
          for (size_t r = 0; r < n; ++r) {
            if (stored[b0 + r].person == who) continue;
            const float x = buf[p * n + r];
            if (x >= flagged)
              ++flagged_pairs;
            else
              top.Offer(x);
          }
        }
      }
    }
  }
  const std::vector<float> tail = top.Sorted();

  json levels = json::object();
  for (auto l : kAllLevels) {
    const int i = int(l);
    const float base_t = base.at(l).threshold;
    // Leave-one-out: each left-out template met persons − 1 others; the target is scaled from
    // N to that (FPIR grows about linearly with the gallery at these rates).
    const double loo_target = o.target_fpir[i] * double(persons - 1) / double(N);
    std::vector<float> work = loo;
    if (work.empty()) work.push_back(-1.f);
    const FmrPoint lp = ThresholdAtFmr(work, loo_target, 0.f);
    // Pairs: lowest t with at most `allowed` impostor pairs at or above it.
    const double allowed = std::floor(need[i] * impostor_pairs);
    const bool pairs_resolved = allowed >= 1 && size_t(allowed) < tail.size();
    const float pt = pairs_resolved ? std::nextafter(tail[size_t(allowed)], 2.f) : -1.f;
    float t = -1.f;
    std::string basis;
    if (lp.resolved) t = lp.threshold, basis = "leave-one-out";
    if (pairs_resolved && pt > t) t = pt, basis = "pairs";
    if (basis.empty()) {
      t = base_t, basis = "base (the gallery does not resolve the target)";
    } else if (o.never_below_base && t < base_t) {
      basis = "base (the site estimate " + std::to_string(t) + " is looser)";
      t = base_t;
    }
    c.thresholds.at(l).threshold = t;
    levels[LevelName(l)] = {{"base", base_t},
                            {"threshold", t},
                            {"basis", basis},
                            {"leave_one_out",
                             {{"threshold", lp.threshold},
                              {"resolved", lp.resolved},
                              {"probes", loo.size()},
                              {"target", loo_target},
                              {"fpir_at_chosen", RateAtOrAbove(loo, t)}}},
                            {"pairs",
                             {{"threshold", pt},
                              {"resolved", pairs_resolved},
                              {"impostor_pairs", impostor_pairs},
                              {"fmr_needed", need[i]}}}};
  }
  auto& T = c.thresholds;
  T.at(SecurityLevel::kNormal).threshold =
      std::max(T.at(SecurityLevel::kNormal).threshold, T.at(SecurityLevel::kLow).threshold);
  T.at(SecurityLevel::kHigh).threshold =
      std::max(T.at(SecurityLevel::kHigh).threshold, T.at(SecurityLevel::kNormal).threshold);
  report["levels"] = levels;
  report["left_out_at_or_above_high"] = {
      {"threshold", flagged}, {"templates", flagged_loo}, {"pairs", flagged_pairs}};
  T.datasets.push_back("site gallery (" + std::to_string(persons) + " persons, " +
                       std::to_string(R) + " templates)");
  c.report = report;
  return c;
}

}  // namespace anju::match
