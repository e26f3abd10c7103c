// Security levels, calibrated thresholds, the open-set decision and the duplicate
// check. See docs/matching.md for how the shipped thresholds were made and how a site
// recalibrates on its own photos.
#pragma once

#include <array>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "match/index.h"

namespace anju::match {

enum class SecurityLevel { kHigh = 0, kNormal = 1, kLow = 2 };
inline constexpr std::array<SecurityLevel, 3> kAllLevels = {
    SecurityLevel::kHigh, SecurityLevel::kNormal, SecurityLevel::kLow};
const char* LevelName(SecurityLevel level);  // "high" / "normal" / "low"
SecurityLevel ParseLevel(std::string_view s);
// Target false-match rate per comparison: high 1e-6, normal 1e-5, low 1e-4.
double TargetFmr(SecurityLevel level);
// Default best-vs-second margins (cosine units): high 0.06, normal 0.04, low 0.03.
float DefaultMargin(SecurityLevel level);

struct LevelSetting {
  float threshold = 1.f;  // accept only when the best person's score ≥ threshold
  float margin = 0.f;     // ... and it beats the second-best person by at least this
  double target_fmr = 0;
};

// A thresholds file: JSON, written by `anju calibrate`, read by every program that
// decides. It belongs to one model version and is refused by any other.
struct Thresholds {
  int format = 1;
  std::string model_version;
  Fusion fusion = kDefaultFusion;
  std::array<LevelSetting, 3> levels{};
  std::vector<std::string> datasets;  // data sets the thresholds were calibrated on
  std::string created;                // UTC time stamp
  std::string report_json = "{}";     // per-data-set figures (JSON object, kept verbatim)

  const LevelSetting& at(SecurityLevel l) const { return levels[static_cast<int>(l)]; }
  LevelSetting& at(SecurityLevel l) { return levels[static_cast<int>(l)]; }

  std::string ToJson() const;
  void Save(const std::filesystem::path& file) const;
  // EXPECTED_MODEL_VERSION empty = accept any version (inspection tools only).
  static Thresholds Parse(std::string_view json_text, std::string_view expected_model_version,
                          const std::string& origin = "thresholds");
  static Thresholds Load(const std::filesystem::path& file,
                         std::string_view expected_model_version);
};

// <source checkout>/models (shipped thresholds and the LFW duplicate-identity list).
std::filesystem::path RepoModelsDir();

// The shipped file: $ANJU_THRESHOLDS, else <source>/models/thresholds.json, else
// <model dir>/thresholds.json. Empty when none exists.
std::filesystem::path DefaultThresholdsPath(const std::filesystem::path& model_dir = {});

enum class Outcome { kAccept, kStranger, kUncertain };
const char* OutcomeName(Outcome o);  // "accept" / "stranger" / "uncertain"

struct Decision {
  Outcome outcome = Outcome::kStranger;
  std::string person;       // best person (also reported when not accepted)
  float score = 0.f;        // best person's score (−1 when the gallery is empty)
  float second_score = -1;  // second-best person's score (−1 when there is none)
};
// RANKED: persons best first (FeatureIndex::Search with k ≥ 2).
// stranger: best < threshold; uncertain: best ≥ threshold but best − second < margin;
// accept otherwise.
Decision Decide(std::span<const Candidate> ranked, const LevelSetting& level);

// Enrolled persons (other than EXCLUDE_PERSON) whose score against FEATURE reaches
// HIGH_THRESHOLD: a new enrolment matching any of them is probably the same face under a
// second identity and must be reported before it is stored.
std::vector<Candidate> FindDuplicates(const FeatureIndex& index, std::span<const float> feature,
                                      std::string_view model_version, float high_threshold,
                                      std::string_view exclude_person = {});

// ---- calibration arithmetic
struct FmrPoint {
  float threshold = 1.f;
  double fmr = 0;  // achieved false-match rate on these impostors
  size_t impostors = 0;
  double expected_false = 0;  // target × impostors: < 1 means the target is not resolved
  bool resolved = false;      // false: threshold = max impostor + safety margin
};
// Lowest threshold t with (#impostor scores ≥ t) ≤ target × N. When target × N < 1 the
// data cannot resolve the target: the threshold is the largest impostor score plus
// UNRESOLVED_MARGIN and `resolved` is false. IMPOSTORS is reordered.
FmrPoint ThresholdAtFmr(std::vector<float>& impostors, double target,
                        float unresolved_margin = 0.02f);
double RateAtOrAbove(std::span<const float> scores, float threshold);  // FMR on impostors
double RateBelow(std::span<const float> scores, float threshold);      // FNMR on genuine
// The score with QUANTILE of SCORES above it (e.g. 1e-3 → upper 0.1% point).
float UpperQuantile(std::vector<float>& scores, double quantile);

}  // namespace anju::match
