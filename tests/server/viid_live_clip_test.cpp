// Live view and clips, on a real in-process anju-server over real HTTPS with the
// real anju-capture code (capture::LivePreview, Capturer, EnqueueCapture, ViidUploader):
// live frames reach live.jpg / live.mjpeg and are never queued; a capture's clip goes
// through the durable outbox, is stored sealed, comes back frame by frame, is refused to a
// viewer and is deleted by retention with its capture.
#include <gtest/gtest.h>
#include <httplib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "capture/capturer.h"
#include "capture/live_preview.h"
#include "capture/viid_uploader.h"
#include "server/retention/retention.h"
#include "server_test_support.h"
#include "store/outbox.h"
#include "testing.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kDeviceId = "34020000001190000077";
constexpr const char* kPassword = "camera-pass-77";

std::vector<uint8_t> ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

cv::Mat Decode(const std::string& body) {
  return cv::imdecode(std::vector<uint8_t>(body.begin(), body.end()), cv::IMREAD_COLOR);
}

fs::path FirstPhoto(const fs::path& lfw, const std::string& person) {
  std::vector<fs::path> photos;
  for (const auto& e : fs::directory_iterator(lfw / person)) photos.push_back(e.path());
  std::sort(photos.begin(), photos.end());
  return photos.at(0);
}

class LiveClipTest : public ServerTest {
 protected:
  void AddCamera() {
    const auto r =
        Api("POST", "/api/v1/viid/devices", {{"id", kDeviceId}, {"password", kPassword}});
    ASSERT_EQ(r.status, 201) << r.body;
  }
  capture::ViidOptions Viid() const {
    capture::ViidOptions o;
    o.server_url = server_->url();
    o.device_id = kDeviceId;
    o.password = kPassword;
    o.ca_file = server_->tls_cert_file().string();
    return o;
  }
  httplib::Result Get(const std::string& path, const std::string& token = "") {
    httplib::Headers h =
        token.empty() ? AdminHeaders() : httplib::Headers{{"Authorization", "Bearer " + token}};
    return Raw("GET", path, "", h);
  }
};

// A 1920×1080 frame with PHOTO pasted at X.
cv::Mat Scene1080(const cv::Mat& photo, int x) {
  cv::Mat frame(1080, 1920, CV_8UC3, cv::Scalar(90, 100, 95));
  cv::Mat big;
  cv::resize(photo, big, {}, 1.6, 1.6, cv::INTER_LINEAR);
  big.copyTo(frame(cv::Rect(x, 300, big.cols, big.rows)));
  return frame;
}

TEST_F(LiveClipTest, LiveFramesArriveInMemoryAndAreNeverQueued) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  AddCamera();
  const cv::Mat photo = vision::LoadImage(FirstPhoto(lfw, "Jennifer_Aniston"));
  const std::string live = std::string("/api/v1/viid/devices/") + kDeviceId + "/live.jpg";
  EXPECT_EQ(Get(live)->status, 404);  // nothing sent yet

  capture::LivePreview preview(Viid());
  preview.Submit("door", capture::DownscaledJpeg(Scene1080(photo, 400), 640, 70));
  ASSERT_EQ(preview.SendPending(), 1u) << "the server took the frame (digest, unregistered)";
  auto r = Get(live);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Content-Type"), "image/jpeg");
  cv::Mat img = Decode(r->body);
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 640);
  EXPECT_EQ(img.rows, 360);
  // Memory only: nothing of it on disk.
  for (const auto& e : fs::recursive_directory_iterator(dir_))
    if (e.is_regular_file()) {
      const auto bytes = ReadBytes(e.path());
      EXPECT_EQ(std::search(bytes.begin(), bytes.end(), r->body.begin(), r->body.end()),
                bytes.end())
          << e.path();
    }

  // A viewer may not watch (photos.read); an operator may.
  const auto viewer = RoleToken({"viewer"});
  EXPECT_EQ(Get(live, viewer)->status, 403);
  EXPECT_EQ(Get(std::string("/api/v1/viid/devices/") + kDeviceId + "/live.mjpeg", viewer)->status,
            403);
  EXPECT_EQ(Get(live, RoleToken({"operator"}))->status, 200);

  // MJPEG: the current frame and the next one as they arrive, then the stream ends (max_s).
  preview.Submit("door", capture::DownscaledJpeg(Scene1080(photo, 900), 640, 70));
  std::thread sender([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    preview.SendPending();
  });
  auto cli = Client();
  std::string stream;
  std::string content_type;
  auto res = cli->Get(
      std::string("/api/v1/viid/devices/") + kDeviceId + "/live.mjpeg?max_s=2", AdminHeaders(),
      [&](const httplib::Response& resp) {
        content_type = resp.get_header_value("Content-Type");
        return resp.status == 200;
      },
      [&](const char* data, size_t n) {
        stream.append(data, n);
        return true;
      });
  sender.join();
  ASSERT_TRUE(res);
  EXPECT_EQ(content_type, "multipart/x-mixed-replace; boundary=anjuframe");
  std::vector<cv::Mat> frames;
  for (size_t at = 0; (at = stream.find("--anjuframe\r\n", at)) != std::string::npos;) {
    const size_t len_at = stream.find("Content-Length: ", at) + 16;
    const size_t len = std::stoul(stream.substr(len_at));
    const size_t body = stream.find("\r\n\r\n", at) + 4;
    frames.push_back(Decode(stream.substr(body, len)));
    at = body + len;
  }
  ASSERT_EQ(frames.size(), 2u) << stream.size() << " bytes";
  for (const auto& f : frames) EXPECT_EQ(f.cols, 640);
  // One audit record per request (not per frame).
  const auto audit =
      As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=view.photo&limit=1000");
  int mjpeg = 0;
  for (const auto& it : audit.body["items"])
    mjpeg += it.dump().find("live.mjpeg") != std::string::npos;
  EXPECT_EQ(mjpeg, 1) << audit.body;

  // Server down: sends fail quickly, nothing is kept or queued, and the camera thread's
  // Submit never waits.
  const capture::ViidOptions down = Viid();
  StopServer();
  capture::LivePreview gone(down);
  // Frames are encoded first so that only Submit itself is timed (encoding is slow on a
  // loaded machine and says nothing about waiting).
  std::vector<std::vector<uint8_t>> jpegs;
  for (int i = 0; i < 50; ++i)
    jpegs.push_back(capture::DownscaledJpeg(Scene1080(photo, 10 * i), 640, 70));
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& j : jpegs) gone.Submit("door", std::move(j));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_EQ(gone.SendPending(), 0u);
  EXPECT_EQ(gone.SendPending(), 0u);  // dropped, not retried
  EXPECT_EQ(gone.stats().failed, 1u);
  EXPECT_EQ(gone.stats().replaced, 49u);
}

TEST_F(LiveClipTest, ClipUploadedSealedServedAndRetained) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  AddCamera();
  std::unique_ptr<vision::FaceEngine> engine;
  {
    vision::EngineOptions o;
    o.fallbacks = false;
    engine = vision::FaceEngine::Open({}, o);
  }
  const cv::Mat photo = vision::LoadImage(FirstPhoto(lfw, "Jennifer_Aniston"));
  capture::CaptureOptions co;
  co.clip_fps = 5;
  co.clip_before_ms = 2000;
  co.clip_after_ms = 1000;
  co.clip_width = 640;
  capture::Capturer capturer(*engine, co, "door");
  // 1080p at 10 fps: empty for 2.5 s, the face walks for 2 s, empty for 1.5 s.
  std::vector<capture::Capture> caps;
  const auto base = video::Clock::now() - std::chrono::seconds(30);
  for (int i = 0; i < 60; ++i) {
    video::Frame f;
    f.image = i >= 25 && i < 45 ? Scene1080(photo, 200 + 40 * (i - 25))
                                : Scene1080(cv::Mat(250, 250, CV_8UC3, cv::Scalar(90, 100, 95)), 0);
    f.seq = uint64_t(i);
    f.captured = base + std::chrono::milliseconds(100 * i);
    for (auto& c : capturer.Process(f)) caps.push_back(std::move(c));
  }
  for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
  ASSERT_EQ(caps.size(), 1u);
  const auto& clip = caps[0].clip;
  ASSERT_GE(clip.size(), 10u);
  ASSERT_LE(clip.size(), 16u);
  for (const auto& f : clip) {
    EXPECT_GE(f.offset_ms, -2000);
    EXPECT_LE(f.offset_ms, 1000);
    EXPECT_EQ(f.size.width, 640);
  }
  EXPECT_TRUE(std::is_sorted(clip.begin(), clip.end(), [](const auto& a, const auto& b) {
    return a.offset_ms < b.offset_ms;
  }));

  // Through the durable outbox and the real uploader; captured (by the camera's clock) two
  // years ago, so that retention removes it below.
  const auto old = std::chrono::hours(24 * 730);
  caps[0].shot_time -= old;
  caps[0].appear_time -= old;
  caps[0].disappear_time -= old;
  auto outbox = store::Outbox::Open(dir_ / "capture-buffer.db", {});
  capture::EnqueueCapture(*outbox, caps[0], kDeviceId);
  size_t clip_bytes = 0;
  for (const auto& f : clip) clip_bytes += f.jpeg.size();
  std::printf("    clip: %zu frames, %zu bytes of JPEG (%zu base64) vs face %zu bytes\n",
              clip.size(), clip_bytes, (clip_bytes + 2) / 3 * 4, caps[0].face_jpeg.size());
  capture::ViidUploader up(*outbox, Viid());
  EXPECT_EQ(up.Drain(), 1u);

  const auto list = Api("GET", "/api/v1/captures");
  ASSERT_EQ(list.body["total"], 1) << list.body;
  const std::string id = list.body["items"][0]["id"];
  EXPECT_EQ(Api("GET", "/api/v1/captures/" + id).body["clip_frames"], clip.size());
  const auto c = Api("GET", "/api/v1/captures/" + id + "/clip");
  ASSERT_EQ(c.status, 200) << c.body;
  ASSERT_EQ(c.body["frames"].size(), clip.size());
  for (size_t n = 0; n < clip.size(); ++n) {
    EXPECT_EQ(c.body["frames"][n]["offset_ms"], clip[n].offset_ms);
    auto r = Get("/api/v1/captures/" + id + "/clip/" + std::to_string(n) + ".jpg");
    ASSERT_EQ(r->status, 200);
    const cv::Mat img = Decode(r->body);
    ASSERT_FALSE(img.empty());
    EXPECT_EQ(img.cols, 640);
  }
  // Stored sealed: no file under captures/ is a JPEG.
  size_t clip_files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "captures")) {
    if (!e.is_regular_file()) continue;
    clip_files += e.path().filename().string().find("-clip") != std::string::npos;
    const auto bytes = ReadBytes(e.path());
    ASSERT_GE(bytes.size(), 3u);
    EXPECT_FALSE(bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) << e.path();
  }
  EXPECT_EQ(clip_files, clip.size());

  // Unknown capture, unknown frame, a capture without a clip: 404. A viewer: 403.
  EXPECT_EQ(Get("/api/v1/captures/no-such-id/clip")->status, 404);
  EXPECT_EQ(Get("/api/v1/captures/" + id + "/clip/" + std::to_string(clip.size()) + ".jpg")->status,
            404);
  EXPECT_EQ(Get("/api/v1/captures/no-such-id/clip/0.jpg")->status, 404);
  capture::Capture plain = caps[0];
  plain.clip.clear();
  plain.shot_time += old;
  plain.appear_time += old;
  plain.disappear_time += old;
  capture::EnqueueCapture(*outbox, plain, kDeviceId);
  EXPECT_EQ(up.Drain(), 1u);
  const auto two = Api("GET", "/api/v1/captures");
  ASSERT_EQ(two.body["total"], 2);
  for (const auto& it : two.body["items"])
    if (it["id"] != id) {
      EXPECT_EQ(Get("/api/v1/captures/" + it["id"].get<std::string>() + "/clip")->status, 404);
    }
  const auto viewer = RoleToken({"viewer"});
  EXPECT_EQ(Get("/api/v1/captures/" + id + "/clip", viewer)->status, 403);
  EXPECT_EQ(Get("/api/v1/captures/" + id + "/clip/0.jpg", viewer)->status, 403);

  // Retention removes the clip files with their capture (the recent one stays).
  const auto wall_ms = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t t0 = wall_ms();
  const auto r = SysApi("POST", "/api/v1/viid/retention/run");
  const int64_t t1 = wall_ms();
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body["deleted"], 1);
  // Calendar months, as the event store's retention counts them (server/retention/retention.h), not
  // months of 30.44 days.
  EXPECT_GE(r.body["before_ms"].get<int64_t>(), MonthsBefore(t0, 12));
  EXPECT_LE(r.body["before_ms"].get<int64_t>(), MonthsBefore(t1, 12));
  EXPECT_EQ(Get("/api/v1/captures/" + id + "/clip")->status, 404);
  size_t left_clip = 0, left = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "captures"))
    if (e.is_regular_file()) {
      ++left;
      left_clip += e.path().filename().string().find("-clip") != std::string::npos;
    }
  EXPECT_EQ(left_clip, 0u);
  EXPECT_GE(left, 1u);
}

}  // namespace
}  // namespace anju::server::testing
