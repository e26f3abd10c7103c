#include "video/face_tracker.h"

#include <algorithm>
#include <tuple>

#include "vision/detector.h"

namespace anju::video {
namespace {

cv::Rect2f Shifted(const cv::Rect2f& r, cv::Point2f d) {
  return {r.x + d.x, r.y + d.y, r.width, r.height};
}

cv::Point2f Centre(const cv::Rect2f& r) {
  return {r.x + r.width / 2, r.y + r.height / 2};
}

void KeepBest(Track& t, const Frame& frame, const TrackInput& in) {
  if (t.best_image.empty() || in.quality > t.best_quality) {
    t.best_quality = in.quality;
    t.best_image = frame.image;
    t.best_box = in.box;
    t.best_seq = frame.seq;
  }
}

}  // namespace

TrackerUpdate FaceTracker::Update(const Frame& frame, const std::vector<TrackInput>& faces) {
  TrackerUpdate out;
  out.ids.assign(faces.size(), 0);

  // Candidate pairs scored by the better of the overlap with the last box and with the
  // box moved by the track's velocity; greedy best-first assignment.
  std::vector<std::tuple<float, size_t, size_t>> pairs;
  for (size_t t = 0; t < tracks_.size(); ++t) {
    const cv::Rect2f predicted =
        Shifted(tracks_[t].box, motion_[t].velocity * static_cast<float>(tracks_[t].missed + 1));
    for (size_t f = 0; f < faces.size(); ++f) {
      const cv::Rect2f& box = faces[f].box;
      float score = std::max(vision::IoU(tracks_[t].box, box), vision::IoU(predicted, box));
      if (score < options_.min_iou) {
        // Fallback: a near centre and a similar size, ranked below every IoU match.
        const float w = std::max({predicted.width, box.width, 1.f});
        const float ratio = std::max(predicted.width, box.width) /
                            std::max(std::min(predicted.width, box.width), 1e-3f);
        const float shift = static_cast<float>(cv::norm(Centre(predicted) - Centre(box))) / w;
        if (ratio > 1.5f || shift >= options_.max_centre_shift) continue;
        score = options_.min_iou * (1.f - shift / options_.max_centre_shift) * 0.999f;
      }
      pairs.emplace_back(score, t, f);
    }
  }
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<int> face_track(faces.size(), -1);
  std::vector<bool> track_used(tracks_.size(), false);
  for (const auto& [iou, t, f] : pairs) {
    if (track_used[t] || face_track[f] >= 0) continue;
    track_used[t] = true;
    face_track[f] = static_cast<int>(t);
  }

  std::vector<TrackEvent> started;
  auto confirm = [&](Track& t) {
    if (!t.confirmed && t.hits >= options_.min_hits) {
      t.confirmed = true;
      ++confirmed_count_;
      started.push_back({TrackEvent::Kind::kStarted, t});
    }
  };

  for (size_t t = 0; t < tracks_.size(); ++t) {
    Track& track = tracks_[t];
    track.age++;
    if (!track_used[t]) {
      track.missed++;
      continue;
    }
  }
  for (size_t f = 0; f < faces.size(); ++f) {
    if (face_track[f] < 0) continue;
    Track& track = tracks_[face_track[f]];
    cv::Point2f step =
        (Centre(faces[f].box) - Centre(track.box)) / static_cast<float>(track.missed + 1);
    Motion& m = motion_[face_track[f]];
    m.velocity = track.hits == 1 ? step : m.velocity * 0.5f + step * 0.5f;
    track.box = faces[f].box;
    track.hits++;
    track.missed = 0;
    track.last_seq = frame.seq;
    track.last_seen = frame.captured;
    KeepBest(track, frame, faces[f]);
    confirm(track);
  }

  // End tracks that missed too long (before adding new ones, so ids stay ordered).
  for (size_t t = 0; t < tracks_.size();) {
    const Track& track = tracks_[t];
    bool expired =
        track.missed > options_.max_missed || (options_.max_gap.count() > 0 && track.missed > 0 &&
                                               frame.captured - track.last_seen > options_.max_gap);
    if (!expired) {
      ++t;
      continue;
    }
    if (track.confirmed) out.events.push_back({TrackEvent::Kind::kEnded, track});
    for (int& ft : face_track) {
      if (ft > static_cast<int>(t)) --ft;
    }
    tracks_.erase(tracks_.begin() + static_cast<std::ptrdiff_t>(t));
    motion_.erase(motion_.begin() + static_cast<std::ptrdiff_t>(t));
  }

  for (size_t f = 0; f < faces.size(); ++f) {
    if (face_track[f] >= 0) continue;
    Track track;
    track.id = next_id_++;
    track.box = faces[f].box;
    track.age = 1;
    track.hits = 1;
    track.first_seq = track.last_seq = frame.seq;
    track.first_seen = track.last_seen = frame.captured;
    KeepBest(track, frame, faces[f]);
    confirm(track);
    tracks_.push_back(std::move(track));
    motion_.push_back({});
    face_track[f] = static_cast<int>(tracks_.size() - 1);
  }
  for (size_t f = 0; f < faces.size(); ++f) {
    const Track& track = tracks_[face_track[f]];
    out.ids[f] = track.confirmed ? track.id : 0;
  }
  for (auto& e : started) out.events.push_back(std::move(e));
  return out;
}

TrackerUpdate FaceTracker::Update(const Frame& frame, const std::vector<vision::FaceBox>& faces,
                                  const std::vector<float>& quality) {
  std::vector<TrackInput> in;
  for (size_t i = 0; i < faces.size(); ++i) {
    in.push_back({faces[i].box, i < quality.size() ? quality[i] : faces[i].score});
  }
  return Update(frame, in);
}

TrackerUpdate FaceTracker::Update(const Frame& frame,
                                  const std::vector<vision::DetectedFace>& faces,
                                  const std::vector<float>& quality) {
  std::vector<TrackInput> in;
  for (size_t i = 0; i < faces.size(); ++i) {
    in.push_back({faces[i].det.box, i < quality.size() ? quality[i] : faces[i].det.score});
  }
  return Update(frame, in);
}

std::vector<TrackEvent> FaceTracker::Flush() {
  std::vector<TrackEvent> out;
  for (const Track& t : tracks_) {
    if (t.confirmed) out.push_back({TrackEvent::Kind::kEnded, t});
  }
  tracks_.clear();
  motion_.clear();
  return out;
}

}  // namespace anju::video
