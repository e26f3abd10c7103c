// anju eval lfw | cfp | yaleb | liveness — accuracy of the engine on real data sets.
// Every evaluator prints a readable table, or with --json one JSON object as its last
// line; progress goes to stderr.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>

#include "command.h"
#include "core/error.h"
#include "eval/datasets.h"
#include "eval/feature_batch.h"
#include "eval/metrics.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct EvalFlags {
  EngineFlags engine;
  std::string data;
  bool as_json = false;
  int threads = 2;
  bool no_cache = false;
  bool no_pose = false;
  bool tight_crop = false;
  void Add(CLI::App* app, const std::string& data_help) {
    app->add_option("--data", data, data_help)->required();
    app->add_flag("--json", as_json, "print one JSON object as the last line");
    app->add_option("--threads", threads, "worker threads (one engine each)");
    app->add_flag("--no-cache", no_cache, "do not reuse cached features");
    app->add_flag("--no-pose", no_pose, "skip the pose network (no accuracy by yaw; faster)");
    app->add_flag("--tight-crop", tight_crop,
                  "locate the face as the snapshot service does: landmarks on the image as a "
                  "tight face crop, the detector only when that fails");
    engine.Add(app);
  }
  std::vector<eval::FaceRecord> Embed(const std::vector<fs::path>& files, const std::string& tag,
                                      bool liveness = false, bool pose = false,
                                      bool central = false) const {
    eval::BatchOptions o;
    o.threads = threads;
    o.with_liveness = liveness;
    o.with_pose = pose && !no_pose;
    o.central_face = central;
    o.tight_crop = tight_crop;
    if (!no_cache) o.cache = eval::DefaultCachePath(tag);
    return eval::EmbedFiles(files, engine.models, engine.Options(), o);
  }
};

float Cosine(const eval::FaceRecord& a, const eval::FaceRecord& b) {
  // A pair with a missing face is scored as impossible to match: it counts against
  // genuine pairs instead of being dropped from the protocol.
  if (!a.found || !b.found) return -1.f;
  double s = 0;
  for (size_t i = 0; i < a.feature.size(); ++i) s += double{a.feature[i]} * b.feature[i];
  return static_cast<float>(s);
}

// Unique image list of a pair list, and each pair's two indices into it.
struct PairImages {
  std::vector<fs::path> files;
  std::vector<std::pair<size_t, size_t>> index;
};
PairImages CollectImages(const std::vector<eval::ImagePair>& pairs) {
  PairImages out;
  std::map<fs::path, size_t> seen;
  auto id = [&](const fs::path& p) {
    auto [it, inserted] = seen.emplace(p, out.files.size());
    if (inserted) out.files.push_back(p);
    return it->second;
  };
  for (auto& p : pairs) out.index.emplace_back(id(p.a), id(p.b));
  return out;
}

std::string YawBucket(float yaw) {
  float a = std::abs(yaw);
  if (a < 15) return "<15";
  if (a < 30) return "15-30";
  if (a < 45) return "30-45";
  return ">45";
}

// Shared by LFW, CFP and MFR2: 10-fold verification report.
json VerificationReport(const std::vector<eval::ImagePair>& pairs,
                        const std::vector<eval::FaceRecord>& rec, const PairImages& pi,
                        bool by_yaw) {
  std::vector<eval::ScoredPair> scored;
  for (size_t i = 0; i < pairs.size(); ++i)
    scored.push_back(
        {Cosine(rec[pi.index[i].first], rec[pi.index[i].second]), pairs[i].same, pairs[i].fold});
  auto k = eval::KFoldAccuracy(scored);
  auto t3 = eval::TarAtFar(scored, 1e-3), t4 = eval::TarAtFar(scored, 1e-4);
  size_t no_face = 0;
  for (auto& r : rec) no_face += !r.found;
  json out = {{"pairs", pairs.size()},         {"folds", k.fold_accuracy.size()},
              {"accuracy", k.mean_accuracy},   {"accuracy_std", k.std_accuracy},
              {"threshold", k.mean_threshold}, {"tar_at_far_1e-3", t3.tar},
              {"tar_at_far_1e-4", t4.tar},     {"far_1e-4_resolved", t4.resolved},
              {"images", rec.size()},          {"no_face", no_face}};
  if (by_yaw) {
    // Each pair is judged with the threshold of its own fold (chosen on the others),
    // and filed under the yaw of its more-turned face (pose network).
    std::set<int> folds;
    for (auto& p : pairs) folds.insert(p.fold);
    std::map<int, float> fold_t;
    size_t fi = 0;
    for (int f : folds) fold_t[f] = k.fold_threshold[fi++];
    std::map<std::string, std::pair<size_t, size_t>> buckets;  // correct, total
    for (auto b : {"<15", "15-30", "30-45", ">45"}) buckets[b] = {0, 0};
    for (size_t i = 0; i < pairs.size(); ++i) {
      const auto& a = rec[pi.index[i].first];
      const auto& b = rec[pi.index[i].second];
      float yaw = std::max(std::abs(a.yaw), std::abs(b.yaw));
      auto& bucket = buckets[YawBucket(yaw)];
      bucket.first += (scored[i].score >= fold_t[pairs[i].fold]) == pairs[i].same;
      bucket.second += 1;
    }
    json by = json::object();
    for (auto& [name, ct] : buckets)
      by[name] = {{"accuracy", ct.second ? double(ct.first) / ct.second : 0.0},
                  {"pairs", ct.second}};
    out["by_yaw"] = by;
    out["yaw_source"] = "fr_pose.onnx (pose network), max |yaw| of the pair";
  }
  return out;
}

void PrintVerification(const std::string& title, const json& r) {
  std::printf("%s\n", title.c_str());
  std::printf("  pairs %zu, folds %zu, images %zu, no face found in %zu\n",
              r["pairs"].get<size_t>(), r["folds"].get<size_t>(), r["images"].get<size_t>(),
              r["no_face"].get<size_t>());
  std::printf("  accuracy        %.2f%% ± %.2f%%  (mean threshold %.3f)\n",
              100 * r["accuracy"].get<double>(), 100 * r["accuracy_std"].get<double>(),
              r["threshold"].get<double>());
  std::printf("  TAR @ FAR 1e-3  %.2f%%\n", 100 * r["tar_at_far_1e-3"].get<double>());
  std::printf("  TAR @ FAR 1e-4  %.2f%%%s\n", 100 * r["tar_at_far_1e-4"].get<double>(),
              r["far_1e-4_resolved"].get<bool>()
                  ? ""
                  : "  (too few impostor pairs to resolve 1e-4: threshold above every impostor)");
  if (r.contains("by_yaw")) {
    std::printf("  by yaw of the more-turned face (%s):\n",
                r["yaw_source"].get<std::string>().c_str());
    for (auto b : {"<15", "15-30", "30-45", ">45"})
      std::printf("    %-6s %6.2f%%  (%zu pairs)\n", b,
                  100 * r["by_yaw"][b]["accuracy"].get<double>(),
                  r["by_yaw"][b]["pairs"].get<size_t>());
  }
}

void Emit(const EvalFlags& f, const std::string& title, const json& r,
          void (*print)(const std::string&, const json&)) {
  if (f.as_json)
    std::cout << r.dump() << "\n";
  else
    print(title, r);
}

void InstallEval(CLI::App& root) {
  auto* eval = Group(root, "eval", "evaluate accuracy on data sets");

  static EvalFlags lfw;
  auto* l = eval->add_subcommand("lfw", "LFW 10-fold verification (R3.1.2.1)");
  lfw.Add(l, "LFW directory with pairs.txt and lfw/<name>/");
  l->callback([] {
    fs::path dir = lfw.data;
    auto pairs = eval::ReadLfwPairs(dir / "pairs.txt", dir / "lfw");
    auto pi = CollectImages(pairs);
    // LFW centres the named person; other faces in the picture may be larger.
    auto rec = lfw.Embed(pi.files, "lfw", false, /*pose=*/true, /*central=*/true);
    Emit(lfw, "LFW verification", VerificationReport(pairs, rec, pi, !lfw.no_pose),
         PrintVerification);
  });

  static EvalFlags cfp;
  static std::string protocol = "FP";
  auto* c =
      eval->add_subcommand("cfp", "CFP frontal-profile / frontal-frontal verification (R3.1.4.1)");
  cfp.Add(c, "CFP directory with Protocol/ and Data/");
  c->add_option("--protocol", protocol, "FP or FF")->check(CLI::IsMember({"FP", "FF"}));
  c->callback([] {
    auto pairs = eval::ReadCfpPairs(cfp.data, protocol);
    auto pi = CollectImages(pairs);
    auto rec = cfp.Embed(pi.files, "cfp", false, /*pose=*/true);
    auto r = VerificationReport(pairs, rec, pi, !cfp.no_pose);
    r["protocol"] = protocol;
    Emit(cfp, "CFP-" + protocol + " verification", r, PrintVerification);
  });

  static EvalFlags mfr2;
  auto* m = eval->add_subcommand("mfr2", "MFR2 masked-face verification (R2.1.5.1)");
  mfr2.Add(m, "MFR2 directory with pairs.txt and <name>/");
  m->callback([] {
    fs::path dir = mfr2.data;
    auto pairs = eval::ReadLfwPairs(dir / "pairs.txt", dir, ".png", 4);
    auto pi = CollectImages(pairs);
    auto rec = mfr2.Embed(pi.files, "mfr2");
    Emit(mfr2, "MFR2 masked verification", VerificationReport(pairs, rec, pi, false),
         PrintVerification);
  });

  static EvalFlags yale;
  auto* y = eval->add_subcommand("yaleb",
                                 "Extended Yale B identification under low light (R3.1.4.1 night)");
  yale.Add(y, "directory with yaleBNN/ subfolders");
  y->callback([] {
    auto images = eval::ListYaleB(yale.data);
    if (images.empty()) throw Error(ErrorCode::kNotFound, "no Yale B images under " + yale.data);
    std::vector<fs::path> files;
    for (auto& i : images) files.push_back(i.path);
    auto rec = yale.Embed(files, "yaleb");
    // Gallery: the frontal, evenly lit image of each subject.
    std::map<std::string, size_t> gallery;
    for (size_t i = 0; i < images.size(); ++i)
      if (!images[i].ambient && images[i].azimuth == 0 && images[i].elevation == 0)
        gallery[images[i].subject] = i;
    std::map<std::string, std::pair<size_t, size_t>> buckets;
    size_t correct = 0, total = 0, no_face = 0;
    for (size_t i = 0; i < images.size(); ++i) {
      if (gallery.count(images[i].subject) && gallery[images[i].subject] == i) continue;
      std::string best;
      float best_s = -2;
      for (auto& [subject, g] : gallery) {
        float s = Cosine(rec[i], rec[g]);
        if (s > best_s) best_s = s, best = subject;
      }
      bool ok = rec[i].found && best == images[i].subject;
      no_face += !rec[i].found;
      auto& b = buckets[eval::YaleBucket(images[i])];
      b.first += ok, b.second += 1;
      correct += ok, total += 1;
    }
    json by = json::object();
    for (auto& [name, ct] : buckets)
      by[name] = {{"accuracy", ct.second ? double(ct.first) / ct.second : 0.0},
                  {"probes", ct.second}};
    json r = {{"accuracy", total ? double(correct) / total : 0.0},
              {"probes", total},
              {"subjects", gallery.size()},
              {"no_face", no_face},
              {"by_lighting", by}};
    Emit(yale, "Yale B", r, [](const std::string&, const json& r) {
      std::printf("Extended Yale B rank-1 identification (gallery = P00A+000E+00 per subject)\n");
      std::printf("  subjects %zu, probes %zu, no face found in %zu\n", r["subjects"].get<size_t>(),
                  r["probes"].get<size_t>(), r["no_face"].get<size_t>());
      std::printf("  overall rank-1  %.2f%%\n", 100 * r["accuracy"].get<double>());
      std::printf("  by light angle max(|azimuth|,|elevation|):\n");
      for (auto& [name, v] : r["by_lighting"].items())
        std::printf("    %-8s %6.2f%%  (%zu probes)\n", name.c_str(),
                    100 * v["accuracy"].get<double>(), v["probes"].get<size_t>());
    });
  });
}

ANJU_COMMAND(InstallEval);

}  // namespace
}  // namespace anju::cli
