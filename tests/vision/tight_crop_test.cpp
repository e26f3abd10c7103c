// Snapshot fast path: a tight face crop is located by the landmarker alone
// (FaceEngine::LocateInTightCrop), anything else is left to the detector; and the batched
// embedder gives the features of single runs.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "vision/embedder.h"
#include "vision/image.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::Engine;
using test::LfwFile;

const std::vector<std::pair<const char*, int>> kPeople = {
    {"Aaron_Peirsol", 1},   {"Amber_Tamblyn", 1},      {"Dean_Barker", 1}, {"Aaron_Tippin", 1},
    {"Bill_Paxton", 1},     {"Ethan_Hawke", 1},        {"John_Duprey", 1}, {"Lea_Fastow", 1},
    {"Michael_Leavitt", 1}, {"Ruth_Bader_Ginsburg", 1}};

float Cosine(const Feature& a, const Feature& b) {
  return Similarity(a, b);
}

float MeanPointError(const Points5& a, const Points5& b) {
  float e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += float(cv::norm(a[i] - b[i]));
  return e / float(a.size()) / float(cv::norm(b[1] - b[0]));
}

// LFW images are 250×250 crops centred on the person, as a camera's face image is; the
// detector's face is the reference.
TEST(TightCropTest, LfwCropsAreLocatedWithoutTheDetectorWhereItFindsThem) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceEngine& engine = Engine();
  int located = 0;
  for (const auto& [name, n] : kPeople) {
    SCOPED_TRACE(name);
    const cv::Mat img = LoadImage(LfwFile(lfw, name, n));
    const auto ref = engine.DetectCentral(img);
    ASSERT_TRUE(ref);
    const auto crop = engine.LocateInTightCrop(img);
    if (!crop) continue;
    ++located;
    EXPECT_EQ(crop->found_by, "crop");
    EXPECT_LT(MeanPointError(crop->points, ref->points), 0.12f);
    EXPECT_GT(Cosine(engine.Embed(*crop), engine.Embed(*ref)), 0.9f);
    // A tighter crop (the face box ×1.6) is located too, at the same points.
    const cv::Rect2f b = ref->det.box;
    const float side = 1.6f * std::max(b.width, b.height);
    const cv::Rect r =
        cv::Rect(cvRound(b.x + b.width / 2 - side / 2), cvRound(b.y + b.height / 2 - side / 2),
                 cvRound(side), cvRound(side)) &
        cv::Rect(0, 0, img.cols, img.rows);
    const auto tight = engine.LocateInTightCrop(img(r).clone());
    ASSERT_TRUE(tight) << "tight crop " << r;
    Points5 shifted = tight->points;
    for (auto& p : shifted) p += cv::Point2f(float(r.x), float(r.y));
    EXPECT_LT(MeanPointError(shifted, ref->points), 0.12f);
  }
  EXPECT_GE(located, int(kPeople.size()) - 1);
}

// What is not a face crop must not pass: the caller then runs the detector, which finds
// nothing here either, so such a capture ends as no_face.
TEST(TightCropTest, NonFacesAndScenesFallBackToTheDetector) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceEngine& engine = Engine();
  std::vector<std::pair<std::string, cv::Mat>> images;
  images.emplace_back("grey", cv::Mat(200, 200, CV_8UC3, cv::Scalar::all(128)));
  cv::Mat noise(200, 200, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  images.emplace_back("noise", noise);
  cv::Mat gradient(200, 160, CV_8UC3);
  for (int y = 0; y < gradient.rows; ++y)
    gradient.row(y).setTo(cv::Scalar::all(y * 255 / gradient.rows));
  images.emplace_back("gradient", gradient);
  cv::Mat checker(240, 240, CV_8UC3, cv::Scalar::all(0));
  for (int y = 0; y < 240; y += 40)
    for (int x = (y / 40 % 2) * 40; x < 240; x += 80)
      checker(cv::Rect(x, y, 40, 40)).setTo(cv::Scalar(200, 180, 160));
  images.emplace_back("checker", checker);
  const cv::Mat face = LoadImage(LfwFile(lfw, "Bill_Paxton", 1));
  // Shoulders and background below the face, enlarged to a crop's size.
  cv::Mat body;
  cv::resize(face(cv::Rect(0, 175, 75, 75)), body, {225, 225});
  images.emplace_back("body", body);
  cv::Mat upside_down;
  cv::flip(face, upside_down, -1);
  images.emplace_back("upside down", upside_down);
  // A scene is not a crop (too large), even with a face in it.
  cv::Mat scene(720, 1280, CV_8UC3, cv::Scalar::all(90));
  face.copyTo(scene(cv::Rect(500, 200, face.cols, face.rows)));
  images.emplace_back("scene", scene);
  // A face too small in its image is left to the detector.
  cv::Mat small_face(600, 600, CV_8UC3, cv::Scalar::all(90));
  cv::Mat shrunk;
  cv::resize(face, shrunk, {100, 100});
  shrunk.copyTo(small_face(cv::Rect(250, 250, 100, 100)));
  images.emplace_back("small face", small_face);
  for (const auto& [what, img] : images) {
    SCOPED_TRACE(what);
    EXPECT_FALSE(engine.LocateInTightCrop(img)) << what << " taken for a tight face crop";
  }
  // The detector still finds the face where there is one.
  EXPECT_TRUE(engine.DetectLargest(scene));
  EXPECT_TRUE(engine.DetectLargest(small_face));
  for (const char* what : {"grey", "gradient", "checker"}) {
    SCOPED_TRACE(what);
    for (const auto& [w, img] : images)
      if (w == what) {
        EXPECT_FALSE(engine.DetectLargest(img));
      }
  }
}

TEST(EmbedBatchTest, BatchEqualsSingleRunsWithAndWithoutTheMirror) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceEngine& engine = Engine();
  std::vector<cv::Mat> aligned;
  for (size_t i = 0; i < 3; ++i) {
    const auto f = engine.DetectCentral(LoadImage(LfwFile(lfw, kPeople[i].first, 1)));
    ASSERT_TRUE(f);
    aligned.push_back(f->aligned);
  }
  for (bool flip : {false, true}) {
    SCOPED_TRACE(flip ? "mirror" : "no mirror");
    const auto batch = engine.embedder().EmbedBatch(aligned, flip);
    ASSERT_EQ(batch.size(), aligned.size());
    for (size_t i = 0; i < aligned.size(); ++i) {
      const Feature single = engine.embedder().EmbedBatch({aligned[i]}, flip)[0];
      ASSERT_EQ(batch[i].values.size(), single.values.size());
      EXPECT_EQ(batch[i].model_version, single.model_version);
      float worst = 0;
      for (size_t k = 0; k < single.values.size(); ++k)
        worst = std::max(worst, std::abs(batch[i].values[k] - single.values[k]));
      EXPECT_LT(worst, 1e-4f) << "crop " << i;
      // The three people differ: rows were not mixed up.
      if (i > 0) {
        EXPECT_LT(Cosine(batch[i], batch[0]), 0.5f);
      }
    }
  }
  // The engine's default Embed is the mirror-averaged batch of one.
  const Feature def = engine.embedder().Embed(aligned[0]);
  const Feature one = engine.embedder().EmbedBatch({aligned[0]}, true)[0];
  EXPECT_EQ(def.values, one.values);
  EXPECT_TRUE(engine.embedder().EmbedBatch({}, true).empty());
}

}  // namespace
}  // namespace anju::vision
