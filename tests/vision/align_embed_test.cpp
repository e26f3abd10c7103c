// Landmarks, similarity alignment and the embedder, on real LFW images.
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "vision/aligner.h"
#include "vision/embedder.h"
#include "vision/image.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::EmbedLargest;
using test::Engine;
using test::LfwFile;
using test::Models;

std::vector<cv::Point2f> Apply(const cv::Mat& m, const std::vector<cv::Point2f>& pts) {
  std::vector<cv::Point2f> out;
  cv::transform(pts, out, m);
  return out;
}

TEST(SimilarityTest, RecoversAKnownTransformExactly) {
  const std::vector<cv::Point2f> from(ArcFaceTemplate().begin(), ArcFaceTemplate().end());
  for (double deg : {0.0, 17.0, -35.0, 90.0, 179.0}) {
    for (double scale : {0.5, 1.0, 2.3}) {
      SCOPED_TRACE(::testing::Message() << deg << "° ×" << scale);
      const double th = deg * CV_PI / 180, tx = 31.5, ty = -12.25;
      cv::Mat truth = (cv::Mat_<double>(2, 3) << scale * std::cos(th), -scale * std::sin(th), tx,
                       scale * std::sin(th), scale * std::cos(th), ty);
      cv::Mat est = EstimateSimilarity(from, Apply(truth, from));
      ASSERT_EQ(est.type(), CV_64F);
      ASSERT_EQ(est.size(), cv::Size(3, 2));
      EXPECT_LT(cv::norm(est, truth, cv::NORM_INF), 1e-3) << est << "\nvs\n" << truth;
    }
  }
}

TEST(SimilarityTest, NeverReflectsAndIsLeastSquares) {
  std::vector<cv::Point2f> from(ArcFaceTemplate().begin(), ArcFaceTemplate().end());
  std::vector<cv::Point2f> mirrored;
  for (auto p : from) mirrored.push_back({112 - p.x, p.y});
  cv::Mat m = EstimateSimilarity(from, mirrored);
  // A similarity [a −b; b a] has a positive determinant a² + b².
  EXPECT_DOUBLE_EQ(m.at<double>(0, 0), m.at<double>(1, 1));
  EXPECT_DOUBLE_EQ(m.at<double>(0, 1), -m.at<double>(1, 0));
  // Degenerate input (all points equal) gives a finite matrix, not NaN.
  std::vector<cv::Point2f> same(5, cv::Point2f(10, 10));
  cv::Mat d = EstimateSimilarity(same, from);
  EXPECT_TRUE(cv::checkRange(d));
}

TEST(LandmarksTest, AlignedEyesLandOnTheArcFaceTemplate) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  for (auto [name, n] : {std::pair{"Aaron_Peirsol", 1}, {"Amber_Tamblyn", 1}, {"Dean_Barker", 1}}) {
    SCOPED_TRACE(name);
    cv::Mat img = LoadImage(LfwFile(lfw, name, n));
    auto face = Engine().DetectLargest(img);
    ASSERT_TRUE(face);
    // The five points are a face shape: left eye left of the right eye, nose between,
    // mouth below; all inside the detector box.
    const auto& p = face->points;
    EXPECT_LT(p[0].x, p[2].x);
    EXPECT_LT(p[2].x, p[1].x);
    EXPECT_LT(p[0].y, p[2].y);
    EXPECT_LT(p[2].y, p[3].y);
    EXPECT_LT(p[3].x, p[4].x);
    for (const auto& q : p) EXPECT_TRUE(face->det.box.contains(q)) << q;
    // Mapped by the alignment, every point lands within a few pixels of the template.
    std::vector<cv::Point2f> pts(p.begin(), p.end());
    std::vector<cv::Point2f> tmpl(ArcFaceTemplate().begin(), ArcFaceTemplate().end());
    auto mapped = Apply(EstimateSimilarity(pts, tmpl), pts);
    EXPECT_LT(cv::norm(mapped[0] - tmpl[0]), 4.0) << "left eye " << mapped[0];
    EXPECT_LT(cv::norm(mapped[1] - tmpl[1]), 4.0) << "right eye " << mapped[1];
    // Nose and mouth move with expression; a looser bound.
    for (int i = 2; i < 5; ++i) EXPECT_LT(cv::norm(mapped[i] - tmpl[i]), 12.0) << i;
    // The detector-independent check: the landmarker run again on the aligned crop
    // finds the eyes where the template puts them.
    cv::Mat aligned = AlignFace(img, p);
    ASSERT_EQ(aligned.size(), cv::Size(kAlignedSize, kAlignedSize));
    auto again = ToPoints5(Engine().landmarker().Detect(aligned, cv::Rect2f(0, 0, 112, 112)));
    EXPECT_LT(cv::norm(again[0] - tmpl[0]), 8.0) << "left eye in crop " << again[0];
    EXPECT_LT(cv::norm(again[1] - tmpl[1]), 8.0) << "right eye in crop " << again[1];
  }
}

// Rotated, flipped and scaled copies of a photo still align: their features stay close
// to the original's.
TEST(AlignTest, TransformedImagesStillAlign) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  cv::Mat img = LoadImage(LfwFile(lfw, "Aaron_Peirsol", 1));
  const Feature original = EmbedLargest(Engine(), img);
  ASSERT_FALSE(original.values.empty());
  struct Case {
    const char* name;
    cv::Mat image;
  };
  std::vector<Case> cases;
  for (double deg : {20.0, -20.0}) {
    cv::Mat r = cv::getRotationMatrix2D(cv::Point2f(125, 125), deg, 1.0), out;
    cv::warpAffine(img, out, r, img.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    cases.push_back({deg > 0 ? "rotated +20°" : "rotated -20°", out});
  }
  cv::Mat flipped, half, twice;
  cv::flip(img, flipped, 1);
  cv::resize(img, half, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  cv::resize(img, twice, cv::Size(), 2.0, 2.0, cv::INTER_CUBIC);
  cases.push_back({"flipped", flipped});
  cases.push_back({"scaled 0.5x", half});
  cases.push_back({"scaled 2x", twice});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Feature f = EmbedLargest(Engine(), c.image);
    ASSERT_FALSE(f.values.empty());
    const float sim = Similarity(original, f);
    std::cout << "[ info ] " << c.name << ": cosine " << sim << "\n";
    EXPECT_GT(sim, 0.7f);
  }
}

TEST(EmbedderTest, FeatureIsUnitNorm512WithModelVersion) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto face = Engine().DetectLargest(LoadImage(LfwFile(lfw, "Abel_Pacheco", 1)));
  ASSERT_TRUE(face);
  for (bool flip : {true, false}) {
    SCOPED_TRACE(flip ? "flip TTA" : "single");
    Embedder embedder(*Models(), {.flip_tta = flip});
    Feature f = embedder.Embed(face->aligned);
    ASSERT_EQ(f.values.size(), 512u);
    double norm = 0;
    for (float v : f.values) {
      ASSERT_TRUE(std::isfinite(v));
      norm += double{v} * v;
    }
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
    EXPECT_FALSE(f.model_version.empty());
    EXPECT_EQ(f.model_version, Models()->feature_version());
    EXPECT_EQ(f.model_version, Engine().model_version());
    EXPECT_NEAR(Similarity(f, f), 1.f, 1e-4);
  }
  // Flip TTA changes the feature a little, not its identity.
  Embedder with(*Models(), {.flip_tta = true}), without(*Models(), {.flip_tta = false});
  EXPECT_GT(Similarity(with.Embed(face->aligned), without.Embed(face->aligned)), 0.9f);
  // The engine's default is the flip TTA (more accurate, see BENCHMARKS.md).
  EXPECT_TRUE(Engine().embedder().options().flip_tta);
}

TEST(EmbedderTest, FeaturesOfDifferentModelsAreNotCompared) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  Feature a = EmbedLargest(Engine(), LoadImage(LfwFile(lfw, "Abel_Pacheco", 1)));
  ASSERT_FALSE(a.values.empty());
  Feature b = a;
  b.model_version = "someone-else-1.0/other.onnx@12345678";
  EXPECT_ANJU_ERROR(Similarity(a, b), ErrorCode::kInvalidArgument);
  Feature c = a;
  c.values.resize(128);
  EXPECT_ANJU_ERROR(Similarity(a, c), ErrorCode::kInvalidArgument);
}

struct Pair {
  std::string name1;
  int n1;
  std::string name2;
  int n2;
};

// The first `count` same-person and different-person pairs of fold 1 of pairs.txt.
void ReadPairs(const std::filesystem::path& lfw, size_t count, std::vector<Pair>* same,
               std::vector<Pair>* diff) {
  std::ifstream in(lfw / "pairs.txt");
  std::string line;
  std::getline(in, line);  // "10 300"
  while (std::getline(in, line) && (same->size() < count || diff->size() < count)) {
    std::istringstream s(line);
    std::vector<std::string> t;
    for (std::string w; s >> w;) t.push_back(w);
    if (t.size() == 3 && same->size() < count)
      same->push_back({t[0], std::stoi(t[1]), t[0], std::stoi(t[2])});
    else if (t.size() == 4 && diff->size() < count)
      diff->push_back({t[0], std::stoi(t[1]), t[2], std::stoi(t[3])});
  }
}

TEST(EmbedderTest, SamePersonScoresHigherThanDifferentPeople) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  std::vector<Pair> same, diff;
  ReadPairs(lfw, 6, &same, &diff);
  ASSERT_EQ(same.size(), 6u);
  ASSERT_EQ(diff.size(), 6u);
  auto score = [&](const Pair& p) {
    Feature a = EmbedLargest(Engine(), LoadImage(LfwFile(lfw, p.name1, p.n1)));
    Feature b = EmbedLargest(Engine(), LoadImage(LfwFile(lfw, p.name2, p.n2)));
    return a.values.empty() || b.values.empty() ? 0.f : Similarity(a, b);
  };
  float min_same = 2, max_diff = -2, mean_same = 0, mean_diff = 0;
  for (const auto& p : same) {
    float s = score(p);
    std::cout << "[ info ] same " << p.name1 << " " << p.n1 << "/" << p.n2 << ": " << s << "\n";
    min_same = std::min(min_same, s);
    mean_same += s / same.size();
  }
  for (const auto& p : diff) {
    float s = score(p);
    std::cout << "[ info ] diff " << p.name1 << " " << p.n1 << " / " << p.name2 << " " << p.n2
              << ": " << s << "\n";
    max_diff = std::max(max_diff, s);
    mean_diff += s / diff.size();
  }
  EXPECT_GT(min_same, max_diff);
  EXPECT_GT(mean_same, mean_diff + 0.3f);
}

}  // namespace
}  // namespace anju::vision
