// Detector and the engine's detection fallbacks, on real images.
#include <opencv2/imgproc.hpp>

#include <random>

#include "vision/detector.h"
#include "vision/image.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::Engine;
using test::LfwFile;
using test::Models;

cv::Point2f Centre(const cv::Rect2f& r) {
  return {r.x + r.width / 2, r.y + r.height / 2};
}

// A few LFW-a images (250×250, face roughly centred).
const std::pair<const char*, int> kLfwFaces[] = {
    {"Aaron_Peirsol", 1}, {"Abel_Pacheco", 1},  {"Akhmed_Zakayev", 1},
    {"Amber_Tamblyn", 1}, {"George_W_Bush", 7}, {"Dean_Barker", 1},
};

TEST(IoUTest, KnownOverlaps) {
  cv::Rect2f a(0, 0, 10, 10);
  EXPECT_FLOAT_EQ(IoU(a, a), 1.f);
  EXPECT_FLOAT_EQ(IoU(a, {20, 20, 10, 10}), 0.f);
  EXPECT_FLOAT_EQ(IoU(a, {10, 0, 10, 10}), 0.f);  // touching edges
  EXPECT_NEAR(IoU(a, {5, 0, 10, 10}), 50.f / 150.f, 1e-6);
  EXPECT_NEAR(IoU(a, {0, 0, 5, 5}), 25.f / 100.f, 1e-6);  // contained
  EXPECT_FLOAT_EQ(IoU(a, {5, 0, 10, 10}), IoU({5, 0, 10, 10}, a));
  EXPECT_FLOAT_EQ(IoU({0, 0, 0, 0}, {0, 0, 0, 0}), 0.f);  // degenerate, no NaN
}

TEST(NmsTest, KeepsTheHigherScoreOfOverlappingBoxes) {
  std::vector<FaceBox> boxes = {
      {{0, 0, 10, 10}, 0.80f},
      {{1, 0, 10, 10}, 0.95f},     // IoU 0.82 with the first → suppresses it
      {{100, 100, 10, 10}, 0.5f},  // separate
      {{5, 0, 10, 10}, 0.9f},      // IoU 0.47 with the 0.95 box (> 0.4) → suppressed
  };
  auto kept = NonMaxSuppress(boxes, 0.4f);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.95f);
  EXPECT_EQ(kept[0].box.x, 1.f);
  EXPECT_FLOAT_EQ(kept[1].score, 0.5f);
  // A looser IoU keeps the partly overlapping box; the result stays sorted by score.
  kept = NonMaxSuppress(boxes, 0.5f);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.95f);
  EXPECT_FLOAT_EQ(kept[1].score, 0.9f);
  EXPECT_FLOAT_EQ(kept[2].score, 0.5f);
  EXPECT_TRUE(NonMaxSuppress({}, 0.4f).empty());
}

TEST(DetectorTest, OneCentredFaceOnLfw) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceDetector detector(*Models());
  for (auto [name, n] : kLfwFaces) {
    SCOPED_TRACE(name);
    cv::Mat img = LoadImage(LfwFile(lfw, name, n));
    auto faces = detector.Detect(img);
    ASSERT_EQ(faces.size(), 1u);
    const auto& f = faces[0];
    EXPECT_GE(f.score, detector.options().score_threshold);
    EXPECT_LE(f.score, 1.f);
    EXPECT_NEAR(f.box.width, f.box.height, 1e-3);  // square
    EXPECT_GT(f.box.height, 70.f);
    EXPECT_LT(f.box.height, 200.f);
    EXPECT_LT(cv::norm(Centre(f.box) - cv::Point2f(125, 125)), 30.0);
  }
}

TEST(DetectorTest, ScoreThresholdAndMinFaceSizeAreRespected) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceDetector detector(*Models());
  cv::Mat img = LoadImage(LfwFile(lfw, "Aaron_Peirsol", 1));
  auto faces = detector.Detect(img);
  ASSERT_EQ(faces.size(), 1u);
  const float side = faces[0].box.height, score = faces[0].score;

  DetectorOptions o;
  o.min_face_size = static_cast<int>(side) + 1;
  detector.set_options(o);
  EXPECT_TRUE(detector.Detect(img).empty())
      << "face of " << side << " px kept with min " << o.min_face_size;
  o.min_face_size = static_cast<int>(side) - 1;
  detector.set_options(o);
  EXPECT_EQ(detector.Detect(img).size(), 1u);

  o = {};
  o.score_threshold = std::min(1.f, score + 0.001f);
  detector.set_options(o);
  EXPECT_TRUE(detector.Detect(img).empty());
  // A low threshold gives more candidates, all above it.
  for (const auto& f : detector.DetectOnce(img, 0.3f)) EXPECT_GE(f.score, 0.3f);
}

TEST(DetectorTest, NoFaceInNoise) {
  cv::Mat noise(480, 640, CV_8UC3);
  cv::randu(noise, cv::Scalar::all(0), cv::Scalar::all(255));
  FaceDetector detector(*Models());
  EXPECT_TRUE(detector.Detect(noise).empty());
}

// A 1920×1080 frame of blurred noise with a real LFW photo pasted in at 130×130, so that
// its face is ~65 px tall (a person far from a 1080p camera).
cv::Mat SmallFaceInHdFrame(const cv::Mat& lfw_image, cv::Rect* face_rect) {
  cv::Mat frame(1080, 1920, CV_8UC3);
  cv::RNG rng(7);
  rng.fill(frame, cv::RNG::UNIFORM, cv::Scalar::all(40), cv::Scalar::all(220));
  cv::GaussianBlur(frame, frame, cv::Size(0, 0), 3);
  cv::Mat small;
  cv::resize(lfw_image, small, cv::Size(130, 130), 0, 0, cv::INTER_AREA);
  const cv::Rect where(1350, 620, 130, 130);
  small.copyTo(frame(where));
  *face_rect = where;
  return frame;
}

TEST(DetectorTest, TiledModeFindsASmallFaceInA1080pFrame) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FaceDetector detector(*Models());
  for (const char* name : {"Amber_Tamblyn", "Dean_Barker"}) {
    SCOPED_TRACE(name);
    cv::Rect where;
    cv::Mat frame = SmallFaceInHdFrame(LoadImage(LfwFile(lfw, name, 1)), &where);
    const cv::Point2f expected(where.x + where.width / 2.f, where.y + where.height / 2.f);
    auto near_face = [&](const std::vector<FaceBox>& faces) -> const FaceBox* {
      for (const auto& f : faces)
        if (cv::norm(Centre(f.box) - expected) < 30) return &f;
      return nullptr;
    };

    DetectorOptions single;
    single.tiles = 1;
    detector.set_options(single);
    EXPECT_EQ(near_face(detector.Detect(frame)), nullptr) << "single pass found it already";
    // What the single pass sees at a very low threshold, to show the tiles did the work.
    auto once_low = detector.DetectOnce(frame, 0.01f);
    const FaceBox* weak = near_face(once_low);
    const float single_score = weak ? weak->score : 0.f;

    DetectorOptions tiled;
    tiled.tiles = 2;
    detector.set_options(tiled);
    auto faces = detector.Detect(frame);
    const FaceBox* found = near_face(faces);
    ASSERT_NE(found, nullptr) << "tiled detector missed the face in the " << where << " photo";
    EXPECT_GT(found->box.height, 45.f);
    EXPECT_LT(found->box.height, 100.f);
    EXPECT_GT(found->score, single_score);
    EXPECT_EQ(faces.size(), 1u) << "false positives in the noise";
    // Automatic mode tiles frames wider than 960 px.
    detector.set_options({});
    EXPECT_NE(near_face(detector.Detect(frame)), nullptr);
    std::cout << "[ info ] " << name << " small face: single-pass score " << single_score
              << ", tiled score " << found->score << ", box " << found->box << "\n";
  }
}

// Tight crops (Yale B): the plain pass misses or boxes the whole image; the engine pads.
TEST(EngineDetectTest, TightlyCroppedYaleBFaceIsFound) {
  ANJU_REQUIRE_DATA(yaleb, "yaleb");
  cv::Mat img = LoadImage(yaleb / "yaleB01" / "yaleB01_P00A+000E+00.png");
  auto faces = Engine().Detect(img);
  ASSERT_FALSE(faces.empty());
  const auto& f = faces[0];
  EXPECT_EQ(f.found_by, "padded");
  // Eyes inside the image, left of right, above the mouth.
  for (const auto& p : f.points) {
    EXPECT_GE(p.x, 0.f);
    EXPECT_LT(p.x, img.cols);
    EXPECT_GE(p.y, 0.f);
    EXPECT_LT(p.y, img.rows);
  }
  EXPECT_LT(f.points[0].x, f.points[1].x);
  EXPECT_LT(f.points[0].y, f.points[3].y);
}

TEST(EngineDetectTest, VeryDarkYaleBFacesAreFoundByTheFallbacks) {
  ANJU_REQUIRE_DATA(yaleb, "yaleb");
  EngineOptions plain;
  plain.fallbacks = false;
  FaceEngine no_fallback(Models(), plain);
  // Light from far behind (azimuth ±130°): mean grey level under 20 of 255.
  for (const char* file :
       {"yaleB01_P00A+130E+20.png", "yaleB01_P00A-130E+20.png", "yaleB02_P00A-130E+20.png"}) {
    SCOPED_TRACE(file);
    const std::string subject = std::string(file).substr(0, 7);
    cv::Mat img = LoadImage(yaleb / subject / file);
    ASSERT_LT(MeanBrightness(img), 25.f);
    // Without the fallbacks the detector finds nothing here.
    EXPECT_TRUE(no_fallback.Detect(img).empty());
    auto faces = Engine().Detect(img);
    ASSERT_FALSE(faces.empty());
    const auto& f = faces[0];
    std::cout << "[ info ] " << file << ": found_by " << f.found_by << ", box " << f.det.box
              << "\n";
    EXPECT_NE(f.found_by, "plain");
    EXPECT_LT(f.points[0].x, f.points[1].x);
    EXPECT_LT(f.points[0].y, f.points[3].y);
    // The crop handed to the embedder was brightened (R3.1.4.1 night).
    EXPECT_GE(MeanBrightness(f.aligned), 40.f);
  }
  // This one needs gamma + CLAHE before detection: padding alone is not enough.
  auto faces = Engine().Detect(LoadImage(yaleb / "yaleB01" / "yaleB01_P00A-130E+20.png"));
  ASSERT_FALSE(faces.empty());
  EXPECT_EQ(faces[0].found_by.rfind("enhanced", 0), 0u) << faces[0].found_by;
}

// The _Ambient images (mean grey level ~1 of 255) are beyond the fallbacks; they must
// at least not crash or produce garbage boxes.
TEST(EngineDetectTest, NearlyBlackImageDoesNotCrash) {
  ANJU_REQUIRE_DATA(yaleb, "yaleb");
  const auto path = yaleb / "yaleB01" / "yaleB01_P00_Ambient.png";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present";
  cv::Mat img = LoadImage(path);
  auto faces = Engine().Detect(img);
  std::cout << "[ info ] " << path.filename() << " (mean " << MeanBrightness(img)
            << "): " << faces.size() << " face(s)\n";
  for (const auto& f : faces) {
    EXPECT_GT(f.det.box.height, 0.f);
    EXPECT_EQ(f.aligned.size(), cv::Size(112, 112));
  }
}

TEST(EngineDetectTest, ClearFaceUsesThePlainPass) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto faces = Engine().Detect(LoadImage(LfwFile(lfw, "Aaron_Peirsol", 1)));
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_EQ(faces[0].found_by, "plain");
  EXPECT_EQ(faces[0].aligned.size(), cv::Size(112, 112));
  EXPECT_EQ(faces[0].aligned.type(), CV_8UC3);
}

// Frames that do not come through DecodeImage (a grey IR camera, a BGRA capture, an
// empty Mat) give faces or an anju::Error, not a raw cv::Exception from inside cv::dnn.
TEST(EngineDetectTest, NonBgrFramesAreConvertedOrRefused) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  cv::Mat img = LoadImage(LfwFile(lfw, "Aaron_Peirsol", 1)), grey, bgra;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  cv::cvtColor(img, bgra, cv::COLOR_BGR2BGRA);
  for (const cv::Mat& frame : {grey, bgra}) {
    SCOPED_TRACE(frame.channels());
    try {
      EXPECT_EQ(Engine().Detect(frame).size(), 1u);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "raw exception: " << e.what();
    }
  }
  try {
    Engine().Detect(cv::Mat());
    ADD_FAILURE() << "an empty frame was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(e.code() == ErrorCode::kBadImage || e.code() == ErrorCode::kInvalidArgument)
        << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "raw exception: " << e.what();
  }
}

}  // namespace
}  // namespace anju::vision
