// Latency of the face engine's stages on one core (full pipeline for one face
// in a 640×480 frame ≤ 40 ms median). The frame is a real NUAA live webcam frame from the
// evaluation data; benchmarks skip with an error when the data or models are absent.
//
//   build/bin/anju_bench --benchmark_filter=Vision --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one line; figures in BENCHMARKS.md)
#include <benchmark/benchmark.h>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/paths.h"
#include "vision/aligner.h"
#include "vision/engine.h"
#include "vision/image.h"
#include "vision/quality.h"

namespace {

using anju::vision::DetectedFace;
using anju::vision::FaceEngine;

// One engine, one 640×480 frame with one face, and that face, set up once.
struct Fixture {
  std::unique_ptr<FaceEngine> engine;
  cv::Mat frame;     // 640×480
  cv::Mat frame_hd;  // the same scene scaled to 1920×1080
  std::optional<DetectedFace> face;
  std::string error;
};

Fixture& Get() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    cv::setNumThreads(1);  // one core, as the target says
    try {
      fx->engine = FaceEngine::Open(anju::DefaultModelDir());
      std::filesystem::path data = anju::DefaultDataDir();
      const auto img = data / "nuaa" / "ClientRaw" / "0001" / "0001_00_00_01_127.jpg";
      if (data.empty() || !std::filesystem::exists(img)) {
        fx->error = "evaluation data (nuaa/ClientRaw) not found; set ANJU_DATA_DIR";
        return fx;
      }
      fx->frame = anju::vision::LoadImage(img);
      cv::resize(fx->frame, fx->frame_hd, cv::Size(1920, 1080), 0, 0, cv::INTER_LINEAR);
      fx->face = fx->engine->DetectLargest(fx->frame);
      if (!fx->face) fx->error = "no face found in " + img.string();
    } catch (const std::exception& e) {
      fx->error = e.what();
    }
    return fx;
  }();
  return *f;
}

#define REQUIRE_FIXTURE(state, fx)           \
  Fixture& fx = Get();                       \
  if (!fx.error.empty()) {                   \
    (state).SkipWithError(fx.error.c_str()); \
    return;                                  \
  }                                          \
  do {                                       \
  } while (false)

void BM_VisionDetect(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  auto& det = fx.engine->detector();
  for (auto _ : state) benchmark::DoNotOptimize(det.Detect(fx.frame));
}

void BM_VisionLandmarks(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  const bool refine = state.range(0) != 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(fx.engine->landmarker().Detect(fx.frame, fx.face->det.box, refine));
}

void BM_VisionAlign(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  for (auto _ : state) benchmark::DoNotOptimize(anju::vision::AlignFace(fx.frame, fx.face->points));
}

void BM_VisionEmbed(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  auto& emb = fx.engine->embedder();
  const auto saved = emb.options();
  emb.set_options({.flip_tta = state.range(0) != 0});
  for (auto _ : state) benchmark::DoNotOptimize(emb.Embed(fx.face->aligned));
  emb.set_options(saved);
}

void BM_VisionLiveness(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  auto& live = fx.engine->liveness();
  const auto saved = live.options();
  auto opts = saved;
  opts.flip_tta = state.range(0) != 0;
  live.set_options(opts);
  for (auto _ : state) benchmark::DoNotOptimize(fx.engine->Liveness(fx.frame, *fx.face));
  live.set_options(saved);
}

// The pose network (fr_pose.onnx, Hopenet-style on a 224×224 crop).
void BM_VisionPoseNetwork(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  anju::vision::PoseEstimator pose(*fx.engine->models());
  for (auto _ : state) benchmark::DoNotOptimize(pose.Estimate(fx.frame, fx.face->det.box));
}

void BM_VisionPoseFromLandmarks(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  for (auto _ : state)
    benchmark::DoNotOptimize(anju::vision::PoseFromLandmarks(fx.face->landmarks));
}

// Whole quality assessment with the engine's defaults: pose + eye-state network + the
// measures on the aligned crop.
void BM_VisionQuality(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  for (auto _ : state) benchmark::DoNotOptimize(fx.engine->AssessQuality(fx.frame, *fx.face));
}

// Detect (with landmarks and alignment, as FaceEngine::Detect does) + embed + liveness;
// flip_tta applies to both the embedder and the liveness check.
void BM_VisionFullPipeline(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  auto& emb = fx.engine->embedder();
  auto& live = fx.engine->liveness();
  const auto saved = emb.options();
  const auto saved_live = live.options();
  emb.set_options({.flip_tta = state.range(0) != 0});
  auto live_opts = saved_live;
  live_opts.flip_tta = state.range(0) != 0;
  live.set_options(live_opts);
  for (auto _ : state) {
    auto face = fx.engine->DetectLargest(fx.frame);
    if (!face) {
      state.SkipWithError("face lost");
      break;
    }
    benchmark::DoNotOptimize(fx.engine->Embed(*face));
    benchmark::DoNotOptimize(fx.engine->Liveness(fx.frame, *face));
  }
  emb.set_options(saved);
  live.set_options(saved_live);
}

// Detector alone on a 1920×1080 frame: one pass (tiles = 1) vs the 2×2 tiled mode.
void BM_VisionDetect1080p(benchmark::State& state) {
  REQUIRE_FIXTURE(state, fx);
  auto& det = fx.engine->detector();
  const auto saved = det.options();
  auto opts = saved;
  opts.tiles = static_cast<int>(state.range(0));
  det.set_options(opts);
  for (auto _ : state) benchmark::DoNotOptimize(det.Detect(fx.frame_hd));
  det.set_options(saved);
}

constexpr auto kMs = benchmark::kMillisecond;
BENCHMARK(BM_VisionDetect)->Unit(kMs);
BENCHMARK(BM_VisionLandmarks)->ArgName("refine")->Arg(0)->Arg(1)->Unit(kMs);
BENCHMARK(BM_VisionAlign)->Unit(kMs);
BENCHMARK(BM_VisionEmbed)->ArgName("flip_tta")->Arg(0)->Arg(1)->Unit(kMs);
BENCHMARK(BM_VisionLiveness)->ArgName("flip_tta")->Arg(0)->Arg(1)->Unit(kMs);
BENCHMARK(BM_VisionPoseNetwork)->Unit(kMs);
BENCHMARK(BM_VisionPoseFromLandmarks)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_VisionQuality)->Unit(kMs);
BENCHMARK(BM_VisionFullPipeline)->ArgName("flip_tta")->Arg(0)->Arg(1)->Unit(kMs);
BENCHMARK(BM_VisionDetect1080p)->ArgName("tiles")->Arg(1)->Arg(2)->Unit(kMs);

}  // namespace

// main() comes from benchmark::benchmark_main (bench/CMakeLists.txt), shared by every
// bench/*.cpp in anju_bench.
