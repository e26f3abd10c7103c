// The GA/T 1400 uploader against a real HTTP server (cpp-httplib on loopback) that
// demands digest authentication at registration and checks the Faces JSON: a server
// that is down and then comes up receives every capture exactly once; wrong credentials
// are refused and nothing is lost.
#include <gtest/gtest.h>

#include <httplib.h>
#include <openssl/evp.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "capture/viid_uploader.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/viid.h"
#include "store/outbox.h"
#include "testing.h"
#include "vision/image.h"

namespace anju::capture {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Md5(const std::string& s) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), out, &n, EVP_md5(), nullptr);
  return crypto::ToHex({out, n});
}

constexpr const char* kDevice = "34020000001190000001";
constexpr const char* kRealm = "anju-test";
constexpr const char* kNonce = "5b1f0c2a9e";

// A VIID server: Register needs digest auth (user = DeviceID), Faces needs a prior
// registration; every face's FaceID is recorded with its decoded images.
class TestViidServer {
 public:
  explicit TestViidServer(std::string password) : password_(std::move(password)) {
    server_.Post("/VIID/System/Register",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   std::lock_guard lock(mu_);
                   ++register_calls;
                   if (!CheckDigest(req)) {
                     res.status = 401;
                     res.set_header("WWW-Authenticate", std::string("Digest realm=\"") + kRealm +
                                                            "\", qop=\"auth\", nonce=\"" + kNonce +
                                                            "\", algorithm=MD5");
                     return;
                   }
                   const json j = json::parse(req.body);
                   registered_.insert(j.at("RegisterObject").at("DeviceID").get<std::string>());
                   Status(res, "/VIID/System/Register", j["RegisterObject"]["DeviceID"]);
                 });
    server_.Post("/VIID/System/Keepalive", [this](const httplib::Request& req,
                                                  httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++keepalives;
      Status(res, "/VIID/System/Keepalive", json::parse(req.body)["KeepaliveObject"]["DeviceID"]);
    });
    server_.Post("/VIID/Faces", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      if (!registered_.count(req.get_header_value("User-Identify"))) {
        res.status = 401;
        return;
      }
      // The server's own GA/T 1400 parser (src/protocol/viid.h) accepts every face.
      const auto parsed = protocol::viid::ParseFaceList(req.body);
      EXPECT_TRUE(parsed.errors.empty()) << parsed.errors.at(0).message;
      const json j = json::parse(req.body);
      EXPECT_EQ(parsed.list.faces.size(), j["FaceListObject"]["FaceObject"].size());
      json list = json::array();
      for (const auto& f : j.at("FaceListObject").at("FaceObject")) {
        const std::string id = f.at("FaceID");
        EXPECT_EQ(id.size(), 48u);
        EXPECT_EQ(f.at("DeviceID"), kDevice);
        EXPECT_LT(f.at("LeftTopX").get<int>(), f.at("RightBtmX").get<int>());
        for (const auto& s : f.at("SubImageList").at("SubImageInfoObject")) {
          EXPECT_TRUE(s.at("Type") == "11" || s.at("Type") == "14");
          EXPECT_EQ(s.at("FileFormat"), "Jpeg");
          EXPECT_EQ(s.at("ShotTime").get<std::string>().size(), 14u);
          const auto jpeg = crypto::FromBase64(s.at("Data").get<std::string>());
          const cv::Mat img = vision::DecodeImage(jpeg);
          EXPECT_EQ(img.cols, s.at("Width").get<int>());
          EXPECT_EQ(img.rows, s.at("Height").get<int>());
          images[id].push_back(s.at("Type"));
        }
        ++received[id];
        list.push_back({{"RequestURL", "/VIID/Faces"},
                        {"StatusCode", "0"},
                        {"StatusString", "OK"},
                        {"Id", id},
                        {"LocalTime", "20261126080000"}});
      }
      res.set_content(json{{"ResponseStatusListObject", {{"ResponseStatusObject", list}}}}.dump(),
                      "application/VIID+JSON");
    });
  }
  ~TestViidServer() { Stop(); }

  void Start(int port) {
    ASSERT_TRUE(server_.bind_to_port("127.0.0.1", port));
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int StartAnyPort() {
    const int port = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return port;
  }
  void Stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  std::mutex mu_;
  std::map<std::string, int> received;
  std::map<std::string, std::vector<std::string>> images;
  int register_calls = 0, keepalives = 0, digest_ok = 0;

 private:
  static void Status(httplib::Response& res, const char* url, const json& id) {
    res.set_content(json{{"ResponseStatusObject",
                          {{"RequestURL", url},
                           {"StatusCode", "0"},
                           {"StatusString", "OK"},
                           {"Id", id},
                           {"LocalTime", "20261126080000"}}}}
                        .dump(),
                    "application/VIID+JSON");
  }
  bool CheckDigest(const httplib::Request& req) {
    const std::string h = req.get_header_value("Authorization");
    if (h.rfind("Digest ", 0) != 0) return false;
    std::map<std::string, std::string> p;
    std::regex kv(R"re((\w+)=(?:"([^"]*)"|([^,\s]*)))re");
    for (auto it = std::sregex_iterator(h.begin() + 7, h.end(), kv); it != std::sregex_iterator();
         ++it)
      p[(*it)[1]] = (*it)[2].matched ? (*it)[2].str() : (*it)[3].str();
    if (p["username"] != kDevice || p["realm"] != kRealm || p["nonce"] != kNonce ||
        p["qop"] != "auth" || p["uri"] != req.path)
      return false;
    const std::string ha1 = Md5(p["username"] + ":" + kRealm + ":" + password_);
    const std::string ha2 = Md5(req.method + ":" + p["uri"]);
    const bool ok = Md5(ha1 + ":" + kNonce + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2) ==
                    p["response"];
    digest_ok += ok;
    return ok;
  }
  std::string password_;
  std::set<std::string> registered_;
  httplib::Server server_;
  std::thread thread_;
};

Capture FakeCapture(int i) {
  // Real JPEGs (a gradient), not face pictures: the uploader does not look at them.
  cv::Mat face(120 + i, 100, CV_8UC3), frame(360, 640, CV_8UC3);
  cv::randu(face, 0, 255);
  cv::randu(frame, 0, 255);
  Capture c;
  c.track_id = i + 1;
  c.box = cv::Rect2f(10.f + i, 20, 60, 60);
  c.crop = cv::Rect(0, 0, 100, 120 + i);
  c.frame_size = frame.size();
  c.shot_time = c.appear_time = c.disappear_time = std::chrono::system_clock::now();
  cv::imencode(".jpg", face, c.face_jpeg);
  if (i % 2 == 0) cv::imencode(".jpg", frame, c.frame_jpeg);
  return c;
}

// A port nobody listens on (bound, read and closed again): the server is "down".
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

TEST(ViidUploaderTest, ServerDownThenUpReceivesEveryCaptureOnce) {
  auto dir = testing::TempDir("viid-upload");
  auto outbox = store::Outbox::Open(dir / "capture.db");
  std::set<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.insert(EnqueueCapture(*outbox, FakeCapture(i), kDevice));
  ASSERT_EQ(ids.size(), 7u);

  const int port = FreePort();
  ViidOptions o;
  o.server_url = "http://127.0.0.1:" + std::to_string(port);
  o.device_id = kDevice;
  o.password = "s3cret-pass";
  o.max_faces = 3;  // several requests
  o.backoff_initial = std::chrono::milliseconds(50);
  o.backoff_max = std::chrono::milliseconds(200);
  o.idle_poll = std::chrono::milliseconds(50);
  o.keepalive = std::chrono::milliseconds(100);
  ViidUploader uploader(*outbox, o);
  EXPECT_EQ(testing::CodeOf([&] { uploader.UploadOnce(); }), ErrorCode::kUnavailable);
  uploader.Start();
  // Down: the uploader keeps failing and keeps everything.
  for (int i = 0; i < 100 && uploader.stats().failures < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(uploader.stats().failures, 3u);
  EXPECT_EQ(outbox->Stats().count, 7);

  TestViidServer server("s3cret-pass");
  server.Start(port);
  for (int i = 0; i < 500 && outbox->Stats().count > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(outbox->Stats().count, 0);
  for (int i = 0; i < 100 && uploader.stats().keepalives == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  uploader.Stop();
  server.Stop();

  std::lock_guard lock(server.mu_);
  EXPECT_EQ(server.received.size(), 7u);
  for (const auto& id : ids) {
    EXPECT_EQ(server.received[id], 1) << id;  // no loss, no duplicate
    // Even captures had a full frame: face crop + scene.
    EXPECT_GE(server.images[id].size(), 1u);
  }
  int with_scene = 0;
  for (const auto& [id, types] : server.images) with_scene += types.size() == 2;
  EXPECT_EQ(with_scene, 4);
  EXPECT_GE(server.digest_ok, 1);
  EXPECT_GE(server.keepalives, 1);
  EXPECT_EQ(uploader.stats().acked, 7u);
  fs::remove_all(dir);
}

TEST(ViidUploaderTest, WrongPasswordIsRefusedAndNothingIsLost) {
  auto dir = testing::TempDir("viid-upload-auth");
  auto outbox = store::Outbox::Open(dir / "capture.db");
  EnqueueCapture(*outbox, FakeCapture(0), kDevice);
  TestViidServer server("right-password");
  const int port = server.StartAnyPort();
  ViidOptions o;
  o.server_url = "http://127.0.0.1:" + std::to_string(port);
  o.device_id = kDevice;
  o.password = "wrong-password";
  ViidUploader uploader(*outbox, o);
  EXPECT_EQ(testing::CodeOf([&] { uploader.UploadOnce(); }), ErrorCode::kCrypto);
  EXPECT_EQ(outbox->Stats().count, 1);
  EXPECT_FALSE(uploader.stats().registered);

  ViidOptions right = o;
  right.password = "right-password";
  ViidUploader good(*outbox, right);
  EXPECT_EQ(good.Drain(), 1u);
  EXPECT_EQ(outbox->Stats().count, 0);
  server.Stop();
  fs::remove_all(dir);
}

TEST(ViidUploaderTest, FaceObjectShape) {
  const Capture c = FakeCapture(2);
  const std::string id = MakeFaceId(kDevice, c.shot_time);
  ASSERT_EQ(id.size(), 48u);
  EXPECT_EQ(id.substr(0, 20), kDevice);
  const json f = FaceObjectJson(c, kDevice, id, true);
  EXPECT_EQ(f["FaceID"], id);
  EXPECT_EQ(f["SourceID"].get<std::string>().size(), 41u);
  EXPECT_EQ(f["InfoKind"], 1);
  EXPECT_EQ(f["LeftTopX"], 12);
  EXPECT_EQ(f["RightBtmX"], 72);
  const auto& subs = f["SubImageList"]["SubImageInfoObject"];
  ASSERT_EQ(subs.size(), 2u);
  EXPECT_EQ(subs[0]["Type"], "11");
  EXPECT_EQ(subs[1]["Type"], "14");
  EXPECT_EQ(subs[1]["Width"], 640);
  EXPECT_EQ(crypto::FromBase64(subs[0]["Data"].get<std::string>()), c.face_jpeg);
  EXPECT_NE(MakeFaceId(kDevice, c.shot_time), id);  // a counter keeps ids apart
  EXPECT_EQ(ViidTime(std::chrono::system_clock::time_point{}), "19700101080000");
}

}  // namespace
}  // namespace anju::capture
