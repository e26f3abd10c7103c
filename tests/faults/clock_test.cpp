// A terminal clock set forward and back while it runs (docs/reliability.md, "Clock"):
// anju-terminal runs under Debian's libfaketime, whose offset the test rewrites in a file
// (the monotonic clock is left alone, as an operator or a bad NTP server would leave it).
// Beyond the protocol's 5-minute window the server refuses the terminal's requests: the
// terminal must say so (status, /healthz), keep every record, and upload them in order as
// soon as its clock is right again; no timer may stall because the wall clock jumped.
#include <gtest/gtest.h>
#include <unistd.h>

#include <iostream>

#include "core/paths.h"
#include "fault_site.h"
#include "testing.h"

namespace anju::faults {
namespace {

constexpr const char* kFaketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

TEST(Clock, TerminalClockSetForwardAndBackLosesNothingAndSaysWhy) {
  if (access(kFaketime, R_OK) != 0)
    GTEST_SKIP() << "libfaketime not installed (Debian package faketime, scripts/setup)";
  if (!fs::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "face models not installed (scripts/setup)";
  const fs::path root = testing::TempDir("faults-clock");
  const fs::path offset = root / "faketime";
  WriteText(offset, "+0\n");

  Server server(root / "server", "127.0.0.1", FreePort());
  server.Start();
  const auto [code, device] = server.AddDevice("clock gate");
  Converter converter(root / "converter");
  converter.Start();
  TerminalSetup ts = GateSetup(root / "terminal", server.url(), server.ca_file(), code,
                               converter.modbus_port(), root / "frames");
  ts.env = {std::string("LD_PRELOAD=") + kFaketime, "FAKETIME_TIMESTAMP_FILE=" + offset.string(),
            "FAKETIME_NO_CACHE=1", "DONT_FAKE_MONOTONIC=1"};
  Terminal terminal(ts);
  terminal.Start();
  auto status = [&] { return terminal.Status(); };
  auto state = [&] { return status().value("/server/state"_json_pointer, std::string()); };
  ASSERT_TRUE(WaitFor([&] { return state() == "online"; }, Ms(120'000)))
      << "terminal not online; see " << terminal.child().log();
  OutboxWatcher records(terminal.outbox());
  converter.FlipDoorContact(4);
  // Online, the records reach the server: counted there, since an upload can now finish
  // between two reads of the watcher (20 ms apart) and the watcher never sees its record.
  ASSERT_TRUE(WaitFor(
      [&] { return records.Current() == 0 && ServerEvents(server.data_dir(), device).size() >= 3; },
      Ms(20'000)));

  json report = json::object();
  // Forward 2 hours, then back 30 minutes (within the server certificate's one-hour margin,
  // so TLS still verifies and the device protocol's own time check is what refuses), then
  // back 3 days (before the certificate's start: a new TLS handshake fails too, the link
  // may show offline; kept-alive connections still get the protocol's clock_skew).
  for (const char* jump : {"+2h", "-30m", "-3d"}) {
    SCOPED_TRACE(jump);
    const size_t before = records.Seen().size();
    WriteText(offset, std::string(jump) + "\n");
    converter.FlipDoorContact(6);
    EXPECT_TRUE(WaitFor([&] { return state() == "refused" || state() == "offline"; }, Ms(30'000)))
        << state();
    if (WaitFor([&] { return state() == "refused"; }, Ms(5000))) {
      const HttpReply health = terminal.Get("/healthz");
      EXPECT_EQ(health.status, 503) << health.body;
      EXPECT_NE(health.body.find("set the clock"), std::string::npos) << health.body;
    }
    report[std::string(jump) + "_error"] =
        status().value("/server/upload/last_error"_json_pointer, std::string());
    EXPECT_GT(records.Current(), 0) << "records written under the wrong clock were not kept";
    const int64_t waiting = records.Current();

    WriteText(offset, "+0\n");
    const auto fixed = std::chrono::steady_clock::now();
    EXPECT_TRUE(WaitFor([&] { return records.Current() == 0; }, Ms(90'000)))
        << records.Current() << " records still waiting after the clock was set right";
    const double resume_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - fixed).count();
    EXPECT_TRUE(WaitFor([&] { return terminal.Get("/healthz").status == 200; }, Ms(30'000)))
        << terminal.Get("/healthz").body;
    report[jump] = {{"records_made", records.Seen().size() - before},
                    {"waiting", waiting},
                    {"resumed_after_fix_s", resume_s}};
  }
  records.Stop();
  terminal.Stop();
  server.Stop();
  converter.Stop();

  const Delivery d = CheckEvents(records.Seen(), ServerEvents(server.data_dir(), device));
  report["records"] = d.ToJson();
  std::cout << "[ faults ] " << report.dump() << "\n";
  EXPECT_EQ(d.lost, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.duplicates, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.out_of_order, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(ServerQuarantine(server.data_dir(), device), 0)
      << "records stamped by the wrong clock were refused by the server";
  if (!HasFailure() && !std::getenv("ANJU_FAULT_KEEP")) fs::remove_all(root);
}

}  // namespace
}  // namespace anju::faults
