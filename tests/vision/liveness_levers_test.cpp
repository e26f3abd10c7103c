// Liveness levers on real images (R3.1.2.4, BENCHMARKS.md "Liveness"): the network's input
// order, frame fusion, the crop, and the infrared face check on recorded frames.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "vision/image.h"
#include "vision/ir_check.h"
#include "vision/liveness.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::Engine;
using test::Models;
using test::NuaaFrames;

float Logit(float p) {
  p = std::clamp(p, 1e-7f, 1 - 1e-7f);
  return std::log(p / (1 - p));
}

// Live probability of the largest face with the given liveness options (its own checker,
// the shared engine's detector).
float ScoreWith(const cv::Mat& img, const LivenessOptions& o) {
  auto face = Engine().DetectLargest(img);
  if (!face) {
    ADD_FAILURE() << "no face";
    return 0.f;
  }
  LivenessChecker checker(*Models(), o);
  return checker.Score(img, face->det.box);
}

// The network was trained on BGR crops: fed so, NUAA's live webcam frames and the printed
// photos of the same people separate by a wide margin; fed RGB (as before) they overlap.
TEST(LivenessLeversTest, BgrInputSeparatesLiveFramesFromPrintsFarBetterThanRgb) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const auto live = NuaaFrames(nuaa, true, 8, 25), attack = NuaaFrames(nuaa, false, 8, 25);
  ASSERT_EQ(live.size(), 8u);
  ASSERT_EQ(attack.size(), 8u);
  LivenessOptions bgr, rgb;
  rgb.rgb_input = true;
  struct Worst {
    float live = 1e9f, attack = -1e9f;  // log-odds: lowest live, highest attack
    int prints_accepted = 0;
  };
  auto measure = [&](const LivenessOptions& o, float threshold) {
    Worst w;
    for (const auto& p : live) w.live = std::min(w.live, Logit(ScoreWith(LoadImage(p), o)));
    for (const auto& p : attack) {
      const float s = ScoreWith(LoadImage(p), o);
      w.attack = std::max(w.attack, Logit(s));
      w.prints_accepted += s >= threshold;
    }
    return w;
  };
  const float t = LivenessOptions{}.threshold;
  const Worst now = measure(bgr, t), old = measure(rgb, 0.5f);
  std::cout << "[ info ] worst live / worst print log-odds: BGR " << now.live << " / " << now.attack
            << ", RGB " << old.live << " / " << old.attack << "\n";
  EXPECT_GT(now.live, Logit(t)) << "every live frame passes the default threshold";
  // One NUAA print in 200 scores above the default threshold (BENCHMARKS.md); this
  // sample of 8 happens to hold it.
  EXPECT_LE(now.prints_accepted, 1);
  EXPECT_GT(now.live - now.attack, 0.f) << "live and prints do not overlap";
  EXPECT_LT(old.live - old.attack, 0.f) << "with RGB input they did";
}

// Tight USB-camera crops of Chinese adults (CASIA-FaceV5): refused almost always with RGB
// input, let through at the default settings.
TEST(LivenessLeversTest, LiveFacesFromAnotherCameraPassAtTheDefaults) {
  ANJU_REQUIRE_DATA(casia, "east-asian/casia5");
  LivenessOptions old;
  old.rgb_input = true;
  old.context_scale = 2.7f;
  old.threshold = 0.5f;
  int pass_now = 0, pass_old = 0, n = 0;
  for (int person = 0; person < 20; person += 2) {
    char file[32];
    std::snprintf(file, sizeof file, "%03d/%03d_1.jpg", person, person);
    const cv::Mat img = LoadImage(casia / file);
    pass_now += Engine().liveness().IsLive(ScoreWith(img, LivenessOptions{}));
    pass_old += ScoreWith(img, old) >= old.threshold;
    ++n;
  }
  std::cout << "[ info ] CASIA-FaceV5 first photos passing: " << pass_now << " of " << n
            << " (RGB, 2.7, 0.5: " << pass_old << ")\n";
  EXPECT_GE(pass_now, n - 1);
  EXPECT_LE(pass_old, n / 2);
}

TEST(LivenessLeversTest, FusionRules) {
  const std::vector<float> a = {0.9f, 0.1f};
  EXPECT_NEAR(FuseLiveness(a, LivenessFusion::kLogitMean), 0.5f, 1e-5);
  EXPECT_NEAR(FuseLiveness(a, LivenessFusion::kMean), 0.5f, 1e-6);
  // One confident frame among prints: the arithmetic mean lets it carry the approach past a
  // low threshold, the log-odds mean does not.
  const std::vector<float> prints = {1e-5f, 2e-5f, 0.05f};
  EXPECT_GT(FuseLiveness(prints, LivenessFusion::kMean), 0.01f);
  EXPECT_LT(FuseLiveness(prints, LivenessFusion::kLogitMean), 0.001f);
  EXPECT_FLOAT_EQ(FuseLiveness(prints, LivenessFusion::kMin), 1e-5f);
  EXPECT_FLOAT_EQ(FuseLiveness(prints, LivenessFusion::kMedian), 2e-5f);
  const std::vector<float> saturated = {1.f, 1.f};
  EXPECT_GT(FuseLiveness(saturated, LivenessFusion::kLogitMean), 0.999f);
  EXPECT_EQ(FuseLiveness({}, LivenessFusion::kLogitMean), 0.f);
  for (auto f : {LivenessFusion::kLogitMean, LivenessFusion::kMean, LivenessFusion::kMedian,
                 LivenessFusion::kMin})
    EXPECT_EQ(ParseLivenessFusion(LivenessFusionName(f)), f);
  EXPECT_ANJU_ERROR(ParseLivenessFusion("average"), ErrorCode::kInvalidArgument);
}

TEST(LivenessLeversTest, CropStaysInsideTheImage) {
  const cv::Size img(640, 480);
  const cv::Rect inside = LivenessCrop(img, {270, 190, 100, 100}, 2.0f);
  EXPECT_EQ(inside, cv::Rect(220, 140, 200, 200));
  // Too large for the frame: shifted inside and shrunk, never padded.
  for (cv::Rect2f b : {cv::Rect2f(-50, -50, 300, 300), cv::Rect2f(500, 400, 200, 200),
                       cv::Rect2f(0, 0, 640, 480)}) {
    const cv::Rect r = LivenessCrop(img, b, 2.0f);
    EXPECT_EQ(r & cv::Rect({0, 0}, img), r) << b;
    EXPECT_GT(r.area(), 0) << b;
  }
  EXPECT_TRUE(LivenessCrop(img, {10, 10, 0, 0}, 2.0f).empty());
}

// Infrared check. There is no near-infrared data: these are RECORDED COLOUR FRAMES made to
// stand in for IR frames — a NUAA live webcam frame turned grey (near-infrared shows a live
// face as a face), and the same frame with the face region replaced by a flat dark patch
// (near-infrared shows a phone or monitor screen as a dark surface). They test the code
// path (mapping, search window, detector), not the rates on real IR cameras.
class IrCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nuaa_ = anju::testing::DataPath("nuaa");
    if (nuaa_.empty()) GTEST_SKIP() << "evaluation data 'nuaa' not found";
    colour_ = LoadImage(NuaaFrames(nuaa_, true, 1, 1).at(0));
    auto face = Engine().DetectLargest(colour_);
    ASSERT_TRUE(face);
    box_ = face->det.box;
    cv::cvtColor(colour_, ir_face_, cv::COLOR_BGR2GRAY);
    ir_screen_ = ir_face_.clone();
    const cv::Rect patch = cv::Rect(box_) & cv::Rect({0, 0}, ir_screen_.size());
    ir_screen_(patch).setTo(cv::Scalar(12));
  }
  std::filesystem::path nuaa_;
  cv::Mat colour_, ir_face_, ir_screen_;
  cv::Rect2f box_;
};

TEST_F(IrCheckTest, FaceInTheIrFrameWhereTheColourCameraSawOne) {
  const float live = IrFaceScore(Engine().detector(), ir_face_, box_);
  const float screen = IrFaceScore(Engine().detector(), ir_screen_, box_);
  std::cout << "[ info ] IR face score: grey stand-in " << live << ", blanked " << screen << "\n";
  EXPECT_GE(live, 0.5f);
  EXPECT_LT(screen, 0.5f);
}

TEST_F(IrCheckTest, MappingBetweenTheTwoCameras) {
  // An IR sensor of half the resolution, offset by 20 px: the calibrated map finds the face,
  // the identity map (pointing at the wrong place) does not.
  cv::Mat small, shifted(ir_face_.rows / 2 + 40, ir_face_.cols / 2 + 40, CV_8UC1, cv::Scalar(0));
  cv::resize(ir_face_, small, {}, 0.5, 0.5);
  small.copyTo(shifted(cv::Rect(20, 20, small.cols, small.rows)));
  IrCheckOptions o;
  o.map = {0.5f, 0, 20, 0, 0.5f, 20};
  const cv::Rect2f mapped = MapBoxToIr(box_, o.map);
  EXPECT_NEAR(mapped.x, box_.x / 2 + 20, 1e-3);
  EXPECT_NEAR(mapped.width, box_.width / 2, 1e-3);
  EXPECT_GE(IrFaceScore(Engine().detector(), shifted, box_, o), 0.5f);
  IrCheckOptions wrong;
  wrong.map = {1, 0, 0, 0, 1, 0};
  EXPECT_LT(IrFaceScore(Engine().detector(), shifted, box_, wrong), 0.5f);
  // Mapped outside the IR frame: no face, no crash.
  wrong.map = {1, 0, 5000, 0, 1, 0};
  EXPECT_EQ(IrFaceScore(Engine().detector(), shifted, box_, wrong), 0.f);
  EXPECT_ANJU_ERROR(IrFaceScore(Engine().detector(), cv::Mat(), box_), ErrorCode::kBadImage);
}

}  // namespace
}  // namespace anju::vision
