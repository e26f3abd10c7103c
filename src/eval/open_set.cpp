#include "eval/open_set.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "core/paths.h"
#include "eval/datasets.h"
#include "vision/model_set.h"

namespace anju::eval {

namespace fs = std::filesystem;
using match::Candidate;
using match::FeatureIndex;
using nlohmann::json;

size_t LabelledSet::found() const {
  return size_t(std::count_if(faces.begin(), faces.end(), [](auto& f) { return f.rec.found; }));
}

FaceChoice ParseFaceChoice(std::string_view s) {
  if (s == "auto") return FaceChoice::kAuto;
  if (s == "largest") return FaceChoice::kLargest;
  if (s == "central") return FaceChoice::kCentral;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown face choice '" + std::string(s) + "' (auto|largest|central)");
}

namespace {

bool IsImageFile(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".pgm" || e == ".webp";
}

}  // namespace

LabelledSet LoadLabelledSet(const fs::path& dir_in, const LoadOptions& o) {
  std::error_code ec;
  const fs::path dir = fs::weakly_canonical(dir_in, ec);
  if (!fs::is_directory(dir))
    throw Error(ErrorCode::kNotFound, "not a directory: " + dir_in.string());
  const bool lfw = fs::is_directory(dir / "lfw");
  const fs::path root = lfw ? dir / "lfw" : fs::is_directory(dir / "people") ? dir / "people" : dir;
  LabelledSet set;
  set.sources.push_back(root.string());
  std::vector<std::pair<std::string, fs::path>> items;
  for (auto& [name, files] : ListIdentityFolders(root))
    for (auto& f : files) items.emplace_back(name, f);
  if (!lfw)
    for (auto& e : fs::directory_iterator(root))
      if (e.is_regular_file() && IsImageFile(e.path()))
        items.emplace_back(e.path().stem().string(), e.path());
  if (items.empty())
    throw Error(ErrorCode::kNotFound,
                "no face images (person folders or image files) in " + root.string());
  std::sort(items.begin(), items.end());
  std::vector<fs::path> files;
  for (auto& [p, f] : items) files.push_back(f);
  const bool central = o.face == FaceChoice::kCentral || (o.face == FaceChoice::kAuto && lfw);
  BatchOptions b;
  b.threads = o.threads;
  b.with_pose = false;  // the terminal's quality uses landmark pose; so does the gate here
  b.with_liveness = o.liveness;
  b.central_face = central;
  b.progress = o.progress;
  // One cache file per setting: a file belongs to one settings key, and a different key
  // would discard it.
  if (o.cache)
    b.cache = DefaultCachePath(std::string(central ? "lfw-match" : "faces-match") +
                               (o.liveness ? "-live" : ""));
  const fs::path models = o.model_dir.empty() ? DefaultModelDir() : o.model_dir;
  auto rec = EmbedFiles(files, models, o.engine, b);
  set.model_version = vision::ModelSet::Load(models, false)->feature_version();
  set.faces.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i)
    set.faces.push_back({items[i].first, items[i].second, std::move(rec[i])});
  return set;
}

LabelledSet LoadLabelledSets(const std::vector<fs::path>& dirs, const LoadOptions& o) {
  LabelledSet all;
  std::set<std::string> taken;
  for (const auto& d : dirs) {
    LabelledSet s = LoadLabelledSet(d, o);
    if (!all.model_version.empty() && s.model_version != all.model_version)
      throw Error(ErrorCode::kInvalidArgument, "sets of different model versions");
    all.model_version = s.model_version;
    std::set<std::string> mine;
    for (auto& f : s.faces) mine.insert(f.person);
    const std::string prefix = fs::path(s.sources[0]).filename().string() + "/";
    for (auto& f : s.faces) {
      if (taken.count(f.person)) f.person = prefix + f.person;
      all.faces.push_back(std::move(f));
    }
    for (auto& p : mine) taken.insert(p);
    all.sources.push_back(s.sources[0]);
  }
  return all;
}

std::map<std::string, std::string> ReadDuplicateList(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw Error(ErrorCode::kNotFound, "duplicate-identity list not found: " + file.string());
  std::map<std::string, std::string> m;
  std::string line;
  while (std::getline(in, line)) {
    if (auto h = line.find('#'); h != std::string::npos) line.resize(h);
    std::istringstream ss(line);
    std::vector<std::string> names;
    for (std::string n; ss >> n;) names.push_back(n);
    for (size_t i = 1; i < names.size(); ++i) m[names[i]] = names[0];
  }
  return m;
}

void MergeDuplicates(LabelledSet& set, const std::map<std::string, std::string>& dup) {
  for (auto& f : set.faces) {
    if (auto it = dup.find(f.file.filename().string()); it != dup.end())
      f.person = it->second;
    else if (auto jt = dup.find(f.person); jt != dup.end())
      f.person = jt->second;
  }
}

std::vector<LookAlike> CrossIdentityPairs(const LabelledSet& set, float above) {
  std::vector<const LabelledFace*> faces;
  for (const auto& f : set.faces)
    if (f.rec.found) faces.push_back(&f);
  std::vector<LookAlike> out;
  for (size_t i = 0; i < faces.size(); ++i)
    for (size_t j = i + 1; j < faces.size(); ++j) {
      if (faces[i]->person == faces[j]->person) continue;
      float s = 0;
      const auto& x = faces[i]->rec.feature;
      const auto& y = faces[j]->rec.feature;
      for (size_t d = 0; d < x.size(); ++d) s += x[d] * y[d];
      if (s >= above) out.push_back({s, faces[i], faces[j]});
    }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.score > b.score; });
  return out;
}

Split ParseSplit(std::string_view s) {
  if (s == "all") return Split::kAll;
  if (s == "tune") return Split::kTune;
  if (s == "heldout" || s == "held-out") return Split::kHeldOut;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown split '" + std::string(s) + "' (all|tune|heldout)");
}

const char* SplitName(Split s) {
  switch (s) {
    case Split::kAll:
      return "all";
    case Split::kTune:
      return "tune";
    case Split::kHeldOut:
      return "heldout";
  }
  return "?";
}

bool IsHeldOut(std::string_view person, uint32_t seed) {
  // FNV-1a over the seed and the name, then a final avalanche (splitmix64) so that names
  // differing in the last character land independently.
  uint64_t h = 1469598103934665603ull;
  auto eat = [&](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (int i = 0; i < 4; ++i) eat(static_cast<unsigned char>(seed >> (8 * i)));
  for (char c : person) eat(static_cast<unsigned char>(c));
  h += 0x9e3779b97f4a7c15ull;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
  h ^= h >> 31;
  return (h >> 63) != 0;
}

LabelledSet SelectSplit(const LabelledSet& set, Split split, uint32_t seed) {
  if (split == Split::kAll) return set;
  LabelledSet out;
  out.model_version = set.model_version;
  out.sources = set.sources;
  for (const auto& f : set.faces)
    if (IsHeldOut(f.person, seed) == (split == Split::kHeldOut)) out.faces.push_back(f);
  return out;
}

TemplateMode ParseTemplateMode(std::string_view s) {
  if (s == "each") return TemplateMode::kEach;
  if (s == "mean") return TemplateMode::kMean;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown template mode '" + std::string(s) + "' (each|mean)");
}

const char* TemplateModeName(TemplateMode m) {
  return m == TemplateMode::kMean ? "mean" : "each";
}

namespace {

constexpr size_t kDim = 512;

std::vector<float> Normalised(std::vector<float> v) {
  double n = 0;
  for (float x : v) n += double(x) * x;
  n = std::sqrt(std::max(n, 1e-24));
  for (float& x : v) x = float(x / n);
  return v;
}

// Mean of several features, normalised (the terminal's fusion of frames: docs/terminal.md).
std::vector<float> Fuse(const std::vector<const FaceRecord*>& frames) {
  std::vector<float> sum(kDim, 0.f);
  for (const auto* f : frames)
    for (size_t d = 0; d < kDim; ++d) sum[d] += f->feature[d];
  return Normalised(std::move(sum));
}

enum class Kind { kMated, kStranger, kAbsent };

struct Probe {
  Kind kind = Kind::kStranger;
  std::string mate;  // kMated: the resident; kAbsent: the resident left out of the gallery
  std::string image;
  std::vector<float> feature;        // every frame fused
  std::vector<float> gated_feature;  // the frames the gate lets through, fused
  std::string refusal;               // empty = at least one frame passed the gate
};

// All K-subsets of {0..n-1} in lexicographic order, at most LIMIT of them.
std::vector<std::vector<size_t>> Combinations(size_t n, size_t k, size_t limit) {
  std::vector<std::vector<size_t>> out;
  if (k == 0 || k > n) return out;
  std::vector<size_t> c(k);
  std::iota(c.begin(), c.end(), 0);
  while (out.size() < limit) {
    out.push_back(c);
    size_t i = k;
    while (i > 0 && c[i - 1] == n - k + i - 1) --i;
    if (i == 0) break;
    ++c[i - 1];
    for (size_t j = i; j < k; ++j) c[j] = c[j - 1] + 1;
  }
  return out;
}

struct Level {
  std::string name;
  match::LevelSetting setting;
};

// Per probe, the ranked persons after leaving out the absent resident and applying the hub
// correction.
using Ranked = std::vector<Candidate>;

Ranked Adjust(const std::vector<Candidate>& raw, const Probe& p,
              const std::unordered_map<std::string, float>& offset) {
  Ranked r;
  r.reserve(raw.size());
  for (const auto& c : raw) {
    if (p.kind == Kind::kAbsent && c.person == p.mate) continue;
    r.push_back(c);
    if (!offset.empty())
      if (auto it = offset.find(c.person); it != offset.end()) r.back().score -= it->second;
  }
  if (!offset.empty())
    std::stable_sort(r.begin(), r.end(),
                     [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  return r;
}

struct Units {
  size_t door_size = 0;
  std::unordered_map<std::string, size_t> unit_of;   // person → unit
  std::vector<std::unique_ptr<FeatureIndex>> index;  // one per unit: its persons only
};

json Figures(const std::vector<Probe>& probes, const std::vector<size_t>& use,
             const std::vector<Ranked>& ranked, const std::vector<Level>& levels,
             const Units& units, const std::vector<std::vector<Ranked>>& unit_ranked) {
  size_t mated = 0, rank1 = 0, nonmated = 0, absent = 0;
  std::vector<float> stranger_top;
  for (size_t u : use) {
    const auto& p = probes[u];
    const auto& r = ranked[u];
    if (p.kind == Kind::kMated) {
      ++mated;
      rank1 += !r.empty() && r[0].person == p.mate;
    } else if (p.kind == Kind::kStranger) {
      ++nonmated;
      stranger_top.push_back(r.empty() ? -1.f : r[0].score);
    } else {
      ++absent;
    }
  }
  json j = {{"mated_probes", mated},
            {"nonmated_probes", nonmated},
            {"absent_resident_probes", absent},
            {"rank1", mated ? double(rank1) / double(mated) : 0.0}};
  auto fnir_at = [&](float t) {
    size_t miss = 0;
    for (size_t u : use)
      if (probes[u].kind == Kind::kMated) {
        const auto& r = ranked[u];
        miss += r.empty() || r[0].person != probes[u].mate || r[0].score < t;
      }
    return mated ? double(miss) / double(mated) : 0.0;
  };
  for (double fpir : {1e-2, 1e-3}) {
    auto copy = stranger_top;
    auto pt = match::ThresholdAtFmr(copy, fpir, 0.f);
    j[fpir == 1e-2 ? "at_fpir_1pct" : "at_fpir_0.1pct"] = {{"threshold", pt.threshold},
                                                           {"fpir", pt.fmr},
                                                           {"fnir", fnir_at(pt.threshold)},
                                                           {"resolved", pt.resolved}};
  }
  if (levels.empty()) return j;
  json lj = json::object();
  for (size_t li = 0; li < levels.size(); ++li) {
    const auto& lv = levels[li].setting;
    size_t fa = 0, fn = 0, unc_m = 0, unc_n = 0, wrong = 0, str_m = 0, fa_abs = 0;
    json accepted = json::array(), wrong_ex = json::array();
    // Unit doors.
    size_t own_miss_unit = 0, own_miss_whole = 0, other_open_unit = 0, other_open_whole = 0,
           str_open_unit = 0, str_open_whole = 0, abs_open_unit = 0, abs_open_whole = 0;
    const size_t D = units.index.size();
    for (size_t u : use) {
      const auto& p = probes[u];
      const auto d = match::Decide(ranked[u], lv);
      const bool acc = d.outcome == match::Outcome::kAccept;
      if (p.kind == Kind::kMated) {
        const bool ok = acc && d.person == p.mate;
        fn += !ok;
        unc_m += d.outcome == match::Outcome::kUncertain;
        str_m += d.outcome == match::Outcome::kStranger;
        if (acc && d.person != p.mate) {
          ++wrong;
          if (wrong_ex.size() < 20)
            wrong_ex.push_back({{"probe", p.image},
                                {"resident", p.mate},
                                {"taken_for", d.person},
                                {"score", d.score},
                                {"second", d.second_score}});
        }
      } else {
        (p.kind == Kind::kStranger ? fa : fa_abs) += acc;
        unc_n += p.kind == Kind::kStranger && d.outcome == match::Outcome::kUncertain;
        if (acc && accepted.size() < 20)
          accepted.push_back({{"stranger", p.image},
                              {"absent_resident", p.kind == Kind::kAbsent},
                              {"matched", d.person},
                              {"score", d.score}});
      }
      if (D) {
        // Whole gallery + allowed list: the door of the accepted person's unit opens.
        const size_t whole_unit =
            acc ? units.unit_of.at(d.person) : std::numeric_limits<size_t>::max();
        if (p.kind == Kind::kMated) {
          const size_t own = units.unit_of.at(p.mate);
          own_miss_whole += whole_unit != own;
          other_open_whole += acc && whole_unit != own;
          for (size_t k = 0; k < D; ++k) {
            const auto du = match::Decide(unit_ranked[u][k], lv);
            const bool open = du.outcome == match::Outcome::kAccept;
            if (k == own)
              own_miss_unit += !open;
            else
              other_open_unit += open;
          }
        } else {
          (p.kind == Kind::kStranger ? str_open_whole : abs_open_whole) += acc;
          for (size_t k = 0; k < D; ++k) {
            // An absent resident's own unit does not exist any more in this simulation: every
            // door is another's.
            const bool open =
                match::Decide(unit_ranked[u][k], lv).outcome == match::Outcome::kAccept;
            (p.kind == Kind::kStranger ? str_open_unit : abs_open_unit) += open;
          }
        }
      }
    }
    const double nn = double(std::max<size_t>(1, nonmated)),
                 nm = double(std::max<size_t>(1, mated)), na = double(std::max<size_t>(1, absent));
    json e = {{"threshold", lv.threshold},
              {"margin", lv.margin},
              {"fpir", double(fa) / nn},
              {"false_accepts", fa},
              {"fnir", double(fn) / nm},
              {"mated_rejected_as_stranger", str_m},
              {"mated_uncertain", unc_m},
              {"mated_wrong_person_accepted", wrong},
              {"wrong_person_rate", double(wrong) / nm},
              {"nonmated_uncertain", unc_n},
              {"absent_fpir", double(fa_abs) / na},
              {"absent_false_accepts", fa_abs},
              {"false_accept_examples", accepted},
              {"wrong_person_examples", wrong_ex}};
    if (D) {
      const double Dm1 = double(std::max<size_t>(1, D - 1));
      e["unit_doors"] = {{"doors", D},
                         {"persons_per_door", units.door_size},
                         {"unit_gallery",
                          {{"own_door_fnir", double(own_miss_unit) / nm},
                           {"other_door_opens", other_open_unit},
                           {"other_door_open_rate", double(other_open_unit) / (nm * Dm1)},
                           {"stranger_door_opens", str_open_unit},
                           {"stranger_door_open_rate", double(str_open_unit) / (nn * double(D))},
                           {"absent_door_opens", abs_open_unit},
                           {"absent_door_open_rate", double(abs_open_unit) / (na * double(D))}}},
                         {"whole_gallery_allowed_list",
                          {{"own_door_fnir", double(own_miss_whole) / nm},
                           {"other_door_opens", other_open_whole},
                           {"other_door_open_rate", double(other_open_whole) / (nm * Dm1)},
                           {"stranger_door_opens", str_open_whole},
                           {"stranger_door_open_rate", double(str_open_whole) / (nn * double(D))},
                           {"absent_door_opens", abs_open_whole},
                           {"absent_door_open_rate", double(abs_open_whole) / (na * double(D))}}}};
    }
    lj[levels[li].name] = e;
  }
  j["levels"] = lj;
  return j;
}

}  // namespace

json RunOpenSet(const OpenSetInputs& in, const OpenSetOptions& o, const match::Thresholds* th) {
  if (!in.set) throw Error(ErrorCode::kInvalidArgument, "RunOpenSet needs a labelled set");
  const LabelledSet& set = *in.set;
  const std::string& ver = set.model_version;
  if (o.enrol == 0) throw Error(ErrorCode::kInvalidArgument, "enrol at least one photo");
  if (o.probe_frames == 0) throw Error(ErrorCode::kInvalidArgument, "probe_frames must be ≥ 1");
  std::map<std::string, std::vector<const LabelledFace*>> by;
  size_t no_face = 0;
  for (const auto& f : set.faces) {
    if (f.rec.found)
      by[f.person].push_back(&f);
    else
      ++no_face;
  }
  const size_t need = o.enrol + std::max<size_t>(1, o.probes_per_resident);
  FeatureIndex index(
      {.model_version = ver, .dim = kDim, .precision = o.precision, .fusion = o.fusion});
  FeatureIndex real({.model_version = ver, .dim = kDim, .fusion = o.fusion});  // no random rows
  auto enrol = [&](const std::string& person, const std::vector<const FaceRecord*>& photos) {
    if (o.templates == TemplateMode::kMean) {
      const auto f = Fuse(photos);
      index.Add(person, f, ver), real.Add(person, f, ver);
    } else {
      for (const auto* r : photos)
        index.Add(person, r->feature, ver), real.Add(person, r->feature, ver);
    }
  };

  std::vector<Probe> probes;
  const vision::FrameGate& gate = o.gate;
  auto refusal_of = [&](const FaceRecord& r) -> std::string {
    if (const char* why = gate.Refusal(r.face_px, r.quality)) return why;
    return {};
  };
  auto make_probe = [&](Kind kind, const std::string& mate,
                        const std::vector<const LabelledFace*>& frames) {
    Probe p;
    p.kind = kind;
    p.mate = mate;
    p.image = frames[0]->file.string();
    std::vector<const FaceRecord*> all, good;
    std::string first_refusal;
    for (const auto* f : frames) {
      all.push_back(&f->rec);
      std::string why = refusal_of(f->rec);
      if (why.empty())
        good.push_back(&f->rec);
      else if (first_refusal.empty())
        first_refusal = why;
    }
    p.feature = Fuse(all);
    if (good.empty()) {
      p.refusal = first_refusal;
    } else {
      if (o.liveness_threshold >= 0) {
        float live = 0;
        for (const auto* g : good) live += g->liveness / float(good.size());
        if (live < o.liveness_threshold) p.refusal = "not_live";
      }
      if (p.refusal.empty()) p.gated_feature = Fuse(good);
    }
    probes.push_back(std::move(p));
  };

  // Residents: enrol the first photos; probe the rest (or the last k).
  size_t residents = 0, skipped_people = 0;
  std::vector<const LabelledFace*> singles;
  std::vector<std::string> resident_names;
  for (auto& [name, photos] : by) {
    if (photos.size() == 1) {
      singles.push_back(photos[0]);
      continue;
    }
    if (photos.size() < need) {
      ++skipped_people;
      continue;
    }
    ++residents;
    resident_names.push_back(name);
    std::vector<const FaceRecord*> enrolled;
    for (size_t k = 0; k < o.enrol; ++k) enrolled.push_back(&photos[k]->rec);
    enrol(name, enrolled);
    const size_t first = o.probes_per_resident ? photos.size() - o.probes_per_resident : o.enrol;
    std::vector<const LabelledFace*> rest(photos.begin() + long(first), photos.end());
    for (const auto& c : Combinations(rest.size(), o.probe_frames,
                                      o.probe_frames == 1 ? rest.size() : o.max_sequences)) {
      std::vector<const LabelledFace*> frames;
      for (size_t i : c) frames.push_back(rest[i]);
      make_probe(Kind::kMated, name, frames);
      if (o.absent_residents) make_probe(Kind::kAbsent, name, frames);
    }
  }
  // Padding: the set's own one-photo people first (at most distractor_share of them; the
  // rest are strangers), then the extra real faces, then random unit vectors.
  std::mt19937 rng(o.seed);
  std::shuffle(singles.begin(), singles.end(), rng);
  size_t use_real = 0;
  if (o.gallery_size > index.persons())
    use_real = std::min(o.gallery_size - index.persons(),
                        size_t(std::floor(double(singles.size()) * o.distractor_share)));
  for (size_t i = 0; i < singles.size(); ++i) {
    if (i < use_real)
      enrol(singles[i]->person, {&singles[i]->rec});
    else
      make_probe(Kind::kStranger, "", {singles[i]});
  }
  size_t extra = 0;
  if (in.distractors && o.gallery_size > index.persons()) {
    std::map<std::string, const LabelledFace*> first;
    for (const auto& f : in.distractors->faces)
      if (f.rec.found && !first.count(f.person)) first[f.person] = &f;
    std::vector<const LabelledFace*> pool;
    for (auto& [n, f] : first) pool.push_back(f);
    std::shuffle(pool.begin(), pool.end(), rng);
    for (const auto* f : pool) {
      if (index.persons() >= o.gallery_size) break;
      enrol("extra:" + f->person, {&f->rec});
      ++extra;
    }
  }
  size_t synthetic = 0;
  {
    std::normal_distribution<float> g;
    std::vector<float> v(kDim);
    while (o.gallery_size > index.persons()) {
      for (auto& x : v) x = g(rng);
      v = Normalised(v);
      index.Add("random:" + std::to_string(synthetic++), v, ver);
    }
  }
  // A stranger photo of someone enrolled (a duplicate identity merged across sets) is no
  // stranger: it is left out.
  size_t strangers_enrolled = 0;
  if (in.strangers)
    for (const auto& f : in.strangers->faces) {
      if (!f.rec.found) continue;
      if (index.Contains(f.person)) {
        ++strangers_enrolled;
        continue;
      }
      make_probe(Kind::kStranger, "", {&f});
    }

  // Levels: the thresholds file's, with margins overridden, or the site's own.
  std::vector<Level> levels;
  json site_report;
  if (th) {
    match::Thresholds t = *th;
    if (o.site_calibration) {
      match::SiteOptions so = o.site;
      so.gallery_persons = std::max(so.gallery_persons, index.persons());
      so.threads = o.threads;
      auto cal = match::CalibrateGallery(real, t, so);
      site_report = cal.report;
      t = cal.thresholds;
    }
    for (auto l : match::kAllLevels) {
      Level lv{match::LevelName(l), t.at(l)};
      if (o.margins) lv.setting.margin = (*o.margins)[int(l)];
      levels.push_back(lv);
    }
  }

  // Hub correction from the cohort.
  std::unordered_map<std::string, float> offset;
  json hub_report;
  if (o.hub.strength > 0) {
    std::vector<float> C;
    std::vector<std::string> cohort_person;
    if (in.cohort) {
      for (const auto& f : in.cohort->faces)
        if (f.rec.found)
          C.insert(C.end(), f.rec.feature.begin(), f.rec.feature.end()),
              cohort_person.push_back(f.person);
    } else {
      for (const auto& s : real.Export())
        C.insert(C.end(), s.feature.begin(), s.feature.end()), cohort_person.push_back(s.person);
    }
    FeatureIndex cohort({.model_version = ver, .dim = kDim, .fusion = match::Fusion::kMax});
    for (size_t i = 0; i < cohort_person.size(); ++i)
      cohort.Add("c" + std::to_string(i), {C.data() + i * kDim, kDim}, ver);
    // Each real gallery person's mean template against the cohort.
    std::map<std::string, std::vector<float>> sum;
    for (const auto& s : real.Export()) {
      auto& v = sum[s.person];
      if (v.empty()) v.assign(kDim, 0.f);
      for (size_t d = 0; d < kDim; ++d) v[d] += s.feature[d];
    }
    std::vector<std::string> names;
    std::vector<float> Q;
    for (auto& [n, v] : sum) {
      names.push_back(n);
      auto f = Normalised(v);
      Q.insert(Q.end(), f.begin(), f.end());
    }
    auto res = cohort.SearchBatch(Q, ver, {.k = o.hub.cohort_top + 8, .threads = o.threads});
    std::vector<float> hub(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      double s = 0;
      size_t n = 0;
      for (const auto& c : res[i]) {
        const size_t ci = std::stoul(c.person.substr(1));
        if (cohort_person[ci] == names[i]) continue;  // its own photos are not its cohort
        s += c.score;
        if (++n == o.hub.cohort_top) break;
      }
      hub[i] = n ? float(s / double(n)) : 0.f;
    }
    std::vector<float> sorted = hub;
    std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
    const float median = sorted.empty() ? 0.f : sorted[sorted.size() / 2];
    float max_off = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const float off = o.hub.strength * std::max(0.f, hub[i] - median);
      if (off > 0) offset[names[i]] = off;
      max_off = std::max(max_off, off);
    }
    hub_report = {{"strength", o.hub.strength},
                  {"cohort_top", o.hub.cohort_top},
                  {"cohort", in.cohort ? "external set" : "the gallery's other persons"},
                  {"cohort_faces", cohort_person.size()},
                  {"median_hubness", median},
                  {"persons_corrected", offset.size()},
                  {"max_correction", max_off}};
  }

  // Search every probe once (ungated and gated features), keeping enough candidates for
  // leaving a resident out and for the hub correction to re-rank.
  const size_t k = o.hub.strength > 0 ? 12 : 3;
  auto search = [&](bool gated, std::vector<size_t>& use) {
    std::vector<float> P;
    use.clear();
    for (size_t i = 0; i < probes.size(); ++i) {
      const auto& f = gated ? probes[i].gated_feature : probes[i].feature;
      if (f.empty()) continue;
      use.push_back(i);
      P.insert(P.end(), f.begin(), f.end());
    }
    std::vector<Ranked> ranked(probes.size());
    auto raw = index.SearchBatch(P, ver, {.k = k, .threads = o.threads});
    for (size_t j = 0; j < use.size(); ++j) ranked[use[j]] = Adjust(raw[j], probes[use[j]], offset);
    return std::pair{std::move(ranked), std::move(P)};
  };

  // Unit doors: the gallery's persons in units of door_size, each unit its own small index.
  Units units;
  if (o.door_size > 0) {
    units.door_size = o.door_size;
    std::map<std::string, std::vector<std::vector<float>>> person_rows;
    for (auto& s : index.Export()) person_rows[s.person].push_back(std::move(s.feature));
    std::vector<std::string> persons;
    for (auto& [n, r] : person_rows) persons.push_back(n);
    std::mt19937 urng(o.seed + 1);
    std::shuffle(persons.begin(), persons.end(), urng);
    for (size_t i = 0; i < persons.size(); ++i) {
      const size_t u = i / o.door_size;
      if (u == units.index.size())
        units.index.push_back(std::make_unique<FeatureIndex>(
            match::IndexOptions{.model_version = ver, .dim = kDim, .fusion = o.fusion}));
      units.unit_of[persons[i]] = u;
      for (const auto& f : person_rows[persons[i]]) units.index[u]->Add(persons[i], f, ver);
    }
  }
  auto unit_search = [&](const std::vector<size_t>& use, const std::vector<float>& P) {
    std::vector<std::vector<Ranked>> out(probes.size());
    if (units.index.empty()) return out;
    for (size_t u : use) out[u].resize(units.index.size());
    for (size_t k2 = 0; k2 < units.index.size(); ++k2) {
      auto raw = units.index[k2]->SearchBatch(P, ver, {.k = 3, .threads = o.threads});
      for (size_t j = 0; j < use.size(); ++j)
        out[use[j]][k2] = Adjust(raw[j], probes[use[j]], offset);
    }
    return out;
  };

  const auto t0 = std::chrono::steady_clock::now();
  std::vector<size_t> use_all, use_gated;
  auto [ranked_all, P_all] = search(false, use_all);
  auto [ranked_gated, P_gated] = search(true, use_gated);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  json j = Figures(probes, use_all, ranked_all, levels, units, unit_search(use_all, P_all));
  json g = Figures(probes, use_gated, ranked_gated, levels, units, unit_search(use_gated, P_gated));
  json refused = {{"mated", 0}, {"nonmated", 0}, {"absent_resident", 0}};
  json by_reason = json::object();
  for (const auto& p : probes) {
    if (p.refusal.empty()) continue;
    const char* key = p.kind == Kind::kMated      ? "mated"
                      : p.kind == Kind::kStranger ? "nonmated"
                                                  : "absent_resident";
    refused[key] = refused[key].get<size_t>() + 1;
    if (p.kind != Kind::kAbsent) by_reason[p.refusal] = by_reason.value(p.refusal, size_t(0)) + 1;
  }
  refused["by_reason"] = by_reason;
  g["quality_refused"] = refused;
  g["gate"] = {{"min_face_px", gate.min_face_px},
               {"min_quality", gate.min_quality},
               {"liveness_threshold", o.liveness_threshold}};
  j["gated"] = g;
  j["quality_refused"] = refused;
  j["gallery_persons"] = index.persons();
  j["gallery_templates"] = index.size();
  j["residents"] = residents;
  j["distractors_real"] = use_real;
  j["distractors_extra"] = extra;
  j["distractors_random"] = synthetic;
  j["people_with_too_few_photos"] = skipped_people;
  j["strangers_left_out_enrolled"] = strangers_enrolled;
  j["images_without_face"] = no_face;
  j["enrol_photos"] = o.enrol;
  j["templates"] = TemplateModeName(o.templates);
  j["probe_frames"] = o.probe_frames;
  j["fusion"] = match::FusionName(o.fusion);
  j["search_seconds"] = secs;
  if (!site_report.is_null()) j["site_calibration"] = site_report;
  if (!hub_report.is_null()) j["hub_correction"] = hub_report;
  return j;
}

match::Calibration CalibrateFromSets(const ReferenceCalibrationInputs& in,
                                     const match::ReferenceOptions& options) {
  if (!in.lfw || !in.east_asian)
    throw Error(ErrorCode::kInvalidArgument, "calibration needs LFW and an East-Asian set");
  auto scores = [](const LabelledSet& s) {
    std::vector<float> F;
    std::vector<std::string> labels;
    for (const auto& f : s.faces)
      if (f.rec.found)
        F.insert(F.end(), f.rec.feature.begin(), f.rec.feature.end()), labels.push_back(f.person);
    return match::AllPairScores(F, kDim, labels);
  };
  std::string ea_name = "east-asian";
  for (const auto& src : in.east_asian->sources) ea_name += " " + fs::path(src).filename().string();
  match::ReferenceScores lfw{"lfw (" + std::to_string(in.lfw->found()) + " faces, all pairs)",
                             scores(*in.lfw)};
  match::ReferenceScores ea{
      ea_name + " (" + std::to_string(in.east_asian->found()) + " faces, all pairs)",
      scores(*in.east_asian)};
  auto cal = match::CalibrateReference(std::move(lfw), std::move(ea), options);
  // Template fusion, on LFW and on the East-Asian set: people with ≥ 3 faces, 2 enrolled, the
  // rest probed; one-image people are the strangers. Chosen: fewest misses at FPIR 1% pooled
  // over both sets' probes (the East-Asian set alone has too few probes to decide).
  json fusion = json::object();
  std::vector<std::pair<double, match::Fusion>> rank;
  for (auto f : {match::Fusion::kMax, match::Fusion::kMean, match::Fusion::kCentroid}) {
    OpenSetOptions o;
    o.enrol = 2;
    o.fusion = f;
    o.threads = in.threads;
    o.absent_residents = false;
    json lj = RunOpenSet({.set = in.lfw}, o, nullptr);
    json ej = RunOpenSet({.set = in.east_asian}, o, nullptr);
    for (json* x : {&lj, &ej}) x->erase("gated");
    fusion[match::FusionName(f)] = lj;
    fusion[std::string("east_asian_") + match::FusionName(f)] = ej;
    const double misses =
        lj["at_fpir_1pct"]["fnir"].get<double>() * lj["mated_probes"].get<double>() +
        ej["at_fpir_1pct"]["fnir"].get<double>() * ej["mated_probes"].get<double>();
    rank.push_back({misses, f});
  }
  std::stable_sort(rank.begin(), rank.end(), [](auto& a, auto& b) { return a.first < b.first; });
  cal.thresholds.fusion = rank[0].second;
  fusion["protocol"] =
      "people with >=3 faces: enrol first 2, probe the rest; one-image people are non-mated "
      "probes; chosen: fewest misses at FPIR 1% over LFW's and the East-Asian set's probes";
  fusion["chosen"] = match::FusionName(cal.thresholds.fusion);
  cal.report["fusion_experiment"] = fusion;
  cal.report["command"] = in.command;
  return cal;
}

}  // namespace anju::eval
