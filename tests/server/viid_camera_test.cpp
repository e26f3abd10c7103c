// GA/T 1400 cameras on the camera listener (--camera-listen, plain HTTP) of a real in-process
// anju-server: a digest client registers and uploads (docs/viid.md), a keepalive the server
// holds no registration for is told to register again, images given only as a StoragePath
// URL are fetched from the camera itself within the size and time limits, and repeated failed
// logins raise one camera_auth_failure alarm. The camera side is cpp-httplib, as in the field.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "crypto/bytes.h"
#include "protocol/viid.h"
#include "server/viid/auth_failures.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using nlohmann::json;
using namespace std::chrono_literals;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class CameraListenerTest : public ServerTest {
 protected:
  void Configure(ServerOptions& o) override { o.camera_listen = "127.0.0.1:0"; }

  void AddCamera(const std::string& id, const std::string& password) {
    const auto r = Api("POST", "/api/v1/viid/devices",
                       {{"id", id}, {"password", password}, {"place", "3号楼2单元"}});
    ASSERT_EQ(r.status, 201) << r.body;
  }

  // A camera as vendors' firmware speaks it: plain HTTP to the camera listener, HTTP Digest
  // answered by cpp-httplib itself.
  std::unique_ptr<httplib::Client> CameraClient(const std::string& id, const std::string& password,
                                                bool digest = true) {
    auto c = std::make_unique<httplib::Client>("127.0.0.1", server_->camera_port());
    c->set_connection_timeout(5);
    c->set_read_timeout(30);
    if (digest) c->set_digest_auth(id, password);
    return c;
  }

  static httplib::Result Post(httplib::Client& c, const char* path, const std::string& body,
                              const httplib::Headers& h = {}) {
    return c.Post(path, h, body, "application/VIID+JSON;charset=UTF-8");
  }

  static viid::ResponseStatus One(const httplib::Result& r) {
    const auto st = viid::ParseResponseStatus(r->body);
    EXPECT_EQ(st.size(), 1u);
    return st.at(0);
  }

  static std::string SystemBody(viid::SystemObject kind, const std::string& id) {
    return viid::MakeSystemObject(kind, id).dump();
  }

  // One face whose crop is IMAGE: Data when it is bytes, StoragePath when it is a URL.
  static json Face(const std::string& face_id, const std::string& device, const json& image) {
    return {{"FaceID", face_id},
            {"DeviceID", device},
            {"FaceAppearTime", viid::FormatTime(NowMs())},
            {"SubImageList", {{"SubImageInfoObject", json::array({image})}}}};
  }
  static json Faces(const std::vector<json>& faces) {
    return {{"FaceListObject", {{"FaceObject", faces}}}};
  }
};

// A real face photo (LFW), or the test is skipped like the other data-dependent ones.
std::string FacePhoto() {
  const fs::path p = anju::testing::DataPath("lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg");
  return p.empty() || !fs::exists(p) ? std::string() : ReadFile(p);
}

TEST_F(CameraListenerTest, PlainHttpDigestCameraRegistersUploadsAndKeepsAlive) {
  const std::string photo = FacePhoto();
  if (photo.empty()) GTEST_SKIP() << "LFW not found (set ANJU_DATA_DIR)";
  const std::string id = "31000000001190000011", password = "camera-pass-11";
  AddCamera(id, password);
  auto cam = CameraClient(id, password);
  auto r = Post(*cam, viid::kPathRegister, SystemBody(viid::SystemObject::kRegister, id));
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(One(r).status_code, viid::kOk);
  EXPECT_TRUE(Api("GET", "/api/v1/viid/devices").body["items"][0]["registered"].get<bool>());

  const json body = Faces({Face("F-PLAIN-1", id,
                                {{"Type", "11"},
                                 {"FileFormat", "Jpeg"},
                                 {"Data", crypto::ToBase64(crypto::AsBytes(photo))}})});
  r = Post(*cam, viid::kPathFaces, body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const auto st = viid::ParseResponseStatus(r->body);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].status_code, viid::kOk) << st[0].status_string;
  const auto caps = Api("GET", "/api/v1/captures");
  ASSERT_EQ(caps.body["total"], 1) << caps.body;
  EXPECT_EQ(caps.body["items"][0]["device_id"], id);
  EXPECT_EQ(caps.body["items"][0]["face_id"], "F-PLAIN-1");

  // After registering, a keepalive by User-Identify alone (no digest) from the same address.
  auto plain = CameraClient(id, password, false);
  r = Post(*plain, viid::kPathKeepalive, SystemBody(viid::SystemObject::kKeepalive, id),
           {{"User-Identify", id}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(One(r).status_code, viid::kOk);
}

TEST_F(CameraListenerTest, KeepaliveWithoutRegistrationIsToldToRegisterAgain) {
  const std::string id = "31000000001190000012", password = "camera-pass-12";
  AddCamera(id, password);
  const std::string ka = SystemBody(viid::SystemObject::kKeepalive, id);
  auto told_to_register = [&](const httplib::Result& r, const char* when) {
    ASSERT_TRUE(r) << when;
    EXPECT_EQ(r->status, 401) << when << ": " << r->body;
    // Not a digest challenge: the credentials were right, the registration is missing.
    EXPECT_FALSE(r->has_header("WWW-Authenticate")) << when;
    const auto st = One(r);
    EXPECT_EQ(st.status_code, viid::kInvalidOperation) << when;
    EXPECT_EQ(st.id, id) << when;
    EXPECT_EQ(st.request_url, viid::kPathKeepalive) << when;
    EXPECT_NE(st.status_string.find("重新注册"), std::string::npos) << st.status_string;
    EXPECT_NE(st.status_string.find("register again"), std::string::npos) << st.status_string;
  };

  // Never registered.
  auto cam = CameraClient(id, password);
  told_to_register(Post(*cam, viid::kPathKeepalive, ka), "never registered");

  // Registered: kept alive.
  auto r = Post(*cam, viid::kPathRegister, SystemBody(viid::SystemObject::kRegister, id));
  ASSERT_EQ(r->status, 200) << r->body;
  r = Post(*cam, viid::kPathKeepalive, ka);
  ASSERT_EQ(r->status, 200) << r->body;

  // The server restarts: it holds no registration any more, whatever the database said.
  StopServer();
  StartServer();
  EXPECT_FALSE(Api("GET", "/api/v1/viid/devices").body["items"][0]["registered"].get<bool>());
  cam = CameraClient(id, password);
  told_to_register(Post(*cam, viid::kPathKeepalive, ka), "after a restart");

  // Registering again is all it takes.
  r = Post(*cam, viid::kPathRegister, SystemBody(viid::SystemObject::kRegister, id));
  ASSERT_EQ(r->status, 200) << r->body;
  r = Post(*cam, viid::kPathKeepalive, ka);
  EXPECT_EQ(r->status, 200) << r->body;

  // Unregistered: told to register again too.
  r = Post(*cam, viid::kPathUnRegister, SystemBody(viid::SystemObject::kUnRegister, id));
  ASSERT_EQ(r->status, 200) << r->body;
  told_to_register(Post(*cam, viid::kPathKeepalive, ka), "after UnRegister");
}

TEST_F(CameraListenerTest, VendorKeyCaseIsAcceptedOverTheWire) {
  const std::string id = "31000000001190000013", password = "camera-pass-13";
  AddCamera(id, password);
  auto cam = CameraClient(id, password);
  const std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4};
  // The spelling of one vendor's firmware, all keys in other cases than the standard's.
  const json body = {
      {"FacelistObject",
       {{"Faceobject",
         json::array(
             {{{"faceID", "F-CASE-1"},
               {"deviceid", id},
               {"subImageList",
                {{"SubImageInfoobject",
                  json::array({{{"type", "11"}, {"data", crypto::ToBase64(jpeg)}}})}}}}})}}}};
  auto r = Post(*cam, viid::kPathFaces, body.dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(viid::ParseResponseStatus(r->body).at(0).status_code, viid::kOk) << r->body;
  EXPECT_EQ(Api("GET", "/api/v1/captures").body["total"], 1);
  // A key really missing: the answer names it and what was expected.
  r = Post(*cam, viid::kPathFaces, json{{"FaceListObject", {{"Faces", json::array()}}}}.dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  const auto st = One(r);
  EXPECT_NE(st.status_string.find("FaceListObject.FaceObject"), std::string::npos)
      << st.status_string;
  EXPECT_NE(st.status_string.find("expected an array"), std::string::npos) << st.status_string;
}

// The camera's own little web server with its pictures, on 127.0.0.1 like the camera's
// uploads in this test.
class CameraWebServer {
 public:
  explicit CameraWebServer(std::string photo) : photo_(std::move(photo)) {
    srv_.Get("/pic/face.jpg", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_content(photo_, "image/jpeg");
    });
    srv_.Get("/pic/huge.jpg", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      std::string huge(viid::kMaxImageBytes + 100, '\x11');
      huge[0] = '\xFF', huge[1] = '\xD8', huge[2] = '\xFF';
      res.set_content(huge, "image/jpeg");
    });
    // A byte every 200 ms: each read is quick, the whole is far beyond the time limit.
    srv_.Get("/pic/slow.jpg", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_chunked_content_provider(
          "image/jpeg", [this](size_t offset, httplib::DataSink& sink) {
            if (stop_ || offset >= 60) {
              sink.done();
              return true;
            }
            std::this_thread::sleep_for(200ms);
            const char b = offset < 3 ? "\xFF\xD8\xFF"[offset] : '\x22';
            return sink.write(&b, 1);
          });
    });
    srv_.Get("/pic/page.html", [this](const httplib::Request&, httplib::Response& res) {
      ++hits_;
      res.set_content("<html>not a picture</html>", "text/html");
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    for (int i = 0; i < 500 && !srv_.is_running(); ++i) std::this_thread::sleep_for(10ms);
  }
  ~CameraWebServer() {
    stop_ = true;
    srv_.stop();
    thread_.join();
  }
  std::string Url(const std::string& host, const std::string& path) const {
    return "http://" + host + ":" + std::to_string(port_) + path;
  }
  int hits() const { return hits_; }

 private:
  std::string photo_;
  httplib::Server srv_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> hits_{0};
};

TEST_F(CameraListenerTest, StoragePathImagesAreFetchedFromTheCameraOnlyWithinLimits) {
  const std::string photo = FacePhoto();
  if (photo.empty()) GTEST_SKIP() << "LFW not found (set ANJU_DATA_DIR)";
  const std::string id = "31000000001190000014", password = "camera-pass-14";
  AddCamera(id, password);
  CameraWebServer web(photo);
  auto url_image = [](const std::string& url) {
    return json{{"Type", "11"}, {"FileFormat", "Jpeg"}, {"StoragePath", url}};
  };
  const json body = Faces({
      Face("URL-OK", id, url_image(web.Url("127.0.0.1", "/pic/face.jpg"))),
      // Another host, a host name, another scheme: refused before any connection.
      Face("URL-OTHER-HOST", id, url_image(web.Url("127.0.0.2", "/pic/face.jpg"))),
      Face("URL-NAME", id, url_image(web.Url("localhost", "/pic/face.jpg"))),
      Face("URL-HTTPS", id, url_image("https://127.0.0.1/pic/face.jpg")),
      Face("URL-HUGE", id, url_image(web.Url("127.0.0.1", "/pic/huge.jpg"))),
      Face("URL-SLOW", id, url_image(web.Url("127.0.0.1", "/pic/slow.jpg"))),
      Face("URL-HTML", id, url_image(web.Url("127.0.0.1", "/pic/page.html"))),
      Face("URL-404", id, url_image(web.Url("127.0.0.1", "/pic/none.jpg"))),
  });
  auto cam = CameraClient(id, password);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = Post(*cam, viid::kPathFaces, body.dump());
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  ASSERT_EQ(r->status, 200) << r->body;
  std::map<std::string, viid::ResponseStatus> by_face;
  for (const auto& s : viid::ParseResponseStatus(r->body)) {
    std::printf("    %-15s %d %s\n", s.id.c_str(), s.status_code, s.status_string.c_str());
    by_face[s.id] = s;
  }
  ASSERT_EQ(by_face.size(), 8u) << r->body;
  EXPECT_EQ(by_face["URL-OK"].status_code, viid::kOk);
  auto refused = [&](const std::string& face, const std::string& needle) {
    const auto& s = by_face[face];
    EXPECT_EQ(s.status_code, viid::kInvalidJsonContent) << face;
    EXPECT_NE(s.status_string.find(needle), std::string::npos) << face << ": " << s.status_string;
    // Chinese first, then English.
    EXPECT_NE(s.status_string.find(" / "), std::string::npos) << s.status_string;
  };
  refused("URL-OTHER-HOST", "not on this camera");
  refused("URL-NAME", "must be the camera's IP address");
  refused("URL-HTTPS", "only http://");
  refused("URL-HUGE", "too large");
  refused("URL-SLOW", "timed out");
  refused("URL-HTML", "not a JPEG");
  refused("URL-404", "HTTP 404");
  // The slow picture was cut at the time limit (3 s), not read to its end (12 s).
  EXPECT_LT(took, 10s);
  // Only the camera's own pictures were asked for: the good one, huge, slow and html (a
  // missing path has no handler to count it).
  EXPECT_EQ(web.hits(), 4);

  // The fetched picture went through the intake and is stored as the capture's crop.
  const auto caps = Api("GET", "/api/v1/captures");
  ASSERT_EQ(caps.body["total"], 1) << caps.body;
  EXPECT_EQ(caps.body["items"][0]["face_id"], "URL-OK");
  const std::string cap = caps.body["items"][0]["id"];
  auto img = Raw("GET", "/api/v1/captures/" + cap + "/images/0", "", AdminHeaders());
  ASSERT_TRUE(img);
  ASSERT_EQ(img->status, 200);
  EXPECT_EQ(img->body, photo);
}

TEST_F(CameraListenerTest, RepeatedFailedLoginsRaiseOneAlarmAndActivityIsLogged) {
  // The server's log lines, seen through a sink added for this test.
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(2000);
  const auto previous = spdlog::default_logger();
  std::vector<spdlog::sink_ptr> sinks = previous->sinks();
  sinks.push_back(ring);
  auto logger = std::make_shared<spdlog::logger>("viid-camera-test", sinks.begin(), sinks.end());
  logger->set_level(spdlog::level::info);
  spdlog::set_default_logger(logger);
  struct Restore {
    std::shared_ptr<spdlog::logger> previous;
    ~Restore() { spdlog::set_default_logger(previous); }
  } restore{previous};

  const std::string id = "31000000001190000015", password = "camera-pass-15";
  AddCamera(id, password);
  auto alarms = [&] {
    const auto a = Api("GET", "/api/v1/alarms?type=camera_auth_failure");
    EXPECT_EQ(a.status, 200) << a.body;
    return a.body;
  };
  const std::string reg = SystemBody(viid::SystemObject::kRegister, id);
  // Exactly one failed login per call: the challenge answered once with a wrong password (a
  // cpp-httplib digest client would retry a refused answer up to five times by itself).
  auto wrong_login = [&] {
    auto c = CameraClient(id, "", false);
    auto r = Post(*c, viid::kPathRegister, reg);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 401);
    const auto challenge = viid::ParseChallenge(r->get_header_value("WWW-Authenticate"));
    const auto cred =
        viid::AnswerChallenge(challenge, id, "not-the-password", "POST", viid::kPathRegister, 1);
    r = Post(*c, viid::kPathRegister, reg, {{"Authorization", viid::FormatAuthorization(cred)}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
  };
  for (int i = 0; i < 4; ++i) wrong_login();
  EXPECT_EQ(alarms()["total"], 0);  // four are not yet "repeated"
  wrong_login();
  const json a = alarms();
  ASSERT_EQ(a["total"], 1) << a;
  EXPECT_EQ(a["items"][0]["severity"], "major");
  std::printf("    alarm: %s\n", a["items"][0]["description"].get<std::string>().c_str());
  EXPECT_NE(a["items"][0]["description"].get<std::string>().find(id), std::string::npos);
  // Ten more within the window, and a digest client retrying by itself: still one alarm.
  for (int i = 0; i < 10; ++i) wrong_login();
  auto retrying = CameraClient(id, "not-the-password");
  EXPECT_EQ(Post(*retrying, viid::kPathRegister, reg)->status, 401);
  EXPECT_EQ(alarms()["total"], 1);

  // The right password still works, and the activity is in the log.
  auto cam = CameraClient(id, password);
  ASSERT_EQ(Post(*cam, viid::kPathRegister, reg)->status, 200);
  ASSERT_EQ(
      Post(*cam, viid::kPathKeepalive, SystemBody(viid::SystemObject::kKeepalive, id))->status,
      200);
  const std::vector<uint8_t> jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 5, 6, 7};
  ASSERT_EQ(
      Post(*cam, viid::kPathFaces,
           Faces({Face("LOG-1", id, {{"Type", "11"}, {"Data", crypto::ToBase64(jpeg)}})}).dump())
          ->status,
      200);
  ASSERT_EQ(
      Post(*cam, viid::kPathUnRegister, SystemBody(viid::SystemObject::kUnRegister, id))->status,
      200);
  logger->flush();
  std::string log;
  for (const auto& line : ring->last_formatted()) log += line;
  for (const std::string& want : std::vector<std::string>{
           "digest login failed for camera '" + id + "'", "alarm raised",
           "camera " + id + " registered", "keepalive from camera " + id,
           "upload from camera " + id, "1 faces stored", "camera " + id + " unregistered"})
    EXPECT_NE(log.find(want), std::string::npos) << "not logged: " << want;
  EXPECT_NE(log.find("[warning]"), std::string::npos);
}

TEST(CameraAuthFailures, OneTripPerWindowForAnAddressOrACamera) {
  cameras::AuthFailureWatch w({5, 300'000, 4096});
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(w.Record("10.0.0.7", "CAM-1", i));
  auto trip = w.Record("10.0.0.7", "CAM-1", 4);
  ASSERT_TRUE(trip);  // both sides cross together: one trip naming both
  EXPECT_EQ(trip->address, "10.0.0.7");
  EXPECT_EQ(trip->camera, "CAM-1");
  EXPECT_EQ(trip->address_failures, 5);
  for (int i = 0; i < 20; ++i) EXPECT_FALSE(w.Record("10.0.0.7", "CAM-1", 10 + i));
  // Another camera guessed from the same address: the address is quiet, the camera trips.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(w.Record("10.0.0.7", "CAM-2", 100 + i));
  trip = w.Record("10.0.0.7", "CAM-2", 104);
  ASSERT_TRUE(trip);
  EXPECT_TRUE(trip->address.empty());
  EXPECT_EQ(trip->camera, "CAM-2");
  // Failures spread wider than the window never trip.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(w.Record("10.0.0.9", "", 1000 + i * 100'000));
  // A window after the alarm, a new burst trips again.
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(w.Record("10.0.0.7", "CAM-1", 400'000 + i));
  trip = w.Record("10.0.0.7", "CAM-1", 400'004);
  ASSERT_TRUE(trip);
  EXPECT_EQ(trip->address, "10.0.0.7");
  // A spray of addresses stays within the memory bound and still trips on one that repeats.
  cameras::AuthFailureWatch small({5, 300'000, 64});
  for (int i = 0; i < 10'000; ++i)
    small.Record("10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250), "", 5 + i);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(small.Record("10.9.9.9", "", 20'000 + i));
  EXPECT_TRUE(small.Record("10.9.9.9", "", 20'004));
}

}  // namespace
}  // namespace anju::server::testing
