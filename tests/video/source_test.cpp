// FrameSource on real face images: URI forms, directory playback (order, pacing, a
// corrupt file skipped), video files written with cv::VideoWriter and read back, and
// reconnecting when the backing file or directory vanishes and comes back.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include <algorithm>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "testing.h"
#include "video/frame_source.h"
#include "video_test_support.h"
#include "vision/image.h"

namespace anju::video {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void ExpectInvalid(const std::string& uri) {
  try {
    FrameSource::Open(uri);
    ADD_FAILURE() << "accepted '" << uri << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << uri;
    EXPECT_NE(std::string(e.what()).find("bad video source"), std::string::npos) << e.what();
  }
}

TEST(SourceUriTest, RejectsMalformedUris) {
  for (const char* uri :
       {"", "ftp://host/x", "rtsp://", "dir:", "dir:/tmp?fps=abc", "dir:/tmp?fps=-1",
        "dir:/tmp?fps=1e9", "dir:/tmp?loop=yes", "dir:/tmp?speed=2", "dir:/tmp?fps", "/dev/video",
        "/dev/videoX", "/dev/video0?loop=1", "clip.avi?width=3", "file:", "file:?loop=1"}) {
    ExpectInvalid(uri);
  }
}

TEST(SourceUriTest, ParsesEachForm) {
  auto dev = ParseSourceUri("/dev/video2?width=640&height=480&fps=15");
  EXPECT_EQ(dev.kind, SourceKind::kDevice);
  EXPECT_EQ(dev.target, "/dev/video2");
  EXPECT_EQ(dev.width, 640);
  EXPECT_EQ(dev.height, 480);
  EXPECT_EQ(dev.fps, 15);

  auto rtsp = ParseSourceUri("rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode=unicast");
  EXPECT_EQ(rtsp.kind, SourceKind::kStream);
  EXPECT_EQ(rtsp.target, "rtsp://10.0.0.5:554/Streaming/Channels/101?transportmode=unicast");
  EXPECT_EQ(ParseSourceUri("http://cam.local/mjpg/video.mjpg").kind, SourceKind::kStream);

  auto file = ParseSourceUri("/var/clips/door.avi?loop=1&fps=12.5");
  EXPECT_EQ(file.kind, SourceKind::kFile);
  EXPECT_EQ(file.target, "/var/clips/door.avi");
  EXPECT_TRUE(file.loop);
  EXPECT_DOUBLE_EQ(file.fps, 12.5);
  EXPECT_EQ(ParseSourceUri("file:/a/b.mp4").kind, SourceKind::kFile);

  auto dir = ParseSourceUri("dir:/frames?fps=25&loop=1");
  EXPECT_EQ(dir.kind, SourceKind::kDirectory);
  EXPECT_EQ(dir.target, "/frames");
  EXPECT_EQ(dir.fps, 25);
  EXPECT_TRUE(dir.loop);

  auto tmp = anju::testing::TempDir("video-uri");
  auto plain = ParseSourceUri(tmp.string());  // an existing directory, default rate
  EXPECT_EQ(plain.kind, SourceKind::kDirectory);
  EXPECT_EQ(plain.fps, 10);
  fs::remove_all(tmp);
}

TEST(ReconnectPolicyTest, BacksOffExponentiallyWithACap) {
  ReconnectPolicy p{milliseconds(100), milliseconds(1000), 2.0};
  EXPECT_EQ(p.Delay(1), milliseconds(100));
  EXPECT_EQ(p.Delay(2), milliseconds(200));
  EXPECT_EQ(p.Delay(4), milliseconds(800));
  EXPECT_EQ(p.Delay(5), milliseconds(1000));
  EXPECT_EQ(p.Delay(500), milliseconds(1000));
}

// Copies of N real images as 000.jpg, 001.jpg … plus a corrupt 002b.jpg and a text file.
struct FrameDir {
  fs::path dir;
  std::vector<fs::path> originals;  // in play order
};

FrameDir MakeFrameDir(const fs::path& lfw, const std::string& name, size_t n) {
  FrameDir d;
  d.dir = anju::testing::TempDir(name);
  d.originals = testing::LfwImages(lfw, n);
  for (size_t i = 0; i < d.originals.size(); ++i) {
    char file[32];
    std::snprintf(file, sizeof file, "%03zu.jpg", i);
    fs::copy_file(d.originals[i], d.dir / file);
  }
  std::ofstream(d.dir / "002b.jpg") << "this is not a JPEG, just text with a .jpg name";
  std::ofstream(d.dir / "notes.txt") << "ignored";
  return d;
}

TEST(DirectorySourceTest, PlaysRealImagesInOrderAtTheRequestedRateAndSkipsACorruptOne) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FrameDir d = MakeFrameDir(lfw, "video-dir", 8);
  ASSERT_EQ(d.originals.size(), 8u);

  auto source = FrameSource::Open("dir:" + d.dir.string() + "?fps=20");
  std::vector<Frame> frames;
  while (auto f = source->Read(milliseconds(2000))) frames.push_back(std::move(*f));
  EXPECT_EQ(source->status().state, SourceState::kEnded);
  ASSERT_EQ(frames.size(), 8u);  // the corrupt file was skipped, the text file ignored
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].seq, i);
    cv::Mat expected = vision::LoadImage(d.originals[i]);
    ASSERT_EQ(frames[i].image.size(), expected.size());
    EXPECT_EQ(cv::norm(frames[i].image, expected, cv::NORM_INF), 0) << "frame " << i;
  }
  // 20 fps: frames 50 ms apart, on a schedule that does not drift.
  for (size_t i = 1; i < frames.size(); ++i) {
    double ms = MsBetween(frames[i - 1].captured, frames[i].captured);
    EXPECT_GT(ms, 30) << i;
    EXPECT_LT(ms, 150) << i;  // generous: other builds share the two cores
  }
  double total = MsBetween(frames.front().captured, frames.back().captured);
  EXPECT_GT(total, 7 * 50.0 - 10);
  EXPECT_LT(total, 7 * 50.0 + 100);
  auto status = source->status();
  EXPECT_EQ(status.frames, 8u);
  EXPECT_EQ(status.attempt, 0);
  fs::remove_all(d.dir);
}

TEST(DirectorySourceTest, LoopsAndReportsAMissingDirectoryUntilItAppears) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  FrameDir d = MakeFrameDir(lfw, "video-loop", 3);
  fs::path later = d.dir.string() + "-later";
  fs::remove_all(later);
  fs::rename(d.dir, later);

  SourceOptions options;
  options.reconnect = {milliseconds(20), milliseconds(80), 2.0};
  auto source = FrameSource::Open("dir:" + d.dir.string() + "?fps=0&loop=1", options);
  EXPECT_FALSE(source->Read(milliseconds(250)));
  auto status = source->status();
  EXPECT_EQ(status.state, SourceState::kReconnecting);
  EXPECT_GE(status.attempt, 2);
  EXPECT_LE(status.retry_in, milliseconds(80));
  EXPECT_NE(status.last_error.find("not a directory"), std::string::npos) << status.last_error;
  EXPECT_NE(Describe(status).find("reconnecting (attempt"), std::string::npos);

  fs::rename(later, d.dir);
  std::vector<Frame> frames;
  for (int i = 0; i < 7; ++i) {
    auto f = source->Read(milliseconds(2000));
    ASSERT_TRUE(f) << i;
    frames.push_back(std::move(*f));
  }
  EXPECT_EQ(source->status().state, SourceState::kConnected);
  EXPECT_EQ(source->status().attempt, 0);
  // Three good images per pass, played again and again.
  EXPECT_EQ(cv::norm(frames[0].image, frames[3].image, cv::NORM_INF), 0);
  EXPECT_EQ(cv::norm(frames[2].image, frames[5].image, cv::NORM_INF), 0);
  EXPECT_EQ(frames[6].seq, 6u);
  fs::remove_all(d.dir);
}

TEST(DirectorySourceTest, StopWakesAWaitingReader) {
  SourceOptions options;
  options.reconnect = {milliseconds(5000), milliseconds(5000), 2.0};
  auto source = FrameSource::Open("dir:/nonexistent/anju-frames", options);
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(100));
    source->Stop();
  });
  auto start = Clock::now();
  EXPECT_FALSE(source->Read(milliseconds(10'000)));
  EXPECT_LT(MsBetween(start, Clock::now()), 3000);
  stopper.join();
  EXPECT_EQ(source->status().state, SourceState::kStopped);
}

bool HaveFfmpeg() {
  for (auto b : cv::videoio_registry::getBackends()) {
    if (b == cv::CAP_FFMPEG) return true;
  }
  return false;
}

// Writes the images (resized to 256×256) as an MJPG AVI; returns the frames written.
std::vector<cv::Mat> WriteVideo(const fs::path& path, const std::vector<fs::path>& images) {
  cv::VideoWriter writer(path.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'),
                         25, cv::Size(256, 256));
  EXPECT_TRUE(writer.isOpened());
  std::vector<cv::Mat> written;
  for (const auto& p : images) {
    cv::Mat img;
    cv::resize(vision::LoadImage(p), img, cv::Size(256, 256));
    writer.write(img);
    written.push_back(img);
  }
  return written;
}

TEST(VideoFileSourceTest, ReadsBackAnMjpgFileOfRealFaces) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "OpenCV has no FFmpeg backend here";
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto dir = anju::testing::TempDir("video-file");
  auto written = WriteVideo(dir / "faces.avi", testing::LfwImages(lfw, 10));

  auto source = FrameSource::Open((dir / "faces.avi").string());
  EXPECT_EQ(source->uri().kind, SourceKind::kFile);
  std::vector<Frame> frames;
  while (auto f = source->Read(milliseconds(2000))) frames.push_back(std::move(*f));
  EXPECT_EQ(source->status().state, SourceState::kEnded);
  ASSERT_EQ(frames.size(), written.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].seq, i);
    ASSERT_EQ(frames[i].image.size(), written[i].size());
    ASSERT_EQ(frames[i].image.type(), CV_8UC3);
    // MJPG is lossy; the same face comes back, far closer than the neighbouring frame.
    double same = cv::norm(frames[i].image, written[i], cv::NORM_L1) / written[i].total();
    EXPECT_LT(same, 15) << i;
    if (i > 0) {
      double other = cv::norm(frames[i].image, written[i - 1], cv::NORM_L1) / written[i].total();
      EXPECT_GT(other, 3 * same) << i;
    }
  }
  fs::remove_all(dir);
}

TEST(VideoFileSourceTest, PacesAFileToTheRequestedRate) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "OpenCV has no FFmpeg backend here";
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto dir = anju::testing::TempDir("video-paced");
  WriteVideo(dir / "faces.avi", testing::LfwImages(lfw, 6));
  auto source = FrameSource::Open((dir / "faces.avi").string() + "?fps=40");
  std::vector<Frame> frames;
  while (auto f = source->Read(milliseconds(2000))) frames.push_back(std::move(*f));
  ASSERT_EQ(frames.size(), 6u);
  const double total = MsBetween(frames.front().captured, frames.back().captured);
  EXPECT_GT(total, 5 * 25.0 - 10);
  EXPECT_LT(total, 5 * 25.0 + 100);
  fs::remove_all(dir);
}

TEST(VideoFileSourceTest, ReconnectsWhenTheFileDisappearsAndReappears) {
  if (!HaveFfmpeg()) GTEST_SKIP() << "OpenCV has no FFmpeg backend here";
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto dir = anju::testing::TempDir("video-reconnect");
  const fs::path path = dir / "door.avi", away = dir / "door.avi.moved";
  WriteVideo(path, testing::LfwImages(lfw, 5));

  SourceOptions options;
  options.reconnect = {milliseconds(20), milliseconds(100), 2.0};
  auto source = FrameSource::Open("file:" + path.string() + "?loop=1", options);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(source->Read(milliseconds(2000))) << i;
  EXPECT_EQ(source->status().state, SourceState::kConnected);

  fs::rename(path, away);  // the end of the first pass cannot reopen it
  EXPECT_FALSE(source->Read(milliseconds(400)));
  auto status = source->status();
  EXPECT_EQ(status.state, SourceState::kReconnecting);
  EXPECT_GE(status.attempt, 2);
  EXPECT_LE(status.retry_in, milliseconds(100));
  EXPECT_NE(status.last_error.find("no such file"), std::string::npos) << status.last_error;

  fs::rename(away, path);
  auto frame = source->Read(milliseconds(3000));
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->seq, 5u);  // numbering continues across the reconnect
  status = source->status();
  EXPECT_EQ(status.state, SourceState::kConnected);
  EXPECT_EQ(status.attempt, 0);
  EXPECT_EQ(status.reconnects, 1u);
  EXPECT_FALSE(status.last_error.empty());  // kept for the status page
  fs::remove_all(dir);
}

TEST(VideoFileSourceTest, AFileWithoutFramesEndsWithAReason) {
  auto dir = anju::testing::TempDir("video-garbage");
  std::ofstream(dir / "broken.avi") << "RIFF but not really a video";
  auto source = FrameSource::Open((dir / "broken.avi").string());
  EXPECT_FALSE(source->Read(milliseconds(2000)));
  auto status = source->status();
  EXPECT_NE(status.state, SourceState::kConnected);
  EXPECT_FALSE(status.last_error.empty());
  fs::remove_all(dir);
}

TEST(VideoFileSourceTest, AMissingFileAtStartIsNotAnErrorButReconnecting) {
  SourceOptions options;
  options.reconnect = {milliseconds(10), milliseconds(20), 2.0};
  auto source = FrameSource::Open("/nonexistent/anju/clip.avi", options);
  EXPECT_FALSE(source->Read(milliseconds(60)));
  EXPECT_EQ(source->status().state, SourceState::kReconnecting);
  EXPECT_GE(source->status().attempt, 1);
}

}  // namespace
}  // namespace anju::video
