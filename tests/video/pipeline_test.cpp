// The pieces together on real faces and the real detector: frames written to a
// directory, played by a FrameSource, gated by motion, detected by the FaceEngine and
// tracked. One person walks across, a second one appears: two tracks, stable ids.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "testing.h"
#include "video/face_tracker.h"
#include "video/frame_source.h"
#include "video/motion_gate.h"
#include "video_test_support.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::video {
namespace {

namespace fs = std::filesystem;

TEST(VideoPipelineTest, TwoPeopleOnRealFramesGiveTwoStableTracks) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  std::unique_ptr<vision::FaceEngine> engine;
  try {
    engine = vision::FaceEngine::Open();
  } catch (const Error& e) {
    GTEST_SKIP() << "models not installed: " << e.what();
  }
  auto images = testing::LfwImages(lfw, 40);
  ASSERT_GE(images.size(), 40u);
  const cv::Mat walker = vision::LoadImage(images[0]);
  const cv::Mat second = vision::LoadImage(images[39]);  // another person
  constexpr int kFrames = 12, kSecondFrom = 5;

  auto dir = anju::testing::TempDir("video-pipeline");
  for (int i = 0; i < kFrames; ++i) {
    cv::Mat frame = testing::Background(800, 480);
    walker.copyTo(frame(cv::Rect(20 + 20 * i, 100, walker.cols, walker.rows)));
    if (i >= kSecondFrom) second.copyTo(frame(cv::Rect(540, 200, second.cols, second.rows)));
    char name[32];
    std::snprintf(name, sizeof name, "frame%02d.png", i);
    ASSERT_TRUE(cv::imwrite((dir / name).string(), frame));
  }

  auto source = FrameSource::Open("dir:" + dir.string() + "?fps=0");
  MotionGate gate;
  FaceTracker tracker;
  std::vector<int> walker_ids, second_ids;
  int started = 0, moving = 0;
  while (auto frame = source->Read()) {
    if (gate.Update(*frame).motion) ++moving;
    auto faces = engine->Detect(frame->image);
    std::vector<float> quality;
    for (const auto& f : faces) quality.push_back(engine->AssessQuality(frame->image, f).score);
    auto update = tracker.Update(*frame, faces, quality);
    for (const auto& e : update.events) started += e.kind == TrackEvent::Kind::kStarted;
    ASSERT_EQ(faces.size(), frame->seq >= kSecondFrom ? 2u : 1u) << "frame " << frame->seq;
    for (size_t k = 0; k < faces.size(); ++k) {
      // The walker is the face on the left.
      bool left = faces[k].det.box.x < 500;
      (left ? walker_ids : second_ids).push_back(update.ids[k]);
    }
  }
  ASSERT_EQ(walker_ids.size(), static_cast<size_t>(kFrames));
  ASSERT_EQ(second_ids.size(), static_cast<size_t>(kFrames - kSecondFrom));
  for (int id : walker_ids) EXPECT_EQ(id, walker_ids[0]);
  for (int id : second_ids) EXPECT_EQ(id, second_ids[0]);
  EXPECT_NE(walker_ids[0], second_ids[0]);
  EXPECT_EQ(started, 2);
  EXPECT_EQ(tracker.confirmed_count(), 2u);
  EXPECT_GE(moving, kFrames - 2);  // the walker moves 20 px per frame

  auto ended = tracker.Flush();
  ASSERT_EQ(ended.size(), 2u);
  for (const auto& e : ended) {
    EXPECT_FALSE(e.track.best_image.empty());
    EXPECT_GT(e.track.best_quality, 0.f);
    EXPECT_GE(e.track.best_seq, e.track.first_seq);
    EXPECT_LE(e.track.best_seq, e.track.last_seq);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::video
