// The whole terminal in-process: registration, gallery sync, a restart, real LFW
// faces played as camera frames with the server cut off (recognition works the same
// offline, R3.1.2.7), the backlog uploaded once the server is back (R3.3.3.1), and the
// status page (R3.1.2.5).
#include "terminal/terminal.h"

#include <httplib.h>

#include <opencv2/imgcodecs.hpp>
#include <thread>

#include "door/logging_controller.h"
#include "fake_device_server.h"
#include "testing.h"
#include "vision/image.h"

namespace anju::terminal {
namespace {

using anju::testing::FakeDeviceServer;
using anju::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

template <class F>
bool Eventually(F cond, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return cond();
}

// A client of the terminal's status page that trusts its self-signed certificate.
std::unique_ptr<httplib::Client> StatusClient(const Terminal& t) {
  auto c = std::make_unique<httplib::Client>(t.status_url());
  c->set_ca_cert_path(t.status_cert_file().string());
  c->enable_server_certificate_verification(true);
  return c;
}

json GetJson(const Terminal& t, const std::string& path, int* status = nullptr) {
  auto r = StatusClient(t)->Get(path.c_str());
  if (!r) return json();
  if (status) *status = r->status;
  return json::parse(r->body);
}

class TerminalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      engine_ = std::shared_ptr<vision::FaceEngine>(vision::FaceEngine::Open());
    } catch (const Error& e) {
      std::printf("face models not available: %s\n", e.what());
    }
  }
  static void TearDownTestSuite() { engine_.reset(); }
  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "face models not installed (scripts/fetch-models)";
    lfw_ = testing::DataPath("lfw/lfw");
    if (lfw_.empty()) GTEST_SKIP() << "evaluation data 'lfw' not found";
    if (match::DefaultThresholdsPath().empty()) GTEST_SKIP() << "no thresholds file";
    dir_ = TempDir("terminal");
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  cv::Mat Lfw(const std::string& name, int i) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(lfw_ / name)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return vision::LoadImage(files.at(size_t(i) - 1));
  }
  std::vector<float> FeatureOf(const cv::Mat& image) {
    auto face = engine_->DetectLargest(image);
    EXPECT_TRUE(face);
    return engine_->Embed(*face).values;
  }
  // A camera directory: blank frames, each face for FRAMES frames with blanks between.
  fs::path Frames(const std::string& name, const std::vector<cv::Mat>& faces, int frames = 6) {
    const fs::path d = dir_ / name;
    fs::create_directories(d);
    int n = 0;
    auto put = [&](const cv::Mat& m) {
      char file[32];
      std::snprintf(file, sizeof file, "%04d.jpg", n++);
      cv::imwrite((d / file).string(), m);
    };
    const cv::Mat blank(250, 250, CV_8UC3, cv::Scalar(90, 100, 110));
    for (int i = 0; i < 3; ++i) put(blank);
    for (const auto& f : faces) {
      for (int i = 0; i < frames; ++i) put(f);
      for (int i = 0; i < 10; ++i) put(blank);
    }
    return d;
  }
  TerminalConfig Config(const fs::path& frames, const std::string& server_url,
                        const std::string& code = "") {
    json j = {{"data_dir", (dir_ / "data").string()},
              {"camera", "dir:" + frames.string() + "?fps=20"},
              {"name", "3号楼1单元"},
              {"status_listen", "127.0.0.1:0"},
              {"thresholds", match::DefaultThresholdsPath().string()},
              {"pipeline", {{"default_open_ms", 3000}}}};
    if (!server_url.empty()) j["server"] = {{"url", server_url}, {"poll_ms", 200}};
    if (!code.empty()) j["server"]["enrolment_code"] = code;
    return TerminalConfig::Parse(j.dump(), "test config");
  }
  TerminalParts Parts() {
    TerminalParts p;
    p.engine = engine_;
    p.register_retry = std::chrono::milliseconds(200);
    UploaderOptions u;
    u.idle_poll = std::chrono::milliseconds(100);
    u.backoff_initial = std::chrono::milliseconds(100);
    u.backoff_max = std::chrono::milliseconds(500);
    p.upload = u;
    SyncOptions s;
    s.poll_interval = std::chrono::milliseconds(200);
    s.backoff_initial = std::chrono::milliseconds(100);
    s.backoff_max = std::chrono::milliseconds(500);
    p.sync = s;
    return p;
  }

  static std::shared_ptr<vision::FaceEngine> engine_;
  fs::path lfw_, dir_;
};
std::shared_ptr<vision::FaceEngine> TerminalTest::engine_;

TEST_F(TerminalTest, RegistersSyncsRecognisesOfflineAndUploadsOnReconnect) {
  FakeDeviceServer server(engine_->model_version());
  server.Upsert("P-wen", "温*宝", {FeatureOf(Lfw("Wen_Jiabao", 1))}, {{"open_ms", 6000}});
  server.Upsert("P-old", "", {FeatureOf(Lfw("Jean_Chretien", 1))});
  server.Remove("P-old");
  const std::string code = server.NewEnrolmentCode();

  // 1. First start: registers with the one-time code and takes the gallery.
  {
    Terminal t(Config(Frames("idle", {}), server.url(), code), Parts());
    t.Start();
    ASSERT_TRUE(Eventually([&] { return t.state().gallery_version() == server.latest(); }));
    EXPECT_TRUE(t.state().registered());
    EXPECT_EQ(t.state().persons(), 1u);
    EXPECT_FALSE(t.state().index().Contains("P-old"));
    ASSERT_TRUE(Eventually([&] { return server.heartbeats() >= 1; }));
    t.Stop();
  }

  // 2. Restart with the server cut off: the stored gallery admits Wen, refuses a stranger.
  server.Stop();
  const auto wen = Lfw("Wen_Jiabao", 2), blix = Lfw("Hans_Blix", 2);
  {
    Terminal t(Config(Frames("visit", {wen, blix}), server.url()), Parts());
    t.Start();
    ASSERT_TRUE(t.WaitCameraEnded(std::chrono::seconds(60)));
    const auto st = t.pipeline().stats();
    EXPECT_EQ(st.decisions.count("open") ? st.decisions.at("open") : 0, 1u);
    EXPECT_GE(st.decisions.count("stranger") ? st.decisions.at("stranger") : 0, 1u);
    EXPECT_TRUE(dynamic_cast<door::LoggingDoorController&>(t.door()).released(0) ||
                st.latency_p50_ms > 0);
    // The status document while offline.
    const json s = GetJson(t, "/status.json");
    ASSERT_TRUE(s.is_object());
    EXPECT_EQ(s["gallery"]["persons"], 1);
    EXPECT_EQ(s["gallery"]["version"], server.latest());
    EXPECT_EQ(s["camera"]["state"], "ended");
    EXPECT_GE(s["outbox"]["count"].get<int>(), 2);
    EXPECT_EQ(s["server"]["state"], "offline");
    EXPECT_EQ(s["terminal"], "3号楼1单元");
    EXPECT_TRUE(s["pipeline"].contains("decisions"));
    EXPECT_GE(s["display"]["seq"].get<int>(), 2);
    std::printf("    status.json: %s\n", s.dump().substr(0, 600).c_str());
    int code_healthz = 0;
    const json h = GetJson(t, "/healthz", &code_healthz);
    EXPECT_EQ(code_healthz, 503);  // the camera has ended
    EXPECT_EQ(h["status"], "degraded");

    // 3. The server comes back: the backlog drains by itself, each record once.
    const auto backlog = t.outbox().Stats().count;
    server.Start();
    ASSERT_TRUE(Eventually([&] { return t.outbox().Stats().count == 0; }));
    const auto events = server.events();
    EXPECT_EQ(int64_t(events.size()), backlog);
    int opened = 0;
    for (const auto& e : events)
      if (e["kind"] == "access" && e["payload"].value("decision", "") == "open") {
        ++opened;
        EXPECT_EQ(e["payload"]["person"], "P-wen");
      }
    EXPECT_EQ(opened, 1);
    ASSERT_TRUE(
        Eventually([&] { return GetJson(t, "/status.json")["server"]["state"] == "online"; }));
    t.Stop();
  }
}

TEST_F(TerminalTest, StatusPageShowsTheResultAndPlatformNotices) {
  FakeDeviceServer server(engine_->model_version());
  server.Upsert("P-wen", "温*宝", {FeatureOf(Lfw("Wen_Jiabao", 1))});
  server.QueueCommand({{"id", "c-1"},
                       {"type", "notice"},
                       {"text_zh", "今晚停电检修"},
                       {"text_en", "Power maintenance tonight"}});
  Terminal t(Config(Frames("idle", {}), server.url(), server.NewEnrolmentCode()), Parts());
  t.Start();
  ASSERT_TRUE(Eventually([&] { return server.acked_commands().size() == 1; }));
  const json s = GetJson(t, "/status.json");
  ASSERT_EQ(s["notices"].size(), 1u);
  EXPECT_EQ(s["notices"][0]["text_zh"], "今晚停电检修");
  EXPECT_TRUE(
      Eventually([&] { return GetJson(t, "/status.json")["server"]["sync"]["commands"] == 1; }));
  ASSERT_EQ(t.status_url().rfind("https://", 0), 0u);
  auto c = StatusClient(t);
  auto page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  for (const char* text :
       {"请通行", "Please pass", "未识别", "请摘下口罩", "Please remove your mask", "/status.json"})
    EXPECT_NE(page->body.find(text), std::string::npos) << text;
  auto missing = c->Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  t.Stop();
}

TEST_F(TerminalTest, BadConfigIsRefusedBeforeAnythingStarts) {
  json j = {{"data_dir", (dir_ / "data").string()},
            {"camera", "dir:/nonexistent"},
            {"thresholds", (dir_ / "missing.json").string()}};
  TerminalParts p;
  p.engine = engine_;
  EXPECT_NE(anju::testing::CodeOf(
                [&] { Terminal t(TerminalConfig::Parse(j.dump(), "t"), std::move(p)); }),
            ErrorCode::kInternal);
}

}  // namespace
}  // namespace anju::terminal
