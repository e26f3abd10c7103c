// anju-server on NATS JetStream (ServerOptions::bus, docs/distributed.md), against a real
// nats-server -js the test starts on a free loopback port: snapshot captures are recognised
// through the JetStream work queue, the console's live stream is the JetStream stream (its
// SSE ids are the stream's sequence, readable by any other process), and login counters and
// camera sessions live in the JetStream key-value bucket, so a server restart keeps them —
// where the embedded runtime forgets them (viid_camera_test.cpp, security_test.cpp).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "protocol/viid.h"
#include "server/runtime/local_nats.h"
#include "server/runtime/nats_connection.h"
#include "server/runtime/nats_event_bus.h"
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

class ServerOnNatsTest : public ServerTest {
 protected:
  void SetUp() override {
    try {
      nats_ = std::make_unique<runtime::LocalNatsServer>();
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    ServerTest::SetUp();
  }
  void Configure(ServerOptions& o) override {
    o.bus = nats_->url();
    o.bus_prefix = "anjutest";
  }
  // A second process's view of the same NATS (a console on another API server).
  std::shared_ptr<runtime::NatsConnection> Peer() {
    runtime::NatsOptions n;
    n.url = nats_->url();
    n.prefix = "anjutest";
    return runtime::NatsConnection::Connect(n);
  }
  uint64_t StreamLastSeq(const std::string& stream) {
    auto conn = Peer();
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = jsErrCode(0);
    EXPECT_EQ(js_GetStreamInfo(&si, conn->js(), stream.c_str(), nullptr, &jerr), NATS_OK) << stream;
    const uint64_t last = si ? si->State.LastSeq : 0;
    const uint64_t msgs = si ? si->State.Msgs : 0;
    jsStreamInfo_Destroy(si);
    last_msgs_ = msgs;
    return last;
  }

  std::unique_ptr<runtime::LocalNatsServer> nats_;
  uint64_t last_msgs_ = 0;
};

std::vector<uint8_t> FacePhoto() {
  const fs::path p = anju::testing::DataPath("lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg");
  if (p.empty() || !fs::exists(p)) return {};
  const std::string s = ReadFile(p);
  return {s.begin(), s.end()};
}

TEST_F(ServerOnNatsTest, CapturesGoThroughTheJetStreamQueueAndLiveStream) {
  const auto photo = FacePhoto();
  if (photo.empty()) GTEST_SKIP() << "LFW not found (set ANJU_DATA_DIR)";
  Camera cam{"31000000001190000051", "camera-pass-51", {}, false, 0};
  ASSERT_EQ(
      Api("POST", "/api/v1/viid/devices", {{"id", cam.id}, {"password", cam.password}}).status,
      201);
  auto r = CameraSend(cam, viid::kPathRegister,
                      viid::MakeSystemObject(viid::SystemObject::kRegister, cam.id).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;

  viid::FaceList list;
  for (int i = 0; i < 3; ++i) {
    viid::FaceObject f;
    f.face_id = "F-NATS-" + std::to_string(i);
    f.device_id = cam.id;
    f.face_appear_time = viid::FormatTime(NowMs());
    viid::SubImageInfo img;
    img.type = viid::kImageTypeFace;
    img.data = photo;
    f.images.push_back(img);
    list.faces.push_back(f);
  }
  r = CameraSend(cam, viid::kPathFaces, viid::ToJson(list).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;

  json st;
  for (int i = 0; i < 600; ++i) {
    st = Api("GET", "/api/v1/viid/stats").body;
    if (st["recognised"].get<int64_t>() >= 3 && st["queued"] == 0 && st["busy"] == 0) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(st["recognised"], 3) << st;
  const auto caps = Api("GET", "/api/v1/captures").body;
  ASSERT_EQ(caps["total"], 3) << caps;
  for (const auto& c : caps["items"]) EXPECT_NE(c["state"], "queued") << c;

  // The work went through JetStream: three items pushed, all acked (a work-queue stream
  // keeps nothing once acked).
  EXPECT_EQ(StreamLastSeq("ANJUTEST_WORK_RECOGNITION"), 3u);
  EXPECT_EQ(last_msgs_, 0u);

  // The live stream is the JetStream stream: another process reads the same captures with
  // the same ids the console was given.
  runtime::NatsEventBus peer(Peer());
  std::vector<runtime::BusMessage> seen;
  for (int i = 0; i < 100 && seen.size() < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);  // a read returns what has arrived so far
    seen.clear();
    for (auto& m : peer.Read(0, 200ms))
      if (m.event == "capture") seen.push_back(m);
  }
  ASSERT_EQ(seen.size(), 3u);
  auto sse = Raw("GET", "/api/v1/events/stream?after=0&wait_s=1", "", AdminHeaders());
  ASSERT_TRUE(sse);
  ASSERT_EQ(sse->status, 200) << sse->body;
  for (const auto& m : seen) {
    EXPECT_NE(sse->body.find("id: " + std::to_string(m.seq) + "\n"), std::string::npos)
        << "stream id " << m.seq << " not in the server's SSE:\n"
        << sse->body;
    EXPECT_EQ(m.data["device_id"], cam.id);
  }
}

TEST_F(ServerOnNatsTest, LoginFailuresAndCameraSessionsOutliveAServerRestart) {
  // Login failures are counted in the shared bucket: three before a restart and two after
  // lock the account (embedded, the restart would have forgotten the first three).
  const auto op = UserWithRoles("wang", {"operator"});
  const std::string pw = passwords_["wang"];
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(Login("wang", "Wrong-pass-" + std::to_string(i)).status, 401);

  Camera cam{"31000000001190000052", "camera-pass-52", {}, false, 0};
  ASSERT_EQ(
      Api("POST", "/api/v1/viid/devices", {{"id", cam.id}, {"password", cam.password}}).status,
      201);
  auto r = CameraSend(cam, viid::kPathRegister,
                      viid::MakeSystemObject(viid::SystemObject::kRegister, cam.id).dump());
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;

  StopServer();
  StartServer();

  for (int i = 3; i < 5; ++i)
    EXPECT_EQ(Login("wang", "Wrong-pass-" + std::to_string(i)).status, 401);
  const auto locked = Login("wang", pw);
  EXPECT_EQ(locked.status, 423) << locked.body;

  // The camera's registration is still known: its keepalive is taken, not answered with
  // "register again".
  r = CameraSend(cam, viid::kPathKeepalive,
                 viid::MakeSystemObject(viid::SystemObject::kKeepalive, cam.id).dump());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
}

TEST_F(ServerOnNatsTest, ABusThatIsNotNatsIsRefused) {
  ServerOptions o;
  o.data_dir = dir_ / "other";
  o.port = 0;
  o.bus = "redis://127.0.0.1:6379";
  try {
    Server s(o);
    FAIL() << "a redis:// bus was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("nats://"), std::string::npos) << e.what();
  }
  // A NATS nobody listens on: unavailable at once, naming the address.
  o.bus = "nats://127.0.0.1:1";
  try {
    Server s(o);
    FAIL() << "an unreachable bus was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace anju::server::testing
