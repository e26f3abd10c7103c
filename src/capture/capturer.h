// Capturer: the capture pipeline of one camera. Per frame: detect (tiled on large frames),
// keep faces inside the region of interest and above the minimum size, score quality,
// associate them with tracks (video::FaceTracker: IoU with a constant-velocity prediction,
// centre distance as the fallback), and keep each track's best frames. A track yields a
// capture when it ends (or, with an interval, the best of each interval while it lasts),
// at most max_per_track times: one person walking past gives one snapshot, not one per
// frame (R3.1.3.1, R3.1.3.2).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "capture/quality.h"
#include "capture/roi.h"
#include "video/face_tracker.h"
#include "video/frame_source.h"
#include "vision/engine.h"

namespace anju::capture {

struct CaptureOptions {
  float det_threshold = 0.7f;  // detector score threshold (sensitivity)
  int min_face = 40;           // pixels: smaller faces are ignored
  // Detector tiling: 0 = automatic (2×2 above 960 px wide), 1 = whole frame only,
  // N = N×N overlapping tiles plus the whole frame (small faces in 1080p).
  int tiles = 0;
  Roi roi;                // empty = whole frame; a face counts when its box centre is inside
  int jpeg_quality = 90;  // 1..100
  int max_per_track = 1;  // captures per track (person)
  // 0: capture each track once it ends (leaves, or is not seen for max_missed frames).
  // > 0: also capture the best frame of every interval while the track lasts (someone
  // lingering in view is reported without waiting for them to leave), up to max_per_track.
  int interval_ms = 0;
  int extra_best = 0;  // extra best frames sent with each capture (rank 1, 2, …)
  bool full_frame = false;
  float crop_scale = 2.0f;  // face crop side = box side × this (context for the server)
  float min_quality = 0.f;  // tracks whose best score is below are not captured
  int min_hits = 2;         // frames a track needs before it counts (detector flicker)
  video::TrackerOptions tracker = {.min_iou = 0.3f, .max_centre_shift = 0.75f, .max_missed = 4};
  // Clip of the best face (evidence for playback): frames sampled at clip_fps and
  // downscaled to clip_width, from clip_before_ms before the best frame to clip_after_ms
  // after it, sent with the rank-0 capture. Off (0) by default: it multiplies the upload
  // and storage per capture. With a clip, a capture leaves clip_after_ms after its best
  // frame at the earliest.
  int clip_fps = 0;
  int clip_before_ms = 2000;
  int clip_after_ms = 1000;
  int clip_width = 640;
  int clip_jpeg_quality = 70;
};

struct ClipFrame {
  int offset_ms = 0;  // relative to the best frame (negative = before)
  cv::Size size;
  std::vector<uint8_t> jpeg;
};

struct Capture {
  std::string camera_id;
  int track_id = 0;  // per camera, 1, 2, … never reused
  int rank = 0;      // 0 = the best frame of this capture, 1… = extra best frames
  int index = 0;     // 0 for the track's first capture, 1 for the second …
  uint64_t seq = 0;  // frame sequence number (video::Frame::seq)
  cv::Rect2f box;    // face box in the frame
  cv::Rect crop;     // the face crop's rectangle in the frame
  cv::Size frame_size;
  FaceQuality quality;
  std::chrono::system_clock::time_point shot_time, appear_time, disappear_time;
  std::vector<uint8_t> face_jpeg;   // the crop
  std::vector<uint8_t> frame_jpeg;  // the whole frame, when full_frame is set
  std::vector<ClipFrame> clip;      // rank 0 with clip_fps > 0: frames around the best one
};

struct CapturerStats {
  uint64_t frames = 0;
  uint64_t faces = 0;         // detected, before ROI / size filtering
  uint64_t faces_kept = 0;    // inside the ROI and large enough
  uint64_t tracks = 0;        // ended tracks that counted (min_hits)
  uint64_t captures = 0;      // rank-0 captures
  double detect_seconds = 0;  // time in detection + landmarks
  double total_seconds = 0;   // time in Process / Flush
};

class Capturer {
 public:
  // The engine belongs to this capturer's thread; its detector options are set from
  // OPTIONS (threshold, minimum size, tiles). Throws Error(kInvalidArgument) for bad options.
  Capturer(vision::FaceEngine& engine, CaptureOptions options, std::string camera_id = "");

  // One frame in; the captures it completes out (usually none).
  std::vector<Capture> Process(const video::Frame& frame);
  // Ends every track (end of a file, shutdown) and returns their captures.
  std::vector<Capture> Flush();

  const CapturerStats& stats() const { return stats_; }
  const CaptureOptions& options() const { return options_; }

 private:
  struct Sample {
    video::Clock::time_point t;
    cv::Mat image;  // downscaled to clip_width (shared, never written)
  };
  struct Candidate {
    std::vector<Sample> clip;  // sampled frames around this one (clip_fps > 0)
    float score = 0;
    uint64_t seq = 0;
    cv::Mat image;  // the frame (shared)
    cv::Rect2f box;
    FaceQuality quality;
    video::Clock::time_point captured;
  };
  struct TrackState {
    int hits = 0;
    int captures = 0;
    std::vector<Candidate> window;  // best first, at most 1 + extra_best
    video::Clock::time_point first_seen, last_seen, window_start;
  };
  // Captures waiting for the frames after their best one (clip_after_ms).
  struct Pending {
    std::vector<Capture> captures;
    video::Clock::time_point best;
    std::vector<Sample> clip;
  };
  void Offer(TrackState& t, Candidate c);
  void TakeSample(const video::Frame& frame, const cv::Mat& bgr);
  void Release(video::Clock::time_point now, bool all, std::vector<Capture>& out);
  void Emit(int id, TrackState& t, std::vector<Capture>& out);
  void End(int id, std::vector<Capture>& out);

  vision::FaceEngine& engine_;
  CaptureOptions options_;
  std::string camera_id_;
  video::FaceTracker tracker_;
  std::map<int, TrackState> tracks_;
  std::deque<Sample> ring_;  // the last clip_before_ms of sampled frames
  video::Clock::time_point last_sample_{};
  std::vector<Pending> pending_;
  CapturerStats stats_;
};

// Checks ranges (thresholds, sizes, JPEG quality …); Error(kInvalidArgument) naming the
// option otherwise.
void Validate(const CaptureOptions& options);

// Drops boxes lying mostly (> 50% of their area) inside a larger one: a tile of the tiled
// detector that cuts a face in two sees part of it as a smaller face, which IoU-based NMS
// keeps (measured: an extra track per person on 1280×720 frames).
std::vector<vision::DetectedFace> SuppressContained(std::vector<vision::DetectedFace> faces);

// steady_clock frame time → wall clock (for ShotTime and the like).
std::chrono::system_clock::time_point ToSystem(video::Clock::time_point t);

}  // namespace anju::capture
