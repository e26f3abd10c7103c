// A network partition between terminal and server (docs/reliability.md, "Partitions"):
// anju-server runs in its own network namespace, reached over a veth pair the test makes;
// cutting the link from the namespace's side leaves the terminal's packets going nowhere
// (no reset, no "unreachable": a cable pulled out). While cut off the terminal records
// door events, and a large backlog is put into its outbox (the test appends it through
// store::Outbox while the terminal is stopped, as days of records would be). When the link
// returns, everything is on the server in outbox order, exactly once.
//
// Needs root and network namespaces; skipped with the reason otherwise.
// ANJU_PARTITION_BACKLOG sets the backlog (default 5,000 records, every 5th with an 8 KB
// snapshot).
#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "core/paths.h"
#include "fault_site.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::faults {
namespace {

int Backlog() {
  const char* b = std::getenv("ANJU_PARTITION_BACKLOG");
  return b && *b ? std::max(1, std::atoi(b)) : 5000;
}

std::vector<uint8_t> FakeSnapshot(int n) {
  // JPEG markers around filler: the server checks the signature, stores it sealed and
  // never decodes it.
  std::vector<uint8_t> b(8192, uint8_t(n));
  b[0] = 0xFF, b[1] = 0xD8, b[2] = 0xFF, b[3] = 0xE0;
  b[b.size() - 2] = 0xFF, b[b.size() - 1] = 0xD9;
  return b;
}

TEST(Partition, BacklogDrainsInOrderExactlyOnceAfterTheLinkReturns) {
  if (const std::string why = NetNs::Unavailable(); !why.empty())
    GTEST_SKIP() << "network partition test skipped: " << why;
  if (!fs::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "face models not installed (scripts/setup)";
  const fs::path root = testing::TempDir("faults-partition");
  NetNs ns("part");

  Server server(root / "server", ns.ns_ip(), 8640, ns.name());
  server.Start();
  const auto [code, device] = server.AddDevice("partition gate");
  Converter converter(root / "converter");
  converter.Start();
  Terminal terminal(GateSetup(root / "terminal", server.url(), server.ca_file(), code,
                              converter.modbus_port(), root / "frames"));
  terminal.Start();
  auto link = [&] { return terminal.Status().value("/server/state"_json_pointer, std::string()); };
  ASSERT_TRUE(WaitFor([&] { return link() == "online"; }, Ms(120'000)))
      << "terminal not online; see " << terminal.child().log();
  OutboxWatcher records(terminal.outbox());
  converter.FlipDoorContact(4);
  // Online, the records reach the server: counted there, since an upload can now finish
  // between two reads of the watcher (20 ms apart) and the watcher never sees its record.
  ASSERT_TRUE(WaitFor(
      [&] { return records.Current() == 0 && ServerEvents(server.data_dir(), device).size() >= 3; },
      Ms(20'000)));

  ns.Cut();
  const auto cut = std::chrono::steady_clock::now();
  converter.FlipDoorContact(10);
  EXPECT_TRUE(WaitFor([&] { return link() == "offline"; }, Ms(60'000))) << link();
  EXPECT_GT(records.Current(), 0);

  // Days of records, appended while the terminal is stopped and still cut off.
  terminal.Stop();
  const int backlog = Backlog();
  {
    auto box = store::Outbox::Open(terminal.outbox());
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    for (int i = 0; i < backlog; ++i) {
      const json payload = {{"time_ms", now - (backlog - i) * 1000},
                            {"door", 0},
                            {"decision", i % 7 ? "deny" : "stranger"},
                            {"reason", "partition_backlog"},
                            {"person", nullptr},
                            {"n", i},
                            {"terminal", "fault-gate"}};
      box->Append("access", payload.dump(), i % 5 == 0 ? FakeSnapshot(i) : std::vector<uint8_t>{});
    }
  }
  terminal.Start();
  ASSERT_TRUE(WaitFor([&] { return terminal.Get("/healthz").status > 0; }, Ms(120'000)));
  converter.FlipDoorContact(6);
  std::this_thread::sleep_for(Ms(3000));
  const int64_t waiting = records.Current();
  EXPECT_GE(waiting, backlog);
  const double cut_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - cut).count();

  ns.Heal();
  const auto healed = std::chrono::steady_clock::now();
  // The uploader notices the link by its next attempt (capped back-off, 30 s at most).
  WaitFor([&] { return records.Current() >= 0 && records.Current() < waiting; }, Ms(120'000));
  const double first_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count();
  const bool drained = WaitFor([&] { return records.Current() == 0; }, Ms(900'000));
  const double drain_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count();
  EXPECT_TRUE(drained) << records.Current() << " records left after " << drain_s << " s";
  records.Stop();
  terminal.Stop();
  server.Stop();
  converter.Stop();

  const Delivery d = CheckEvents(records.Seen(), ServerEvents(server.data_dir(), device));
  const json report = {
      {"backlog", backlog},
      {"waiting_at_heal", waiting},
      {"cut_s", cut_s},
      {"first_upload_after_heal_s", first_s},
      {"drain_s", drain_s},
      {"records_per_s", drain_s > first_s ? double(waiting) / (drain_s - first_s) : 0},
      {"records", d.ToJson()}};
  std::cout << "[ faults ] " << report.dump() << "\n";
  if (const char* f = std::getenv("ANJU_FAULT_REPORT"); f && *f) WriteText(f, report.dump(2));
  EXPECT_EQ(d.lost, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.duplicates, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.out_of_order, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(ServerQuarantine(server.data_dir(), device), 0);
  if (!HasFailure() && !std::getenv("ANJU_FAULT_KEEP")) fs::remove_all(root);
}

}  // namespace
}  // namespace anju::faults
