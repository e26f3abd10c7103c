// Verification and presentation-attack metrics shared by the evaluators and tests.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace anju::eval {

struct ScoredPair {
  float score = 0;
  bool same = false;
  int fold = 0;
};

// Threshold that maximises accuracy on these pairs (midpoints between sorted scores).
float BestThreshold(const std::vector<ScoredPair>& pairs);
double AccuracyAt(const std::vector<ScoredPair>& pairs, float threshold);

struct KFoldResult {
  double mean_accuracy = 0, std_accuracy = 0;
  std::vector<double> fold_accuracy;
  std::vector<float> fold_threshold;
  float mean_threshold = 0;
};
// Standard protocol: for each fold the threshold is chosen on the other folds.
KFoldResult KFoldAccuracy(const std::vector<ScoredPair>& pairs);

struct RatePoint {
  double tar = 0;  // genuine accepted
  float threshold = 0;
  double far_achieved = 0;
  bool resolved = true;  // false when there are too few impostors for this FAR
};
// Lowest threshold whose false-accept rate is at most `far`.
RatePoint TarAtFar(const std::vector<ScoredPair>& pairs, double far);

struct PadRates {  // ISO/IEC 30107-3
  double apcer = 0, bpcer = 0, acer = 0;
  float threshold = 0;
};
// Scores are "live" probabilities: accepted as live when score ≥ threshold.
PadRates PadRatesAt(const std::vector<float>& live, const std::vector<float>& attack,
                    float threshold);
// Threshold where APCER and BPCER are (nearly) equal.
PadRates EqualErrorPoint(const std::vector<float>& live, const std::vector<float>& attack);

double Mean(const std::vector<double>& v);
double StdDev(const std::vector<double>& v);

}  // namespace anju::eval
