// anju calibrate | identify | eval identify | bench search — 1:N identification. The
// algorithms live in src/match (calibration.h) and src/eval (open_set.h); this file parses
// flags and prints.
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
#include "eval/open_set.h"
#include "match/calibration.h"
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
  eval::LoadOptions Load(bool liveness = false,
                         eval::FaceChoice face = eval::FaceChoice::kAuto) const {
    eval::LoadOptions o;
    o.model_dir = engine.models.empty() ? DefaultModelDir() : fs::path(engine.models);
    o.engine = engine.Options();
    o.threads = threads;
    o.cache = !no_cache;
    o.liveness = liveness;
    o.face = face;
    return o;
  }
};

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

fs::path DefaultDuplicateList() {
  fs::path p = match::RepoModelsDir() / "lfw-duplicate-identities.txt";
  return fs::exists(p) ? p : fs::path{};
}

fs::path DefaultEastAsianDuplicateList() {
  fs::path p = match::RepoModelsDir() / "east-asian-duplicate-identities.txt";
  return fs::exists(p) ? p : fs::path{};
}

// The developer data's East-Asian sets (shared/data README): whichever are present.
std::vector<std::string> DefaultEastAsianDirs() {
  std::vector<std::string> out;
  const fs::path d = DefaultDataDir();
  for (const char* sub : {"asian", "east-asian/casia5", "east-asian/strangers"})
    if (!d.empty() && fs::is_directory(d / sub)) out.push_back((d / sub).string());
  return out;
}

std::vector<fs::path> Paths(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string Joined(const std::vector<std::string>& v, const char* flag) {
  std::string s;
  for (auto& x : v) s += std::string(" ") + flag + " " + x;
  return s;
}

void PrintLevels(const json& levels) {
  for (auto l : match::kAllLevels) {
    if (!levels.contains(match::LevelName(l))) continue;
    auto& x = levels[match::LevelName(l)];
    std::printf(
        "  %-6s t=%.4f m=%.2f: FPIR %.4f (%zu)  FNIR %.4f (stranger %zu, uncertain %zu)  "
        "wrong person %.4f (%zu)  absent-resident FPIR %.4f (%zu)\n",
        match::LevelName(l), x["threshold"].get<float>(), x["margin"].get<float>(),
        x["fpir"].get<double>(), x["false_accepts"].get<size_t>(), x["fnir"].get<double>(),
        x["mated_rejected_as_stranger"].get<size_t>(), x["mated_uncertain"].get<size_t>(),
        x["wrong_person_rate"].get<double>(), x["mated_wrong_person_accepted"].get<size_t>(),
        x["absent_fpir"].get<double>(), x["absent_false_accepts"].get<size_t>());
    if (x.contains("unit_doors")) {
      auto& u = x["unit_doors"];
      for (auto key : {"unit_gallery", "whole_gallery_allowed_list"}) {
        auto& d = u[key];
        std::printf(
            "         %zu doors × %zu, %-27s own-door FNIR %.4f, other-door opens %.5f (%zu), "
            "stranger door opens %.5f (%zu), absent %.5f (%zu)\n",
            u["doors"].get<size_t>(), u["persons_per_door"].get<size_t>(), key,
            d["own_door_fnir"].get<double>(), d["other_door_open_rate"].get<double>(),
            d["other_door_opens"].get<size_t>(), d["stranger_door_open_rate"].get<double>(),
            d["stranger_door_opens"].get<size_t>(), d["absent_door_open_rate"].get<double>(),
            d["absent_door_opens"].get<size_t>());
      }
    }
  }
}

void PrintOpenSet(const std::string& title, const json& r) {
  std::printf(
      "%s: gallery %zu persons (%zu residents + %zu real + %zu extra real + %zu random "
      "distractors), %zu templates; enrol %zu (%s), probe frames %zu\n",
      title.c_str(), r["gallery_persons"].get<size_t>(), r["residents"].get<size_t>(),
      r["distractors_real"].get<size_t>(), r["distractors_extra"].get<size_t>(),
      r["distractors_random"].get<size_t>(), r["gallery_templates"].get<size_t>(),
      r["enrol_photos"].get<size_t>(), r["templates"].get<std::string>().c_str(),
      r["probe_frames"].get<size_t>());
  auto part = [](const char* name, const json& x) {
    std::printf(
        " %s: %zu mated, %zu strangers, %zu absent-resident probes; rank-1 %.4f  "
        "FNIR@FPIR=1%% %.4f (t=%.4f)  FNIR@FPIR=0.1%% %.4f (t=%.4f)\n",
        name, x["mated_probes"].get<size_t>(), x["nonmated_probes"].get<size_t>(),
        x["absent_resident_probes"].get<size_t>(), x["rank1"].get<double>(),
        x["at_fpir_1pct"]["fnir"].get<double>(), x["at_fpir_1pct"]["threshold"].get<float>(),
        x["at_fpir_0.1pct"]["fnir"].get<double>(), x["at_fpir_0.1pct"]["threshold"].get<float>());
    if (x.contains("levels")) PrintLevels(x["levels"]);
  };
  part("ungated", r);
  auto& q = r["quality_refused"];
  std::printf(" frame gate refused %zu mated, %zu stranger, %zu absent-resident probes %s\n",
              q["mated"].get<size_t>(), q["nonmated"].get<size_t>(),
              q["absent_resident"].get<size_t>(), q["by_reason"].dump().c_str());
  part("gated", r["gated"]);
  if (r.contains("site_calibration") && r["site_calibration"].contains("levels"))
    for (auto l : match::kAllLevels) {
      auto& s = r["site_calibration"]["levels"][match::LevelName(l)];
      std::printf("  site %-6s %.4f (%s; leave-one-out %.4f%s, pairs %.4f%s)\n",
                  match::LevelName(l), s["threshold"].get<float>(),
                  s["basis"].get<std::string>().c_str(),
                  s["leave_one_out"]["threshold"].get<float>(),
                  s["leave_one_out"]["resolved"].get<bool>() ? "" : " unresolved",
                  s["pairs"]["threshold"].get<float>(),
                  s["pairs"]["resolved"].get<bool>() ? "" : " unresolved");
    }
}

void PrintCalibration(const Thresholds& th, const json& report) {
  auto row = [](const char* name, const json& d) {
    std::printf("%-22s genuine %zu, impostor %zu, max impostor %.4f\n", name,
                d["genuine_pairs"].get<size_t>(), d["impostor_pairs"].get<size_t>(),
                d["max_impostor"].get<float>());
    for (auto l : match::kAllLevels) {
      auto& x = d["levels"][match::LevelName(l)];
      std::printf("  %-6s FMR %.0e: threshold %.4f%s  FMR %.2e  FNMR %.4f\n", match::LevelName(l),
                  match::TargetFmr(l), x["threshold"].get<float>(),
                  x["resolved"].get<bool>() ? "" : " (unresolved: max+0.02)",
                  x["fmr"].get<double>(), x["fnmr"].get<double>());
    }
  };
  row("LFW", report["lfw"]);
  row("East-Asian", report["asian"]);
  for (auto& o : report["asian_extrapolated"]["offsets"])
    std::printf(
        "East-Asian − LFW at the upper %.0e quantile: %+.4f (%.0f East-Asian pairs above)\n",
        o["quantile"].get<double>(), o["offset"].get<float>(),
        o["east_asian_pairs_above"].get<double>());
  std::printf("offset used: %+.4f\n", report["asian_extrapolated"]["offset"].get<float>());
  for (auto l : match::kAllLevels) {
    auto& c = report["chosen"][match::LevelName(l)];
    std::printf(
        "chosen %-6s threshold %.4f margin %.2f (%s; estimate %.4f): LFW FMR %.2e FNMR %.4f | "
        "East-Asian FMR %.2e FNMR %.4f\n",
        match::LevelName(l), c["threshold"].get<float>(), th.at(l).margin,
        c["basis"].get<std::string>().c_str(), c["estimate"].get<float>(),
        c["lfw_fmr"].get<double>(), c["lfw_fnmr"].get<double>(), c["asian_fmr"].get<double>(),
        c["asian_fnmr"].get<double>());
  }
  if (report.contains("fusion_experiment")) {
    auto& f = report["fusion_experiment"];
    for (const char* name : {"max", "mean", "centroid"}) {
      if (!f.contains(name)) continue;
      const std::string ea = std::string("east_asian_") + name;
      std::printf("fusion %-8s LFW rank-1 %.4f FNIR@FPIR1%% %.4f", name,
                  f[name]["rank1"].get<double>(), f[name]["at_fpir_1pct"]["fnir"].get<double>());
      if (f.contains(ea))
        std::printf(" | East-Asian rank-1 %.4f FNIR@FPIR1%% %.4f (%zu probes)",
                    f[ea]["rank1"].get<double>(), f[ea]["at_fpir_1pct"]["fnir"].get<double>(),
                    f[ea]["mated_probes"].get<size_t>());
      std::printf("\n");
    }
    std::printf("fusion chosen: %s\n", f["chosen"].get<std::string>().c_str());
  }
}

std::array<float, 3> ParseTriple(const std::string& s, const char* what) {
  std::array<float, 3> v{};
  std::istringstream ss(s);
  std::string part;
  for (int i = 0; i < 3; ++i) {
    if (!std::getline(ss, part, ','))
      throw Error(ErrorCode::kInvalidArgument,
                  std::string(what) + ": three comma-separated values (high,normal,low)");
    v[i] = std::stof(part);
  }
  return v;
}

void InstallMatchCommands(CLI::App& root) {
  // ---- calibrate
  {
    static DataFlags flags;
    static KeyFlags keys;
    static std::string data, out, dups, asian_dups, gallery, base, split = "all", site_fpir, floor;
    static std::vector<std::string> asian;
    static unsigned split_seed = 1;
    static size_t gallery_persons = 0;
    static bool as_json = false;
    auto* cmd = root.add_subcommand(
        "calibrate",
        "calibrate security-level thresholds: the shipped levels (--data LFW --asian DIR) or a "
        "site's gallery at its real size (--gallery DB)");
    cmd->add_option("--data", data, "LFW directory (lfw/ and pairs.txt)");
    cmd->add_option("--asian", asian,
                    "East-Asian sets (repeatable): person folders or one-photo folders (default: "
                    "<data dir>/asian, east-asian/casia5, east-asian/strangers)");
    cmd->add_option("--split", split,
                    "part of the East-Asian identities used: all | tune | heldout")
        ->check(CLI::IsMember({"all", "tune", "heldout"}));
    cmd->add_option("--split-seed", split_seed, "seed of the identity split");
    cmd->add_option("--gallery", gallery,
                    "site calibration: the site's gallery database (with --key)");
    cmd->add_option("--thresholds", base,
                    "with --gallery: the base levels (default: models/thresholds.json)");
    cmd->add_option("--gallery-persons", gallery_persons,
                    "with --gallery: calibrate for this many persons (a site filling up)");
    cmd->add_option("--site-fpir", site_fpir,
                    "with --gallery: target FPIR high,normal,low (default 0.001,0.005,0.02)");
    cmd->add_option("--out", out, "thresholds file to write")->required();
    cmd->add_option("--duplicates", dups,
                    "LFW duplicate-identity list merged before scoring (default: "
                    "models/lfw-duplicate-identities.txt)");
    cmd->add_option("--asian-duplicates", asian_dups,
                    "East-Asian duplicate-identity list merged before the split and scoring "
                    "(default: models/east-asian-duplicate-identities.txt)");
    cmd->add_option("--floor", floor,
                    "levels never below this thresholds file's (e.g. the levels being replaced)");
    cmd->add_flag("--json", as_json, "print the report as one JSON line at the end");
    keys.Add(cmd);
    flags.Add(cmd);
    cmd->callback([] {
      if (!gallery.empty()) {
#ifdef ANJU_HAVE_STORE
        const std::string ver =
            vision::ModelSet::Load(flags.Load().model_dir, false)->feature_version();
        fs::path bp = base.empty() ? match::DefaultThresholdsPath() : fs::path(base);
        if (bp.empty())
          throw Error(ErrorCode::kNotFound, "no base thresholds file: pass --thresholds");
        const Thresholds b = Thresholds::Load(bp, ver);
        FeatureIndex index({.model_version = ver, .dim = kDim, .fusion = b.fusion});
        store::Gallery::Open(gallery, keys.Load(), ver)->LoadInto(index);
        match::SiteOptions so;
        so.gallery_persons = gallery_persons;
        so.threads = flags.threads;
        if (!site_fpir.empty()) {
          auto t = ParseTriple(site_fpir, "--site-fpir");
          for (int i = 0; i < 3; ++i) so.target_fpir[i] = t[i];
        }
        auto cal = match::CalibrateGallery(index, b, so);
        cal.thresholds.created = UtcNow();
        cal.thresholds.report_json = cal.report.dump();
        cal.thresholds.Save(out);
        std::printf("gallery %s: %zu persons, %zu templates\n", gallery.c_str(), index.persons(),
                    index.size());
        if (cal.report.contains("kept_base"))
          std::printf("kept the base levels: %s\n",
                      cal.report["kept_base"].get<std::string>().c_str());
        else
          for (auto l : match::kAllLevels) {
            auto& s = cal.report["levels"][match::LevelName(l)];
            std::printf("%-6s %.4f (base %.4f; %s)\n", match::LevelName(l),
                        cal.thresholds.at(l).threshold, b.at(l).threshold,
                        s["basis"].get<std::string>().c_str());
          }
        std::printf("wrote %s\n", out.c_str());
        if (as_json) std::cout << cal.report.dump() << "\n";
        return;
#else
        throw Error(ErrorCode::kInvalidArgument, "this build has no gallery database support");
#endif
      }
      if (data.empty()) throw Error(ErrorCode::kInvalidArgument, "--data LFW (or --gallery DB)");
      if (asian.empty()) asian = DefaultEastAsianDirs();
      if (asian.empty()) throw Error(ErrorCode::kNotFound, "no East-Asian set: pass --asian DIR");
      eval::LabelledSet lfw = eval::LoadLabelledSet(data, flags.Load());
      fs::path dup_file = dups.empty() ? DefaultDuplicateList() : fs::path(dups);
      if (!dup_file.empty()) eval::MergeDuplicates(lfw, eval::ReadDuplicateList(dup_file));
      eval::LabelledSet ea_all = eval::LoadLabelledSets(Paths(asian), flags.Load());
      fs::path ea_dup_file =
          asian_dups.empty() ? DefaultEastAsianDuplicateList() : fs::path(asian_dups);
      if (!ea_dup_file.empty()) eval::MergeDuplicates(ea_all, eval::ReadDuplicateList(ea_dup_file));
      eval::LabelledSet ea = eval::SelectSplit(ea_all, eval::ParseSplit(split), split_seed);
      std::printf("LFW: %zu images, %zu faces; East-Asian (%s): %zu images, %zu faces\n",
                  lfw.faces.size(), lfw.found(), split.c_str(), ea.faces.size(), ea.found());
      eval::ReferenceCalibrationInputs in;
      in.lfw = &lfw;
      in.east_asian = &ea;
      in.threads = flags.threads;
      in.command = "anju calibrate --data " + data + Joined(asian, "--asian") +
                   (split == "all" ? "" : " --split " + split) + " --out " + out;
      match::ReferenceOptions ro;
      if (!floor.empty()) ro.floor = Thresholds::Load(floor, lfw.model_version);
      in.command += floor.empty() ? "" : " --floor " + floor;
      auto cal = eval::CalibrateFromSets(in, ro);
      cal.report["lfw_duplicates_merged"] = dup_file.string();
      cal.report["east_asian_duplicates_merged"] = ea_dup_file.string();
      cal.report["east_asian_split"] = {{"split", split}, {"seed", split_seed}};
      Thresholds& th = cal.thresholds;
      th.model_version = lfw.model_version;
      th.created = UtcNow();
      th.report_json = cal.report.dump();
      th.Save(out);
      PrintCalibration(th, cal.report);
      std::printf("wrote %s\n", out.c_str());
      if (as_json) std::cout << cal.report.dump() << "\n";
    });
  }

  // ---- eval lookalikes
  {
    static DataFlags flags;
    static std::vector<std::string> data;
    static float above = 0.7f;
    static std::string face = "auto";
    auto* cmd = Group(root, "eval", "evaluate on data sets")
                    ->add_subcommand("lookalikes",
                                     "faces filed under different identities that score high "
                                     "(label noise: one person filed twice)");
    cmd->add_option("--data", data, "person-folder sets (repeatable)")->required();
    cmd->add_option("--above", above, "list pairs scoring at least this (default 0.7)");
    cmd->add_option("--face", face, "auto | largest | central")
        ->check(CLI::IsMember({"auto", "largest", "central"}));
    flags.Add(cmd);
    cmd->callback([] {
      auto set =
          eval::LoadLabelledSets(Paths(data), flags.Load(false, eval::ParseFaceChoice(face)));
      auto pairs = eval::CrossIdentityPairs(set, above);
      std::printf("%zu pairs of different identities at or above %.3f among %zu faces\n",
                  pairs.size(), above, set.found());
      for (const auto& p : pairs)
        std::printf("%.4f  %s  %s  (%s | %s)\n", p.score, p.a->person.c_str(), p.b->person.c_str(),
                    p.a->file.string().c_str(), p.b->file.string().c_str());
    });
  }

  // ---- eval identify
  {
    static DataFlags flags;
    static std::vector<std::string> data, strangers;
    static std::vector<std::string> dups;
    static std::string distractors, cohort, thresholds,
        precision = "fp32", split = "all", templates = "each", fusion, face = "auto", margins,
        site_fpir;
    static std::vector<size_t> gallery_sizes;
    static size_t enrol = 1, probes_per_resident = 0, probe_frames = 1, max_sequences = 10,
                  door_size = 0, hub_top = 10;
    static double share = 0.5;
    static float min_quality = vision::FrameGate{}.min_quality,
                 min_face_px = vision::FrameGate{}.min_face_px, liveness = -1, hub = 0;
    static bool as_json = false, site = false, no_absent = false;
    static unsigned seed = 7, split_seed = 1;
    auto* cmd = Group(root, "eval", "evaluate on data sets")
                    ->add_subcommand("identify",
                                     "open-set 1:N identification as a site runs it: FPIR, FNIR "
                                     "and wrong-person accepts per security level");
    cmd->add_option("--data", data,
                    "person-folder set (repeatable): an LFW directory, DIR/<person>/<images>, "
                    "or images directly in DIR (one-photo people)")
        ->required();
    cmd->add_option("--strangers", strangers,
                    "folder of stranger photos (repeatable): non-mated probes only");
    cmd->add_option("--distractors", distractors,
                    "more real faces padding the gallery after the set's own one-photo people "
                    "(one photo per person), before random vectors");
    cmd->add_option("--gallery-size", gallery_sizes,
                    "pad the gallery to N persons (several sizes: one run each)");
    cmd->add_option("--distractor-share", share,
                    "at most this share of the one-photo people pads the gallery (default 0.5; "
                    "the rest are stranger probes)");
    cmd->add_option("--split", split, "identities used: all | tune | heldout")
        ->check(CLI::IsMember({"all", "tune", "heldout"}));
    cmd->add_option("--split-seed", split_seed, "seed of the identity split");
    cmd->add_option("--enrol", enrol, "photos enrolled per resident (default 1)");
    cmd->add_option("--templates", templates,
                    "each (one template per photo) | mean (one averaged template)")
        ->check(CLI::IsMember({"each", "mean"}));
    cmd->add_option("--probes-per-resident", probes_per_resident,
                    "probe only the last K photos of each resident (0 = all after the enrolled)");
    cmd->add_option("--probe-frames", probe_frames,
                    "photos of one person fused per probe, as the terminal fuses frames");
    cmd->add_option("--max-sequences", max_sequences, "fused probes per resident at most");
    cmd->add_option("--min-quality", min_quality, "frame gate: quality score (terminal default)");
    cmd->add_option("--min-face-px", min_face_px, "frame gate: face box side (terminal default)");
    cmd->add_option("--liveness", liveness,
                    "frame gate: also refuse probes whose liveness is below this (scores "
                    "liveness; separate feature cache)");
    cmd->add_flag("--site-calibration", site,
                  "levels from the gallery itself (match::CalibrateGallery)");
    cmd->add_option("--site-fpir", site_fpir, "site calibration target FPIR high,normal,low");
    cmd->add_option("--hub-strength", hub, "hub correction strength (0 = off)");
    cmd->add_option("--hub-top", hub_top, "hub correction: best cohort scores averaged");
    cmd->add_option("--cohort", cohort,
                    "hub correction cohort (default: the gallery's other persons); with "
                    "--split, its tune half");
    cmd->add_option("--door-size", door_size,
                    "unit doors of N persons: unit-only galleries vs the whole gallery with the "
                    "door's allowed list");
    cmd->add_option("--margins", margins, "override the margins: high,normal,low");
    cmd->add_option("--fusion", fusion, "max | mean | centroid (default: the thresholds file's)")
        ->check(CLI::IsMember({"max", "mean", "centroid"}));
    cmd->add_option("--face", face, "auto | largest | central (auto: central for LFW)")
        ->check(CLI::IsMember({"auto", "largest", "central"}));
    cmd->add_flag("--no-absent", no_absent, "skip the absent-resident probes");
    cmd->add_option("--exclude-duplicates", dups,
                    "also report with these duplicate identities merged (files like "
                    "models/lfw-duplicate-identities.txt, repeatable; merged before the split)");
    cmd->add_option("--thresholds", thresholds,
                    "thresholds file (default: models/thresholds.json)");
    cmd->add_option("--precision", precision, "fp32 | int8");
    cmd->add_option("--seed", seed, "seed for the distractors and door units");
    cmd->add_flag("--json", as_json, "print one JSON object as the last line");
    flags.Add(cmd);
    cmd->callback([] {
      const auto sp = eval::ParseSplit(split);
      const bool live = liveness >= 0;
      const auto lo = flags.Load(live, eval::ParseFaceChoice(face));
      // Duplicate identities are merged before the split, so one person never sits in both
      // halves.
      std::map<std::string, std::string> dup_list;
      for (const auto& f : dups) dup_list.merge(eval::ReadDuplicateList(f));
      auto load = [&](const std::vector<std::string>& dirs, eval::Split s, bool merge) {
        auto all = eval::LoadLabelledSets(Paths(dirs), lo);
        if (merge) eval::MergeDuplicates(all, dup_list);
        return eval::SelectSplit(all, s, split_seed);
      };
      struct Sets {
        eval::LabelledSet set;
        std::optional<eval::LabelledSet> str, dis, coh;
      };
      auto load_all = [&](bool merge) {
        Sets x;
        x.set = load(data, sp, merge);
        if (!strangers.empty()) x.str = load(strangers, sp, merge);
        if (!distractors.empty()) x.dis = load({distractors}, sp, merge);
        // The cohort is part of the tuned machinery: never the half being measured.
        if (!cohort.empty())
          x.coh = load({cohort}, sp == eval::Split::kAll ? eval::Split::kAll : eval::Split::kTune,
                       merge);
        return x;
      };
      Sets raw = load_all(false);
      std::optional<Sets> merged;
      if (!dups.empty()) merged = load_all(true);
      const eval::LabelledSet& set = raw.set;
      fs::path th_path = thresholds.empty() ? match::DefaultThresholdsPath() : fs::path(thresholds);
      std::optional<Thresholds> th;
      if (!th_path.empty() && fs::exists(th_path))
        th = Thresholds::Load(th_path, set.model_version);
      eval::OpenSetOptions o;
      o.enrol = enrol;
      o.templates = eval::ParseTemplateMode(templates);
      o.probes_per_resident = probes_per_resident;
      o.probe_frames = probe_frames;
      o.max_sequences = max_sequences;
      o.distractor_share = share;
      o.seed = seed;
      o.precision = match::ParsePrecision(precision);
      o.fusion = !fusion.empty() ? match::ParseFusion(fusion)
                 : th            ? th->fusion
                                 : match::kDefaultFusion;
      o.threads = flags.threads;
      o.gate = {min_face_px, min_quality};
      o.liveness_threshold = liveness;
      o.absent_residents = !no_absent;
      o.site_calibration = site;
      if (!site_fpir.empty()) {
        auto t = ParseTriple(site_fpir, "--site-fpir");
        for (int i = 0; i < 3; ++i) o.site.target_fpir[i] = t[i];
      }
      o.hub = {hub, hub_top};
      o.door_size = door_size;
      if (!margins.empty()) o.margins = ParseTriple(margins, "--margins");
      auto inputs = [](const Sets& x) {
        return eval::OpenSetInputs{&x.set, x.str ? &*x.str : nullptr, x.dis ? &*x.dis : nullptr,
                                   x.coh ? &*x.coh : nullptr};
      };
      if (gallery_sizes.empty()) gallery_sizes = {0};
      json out = {{"protocol",
                   "open set: the first --enrol photos of people with more photos enrolled, the "
                   "others mated probes; one-photo people pad the gallery (at most "
                   "--distractor-share of them) and the rest are strangers, with --strangers"},
                  {"model_version", set.model_version},
                  {"precision", precision},
                  {"thresholds", th ? th_path.string() : std::string("none")},
                  {"split", {{"split", split}, {"seed", split_seed}}},
                  {"sets", set.sources},
                  {"faces", set.found()}};
      json by_size = json::object();
      for (size_t n : gallery_sizes) {
        o.gallery_size = n;
        json r = eval::RunOpenSet(inputs(raw), o, th ? &*th : nullptr);
        if (!out.contains("raw_labels")) out["raw_labels"] = r;
        by_size[std::to_string(n)] = r;
        if (!as_json) PrintOpenSet("gallery size " + std::to_string(n), r);
        if (merged) {
          json m = eval::RunOpenSet(inputs(*merged), o, th ? &*th : nullptr);
          if (!out.contains("duplicates_merged")) out["duplicates_merged"] = m;
          by_size[std::to_string(n)]["duplicates_merged"] = m;
          if (!as_json) PrintOpenSet("  duplicates merged", m);
        }
      }
      if (gallery_sizes.size() > 1) out["gallery_sizes"] = by_size;
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
