#include "vision/engine.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/paths.h"
#include "vision/aligner.h"

namespace anju::vision {

FaceEngine::FaceEngine(std::shared_ptr<const ModelSet> models, EngineOptions options)
    : models_(std::move(models)),
      options_(options),
      detector_(*models_, options.detector),
      landmarker_(*models_),
      embedder_(*models_, options.embedder),
      liveness_(*models_, options.liveness) {
  if (models_->has("pose")) pose_ = std::make_unique<PoseEstimator>(*models_);
  if (models_->has("eyes")) eyes_ = std::make_unique<EyeStateClassifier>(*models_);
}

std::unique_ptr<FaceEngine> FaceEngine::Open(const std::filesystem::path& dir,
                                             EngineOptions options) {
  return std::make_unique<FaceEngine>(ModelSet::Load(dir.empty() ? DefaultModelDir() : dir),
                                      options);
}

float MeanBrightness(const cv::Mat& bgr) {
  cv::Scalar m = cv::mean(bgr);
  return static_cast<float>((m[0] + m[1] + m[2]) / 3);
}

cv::Mat NormalizeIllumination(const cv::Mat& bgr) {
  cv::Mat ycc;
  cv::cvtColor(bgr, ycc, cv::COLOR_BGR2YCrCb);
  std::vector<cv::Mat> ch;
  cv::split(ycc, ch);
  // Gamma lifts the shadows in proportion to how dark the image is, CLAHE then
  // restores local contrast without blowing out the lit side of the face.
  double mean = std::max(1.0, cv::mean(ch[0])[0]);
  double gamma = std::clamp(std::log(110.0 / 255) / std::log(mean / 255), 0.3, 1.0);
  cv::Mat lut(1, 256, CV_8U);
  for (int i = 0; i < 256; ++i)
    lut.at<uchar>(i) = cv::saturate_cast<uchar>(255 * std::pow(i / 255.0, gamma));
  cv::LUT(ch[0], lut, ch[0]);
  auto clahe = cv::createCLAHE(2.0, cv::Size(4, 4));
  clahe->apply(ch[0], ch[0]);
  cv::merge(ch, ycc);
  cv::Mat out;
  cv::cvtColor(ycc, out, cv::COLOR_YCrCb2BGR);
  return out;
}

cv::Mat ToBgr(const cv::Mat& image) {
  if (image.empty()) throw Error(ErrorCode::kBadImage, "图像为空 / empty image");
  if (image.depth() != CV_8U)
    throw Error(ErrorCode::kInvalidArgument,
                "frames must be 8-bit (got depth " + std::to_string(image.depth()) + ")");
  if (image.channels() == 3) return image;
  cv::Mat out;
  if (image.channels() == 1)
    cv::cvtColor(image, out, cv::COLOR_GRAY2BGR);  // grey or IR camera
  else if (image.channels() == 4)
    cv::cvtColor(image, out, cv::COLOR_BGRA2BGR);
  else
    throw Error(ErrorCode::kInvalidArgument, "frames must have 1, 3 or 4 channels");
  return out;
}

std::vector<DetectedFace> FaceEngine::Complete(const cv::Mat& work,
                                               const std::vector<FaceBox>& boxes,
                                               cv::Point2f offset, const std::string& found_by) {
  std::vector<DetectedFace> faces;
  for (const auto& b : boxes) {
    DetectedFace f;
    f.found_by = found_by;
    f.landmarks = landmarker_.Detect(work, b.box, options_.refine_landmarks);
    Points5 pts = ToPoints5(f.landmarks);
    f.aligned = AlignFace(work, pts);
    if (MeanBrightness(f.aligned) < options_.dark_level)
      f.aligned = NormalizeIllumination(f.aligned);
    f.det = b;
    f.det.box.x -= offset.x;
    f.det.box.y -= offset.y;
    for (auto& p : f.landmarks) p -= offset;
    f.points = ToPoints5(f.landmarks);
    faces.push_back(std::move(f));
  }
  return faces;
}

std::vector<DetectedFace> FaceEngine::Detect(const cv::Mat& input) {
  const cv::Mat bgr = ToBgr(input);
  auto boxes = detector_.Detect(bgr);
  // A box taller than the image means a tight crop: the detector saw only part of
  // the face's context, and the padded pass boxes it better.
  auto fills_image = [&](const std::vector<FaceBox>& b) {
    return b.size() == 1 && b[0].box.height > 0.9f * bgr.rows;
  };
  // Small images are usually crops or enrolment photos, where a tight crop may also
  // produce a confident but wrong small box (an eye, a nostril); they get the padded
  // pass too, and the more confident result wins.
  const bool small = std::max(bgr.cols, bgr.rows) <= 400;
  if (!options_.fallbacks || (!boxes.empty() && !fills_image(boxes) && !small))
    return Complete(bgr, boxes, {0, 0}, "plain");

  cv::Mat work = bgr;
  std::string how = "plain";
  if ((boxes.empty() || fills_image(boxes)) && MeanBrightness(bgr) < options_.dark_level) {
    work = NormalizeIllumination(bgr);
    auto enhanced = detector_.Detect(work);
    if (!enhanced.empty()) boxes = std::move(enhanced), how = "enhanced";
  }
  const int px = cvRound(bgr.cols * 0.3), py = cvRound(bgr.rows * 0.3);
  cv::Mat padded;
  cv::copyMakeBorder(work, padded, py, py, px, px, cv::BORDER_CONSTANT, cv::Scalar::all(0));
  const cv::Point2f offset(static_cast<float>(px), static_cast<float>(py));
  const std::string padded_how = how == "enhanced" ? "enhanced+padded" : "padded";
  auto pb = detector_.Detect(padded);
  // The padded pass wins when the plain one found nothing usable, when it is clearly
  // more confident, or when it is about as confident about a much larger face (in a
  // tight crop the real face is the large one).
  auto padded_wins = [&] {
    if (pb.empty()) return false;
    if (boxes.empty() || fills_image(boxes)) return true;
    return pb[0].score > boxes[0].score + 0.05f ||
           (pb[0].score >= boxes[0].score - 0.05f && pb[0].box.height > 1.5f * boxes[0].box.height);
  };
  if (padded_wins()) return Complete(padded, pb, offset, padded_how);
  if (!boxes.empty()) return Complete(work, boxes, {0, 0}, how);
  pb = detector_.DetectOnce(padded, std::min(0.4f, options_.detector.score_threshold));
  std::erase_if(pb,
                [&](const FaceBox& f) { return f.box.height < options_.detector.min_face_size; });
  return Complete(padded, pb, offset, padded_how + "+low_threshold");
}

std::optional<DetectedFace> FaceEngine::DetectLargest(const cv::Mat& bgr) {
  auto faces = Detect(bgr);
  if (faces.empty()) return std::nullopt;
  auto it = std::max_element(faces.begin(), faces.end(), [](auto& a, auto& b) {
    return a.det.box.area() * a.det.score < b.det.box.area() * b.det.score;
  });
  return std::move(*it);
}

std::optional<DetectedFace> FaceEngine::DetectCentral(const cv::Mat& bgr) {
  auto faces = Detect(bgr);
  if (faces.empty()) return std::nullopt;
  const cv::Point2f centre(bgr.cols / 2.f, bgr.rows / 2.f);
  auto dist = [&](const DetectedFace& f) {
    return cv::norm(
        cv::Point2f(f.det.box.x + f.det.box.width / 2, f.det.box.y + f.det.box.height / 2) -
        centre);
  };
  auto it = std::min_element(faces.begin(), faces.end(),
                             [&](auto& a, auto& b) { return dist(a) < dist(b); });
  return std::move(*it);
}

std::optional<DetectedFace> FaceEngine::LocateInTightCrop(const cv::Mat& input,
                                                          const TightCropOptions& o) {
  const cv::Mat bgr = ToBgr(input);
  const int lo_side = std::min(bgr.cols, bgr.rows), hi_side = std::max(bgr.cols, bgr.rows);
  if (lo_side < o.min_side || hi_side > o.max_side ||
      float(hi_side) > o.max_aspect * float(lo_side))
    return std::nullopt;
  // Cameras centre the face in the crop, its box filling about 0.5-0.8 of the shorter side:
  // start from the central 3/4 square and re-draw the box from the points until it holds
  // still (a box far too large compresses the points, so one re-draw is not always enough).
  const float prior_side = o.prior_fill * float(lo_side);
  cv::Rect2f current((bgr.cols - prior_side) / 2.f, (bgr.rows - prior_side) / 2.f, prior_side,
                     prior_side);
  Landmarks68 lm = landmarker_.DetectOnce(bgr, current);
  cv::Rect2f box = BoxFromLandmarks(lm);
  for (int pass = 0; pass < o.max_passes && !box.empty(); ++pass) {
    if ((box & current).area() / (box | current).area() > 0.85f) break;
    current = box;
    lm = landmarker_.DetectOnce(bgr, current);
    box = BoxFromLandmarks(lm);
  }
  if (box.empty() || box.width < o.min_fill * float(lo_side)) return std::nullopt;
  const cv::Rect2f frame(0, 0, float(bgr.cols), float(bgr.rows));
  if ((box & frame).area() < o.min_inside * box.area()) return std::nullopt;
  const Points5 pts = ToPoints5(lm);
  // Upright face: eyes left to right, both above the nose, the nose above the mouth.
  const float eye_y = std::max(pts[0].y, pts[1].y);
  const float mouth_y = std::min(pts[3].y, pts[4].y);
  if (!(pts[0].x < pts[1].x && eye_y < pts[2].y && pts[2].y < mouth_y)) return std::nullopt;
  const float iod = float(cv::norm(pts[1] - pts[0]));
  if (!(iod > 4)) return std::nullopt;
  // The landmarker has no confidence output; its equivariance is the test. Moved by d,
  // a real face's points stay where they are, while on a non-face the network returns
  // its mean shape relative to the box, so the points move by d with it.
  const float d = o.probe_shift * box.width;
  const Points5 moved = ToPoints5(landmarker_.DetectOnce(bgr, box + cv::Point2f(d, d)));
  float drift = 0;
  for (size_t i = 0; i < pts.size(); ++i) drift += float(cv::norm(moved[i] - pts[i]));
  drift /= float(pts.size()) * iod;
  if (!(drift <= o.max_drift)) return std::nullopt;
  DetectedFace f;
  f.found_by = "crop";
  f.det.box = box;
  f.det.score = 1.f;
  f.landmarks = lm;
  f.points = pts;
  f.aligned = AlignFace(bgr, pts);
  if (MeanBrightness(f.aligned) < options_.dark_level) f.aligned = NormalizeIllumination(f.aligned);
  return f;
}

HeadPose FaceEngine::Pose(const cv::Mat& bgr, const DetectedFace& face, bool network) {
  if (pose_ && (network || options_.pose_network)) return pose_->Estimate(bgr, face.det.box);
  return PoseFromLandmarks(face.landmarks);
}

Quality FaceEngine::AssessQuality(const cv::Mat& input, const DetectedFace& face) {
  const cv::Mat bgr = ToBgr(input);
  float eyes = eyes_ ? eyes_->OpenProbability(bgr, face.landmarks) : -1.f;
  // Measured on the crop as the camera saw it, before any illumination normalisation,
  // so that a dark photo is reported as too dark.
  return MeasureQuality(AlignFace(bgr, face.points), face.points, face.det.box, Pose(bgr, face),
                        eyes);
}

EnginePool::EnginePool(std::shared_ptr<const ModelSet> models, size_t size, EngineOptions options) {
  for (size_t i = 0; i < std::max<size_t>(1, size); ++i) {
    engines_.push_back(std::make_unique<FaceEngine>(models, options));
    free_.push_back(engines_.back().get());
  }
}

EnginePool::Lease EnginePool::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return !free_.empty(); });
  FaceEngine* e = free_.back();
  free_.pop_back();
  return Lease(this, e);
}

void EnginePool::Release(FaceEngine* e) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(e);
  }
  cv_.notify_one();
}

EnginePool::Lease::~Lease() {
  if (engine_) pool_->Release(engine_);
}

}  // namespace anju::vision
