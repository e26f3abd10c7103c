// SIGKILL at random moments (docs/reliability.md, "Process faults"): the real anju-server,
// anju-terminal, anju-converter and anju-capture run on loopback while a driver flips the
// converter's simulated door inputs (every change is a door record in the terminal's
// outbox) and the capture program captures faces from a looping image directory. Each
// round picks a victim, kills it with SIGKILL after a random delay and restarts it after
// a random pause. At the end every record and capture that was ever committed to a
// durable buffer must be on the server exactly once, records in outbox order, and no
// door may stay released once the program that opened it is dead.
//
// ANJU_FAULT_ROUNDS (default 4: one per program) sets the number of rounds;
// scripts/soak runs ≥ 100. ANJU_FAULT_REPORT names a file for the JSON summary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <random>

#include "core/paths.h"
#include "fault_site.h"
#include "testing.h"

namespace anju::faults {
namespace {

constexpr const char* kCameraId = "34020000001190000001";
constexpr const char* kCameraPassword = "fault-test-password";

int Rounds() {
  const char* r = std::getenv("ANJU_FAULT_ROUNDS");
  return r && *r ? std::max(1, std::atoi(r)) : 4;
}

std::string FaceIdOf(const SeenItem& item) {
  const json p = json::parse(item.payload, nullptr, false);
  return p.is_discarded() ? item.id : p.value("/face/FaceID"_json_pointer, item.id);
}

// Flips the converter's inputs while the test runs: the door contact every tick, the exit
// button now and then (so openings are granted or forced), the tamper switch rarely.
class InputDriver {
 public:
  explicit InputDriver(Converter& c) : c_(c), thread_([this] { Loop(); }) {}
  ~InputDriver() { Stop(); }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int changes() const { return changes_; }

 private:
  void Loop() {
    bool open = false, tamper = false;
    for (int tick = 0; !stop_; ++tick) {
      json in = {{"door_contact", open = !open}, {"exit_button", tick % 4 == 1}};
      if (tick % 10 == 9) in["tamper"] = tamper = !tamper;
      if (c_.SetInputs(in)) ++changes_;
      std::this_thread::sleep_for(Ms(Random(250, 400)));  // the terminal polls every 200 ms
    }
    c_.SetInputs({{"door_contact", false}, {"exit_button", false}, {"tamper", false}});
  }
  Converter& c_;
  std::atomic<bool> stop_{false};
  std::atomic<int> changes_{0};
  std::thread thread_;
};

TEST(ProcessFaults, SigkillAtRandomLosesAndDoublesNothingAndDoorsFailSafe) {
  if (!fs::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "face models not installed (scripts/setup): the terminal cannot start";
  const fs::path root = testing::TempDir("faults-process");
  std::cout << "[ faults ] working directory " << root << "\n";
  const int rounds = Rounds();

  Server server(root / "server", "127.0.0.1", FreePort());
  server.Start();
  const auto [code, device] = server.AddDevice("fault-test gate");

  Converter converter(root / "converter");
  converter.Start();

  TerminalSetup ts;
  ts.dir = root / "terminal";
  ts.server_url = server.url();
  ts.server_ca = server.ca_file();
  ts.enrolment_code = code;
  ts.converter_port = converter.modbus_port();
  ts.frames = root / "terminal-frames";
  WriteFrames(ts.frames, 2, {}, 0);
  Terminal terminal(ts);
  terminal.Start();
  ASSERT_TRUE(WaitFor([&] { return terminal.Registered(); }, Ms(120'000)))
      << "the terminal did not register; see " << terminal.child().log();

  // The capture program, when there are face photos to show it.
  std::unique_ptr<CaptureProgram> capture;
  const fs::path lfw = testing::DataPath("lfw/lfw");
  if (!lfw.empty()) {
    server.AddCamera(kCameraId, kCameraPassword);
    std::vector<fs::path> faces;
    for (const char* who : {"Aaron_Peirsol", "Abel_Pacheco", "Akhmed_Zakayev"})
      faces.push_back(lfw / who / (std::string(who) + "_0001.jpg"));
    WriteFrames(root / "capture-frames", 5, faces, 3);
    capture = std::make_unique<CaptureProgram>(root / "capture", server.url(), server.ca_file(),
                                               kCameraId, kCameraPassword, root / "capture-frames");
    capture->Start();
  } else {
    std::cout << "[ faults ] no LFW photos (ANJU_DATA_DIR): anju-capture is not part of this run\n";
  }

  OutboxWatcher records(terminal.outbox());
  std::unique_ptr<OutboxWatcher> captures;
  if (capture) captures = std::make_unique<OutboxWatcher>(capture->buffer(), FaceIdOf);
  InputDriver driver(converter);
  // Something to lose before the first kill: a few records and, with the camera, a capture.
  EXPECT_TRUE(WaitFor([&] { return records.Seen().size() >= 2; }, Ms(60'000)));
  if (captures) {
    EXPECT_TRUE(WaitFor([&] { return !captures->Seen().empty(); }, Ms(120'000)))
        << "anju-capture made no capture; see " << capture->child().log();
  }

  std::vector<std::string> victims = {"terminal", "server", "converter"};
  if (capture) victims.push_back("capture");
  std::map<std::string, int> kills;
  int door_checks = 0, door_left_open = 0, restarts_failed = 0;
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string> order;
  for (int round = 0; round < rounds; ++round) {
    if (order.empty()) {
      order = victims;
      std::shuffle(order.begin(), order.end(), std::mt19937(std::random_device{}()));
    }
    const std::string victim = order.back();
    order.pop_back();
    std::this_thread::sleep_for(Ms(Random(300, 2500)));
    try {
      if (victim == "terminal") {
        // Open the door from the server, then kill the terminal while (or just after) the
        // converter holds it released: the converter times the pulse, so it must lock.
        bool released = false;
        try {
          server.Api("POST", "/api/v1/devices/" + device + "/commands",
                     {{"type", "open_door"}, {"door", 0}, {"duration_ms", 1500}});
          released = WaitFor([&] { return converter.Released(0); }, Ms(8000));
        } catch (const std::exception& e) {
          std::cout << "[ faults ] open_door not sent: " << e.what() << "\n";
        }
        std::this_thread::sleep_for(Ms(Random(0, 1000)));
        terminal.Kill();
        if (released) {
          ++door_checks;
          if (!WaitFor([&] { return !converter.Released(0); }, Ms(1500 + 1500))) ++door_left_open;
        }
        std::this_thread::sleep_for(Ms(Random(0, 800)));
        terminal.Start();
      } else if (victim == "converter") {
        converter.Kill();
        std::this_thread::sleep_for(Ms(Random(0, 800)));
        converter.Start();
        // A converter that starts again starts locked, whatever it was doing when it died.
        ++door_checks;
        if (converter.Released(0) || converter.Released(1)) ++door_left_open;
      } else if (victim == "server") {
        server.Kill();
        std::this_thread::sleep_for(Ms(Random(0, 800)));
        server.Start();
      } else {
        capture->Kill();
        std::this_thread::sleep_for(Ms(Random(0, 800)));
        capture->Start();
      }
      ++kills[victim];
    } catch (const std::exception& e) {
      ++restarts_failed;
      ADD_FAILURE() << "round " << round << " (" << victim << "): " << e.what();
    }
    std::cout << "[ faults ] round " << round + 1 << "/" << rounds << ": SIGKILL " << victim
              << "; records seen " << records.Seen().size() << "\n";
    // Only the victim dies: a program that exits because a peer died (a write to a socket
    // the killed peer closed raising SIGPIPE, say) is a failure of its own.
    std::this_thread::sleep_for(Ms(300));
    EXPECT_TRUE(server.child().Running()) << "anju-server exited; see " << server.child().log();
    EXPECT_TRUE(terminal.child().Running())
        << "anju-terminal exited; see " << terminal.child().log();
    EXPECT_TRUE(converter.child().Running())
        << "anju-converter exited; see " << converter.child().log();
    if (capture) {
      EXPECT_TRUE(capture->child().Running())
          << "anju-capture exited; see " << capture->child().log();
    }
  }
  driver.Stop();
  const double kill_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  // The terminal still works after all of it: a remote open reaches the door.
  server.Api("POST", "/api/v1/devices/" + device + "/commands",
             {{"type", "open_door"}, {"door", 0}, {"duration_ms", 800}});
  EXPECT_TRUE(WaitFor([&] { return converter.Released(0); }, Ms(15'000)))
      << "the terminal no longer opens the door after the rounds";

  // Drain: the terminal's outbox empties by itself; the capture program is replaced by
  // one on a finite source with --exit-at-end, which uploads its buffer and exits.
  EXPECT_TRUE(WaitFor([&] { return records.Current() == 0; }, Ms(180'000)))
      << "the terminal's outbox did not drain (" << records.Current() << " left)";
  if (capture) {
    capture->Stop();
    WriteFrames(root / "capture-end", 1, {}, 0);
    CaptureProgram drain(root / "capture", server.url(), server.ca_file(), kCameraId,
                         kCameraPassword, root / "capture-end", /*loop=*/false);
    drain.child().argv().insert(drain.child().argv().end(),
                                {"--exit-at-end", "--drain-timeout", "180"});
    drain.Start();
    EXPECT_EQ(drain.child().WaitExit(Ms(240'000)), 0)
        << "the capture buffer did not drain; see " << drain.child().log();
    EXPECT_TRUE(WaitFor([&] { return captures->Current() == 0; }, Ms(10'000)));
  }
  records.Stop();
  if (captures) captures->Stop();
  // Let queued recognitions finish, then stop everything cleanly and read the files.
  std::this_thread::sleep_for(Ms(3000));
  terminal.Stop();
  server.Stop();
  converter.Stop();

  const Delivery ev = CheckEvents(records.Seen(), ServerEvents(server.data_dir(), device));
  const int64_t quarantined = ServerQuarantine(server.data_dir(), device);
  json report = {{"rounds", rounds},
                 {"kills", kills},
                 {"seconds", kill_seconds},
                 {"input_changes", driver.changes()},
                 {"records", ev.ToJson()},
                 {"quarantined", quarantined},
                 {"door_checks", door_checks},
                 {"door_left_released", door_left_open},
                 {"restarts_failed", restarts_failed}};
  EXPECT_GT(ev.acknowledged, size_t(rounds)) << "too few records to judge";
  EXPECT_EQ(ev.lost, 0u) << ev.ToJson().dump(2);
  EXPECT_EQ(ev.duplicates, 0u) << ev.ToJson().dump(2);
  EXPECT_EQ(ev.out_of_order, 0u) << ev.ToJson().dump(2);
  EXPECT_EQ(quarantined, 0);
  EXPECT_EQ(door_left_open, 0);
  if (captures) {
    const auto on_server = ServerCaptures(server.data_dir(), kCameraId);
    const Delivery cap = CheckCaptures(captures->Seen(), on_server);
    int stuck = 0;
    for (const auto& [id, state] : on_server) stuck += state == "queued";
    report["captures"] = cap.ToJson();
    report["captures_queued"] = stuck;
    EXPECT_GT(cap.acknowledged, 0u) << "no capture was made";
    EXPECT_EQ(cap.lost, 0u) << cap.ToJson().dump(2);
    EXPECT_EQ(stuck, 0) << "captures left queued for recognition";
  }
  std::cout << "[ faults ] " << report.dump() << "\n";
  if (const char* f = std::getenv("ANJU_FAULT_REPORT"); f && *f) WriteText(f, report.dump(2));
  if (!HasFailure() && !std::getenv("ANJU_FAULT_KEEP")) fs::remove_all(root);
}

}  // namespace
}  // namespace anju::faults
