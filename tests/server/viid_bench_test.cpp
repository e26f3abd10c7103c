// Snapshot recognition benchmark (targets in BENCHMARKS.md): throughput in snapshots/s with a
// 20,000-face gallery, and upload → recognised latency at a steady 10 snapshots/s. Runs only with
// ANJU_VIID_BENCH=1 (it takes minutes); prints a table, asserts nothing about time.
//
//   ANJU_VIID_BENCH=1 build/bin/viid_test --gtest_filter='ViidBench.*'
//   (ANJU_VIID_BENCH_GALLERY, _PROBES, _SECONDS, _WORKERS override the sizes; _TIGHT_CROP=0
//   and _FLIP=0|1 set ViidOptions::tight_crop and embed_flip, _INT8=1 searches an int8 index,
//   _CV_THREADS=N sets OpenCV's threads, for A/B runs)
//
// Two throughputs: "upload and recognise" (the endpoint called in a loop on the main thread
// while the workers run, as one server does both), and "worker node" (captures stored first,
// then drained by the workers alone: what a recognition worker of the distributed mode
// gives, from the first capture finished to the last, so opening the engines is left out).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <thread>

#include "core/error.h"
#include "crypto/envelope.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "protocol/viid.h"
#include "server/events/event_store.h"
#include "server/viid/viid_service.h"
#include "testing.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

int Env(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

std::vector<uint8_t> ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

std::string Body(const std::string& device, const std::string& id,
                 const std::vector<uint8_t>& jpeg) {
  viid::FaceList list;
  viid::FaceObject f;
  f.face_id = id;
  f.device_id = device;
  viid::SubImageInfo img;
  img.data = jpeg;
  f.images.push_back(img);
  list.faces.push_back(f);
  return viid::ToJson(list).dump();
}

// Calls FN for every capture SERVICE holds, a page at a time.
void ForEachCapture(ViidService& service, const std::function<void(const CaptureRecord&)>& fn) {
  CaptureQuery q;
  q.limit = 1000;
  for (int64_t off = 0;; off += q.limit) {
    q.offset = off;
    const CapturePage page = service.captures().List(q);
    for (const auto& c : page.items) fn(c);
    if (int64_t(page.items.size()) < q.limit) break;
  }
}

double Percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return double(v[std::min(v.size() - 1, size_t(p * double(v.size())))]);
}

TEST(ViidBench, ThroughputAndLatency) {
  if (std::getenv("ANJU_VIID_BENCH") == nullptr)
    GTEST_SKIP() << "set ANJU_VIID_BENCH=1 to run the snapshot recognition benchmark";
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  const int gallery = Env("ANJU_VIID_BENCH_GALLERY", 20000);
  const int probes = Env("ANJU_VIID_BENCH_PROBES", 200);
  const int seconds = Env("ANJU_VIID_BENCH_SECONDS", 30);
  const int workers = Env("ANJU_VIID_BENCH_WORKERS", 2);
  // OpenCV's own threads per network pass (0 = its default, every core): with as many
  // workers as cores, one each avoids oversubscribing them.
  if (const int cv_threads = Env("ANJU_VIID_BENCH_CV_THREADS", 0); cv_threads > 0)
    cv::setNumThreads(cv_threads);
  std::unique_ptr<vision::FaceEngine> engine;
  try {
    engine = vision::FaceEngine::Open();
  } catch (const Error& e) {
    GTEST_SKIP() << "face models not installed: " << e.what();
  }
  const std::string version = engine->model_version();

  // Gallery: real LFW people (first photo) as the enrolled part, random unit features as
  // the rest; probes are their other photos (half) and people not enrolled (half).
  std::vector<std::pair<std::string, std::vector<fs::path>>> people;
  for (const auto& d : fs::directory_iterator(lfw)) {
    std::vector<fs::path> photos;
    for (const auto& e : fs::directory_iterator(d.path())) photos.push_back(e.path());
    if (photos.size() >= 2) {
      std::sort(photos.begin(), photos.end());
      people.emplace_back(d.path().filename().string(), photos);
    }
  }
  std::sort(people.begin(), people.end());
  match::IndexOptions io;
  io.model_version = version;
  if (Env("ANJU_VIID_BENCH_INT8", 0) != 0) io.precision = match::Precision::kInt8;
  match::FeatureIndex index(io);
  std::vector<std::vector<uint8_t>> probe_jpegs;
  std::vector<std::string> expected;  // the enrolled person a probe shows, "" = not enrolled
  const int enrolled = probes / 2;
  const auto t_enrol = Clock::now();
  for (int i = 0; i < int(people.size()) && int(probe_jpegs.size()) < probes; ++i) {
    const auto& [name, photos] = people[size_t(i)];
    std::string who;
    if (int(probe_jpegs.size()) < enrolled) {
      const cv::Mat img = vision::DecodeImage(ReadBytes(photos[0]));
      const auto face = engine->DetectCentral(img);
      if (!face) continue;
      index.Add(name, engine->Embed(*face).values, version);
      who = name;
    }
    probe_jpegs.push_back(ReadBytes(photos[1]));
    expected.push_back(who);
  }
  const double enrol_s = std::chrono::duration<double>(Clock::now() - t_enrol).count();
  for (int i = int(index.size()); i < gallery; ++i)
    index.Add("R" + std::to_string(i), anju::testing::RandomUnitFeature(uint32_t(i)), version);
  std::printf("gallery %zu templates, %s (%d real LFW people, enrolled in %.1f s), %zu probes\n",
              index.size(), match::PrecisionName(io.precision), enrolled, enrol_s,
              probe_jpegs.size());
  engine.reset();

  const fs::path dir = anju::testing::TempDir("viid-bench");
  const auto key = crypto::DataKey::Generate();
  EventStore events(dir, key);
  std::atomic<bool> stopping{false};
  auto open = [&](int w, const fs::path& data_dir) {
    ViidDeps deps;
    deps.data_dir = data_dir;
    fs::create_directories(deps.data_dir);
    deps.events = &events;
    deps.index = [&] { return &index; };
    deps.model_version = version;
    deps.thresholds_file = match::DefaultThresholdsPath();
    deps.stopping = &stopping;
    ViidOptions o;
    o.workers = w;
    o.tail_interval_ms = 1000;
    o.tight_crop = Env("ANJU_VIID_BENCH_TIGHT_CROP", o.tight_crop ? 1 : 0) != 0;
    o.embed_flip = Env("ANJU_VIID_BENCH_FLIP", o.embed_flip ? 1 : 0) != 0;
    auto s = std::make_unique<ViidService>(deps, key, o);
    s->Start();
    return s;
  };
  auto make = [&](int w) {
    auto s = open(w, dir / ("w" + std::to_string(w) + "-" +
                            std::to_string(Clock::now().time_since_epoch().count())));
    // Warm-up: one snapshot opens each worker's engine.
    for (int i = 0; i < w; ++i)
      s->endpoint().Faces("CAM", Body("CAM", "warm" + std::to_string(i), probe_jpegs[0]));
    s->workers().WaitIdle(std::chrono::minutes(2));
    return s;
  };

  std::printf(
      "\n| workers | snapshots | seconds | snapshots/s | accepted right / wrong | enrolled "
      "called stranger | not enrolled called stranger | rejected/no face |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (int w = 1; w <= workers; ++w) {
    auto s = make(w);
    const ViidCounters before = s->Counters();
    const auto t0 = Clock::now();
    for (size_t i = 0; i < probe_jpegs.size(); ++i)
      s->endpoint().Faces("CAM", Body("CAM", "T" + std::to_string(i), probe_jpegs[i]));
    ASSERT_TRUE(s->workers().WaitIdle(std::chrono::minutes(10)));
    const double sec = std::chrono::duration<double>(Clock::now() - t0).count();
    const ViidCounters st = s->Counters();
    int right = 0, wrong = 0, missed = 0, strangers = 0;
    CaptureQuery all;
    all.limit = 1000;
    for (const auto& c : s->captures().List(all).items) {
      const std::string& fid = c.face_id;
      if (!fid.starts_with("T")) continue;
      const std::string& want = expected[std::stoul(fid.substr(1))];
      if (c.outcome == "accept")
        ++(c.person == want ? right : wrong);
      else if (c.outcome == "stranger")
        ++(want.empty() ? strangers : missed);
    }
    std::printf("| %d | %zu | %.1f | **%.1f** | %d / %d | %d | %d | %lld |\n", w,
                probe_jpegs.size(), sec, double(probe_jpegs.size()) / sec, right, wrong, missed,
                strangers,
                (long long)(st.rejected + st.no_face - before.rejected - before.no_face));
  }

  // Worker node: the captures are stored by a service without workers, then a service with W
  // workers on the same directory takes them up at its start (as after a restart) and drains
  // them; the rate runs from the first finished capture to the last.
  const int drain = Env("ANJU_VIID_BENCH_DRAIN", int(probe_jpegs.size()) * 2);
  std::printf(
      "\nworker node: %d stored captures drained by the workers alone\n"
      "| workers | captures | seconds | snapshots/s |\n|---|---|---|---|\n",
      drain);
  for (int w = 1; w <= workers; ++w) {
    const fs::path data_dir = dir / ("drain" + std::to_string(w));
    {
      auto uploader = open(0, data_dir);
      for (int i = 0; i < drain; ++i)
        uploader->endpoint().Faces("CAM", Body("CAM", "D" + std::to_string(i),
                                               probe_jpegs[size_t(i) % probe_jpegs.size()]));
    }
    auto s = open(w, data_dir);
    ASSERT_TRUE(s->workers().WaitIdle(std::chrono::minutes(10)));
    int64_t first = INT64_MAX, last = 0;
    int finished = 0;
    ForEachCapture(*s, [&](const CaptureRecord& c) {
      if (!c.face_id.starts_with("D") || c.recognised_ms <= 0) return;
      first = std::min(first, c.recognised_ms), last = std::max(last, c.recognised_ms);
      ++finished;
    });
    ASSERT_EQ(finished, drain);
    const double sec = double(last - first) / 1000.0;
    std::printf("| %d | %d | %.1f | **%.1f** |\n", w, drain, sec, double(drain - 1) / sec);
  }

  // Steady 10 snapshots/s: latency from the upload call to the recognised row.
  auto s = make(workers);
  const int n = seconds * 10;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    std::this_thread::sleep_until(t0 + std::chrono::milliseconds(100 * i));
    s->endpoint().Faces(
        "CAM", Body("CAM", "S" + std::to_string(i), probe_jpegs[size_t(i) % probe_jpegs.size()]));
  }
  ASSERT_TRUE(s->workers().WaitIdle(std::chrono::minutes(10)));
  std::vector<int64_t> lat;
  ForEachCapture(*s, [&](const CaptureRecord& c) {
    if (c.face_id.starts_with("S")) lat.push_back(c.recognised_ms - c.received_ms);
  });
  std::printf(
      "\nsteady 10 snapshots/s for %d s, %d workers, %zu-template gallery:\n"
      "| snapshots | p50 ms | p95 ms | max ms |\n|---|---|---|---|\n"
      "| %zu | %.0f | %.0f | %.0f |\n",
      seconds, workers, index.size(), lat.size(), Percentile(lat, 0.5), Percentile(lat, 0.95),
      Percentile(lat, 1.0));
  s.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// Night images (R3.1.4.1): does the illumination normalisation the recognition workers rely on
// (gamma + CLAHE on the luminance of dark frames and dark aligned crops, EngineOptions::
// dark_level) help? Extended Yale B, gallery = P00A+000E+00 per subject, rank-1 per lighting
// bucket (max(|azimuth|, |elevation|)), with dark_level 80 (default) and 0 (never normalise).
TEST(ViidBench, YaleBIlluminationNormalisation) {
  if (std::getenv("ANJU_VIID_BENCH") == nullptr)
    GTEST_SKIP() << "set ANJU_VIID_BENCH=1 to run the snapshot recognition benchmark";
  ANJU_REQUIRE_DATA(yale, "yaleb");
  struct Probe {
    std::string subject;
    fs::path file;
    std::string bucket;
  };
  std::vector<Probe> probes;
  std::map<std::string, fs::path> gallery;
  for (const auto& d : fs::directory_iterator(yale)) {
    if (!d.is_directory()) continue;
    for (const auto& e : fs::directory_iterator(d.path())) {
      const std::string name = e.path().filename().string();
      const std::string subject = d.path().filename().string();
      if (name.find("P00A+000E+00") != std::string::npos) {
        gallery[subject] = e.path();
        continue;
      }
      std::string bucket = "ambient";
      const size_t a = name.find("P00A");
      if (name.find("Ambient") == std::string::npos && a != std::string::npos) {
        const int az = std::abs(std::atoi(name.substr(a + 4, 4).c_str()));
        const int el = std::abs(std::atoi(name.substr(a + 9, 3).c_str()));
        const int m = std::max(az, el);
        bucket = m <= 25   ? "0-25"
                 : m <= 50 ? "26-50"
                 : m <= 70 ? "51-70"
                 : m <= 90 ? "71-90"
                           : ">90";
      }
      probes.push_back({subject, e.path(), bucket});
    }
  }
  std::printf(
      "\n| dark_level | 0-25 | 26-50 | 51-70 | 71-90 | >90 | ambient | overall |\n"
      "|---|---|---|---|---|---|---|---|\n");
  for (float level : {80.f, 0.f}) {
    vision::EngineOptions o;
    o.dark_level = level;
    std::unique_ptr<vision::FaceEngine> engine;
    try {
      engine = vision::FaceEngine::Open({}, o);
    } catch (const Error& e) {
      GTEST_SKIP() << "face models not installed: " << e.what();
    }
    auto embed = [&](const fs::path& f) -> std::vector<float> {
      const cv::Mat img = vision::DecodeImage(ReadBytes(f));
      const auto face = engine->DetectLargest(img);
      if (!face) return {};
      return engine->Embed(*face).values;
    };
    std::map<std::string, std::vector<float>> g;
    for (const auto& [subject, file] : gallery) g[subject] = embed(file);
    std::map<std::string, std::pair<int, int>> hits;  // bucket → (right, total)
    for (const auto& p : probes) {
      const auto f = embed(p.file);
      std::string best;
      float best_score = -2;
      for (const auto& [subject, gf] : g) {
        if (f.empty() || gf.size() != f.size()) continue;
        float dot = 0;
        for (size_t i = 0; i < f.size(); ++i) dot += f[i] * gf[i];
        if (dot > best_score) best_score = dot, best = subject;
      }
      auto& h = hits[p.bucket];
      h.second++;
      h.first += best == p.subject;
      hits["overall"].second++;
      hits["overall"].first += best == p.subject;
    }
    std::printf("| %.0f |", level);
    for (const char* b : {"0-25", "26-50", "51-70", "71-90", ">90", "ambient", "overall"}) {
      const auto& h = hits[b];
      std::printf(" %.2f%% (%d) |", h.second ? 100.0 * h.first / h.second : 0.0, h.second);
    }
    std::printf("\n");
  }
}

}  // namespace
}  // namespace anju::server
