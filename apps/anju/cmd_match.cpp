// anju calibrate | identify | eval identify | bench search — 1:N identification.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "command.h"
#include "core/error.h"
#include "core/paths.h"
#include "eval/datasets.h"
#include "eval/feature_batch.h"
#include "match/index.h"
#include "match/kernels.h"
#include "match/thresholds.h"
#include "vision/image.h"
#include "vision/model_set.h"
#if __has_include("store/gallery.h")
#include "crypto/keyfile.h"
#include "store/gallery.h"
#define ANJU_HAVE_STORE 1
#endif

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using match::Candidate;
using match::FeatureIndex;
using match::SecurityLevel;
using match::Thresholds;
using nlohmann::json;

constexpr size_t kDim = 512;

struct DataFlags {
  EngineFlags engine;
  int threads = 2;
  bool no_cache = false;
  void Add(CLI::App* app) {
    app->add_option("--threads", threads, "embedding / search threads");
    app->add_flag("--no-cache", no_cache, "do not reuse cached features");
    engine.Add(app);
  }
  fs::path model_dir() const {
    return engine.models.empty() ? DefaultModelDir() : fs::path(engine.models);
  }
  std::string ModelVersion() const {
    return vision::ModelSet::Load(model_dir(), false)->feature_version();
  }
};

// Images of a labelled set (folder = identity) with their features.
struct FaceSet {
  std::vector<std::string> person;  // identity per image (duplicate labels merged if asked)
  std::vector<fs::path> file;
  std::vector<eval::FaceRecord> rec;
  std::string model_version;
  size_t found() const {
    return std::count_if(rec.begin(), rec.end(), [](auto& r) { return r.found; });
  }
};

// name → canonical name, from a file of lines "NAME NAME [NAME...]" (# comments). An entry
// that is an image file name ("Flor_Montulo_0002.jpg") relabels that one image only.
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

fs::path DefaultDuplicateList() {
  fs::path p = match::RepoModelsDir() / "lfw-duplicate-identities.txt";
  return fs::exists(p) ? p : fs::path{};
}

FaceSet LoadFaceSet(fs::path dir, const std::string& tag, const DataFlags& flags) {
  FaceSet set;
  std::error_code ec;
  dir = fs::weakly_canonical(dir, ec);
  for (auto& [name, files] : eval::ListIdentityFolders(dir))
    for (auto& f : files) set.person.push_back(name), set.file.push_back(f);
  if (set.file.empty())
    throw Error(ErrorCode::kNotFound, "no identity folders with images in " + dir.string());
  eval::BatchOptions o;
  o.threads = flags.threads;
  o.with_pose = false;
  // LFW centres the named person; in other sets the subject is the largest face.
  o.central_face = tag.rfind("lfw", 0) == 0;
  if (!flags.no_cache) o.cache = eval::DefaultCachePath(tag);
  set.rec = eval::EmbedFiles(set.file, flags.model_dir(), flags.engine.Options(), o);
  set.model_version = flags.ModelVersion();
  return set;
}

fs::path LfwImages(const fs::path& dir) {
  return fs::exists(dir / "lfw") ? dir / "lfw" : dir;
}
fs::path AsianPeople(const fs::path& dir) {
  return fs::exists(dir / "people") ? dir / "people" : dir;
}

void MergeDuplicates(FaceSet& set, const std::map<std::string, std::string>& dup) {
  for (size_t i = 0; i < set.person.size(); ++i) {
    if (auto it = dup.find(set.file[i].filename().string()); it != dup.end())
      set.person[i] = it->second;
    else if (auto jt = dup.find(set.person[i]); jt != dup.end())
      set.person[i] = jt->second;
  }
}

// Genuine and impostor scores over every pair of found faces of a set.
struct PairScores {
  std::vector<float> genuine, impostor;
};
PairScores AllPairScores(const FaceSet& set) {
  std::vector<size_t> idx;
  for (size_t i = 0; i < set.rec.size(); ++i)
    if (set.rec[i].found) idx.push_back(i);
  const size_t n = idx.size();
  std::vector<float> F(n * kDim);
  for (size_t a = 0; a < n; ++a)
    std::copy_n(set.rec[idx[a]].feature.begin(), kDim, F.begin() + a * kDim);
  PairScores out;
  out.impostor.reserve(n * (n - 1) / 2);
  const auto& kern = match::BestKernels();
  std::vector<float> buf(match::kMaxProbes * n);
  for (size_t i = 0; i < n; i += match::kMaxProbes) {
    const int P = int(std::min<size_t>(match::kMaxProbes, n - i));
    const size_t rows = n - i;
    kern.dots_f32(F.data() + i * kDim, P, F.data() + i * kDim, rows, kDim, buf.data());
    for (int p = 0; p < P; ++p)
      for (size_t r = p + 1; r < rows; ++r) {
        const float s = buf[p * rows + r];
        (set.person[idx[i + p]] == set.person[idx[i + r]] ? out.genuine : out.impostor)
            .push_back(s);
      }
  }
  return out;
}

// ---------------------------------------------------------------- open-set protocol
struct Probe {
  const float* feature;
  std::string mate;   // empty = non-mated (stranger)
  std::string image;  // for listing false accepts (label noise is checked by eye)
};

struct OpenSetReport {
  json j;
};

json RunOpenSet(const FeatureIndex& index, const std::vector<Probe>& probes, const Thresholds* th,
                int threads) {
  std::vector<float> P(probes.size() * kDim);
  for (size_t i = 0; i < probes.size(); ++i)
    std::copy_n(probes[i].feature, kDim, P.begin() + i * kDim);
  auto t0 = std::chrono::steady_clock::now();
  auto res = index.SearchBatch(P, index.options().model_version, {.k = 2, .threads = threads});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::vector<float> nonmated_top;
  size_t mated = 0, rank1 = 0;
  for (size_t i = 0; i < probes.size(); ++i) {
    const float top = res[i].empty() ? -1.f : res[i][0].score;
    if (probes[i].mate.empty()) {
      nonmated_top.push_back(top);
    } else {
      ++mated;
      rank1 += !res[i].empty() && res[i][0].person == probes[i].mate;
    }
  }
  auto fnir_at = [&](float t) {
    size_t miss = 0;
    for (size_t i = 0; i < probes.size(); ++i)
      if (!probes[i].mate.empty())
        miss += res[i].empty() || res[i][0].person != probes[i].mate || res[i][0].score < t;
    return mated ? double(miss) / double(mated) : 0.0;
  };
  json j = {{"gallery_templates", index.size()},
            {"gallery_persons", index.persons()},
            {"mated_probes", mated},
            {"nonmated_probes", nonmated_top.size()},
            {"rank1", mated ? double(rank1) / double(mated) : 0.0},
            {"search_seconds", secs}};
  for (double fpir : {1e-2, 1e-3}) {
    auto copy = nonmated_top;
    auto pt = match::ThresholdAtFmr(copy, fpir, 0.f);
    j[fpir == 1e-2 ? "at_fpir_1pct" : "at_fpir_0.1pct"] = {{"threshold", pt.threshold},
                                                           {"fpir", pt.fmr},
                                                           {"fnir", fnir_at(pt.threshold)},
                                                           {"resolved", pt.resolved}};
  }
  if (th) {
    json levels = json::object();
    for (auto l : match::kAllLevels) {
      const auto& s = th->at(l);
      size_t fa = 0, fn = 0, unc_m = 0, unc_n = 0, wrong = 0, str_m = 0;
      json accepted = json::array();
      for (size_t i = 0; i < probes.size(); ++i) {
        auto d = match::Decide(res[i], s);
        if (probes[i].mate.empty()) {
          fa += d.outcome == match::Outcome::kAccept;
          if (d.outcome == match::Outcome::kAccept)
            accepted.push_back(
                {{"stranger", probes[i].image}, {"matched", d.person}, {"score", res[i][0].score}});
          unc_n += d.outcome == match::Outcome::kUncertain;
        } else {
          const bool ok = d.outcome == match::Outcome::kAccept && d.person == probes[i].mate;
          fn += !ok;
          unc_m += d.outcome == match::Outcome::kUncertain;
          str_m += d.outcome == match::Outcome::kStranger;
          wrong += d.outcome == match::Outcome::kAccept && d.person != probes[i].mate;
        }
      }
      const double nn = std::max<size_t>(1, nonmated_top.size()), nm = std::max<size_t>(1, mated);
      levels[match::LevelName(l)] = {{"threshold", s.threshold},
                                     {"margin", s.margin},
                                     {"fpir", fa / nn},
                                     {"false_accepts", fa},
                                     {"fnir", fn / nm},
                                     {"mated_rejected_as_stranger", str_m},
                                     {"mated_uncertain", unc_m},
                                     {"mated_wrong_person_accepted", wrong},
                                     {"nonmated_uncertain", unc_n},
                                     {"false_accept_examples", accepted}};
    }
    j["levels"] = levels;
  }
  return j;
}

// LFW open set: first found image of each person with ≥ MIN_IMAGES enrolled (ENROL of
// them), the others mated probes; people with one image are strangers.
struct Protocol {
  std::vector<std::pair<std::string, size_t>> enrol;  // person, image index
  std::vector<Probe> probes;
  std::vector<size_t> singles;  // image indices of one-image people
};
Protocol BuildProtocol(const FaceSet& set, size_t enrol_per_person, size_t min_images) {
  std::map<std::string, std::vector<size_t>> by;
  for (size_t i = 0; i < set.rec.size(); ++i)
    if (set.rec[i].found) by[set.person[i]].push_back(i);
  Protocol p;
  for (auto& [name, imgs] : by) {
    if (imgs.size() == 1) {
      p.singles.push_back(imgs[0]);
      continue;
    }
    if (imgs.size() < min_images) continue;
    for (size_t k = 0; k < imgs.size(); ++k) {
      if (k < enrol_per_person)
        p.enrol.emplace_back(name, imgs[k]);
      else
        p.probes.push_back({set.rec[imgs[k]].feature.data(), name, set.file[imgs[k]].string()});
    }
  }
  return p;
}

std::optional<Thresholds> LoadThresholdsOrNone(const std::string& file,
                                               const std::string& version) {
  fs::path p = file.empty() ? match::DefaultThresholdsPath() : fs::path(file);
  if (p.empty() || !fs::exists(p)) return std::nullopt;
  return Thresholds::Load(p, version);
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// ---------------------------------------------------------------- calibrate
json FusionExperiment(const FaceSet& lfw, int threads) {
  Protocol p = BuildProtocol(lfw, 2, 3);
  for (size_t i : p.singles)
    p.probes.push_back({lfw.rec[i].feature.data(), "", lfw.file[i].string()});
  json out = json::object();
  for (auto f : {match::Fusion::kMax, match::Fusion::kMean}) {
    FeatureIndex index({.model_version = lfw.model_version, .dim = kDim, .fusion = f});
    for (auto& [name, i] : p.enrol) index.Add(name, lfw.rec[i].feature, lfw.model_version);
    out[match::FusionName(f)] = RunOpenSet(index, p.probes, nullptr, threads);
  }
  return out;
}

json DataSetFigures(PairScores& s, const std::array<match::FmrPoint, 3>& pts) {
  json levels = json::object();
  for (auto l : match::kAllLevels) {
    auto& pt = pts[int(l)];
    levels[match::LevelName(l)] = {{"threshold", pt.threshold},
                                   {"resolved", pt.resolved},
                                   {"expected_false_matches", pt.expected_false},
                                   {"fmr", pt.fmr},
                                   {"fnmr", match::RateBelow(s.genuine, pt.threshold)}};
  }
  float max_imp = s.impostor.empty() ? 0 : *std::max_element(s.impostor.begin(), s.impostor.end());
  return {{"genuine_pairs", s.genuine.size()},
          {"impostor_pairs", s.impostor.size()},
          {"max_impostor", max_imp},
          {"levels", levels}};
}

void InstallMatchCommands(CLI::App& root) {
  // ---- calibrate
  {
    static DataFlags flags;
    static std::string data, asian, out, dups;
    static bool as_json = false;
    auto* cmd = root.add_subcommand(
        "calibrate", "calibrate security-level thresholds on genuine/impostor scores");
    cmd->add_option("--data", data, "LFW directory (lfw/ and pairs.txt)")->required();
    cmd->add_option("--asian", asian,
                    "East-Asian set: folder of cn_* identity folders (default: <data dir>/asian)");
    cmd->add_option("--out", out, "thresholds file to write")->required();
    cmd->add_option("--duplicates", dups,
                    "LFW duplicate-identity list merged before scoring (default: "
                    "models/lfw-duplicate-identities.txt)");
    cmd->add_flag("--json", as_json, "print the report as one JSON line at the end");
    flags.Add(cmd);
    cmd->callback([] {
      fs::path asian_dir = asian.empty() ? DefaultDataDir() / "asian" : fs::path(asian);
      FaceSet lfw = LoadFaceSet(LfwImages(data), "lfw-match", flags);
      fs::path dup_file = dups.empty() ? DefaultDuplicateList() : fs::path(dups);
      if (!dup_file.empty()) MergeDuplicates(lfw, ReadDuplicateList(dup_file));
      FaceSet as = LoadFaceSet(AsianPeople(asian_dir), "asian-match", flags);
      std::printf("LFW: %zu images, %zu faces; East-Asian: %zu images, %zu faces\n",
                  lfw.file.size(), lfw.found(), as.file.size(), as.found());
      PairScores ls = AllPairScores(lfw), es = AllPairScores(as);
      std::array<match::FmrPoint, 3> lp, ep, xp;
      // East-Asian tail offset against LFW at the quantiles it resolves: the East-Asian
      // impostor tail is assumed to be LFW's shifted by the largest such offset.
      float offset = 0;
      json offsets = json::array();
      for (double q : {1e-2, 3e-3, 1e-3}) {
        float o = match::UpperQuantile(es.impostor, q) - match::UpperQuantile(ls.impostor, q);
        offsets.push_back({{"quantile", q}, {"offset", o}});
        offset = std::max(offset, o);
      }
      Thresholds th;
      th.model_version = lfw.model_version;
      th.created = UtcNow();
      th.datasets = {"lfw (" + std::to_string(lfw.found()) + " faces, all pairs)",
                     "asian cn_* (" + std::to_string(as.found()) + " faces, all pairs)"};
      json chosen = json::object();
      for (auto l : match::kAllLevels) {
        const double fmr = match::TargetFmr(l);
        lp[int(l)] = match::ThresholdAtFmr(ls.impostor, fmr);
        ep[int(l)] = match::ThresholdAtFmr(es.impostor, fmr);
        xp[int(l)] = lp[int(l)];
        xp[int(l)].threshold = lp[int(l)].threshold + offset;
        xp[int(l)].fmr = match::RateAtOrAbove(es.impostor, xp[int(l)].threshold);
        float t = std::max(lp[int(l)].threshold, xp[int(l)].threshold);
        std::string basis = t == lp[int(l)].threshold ? "lfw" : "asian (lfw tail + offset)";
        if (ep[int(l)].resolved && ep[int(l)].threshold > t)
          t = ep[int(l)].threshold, basis = "asian";
        th.at(l) = {t, match::DefaultMargin(l), fmr};
        chosen[match::LevelName(l)] = {{"threshold", t},
                                       {"basis", basis},
                                       {"lfw_fmr", match::RateAtOrAbove(ls.impostor, t)},
                                       {"lfw_fnmr", match::RateBelow(ls.genuine, t)},
                                       {"asian_fmr", match::RateAtOrAbove(es.impostor, t)},
                                       {"asian_fnmr", match::RateBelow(es.genuine, t)}};
      }
      json fusion = FusionExperiment(lfw, flags.threads);
      const double fmax = fusion["max"]["at_fpir_1pct"]["fnir"],
                   fmean = fusion["mean"]["at_fpir_1pct"]["fnir"];
      th.fusion = fmean < fmax ? match::Fusion::kMean : match::Fusion::kMax;
      json asian_x = DataSetFigures(es, xp);
      json report = {{"lfw", DataSetFigures(ls, lp)},
                     {"asian", DataSetFigures(es, ep)},
                     {"asian_extrapolated",
                      {{"method",
                        "LFW impostor tail shifted by the largest East-Asian−LFW "
                        "offset at resolved upper quantiles"},
                       {"offset", offset},
                       {"offsets", offsets},
                       {"levels", asian_x["levels"]}}},
                     {"chosen", chosen},
                     {"fusion_experiment",
                      {{"protocol",
                        "LFW people with >=3 faces: enrol first 2, probe the rest; "
                        "one-image people are non-mated probes"},
                       {"max", fusion["max"]},
                       {"mean", fusion["mean"]},
                       {"chosen", match::FusionName(th.fusion)}}},
                     {"lfw_duplicates_merged", dup_file.string()},
                     {"command", "anju calibrate --data " + data + " --asian " +
                                     asian_dir.string() + " --out " + out}};
      th.report_json = report.dump();
      th.Save(out);
      auto row = [](const char* name, const json& d) {
        std::printf("%-22s genuine %zu, impostor %zu, max impostor %.4f\n", name,
                    d["genuine_pairs"].get<size_t>(), d["impostor_pairs"].get<size_t>(),
                    d["max_impostor"].get<float>());
        for (auto l : match::kAllLevels) {
          auto& x = d["levels"][match::LevelName(l)];
          std::printf("  %-6s FMR %.0e: threshold %.4f%s  FMR %.2e  FNMR %.4f\n",
                      match::LevelName(l), match::TargetFmr(l), x["threshold"].get<float>(),
                      x["resolved"].get<bool>() ? "" : " (unresolved: max+0.02)",
                      x["fmr"].get<double>(), x["fnmr"].get<double>());
        }
      };
      row("LFW", report["lfw"]);
      row("East-Asian", report["asian"]);
      std::printf("East-Asian tail offset vs LFW: %+.4f\n", offset);
      for (auto l : match::kAllLevels) {
        auto& c = chosen[match::LevelName(l)];
        std::printf(
            "chosen %-6s threshold %.4f margin %.2f (%s): LFW FMR %.2e FNMR %.4f | Asian FMR %.2e "
            "FNMR %.4f\n",
            match::LevelName(l), c["threshold"].get<float>(), match::DefaultMargin(l),
            c["basis"].get<std::string>().c_str(), c["lfw_fmr"].get<double>(),
            c["lfw_fnmr"].get<double>(), c["asian_fmr"].get<double>(),
            c["asian_fnmr"].get<double>());
      }
      std::printf(
          "fusion: max rank-1 %.4f FNIR@FPIR1%% %.4f | mean rank-1 %.4f FNIR@FPIR1%% %.4f → %s\n",
          fusion["max"]["rank1"].get<double>(), fmax, fusion["mean"]["rank1"].get<double>(), fmean,
          match::FusionName(th.fusion));
      std::printf("wrote %s\n", out.c_str());
      if (as_json) std::cout << report.dump() << "\n";
    });
  }

  // ---- eval identify
  {
    static DataFlags flags;
    static std::string data, dups, thresholds, precision = "fp32";
    static size_t gallery_size = 0;
    static bool as_json = false;
    static unsigned seed = 7;
    auto* cmd = Group(root, "eval", "evaluate on data sets")
                    ->add_subcommand("identify", "open-set 1:N identification on LFW");
    cmd->add_option("--data", data, "LFW directory")->required();
    cmd->add_option("--gallery-size", gallery_size,
                    "pad the gallery with distractors to N persons");
    cmd->add_option("--exclude-duplicates", dups,
                    "also report with these duplicate LFW identities merged");
    cmd->add_option("--thresholds", thresholds,
                    "thresholds file (default: models/thresholds.json)");
    cmd->add_option("--precision", precision, "fp32 | int8");
    cmd->add_option("--seed", seed, "seed for the random distractors");
    cmd->add_flag("--json", as_json, "print one JSON object as the last line");
    flags.Add(cmd);
    cmd->callback([] {
      FaceSet lfw = LoadFaceSet(LfwImages(data), "lfw-match", flags);
      auto th = LoadThresholdsOrNone(thresholds, lfw.model_version);
      auto run = [&](const FaceSet& set) {
        Protocol p = BuildProtocol(set, 1, 2);
        FeatureIndex index({.model_version = set.model_version,
                            .dim = kDim,
                            .precision = match::ParsePrecision(precision),
                            .fusion = th ? th->fusion : match::kDefaultFusion});
        for (auto& [name, i] : p.enrol) index.Add(name, set.rec[i].feature, set.model_version);
        // Distractors: one-image people first (real faces, then not used as probes; at
        // most half of them so that enough strangers remain), then random unit vectors.
        size_t real = 0, synthetic = 0;
        std::vector<size_t> singles = p.singles;
        std::mt19937 rng(seed);
        std::shuffle(singles.begin(), singles.end(), rng);
        size_t use_real = 0;
        if (gallery_size > index.persons())
          use_real = std::min(gallery_size - index.persons(), singles.size() / 2);
        for (size_t i = 0; i < singles.size(); ++i) {
          if (i < use_real) {
            index.Add(std::string("distractor-lfw-").append(std::to_string(i)),
                      set.rec[singles[i]].feature, set.model_version),
                ++real;
          } else {
            p.probes.push_back(
                {set.rec[singles[i]].feature.data(), "", set.file[singles[i]].string()});
          }
        }
        std::normal_distribution<float> g;
        std::vector<float> v(kDim);
        while (gallery_size > index.persons()) {
          double n = 0;
          for (auto& x : v) x = g(rng), n += double(x) * x;
          for (auto& x : v) x = float(x / std::sqrt(n));
          index.Add(std::string("distractor-random-").append(std::to_string(synthetic++)), v,
                    set.model_version);
        }
        json j = RunOpenSet(index, p.probes, th ? &*th : nullptr, flags.threads);
        j["distractors_real"] = real;
        j["distractors_random"] = synthetic;
        return j;
      };
      json out = {
          {"protocol",
           "LFW open set: first image of people with >=2 images enrolled, others mated; "
           "one-image people non-mated (some enrolled as distractors when padding)"},
          {"model_version", lfw.model_version},
          {"precision", precision},
          {"thresholds", th ? match::DefaultThresholdsPath().string() : std::string("none")},
          {"raw_labels", run(lfw)}};
      if (!dups.empty()) {
        FaceSet merged = lfw;
        MergeDuplicates(merged, ReadDuplicateList(dups));
        out["duplicates_merged"] = run(merged);
        out["duplicates_file"] = dups;
      }
      for (auto key : {"raw_labels", "duplicates_merged"}) {
        if (!out.contains(key)) continue;
        auto& r = out[key];
        std::printf(
            "%s: gallery %zu persons (%zu real + %zu random distractors), %zu mated / %zu "
            "non-mated probes\n",
            key, r["gallery_persons"].get<size_t>(), r["distractors_real"].get<size_t>(),
            r["distractors_random"].get<size_t>(), r["mated_probes"].get<size_t>(),
            r["nonmated_probes"].get<size_t>());
        std::printf("  rank-1 %.4f  FNIR@FPIR=1%% %.4f (t=%.4f)  FNIR@FPIR=0.1%% %.4f (t=%.4f)\n",
                    r["rank1"].get<double>(), r["at_fpir_1pct"]["fnir"].get<double>(),
                    r["at_fpir_1pct"]["threshold"].get<float>(),
                    r["at_fpir_0.1pct"]["fnir"].get<double>(),
                    r["at_fpir_0.1pct"]["threshold"].get<float>());
        if (r.contains("levels"))
          for (auto l : match::kAllLevels) {
            auto& x = r["levels"][match::LevelName(l)];
            std::printf(
                "  %-6s t=%.4f m=%.2f: FPIR %.5f (%zu)  FNIR %.4f (stranger %zu, uncertain %zu, "
                "wrong %zu)\n",
                match::LevelName(l), x["threshold"].get<float>(), x["margin"].get<float>(),
                x["fpir"].get<double>(), x["false_accepts"].get<size_t>(), x["fnir"].get<double>(),
                x["mated_rejected_as_stranger"].get<size_t>(), x["mated_uncertain"].get<size_t>(),
                x["mated_wrong_person_accepted"].get<size_t>());
          }
      }
      if (as_json) std::cout << out.dump() << "\n";
    });
  }

  // ---- bench search
  {
    static std::vector<size_t> sizes;
    static bool as_json = false;
    static int queries = 0;
    auto* cmd =
        Group(root, "bench", "benchmarks")
            ->add_subcommand("search", "1:N search latency and memory on random unit vectors");
    cmd->add_option("--gallery", sizes, "gallery sizes (default 2000 20000 100000 1000000)");
    cmd->add_option("--queries", queries, "probes per size (default: scaled to the size)");
    cmd->add_flag("--json", as_json, "print one JSON object as the last line");
    cmd->callback([] {
      if (sizes.empty()) sizes = {2000, 20000, 100000, 1000000};
      const std::string ver = "bench";
      std::mt19937 rng(1);
      std::normal_distribution<float> g;
      auto unit = [&](float* v) {
        double n = 0;
        for (size_t d = 0; d < kDim; ++d) v[d] = g(rng), n += double(v[d]) * v[d];
        for (size_t d = 0; d < kDim; ++d) v[d] = float(v[d] / std::sqrt(n));
      };
      json out = {{"kernel", match::BestKernels().name}, {"dim", kDim}, {"results", json::array()}};
      for (size_t n : sizes) {
        for (auto prec : {match::Precision::kFloat32, match::Precision::kInt8}) {
          FeatureIndex index({.model_version = ver, .dim = kDim, .precision = prec});
          std::vector<float> v(kDim);
          std::mt19937 r2(42);
          rng = r2;
          for (size_t i = 0; i < n; ++i) unit(v.data()), index.Add(std::to_string(i), v, ver);
          const int q = queries > 0 ? queries : n >= 1000000 ? 20 : n >= 100000 ? 60 : 300;
          std::vector<float> probes(size_t(q) * kDim);
          for (int i = 0; i < q; ++i) unit(probes.data() + i * kDim);
          auto time_queries = [&](int threads) {
            std::vector<double> ms;
            index.Search({probes.data(), kDim}, ver, {.k = 5, .threads = threads});  // warm
            for (int i = 0; i < q; ++i) {
              auto t0 = std::chrono::steady_clock::now();
              auto r =
                  index.Search({probes.data() + i * kDim, kDim}, ver, {.k = 5, .threads = threads});
              ms.push_back(
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count());
            }
            std::sort(ms.begin(), ms.end());
            return std::pair{ms[ms.size() / 2],
                             ms[std::min(ms.size() - 1, size_t(std::ceil(0.99 * ms.size())) - 1)]};
          };
          auto [med1, p991] = time_queries(1);
          json row = {{"gallery", n},
                      {"precision", match::PrecisionName(prec)},
                      {"queries", q},
                      {"bytes_per_template", double(index.FeatureBytes()) / double(n)},
                      {"median_ms_1thread", med1},
                      {"p99_ms_1thread", p991}};
          std::printf("N=%-8zu %-4s  %.0f B/template  1 thread: median %.3f ms  p99 %.3f ms", n,
                      match::PrecisionName(prec), row["bytes_per_template"].get<double>(), med1,
                      p991);
          if (n >= 100000) {
            auto [med2, p992] = time_queries(2);
            row["median_ms_2threads"] = med2;
            row["p99_ms_2threads"] = p992;
            // Batched: 64 probes, 2 threads, per-probe cost.
            const int b = 64;
            std::vector<float> batch(size_t(b) * kDim);
            for (int i = 0; i < b; ++i) unit(batch.data() + i * kDim);
            auto t0 = std::chrono::steady_clock::now();
            index.SearchBatch(batch, ver, {.k = 5, .threads = 2});
            double bms =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
            row["batch64_2threads_ms_per_probe"] = bms / b;
            std::printf(
                "  | 2 threads: median %.3f ms p99 %.3f ms | batch 64 × 2 threads: %.3f ms/probe",
                med2, p992, bms / b);
          }
          std::printf("\n");
          std::fflush(stdout);
          out["results"].push_back(row);
        }
      }
      if (as_json) std::cout << out.dump() << "\n";
    });
  }
}

ANJU_COMMAND(InstallMatchCommands);

// ---------------------------------------------------------------- identify / gallery
struct KeyFlags {
  std::string key, master;
  void Add(CLI::App* app) {
    app->add_option(
        "--key", key,
        "data key: raw key file (64 hex, mode 0600), or a wrapped key file with --master");
    app->add_option("--master", master, "raw master-key file that unwraps --key");
  }
#ifdef ANJU_HAVE_STORE
  crypto::DataKey Load() const {
    if (key.empty()) throw Error(ErrorCode::kInvalidArgument, "a gallery database needs --key");
    if (!master.empty()) return crypto::LoadKeyFile(key, crypto::LoadRawKeyFile(master));
    return crypto::LoadRawKeyFile(key);
  }
#endif
};

// person id of an image in a flat gallery folder: file stem without a trailing _<digits>.
std::string PersonFromFile(const fs::path& f) {
  std::string stem = f.stem().string();
  auto us = stem.find_last_of('_');
  if (us != std::string::npos && us + 1 < stem.size() &&
      std::all_of(stem.begin() + us + 1, stem.end(), [](char c) { return c >= '0' && c <= '9'; }))
    stem.resize(us);
  return stem;
}

bool IsImageFile(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".webp";
}

void InstallIdentifyCommands(CLI::App& root) {
  static EngineFlags flags;
  static KeyFlags keys;
  static std::string gallery, image, thresholds, level = "normal", precision = "fp32";
  static size_t k = 5;
  static bool as_json = false;
  auto* cmd = root.add_subcommand("identify",
                                  "1:N: who is this? top-k persons with scores and the decision");
  cmd->add_option("--gallery", gallery,
                  "folder of person folders / images named by person, or a gallery .db")
      ->required();
  cmd->add_option("image", image, "probe image")->required();
  cmd->add_option("--level", level, "security level: high | normal | low");
  cmd->add_option("--thresholds", thresholds, "thresholds file (default: models/thresholds.json)");
  cmd->add_option("-k,--top", k, "persons to list");
  cmd->add_option("--precision", precision, "fp32 | int8");
  cmd->add_flag("--json", as_json, "print JSON");
  keys.Add(cmd);
  flags.Add(cmd);
  cmd->callback([] {
    auto engine = flags.Open();
    const std::string ver = engine->model_version();
    auto th_path = thresholds.empty() ? match::DefaultThresholdsPath() : fs::path(thresholds);
    if (th_path.empty())
      throw Error(ErrorCode::kNotFound,
                  "no thresholds file: run anju calibrate or pass --thresholds");
    Thresholds th = Thresholds::Load(th_path, ver);
    FeatureIndex index({.model_version = ver,
                        .dim = kDim,
                        .precision = match::ParsePrecision(precision),
                        .fusion = th.fusion});
    size_t skipped = 0;
    if (fs::is_directory(gallery)) {
      std::vector<std::pair<std::string, fs::path>> items;
      for (auto& e : fs::directory_iterator(gallery)) {
        if (e.is_directory()) {
          for (auto& f : fs::directory_iterator(e.path()))
            if (f.is_regular_file() && IsImageFile(f.path()))
              items.emplace_back(e.path().filename().string(), f.path());
        } else if (e.is_regular_file() && IsImageFile(e.path())) {
          items.emplace_back(PersonFromFile(e.path()), e.path());
        }
      }
      std::sort(items.begin(), items.end());
      for (auto& [person, f] : items) {
        try {
          auto face = engine->DetectLargest(vision::LoadImage(f.string()));
          if (!face) {
            ++skipped;
            continue;
          }
          auto feat = engine->Embed(*face);
          index.Add(person, feat.values, feat.model_version);
        } catch (const Error&) {
          ++skipped;
        }
      }
    } else {
#ifdef ANJU_HAVE_STORE
      auto g = store::Gallery::Open(gallery, keys.Load(), ver);
      g->LoadInto(index);
#else
      throw Error(ErrorCode::kInvalidArgument, "this build has no gallery database support");
#endif
    }
    cv::Mat img = vision::LoadImage(image);
    auto face = engine->DetectLargest(img);
    if (!face) throw Error(ErrorCode::kNotFound, "未检测到人脸 / no face found in " + image);
    auto probe = engine->Embed(*face);
    auto t0 = std::chrono::steady_clock::now();
    auto top = index.Search(probe.values, probe.model_version, {.k = std::max<size_t>(k, 2)});
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const auto lv = match::ParseLevel(level);
    auto d = match::Decide(top, th.at(lv));
    if (top.size() > k) top.resize(k);
    json cands = json::array();
    for (auto& c : top)
      cands.push_back({{"person", c.person},
                       {"score", c.score},
                       {"templates", c.templates},
                       {"best_template", c.best_template}});
    json out = {{"decision", match::OutcomeName(d.outcome)},
                {"person", d.outcome == match::Outcome::kAccept ? d.person : ""},
                {"score", d.score},
                {"second_score", d.second_score},
                {"level", level},
                {"threshold", th.at(lv).threshold},
                {"margin", th.at(lv).margin},
                {"gallery_persons", index.persons()},
                {"gallery_templates", index.size()},
                {"skipped_gallery_images", skipped},
                {"search_ms", ms},
                {"candidates", cands}};
    if (as_json) {
      std::cout << out.dump() << "\n";
      return;
    }
    std::printf(
        "gallery: %zu persons, %zu templates (%zu images without a face skipped); search %.3f ms\n",
        index.persons(), index.size(), skipped, ms);
    for (size_t i = 0; i < top.size(); ++i)
      std::printf("  %zu. %-30s %.4f (%u templates)\n", i + 1, top[i].person.c_str(), top[i].score,
                  top[i].templates);
    const char* zh = d.outcome == match::Outcome::kAccept     ? "通过"
                     : d.outcome == match::Outcome::kStranger ? "陌生人"
                                                              : "不确定";
    std::printf("decision (%s, threshold %.4f, margin %.2f): %s / %s%s%s\n", level.c_str(),
                th.at(lv).threshold, th.at(lv).margin, zh, match::OutcomeName(d.outcome),
                d.outcome == match::Outcome::kAccept ? " → " : "",
                d.outcome == match::Outcome::kAccept ? d.person.c_str() : "");
  });

#ifdef ANJU_HAVE_STORE
  // ---- gallery enrol / list / remove
  static std::string db, person;
  static std::vector<std::string> images;
  static bool allow_duplicate = false;
  auto* g = root.add_subcommand("gallery", "encrypted gallery database (SQLite, SM4 at rest)");
  g->require_subcommand(1);
  auto* enrol = g->add_subcommand(
      "enrol", "add templates for an identity code (creates the database if needed)");
  enrol->add_option("--db", db, "gallery database")->required();
  enrol->add_option("--id", person, "opaque identity code")->required();
  enrol->add_option("images", images, "enrolment photos")->required();
  enrol->add_flag("--allow-duplicate", allow_duplicate,
                  "store even when the face matches another identity");
  keys.Add(enrol);
  flags.Add(enrol);
  enrol->callback([] {
    auto engine = flags.Open();
    const std::string ver = engine->model_version();
    auto key = keys.Load();
    auto gal = fs::exists(db) ? store::Gallery::Open(db, key, ver)
                              : store::Gallery::Create(db, key, ver, kDim);
    FeatureIndex index({.model_version = ver, .dim = kDim});
    gal->LoadInto(index);
    auto th_path = match::DefaultThresholdsPath();
    const float high =
        th_path.empty() ? 1.f : Thresholds::Load(th_path, ver).at(SecurityLevel::kHigh).threshold;
    for (auto& f : images) {
      auto face = engine->DetectLargest(vision::LoadImage(f));
      if (!face) throw Error(ErrorCode::kNotFound, "未检测到人脸 / no face found in " + f);
      auto feat = engine->Embed(*face);
      auto dups = match::FindDuplicates(index, feat.values, ver, high, person);
      if (!dups.empty()) {
        std::printf(
            "疑似重复登记 / possible duplicate: %s matches enrolled %s (score %.4f ≥ high "
            "threshold %.4f)\n",
            f.c_str(), dups[0].person.c_str(), dups[0].best_template_score, high);
        if (!allow_duplicate)
          throw Error(ErrorCode::kInvalidArgument,
                      "duplicate enrolment refused (--allow-duplicate to override)");
      }
      auto id = gal->Add(person, feat.values);
      index.Put(person, id, feat.values, ver);
      std::printf("enrolled %s → template %llu\n", f.c_str(), static_cast<unsigned long long>(id));
    }
  });
  auto* list =
      g->add_subcommand("info", "templates and identities in a gallery (verifies every row)");
  list->add_option("--db", db, "gallery database")->required();
  keys.Add(list);
  list->callback([] {
    auto gal = store::Gallery::Open(db, keys.Load());
    auto t0 = std::chrono::steady_clock::now();
    auto all = gal->LoadAll();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    auto i = gal->info();
    std::printf(
        "%s: model %s, %zu templates, %zu identities, key %s; all rows verified in %.3f s\n",
        db.c_str(), i.model_version.c_str(), i.templates, i.identities, i.key_id.c_str(), s);
  });
  auto* rm = g->add_subcommand("remove", "remove an identity's templates");
  rm->add_option("--db", db, "gallery database")->required();
  rm->add_option("--id", person, "identity code")->required();
  keys.Add(rm);
  rm->callback([] {
    auto gal = store::Gallery::Open(db, keys.Load());
    std::printf("removed %zu templates of %s\n", gal->RemoveIdentity(person), person.c_str());
  });
#endif
}

ANJU_COMMAND(InstallIdentifyCommands);

}  // namespace
}  // namespace anju::cli
