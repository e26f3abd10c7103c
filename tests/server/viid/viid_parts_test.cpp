// The parts of the snapshot-camera side, each on a real captures.db and blob directory,
// without HTTP and without a server process (docs/viid.md).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/envelope.h"
#include "protocol/viid.h"
#include "server/runtime/embedded.h"
#include "server/runtime/local_nats.h"
#include "server/runtime/runtime.h"
#include "server/storage/captures_schema.h"
#include "server/storage/stranger_repo.h"
#include "server/viid/viid_service.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using Outcome = ViidAnswer::Outcome;

const std::vector<uint8_t> kJpeg = {0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4, 0xFF, 0xD9};

viid::FaceObject Face(const std::string& face_id) {
  viid::FaceObject f;
  f.face_id = face_id;
  f.device_id = "CAM1";
  f.left_top_x = 1, f.left_top_y = 2, f.right_btm_x = 30, f.right_btm_y = 40;
  viid::SubImageInfo img;
  img.type = viid::kImageTypeFace;
  img.data = kJpeg;
  img.width = 32;
  img.height = 40;
  f.images.push_back(img);
  return f;
}

int CountFiles(const fs::path& dir) {
  int n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

std::string Body(viid::SystemObject kind, const std::string& device) {
  return viid::MakeSystemObject(kind, device).dump();
}

class ViidPartsTest : public ::testing::Test {
 protected:
  ViidPartsTest()
      : dir_(anju::testing::TempDir("viid-parts")),
        key_(crypto::DataKey::Generate()),
        blobs_(dir_ / "blobs") {
    deps_.data_dir = dir_ / "data";
    fs::create_directories(deps_.data_dir);
    deps_.blobs = &blobs_;
  }
  ~ViidPartsTest() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::unique_ptr<ViidService> Open(ViidOptions o = {}) {
    return std::make_unique<ViidService>(deps_, key_, o);
  }
  // The Authorization header answering CHALLENGE (a WWW-Authenticate value).
  static std::string Login(const std::string& challenge, const std::string& password,
                           const std::string& uri, uint32_t nc,
                           const std::string& camera = "CAM1") {
    return viid::FormatAuthorization(
        viid::AnswerChallenge(viid::ParseChallenge(challenge), camera, password, "POST", uri, nc));
  }

  fs::path dir_;
  crypto::DataKey key_;
  runtime::FileBlobStore blobs_;
  ViidDeps deps_;
};

TEST_F(ViidPartsTest, CaptureStoreKeepsAFaceOnceFinishesItOnceAndRetainsIt) {
  auto svc = Open();
  ViidDevice cam;
  cam.id = "CAM1";
  svc->cameras().Add(cam, "password1");
  CaptureStore& store = svc->captures();

  viid::FaceList upload;
  upload.faces = {Face("F1"), Face("F1")};  // the same face twice in one request
  const int64_t now = 1'800'000'000'000;
  const auto first = store.Store("CAM1", upload, now);
  ASSERT_EQ(first.statuses.size(), 2u);
  EXPECT_EQ(first.statuses[0].status_code, viid::kOk);
  EXPECT_EQ(first.statuses[1].status_string, "重复 / duplicate");
  ASSERT_EQ(first.jobs.size(), 1u);
  EXPECT_EQ(first.jobs[0].face_jpeg, kJpeg);
  const std::string id = first.jobs[0].capture_id;
  // Sent again after a lost answer: the first copy wins.
  upload.faces = {Face("F1")};
  const auto again = store.Store("CAM1", upload, now + 1000);
  EXPECT_TRUE(again.jobs.empty());
  EXPECT_EQ(again.statuses.at(0).status_string, "重复 / duplicate");

  // The image is sealed in the blob store, not in the data directory.
  EXPECT_EQ(store.Image(id, 0), kJpeg);
  ASSERT_EQ(CountFiles(dir_ / "blobs"), 1);
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "blobs")) {
    if (!e.is_regular_file()) continue;
    EXPECT_NE(e.path().string().find(id), std::string::npos) << e.path();
  }
  EXPECT_FALSE(fs::exists(deps_.data_dir / "captures"));

  CaptureQuery q;
  const CapturePage page = store.List(q);
  ASSERT_EQ(page.total, 1);
  EXPECT_EQ(page.items.at(0).state, "queued");
  EXPECT_EQ(page.items.at(0).box, nlohmann::json({1, 2, 30, 40}));
  ASSERT_TRUE(store.PendingCapture(id));
  EXPECT_EQ(store.PendingCapture(id)->device_id, "CAM1");
  EXPECT_EQ(store.Queued(), std::vector<std::string>{id});

  RecognitionResult r;
  r.state = "done";
  r.outcome = "accept";
  r.person = "P001";
  r.score = 0.8;
  EXPECT_TRUE(store.Finish(id, r, now + 50));
  // A redelivered work item: the capture is final already.
  EXPECT_FALSE(store.Finish(id, r, now + 60));
  EXPECT_FALSE(store.MarkFailed(id, "late", now + 70));
  const CaptureDetail d = store.Get(id);
  EXPECT_EQ(d.capture.state, "done");
  EXPECT_EQ(d.capture.person, "P001");
  EXPECT_EQ(d.capture.recognised_ms, now + 50);
  ASSERT_EQ(d.image_list.size(), 1u);
  EXPECT_EQ(d.image_list[0].type, viid::kImageTypeFace);
  EXPECT_FALSE(store.PendingCapture(id));
  EXPECT_EQ(store.LastSeen("P001"), now);

  EXPECT_EQ(store.Retain(now - 1), 0);
  EXPECT_EQ(store.Retain(now + 1), 1);
  EXPECT_EQ(store.List(q).total, 0);
  try {
    store.Image(id, 0);
    FAIL() << "image of a deleted capture";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(CountFiles(dir_ / "blobs"), 0);  // its image went with it
}

TEST_F(ViidPartsTest, EndpointLogsInWithDigestRefusesReplaysAndKeepsRegistrations) {
  auto svc = Open();
  ViidDevice cam;
  cam.id = "CAM1";
  svc->cameras().Add(cam, "password1");
  Gat1400Endpoint& ep = svc->endpoint();
  const std::string uri = viid::kPathRegister;

  auto first = ep.Authenticate("POST", uri, "", "", "10.0.0.5", true);
  ASSERT_TRUE(std::holds_alternative<ViidAnswer>(first));
  const ViidAnswer challenge = std::get<ViidAnswer>(first);
  EXPECT_EQ(challenge.outcome, Outcome::kUnauthenticated);
  ASSERT_FALSE(challenge.challenge.empty());

  const std::string auth = Login(challenge.challenge, "password1", uri, 1);
  auto ok = ep.Authenticate("POST", uri, auth, "", "10.0.0.5", true);
  ASSERT_TRUE(std::holds_alternative<std::string>(ok));
  EXPECT_EQ(std::get<std::string>(ok), "CAM1");
  // The same nonce count again is a replay; a higher one is fine.
  auto replay = ep.Authenticate("POST", uri, auth, "", "10.0.0.5", true);
  ASSERT_TRUE(std::holds_alternative<ViidAnswer>(replay));
  EXPECT_EQ(std::get<ViidAnswer>(replay).outcome, Outcome::kUnauthenticated);
  EXPECT_TRUE(std::holds_alternative<std::string>(ep.Authenticate(
      "POST", uri, Login(challenge.challenge, "password1", uri, 2), "", "10.0.0.5", true)));
  auto wrong = ep.Authenticate("POST", uri, Login(challenge.challenge, "password2", uri, 3), "",
                               "10.0.0.5", true);
  ASSERT_TRUE(std::holds_alternative<ViidAnswer>(wrong));
  EXPECT_EQ(std::get<ViidAnswer>(wrong).outcome, Outcome::kUnauthenticated);

  // Registered from 10.0.0.5: its User-Identify session is good from there only.
  EXPECT_EQ(ep.Register("CAM1", Body(viid::SystemObject::kRegister, "CAM1"), "10.0.0.5").outcome,
            Outcome::kOk);
  EXPECT_TRUE(svc->cameras().Get("CAM1")->registered);
  const std::string faces = viid::kPathFaces;
  EXPECT_TRUE(std::holds_alternative<std::string>(
      ep.Authenticate("POST", faces, "", "CAM1", "10.0.0.5", false)));
  EXPECT_TRUE(std::holds_alternative<ViidAnswer>(
      ep.Authenticate("POST", faces, "", "CAM1", "10.0.0.6", false)));
  EXPECT_EQ(ep.Keepalive("CAM1", Body(viid::SystemObject::kKeepalive, "CAM1"), "10.0.0.5").outcome,
            Outcome::kOk);
  // A keepalive from elsewhere ends the registration: the camera is told to register again.
  EXPECT_EQ(ep.Keepalive("CAM1", Body(viid::SystemObject::kKeepalive, "CAM1"), "10.0.0.6").outcome,
            Outcome::kUnauthenticated);
  EXPECT_FALSE(svc->cameras().Get("CAM1")->registered);
  EXPECT_TRUE(std::holds_alternative<ViidAnswer>(
      ep.Authenticate("POST", faces, "", "CAM1", "10.0.0.5", false)));
  // Another camera's DeviceID in the body is refused.
  EXPECT_EQ(ep.Register("CAM1", Body(viid::SystemObject::kRegister, "CAM2"), "10.0.0.5").outcome,
            Outcome::kRefused);

  // Revoked: the right password is refused.
  EXPECT_TRUE(svc->cameras().Revoke("CAM1"));
  auto revoked = ep.Authenticate("POST", uri, Login(challenge.challenge, "password1", uri, 9), "",
                                 "10.0.0.5", true);
  ASSERT_TRUE(std::holds_alternative<ViidAnswer>(revoked));
  EXPECT_EQ(std::get<ViidAnswer>(revoked).outcome, Outcome::kRefused);
}

TEST_F(ViidPartsTest, TwoCamerasChallengedAtOnceNeverShareANonce) {
  // Challenges issued within one millisecond (here, or by another server with the same key)
  // once carried the same nonce, so the second camera's first count was refused as a replay.
  auto svc = Open();
  ViidDevice a, b;
  a.id = "CAM-A";
  b.id = "CAM-B";
  svc->cameras().Add(a, "password-a");
  svc->cameras().Add(b, "password-b");
  Gat1400Endpoint& ep = svc->endpoint();
  const std::string uri = viid::kPathRegister;
  std::set<std::string> nonces;
  std::vector<std::string> challenges;
  for (int i = 0; i < 200; ++i) {
    auto c = ep.Authenticate("POST", uri, "", "", "10.0.0.5", true);
    ASSERT_TRUE(std::holds_alternative<ViidAnswer>(c));
    challenges.push_back(std::get<ViidAnswer>(c).challenge);
    nonces.insert(viid::ParseChallenge(challenges.back()).nonce);
  }
  EXPECT_EQ(nonces.size(), challenges.size());
  // Both cameras answer their own challenge with count 1: both get in.
  EXPECT_TRUE(std::holds_alternative<std::string>(ep.Authenticate(
      "POST", uri, Login(challenges[0], "password-a", uri, 1, "CAM-A"), "", "10.0.0.5", true)));
  EXPECT_TRUE(std::holds_alternative<std::string>(ep.Authenticate(
      "POST", uri, Login(challenges[1], "password-b", uri, 1, "CAM-B"), "", "10.0.0.6", true)));
}

TEST_F(ViidPartsTest, StrangersJoinTheirClusterWhichOutlivesARestart) {
  const auto a = anju::testing::RandomUnitFeature(1);
  const auto b = anju::testing::RandomUnitFeature(2);
  int64_t ida = 0, idb = 0;
  {
    auto svc = Open();
    StrangerDirectory& s = svc->strangers();
    ida = s.Assign(a, 1'800'000'000'000, "c1", "CAM1");
    EXPECT_EQ(s.Assign(a, 1'800'000'001'000, "c2", "CAM1"), ida);
    idb = s.Assign(b, 1'800'000'002'000, "c3", "CAM1");
    EXPECT_NE(idb, ida);
    EXPECT_EQ(s.size(), 2u);
    const StrangerDetail d = s.Get(ida, std::nullopt);
    EXPECT_EQ(d.last_capture, "c2");
    EXPECT_EQ(d.first_capture, "c1");
  }
  auto svc = Open();
  EXPECT_EQ(svc->strangers().size(), 2u);
  EXPECT_EQ(svc->strangers().Assign(b, 1'800'000'003'000, "c4", "CAM1"), idb);
  try {
    svc->strangers().Get(idb + 100, std::nullopt);
    FAIL() << "unknown stranger";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
}

TEST_F(ViidPartsTest, TheSweeperQueuesAgainACaptureTheQueueLost) {
  ViidOptions o;
  o.sweep_interval_ms = 3'600'000;  // looked at by hand below
  o.sweep_after_ms = 3'600'000;
  auto svc = Open(o);
  svc->Start();
  viid::FaceList upload;
  upload.faces = {Face("F1")};
  // Stored but never pushed: what a crash between the row and the push leaves.
  const auto stored = svc->captures().Store("CAM1", upload, anju::NowMs());
  ASSERT_EQ(stored.jobs.size(), 1u);
  const std::string id = stored.jobs[0].capture_id;
  EXPECT_EQ(svc->SweepOnce(), 0);  // too recent: it may still be on its way
  svc.reset();
  o.sweep_after_ms = 0;
  svc = Open(o);
  svc->Start();  // queues it again at start
  ASSERT_TRUE(svc->workers().WaitIdle(std::chrono::seconds(30)));
  EXPECT_NE(svc->captures().Get(id).capture.state, "queued");

  upload.faces = {Face("F2")};
  const auto lost = svc->captures().Store("CAM1", upload, anju::NowMs() - 1);
  const std::string id2 = lost.jobs.at(0).capture_id;
  EXPECT_EQ(svc->captures().Get(id2).capture.state, "queued");
  EXPECT_EQ(svc->SweepOnce(), 1);
  ASSERT_TRUE(svc->workers().WaitIdle(std::chrono::seconds(30)));
  // Without models the capture ends "unrecognised": final, and not swept again.
  EXPECT_EQ(svc->captures().Get(id2).capture.state, "unrecognised");
  EXPECT_EQ(svc->SweepOnce(), 0);
}

TEST_F(ViidPartsTest, WorkersInTwoProcessesShareStrangerIdsAndClusters) {
  // Two services on one captures database stand for two worker processes.
  deps_.distributed = true;
  auto a = Open();
  auto b = Open();
  const auto f1 = anju::testing::RandomUnitFeature(11);
  const auto f2 = anju::testing::RandomUnitFeature(12);
  const int64_t s1 = a->strangers().Assign(f1, 1'800'000'000'000, "c1", "CAM1");
  // B has not seen that visitor yet: it looks at what A started before starting its own.
  EXPECT_EQ(b->strangers().Assign(f1, 1'800'000'001'000, "c2", "CAM2"), s1);
  const int64_t s2 = b->strangers().Assign(f2, 1'800'000'002'000, "c3", "CAM2");
  const int64_t s3 =
      a->strangers().Assign(anju::testing::RandomUnitFeature(13), 1'800'000'003'000, "c4", "CAM1");
  EXPECT_NE(s2, s1);
  EXPECT_NE(s3, s2);  // ids from the database's counter, not from each one's memory
  EXPECT_NE(s3, s1);
  EXPECT_EQ(a->strangers().Assign(f2, 1'800'000'004'000, "c5", "CAM1"), s2);
}

TEST_F(ViidPartsTest, AClusterTwoWorkersGrowInTurnKeepsEveryMember) {
  deps_.distributed = true;
  auto a = Open();
  auto b = Open();
  const auto f = anju::testing::RandomUnitFeature(21);
  const int64_t id = a->strangers().Assign(f, 1'800'000'000'000, "c1", "CAM1");
  EXPECT_EQ(b->strangers().Assign(f, 1'800'000'001'000, "c2", "CAM2"), id);  // B: 2 members
  // Each one's copy is a member behind: it reads the stored cluster and joins again.
  EXPECT_EQ(a->strangers().Assign(f, 1'800'000'002'000, "c3", "CAM1"), id);
  EXPECT_EQ(b->strangers().Assign(f, 1'800'000'003'000, "c4", "CAM2"), id);
  auto db = storage::OpenCapturesDb(deps_.data_dir / "captures.db");
  auto conn = db->Acquire();
  const auto row = storage::StrangerRepo::Centroid(conn, id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->members, 4);  // last writer wins would leave 3
  EXPECT_EQ(a->strangers().Get(id, std::nullopt).last_capture, "c4");
}

TEST_F(ViidPartsTest, LivePreviewKeepsTheLatestJpegInMemoryAndCountsStreams) {
  ViidOptions o;
  o.max_live_streams = 2;
  auto svc = Open(o);
  LivePreview& live = svc->live();
  EXPECT_EQ(live.Put("CAM1", "not a jpeg").outcome, Outcome::kMalformed);
  EXPECT_FALSE(live.Latest("CAM1"));
  const std::string jpeg(kJpeg.begin(), kJpeg.end());
  EXPECT_EQ(live.Put("CAM1", jpeg).outcome, Outcome::kOk);
  const auto f = live.Latest("CAM1");
  ASSERT_TRUE(f);
  EXPECT_EQ(*f->jpeg, jpeg);
  EXPECT_FALSE(live.Latest("CAM1", f->seq));  // nothing newer
  EXPECT_FALSE(live.Latest("CAM2"));
  // Never written to disk: the data directory holds the database only.
  for (const auto& e : fs::recursive_directory_iterator(deps_.data_dir))
    EXPECT_TRUE(e.path().filename().string().starts_with("captures.db")) << e.path();
  EXPECT_TRUE(live.EnterStream());
  EXPECT_TRUE(live.EnterStream());
  EXPECT_FALSE(live.EnterStream());
  live.LeaveStream();
  EXPECT_TRUE(live.EnterStream());
}

TEST_F(ViidPartsTest, LiveFramesAreSharedBetweenServersOnNats) {
  std::unique_ptr<runtime::LocalNatsServer> nats;
  try {
    nats = std::make_unique<runtime::LocalNatsServer>();
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  // Two servers on one bus, each with a captures.db of its own here (only the state is
  // looked at).
  runtime::NatsOptions n;
  n.url = nats->url();
  n.prefix = "viidparts";
  n.retry_for = std::chrono::seconds(5);
  runtime::Runtime ra = runtime::Runtime::Nats(n), rb = runtime::Runtime::Nats(n);
  auto open = [&](runtime::Runtime& r, const std::string& name) {
    ViidDeps d = deps_;
    d.data_dir = dir_ / name;
    fs::create_directories(d.data_dir);
    d.state = r.state.get();
    d.distributed = true;
    d.nats = r.nats;
    return std::make_unique<ViidService>(d, key_, ViidOptions{});
  };
  auto a = open(ra, "a"), b = open(rb, "b");
  const std::string jpeg(kJpeg.begin(), kJpeg.end());
  EXPECT_FALSE(b->live().Latest("CAM1"));
  ASSERT_EQ(a->live().Put("CAM1", jpeg).outcome, Outcome::kOk);
  // B read the state a moment ago: it looks again within 50 ms.
  const auto f = b->live().Latest("CAM1", 0, std::chrono::seconds(2));
  ASSERT_TRUE(f);
  EXPECT_EQ(*f->jpeg, jpeg);
  EXPECT_FALSE(b->live().Latest("CAM1", f->seq));
  // A reader on B waiting for the next frame gets the one A takes meanwhile.
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    a->live().Put("CAM1", jpeg + "x");
  });
  const auto next = b->live().Latest("CAM1", f->seq, std::chrono::seconds(5));
  later.join();
  ASSERT_TRUE(next);
  EXPECT_GT(next->seq, f->seq);
  EXPECT_EQ(*next->jpeg, jpeg + "x");
  // Too big for the shared state: refused, not cut.
  EXPECT_EQ(a->live().Put("CAM1", jpeg + std::string(600 * 1024, 'x')).outcome, Outcome::kTooLarge);

  // The MJPEG stream's pull answers from B's last read and has a reader read again.
  ASSERT_EQ(a->live().Put("CAM1", jpeg + "y").outcome, Outcome::kOk);
  std::optional<LiveFrame> pulled;
  for (int i = 0; i < 500 && !pulled; ++i) {
    pulled = b->live().Pull("CAM1", next->seq);
    if (!pulled) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(pulled);
  EXPECT_EQ(*pulled->jpeg, jpeg + "y");
  EXPECT_FALSE(b->live().Pull("CAM1", pulled->seq));
  // With NATS away, a read waits retry_for (5 s here); a pull never does, and the last
  // frame stays until it ages out.
  nats->Stop();
  for (int i = 0; i < 20; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto still = b->live().Pull("CAM1", 0);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
    ASSERT_TRUE(still);
    EXPECT_EQ(still->seq, pulled->seq);
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
  }
}

}  // namespace
}  // namespace anju::server
