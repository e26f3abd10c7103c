// Liveness evaluation on any folders of images (R3.1.2.4): listing, the fixed tune /
// held-out split, per-image scores with an on-disk cache, and the operating points.
// Used by `anju eval liveness --live-dir … --attack-dir …` (BENCHMARKS.md "Liveness").
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "eval/open_set.h"
#include "vision/engine.h"

namespace anju::eval {

namespace fs = std::filesystem;

// "frame2" < "frame10": digit runs compare as numbers (frames named by counter).
bool NaturalLess(std::string_view a, std::string_view b);

// Every image file (.jpg .jpeg .png .bmp, any case) under DIR, recursively, in natural
// order of the path. Error(kNotFound) when DIR is not a directory.
std::vector<fs::path> ListImagesRecursive(const fs::path& dir);

// One approach of the sequence mode: a folder that directly holds images, its frames in
// natural name order.
struct ApproachDir {
  fs::path dir;
  std::vector<fs::path> frames;
};
// Every folder at or under DIR that directly holds images, in natural order.
std::vector<ApproachDir> ListApproaches(const fs::path& dir);

// The fixed split of a data set into a tune half and a held-out half. The unit is the
// identity: an item's key is the folder holding it (an image's folder, an approach
// folder's parent) relative to ROOT, or the item's own name when it sits directly in
// ROOT; distinct keys in natural order alternate tune, held-out, tune, … So no person is
// in both halves, the halves differ by at most one identity, and the split never depends
// on the scores.
// Split, ParseSplit and SplitName are those of eval/open_set.h.
// For each item (a file, or an approach folder) under ROOT: true if it is in the half.
std::vector<bool> InSplit(const std::vector<fs::path>& items, const fs::path& root, Split split);

struct LiveScore {
  bool found = false;  // a face was detected (the largest one is judged)
  float score = 0;     // live probability
  float face_px = 0;   // the face box's side
  // vision::TextureHighFrequencyLog of the same face (NaN: nothing measurable).
  float texture = 0;
  // Time of the network's score and of the texture cue for this image, ms; 0 when the
  // score came from the cache.
  float net_ms = 0, texture_ms = 0;
};

struct LiveScoreOptions {
  int threads = 2;
  fs::path cache;  // empty = no cache; entries keyed by path, size, mtime and settings
  bool progress = true;
};

// Scores every image (detector → largest face → LivenessChecker::Score with the engine's
// liveness options, without the texture cue, which is measured beside it with
// engine.liveness.texture so that its fusion can be evaluated at any weight). Images that
// do not decode count as "no face" (reported on stderr).
std::vector<LiveScore> ScoreLiveness(const std::vector<fs::path>& files, const fs::path& model_dir,
                                     const vision::EngineOptions& engine,
                                     const LiveScoreOptions& options);

// The lowest threshold at which at most TARGET of the attack scores are accepted
// (score ≥ threshold). Scores of no face are left out by the caller.
float ThresholdAtApcer(std::vector<float> attack, double target);
// The highest threshold at which at most TARGET of the live scores are refused
// (score < threshold).
float ThresholdAtBpcer(std::vector<float> live, double target);
// The tuning rule for the default threshold: the log-odds midpoint between the APCER and
// the BPCER operating points when they leave room (t_apcer < t_bpcer), else t_apcer (the
// attack target wins).
float MidpointThreshold(float t_apcer, float t_bpcer);

// A cue's log-odds as a straight line, logit = weight · (x − center), fitted by logistic
// regression with the two classes weighted equally (so the line carries no prior) and a
// small ridge on the weight (so separable data gives a finite line). How the texture cue's
// fusion weight and centre are chosen on the tune half (BENCHMARKS.md "Liveness").
struct LogisticLine {
  double weight = 0, center = 0;
};
LogisticLine FitLogisticLine(const std::vector<float>& live, const std::vector<float>& attack);

}  // namespace anju::eval
