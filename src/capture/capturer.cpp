#include "capture/capturer.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "core/error.h"

namespace anju::capture {

namespace {

double Seconds(video::Clock::time_point a, video::Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::vector<uint8_t> Jpeg(const cv::Mat& image, int quality) {
  std::vector<uint8_t> out;
  cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, quality});
  return out;
}

void Check(bool ok, const std::string& what) {
  if (!ok) throw Error(ErrorCode::kInvalidArgument, "抓拍参数无效 / bad capture option: " + what);
}

}  // namespace

std::vector<vision::DetectedFace> SuppressContained(std::vector<vision::DetectedFace> faces) {
  std::sort(faces.begin(), faces.end(),
            [](const auto& a, const auto& b) { return a.det.box.area() > b.det.box.area(); });
  std::vector<vision::DetectedFace> kept;
  for (auto& f : faces) {
    bool inside = false;
    for (const auto& k : kept)
      inside = inside || (f.det.box & k.det.box).area() > 0.5f * f.det.box.area();
    if (!inside) kept.push_back(std::move(f));
  }
  return kept;
}

// Wall-clock times of frame times, all through one reading of the two clocks: converting
// each time with clocks read anew let two times of the same frame come out a few
// nanoseconds apart in either order (appear after shot).
struct WallTimes {
  std::chrono::system_clock::time_point wall = std::chrono::system_clock::now();
  video::Clock::time_point mono = video::Clock::now();
  std::chrono::system_clock::time_point operator()(video::Clock::time_point t) const {
    return wall - std::chrono::duration_cast<std::chrono::system_clock::duration>(mono - t);
  }
};

std::chrono::system_clock::time_point ToSystem(video::Clock::time_point t) {
  return WallTimes{}(t);
}

void Validate(const CaptureOptions& o) {
  Check(o.det_threshold > 0 && o.det_threshold < 1, "det_threshold must be in (0, 1)");
  Check(o.min_face >= 8 && o.min_face <= 2000, "min_face must be 8..2000 pixels");
  Check(o.tiles >= 0 && o.tiles <= 6, "tiles must be 0 (auto) .. 6");
  Check(o.jpeg_quality >= 1 && o.jpeg_quality <= 100, "jpeg_quality must be 1..100");
  Check(o.max_per_track >= 1 && o.max_per_track <= 1000, "max_per_track must be 1..1000");
  Check(o.interval_ms >= 0, "interval_ms must be >= 0");
  Check(o.extra_best >= 0 && o.extra_best <= 10, "extra_best must be 0..10");
  Check(o.crop_scale >= 1 && o.crop_scale <= 5, "crop_scale must be 1..5");
  Check(o.min_quality >= 0 && o.min_quality < 1, "min_quality must be in [0, 1)");
  Check(o.min_hits >= 1 && o.min_hits <= 100, "min_hits must be 1..100");
  Check(o.tracker.max_missed >= 0, "max_missed must be >= 0");
  Check(o.clip_fps >= 0 && o.clip_fps <= 30, "clip_fps must be 0 (off) .. 30");
  Check(o.clip_before_ms >= 0 && o.clip_before_ms <= 10000, "clip_before_ms must be 0..10000");
  Check(o.clip_after_ms >= 0 && o.clip_after_ms <= 10000, "clip_after_ms must be 0..10000");
  Check(o.clip_width >= 64 && o.clip_width <= 4096, "clip_width must be 64..4096");
  Check(o.clip_jpeg_quality >= 1 && o.clip_jpeg_quality <= 100, "clip_jpeg_quality must be 1..100");
}

Capturer::Capturer(vision::FaceEngine& engine, CaptureOptions options, std::string camera_id)
    : engine_(engine), options_(std::move(options)), camera_id_(std::move(camera_id)) {
  Validate(options_);
  vision::DetectorOptions d = engine_.detector().options();
  d.score_threshold = options_.det_threshold;
  d.min_face_size = options_.min_face;
  d.tiles = options_.tiles;
  engine_.detector().set_options(d);
  // Our own confirmation (min_hits) keeps the first frames of a track as candidates;
  // the tracker's would hand them out with id 0.
  video::TrackerOptions t = options_.tracker;
  t.min_hits = 1;
  tracker_ = video::FaceTracker(t);
}

void Capturer::Offer(TrackState& t, Candidate c) {
  const size_t keep = 1 + static_cast<size_t>(options_.extra_best);
  if (t.window.size() >= keep && c.score <= t.window.back().score) return;
  // Ties keep the earlier frame (stable insertion after equal scores).
  auto at = std::upper_bound(t.window.begin(), t.window.end(), c.score,
                             [](float s, const Candidate& x) { return s > x.score; });
  t.window.insert(at, std::move(c));
  if (t.window.size() > keep) t.window.pop_back();
}

void Capturer::Emit(int id, TrackState& t, std::vector<Capture>& out) {
  if (t.window.empty() || t.hits < options_.min_hits || t.captures >= options_.max_per_track ||
      t.window[0].score < options_.min_quality) {
    t.window.clear();
    return;
  }
  for (size_t r = 0; r < t.window.size(); ++r) {
    const Candidate& c = t.window[r];
    Capture cap;
    cap.camera_id = camera_id_;
    cap.track_id = id;
    cap.rank = static_cast<int>(r);
    cap.index = t.captures;
    cap.seq = c.seq;
    cap.box = c.box;
    cap.quality = c.quality;
    cap.frame_size = c.image.size();
    const float side = std::max(c.box.width, c.box.height) * options_.crop_scale;
    const cv::Point2f centre(c.box.x + c.box.width / 2, c.box.y + c.box.height / 2);
    cap.crop = cv::Rect(cvRound(centre.x - side / 2), cvRound(centre.y - side / 2), cvRound(side),
                        cvRound(side)) &
               cv::Rect(0, 0, c.image.cols, c.image.rows);
    if (cap.crop.area() > 0) cap.face_jpeg = Jpeg(c.image(cap.crop), options_.jpeg_quality);
    if (options_.full_frame) cap.frame_jpeg = Jpeg(c.image, options_.jpeg_quality);
    // The rank-0 capture's clip is encoded when its after-frames are in (Release).
    const WallTimes to_system;
    cap.shot_time = to_system(c.captured);
    cap.appear_time = to_system(t.first_seen);
    cap.disappear_time = to_system(t.last_seen);
    out.push_back(std::move(cap));
  }
  if (options_.clip_fps > 0 && !out.empty()) {
    // This emission's captures wait in pending_ for the frames after the best one.
    Pending p;
    p.best = t.window[0].captured;
    p.clip = std::move(t.window[0].clip);
    const size_t first = out.size() - t.window.size();
    p.captures.assign(std::make_move_iterator(out.begin() + long(first)),
                      std::make_move_iterator(out.end()));
    out.resize(first);
    pending_.push_back(std::move(p));
  }
  ++stats_.captures;
  ++t.captures;
  t.window.clear();
}

void Capturer::End(int id, std::vector<Capture>& out) {
  auto it = tracks_.find(id);
  if (it == tracks_.end()) return;
  if (it->second.hits >= options_.min_hits) ++stats_.tracks;
  Emit(id, it->second, out);
  tracks_.erase(it);
}

void Capturer::TakeSample(const video::Frame& frame, const cv::Mat& bgr) {
  const auto step = std::chrono::microseconds(1'000'000 / options_.clip_fps);
  if (!ring_.empty() && frame.captured - last_sample_ < step) return;
  last_sample_ = frame.captured;
  Sample s{frame.captured, bgr};
  if (bgr.cols > options_.clip_width) {
    const int h = std::max(1, cvRound(double(bgr.rows) * options_.clip_width / bgr.cols));
    cv::resize(bgr, s.image, cv::Size(options_.clip_width, h), 0, 0, cv::INTER_AREA);
  } else {
    s.image = bgr;  // frames are never overwritten by their source
  }
  const auto after = std::chrono::milliseconds(options_.clip_after_ms);
  for (auto& [id, t] : tracks_)
    if (!t.window.empty() && s.t > t.window[0].captured && s.t - t.window[0].captured <= after)
      t.window[0].clip.push_back(s);
  for (auto& p : pending_)
    if (s.t > p.best && s.t - p.best <= after) p.clip.push_back(s);
  ring_.push_back(std::move(s));
  while (!ring_.empty() &&
         frame.captured - ring_.front().t > std::chrono::milliseconds(options_.clip_before_ms))
    ring_.pop_front();
}

void Capturer::Release(video::Clock::time_point now, bool all, std::vector<Capture>& out) {
  const auto after = std::chrono::milliseconds(options_.clip_after_ms);
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!all && now - it->best < after) {
      ++it;
      continue;
    }
    Capture& best = it->captures.front();
    for (const Sample& s : it->clip) {
      ClipFrame f;
      f.offset_ms =
          int(std::chrono::duration_cast<std::chrono::milliseconds>(s.t - it->best).count());
      f.size = s.image.size();
      f.jpeg = Jpeg(s.image, options_.clip_jpeg_quality);
      best.clip.push_back(std::move(f));
    }
    for (auto& c : it->captures) out.push_back(std::move(c));
    it = pending_.erase(it);
  }
}

std::vector<Capture> Capturer::Process(const video::Frame& frame) {
  const auto t0 = video::Clock::now();
  ++stats_.frames;
  std::vector<vision::DetectedFace> faces = SuppressContained(engine_.Detect(frame.image));
  const auto t1 = video::Clock::now();
  stats_.detect_seconds += Seconds(t0, t1);
  stats_.faces += faces.size();

  const cv::Mat bgr = vision::ToBgr(frame.image);
  if (options_.clip_fps > 0) TakeSample(frame, bgr);
  std::vector<video::TrackInput> inputs;
  std::vector<FaceQuality> quality;
  for (const auto& f : faces) {
    if (std::max(f.det.box.width, f.det.box.height) < options_.min_face) continue;
    if (!options_.roi.Contains(f.det.box, bgr.size())) continue;
    quality.push_back(MeasureFace(bgr, f));
    inputs.push_back({f.det.box, quality.back().score});
  }
  stats_.faces_kept += inputs.size();

  std::vector<Capture> out;
  const video::TrackerUpdate u = tracker_.Update(frame, inputs);
  for (const auto& e : u.events)
    if (e.kind == video::TrackEvent::Kind::kEnded) End(e.track.id, out);
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int id = u.ids[i];
    if (id == 0) continue;
    auto [it, fresh] = tracks_.try_emplace(id);
    TrackState& t = it->second;
    if (fresh) t.first_seen = t.window_start = frame.captured;
    t.last_seen = frame.captured;
    ++t.hits;
    Candidate c{{}, quality[i].score, frame.seq, bgr, inputs[i].box, quality[i], frame.captured};
    if (options_.clip_fps > 0 && (t.window.empty() || c.score > t.window[0].score)) {
      // A new best frame (Offer keeps it first): the clip starts clip_before_ms earlier.
      for (const Sample& s : ring_)
        if (frame.captured - s.t <= std::chrono::milliseconds(options_.clip_before_ms))
          c.clip.push_back(s);
    }
    Offer(t, std::move(c));
    if (options_.interval_ms > 0 &&
        frame.captured - t.window_start >= std::chrono::milliseconds(options_.interval_ms) &&
        t.hits >= options_.min_hits) {
      Emit(id, t, out);
      t.window_start = frame.captured;
    }
  }
  if (!pending_.empty()) Release(frame.captured, false, out);
  stats_.total_seconds += Seconds(t0, video::Clock::now());
  return out;
}

std::vector<Capture> Capturer::Flush() {
  const auto t0 = video::Clock::now();
  std::vector<Capture> out;
  for (const auto& e : tracker_.Flush()) End(e.track.id, out);
  // Tracks the tracker never confirmed (cannot happen with min_hits = 1, kept for safety).
  while (!tracks_.empty()) End(tracks_.begin()->first, out);
  Release({}, true, out);  // end of the source: the clips end here
  ring_.clear();
  stats_.total_seconds += Seconds(t0, video::Clock::now());
  return out;
}

}  // namespace anju::capture
