// FaceEngine: the stages wired together (detect → landmarks → align → embed, plus
// liveness, pose and quality on demand). One engine is NOT thread-safe (cv::dnn::Net
// keeps per-run state); use one engine per worker thread, or borrow from an EnginePool.
#pragma once

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vision/attributes.h"
#include "vision/detector.h"
#include "vision/embedder.h"
#include "vision/landmarker.h"
#include "vision/liveness.h"
#include "vision/quality.h"

namespace anju::vision {

// Bumped whenever detection, landmarks, alignment or normalisation change what a
// feature looks like, so that cached evaluation features are recomputed.
constexpr int kEngineRevision = 4;

struct EngineOptions {
  DetectorOptions detector;
  EmbedderOptions embedder;
  LivenessOptions liveness;
  // Enable the hard-input fallbacks (see Detect); terminals on live video may turn
  // them off to keep a constant frame cost.
  bool fallbacks = true;
  bool refine_landmarks = true;
  // Images whose aligned face is darker than this get illumination normalisation.
  float dark_level = 80.f;
  // Quality uses the pose network (≈40 ms on one core) instead of landmark geometry
  // (free, coarser). Off by default: evaluators ask for the network explicitly.
  bool pose_network = false;
};

struct DetectedFace {
  FaceBox det;            // in the caller's image coordinates
  Landmarks68 landmarks;  // in the caller's image coordinates
  Points5 points;
  cv::Mat aligned;  // 112×112 BGR, illumination-normalised when it was dark
  // Which detection pass found it: plain, enhanced, padded, enhanced+padded,
  // padded+low_threshold, enhanced+padded+low_threshold.
  std::string found_by;
};

// When an image counts as a tight face crop (a snapshot camera's face image) that the
// landmarker can read without the detector (FaceEngine::LocateInTightCrop).
struct TightCropOptions {
  int min_side = 64;         // shorter side, pixels
  int max_side = 800;        // longer side: larger images are scenes, not crops
  float max_aspect = 1.6f;   // longer / shorter side
  float prior_fill = 0.75f;  // first landmark box / shorter side, centred
  int max_passes = 4;        // landmark runs re-drawing the box from the points
  float min_fill = 0.30f;    // face box (from the landmarks) / shorter side
  float min_inside = 0.85f;  // share of the face box inside the image
  // Landmarks must stay on the same image points when the box moves by probe_shift of its
  // side (both axes): a face holds them, a non-face lets them follow the box. Drift is the
  // mean 5-point distance over the inter-ocular distance.
  float probe_shift = 0.10f;
  float max_drift = 0.15f;
};

// 8-bit BGR view of a frame: grey and BGRA are converted, anything else is Error.
cv::Mat ToBgr(const cv::Mat& image);

class FaceEngine {
 public:
  FaceEngine(std::shared_ptr<const ModelSet> models, EngineOptions options = {});
  // Loads (and verifies) the models in DIR; defaults to core DefaultModelDir().
  static std::unique_ptr<FaceEngine> Open(const std::filesystem::path& model_dir = {},
                                          EngineOptions options = {});

  // Faces sorted by detector score. Fallback order when nothing is found (or only a
  // box that fills the whole image, as on tightly cropped photos):
  //   1. plain pass (tiled on large frames)
  //   2. dark image → gamma + CLAHE on the luminance, detect again
  //   3. pad the image by 30% per side (tight crops), detect again; small images
  //      (≤ 400 px) always get this pass and keep the more confident result
  //   4. padded with a lower threshold (profile faces score lower)
  // Accepts 8-bit BGR, grey (IR cameras) or BGRA; anything else is Error.
  std::vector<DetectedFace> Detect(const cv::Mat& image);
  // The most prominent face (largest box among confident ones), if any.
  std::optional<DetectedFace> DetectLargest(const cv::Mat& bgr);
  // The face whose centre is nearest the image centre (data sets such as LFW centre
  // the labelled person; other people may appear larger at the edges).
  std::optional<DetectedFace> DetectCentral(const cv::Mat& bgr);
  // The face of a tight crop located by the landmarker alone (no detector: 2-5 runs of the
  // 64×64 landmark network instead of two or more detector passes). Empty when the image is not
  // shaped like a crop, the face does not fill it, or the landmarks do not hold still
  // (not a face); the caller then falls back to Detect. found_by = "crop", det.score = 1.
  std::optional<DetectedFace> LocateInTightCrop(const cv::Mat& image,
                                                const TightCropOptions& options = {});

  Feature Embed(const DetectedFace& face) { return embedder_.Embed(face.aligned); }
  Feature Embed(const DetectedFace& face, bool flip_tta) {
    return embedder_.EmbedBatch({face.aligned}, flip_tta)[0];
  }
  float Liveness(const cv::Mat& image, const DetectedFace& face) {
    return liveness_.Score(ToBgr(image), face.det.box);
  }
  // Head pose from landmark geometry, or from the pose network when
  // options().pose_network is set (or `network` is true) and the model is present.
  HeadPose Pose(const cv::Mat& bgr, const DetectedFace& face, bool network = false);
  Quality AssessQuality(const cv::Mat& bgr, const DetectedFace& face);

  FaceDetector& detector() { return detector_; }
  Embedder& embedder() { return embedder_; }
  LivenessChecker& liveness() { return liveness_; }
  Landmarker& landmarker() { return landmarker_; }
  const std::string& model_version() const { return models_->feature_version(); }
  const EngineOptions& options() const { return options_; }
  const std::shared_ptr<const ModelSet>& models() const { return models_; }

 private:
  std::vector<DetectedFace> Complete(const cv::Mat& work, const std::vector<FaceBox>& boxes,
                                     cv::Point2f offset, const std::string& found_by);

  std::shared_ptr<const ModelSet> models_;
  EngineOptions options_;
  FaceDetector detector_;
  Landmarker landmarker_;
  Embedder embedder_;
  LivenessChecker liveness_;
  std::unique_ptr<PoseEstimator> pose_;
  std::unique_ptr<EyeStateClassifier> eyes_;
};

// Gamma + CLAHE on the luminance channel; used before detection on dark frames and
// on dark aligned crops (R3.1.4.1 night).
cv::Mat NormalizeIllumination(const cv::Mat& bgr);
float MeanBrightness(const cv::Mat& bgr);

// A fixed set of engines shared by worker threads. Acquire() blocks until one is free;
// the lease returns it on destruction. All engines share one ModelSet in memory.
class EnginePool {
 public:
  EnginePool(std::shared_ptr<const ModelSet> models, size_t size, EngineOptions options = {});

  class Lease {
   public:
    Lease(EnginePool* pool, FaceEngine* engine) : pool_(pool), engine_(engine) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), engine_(o.engine_) { o.engine_ = nullptr; }
    Lease(const Lease&) = delete;
    ~Lease();
    FaceEngine* operator->() { return engine_; }
    FaceEngine& operator*() { return *engine_; }

   private:
    EnginePool* pool_;
    FaceEngine* engine_;
  };
  Lease Acquire();
  size_t size() const { return engines_.size(); }

 private:
  void Release(FaceEngine* e);
  std::vector<std::unique_ptr<FaceEngine>> engines_;
  std::vector<FaceEngine*> free_;
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace anju::vision
