// FaceTracker: stable ids for smoothly moving faces, new ids after a gap longer than
// the timeout, separate ids for two faces at once, the best frame kept, flicker ignored.
#include <gtest/gtest.h>

#include <set>

#include "video/face_tracker.h"

namespace anju::video {
namespace {

using std::chrono::milliseconds;
const std::vector<TrackInput> kNone;

class TrackerTest : public ::testing::Test {
 protected:
  Frame Next() {
    Frame f;
    f.image = cv::Mat(48, 64, CV_8UC3, cv::Scalar::all(static_cast<double>(seq_ % 200)));
    f.seq = seq_++;
    f.captured = start_ + milliseconds(40) * static_cast<int>(f.seq);
    return f;
  }
  uint64_t seq_ = 0;
  Clock::time_point start_ = Clock::now();
};

TEST_F(TrackerTest, KeepsTheIdOfASmoothlyMovingFaceAndEmitsOneStartAndOneEnd) {
  FaceTracker tracker;
  int id = 0, started = 0;
  for (int i = 0; i < 30; ++i) {
    auto u = tracker.Update(Next(), {TrackInput{{10.f + 8 * i, 20.f + 2 * i, 80, 80}, 0.5f}});
    ASSERT_EQ(u.ids.size(), 1u);
    if (i == 0) id = u.ids[0];
    EXPECT_EQ(u.ids[0], id) << "frame " << i;
    for (const auto& e : u.events) {
      EXPECT_EQ(e.kind, TrackEvent::Kind::kStarted);
      ++started;
    }
  }
  EXPECT_EQ(started, 1);
  ASSERT_EQ(tracker.tracks().size(), 1u);
  EXPECT_EQ(tracker.tracks()[0].hits, 30);
  EXPECT_EQ(tracker.tracks()[0].age, 30);
  EXPECT_EQ(tracker.confirmed_count(), 1u);
  auto ended = tracker.Flush();
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].kind, TrackEvent::Kind::kEnded);
  EXPECT_EQ(ended[0].track.id, id);
  EXPECT_TRUE(tracker.tracks().empty());
}

TEST_F(TrackerTest, FollowsAFastFaceBelowTheIouThreshold) {
  // 50 px per frame on an 80 px box: IoU with the previous box is only 0.23, below
  // min_iou; the centre-distance fallback and then the velocity prediction hold the id,
  // while a face appearing elsewhere in the same frames gets its own.
  FaceTracker tracker;
  std::set<int> ids, others;
  for (int i = 0; i < 8; ++i) {
    auto u = tracker.Update(
        Next(), {TrackInput{{10.f + 50 * i, 30, 80, 80}, 0}, TrackInput{{200, 300, 80, 80}, 0}});
    ids.insert(u.ids[0]);
    others.insert(u.ids[1]);
  }
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(others.size(), 1u);
  EXPECT_NE(*ids.begin(), *others.begin());
  EXPECT_EQ(tracker.confirmed_count(), 2u);
  // A box jumping two widths from the predicted place is somebody else.
  FaceTracker jump;
  jump.Update(Next(), {TrackInput{{100, 30, 80, 80}, 0}});
  jump.Update(Next(), {TrackInput{{100 + 160, 30, 80, 80}, 0}});
  EXPECT_EQ(jump.confirmed_count(), 2u);
}

TEST_F(TrackerTest, ShortDropoutKeepsTheIdALongGapStartsANewOne) {
  TrackerOptions o;
  o.max_missed = 3;
  FaceTracker tracker(o);
  const cv::Rect2f box(100, 100, 90, 90);
  int first = tracker.Update(Next(), {TrackInput{box, 0}}).ids[0];
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(tracker.Update(Next(), kNone).events.empty());
  EXPECT_EQ(tracker.Update(Next(), {TrackInput{box, 0}}).ids[0], first);  // missed 3: kept

  for (int i = 0; i < 3; ++i) EXPECT_TRUE(tracker.Update(Next(), kNone).events.empty());
  auto u = tracker.Update(Next(), kNone);  // 4th miss > max_missed
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(u.events[0].kind, TrackEvent::Kind::kEnded);
  EXPECT_EQ(u.events[0].track.id, first);
  EXPECT_EQ(u.events[0].track.hits, 2);

  u = tracker.Update(Next(), {TrackInput{box, 0}});
  EXPECT_NE(u.ids[0], first);
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(u.events[0].kind, TrackEvent::Kind::kStarted);
  EXPECT_EQ(tracker.confirmed_count(), 2u);  // two approaches, two decisions
}

TEST_F(TrackerTest, TimeGapEndsATrackAtALowFrameRate) {
  TrackerOptions o;
  o.max_missed = 100;
  o.max_gap = milliseconds(100);
  FaceTracker tracker(o);
  const cv::Rect2f box(10, 10, 50, 50);
  int first = tracker.Update(Next(), {TrackInput{box, 0}}).ids[0];
  Frame late = Next();
  late.captured += milliseconds(500);
  auto u = tracker.Update(late, {TrackInput{{300, 10, 50, 50}, 0}});
  ASSERT_EQ(u.events.size(), 2u);
  EXPECT_EQ(u.events[0].kind, TrackEvent::Kind::kEnded);
  EXPECT_EQ(u.events[0].track.id, first);
  EXPECT_EQ(u.events[1].kind, TrackEvent::Kind::kStarted);
}

TEST_F(TrackerTest, TwoSimultaneousFacesKeepSeparateIds) {
  FaceTracker tracker;
  int a = 0, b = 0;
  for (int i = 0; i < 20; ++i) {
    // Two people walking side by side towards the camera (boxes grow), listed in
    // alternating order as a detector sorted by score might.
    TrackInput left{{40.f + i, 60.f, 60.f + 2 * i, 60.f + 2 * i}, 0};
    TrackInput right{{260.f - i, 50.f, 60.f + 2 * i, 60.f + 2 * i}, 0};
    bool swap = i % 2 == 1;
    auto u = tracker.Update(Next(), swap ? std::vector{right, left} : std::vector{left, right});
    int l = u.ids[swap ? 1 : 0], r = u.ids[swap ? 0 : 1];
    if (i == 0) {
      a = l;
      b = r;
      EXPECT_EQ(u.events.size(), 2u);
    }
    EXPECT_NE(l, r);
    EXPECT_EQ(l, a) << i;
    EXPECT_EQ(r, b) << i;
  }
  EXPECT_EQ(tracker.confirmed_count(), 2u);  // anti-tailgating: two distinct people
}

TEST_F(TrackerTest, KeepsTheBestQualityFrame) {
  FaceTracker tracker;
  const std::vector<float> quality = {0.2f, 0.9f, 0.5f, 0.9f, 0.1f};
  std::vector<Frame> frames;
  for (size_t i = 0; i < quality.size(); ++i) {
    frames.push_back(Next());
    vision::FaceBox box{{50.f + i, 50, 70, 70}, 0.99f};
    tracker.Update(frames.back(), std::vector{box}, {quality[i]});
  }
  const Track& t = tracker.tracks().at(0);
  EXPECT_FLOAT_EQ(t.best_quality, 0.9f);
  EXPECT_EQ(t.best_seq, frames[1].seq);  // ties keep the earlier frame
  EXPECT_EQ(t.best_image.data, frames[1].image.data);
  EXPECT_EQ(t.best_box, cv::Rect2f(51, 50, 70, 70));

  // Without explicit quality the detector score is used.
  FaceTracker by_score;
  for (float s : {0.8f, 0.95f, 0.7f}) {
    by_score.Update(Next(), std::vector{vision::FaceBox{{10, 10, 60, 60}, s}});
  }
  EXPECT_FLOAT_EQ(by_score.tracks().at(0).best_quality, 0.95f);
}

TEST_F(TrackerTest, MinHitsIgnoresDetectorFlicker) {
  TrackerOptions o;
  o.min_hits = 3;
  o.max_missed = 1;
  FaceTracker tracker(o);
  // A one-frame false detection: no id, no events, not counted.
  auto u = tracker.Update(Next(), {TrackInput{{400, 10, 40, 40}, 0}});
  EXPECT_EQ(u.ids[0], 0);
  EXPECT_TRUE(u.events.empty());
  tracker.Update(Next(), kNone);
  EXPECT_TRUE(tracker.Update(Next(), kNone).events.empty());
  EXPECT_TRUE(tracker.tracks().empty());
  EXPECT_EQ(tracker.confirmed_count(), 0u);

  const cv::Rect2f box(100, 100, 80, 80);
  EXPECT_EQ(tracker.Update(Next(), {TrackInput{box, 0}}).ids[0], 0);
  EXPECT_EQ(tracker.Update(Next(), {TrackInput{box, 0}}).ids[0], 0);
  u = tracker.Update(Next(), {TrackInput{box, 0}});
  EXPECT_GT(u.ids[0], 0);
  ASSERT_EQ(u.events.size(), 1u);
  EXPECT_EQ(u.events[0].kind, TrackEvent::Kind::kStarted);
  EXPECT_EQ(u.events[0].track.hits, 3);
  EXPECT_EQ(tracker.confirmed_count(), 1u);
}

}  // namespace
}  // namespace anju::video
