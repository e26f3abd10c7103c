// Threshold calibration: the arithmetic that turns impostor scores into the thresholds of
// the security levels. Two uses (docs/matching.md):
//
//  * Reference calibration (`anju calibrate --data LFW --asian DIR`): the shipped levels of
//    models/thresholds.json, from every pair of a large reference set (LFW) and of East-Asian
//    faces (the population anju serves), whose impostor tail is the one that counts.
//  * Site calibration (`anju calibrate --gallery DB`, and the server after an enrolment): the
//    levels for one site's gallery at its real size, from the enrolled residents scored against
//    each other. A stranger's chance of being taken for *someone* grows with the number of people
//    enrolled; the site's own gallery says how fast.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "match/index.h"
#include "match/thresholds.h"

namespace anju::match {

// ---- scores of a labelled feature set
struct PairScores {
  std::vector<float> genuine, impostor;
};
// Every pair of rows of FEATURES (n × dim, L2-normalised) scored once; a pair is genuine
// when the two rows carry the same label. LABELS.size() = n.
PairScores AllPairScores(std::span<const float> features, size_t dim,
                         std::span<const std::string> labels);

// ---- reference calibration (the shipped levels)
struct ReferenceScores {
  std::string name;  // "lfw (7701 faces, all pairs)" — recorded in the file
  PairScores scores;
};

struct ReferenceOptions {
  // Upper impostor quantiles at which the East-Asian tail is compared with LFW's; a quantile
  // is used only where the East-Asian set holds at least `min_tail_pairs` impostor pairs above
  // it (a tail point resting on 2 pairs is noise, not an offset).
  std::vector<double> offset_quantiles = {1e-2, 3e-3, 1e-3, 3e-4, 1e-4};
  size_t min_tail_pairs = 10;
  // Added to the largest impostor when a target FMR is not resolved by a data set.
  float unresolved_margin = 0.02f;
  std::array<float, 3> margins = {0.06f, 0.04f, 0.03f};  // high, normal, low
  Fusion fusion = kDefaultFusion;
  // Levels never below these (e.g. the levels being replaced, so that a recalibration cannot
  // make any level looser than it was). Empty = no floor.
  std::optional<Thresholds> floor;
};

struct Calibration {
  Thresholds thresholds;  // levels filled; model_version / created / datasets by the caller
  nlohmann::json report;  // per-data-set figures, the offsets and the chosen basis per level
};

// The shipped levels. For each level (target FMR per comparison):
//  1. LFW: the threshold at the target FMR over every LFW impostor pair;
//  2. East-Asian extrapolated: LFW's threshold + the largest East-Asian − LFW offset measured at
//     the resolved upper quantiles (the East-Asian tail taken as LFW's, shifted);
//  3. East-Asian empirical, when the East-Asian pairs resolve the target;
// the level takes the strictest of the three (never looser than the East-Asian data), and
// never goes below `options.floor` when one is given.
Calibration CalibrateReference(ReferenceScores lfw, ReferenceScores east_asian,
                               const ReferenceOptions& options = {});

// ---- site calibration (one gallery at its real size)
struct SiteOptions {
  // Open-set target per level: the share of strangers the whole gallery may accept
  // (FPIR), high / normal / low. The normal level's 0.5% at 400 residents is the same
  // per-comparison rate (1.25e-5) as the reference calibration's normal target.
  std::array<double, 3> target_fpir = {1e-3, 5e-3, 2e-2};
  // Persons the gallery will hold (0 = as many as it holds now): a site filling up can
  // calibrate for the size it is heading for.
  size_t gallery_persons = 0;
  // The site's thresholds never go below BASE's (the shipped levels): a small or unusual
  // gallery can only make a site stricter.
  bool never_below_base = true;
  // Below this many persons the gallery says nothing useful about its tail: BASE is kept.
  size_t min_persons = 50;
  // Templates used as probes at most (an even sample): cost ≈ probes × templates dot products
  // (5,000 × 20,000 ≈ 10 s on one core), FPIR resolution 1 / probes.
  size_t max_probes = 5000;
  int threads = 1;
};

// Levels for GALLERY, starting from BASE (fusion, margins, model version are kept).
// Two estimates of the stranger tail, the stricter wins per level:
//  * leave-one-out: every enrolled template searched against the other persons — the best
//    other-person score of each is what a stranger like it would meet; the threshold is the
//    point where the target share of them would be accepted;
//  * pairs: every pair of persons, FPIR(N) = 1 − (1 − FMR)^N solved for the per-comparison
//    FMR the target needs at the gallery's size.
// A target the gallery cannot resolve (too few persons) leaves that level at BASE. Scores at or
// above BASE's high threshold — the faces the duplicate check at enrolment flags — are left out
// (counted in the report): a known pair of look-alikes must not set every level.
// The server calls this after enrolments (docs/matching.md, "Per-site calibration").
Calibration CalibrateGallery(const FeatureIndex& gallery, const Thresholds& base,
                             const SiteOptions& options = {});

}  // namespace anju::match
