#include "match/index.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "match/kernels.h"

namespace anju::match {

const char* PrecisionName(Precision p) {
  return p == Precision::kInt8 ? "int8" : "fp32";
}
Precision ParsePrecision(std::string_view s) {
  if (s == "fp32" || s == "float32") return Precision::kFloat32;
  if (s == "int8") return Precision::kInt8;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown precision '" + std::string(s) + "' (fp32|int8)");
}
const char* FusionName(Fusion f) {
  return f == Fusion::kMean ? "mean" : f == Fusion::kCentroid ? "centroid" : "max";
}
Fusion ParseFusion(std::string_view s) {
  if (s == "max") return Fusion::kMax;
  if (s == "mean") return Fusion::kMean;
  if (s == "centroid") return Fusion::kCentroid;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown score fusion '" + std::string(s) + "' (max|mean|centroid)");
}

// Per-search scratch: one accumulator per probe.
struct FeatureIndex::Work {
  Fusion fusion;
  size_t nprobes = 0, keep = 0, nslots = 0;
  // kMax: the `keep` best rows per probe (unsorted) and their smallest score.
  std::vector<std::vector<std::pair<float, uint32_t>>> top;
  std::vector<float> top_min;
  // kMean, kCentroid: per probe × slot sum of scores, best score and its row.
  std::vector<float> sum, best;
  std::vector<uint32_t> best_row;

  Work(Fusion f, size_t probes, size_t keep_rows, size_t slots)
      : fusion(f), nprobes(probes), keep(keep_rows), nslots(slots) {
    if (fusion == Fusion::kMax) {
      top.resize(nprobes);
      for (auto& t : top) t.reserve(keep);
      top_min.assign(nprobes, -std::numeric_limits<float>::infinity());
    } else {
      sum.assign(nprobes * nslots, 0.f);
      best.assign(nprobes * nslots, -std::numeric_limits<float>::infinity());
      best_row.assign(nprobes * nslots, 0);
    }
  }

  void OfferMax(size_t p, uint32_t row, float s) {
    auto& t = top[p];
    if (t.size() < keep) {
      t.emplace_back(s, row);
      if (t.size() == keep) top_min[p] = std::min_element(t.begin(), t.end())->first;
      return;
    }
    if (!(s > top_min[p])) return;
    auto it = std::min_element(t.begin(), t.end());
    *it = {s, row};
    top_min[p] = std::min_element(t.begin(), t.end())->first;
  }
  void OfferMean(size_t p, uint32_t slot, uint32_t row, float s) {
    size_t i = p * nslots + slot;
    sum[i] += s;
    if (s > best[i]) best[i] = s, best_row[i] = row;
  }
  void Merge(const Work& o) {
    if (fusion == Fusion::kMax) {
      for (size_t p = 0; p < nprobes; ++p)
        top[p].insert(top[p].end(), o.top[p].begin(), o.top[p].end());
    } else {
      for (size_t i = 0; i < sum.size(); ++i) {
        sum[i] += o.sum[i];
        if (o.best[i] > best[i]) best[i] = o.best[i], best_row[i] = o.best_row[i];
      }
    }
  }
};

FeatureIndex::FeatureIndex(IndexOptions options) : options_(std::move(options)) {
  if (options_.model_version.empty())
    throw Error(ErrorCode::kInvalidArgument,
                "FeatureIndex needs the model version of its features");
  if (options_.dim == 0) throw Error(ErrorCode::kInvalidArgument, "FeatureIndex: dim must be > 0");
}

std::shared_lock<std::shared_mutex> FeatureIndex::ReadLock() const {
  { std::lock_guard t(turnstile_); }
  return std::shared_lock<std::shared_mutex>(mu_);
}

FeatureIndex::WriteLock FeatureIndex::WriteLocked() {
  WriteLock l{std::unique_lock<std::mutex>(turnstile_), {}};
  l.w = std::unique_lock<std::shared_mutex>(mu_);
  return l;
}

const char* FeatureIndex::kernel_name() const {
  return BestKernels().name;
}

void FeatureIndex::CheckFeature(std::span<const float> f, std::string_view version) const {
  if (version != options_.model_version)
    throw Error(ErrorCode::kInvalidArgument,
                "特征模型版本不符 / feature of model version '" + std::string(version) +
                    "' cannot be compared with a gallery of version '" + options_.model_version +
                    "'");
  if (f.size() != options_.dim)
    throw Error(ErrorCode::kInvalidArgument, "feature has " + std::to_string(f.size()) +
                                                 " values, the gallery expects " +
                                                 std::to_string(options_.dim));
  for (float x : f)
    if (!std::isfinite(x))
      throw Error(ErrorCode::kInvalidArgument, "feature holds a non-finite value");
}

uint32_t FeatureIndex::PersonSlot(const std::string& person) {
  if (person.empty()) throw Error(ErrorCode::kInvalidArgument, "empty person id");
  auto it = person_slot_.find(person);
  if (it != person_slot_.end()) return it->second;
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
    slot_name_[slot] = person;
    slot_count_[slot] = 0;
    slot_norm_[slot] = 1.f;
  } else {
    slot = static_cast<uint32_t>(slot_name_.size());
    slot_name_.push_back(person);
    slot_count_.push_back(0);
    slot_norm_.push_back(1.f);
  }
  person_slot_.emplace(person, slot);
  return slot;
}

void FeatureIndex::AppendRow(uint32_t slot, TemplateId id, std::span<const float> f) {
  const size_t row = row_id_.size();
  if (options_.precision == Precision::kFloat32) {
    f32_.insert(f32_.end(), f.begin(), f.end());
  } else {
    i8_.resize((row + 1) * options_.dim);
    scale_.push_back(QuantizeInt8(f, i8_.data() + row * options_.dim));
  }
  row_slot_.push_back(slot);
  row_id_.push_back(id);
  id_row_[id] = row;
  max_templates_ = std::max(max_templates_, ++slot_count_[slot]);
  next_id_ = std::max(next_id_, id + 1);
  dirty_slots_.push_back(slot);
}

// |Σ templates| of every person changed by the mutator that calls this (under its write lock):
// the centroid score is Σ template scores / that norm. One pass over the rows, grouped by
// person, so that loading a large gallery costs O(rows), not O(rows²).
void FeatureIndex::FlushSlotNorms() {
  if (options_.fusion != Fusion::kCentroid || dirty_slots_.empty()) {
    dirty_slots_.clear();
    return;
  }
  std::vector<char> mark(slot_name_.size(), 0);
  for (uint32_t s : dirty_slots_) mark[s] = 1;
  dirty_slots_.clear();
  std::vector<std::pair<uint32_t, uint32_t>> rows;  // (slot, row)
  for (size_t r = 0; r < row_slot_.size(); ++r)
    if (mark[row_slot_[r]]) rows.emplace_back(row_slot_[r], uint32_t(r));
  std::sort(rows.begin(), rows.end());
  const size_t dim = options_.dim;
  std::vector<double> sum(dim);
  for (size_t i = 0; i < rows.size();) {
    const uint32_t slot = rows[i].first;
    std::fill(sum.begin(), sum.end(), 0.0);
    for (; i < rows.size() && rows[i].first == slot; ++i) {
      const size_t r = rows[i].second;
      for (size_t d = 0; d < dim; ++d)
        sum[d] += options_.precision == Precision::kFloat32 ? double(f32_[r * dim + d])
                                                            : double(i8_[r * dim + d]) * scale_[r];
    }
    double n = 0;
    for (double x : sum) n += x * x;
    slot_norm_[slot] = n > 0 ? float(std::sqrt(n)) : 1.f;
  }
}

// Moves the last row into ROW. Leaves person bookkeeping of an emptied person to the caller.
void FeatureIndex::EraseRow(size_t row) {
  const size_t last = row_id_.size() - 1, dim = options_.dim;
  const uint32_t slot = row_slot_[row];
  id_row_.erase(row_id_[row]);
  if (row != last) {
    if (options_.precision == Precision::kFloat32) {
      std::copy_n(f32_.begin() + last * dim, dim, f32_.begin() + row * dim);
    } else {
      std::copy_n(i8_.begin() + last * dim, dim, i8_.begin() + row * dim);
      scale_[row] = scale_[last];
    }
    row_slot_[row] = row_slot_[last];
    row_id_[row] = row_id_[last];
    id_row_[row_id_[row]] = row;
  }
  if (options_.precision == Precision::kFloat32)
    f32_.resize(last * dim);
  else
    i8_.resize(last * dim), scale_.pop_back();
  row_slot_.pop_back();
  row_id_.pop_back();
  if (--slot_count_[slot] == 0) {
    person_slot_.erase(slot_name_[slot]);
    slot_name_[slot].clear();
    free_slots_.push_back(slot);
  } else {
    dirty_slots_.push_back(slot);
  }
}

void FeatureIndex::RecomputeMaxTemplates() {
  max_templates_ = 0;
  for (uint32_t c : slot_count_) max_templates_ = std::max(max_templates_, c);
}

TemplateId FeatureIndex::Add(const std::string& person, std::span<const float> feature,
                             std::string_view model_version) {
  CheckFeature(feature, model_version);
  auto lock = WriteLocked();
  const TemplateId id = next_id_;
  AppendRow(PersonSlot(person), id, feature);
  FlushSlotNorms();
  return id;
}

void FeatureIndex::Put(const std::string& person, TemplateId id, std::span<const float> feature,
                       std::string_view model_version) {
  CheckFeature(feature, model_version);
  if (id == 0) throw Error(ErrorCode::kInvalidArgument, "template id 0 is reserved");
  auto lock = WriteLocked();
  if (auto it = id_row_.find(id); it != id_row_.end()) EraseRow(it->second);
  AppendRow(PersonSlot(person), id, feature);
  RecomputeMaxTemplates();
  FlushSlotNorms();
}

void FeatureIndex::PutBatch(const std::vector<Entry>& entries, std::string_view model_version) {
  for (auto& e : entries) {
    CheckFeature(e.feature, model_version);
    if (e.id == 0) throw Error(ErrorCode::kInvalidArgument, "template id 0 is reserved");
  }
  auto lock = WriteLocked();
  for (auto& e : entries) {
    if (auto it = id_row_.find(e.id); it != id_row_.end()) EraseRow(it->second);
    AppendRow(PersonSlot(e.person), e.id, e.feature);
  }
  RecomputeMaxTemplates();
  FlushSlotNorms();
}

std::vector<TemplateId> FeatureIndex::ReplacePerson(const std::string& person,
                                                    const std::vector<TemplateInput>& templates,
                                                    std::string_view model_version) {
  for (auto& t : templates) CheckFeature(t.feature, model_version);
  auto lock = WriteLocked();
  if (auto it = person_slot_.find(person); it != person_slot_.end()) {
    const uint32_t slot = it->second;
    for (size_t r = row_id_.size(); r-- > 0;)
      if (row_slot_[r] == slot) EraseRow(r);
  }
  std::vector<TemplateId> ids;
  for (auto& t : templates) {
    TemplateId id = t.id ? t.id : next_id_;
    if (auto it = id_row_.find(id); it != id_row_.end()) EraseRow(it->second);
    AppendRow(PersonSlot(person), id, t.feature);
    ids.push_back(id);
  }
  RecomputeMaxTemplates();
  FlushSlotNorms();
  return ids;
}

bool FeatureIndex::RemoveTemplate(TemplateId id) {
  auto lock = WriteLocked();
  auto it = id_row_.find(id);
  if (it == id_row_.end()) return false;
  EraseRow(it->second);
  RecomputeMaxTemplates();
  FlushSlotNorms();
  return true;
}

size_t FeatureIndex::RemovePerson(const std::string& person) {
  auto lock = WriteLocked();
  auto it = person_slot_.find(person);
  if (it == person_slot_.end()) return 0;
  const uint32_t slot = it->second;
  size_t removed = 0;
  for (size_t r = row_id_.size(); r-- > 0;)
    if (row_slot_[r] == slot) EraseRow(r), ++removed;
  RecomputeMaxTemplates();
  FlushSlotNorms();
  return removed;
}

void FeatureIndex::Clear() {
  auto lock = WriteLocked();
  f32_.clear(), i8_.clear(), scale_.clear(), row_slot_.clear(), row_id_.clear(), id_row_.clear();
  slot_name_.clear(), slot_count_.clear(), slot_norm_.clear(), free_slots_.clear(),
      person_slot_.clear(), dirty_slots_.clear();
  max_templates_ = 0;
}

size_t FeatureIndex::size() const {
  auto lock = ReadLock();
  return row_id_.size();
}
size_t FeatureIndex::persons() const {
  auto lock = ReadLock();
  return person_slot_.size();
}
bool FeatureIndex::Contains(const std::string& person) const {
  auto lock = ReadLock();
  return person_slot_.count(person) > 0;
}
std::vector<TemplateId> FeatureIndex::TemplatesOf(const std::string& person) const {
  auto lock = ReadLock();
  std::vector<TemplateId> ids;
  auto it = person_slot_.find(person);
  if (it == person_slot_.end()) return ids;
  for (size_t r = 0; r < row_id_.size(); ++r)
    if (row_slot_[r] == it->second) ids.push_back(row_id_[r]);
  std::sort(ids.begin(), ids.end());
  return ids;
}
std::vector<FeatureIndex::StoredTemplate> FeatureIndex::Export() const {
  auto lock = ReadLock();
  const size_t dim = options_.dim;
  std::vector<StoredTemplate> out(row_id_.size());
  for (size_t r = 0; r < out.size(); ++r) {
    out[r].person = slot_name_[row_slot_[r]];
    out[r].id = row_id_[r];
    out[r].feature.resize(dim);
    if (options_.precision == Precision::kFloat32)
      std::copy_n(f32_.begin() + r * dim, dim, out[r].feature.begin());
    else
      for (size_t d = 0; d < dim; ++d) out[r].feature[d] = float(i8_[r * dim + d]) * scale_[r];
  }
  return out;
}

size_t FeatureIndex::FeatureBytes() const {
  auto lock = ReadLock();
  return f32_.size() * sizeof(float) + i8_.size() + scale_.size() * sizeof(float) +
         row_slot_.size() * sizeof(uint32_t) + row_id_.size() * sizeof(TemplateId);
}

void FeatureIndex::ScanLocked(const float* probes, size_t nprobes, size_t row_begin, size_t row_end,
                              Work* w) const {
  const Kernels& kern = BestKernels();
  const size_t dim = options_.dim;
  const bool int8 = options_.precision == Precision::kInt8;
  // Blocks small enough to stay in L2 while every probe of the chunk passes over them.
  const size_t block = int8 ? 1024 : 256;
  std::vector<int16_t> q16;
  std::vector<float> qscale;
  if (int8) {
    q16.resize(nprobes * dim);
    qscale.resize(nprobes);
    std::vector<int8_t> code(dim);
    for (size_t p = 0; p < nprobes; ++p) {
      qscale[p] = QuantizeInt8({probes + p * dim, dim}, code.data());
      std::copy(code.begin(), code.end(), q16.begin() + p * dim);
    }
  }
  std::vector<float> outf(kMaxProbes * block);
  std::vector<int32_t> outi(int8 ? kMaxProbes * block : 0);
  for (size_t b = row_begin; b < row_end; b += block) {
    const size_t n = std::min(block, row_end - b);
    for (size_t g = 0; g < nprobes; g += kMaxProbes) {
      const int P = static_cast<int>(std::min<size_t>(kMaxProbes, nprobes - g));
      if (int8) {
        kern.dots_i8(q16.data() + g * dim, P, i8_.data() + b * dim, n, dim, outi.data());
        for (int p = 0; p < P; ++p)
          for (size_t r = 0; r < n; ++r)
            outf[p * n + r] = float(outi[p * n + r]) * qscale[g + p] * scale_[b + r];
      } else {
        kern.dots_f32(probes + g * dim, P, f32_.data() + b * dim, n, dim, outf.data());
      }
      if (w->fusion == Fusion::kMax) {
        for (int p = 0; p < P; ++p) {
          const float* s = outf.data() + p * n;
          const float floor = w->top_min[g + p];
          for (size_t r = 0; r < n; ++r)
            if (s[r] > floor || w->top[g + p].size() < w->keep)
              w->OfferMax(g + p, static_cast<uint32_t>(b + r), s[r]);
        }
      } else {
        for (int p = 0; p < P; ++p)
          for (size_t r = 0; r < n; ++r)
            w->OfferMean(g + p, row_slot_[b + r], static_cast<uint32_t>(b + r), outf[p * n + r]);
      }
    }
  }
}

std::vector<std::vector<Candidate>> FeatureIndex::SearchLocked(std::span<const float> probes,
                                                               const SearchOptions& opt) const {
  const size_t dim = options_.dim, m = probes.size() / dim, rows = row_id_.size();
  std::vector<std::vector<Candidate>> results(m);
  if (rows == 0 || m == 0 || opt.k == 0) return results;
  const size_t k = std::min(opt.k, person_slot_.size());
  const size_t keep = (k - 1) * std::max<size_t>(max_templates_, 1) + 1;
  const size_t nslots = slot_name_.size();
  const size_t threads = std::clamp<size_t>(opt.threads, 1, 64);
  const Fusion fusion = options_.fusion;

  auto finish = [&](const Work& w, size_t p, std::vector<Candidate>& out) {
    if (fusion == Fusion::kMax) {
      auto top = w.top[p];
      std::sort(top.begin(), top.end(), [&](auto& a, auto& b) {
        return a.first != b.first ? a.first > b.first : row_id_[a.second] < row_id_[b.second];
      });
      std::vector<uint32_t> seen;
      for (auto& [s, row] : top) {
        const uint32_t slot = row_slot_[row];
        if (std::find(seen.begin(), seen.end(), slot) != seen.end()) continue;
        seen.push_back(slot);
        out.push_back({slot_name_[slot], s, s, row_id_[row], slot_count_[slot]});
        if (out.size() == k) break;
      }
    } else {
      std::vector<std::pair<float, uint32_t>> all;
      all.reserve(person_slot_.size());
      const bool centroid = fusion == Fusion::kCentroid;
      for (uint32_t slot = 0; slot < nslots; ++slot)
        if (slot_count_[slot])
          all.emplace_back(
              w.sum[p * nslots + slot] / (centroid ? slot_norm_[slot] : float(slot_count_[slot])),
              slot);
      auto by = [&](auto& a, auto& b) {
        return a.first != b.first ? a.first > b.first : slot_name_[a.second] < slot_name_[b.second];
      };
      std::partial_sort(all.begin(), all.begin() + k, all.end(), by);
      for (size_t i = 0; i < k; ++i) {
        const uint32_t slot = all[i].second;
        const size_t j = p * nslots + slot;
        out.push_back(
            {slot_name_[slot], all[i].first, w.best[j], row_id_[w.best_row[j]], slot_count_[slot]});
      }
    }
    // Equal scores: order by person id so that results are deterministic.
    std::stable_sort(out.begin(), out.end(), [](const Candidate& a, const Candidate& b) {
      return a.score != b.score ? a.score > b.score : a.person < b.person;
    });
  };

  if (m < threads) {
    // Few probes: split the gallery rows between threads.
    std::vector<Work> works;
    for (size_t t = 0; t < threads; ++t) works.emplace_back(fusion, m, keep, nslots);
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t)
      pool.emplace_back([&, t] {
        ScanLocked(probes.data(), m, rows * t / threads, rows * (t + 1) / threads, &works[t]);
      });
    ScanLocked(probes.data(), m, 0, rows / threads, &works[0]);
    for (auto& th : pool) th.join();
    for (size_t t = 1; t < threads; ++t) works[0].Merge(works[t]);
    for (size_t p = 0; p < m; ++p) finish(works[0], p, results[p]);
    return results;
  }
  // Many probes: split the probes; each thread streams the gallery once per chunk.
  const size_t chunk =
      fusion == Fusion::kMax ? 64 : std::clamp<size_t>((1u << 22) / (nslots + 1), 1, 16);
  auto worker = [&](size_t p0, size_t p1) {
    for (size_t c = p0; c < p1; c += chunk) {
      const size_t n = std::min(chunk, p1 - c);
      Work w(fusion, n, keep, nslots);
      ScanLocked(probes.data() + c * dim, n, 0, rows, &w);
      for (size_t p = 0; p < n; ++p) finish(w, p, results[c + p]);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t)
    pool.emplace_back(worker, m * t / threads, m * (t + 1) / threads);
  worker(0, m / threads);
  for (auto& th : pool) th.join();
  return results;
}

std::vector<Candidate> FeatureIndex::Search(std::span<const float> probe,
                                            std::string_view model_version,
                                            const SearchOptions& options) const {
  CheckFeature(probe, model_version);
  auto lock = ReadLock();
  return std::move(SearchLocked(probe, options)[0]);
}

std::vector<std::vector<Candidate>> FeatureIndex::SearchBatch(std::span<const float> probes,
                                                              std::string_view model_version,
                                                              const SearchOptions& options) const {
  const size_t dim = options_.dim;
  if (probes.size() % dim)
    throw Error(ErrorCode::kInvalidArgument, "probe batch is not a whole number of features");
  for (size_t p = 0; p < probes.size() / dim; ++p)
    CheckFeature(probes.subspan(p * dim, dim), model_version);
  auto lock = ReadLock();
  return SearchLocked(probes, options);
}

}  // namespace anju::match
