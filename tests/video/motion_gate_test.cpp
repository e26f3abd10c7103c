// MotionGate on real pixels: identical frames and sensor noise are still, a face
// appearing on the background is motion, and the gate stays awake for the cool-down.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "testing.h"
#include "video/motion_gate.h"
#include "video_test_support.h"
#include "vision/image.h"

namespace anju::video {
namespace {

using std::chrono::milliseconds;

TEST(MotionGateTest, StillFramesAndNoiseAreNotMotionAFaceIs) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  const cv::Mat face = vision::LoadImage(testing::LfwImages(lfw, 1).at(0));
  const cv::Mat bg = testing::Background();
  MotionGate gate;
  const auto t0 = Clock::now();

  auto r = gate.Update(bg, t0);  // reference only
  EXPECT_FALSE(r.motion);
  EXPECT_FALSE(r.awake);
  r = gate.Update(bg.clone(), t0 + milliseconds(100));
  EXPECT_FALSE(r.motion);
  EXPECT_EQ(r.changed_fraction, 0.f);

  cv::Mat noisy = bg.clone();
  cv::Mat noise(bg.size(), CV_16SC3);
  cv::randn(noise, 0, 4);
  noisy.convertTo(noisy, CV_16SC3);
  noisy += noise;
  noisy.convertTo(noisy, CV_8UC3);
  r = gate.Update(noisy, t0 + milliseconds(200));
  EXPECT_FALSE(r.motion) << r.changed_fraction;
  EXPECT_FALSE(r.awake);

  cv::Mat with_face = bg.clone();
  face.copyTo(with_face(cv::Rect(200, 120, face.cols, face.rows)));
  r = gate.Update(with_face, t0 + milliseconds(300));
  EXPECT_TRUE(r.motion) << r.changed_fraction;
  EXPECT_TRUE(r.awake);
  EXPECT_GT(r.changed_fraction, 0.05f);

  // The person stands still: no new motion, but awake until the cool-down passes.
  r = gate.Update(with_face, t0 + milliseconds(1300));
  EXPECT_FALSE(r.motion);
  EXPECT_TRUE(r.awake);
  r = gate.Update(with_face, t0 + milliseconds(300) + gate.options().cooldown);
  EXPECT_FALSE(r.awake);
}

TEST(MotionGateTest, ThresholdAndSizeChangesAndGreyInput) {
  MotionOptions o;
  o.min_fraction = 0.5f;  // only large changes count
  MotionGate gate(o);
  const auto t = Clock::now();
  cv::Mat a(240, 320, CV_8UC1, cv::Scalar(50)), b = a.clone();
  cv::rectangle(b, cv::Rect(0, 0, 100, 100), cv::Scalar(200), cv::FILLED);  // 13% of the frame
  gate.Update(a, t);
  auto r = gate.Update(b, t);
  EXPECT_FALSE(r.motion);
  EXPECT_GT(r.changed_fraction, 0.05f);
  // Another size resets the reference rather than comparing unlike frames.
  EXPECT_FALSE(gate.Update(cv::Mat(480, 640, CV_8UC1, cv::Scalar(255)), t).motion);
  EXPECT_THROW(gate.Update(cv::Mat(), t), Error);
  EXPECT_THROW(gate.Update(cv::Mat(10, 10, CV_32FC1), t), Error);
}

}  // namespace
}  // namespace anju::video
