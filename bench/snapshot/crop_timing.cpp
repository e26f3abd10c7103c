// Not part of the CMake build (a measurement kept with its figures in BENCHMARKS.md). Build
// from the checkout after `ninja -C build vision_test`:
//   g++ -std=c++20 -O2 -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DFMT_SHARED -I src -isystem
//   /usr/include/opencv4 bench/snapshot/crop_timing.cpp build/lib/libanju_vision.a
//   build/lib/libanju_core.a -lopencv_dnn -lopencv_imgproc -lopencv_imgcodecs -lopencv_core
//   -lspdlog -lfmt -lcrypto -o /tmp/crop_timing
// Per-crop cost of the snapshot paths, interleaved per image, medians (one thread).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <opencv2/core/utility.hpp>
#include "vision/engine.h"
#include "vision/image.h"
using namespace anju::vision;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point a) {
  return std::chrono::duration<double, std::milli>(Clock::now() - a).count();
}
double Med(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
int main(int argc, char** argv) {
  cv::setNumThreads(argc > 2 ? atoi(argv[2]) : 1);
  const int n = argc > 1 ? atoi(argv[1]) : 40;
  auto engine = FaceEngine::Open();
  std::vector<fs::path> files;
  for (auto& d : fs::directory_iterator("/work/shared/data/lfw/lfw")) {
    for (auto& e : fs::directory_iterator(d.path())) {
      files.push_back(e.path());
      break;
    }
  }
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), n));
  std::vector<double> det, det_q, crop, crop_q, emb_flip, emb_one, batch8;
  int crops = 0;
  std::vector<cv::Mat> aligned;
  for (auto& f : files) {
    cv::Mat img = LoadImage(f);
    auto t = Clock::now();
    auto a = engine->DetectLargest(img);
    det.push_back(Ms(t));
    if (!a) continue;
    t = Clock::now();
    auto b = engine->LocateInTightCrop(img);
    crop.push_back(Ms(t));
    crops += b.has_value();
    t = Clock::now();
    engine->AssessQuality(img, *a);
    det_q.push_back(Ms(t));
    t = Clock::now();
    engine->Embed(*a, true);
    emb_flip.push_back(Ms(t));
    t = Clock::now();
    engine->Embed(*a, false);
    emb_one.push_back(Ms(t));
    aligned.push_back(a->aligned);
    if (aligned.size() == 8) {
      t = Clock::now();
      engine->embedder().EmbedBatch(aligned, false);
      batch8.push_back(Ms(t) / 8);
      aligned.clear();
    }
  }
  std::printf("images %zu, located as tight crops %d\n", det.size(), crops);
  std::printf(
      "median ms: detect %.2f | tight-crop locate %.2f | quality %.2f | embed flip %.2f | embed "
      "single %.2f | embed batch of 8, per crop %.2f\n",
      Med(det), Med(crop), Med(det_q), Med(emb_flip), Med(emb_one), Med(batch8));
}
