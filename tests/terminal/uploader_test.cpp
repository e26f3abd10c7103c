// Uploader against a real HTTP peer ("Uploader"; R3.3.3.1): in order, lost
// responses and crashes never store a record twice, a network cut only delays.
#include "terminal/uploader.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <thread>

#include "crypto/keyfile.h"
#include "crypto/tls_cert.h"
#include "fake_device_server.h"
#include "testing.h"

extern char** environ;

namespace anju::terminal {
namespace {

using anju::testing::FakeDeviceServer;
using anju::testing::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

template <class F>
bool Eventually(F cond, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond() && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return cond();
}

// N records, every third with a small "snapshot"; returns their ids in outbox order.
std::vector<std::string> Fill(store::Outbox& outbox, int n, int first = 0) {
  std::vector<std::string> ids;
  for (int i = first; i < first + n; ++i) {
    const json payload = {
        {"time_ms", 1764060000000 + i}, {"door", 0}, {"decision", "stranger"}, {"n", i}};
    std::vector<uint8_t> jpeg;
    if (i % 3 == 0) jpeg.assign(2000 + i, uint8_t(i));
    ids.push_back(outbox.Append(i % 3 == 0 ? "alarm" : "access", payload.dump(), jpeg));
  }
  return ids;
}

std::vector<std::string> StoredIds(const FakeDeviceServer& server) {
  std::vector<std::string> ids;
  for (const auto& e : server.events()) ids.push_back(e.at("id").get<std::string>());
  return ids;
}

struct Rig {
  fs::path dir = TempDir("uploader");
  FakeDeviceServer server{"test-model/v1"};
  FakeDeviceServer::Device device = server.AddDevice();
  std::unique_ptr<store::Outbox> outbox = store::Outbox::Open(dir / "outbox.db");
  protocol::DeviceClient client;
  explicit Rig(std::chrono::milliseconds read_timeout = std::chrono::milliseconds(3000))
      : client(server.url(), device.id, device.key, server.server_key().PublicOnly(),
               protocol::ClientOptions{std::chrono::milliseconds(500), read_timeout, ""}) {}
  ~Rig() {
    outbox.reset();
    fs::remove_all(dir);
  }
};

TEST(Uploader, DrainsABacklogInOrderInBoundedRequests) {
  Rig rig;
  const auto ids = Fill(*rig.outbox, 250);
  UploaderOptions options;
  options.max_items = 100;
  Uploader up(*rig.outbox, rig.client, options);
  EXPECT_EQ(up.Drain(), 250u);
  EXPECT_EQ(rig.outbox->Stats().count, 0);
  EXPECT_EQ(StoredIds(rig.server), ids);  // outbox order
  EXPECT_EQ(rig.server.event_requests(), 3);
  const auto events = rig.server.events();
  EXPECT_EQ(events[0].at("kind"), "alarm");
  EXPECT_EQ(events[0].at("payload").at("n"), 0);
  EXPECT_EQ(events[0].at("snapshot").get<std::string>().size(), (2000 + 2) / 3 * 4);
  EXPECT_FALSE(events[1].contains("snapshot"));
  EXPECT_EQ(up.stats().stored, 250u);

  // The byte budget splits requests too (4 × ~270 kB of base64 per 600 kB request).
  Rig big;
  for (int i = 0; i < 4; ++i)
    big.outbox->Append("alarm", "{}", std::vector<uint8_t>(200'000, uint8_t(i)));
  UploaderOptions small;
  small.max_bytes = 600'000;
  Uploader up2(*big.outbox, big.client, small);
  EXPECT_EQ(up2.Drain(), 4u);
  EXPECT_EQ(big.server.event_requests(), 2);
}

TEST(Uploader, LostResponseIsResentAndStoredOnce) {
  Rig rig(std::chrono::milliseconds(300));
  const auto ids = Fill(*rig.outbox, 20);
  // The server stores the events but its answer comes after the client gave up.
  rig.server.DelayEventReplies(1, std::chrono::milliseconds(1200));
  Uploader up(*rig.outbox, rig.client);
  EXPECT_EQ(anju::testing::CodeOf([&] { up.UploadOnce(); }), ErrorCode::kUnavailable);
  EXPECT_EQ(rig.outbox->Stats().count, 20);  // nothing acknowledged without an answer
  EXPECT_EQ(rig.server.events().size(), 20u);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(up.Drain(), 20u);
  EXPECT_EQ(rig.outbox->Stats().count, 0);
  EXPECT_EQ(StoredIds(rig.server), ids);  // stored once each
  for (const auto& id : ids) EXPECT_EQ(rig.server.receipts().at(id), 2);
  EXPECT_EQ(up.stats().duplicates, 20u);
}

TEST(Uploader, NetworkCutAndRestoredDrainsTheBacklogByItself) {
  Rig rig(std::chrono::milliseconds(1000));
  UploaderOptions options;
  options.idle_poll = std::chrono::milliseconds(50);
  options.backoff_initial = std::chrono::milliseconds(50);
  options.backoff_max = std::chrono::milliseconds(400);
  options.max_items = 20;
  Uploader up(*rig.outbox, rig.client, options);
  up.Start();
  auto ids = Fill(*rig.outbox, 30);
  up.Wake();
  ASSERT_TRUE(Eventually([&] { return rig.outbox->Stats().count == 0; }));
  rig.server.Stop();  // the network is cut
  const auto more = Fill(*rig.outbox, 70, 30);
  ids.insert(ids.end(), more.begin(), more.end());
  up.Wake();
  ASSERT_TRUE(Eventually([&] { return up.stats().link == LinkState::kOffline; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(rig.outbox->Stats().count, 70);  // kept while offline
  const auto failures = up.stats().failures;
  EXPECT_LE(failures, 8u);  // capped exponential back-off, not a busy loop
  rig.server.Start();       // restored: no call needed, the uploader resumes
  ASSERT_TRUE(Eventually([&] { return rig.outbox->Stats().count == 0; }));
  EXPECT_EQ(StoredIds(rig.server), ids);
  EXPECT_TRUE(Eventually([&] { return up.stats().link == LinkState::kOnline; }));
  up.Stop();
}

// ---- kill -9 during upload: the uploader runs in a child process (this binary again,
// running only the test below with its settings in the environment).

// The server closes a kept-alive connection after 1 s idle (anju-server's HTTPS after 5 s).
// The next record after a pause must go out on a new connection, not be taken for an
// outage: no failure counted, the link never offline, each record sent in one request.
TEST(Uploader, IdleConnectionClosedByTheServerIsNoOutage) {
  const fs::path dir = TempDir("uploader-tls");
  const auto tls =
      crypto::EnsureSelfSignedCert(dir / "server.crt", dir / "server.key", "fake server", {});
  FakeDeviceServer server("test-model/v1", tls.cert, tls.key);
  const auto device = server.AddDevice();
  auto outbox = store::Outbox::Open(dir / "outbox.db");
  protocol::DeviceClient client(
      server.url(), device.id, device.key, server.server_key().PublicOnly(),
      protocol::ClientOptions{std::chrono::milliseconds(1000), std::chrono::milliseconds(3000),
                              tls.cert.string()});
  UploaderOptions options;
  options.idle_poll = std::chrono::milliseconds(50);
  options.backoff_initial = std::chrono::milliseconds(50);
  Uploader up(*outbox, client, options);
  std::vector<LinkState> seen;
  up.Start();
  for (int i = 0; i < 3; ++i) {
    Fill(*outbox, 1, i);
    up.Wake();
    // The outbox empties a moment before the uploader records the answer's link state.
    ASSERT_TRUE(Eventually([&] {
      return outbox->Stats().count == 0 && up.stats().link != LinkState::kUnknown;
    })) << "record "
        << i;
    seen.push_back(up.stats().link);
    // Longer than the server keeps an idle connection open.
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
  }
  up.Stop();
  const UploaderStats stats = up.stats();
  EXPECT_EQ(stats.failures, 0u) << stats.last_error;
  EXPECT_EQ(stats.link, LinkState::kOnline);
  for (const LinkState s : seen) EXPECT_EQ(s, LinkState::kOnline);
  EXPECT_EQ(server.events().size(), 3u);
  EXPECT_EQ(server.event_requests(), 3);  // the broken connection carried nothing

  // A real outage is still one: the server gone, the request fails (after one new
  // connection was tried) and the record stays in the outbox.
  server.Stop();
  Fill(*outbox, 1, 3);
  Uploader once(*outbox, client, options);
  EXPECT_EQ(anju::testing::CodeOf([&] { once.UploadOnce(); }), ErrorCode::kUnavailable);
  EXPECT_EQ(outbox->Stats().count, 1);
  outbox.reset();
  fs::remove_all(dir);
}

TEST(UploaderChild, DrainsTheOutboxNamedInTheEnvironment) {
  const char* dir = std::getenv("ANJU_UPLOADER_CHILD_DIR");
  if (!dir) GTEST_SKIP() << "runs only as the child of KillDuringUploadLosesAndDuplicatesNothing";
  const fs::path d(dir);
  std::ifstream in(d / "child.json");
  const json cfg = json::parse(in);
  auto outbox = store::Outbox::Open(d / "outbox.db");
  protocol::DeviceClient client(
      cfg.at("url").get<std::string>(), cfg.at("device").get<std::string>(),
      crypto::Sm2Key::FromPrivatePem(crypto::ReadSecretFile(d / "device.pem")),
      crypto::Sm2Key::FromPublicPem(cfg.at("server_pub").get<std::string>()));
  UploaderOptions options;
  options.max_items = 7;
  Uploader up(*outbox, client, options);
  up.Drain();
}

TEST(Uploader, KillDuringUploadLosesAndDuplicatesNothing) {
  Rig rig;
  const auto ids = Fill(*rig.outbox, 300);
  rig.outbox.reset();  // the child owns it now
  crypto::WriteSecretFile(rig.dir / "device.pem", rig.device.key.PrivatePem());
  {
    std::ofstream out(rig.dir / "child.json");
    out << json{{"url", rig.server.url()},
                {"device", rig.device.id},
                {"server_pub", rig.server.server_key().PublicPem()}}
               .dump();
  }
  rig.server.SlowEventRequests(std::chrono::milliseconds(20));
  const std::string env_dir = "ANJU_UPLOADER_CHILD_DIR=" + rig.dir.string();
  auto spawn_child = [&] {
    std::vector<std::string> args = {
        "/proc/self/exe", "--gtest_filter=UploaderChild.DrainsTheOutboxNamedInTheEnvironment"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_copy;
    for (char** e = environ; *e; ++e) env_copy.push_back(*e);
    env_copy.push_back(env_dir);
    std::vector<char*> envp;
    for (auto& e : env_copy) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), envp.data()), 0);
    return pid;
  };
  // Kill the child twice in the middle of the upload, then let a third one finish.
  for (size_t threshold : {60u, 170u}) {
    const pid_t pid = spawn_child();
    ASSERT_TRUE(Eventually([&] { return rig.server.events().size() >= threshold; },
                           std::chrono::seconds(30)));
    ::kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    std::printf("    killed the uploader with %zu of 300 events stored\n",
                rig.server.events().size());
  }
  const pid_t pid = spawn_child();
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  rig.outbox = store::Outbox::Open(rig.dir / "outbox.db");
  EXPECT_EQ(rig.outbox->Stats().count, 0);
  EXPECT_EQ(StoredIds(rig.server), ids);  // every record once, in order
  int resent = 0;
  for (const auto& [id, n] : rig.server.receipts()) resent += n - 1;
  std::printf("    %d events were sent again after a kill (stored once)\n", resent);
}

}  // namespace
}  // namespace anju::terminal
