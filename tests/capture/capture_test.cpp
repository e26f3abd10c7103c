// The capture pipeline on real faces (LFW) and the real detector: tracks, region of
// interest, best-frame choice, quality measures, config errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <functional>
#include <set>

#include "capture/capturer.h"
#include "capture/config.h"
#include "capture/quality.h"
#include "core/error.h"
#include "testing.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::capture {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Two different people's LFW images (the first images of the first two folders).
std::vector<cv::Mat> TwoPeople(const fs::path& lfw) {
  fs::path root = fs::is_directory(lfw / "lfw") ? lfw / "lfw" : lfw;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  std::vector<cv::Mat> out;
  for (const auto& d : dirs) {
    std::vector<fs::path> files;
    for (const auto& f : fs::directory_iterator(d)) files.push_back(f.path());
    std::sort(files.begin(), files.end());
    out.push_back(vision::LoadImage(files.at(0)));
    if (out.size() == 2) break;
  }
  return out;
}

cv::Mat Scene(int w = 1280, int h = 720) {
  cv::Mat bg(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      auto v = static_cast<uchar>(70 + y / 8 + ((x / 40 + y / 40) % 2) * 15);
      bg.at<cv::Vec3b>(y, x) = {v, static_cast<uchar>(v + 8), static_cast<uchar>(v + 4)};
    }
  return bg;
}

void Paste(cv::Mat& frame, const cv::Mat& face, cv::Point at, double scale = 1.0) {
  cv::Mat f;
  cv::resize(face, f, {}, scale, scale, cv::INTER_AREA);
  f.copyTo(frame(cv::Rect(at, f.size())));
}

video::Frame MakeFrame(cv::Mat image, uint64_t seq) {
  video::Frame f;
  f.image = std::move(image);
  f.seq = seq;
  // 10 ms apart whatever the processing takes (the interval test counts on it).
  static const video::Clock::time_point base = video::Clock::now() - std::chrono::seconds(10);
  f.captured = base + std::chrono::milliseconds(10 * int64_t(seq));
  return f;
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    try {
      vision::EngineOptions o;
      o.fallbacks = false;
      engine_ = vision::FaceEngine::Open({}, o);
    } catch (const Error& e) {
      GTEST_SKIP() << "models not installed: " << e.what();
    }
  }
  std::unique_ptr<vision::FaceEngine> engine_;
};

TEST_F(CaptureTest, TrackerKeepsIdsAcrossFramesAndSplitsTwoPeople) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto people = TwoPeople(lfw);
  CaptureOptions o;
  o.min_face = 40;
  Capturer capturer(*engine_, o, "door");
  std::vector<Capture> caps;
  // A walks left → right for 12 frames; B stands on the right from frame 4 to 14.
  for (int i = 0; i < 16; ++i) {
    cv::Mat frame = Scene();
    if (i < 12) Paste(frame, people[0], {40 + 30 * i, 200});
    if (i >= 4 && i < 15) Paste(frame, people[1], {950, 150});
    for (auto& c : capturer.Process(MakeFrame(frame, uint64_t(i)))) caps.push_back(std::move(c));
  }
  for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
  for (const auto& c : caps)
    std::printf("    capture track %d frame %llu box %.0f,%.0f %.0fx%.0f score %.2f\n", c.track_id,
                static_cast<unsigned long long>(c.seq), c.box.x, c.box.y, c.box.width, c.box.height,
                c.quality.score);
  ASSERT_EQ(caps.size(), 2u) << "one capture per person";
  EXPECT_NE(caps[0].track_id, caps[1].track_id);
  std::set<int> ids;
  for (const auto& c : caps) {
    ids.insert(c.track_id);
    EXPECT_EQ(c.camera_id, "door");
    EXPECT_EQ(c.rank, 0);
    EXPECT_FALSE(c.face_jpeg.empty());
    EXPECT_FALSE(vision::DecodeImage(c.face_jpeg).empty());
    EXPECT_LE(c.appear_time, c.shot_time);
    EXPECT_LE(c.shot_time, c.disappear_time);
    const bool walker = c.box.x < 900;
    // The walker's capture is from one of its frames and at its position then.
    if (walker) {
      EXPECT_LT(c.seq, 12u);
      EXPECT_NEAR(c.box.x + c.box.width / 2, 40 + 30 * double(c.seq) + 125, 40);
    } else {
      EXPECT_GE(c.seq, 4u);
      EXPECT_NEAR(c.box.x + c.box.width / 2, 950 + 125, 40);
    }
  }
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(capturer.stats().tracks, 2u);
  EXPECT_EQ(capturer.stats().frames, 16u);
}

TEST_F(CaptureTest, RegionOfInterestExcludesFacesOutside) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto people = TwoPeople(lfw);
  CaptureOptions o;
  // The left half of the frame, as fractions.
  o.roi = Roi({{0, 0}, {0.5f, 0}, {0.5f, 1}, {0, 1}});
  Capturer capturer(*engine_, o);
  std::vector<Capture> caps;
  for (int i = 0; i < 6; ++i) {
    cv::Mat frame = Scene();
    Paste(frame, people[0], {100, 200});  // inside
    Paste(frame, people[1], {900, 200});  // outside
    for (auto& c : capturer.Process(MakeFrame(frame, uint64_t(i)))) caps.push_back(std::move(c));
  }
  for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
  ASSERT_EQ(caps.size(), 1u);
  EXPECT_LT(caps[0].box.x + caps[0].box.width / 2, 640);
  EXPECT_GE(capturer.stats().faces, 12u);      // both were detected …
  EXPECT_EQ(capturer.stats().faces_kept, 6u);  // … one was kept

  // Pixel polygons work the same way; a polygon needs three points.
  EXPECT_TRUE(Roi({{0, 0}, {640, 0}, {640, 720}}).Contains(cv::Point2f(600, 100), {1280, 720}));
  EXPECT_FALSE(Roi({{0, 0}, {640, 0}, {640, 720}}).Contains(cv::Point2f(100, 600), {1280, 720}));
  EXPECT_EQ(testing::CodeOf([] { Roi({{0, 0}, {1, 1}}); }), ErrorCode::kInvalidArgument);
}

TEST_F(CaptureTest, BestFramePicksTheSharperLargerFace) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto people = TwoPeople(lfw);
  Capturer capturer(*engine_, CaptureOptions{});
  std::vector<Capture> caps;
  constexpr int kSharp = 5;
  for (int i = 0; i < 9; ++i) {
    cv::Mat frame = Scene();
    cv::Mat face = people[0].clone();
    double scale = 0.8;
    if (i == kSharp) {
      scale = 1.0;  // larger and sharp
    } else {
      cv::GaussianBlur(face, face, cv::Size(0, 0), 2.5);  // out of focus / motion
    }
    Paste(frame, face, {300 + 8 * i, 200}, scale);
    for (auto& c : capturer.Process(MakeFrame(frame, uint64_t(i)))) caps.push_back(std::move(c));
  }
  for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
  ASSERT_EQ(caps.size(), 1u);
  EXPECT_EQ(caps[0].seq, uint64_t(kSharp));

  // The measures behind it, on one face: blur lowers sharpness and the score.
  cv::Mat sharp = Scene(), blurred = Scene();
  Paste(sharp, people[0], {300, 200});
  cv::Mat b;
  cv::GaussianBlur(people[0], b, cv::Size(0, 0), 2.5);
  Paste(blurred, b, {300, 200});
  auto fs = engine_->Detect(sharp), fb = engine_->Detect(blurred);
  ASSERT_EQ(fs.size(), 1u);
  ASSERT_EQ(fb.size(), 1u);
  const FaceQuality qs = MeasureFace(sharp, fs[0]), qb = MeasureFace(blurred, fb[0]);
  EXPECT_GT(qs.sharpness, 2 * qb.sharpness);
  EXPECT_GT(qs.score, qb.score);
  EXPECT_LT(std::abs(qs.yaw), 25.f);  // an LFW face is roughly frontal
}

TEST_F(CaptureTest, IntervalAndMaxPerTrackAndExtraBestFrames) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto people = TwoPeople(lfw);
  CaptureOptions o;
  o.interval_ms = 50;   // frames are 10 ms apart: one capture every 5 frames …
  o.max_per_track = 3;  // … but at most three
  o.extra_best = 1;
  o.full_frame = true;
  Capturer capturer(*engine_, o);
  std::vector<Capture> caps;
  for (int i = 0; i < 30; ++i) {
    cv::Mat frame = Scene();
    Paste(frame, people[0], {300 + 2 * i, 200});
    for (auto& c : capturer.Process(MakeFrame(frame, uint64_t(i)))) caps.push_back(std::move(c));
  }
  for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
  int best = 0, extra = 0;
  for (const auto& c : caps) {
    (c.rank == 0 ? best : extra)++;
    EXPECT_FALSE(c.frame_jpeg.empty());
    EXPECT_EQ(c.frame_size, cv::Size(1280, 720));
  }
  EXPECT_EQ(best, 3);
  EXPECT_EQ(extra, 3);
  EXPECT_EQ(capturer.stats().captures, 3u);
}

TEST(CaptureConfigTest, ErrorsNameTheKey) {
  const json good = {{"server_url", "https://127.0.0.1:8640"},
                     {"device_id", "34020000001190000001"},
                     {"password", "secret"},
                     {"buffer_dir", "/tmp/x"},
                     {"cameras",
                      {{{"id", "gate"},
                        {"source", "rtsp://10.0.0.5/stream1"},
                        {"roi", {{0, 0}, {1, 0}, {1, 1}}},
                        {"jpeg_quality", 85}}}}};
  const CaptureConfig c = CaptureConfig::FromJson(good);
  ASSERT_EQ(c.cameras.size(), 1u);
  EXPECT_EQ(c.cameras[0].device_id, "34020000001190000001");
  EXPECT_EQ(c.cameras[0].options.jpeg_quality, 85);
  EXPECT_TRUE(c.cameras[0].options.roi.normalized());

  auto refused = [&](const std::function<void(json&)>& edit, const std::string& key) {
    json j = good;
    edit(j);
    try {
      CaptureConfig::FromJson(j);
      ADD_FAILURE() << "accepted: " << j.dump();
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos)
          << "message should name " << key << ": " << e.what();
      std::printf("    refused: %s\n", e.what());
    }
  };
  refused([](json& j) { j["cameras"][0]["jpeg_quality"] = 101; }, "cameras[0]");
  refused([](json& j) { j["cameras"][0]["jpeg_qualty"] = 80; }, "cameras[0].jpeg_qualty");
  refused([](json& j) { j["cameras"][0]["source"] = "ftp://x"; }, "cameras[0].source");
  refused([](json& j) { j["cameras"][0]["roi"] = {{0, 0}, {1, 1}}; }, "cameras[0].roi");
  refused([](json& j) { j["cameras"][0]["min_face"] = "big"; }, "cameras[0].min_face");
  refused([](json& j) { j["device_id"] = "cam-1"; }, "device_id");
  refused([](json& j) { j.erase("password"); }, "password");
  refused([](json& j) { j["server_url"] = "127.0.0.1:8640"; }, "server_url");
  refused([](json& j) { j["cameras"] = json::array(); }, "cameras");
  refused([](json& j) { j.erase("buffer_dir"); }, "buffer_dir");
  refused([](json& j) { j["cameras"].push_back(j["cameras"][0]); }, "duplicate camera id");
  refused(
      [](json& j) {
        j["server_url"] = "http://127.0.0.1:8640";
        j["server_ca_file"] = "ca.pem";
      },
      "server_ca_file");
  // Live preview and clip keys (both off by default).
  EXPECT_EQ(c.cameras[0].preview.interval_ms, 0);
  EXPECT_EQ(c.cameras[0].options.clip_fps, 0);
  {
    json j = good;
    j["cameras"][0]["preview_interval_ms"] = 1000;
    j["cameras"][0]["preview_width"] = 480;
    j["cameras"][0]["clip_fps"] = 5;
    j["cameras"][0]["clip_before_ms"] = 1500;
    const CaptureConfig k = CaptureConfig::FromJson(j);
    EXPECT_EQ(k.cameras[0].preview.interval_ms, 1000);
    EXPECT_EQ(k.cameras[0].preview.width, 480);
    EXPECT_EQ(k.cameras[0].options.clip_fps, 5);
    EXPECT_EQ(k.cameras[0].options.clip_before_ms, 1500);
  }
  refused([](json& j) { j["cameras"][0]["preview_interval_ms"] = 10; },
          "cameras[0].preview_interval_ms");
  refused([](json& j) { j["cameras"][0]["preview_width"] = 10; }, "cameras[0].preview_width");
  refused([](json& j) { j["cameras"][0]["clip_fps"] = 60; }, "clip_fps");
  refused([](json& j) { j["cameras"][0]["clip_after_ms"] = -1; }, "clip_after_ms");

  auto dir = testing::TempDir("capture-config");
  EXPECT_EQ(testing::CodeOf([&] { CaptureConfig::Load(dir / "missing.json"); }),
            ErrorCode::kNotFound);
  std::ofstream(dir / "bad.json") << "{ not json";
  EXPECT_EQ(testing::CodeOf([&] { CaptureConfig::Load(dir / "bad.json"); }),
            ErrorCode::kInvalidArgument);
  std::ofstream(dir / "rel.json") << json(good).dump();
  {
    json j = good;
    j["buffer_dir"] = "buffer";
    std::ofstream(dir / "rel.json") << j.dump();
  }
  EXPECT_EQ(CaptureConfig::Load(dir / "rel.json").buffer_dir, dir / "buffer");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::capture
