// anju bench terminal — the real AccessPipeline on images replayed as camera frames,
// with a logging door: latency frame → door command, throughput, idle cost.
// anju bench mask — detection and false-mask rates of the mask test (R2.1.5.1).
#if __has_include("terminal/access_pipeline.h")
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include "command.h"
#include "core/error.h"
#include "door/logging_controller.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "terminal/access_pipeline.h"
#include "terminal/mask.h"
#include "vision/image.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool IsImage(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp";
}

std::vector<fs::path> ImagesIn(const fs::path& dir) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && IsImage(e.path())) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

struct TerminalBench {
  EngineFlags engine_flags;
  size_t gallery = 2000;
  std::string frames_dir, level = "normal", thresholds_file, mask_policy = "stricter";
  int threads = 2, frames_per_image = 3, blank_frames = 8, idle_frames = 100, max_people = 0;
  int fuse_frames = 2, budget_ms = 600;
  bool as_json = false;

  void Run() {
    if (!fs::is_directory(frames_dir))
      throw Error(ErrorCode::kNotFound, "--frames: not a directory: " + frames_dir);
    cv::setNumThreads(threads);
    spdlog::set_level(spdlog::level::warn);  // one line per door command is noise here
    auto engine = engine_flags.Open();
    const std::string ver = engine->model_version();
    const fs::path tpath =
        thresholds_file.empty() ? match::DefaultThresholdsPath() : fs::path(thresholds_file);
    if (tpath.empty()) throw Error(ErrorCode::kNotFound, "no thresholds file (--thresholds)");
    auto thresholds = match::Thresholds::Load(tpath, ver);
    match::FeatureIndex index({.model_version = ver, .fusion = thresholds.fusion});

    // People: DIR/<person>/<images>, at least two images each.
    std::vector<std::pair<std::string, std::vector<fs::path>>> people;
    for (const auto& e : fs::directory_iterator(frames_dir)) {
      if (!e.is_directory()) continue;
      auto imgs = ImagesIn(e.path());
      if (imgs.size() >= 2) people.push_back({e.path().filename().string(), imgs});
    }
    std::sort(people.begin(), people.end());
    if (max_people > 0 && people.size() > size_t(max_people)) people.resize(size_t(max_people));
    if (people.empty())
      throw Error(ErrorCode::kInvalidArgument, "no person with ≥ 2 images in " + frames_dir);

    // Enrol the first image of each person.
    std::map<std::string, bool> enrolled;
    const auto t_enrol = Clock::now();
    for (const auto& [name, imgs] : people) {
      auto face = engine->DetectLargest(vision::LoadImage(imgs[0]));
      if (!face) continue;
      index.Add(name, engine->Embed(*face).values, ver);
      enrolled[name] = true;
    }
    const double enrol_s = std::chrono::duration<double>(Clock::now() - t_enrol).count();
    // Pad with distractors: random unit vectors (not faces: they are far from every
    // probe, so they cost search time but hardly ever compete for the top rank).
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    std::vector<float> v(index.options().dim);
    size_t distractors = 0;
    while (index.persons() < gallery) {
      double n = 0;
      for (auto& x : v) x = g(rng), n += double(x) * x;
      for (auto& x : v) x = float(x / std::sqrt(n));
      index.Add("D" + std::to_string(++distractors), v, ver);
    }

    terminal::PipelineOptions o;
    o.terminal_id = "bench";
    o.level = match::ParseLevel(level);
    o.search_threads = threads;
    o.fuse_frames = fuse_frames;
    o.decision_budget = std::chrono::milliseconds(budget_ms);
    o.mask_policy = terminal::ParseMaskPolicy(mask_policy);
    // Approaches follow each other within milliseconds here, so the door window and the
    // repeat suppression (both seconds of real time) would merge them: both off.
    o.tailgating_grace = std::chrono::milliseconds(0);
    o.repeat_suppression = std::chrono::milliseconds(0);
    door::LoggingDoorController door(1);
    std::string expected;  // the person being replayed
    std::map<std::string, uint64_t> outcomes;
    uint64_t admitted = 0, wrong_person = 0, refused = 0, approaches = 0;
    terminal::AccessPipeline pipeline(
        o, *engine, index, thresholds,
        [&](const std::string& p) -> std::optional<terminal::PersonRules> {
          if (!enrolled.count(p)) return std::nullopt;
          terminal::PersonRules r;
          r.person = p;
          return r;
        },
        door,
        [&](std::string_view kind, const json& payload, std::vector<uint8_t>) {
          if (kind != "access") return;
          const std::string d = payload["decision"];
          ++outcomes[d];
          if (d == "open") {
            ++admitted;
            if (payload["person"] != expected) ++wrong_person;
          } else {
            ++refused;
          }
        });

    uint64_t seq = 0;
    auto play = [&](const cv::Mat& img, int n) {
      for (int i = 0; i < n; ++i) pipeline.OnFrame({img, Clock::now(), seq++});
    };
    const auto t_replay = Clock::now();
    cv::Mat first = vision::LoadImage(people[0].second[1]);
    play(cv::Mat(first.size(), CV_8UC3, cv::Scalar(90, 100, 110)), idle_frames);
    for (const auto& [name, imgs] : people) {
      expected = enrolled.count(name) ? name : "";
      for (size_t i = 1; i < imgs.size(); ++i) {
        cv::Mat img = vision::LoadImage(imgs[i]);
        cv::Mat blank(img.size(), CV_8UC3, cv::Scalar(90, 100, 110));
        play(img, frames_per_image);
        play(blank, blank_frames);
        ++approaches;
      }
    }
    pipeline.Flush();
    const double replay_s = std::chrono::duration<double>(Clock::now() - t_replay).count();
    const auto s = pipeline.stats();

    json out = {{"gallery", index.persons()},
                {"enrolled", enrolled.size()},
                {"distractors", distractors},
                {"distractor_kind", "random unit vectors"},
                {"people", people.size()},
                {"approaches", approaches},
                {"frames", s.frames},
                {"threads", threads},
                {"level", level},
                {"fuse_frames", fuse_frames},
                {"frames_per_image", frames_per_image},
                {"admitted", admitted},
                {"wrong_person", wrong_person},
                {"refused", refused},
                {"undecided", s.undecided},
                {"outcomes", outcomes},
                {"p50_ms", s.latency_p50_ms},
                {"p95_ms", s.latency_p95_ms},
                {"max_ms", s.latency_max_ms},
                {"approach_p50_ms", s.approach_p50_ms},
                {"approach_p95_ms", s.approach_p95_ms},
                {"fps", s.fps},
                {"busy_ms_per_frame", s.busy_ms_per_frame},
                {"idle_ms_per_frame", s.idle_ms_per_frame},
                {"idle_frames", s.idle},
                {"stage_ms", s.stage_ms},
                {"enrol_s", enrol_s},
                {"replay_s", replay_s}};
    std::printf(
        "gallery %zu (%zu enrolled people + %zu random-vector distractors), %d threads, "
        "level %s\n",
        index.persons(), enrolled.size(), distractors, threads, level.c_str());
    std::printf("each approach: one image × %d frames, then %d empty frames\n", frames_per_image,
                blank_frames);
    std::printf("  %-32s %10llu\n", "approaches", (unsigned long long)approaches);
    std::printf("  %-32s %10llu\n", "admitted", (unsigned long long)admitted);
    std::printf("  %-32s %10llu\n", "  of them the wrong person", (unsigned long long)wrong_person);
    std::printf("  %-32s %10llu\n", "refused", (unsigned long long)refused);
    for (const auto& [k, n] : outcomes)
      std::printf("    %-30s %10llu\n", k.c_str(), (unsigned long long)n);
    std::printf("  %-32s %10llu\n", "no decision (no usable face)",
                (unsigned long long)s.undecided);
    std::printf("  %-32s %10.1f / %.1f / %.1f\n", "frame → door ms p50 / p95 / max",
                s.latency_p50_ms, s.latency_p95_ms, s.latency_max_ms);
    std::printf("  %-32s %10.1f / %.1f\n", "first frame → door ms p50 / p95", s.approach_p50_ms,
                s.approach_p95_ms);
    std::printf("  %-32s %10.1f (%.1f ms per frame)\n", "fps with a face present", s.fps,
                s.busy_ms_per_frame);
    std::printf("  %-32s %10.3f ms per idle frame\n", "idle (motion gate)", s.idle_ms_per_frame);
    std::printf("  %-32s", "ms per call");
    for (const auto& [stage, ms] : s.stage_ms) std::printf(" %s %.1f", stage.c_str(), ms);
    std::printf("\n");
    std::fflush(stdout);
    if (as_json) std::cout << out.dump() << "\n";
  }
};

// Mask test rates on labelled photos: masked/ (all masked), mfr2 (labels file), and any
// directories of bare faces (e.g. LFW people, asian/people).
struct MaskBench {
  EngineFlags engine_flags;
  std::string masked, mfr2;
  std::vector<std::string> bare;
  int max_bare = 1000;
  float threshold = 0.5f;
  bool as_json = false;

  void Run() {
    auto engine = engine_flags.Open();
    struct Set {
      std::string name;
      bool is_masked;
      std::vector<float> scores;
      int no_face = 0;
    };
    std::vector<Set> sets;
    auto score_file = [&](Set& set, const fs::path& f) {
      try {
        auto face = engine->DetectLargest(vision::LoadImage(f));
        if (!face) return void(++set.no_face);
        set.scores.push_back(terminal::MaskScore(face->aligned));
      } catch (const Error&) {
        ++set.no_face;
      }
    };
    if (!masked.empty()) {
      Set s{"masked/", true, {}, 0};
      for (const auto& f : ImagesIn(masked)) score_file(s, f);
      sets.push_back(std::move(s));
    }
    if (!mfr2.empty()) {
      Set m{"mfr2 masked", true, {}, 0}, b{"mfr2 no-mask", false, {}, 0};
      std::ifstream labels(fs::path(mfr2) / "mfr2_labels.txt");
      if (!labels) throw Error(ErrorCode::kNotFound, "mfr2_labels.txt not found in " + mfr2);
      std::string line;
      while (std::getline(labels, line)) {
        std::stringstream ss(line);
        std::string name, num, type;
        std::getline(ss, name, ',');
        std::getline(ss, num, ',');
        std::getline(ss, type);
        type.erase(0, type.find_first_not_of(' '));
        if (name.empty() || num.empty()) continue;
        char file[256];
        std::snprintf(file, sizeof file, "%s/%s_%04d.png", name.c_str(), name.c_str(),
                      std::stoi(num));
        score_file(type == "no-mask" ? b : m, fs::path(mfr2) / file);
      }
      sets.push_back(std::move(m));
      sets.push_back(std::move(b));
    }
    for (const auto& dir : bare) {
      Set s{dir, false, {}, 0};
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && IsImage(e.path())) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      // Spread over the set (every k-th file), not the first people only.
      const size_t step = std::max<size_t>(1, files.size() / size_t(std::max(1, max_bare)));
      for (size_t i = 0; i < files.size() && s.scores.size() + size_t(s.no_face) < size_t(max_bare);
           i += step)
        score_file(s, files[i]);
      sets.push_back(std::move(s));
    }
    json out = {{"threshold", threshold}, {"sets", json::array()}};
    std::printf("%-40s %6s %8s %10s\n", "set", "faces", "no face", "called masked");
    for (const auto& s : sets) {
      const size_t hit =
          std::count_if(s.scores.begin(), s.scores.end(), [&](float x) { return x >= threshold; });
      const double rate = s.scores.empty() ? 0 : double(hit) / double(s.scores.size());
      std::printf("%-40s %6zu %8d %9.1f%% (%s)\n", s.name.c_str(), s.scores.size(), s.no_face,
                  100 * rate, s.is_masked ? "detection rate" : "false-mask rate");
      out["sets"].push_back({{"name", s.name},
                             {"masked", s.is_masked},
                             {"faces", s.scores.size()},
                             {"no_face", s.no_face},
                             {"called_masked", hit},
                             {"rate", rate}});
    }
    if (as_json) std::cout << out.dump() << "\n";
  }
};

void InstallTerminalBench(CLI::App& root) {
  auto* bench = Group(root, "bench", "benchmarks");
  {
    static TerminalBench b;
    auto* cmd = bench->add_subcommand(
        "terminal",
        "the terminal pipeline on DIR/<person>/<images> replayed as frames: latency frame → "
        "door command, fps, admitted / refused");
    cmd->add_option("--gallery", b.gallery, "gallery size, padded with random-vector distractors")
        ->required();
    cmd->add_option("--frames", b.frames_dir,
                    "DIR/<person>/<images>: first image enrolled, the others replayed")
        ->required();
    cmd->add_option("--threads", b.threads, "OpenCV and search threads (default 2)");
    cmd->add_option("--frames-per-image", b.frames_per_image, "frames per replayed image (3)");
    cmd->add_option("--blank-frames", b.blank_frames, "empty frames between approaches (8)");
    cmd->add_option("--idle-frames", b.idle_frames, "empty frames before the first approach (100)");
    cmd->add_option("--max-people", b.max_people, "use only the first N people (0 = all)");
    cmd->add_option("--level", b.level, "security level: high, normal, low (normal)");
    cmd->add_option("--fuse-frames", b.fuse_frames, "good frames fused before an early accept (2)");
    cmd->add_option("--budget-ms", b.budget_ms, "decision budget per track (600)");
    cmd->add_option("--mask-policy", b.mask_policy, "ignore, stricter, ask_remove (stricter)");
    cmd->add_option("--thresholds", b.thresholds_file, "thresholds file (default: shipped)");
    cmd->add_flag("--json", b.as_json, "print one JSON object as the last line");
    b.engine_flags.Add(cmd);
    cmd->callback([] { b.Run(); });
  }
  {
    static MaskBench b;
    auto* cmd = bench->add_subcommand(
        "mask", "mask test: detection rate on masked photos, false-mask rate on bare faces");
    cmd->add_option("--masked", b.masked, "directory of masked photos (shared/data/masked)");
    cmd->add_option("--mfr2", b.mfr2, "MFR2 directory (mfr2_labels.txt says which are masked)");
    cmd->add_option("--bare", b.bare, "directories of bare faces (searched recursively)");
    cmd->add_option("--max-bare", b.max_bare, "at most this many images per --bare directory");
    cmd->add_option("--threshold", b.threshold, "mask score threshold (0.5)");
    cmd->add_flag("--json", b.as_json, "print one JSON object as the last line");
    b.engine_flags.Add(cmd);
    cmd->callback([] { b.Run(); });
  }
}

}  // namespace

ANJU_COMMAND(InstallTerminalBench);

}  // namespace anju::cli
#endif
