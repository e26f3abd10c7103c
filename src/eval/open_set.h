// Open-set 1:N identification as a site runs it (anju eval identify, anju calibrate):
// residents enrolled from one or more photos, a gallery padded to a community's size, probes
// passed through the terminal's own frame gate, and the decision of every security level
// counted as FPIR (strangers accepted), FNIR (residents not let in) and wrong-person accepts
// (a resident taken for another resident). docs/matching.md describes the protocol.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/feature_batch.h"
#include "match/calibration.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "vision/quality.h"

namespace anju::eval {

// ---- labelled face sets
struct LabelledFace {
  std::string person;
  std::filesystem::path file;
  FaceRecord rec;
};

struct LabelledSet {
  std::vector<LabelledFace> faces;  // every listed image, found or not, sorted by person, file
  std::string model_version;
  std::vector<std::string> sources;  // directories read
  size_t found() const;
};

enum class FaceChoice { kAuto, kLargest, kCentral };
FaceChoice ParseFaceChoice(std::string_view s);  // "auto" | "largest" | "central"

struct LoadOptions {
  std::filesystem::path model_dir;  // empty = DefaultModelDir()
  vision::EngineOptions engine;
  int threads = 2;
  bool cache = true;
  bool liveness = false;  // also score liveness (the optional liveness gate)
  // Which face of an image is the labelled one: central for LFW (it centres the named person),
  // largest elsewhere (photos of one person, camera frames).
  FaceChoice face = FaceChoice::kAuto;
  bool progress = true;
};

// DIR may be an LFW directory (DIR/lfw/<name>/<images>), a folder of person folders
// (DIR/people/ when present, else DIR/<person>/<images>), and/or hold images directly, each its
// own one-photo person named by its file stem. Features come from eval::EmbedFiles (cached).
LabelledSet LoadLabelledSet(const std::filesystem::path& dir, const LoadOptions& options);
// Several directories as one set; a person name met in two directories is kept apart.
LabelledSet LoadLabelledSets(const std::vector<std::filesystem::path>& dirs,
                             const LoadOptions& options);

// name → canonical name, from lines "NAME NAME [NAME...]" (# comments); an entry that is an
// image file name relabels that one image only (models/lfw-duplicate-identities.txt).
std::map<std::string, std::string> ReadDuplicateList(const std::filesystem::path& file);
void MergeDuplicates(LabelledSet& set, const std::map<std::string, std::string>& duplicates);

// Pairs of faces filed under different identities that score at least ABOVE, highest first:
// the same person filed twice (label noise) shows up here long before it shows up as a
// "false accept". Checked by eye, such pairs go into a duplicate list.
struct LookAlike {
  float score = 0;
  const LabelledFace* a = nullptr;
  const LabelledFace* b = nullptr;
};
std::vector<LookAlike> CrossIdentityPairs(const LabelledSet& set, float above);

// ---- a fixed tune / held-out split by identity
enum class Split { kAll, kTune, kHeldOut };
Split ParseSplit(std::string_view s);  // "all" | "tune" | "heldout"
const char* SplitName(Split s);
// Stable: a hash of SEED and the identity name (never of the order or the data set's size).
bool IsHeldOut(std::string_view person, uint32_t seed);
LabelledSet SelectSplit(const LabelledSet& set, Split split, uint32_t seed);

// ---- the protocol
enum class TemplateMode {
  kEach,  // one template per enrolment photo, fused per person by the index (max / mean)
  kMean   // one template: the normalised mean of the enrolment photos' features
};
TemplateMode ParseTemplateMode(std::string_view s);  // "each" | "mean"
const char* TemplateModeName(TemplateMode m);

struct HubOptions {
  // Gallery-side correction: a person whose template scores high against many faces (a hub)
  // has score − strength × max(0, hubness − median hubness) where hubness is the mean of its
  // `cohort_top` best scores against the cohort (the other enrolled persons, or COHORT faces).
  float strength = 0;  // 0 = off
  size_t cohort_top = 10;
};

struct OpenSetOptions {
  size_t enrol = 1;  // photos enrolled per resident (the first ones, by file name)
  TemplateMode templates = TemplateMode::kEach;
  // Probes per resident: 0 = every photo after the enrolled ones; k > 0 = the LAST k photos
  // (so that runs enrolling 1, 2 or 3 photos probe the same photos).
  size_t probes_per_resident = 0;
  // Photos of one person fused into one probe (a sequence, as the terminal fuses the frames of
  // one approach): every combination of this many probe photos, at most `max_sequences` per
  // resident.
  size_t probe_frames = 1;
  size_t max_sequences = 10;
  size_t gallery_size = 0;        // pad the gallery to this many persons (0 = no padding)
  double distractor_share = 0.5;  // at most this share of the one-photo people pads the gallery
  unsigned seed = 7;              // which one-photo people pad, the random vectors, door units
  match::Precision precision = match::Precision::kFloat32;
  match::Fusion fusion = match::kDefaultFusion;
  int threads = 2;
  vision::FrameGate gate;           // the terminal's gate, applied to every probe frame
  float liveness_threshold = -1.f;  // ≥ 0: frames scoring below are refused as not live
  // Each resident's probes also searched with the resident left out of the gallery: strangers
  // photographed like residents (and, with probe_frames > 1, strangers with sequences).
  bool absent_residents = true;
  bool site_calibration = false;  // levels from match::CalibrateGallery on the gallery
  match::SiteOptions site;
  HubOptions hub;
  // Unit doors of this many persons (0 = off): compares a terminal holding only its door's
  // persons with one holding the whole gallery and opening for the door's allowed list.
  size_t door_size = 0;
  // Margins override (empty = the thresholds file's), high / normal / low.
  std::optional<std::array<float, 3>> margins;
};

struct OpenSetInputs {
  const LabelledSet* set = nullptr;          // residents and one-photo people
  const LabelledSet* strangers = nullptr;    // optional: more non-mated probes (never enrolled)
  const LabelledSet* distractors = nullptr;  // optional: real faces padding after the set's own
  const LabelledSet* cohort = nullptr;       // optional: cohort for the hub correction
};

// The figures as JSON (keys in docs/matching.md): gallery, probe counts, rank-1, FNIR at FPIR
// 1% / 0.1%, and with THRESHOLDS per level: fpir, fnir, mated_wrong_person_accepted,
// wrong_person_rate, …; `gated` holds the same for probes that pass the frame gate,
// `quality_refused` the probes it refused.
nlohmann::json RunOpenSet(const OpenSetInputs& inputs, const OpenSetOptions& options,
                          const match::Thresholds* thresholds);

// ---- calibration from labelled sets (anju calibrate)
struct ReferenceCalibrationInputs {
  const LabelledSet* lfw = nullptr;         // duplicates merged already
  const LabelledSet* east_asian = nullptr;  // the population's faces (split applied already)
  std::string command;                      // recorded in the report
  int threads = 2;
};
// match::CalibrateReference on every pair of both sets, plus the template-fusion experiment on
// LFW (enrol 2 photos, probe the rest: max vs mean) that picks the file's fusion.
match::Calibration CalibrateFromSets(const ReferenceCalibrationInputs& inputs,
                                     const match::ReferenceOptions& options = {});

}  // namespace anju::eval
