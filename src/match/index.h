// FeatureIndex: the enrolled gallery in memory, searched exhaustively (exact top-k).
//
// * Templates are added, replaced and removed by person id; a person may hold several
//   templates (several enrolment photos) and the person's score is fused from them
//   (Fusion::kMax, kMean or kCentroid; see docs/matching.md for which is the default and why).
// * Storage is fp32 (2 KiB per 512-d template) or int8 with one scale per vector
//   (516 B); the accuracy loss of int8 is measured in BENCHMARKS.md.
// * Every mutator is atomic with respect to searches: a std::shared_mutex lets many
//   searches run together and gives a writer exclusive access, so a search sees the
//   gallery either before or after an update (ReplacePerson included), never half of it.
// * Features carry the version of the model that made them; the index refuses a feature
//   of another version or size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace anju::match {

enum class Precision { kFloat32, kInt8 };
// How a person's templates make one score against a probe:
//  kMax      — the best template (T templates give a stranger T chances);
//  kMean     — the mean of the template scores (lower than any single photo's scale when the
//              photos differ: a frontal and a turned photo average out);
//  kCentroid — the score against the normalised mean of the templates (one direction per
//              person: the scale of one good photo, one chance for a stranger).
enum class Fusion { kMax, kMean, kCentroid };

const char* PrecisionName(Precision p);  // "fp32" / "int8"
Precision ParsePrecision(std::string_view s);
const char* FusionName(Fusion f);  // "max" / "mean" / "centroid"
Fusion ParseFusion(std::string_view s);

// Measured on LFW (enrol 2 images, probe the rest): see docs/matching.md.
inline constexpr Fusion kDefaultFusion = Fusion::kMax;

struct IndexOptions {
  std::string model_version;  // required: features of any other version are refused
  size_t dim = 512;
  Precision precision = Precision::kFloat32;
  Fusion fusion = kDefaultFusion;
};

using TemplateId = uint64_t;

// One person in a ranked result.
struct Candidate {
  std::string person;
  float score = 0.f;  // fused person score (cosine similarity scale)
  float best_template_score = 0.f;
  TemplateId best_template = 0;
  uint32_t templates = 0;  // templates this person holds
};

struct SearchOptions {
  size_t k = 5;     // persons returned (fewer when the gallery is smaller)
  int threads = 1;  // worker threads for this call (the gallery is split between them)
};

// One template for ReplacePerson / bulk loading.
struct TemplateInput {
  std::span<const float> feature;
  TemplateId id = 0;  // 0 = assign a fresh id
};

class FeatureIndex {
 public:
  explicit FeatureIndex(IndexOptions options);
  FeatureIndex(const FeatureIndex&) = delete;
  FeatureIndex& operator=(const FeatureIndex&) = delete;

  // Adds a template for PERSON and returns its (fresh) id.
  TemplateId Add(const std::string& person, std::span<const float> feature,
                 std::string_view model_version);
  // Inserts or replaces the template with this id (used when loading a stored gallery).
  void Put(const std::string& person, TemplateId id, std::span<const float> feature,
           std::string_view model_version);
  // Many Put()s under one lock (loading a stored gallery).
  struct Entry {
    std::string person;
    TemplateId id;
    std::span<const float> feature;
  };
  void PutBatch(const std::vector<Entry>& entries, std::string_view model_version);
  // Atomically replaces all of PERSON's templates (creating the person if needed).
  std::vector<TemplateId> ReplacePerson(const std::string& person,
                                        const std::vector<TemplateInput>& templates,
                                        std::string_view model_version);
  bool RemoveTemplate(TemplateId id);
  size_t RemovePerson(const std::string& person);  // number of templates removed
  void Clear();

  // Top-k persons for one probe, best first; ties broken by person id.
  std::vector<Candidate> Search(std::span<const float> probe, std::string_view model_version,
                                const SearchOptions& options = {}) const;
  // Many probes (probes.size() = m × dim), read against one consistent gallery. The
  // gallery is streamed once per thread for all probes (cache blocking).
  std::vector<std::vector<Candidate>> SearchBatch(std::span<const float> probes,
                                                  std::string_view model_version,
                                                  const SearchOptions& options = {}) const;

  // Every template (fp32; int8 rows dequantised), in storage order: calibration from the
  // gallery itself (match::CalibrateGallery) reads them once.
  struct StoredTemplate {
    std::string person;
    TemplateId id = 0;
    std::vector<float> feature;
  };
  std::vector<StoredTemplate> Export() const;

  size_t size() const;     // templates
  size_t persons() const;  // persons with at least one template
  bool Contains(const std::string& person) const;
  std::vector<TemplateId> TemplatesOf(const std::string& person) const;
  // Bytes held for features and per-template bookkeeping (not the hash maps).
  size_t FeatureBytes() const;
  const IndexOptions& options() const { return options_; }
  const char* kernel_name() const;

 private:
  struct Work;
  void CheckFeature(std::span<const float> f, std::string_view version) const;
  uint32_t PersonSlot(const std::string& person);
  void AppendRow(uint32_t slot, TemplateId id, std::span<const float> f);
  void EraseRow(size_t row);
  void RecomputeMaxTemplates();
  void ScanLocked(const float* probes, size_t nprobes, size_t row_begin, size_t row_end,
                  Work* work) const;
  std::vector<std::vector<Candidate>> SearchLocked(std::span<const float> probes,
                                                   const SearchOptions& options) const;

  IndexOptions options_;
  // Writers go through turnstile_ first, so a steady stream of searches cannot starve an
  // update (glibc's rwlock prefers readers): new searches queue behind a waiting writer.
  mutable std::mutex turnstile_;
  mutable std::shared_mutex mu_;
  std::shared_lock<std::shared_mutex> ReadLock() const;
  struct WriteLock {
    std::unique_lock<std::mutex> t;
    std::unique_lock<std::shared_mutex> w;
  };
  WriteLock WriteLocked();
  // Row storage (one row per template).
  std::vector<float> f32_;
  std::vector<int8_t> i8_;
  std::vector<float> scale_;
  std::vector<uint32_t> row_slot_;
  std::vector<TemplateId> row_id_;
  std::unordered_map<TemplateId, size_t> id_row_;
  // Persons.
  std::vector<std::string> slot_name_;
  std::vector<uint32_t> slot_count_;
  std::vector<float> slot_norm_;       // |Σ templates| per person (kCentroid)
  std::vector<uint32_t> dirty_slots_;  // persons changed since the last FlushSlotNorms
  void FlushSlotNorms();
  std::vector<uint32_t> free_slots_;
  std::unordered_map<std::string, uint32_t> person_slot_;
  uint32_t max_templates_ = 0;
  TemplateId next_id_ = 1;
};

}  // namespace anju::match
