// Not part of the CMake build (a measurement kept with its figures in BENCHMARKS.md). Build
// from the checkout after `ninja -C build vision_test`:
//   g++ -std=c++20 -O2 -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL -DFMT_SHARED -I src -isystem
//   /usr/include/opencv4 bench/snapshot/crop_lfw.cpp build/lib/libanju_vision.a
//   build/lib/libanju_core.a -lopencv_dnn -lopencv_imgproc -lopencv_imgcodecs -lopencv_core
//   -lspdlog -lfmt -lcrypto -o /tmp/crop_lfw
// LFW verification on the first folds of pairs.txt: detector path (DetectCentral, mirror
// averaged: the evaluator's default) against the snapshot path (LocateInTightCrop, else
// DetectCentral) with and without the mirror. Best-threshold accuracy per config.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <opencv2/core/utility.hpp>
#include <sstream>
#include <thread>
#include "core/paths.h"
#include "vision/engine.h"
#include "vision/image.h"
using namespace anju::vision;
int main(int argc, char** argv) {
  const int folds = argc > 1 ? atoi(argv[1]) : 1;
  const int threads = argc > 2 ? atoi(argv[2]) : 2;
  cv::setNumThreads(1);
  const std::string root = "/work/shared/data/lfw/";
  std::ifstream in(root + "pairs.txt");
  int nf, np;
  in >> nf >> np;
  struct Pair {
    std::string a, b;
    bool same;
  };
  std::vector<Pair> pairs;
  auto file = [&](const std::string& n, int k) {
    char b[16];
    std::snprintf(b, 16, "_%04d.jpg", k);
    return root + "lfw/" + n + "/" + n + b;
  };
  for (int f = 0; f < folds; ++f) {
    for (int i = 0; i < np; ++i) {
      std::string n;
      int x, y;
      in >> n >> x >> y;
      pairs.push_back({file(n, x), file(n, y), true});
    }
    for (int i = 0; i < np; ++i) {
      std::string n, m;
      int x, y;
      in >> n >> x >> m >> y;
      pairs.push_back({file(n, x), file(m, y), false});
    }
  }
  std::map<std::string, int> idx;
  std::vector<std::string> files;
  for (auto& p : pairs)
    for (auto* s : {&p.a, &p.b})
      if (idx.emplace(*s, int(files.size())).second) files.push_back(*s);
  const int C = 3;  // 0 detector+flip, 1 crop+flip, 2 crop no flip
  std::vector<std::array<std::vector<float>, C>> feat(files.size());
  std::atomic<int> next{0}, crops{0}, nofaces{0};
  auto models = ModelSet::Load(anju::DefaultModelDir());
  auto work = [&] {
    FaceEngine e(models);
    for (int i; (i = next++) < int(files.size());) {
      cv::Mat img = LoadImage(files[i]);
      auto d = e.DetectCentral(img);
      if (d)
        feat[i][0] = e.Embed(*d, true).values;
      else
        ++nofaces;
      auto c = e.LocateInTightCrop(img);
      if (c)
        ++crops;
      else
        c = d;
      if (c) {
        feat[i][1] = e.Embed(*c, true).values;
        feat[i][2] = e.Embed(*c, false).values;
      }
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(work);
  for (auto& t : ts) t.join();
  std::printf("pairs %zu, images %zu, located as tight crops %d, detector found nothing %d\n",
              pairs.size(), files.size(), crops.load(), nofaces.load());
  const char* names[C] = {"detector + mirror (default)", "tight crop + mirror",
                          "tight crop, no mirror"};
  for (int c = 0; c < C; ++c) {
    std::vector<std::pair<float, bool>> s;
    for (auto& p : pairs) {
      auto& x = feat[idx[p.a]][c];
      auto& y = feat[idx[p.b]][c];
      float v = -1;
      if (!x.empty() && !y.empty()) {
        v = 0;
        for (size_t k = 0; k < x.size(); ++k) v += x[k] * y[k];
      }
      s.push_back({v, p.same});
    }
    // best threshold accuracy; TAR at the lowest threshold above every impostor (FAR 0)
    int best = 0;
    float max_imp = -2;
    for (auto& [v, same] : s)
      if (!same) max_imp = std::max(max_imp, v);
    for (auto& [t, _] : s) {
      int ok = 0;
      for (auto& [v, same] : s) ok += (v >= t) == same;
      best = std::max(best, ok);
    }
    int tar = 0, gen = 0;
    for (auto& [v, same] : s)
      if (same) {
        ++gen;
        tar += v > max_imp;
      }
    std::printf("| %s | %.2f%% | %.2f%% |\n", names[c], 100.0 * best / s.size(), 100.0 * tar / gen);
  }
}
