// FaceTracker: gives each face a stable id across frames (greedy IoU association with a
// constant-velocity prediction, centre distance as the fallback), keeps each track's best-quality
// frame, and emits started / ended events so that a caller decides once per track (one person, one
// approach) and can count the distinct people passing (anti-tailgating, R3.2.2.2).
#pragma once

#include <opencv2/core.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

#include "video/frame_source.h"
#include "vision/engine.h"
#include "vision/types.h"

namespace anju::video {

struct TrackerOptions {
  float min_iou = 0.3f;  // a detection continues a track above this overlap …
  // … or, failing that, when its centre is within this fraction of the box width of
  // the predicted centre and the sizes differ by at most 1.5× (fast faces at low fps).
  float max_centre_shift = 0.75f;
  int max_missed = 5;  // a track ends after more consecutive frames without a match
  // Also end a track unseen for longer than this (0 = frames only); for low or
  // irregular frame rates such as the idle mode.
  std::chrono::milliseconds max_gap{0};
  // A track is confirmed (kStarted emitted, counted) after this many matched frames;
  // tracks that end earlier were detector flicker and emit nothing.
  int min_hits = 1;
};

struct TrackInput {
  cv::Rect2f box;
  float quality = 0.f;  // caller's score (higher = better), e.g. vision::Quality::score
};

struct Track {
  int id = 0;      // 1, 2, 3 … per tracker, never reused
  cv::Rect2f box;  // last matched box
  int age = 0;     // frames since the track started (matched or not)
  int hits = 0;    // frames with a matched detection
  int missed = 0;  // consecutive frames without one
  bool confirmed = false;
  uint64_t first_seq = 0, last_seq = 0;
  Clock::time_point first_seen, last_seen;
  // Best frame so far by TrackInput::quality (ties keep the earlier frame).
  float best_quality = 0.f;
  cv::Mat best_image;  // the whole frame (shared, not copied: sources never reuse buffers)
  cv::Rect2f best_box;
  uint64_t best_seq = 0;
};

struct TrackEvent {
  enum class Kind { kStarted, kEnded };
  Kind kind;
  Track track;  // snapshot at the event
};

struct TrackerUpdate {
  std::vector<int> ids;  // per input, in input order: its track id (0 = not confirmed yet)
  std::vector<TrackEvent> events;  // ended tracks first, then started ones
};

class FaceTracker {
 public:
  explicit FaceTracker(TrackerOptions options = {}) : options_(options) {}

  TrackerUpdate Update(const Frame& frame, const std::vector<TrackInput>& faces);
  // Conveniences: quality per face (empty = the detector score).
  TrackerUpdate Update(const Frame& frame, const std::vector<vision::FaceBox>& faces,
                       const std::vector<float>& quality = {});
  TrackerUpdate Update(const Frame& frame, const std::vector<vision::DetectedFace>& faces,
                       const std::vector<float>& quality = {});
  // Ends every track (source ended, door closed): kEnded events of confirmed tracks.
  std::vector<TrackEvent> Flush();

  // Live tracks, confirmed or not.
  const std::vector<Track>& tracks() const { return tracks_; }
  // Distinct confirmed tracks so far; the difference of two readings counts the
  // people who appeared in between.
  uint64_t confirmed_count() const { return confirmed_count_; }
  const TrackerOptions& options() const { return options_; }

 private:
  struct Motion {
    cv::Point2f velocity;  // box centre per frame, smoothed
  };
  TrackerOptions options_;
  std::vector<Track> tracks_;
  std::vector<Motion> motion_;  // parallel to tracks_
  int next_id_ = 1;
  uint64_t confirmed_count_ = 0;
};

}  // namespace anju::video
