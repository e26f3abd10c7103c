// Passive liveness on NUAA frames, and the quality measures and reasons.
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "vision/aligner.h"
#include "vision/image.h"
#include "vision/liveness.h"
#include "vision/quality.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::Engine;
using test::LfwFile;
using test::NuaaFrames;

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(LivenessTest, LiveFramesScoreHigherThanPrintedPhotos) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  // 6 + 6 frames spread over the subset lists (200 lines each).
  auto mean_score = [&](bool live) {
    auto frames = NuaaFrames(nuaa, live, 6, 33);
    EXPECT_EQ(frames.size(), 6u);
    float sum = 0;
    int n = 0;
    for (const auto& path : frames) {
      cv::Mat img = LoadImage(path);
      auto face = Engine().DetectLargest(img);
      if (!face) {
        ADD_FAILURE() << "no face in " << path;
        continue;
      }
      float s = Engine().Liveness(img, *face);
      EXPECT_GE(s, 0.f);
      EXPECT_LE(s, 1.f);
      EXPECT_EQ(Engine().liveness().IsLive(s), s >= Engine().liveness().options().threshold);
      sum += s;
      ++n;
    }
    return n ? sum / n : 0.f;
  };
  const float live = mean_score(true), attack = mean_score(false);
  std::cout << "[ info ] mean liveness: live " << live << ", attack " << attack << "\n";
  EXPECT_GT(live, attack);
}

TEST(LivenessTest, BoxAtTheBorderOrTinyDoesNotCrash) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  auto frames = NuaaFrames(nuaa, true, 1, 1);
  ASSERT_EQ(frames.size(), 1u);
  cv::Mat img = LoadImage(frames[0]);
  auto& liveness = Engine().liveness();
  for (cv::Rect2f box : {cv::Rect2f(-50, -50, 200, 200), cv::Rect2f(600, 440, 100, 100),
                         cv::Rect2f(0, 0, 640, 480), cv::Rect2f(300, 200, 1, 1)}) {
    float s = liveness.Score(img, box);
    EXPECT_GE(s, 0.f) << box;
    EXPECT_LE(s, 1.f) << box;
  }
}

class QualityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = anju::testing::DataPath("lfw");
    if (data_.empty()) GTEST_SKIP() << "evaluation data 'lfw' not found";
    image_ = LoadImage(LfwFile(data_, "Aaron_Peirsol", 1));
  }
  Quality Assess(const cv::Mat& img) {
    auto face = Engine().DetectLargest(img);
    if (!face) {
      ADD_FAILURE() << "no face";
      return {};
    }
    return Engine().AssessQuality(img, *face);
  }
  std::filesystem::path data_;
  cv::Mat image_;
};

TEST_F(QualityTest, PartsAreInRange) {
  Quality q = Assess(image_);
  EXPECT_GT(q.face_size, 70.f);
  EXPECT_GT(q.inter_pupil, 24.f);
  EXPECT_LT(q.inter_pupil, q.face_size);
  EXPECT_GT(q.sharpness, 0.f);
  EXPECT_GT(q.brightness, 50.f);
  EXPECT_LT(q.brightness, 215.f);
  EXPECT_GT(q.contrast, 0.f);
  EXPECT_GE(q.eyes_open, 0.f);  // the package has an eye-state model
  EXPECT_LE(q.eyes_open, 1.f);
  EXPECT_GT(q.score, 0.f);
  EXPECT_LE(q.score, 1.f);
  EXPECT_LT(std::abs(q.pose.yaw), 30.f);
  std::cout << "[ info ] quality: size " << q.face_size << " ipd " << q.inter_pupil << " sharp "
            << q.sharpness << " bright " << q.brightness << " yaw " << q.pose.yaw << " pitch "
            << q.pose.pitch << " roll " << q.pose.roll << " eyes " << q.eyes_open << " score "
            << q.score << "\n";
}

TEST_F(QualityTest, BlurLowersSharpnessAndScore) {
  cv::Mat blurred;
  cv::GaussianBlur(image_, blurred, cv::Size(0, 0), 3.0);
  Quality sharp = Assess(image_), blur = Assess(blurred);
  std::cout << "[ info ] sharpness " << sharp.sharpness << " → " << blur.sharpness << ", score "
            << sharp.score << " → " << blur.score << "\n";
  EXPECT_LT(blur.sharpness, sharp.sharpness * 0.5f);
  EXPECT_LT(blur.score, sharp.score);
  EXPECT_TRUE(Has(QualityProblems(blur, {}), "blurred"));
  EXPECT_FALSE(Has(QualityProblems(sharp, {}), "blurred"));
}

// The darkened photo's own (un-normalised) aligned crop measures as too dark.
TEST_F(QualityTest, DarkenedFaceIsTooDark) {
  cv::Mat dark;
  image_.convertTo(dark, -1, 0.25, 0);
  auto face = Engine().DetectLargest(dark);
  ASSERT_TRUE(face);
  const cv::Mat raw_crop = AlignFace(dark, face->points);
  Quality q = MeasureQuality(raw_crop, face->points, face->det.box, {}, 0.9f);
  auto normal_face = Engine().DetectLargest(image_);
  ASSERT_TRUE(normal_face);
  Quality normal =
      MeasureQuality(normal_face->aligned, normal_face->points, normal_face->det.box, {}, 0.9f);
  EXPECT_LT(q.brightness, 50.f);
  EXPECT_LT(q.score, normal.score);
  // (Usually "blurred" as well: the Laplacian's variance falls with the square of the
  // contrast.)
  EXPECT_TRUE(Has(QualityProblems(q, {}), "too_dark")) << q.brightness;
  EXPECT_TRUE(QualityProblems(normal, {}).empty());
}

// Same through FaceEngine::AssessQuality, which is what enrolment calls: the engine
// brightens dark aligned crops for embedding, but quality must be measured on the crop
// as the camera saw it, or too_dark could never fire.
TEST_F(QualityTest, EngineFlagsDarkenedFaceAsTooDark) {
  cv::Mat dark;
  image_.convertTo(dark, -1, 0.25, 0);
  Quality normal = Assess(image_), q = Assess(dark);
  EXPECT_LT(q.brightness, normal.brightness);
  EXPECT_TRUE(Has(QualityProblems(q, {}), "too_dark"))
      << "brightness " << q.brightness << " of a face darkened to a quarter";
  EXPECT_FALSE(Has(QualityProblems(normal, {}), "too_dark"));
}

// The measures on the aligned crop itself, without the networks.
TEST_F(QualityTest, MeasureQualityOnTheAlignedCrop) {
  auto face = Engine().DetectLargest(image_);
  ASSERT_TRUE(face);
  const HeadPose frontal;
  Quality base = MeasureQuality(face->aligned, face->points, face->det.box, frontal, 0.9f);
  cv::Mat blurred, dark;
  cv::GaussianBlur(face->aligned, blurred, cv::Size(0, 0), 2.0);
  face->aligned.convertTo(dark, -1, 0.2, 0);
  Quality b = MeasureQuality(blurred, face->points, face->det.box, frontal, 0.9f);
  Quality d = MeasureQuality(dark, face->points, face->det.box, frontal, 0.9f);
  EXPECT_LT(b.sharpness, base.sharpness);
  EXPECT_LT(b.score, base.score);
  EXPECT_LT(d.brightness, 50.f);
  EXPECT_LT(d.score, base.score);
  // A turned head and closed eyes lower the score too.
  Quality turned = MeasureQuality(face->aligned, face->points, face->det.box, {50, 0, 0}, 0.9f);
  Quality closed = MeasureQuality(face->aligned, face->points, face->det.box, frontal, 0.f);
  EXPECT_LT(turned.score, base.score);
  EXPECT_LT(closed.score, base.score);
}

TEST(QualityProblemsTest, GivesTheExpectedReasons) {
  Quality good;
  good.face_size = 150;
  good.inter_pupil = 60;
  good.sharpness = 200;
  good.brightness = 120;
  good.contrast = 40;
  good.eyes_open = 0.95f;
  good.score = 0.9f;
  const QualityPolicy policy;
  EXPECT_TRUE(QualityProblems(good, policy).empty());

  auto only = [&](Quality q, const std::string& reason) {
    auto p = QualityProblems(q, policy);
    EXPECT_EQ(p, std::vector<std::string>{reason}) << reason;
  };
  Quality q = good;
  q.inter_pupil = 20;
  only(q, "too_small");
  q = good;
  q.sharpness = 10;
  only(q, "blurred");
  q = good;
  q.brightness = 30;
  only(q, "too_dark");
  q = good;
  q.brightness = 240;
  only(q, "too_bright");
  for (HeadPose pose :
       {HeadPose{40, 0, 0}, HeadPose{-40, 0, 0}, HeadPose{0, 30, 0}, HeadPose{0, 0, -30}}) {
    q = good;
    q.pose = pose;
    only(q, "not_frontal");
  }
  q = good;
  q.eyes_open = 0.1f;
  only(q, "eyes_closed");
  q = good;
  q.eyes_open = -1;  // not measured: no complaint
  EXPECT_TRUE(QualityProblems(q, policy).empty());
  // Several at once, in the documented order.
  q = good;
  q.inter_pupil = 10;
  q.sharpness = 1;
  q.brightness = 20;
  q.eyes_open = 0;
  EXPECT_EQ(QualityProblems(q, policy),
            (std::vector<std::string>{"too_small", "blurred", "too_dark", "eyes_closed"}));
  // The policy's limits are the boundaries.
  q = good;
  q.sharpness = policy.min_sharpness;
  EXPECT_TRUE(QualityProblems(q, policy).empty());
  QualityPolicy strict;
  strict.min_sharpness = 500;
  EXPECT_EQ(QualityProblems(good, strict), std::vector<std::string>{"blurred"});
}

}  // namespace
}  // namespace anju::vision
