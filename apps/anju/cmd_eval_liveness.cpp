// anju eval liveness — presentation-attack detection (R3.1.2.4) on real images:
//   --data NUAA                        NUAA's ClientRaw / ImposterRaw (optionally by lists)
//   --live-dir D… --attack-dir D…      any folders of images, searched recursively, one
//                                      frame per image (the largest face is judged)
//   --sequences --live-dir … --attack-dir …   one folder per approach, frames in name order,
//                                      replayed through the terminal's own AccessPipeline
// Figures and the commands that made them: BENCHMARKS.md "Liveness".
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "command.h"
#include "core/error.h"
#include "core/paths.h"
#include "eval/datasets.h"
#include "eval/feature_batch.h"
#include "eval/liveness_eval.h"
#include "eval/metrics.h"
#include "terminal/approach_replay.h"
#include "vision/image.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct LivenessEval {
  EngineFlags engine;
  std::string nuaa, live_list, attack_list;
  std::vector<std::string> live_dirs, attack_dirs;
  bool sequences = false, as_json = false, no_cache = false, rgb = false, no_live_flip = false;
  std::string split = "all", pipeline_json, fusion;
  // Frames mode: which score is judged — the network ("net"), the texture cue alone
  // ("texture", as sigmoid(weight · (cue − center))) or both fused in log-odds ("fused",
  // vision::FuseTextureCue). --fit-texture reports the cue's line fitted on the split.
  std::string cue = "net";
  bool fit_texture = false;
  float texture_weight = vision::LivenessOptions{}.texture_weight;
  float texture_center = vision::LivenessOptions{}.texture_center;
  int threads = 2;
  double fps = 10, target_apcer = 0.02, target_bpcer = 0.03;
  float context_scale = vision::LivenessOptions{}.context_scale;
  CLI::App* app = nullptr;

  vision::EngineOptions Options() const {
    vision::EngineOptions o = engine.Options();
    o.liveness.rgb_input = rgb;
    o.liveness.context_scale = context_scale;
    o.liveness.flip_tta = !no_live_flip;
    o.liveness.texture_weight = texture_weight;
    o.liveness.texture_center = texture_center;
    return o;
  }
  float Threshold() const {
    // --liveness-threshold when given; else the shipped default (vision::LivenessOptions).
    return app->count("--liveness-threshold") ? engine.liveness_threshold
                                              : vision::LivenessOptions{}.threshold;
  }
  std::vector<eval::LiveScore> Score(const std::vector<fs::path>& files,
                                     const std::string& tag) const {
    eval::LiveScoreOptions so;
    so.threads = threads;
    // One cache per data set and setting, so that comparing settings does not thrash it.
    char setting[64];
    std::snprintf(setting, sizeof setting, "-s%.2f-%s%s", context_scale, rgb ? "rgb" : "bgr",
                  no_live_flip ? "-noflip" : "");
    if (!no_cache) so.cache = eval::DefaultCachePath("liveness-" + tag + setting);
    return eval::ScoreLiveness(files, engine.models, Options(), so);
  }

  void Run();
  json RunNuaa() const;
  json RunFrames() const;
  json RunSequences() const;
};

double Rate(size_t errors, size_t n) {
  return n ? double(errors) / double(n) : 0.0;
}

// APCER / BPCER / ACER at T, the equal-error point, and the operating point at the target
// APCER (the threshold a tune split would choose), over the frames that had a face.
json PadReport(const std::vector<float>& live, const std::vector<float>& attack, float t,
               double target_apcer, double target_bpcer) {
  const auto at = eval::PadRatesAt(live, attack, t);
  const auto eer = eval::EqualErrorPoint(live, attack);
  const float t_target = eval::ThresholdAtApcer(attack, target_apcer);
  const auto tgt = eval::PadRatesAt(live, attack, t_target);
  const float t_bpcer = eval::ThresholdAtBpcer(live, target_bpcer);
  const auto at_b = eval::PadRatesAt(live, attack, t_bpcer);
  return {{"threshold", t},
          {"apcer", at.apcer},
          {"bpcer", at.bpcer},
          {"acer", at.acer},
          {"eer_threshold", eer.threshold},
          {"eer_apcer", eer.apcer},
          {"eer_bpcer", eer.bpcer},
          {"target_apcer", target_apcer},
          {"threshold_at_target_apcer", t_target},
          {"apcer_at_target", tgt.apcer},
          {"bpcer_at_target", tgt.bpcer},
          {"target_bpcer", target_bpcer},
          {"threshold_at_target_bpcer", t_bpcer},
          {"apcer_at_target_bpcer", at_b.apcer},
          {"bpcer_at_target_bpcer", at_b.bpcer},
          // How the shipped default was chosen on the tune split (BENCHMARKS.md).
          {"midpoint_threshold", eval::MidpointThreshold(t_target, t_bpcer)}};
}

json LivenessEval::RunNuaa() const {
  auto items = eval::ListNuaa(nuaa, live_list, attack_list);
  std::vector<fs::path> files;
  for (auto& i : items) files.push_back(i.path);
  const auto rec = Score(files, "nuaa");
  // NUAA's protocol: a frame without a face cannot be accepted, so for an attack it is a
  // success and for a live person a rejection (scored 0). With several faces the largest.
  std::vector<float> live_s, attack_s;
  size_t no_face = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    no_face += !rec[i].found;
    (items[i].live ? live_s : attack_s).push_back(rec[i].found ? rec[i].score : 0.f);
  }
  json r = PadReport(live_s, attack_s, Threshold(), target_apcer, target_bpcer);
  r["mode"] = "nuaa";
  r["live"] = live_s.size();
  r["attacks"] = attack_s.size();
  r["no_face"] = no_face;
  return r;
}

json LivenessEval::RunFrames() const {
  const eval::Split part = eval::ParseSplit(split);
  if (cue != "net" && texture_weight == 0)
    throw Error(ErrorCode::kInvalidArgument,
                "--cue texture|fused needs --texture-weight and --texture-center "
                "(--fit-texture on the tune split gives them)");
  const vision::EngineOptions eo = Options();
  auto judged = [&](const eval::LiveScore& r) -> float {
    if (cue == "net") return r.score;
    if (cue == "fused") return vision::FuseTextureCue(r.score, r.texture, eo.liveness);
    if (std::isnan(r.texture)) return 0.f;  // nothing measurable: not accepted as live
    return static_cast<float>(
        1 / (1 + std::exp(-double(texture_weight) * (double(r.texture) - texture_center))));
  };
  std::vector<float> live_tex, attack_tex;
  double net_ms = 0, texture_ms = 0;
  size_t timed = 0;
  std::vector<float> live_s, attack_s;
  size_t live_images = 0, attack_images = 0, live_no_face = 0, attack_no_face = 0;
  json sets = json::array();
  const float t = Threshold();
  for (const bool live : {true, false}) {
    for (const auto& d : live ? live_dirs : attack_dirs) {
      auto all = eval::ListImagesRecursive(d);
      const auto in = eval::InSplit(all, d, part);
      std::vector<fs::path> files;
      for (size_t i = 0; i < all.size(); ++i)
        if (in[i]) files.push_back(all[i]);
      const auto rec = Score(files, fs::path(d).filename().string());
      size_t faces = 0, no_face = 0, errors = 0;
      for (const auto& r : rec) {
        if (!r.found) {
          ++no_face;
          continue;
        }
        ++faces;
        const float v = judged(r);
        (live ? live_s : attack_s).push_back(v);
        errors += live ? v < t : v >= t;
        if (!std::isnan(r.texture)) (live ? live_tex : attack_tex).push_back(r.texture);
        if (r.net_ms > 0) net_ms += r.net_ms, texture_ms += r.texture_ms, ++timed;
      }
      (live ? live_images : attack_images) += files.size();
      (live ? live_no_face : attack_no_face) += no_face;
      sets.push_back({{"dir", d},
                      {"kind", live ? "live" : "attack"},
                      {"images", files.size()},
                      {"faces", faces},
                      {"no_face", no_face},
                      {live ? "bpcer" : "apcer", Rate(errors, faces)},
                      {live ? "rejected" : "accepted", errors}});
    }
  }
  if (live_s.empty() || attack_s.empty())
    throw Error(ErrorCode::kNotFound,
                "没有可评估的人脸 / no face found among the live or the attack images");
  json r = PadReport(live_s, attack_s, t, target_apcer, target_bpcer);
  r["mode"] = "frames";
  r["split"] = split;
  r["cue"] = cue;
  if (cue != "net") r["texture_weight"] = texture_weight, r["texture_center"] = texture_center;
  if (fit_texture) {
    const auto line = eval::FitLogisticLine(live_tex, attack_tex);
    r["texture_fit"] = {{"weight", line.weight},
                        {"center", line.center},
                        {"live", live_tex.size()},
                        {"attacks", attack_tex.size()}};
  }
  // Per-frame cost, over the images scored in this run (none when all came from the cache).
  r["timed_frames"] = timed;
  if (timed) r["net_ms"] = net_ms / double(timed), r["texture_ms"] = texture_ms / double(timed);
  r["live"] = live_s.size();  // frames with a face: the denominators of the rates
  r["attacks"] = attack_s.size();
  r["live_images"] = live_images;
  r["attack_images"] = attack_images;
  r["live_no_face"] = live_no_face;
  r["attack_no_face"] = attack_no_face;
  // A live image whose face is not found is refused too (the door stays shut).
  size_t live_rejected = 0;
  for (float s : live_s) live_rejected += s < t;
  r["bpcer_counting_no_face"] = Rate(live_rejected + live_no_face, live_images);
  r["sets"] = sets;
  return r;
}

json LivenessEval::RunSequences() const {
  const eval::Split part = eval::ParseSplit(split);
  terminal::PipelineOptions po =
      pipeline_json.empty() ? terminal::PipelineOptions{}
                            : terminal::PipelineOptions::FromJson(json::parse(pipeline_json));
  if (app->count("--liveness-threshold")) po.liveness_threshold = engine.liveness_threshold;
  if (!fusion.empty()) po.liveness_fusion = vision::ParseLivenessFusion(fusion);
  if (po.ir_required)
    throw Error(ErrorCode::kInvalidArgument,
                "--sequences replays colour frames only: ir_mode must be off");
  cv::setNumThreads(threads);
  auto engine_ptr = vision::FaceEngine::Open(
      engine.models.empty() ? DefaultModelDir() : fs::path(engine.models), Options());

  size_t live_n = 0, live_refused = 0, live_undecided = 0;
  size_t attack_n = 0, attack_accepted = 0, attack_undecided = 0;
  json sets = json::array();
  for (const bool live : {true, false}) {
    for (const auto& d : live ? live_dirs : attack_dirs) {
      auto approaches = eval::ListApproaches(d);
      std::vector<fs::path> dirs;
      for (auto& a : approaches) dirs.push_back(a.dir);
      const auto in = eval::InSplit(dirs, d, part);
      size_t n = 0, errors = 0, undecided = 0, done = 0, total = 0;
      for (size_t i = 0; i < approaches.size(); ++i) total += in[i];
      std::map<std::string, size_t> decisions;
      for (size_t i = 0; i < approaches.size(); ++i) {
        if (!in[i]) continue;
        std::vector<cv::Mat> frames;
        for (const auto& f : approaches[i].frames) {
          try {
            frames.push_back(vision::LoadImage(f));
          } catch (const Error& e) {
            std::fprintf(stderr, "\nskipped %s: %s\n", f.c_str(), e.what());
          }
        }
        const auto res = terminal::ReplayApproach(*engine_ptr, frames, po, fps);
        ++decisions[res.decision.empty() ? "undecided" : res.decision];
        if (res.decision.empty()) {
          ++undecided;
        } else {
          ++n;
          errors += live ? res.decision != "open" : res.decision == "open";
        }
        std::fprintf(stderr, "\r  approaches %zu/%zu", ++done, total);
      }
      std::fprintf(stderr, "\n");
      (live ? live_n : attack_n) += n;
      (live ? live_refused : attack_accepted) += errors;
      (live ? live_undecided : attack_undecided) += undecided;
      sets.push_back({{"dir", d},
                      {"kind", live ? "live" : "attack"},
                      {"approaches", n + undecided},
                      {"decided", n},
                      {"undecided", undecided},
                      {live ? "bpcer" : "apcer", Rate(errors, n)},
                      {live ? "refused" : "accepted", errors},
                      {"decisions", decisions}});
    }
  }
  const double apcer = Rate(attack_accepted, attack_n), bpcer = Rate(live_refused, live_n);
  return {{"mode", "sequences"},
          {"split", split},
          {"fps", fps},
          {"threshold", po.liveness_threshold},
          {"fusion", vision::LivenessFusionName(po.liveness_fusion)},
          {"fuse_frames", po.fuse_frames},
          {"decision_budget_ms", po.decision_budget.count()},
          {"apcer", apcer},
          {"bpcer", bpcer},
          {"acer", (apcer + bpcer) / 2},
          {"live_approaches", live_n},
          {"attack_approaches", attack_n},
          {"live_undecided", live_undecided},
          {"attack_undecided", attack_undecided},
          {"sets", sets}};
}

void Print(const json& r) {
  const std::string mode = r["mode"];
  if (mode == "sequences") {
    std::printf(
        "Liveness per approach (terminal rule: %s fusion, threshold %.4g, %d frames "
        "before an early accept, budget %lld ms, replayed at %.0f fps; split %s)\n",
        r["fusion"].get<std::string>().c_str(), r["threshold"].get<double>(),
        r["fuse_frames"].get<int>(), r["decision_budget_ms"].get<long long>(),
        r["fps"].get<double>(), r["split"].get<std::string>().c_str());
    for (const auto& s : r["sets"]) {
      const bool live = s["kind"] == "live";
      std::printf("  %-6s %-40s %4zu approaches, %3zu undecided: %s %.2f%% (%zu)\n",
                  s["kind"].get<std::string>().c_str(), s["dir"].get<std::string>().c_str(),
                  s["approaches"].get<size_t>(), s["undecided"].get<size_t>(),
                  live ? "BPCER" : "APCER", 100 * s[live ? "bpcer" : "apcer"].get<double>(),
                  s[live ? "refused" : "accepted"].get<size_t>());
    }
    std::printf(
        "  APCER %.2f%%  BPCER %.2f%%  ACER %.2f%%  (%zu live, %zu attack approaches "
        "decided)\n",
        100 * r["apcer"].get<double>(), 100 * r["bpcer"].get<double>(),
        100 * r["acer"].get<double>(), r["live_approaches"].get<size_t>(),
        r["attack_approaches"].get<size_t>());
    return;
  }
  if (mode == "nuaa")
    std::printf("Liveness on NUAA (%zu live, %zu attack frames; %zu without a face)\n",
                r["live"].get<size_t>(), r["attacks"].get<size_t>(), r["no_face"].get<size_t>());
  else {
    std::printf(
        "Liveness per frame (split %s, score %s; %zu live and %zu attack frames with a face; "
        "no face in %zu live and %zu attack images, counted apart)\n",
        r["split"].get<std::string>().c_str(), r["cue"].get<std::string>().c_str(),
        r["live"].get<size_t>(), r["attacks"].get<size_t>(), r["live_no_face"].get<size_t>(),
        r["attack_no_face"].get<size_t>());
    if (r.contains("texture_weight"))
      std::printf("  texture: weight %.4g, center %.4g\n", r["texture_weight"].get<double>(),
                  r["texture_center"].get<double>());
    if (r.contains("texture_fit"))
      std::printf(
          "  texture cue fitted on this split: weight %.4g, center %.4g (%zu live, %zu "
          "attack)\n",
          r["texture_fit"]["weight"].get<double>(), r["texture_fit"]["center"].get<double>(),
          r["texture_fit"]["live"].get<size_t>(), r["texture_fit"]["attacks"].get<size_t>());
    if (r["timed_frames"].get<size_t>() > 0)
      std::printf(
          "  cost per frame (%zu frames scored now): network %.2f ms, texture cue %.3f ms\n",
          r["timed_frames"].get<size_t>(), r["net_ms"].get<double>(),
          r["texture_ms"].get<double>());
    for (const auto& s : r["sets"]) {
      const bool live = s["kind"] == "live";
      std::printf("  %-6s %-40s %4zu faces (%zu no face): %s %.2f%% (%zu)\n",
                  s["kind"].get<std::string>().c_str(), s["dir"].get<std::string>().c_str(),
                  s["faces"].get<size_t>(), s["no_face"].get<size_t>(), live ? "BPCER" : "APCER",
                  100 * s[live ? "bpcer" : "apcer"].get<double>(),
                  s[live ? "rejected" : "accepted"].get<size_t>());
    }
  }
  std::printf("  at threshold %.4g: APCER %.2f%%  BPCER %.2f%%  ACER %.2f%%\n",
              r["threshold"].get<double>(), 100 * r["apcer"].get<double>(),
              100 * r["bpcer"].get<double>(), 100 * r["acer"].get<double>());
  std::printf("  equal-error point: threshold %.4g  APCER %.2f%%  BPCER %.2f%%\n",
              r["eer_threshold"].get<double>(), 100 * r["eer_apcer"].get<double>(),
              100 * r["eer_bpcer"].get<double>());
  std::printf("  at APCER ≤ %.1f%%: threshold %.4g  APCER %.2f%%  BPCER %.2f%%\n",
              100 * r["target_apcer"].get<double>(), r["threshold_at_target_apcer"].get<double>(),
              100 * r["apcer_at_target"].get<double>(), 100 * r["bpcer_at_target"].get<double>());
  std::printf("  at BPCER ≤ %.1f%%: threshold %.4g  APCER %.2f%%  BPCER %.2f%%\n",
              100 * r["target_bpcer"].get<double>(), r["threshold_at_target_bpcer"].get<double>(),
              100 * r["apcer_at_target_bpcer"].get<double>(),
              100 * r["bpcer_at_target_bpcer"].get<double>());
  std::printf("  log-odds midpoint of the two: %.4g\n", r["midpoint_threshold"].get<double>());
}

void LivenessEval::Run() {
  const bool dirs = !live_dirs.empty() || !attack_dirs.empty();
  if (nuaa.empty() == !dirs)
    throw Error(ErrorCode::kInvalidArgument,
                "give either --data NUAA or --live-dir and --attack-dir (not both)");
  if (dirs && (live_dirs.empty() || attack_dirs.empty()))
    throw Error(ErrorCode::kInvalidArgument, "--live-dir and --attack-dir are both required");
  if (sequences && !dirs)
    throw Error(ErrorCode::kInvalidArgument, "--sequences needs --live-dir and --attack-dir");
  const json r = !dirs ? RunNuaa() : sequences ? RunSequences() : RunFrames();
  if (as_json)
    std::cout << r.dump() << "\n";
  else
    Print(r);
}

void InstallEvalLiveness(CLI::App& root) {
  auto* eval = Group(root, "eval", "evaluate accuracy on data sets");
  static LivenessEval f;
  auto* v = eval->add_subcommand(
      "liveness", "presentation attacks (R3.1.2.4): NUAA, any folders, or approaches");
  f.app = v;
  v->add_option("--data", f.nuaa, "NUAA directory with ClientRaw/ and ImposterRaw/");
  v->add_option("--live-list", f.live_list,
                "NUAA: only these live images (paths relative to ClientRaw/)");
  v->add_option("--attack-list", f.attack_list,
                "NUAA: only these attack images (relative to ImposterRaw/)");
  v->add_option("--live-dir", f.live_dirs, "folder of live faces (repeatable)");
  v->add_option("--attack-dir", f.attack_dirs, "folder of attacks (repeatable)");
  v->add_flag("--sequences", f.sequences,
              "each folder holding images is one approach, replayed through the terminal's "
              "AccessPipeline");
  v->add_option("--split", f.split, "all, tune or held-out (alternate identities, fixed)")
      ->check(CLI::IsMember({"all", "tune", "held-out"}));
  v->add_option("--target-apcer", f.target_apcer,
                "also report the operating point at this APCER (default 0.02)");
  v->add_option("--target-bpcer", f.target_bpcer,
                "also report the operating point at this BPCER (default 0.03)");
  v->add_option("--fps", f.fps, "--sequences: frames per second of the replay (default 10)");
  v->add_option("--fusion", f.fusion,
                "--sequences: logit_mean, mean, median or min (default: the pipeline's)");
  v->add_option("--pipeline", f.pipeline_json,
                "--sequences: pipeline options as in the terminal config (JSON object)");
  v->add_option("--context-scale", f.context_scale, "liveness crop = face box × this (2.0)");
  v->add_flag("--liveness-rgb", f.rgb, "feed the network RGB crops (the old input order)");
  v->add_flag("--no-live-flip", f.no_live_flip, "one crop, without the mirror image");
  v->add_option("--cue", f.cue, "frames: net (default), texture (the cue alone) or fused")
      ->check(CLI::IsMember({"net", "texture", "fused"}));
  v->add_option("--texture-weight", f.texture_weight,
                "texture cue's weight in log-odds (0 = off, the default)");
  v->add_option("--texture-center", f.texture_center, "texture cue's value at log-odds 0");
  v->add_flag("--fit-texture", f.fit_texture,
              "frames: report the texture cue's weight and center fitted on the split");
  v->add_flag("--json", f.as_json, "print one JSON object as the last line");
  v->add_option("--threads", f.threads, "worker threads (one engine each)");
  v->add_flag("--no-cache", f.no_cache, "do not reuse cached scores");
  f.engine.Add(v);
  v->callback([] { f.Run(); });
}

ANJU_COMMAND(InstallEvalLiveness);

}  // namespace
}  // namespace anju::cli
