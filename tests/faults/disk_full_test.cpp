// A full disk on the terminal (docs/reliability.md, "Disk full"): the terminal's data
// directory lives on a small tmpfs the test mounts, which the test then fills. Records
// the outbox refuses are kept in memory, /healthz says why, nothing stored before is
// lost, and when space returns the waiting records are written and uploaded in order.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <fstream>
#include <iostream>

#include "core/paths.h"
#include "fault_site.h"
#include "testing.h"

namespace anju::faults {
namespace {

class Mount {
 public:
  explicit Mount(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    ok_ = mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=24m,mode=0700") == 0;
  }
  ~Mount() {
    if (ok_) umount2(dir_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }

 private:
  fs::path dir_;
  bool ok_ = false;
};

TEST(DiskFull, TerminalKeepsRecordsInMemoryAndRecoversWhenSpaceReturns) {
  if (!IsRoot()) GTEST_SKIP() << "needs root: the test mounts a small tmpfs for the terminal";
  if (!fs::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "face models not installed (scripts/setup)";
  const fs::path root = testing::TempDir("faults-disk");
  Mount disk(root / "disk");
  if (!disk.ok()) GTEST_SKIP() << "cannot mount a tmpfs here";

  Server server(root / "server", "127.0.0.1", FreePort());
  server.Start();
  const auto [code, device] = server.AddDevice("disk-full gate");
  Converter converter(root / "converter");
  converter.Start();
  TerminalSetup ts = GateSetup(root / "terminal", server.url(), server.ca_file(), code,
                               converter.modbus_port(), root / "frames");
  ts.data_dir = root / "disk" / "data";
  Terminal terminal(ts);
  terminal.Start();
  auto status = [&] { return terminal.Status(); };
  ASSERT_TRUE(WaitFor(
      [&] { return status().value("/server/state"_json_pointer, std::string()) == "online"; },
      Ms(120'000)))
      << "terminal not online; see " << terminal.child().log();
  OutboxWatcher records(terminal.outbox());

  // Records waiting in the outbox when the disk fills: the server is away.
  server.Stop();
  converter.FlipDoorContact(6);
  ASSERT_TRUE(WaitFor([&] { return records.Current() >= 4; }, Ms(10'000)));
  const size_t before_full = records.Seen().size();

  const size_t filled = anju::testing::FillDisk(root / "disk" / "filler");
  std::cout << "[ faults ] filled the terminal's disk with " << filled << " bytes\n";
  // The outbox's write-ahead log may still have room for a few records; keep going until
  // the terminal has to hold some in memory.
  int64_t pending = 0;
  for (int i = 0; i < 40 && pending == 0; ++i) {
    converter.FlipDoorContact(1);
    pending = status().value("/records/pending"_json_pointer, int64_t{0});
  }
  ASSERT_GT(pending, 0) << "the full disk never refused a record";
  const HttpReply degraded = terminal.Get("/healthz");
  EXPECT_EQ(degraded.status, 503) << degraded.body;
  EXPECT_NE(degraded.body.find("records could not be stored"), std::string::npos) << degraded.body;
  converter.FlipDoorContact(4);
  const json full = status();
  std::cout << "[ faults ] disk full: " << full["records"].dump() << "\n";
  EXPECT_TRUE(terminal.child().Running()) << "the terminal died on a full disk";
  EXPECT_NE(ReadText(terminal.child().log()).find("kept in memory"), std::string::npos);

  // The server returns while the disk is still full: uploads go on (acknowledging needs
  // disk space too, so some are sent twice; the server keeps one).
  server.Start();
  std::this_thread::sleep_for(Ms(3000));

  // Space returns.
  fs::remove(root / "disk" / "filler");
  const auto freed = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitFor([&] { return terminal.Get("/healthz").status == 200; }, Ms(30'000)))
      << terminal.Get("/healthz").body;
  const double recovery_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - freed).count();
  EXPECT_EQ(status().value("/records/pending"_json_pointer, int64_t{-1}), 0);
  converter.FlipDoorContact(4);
  EXPECT_TRUE(WaitFor([&] { return records.Current() == 0; }, Ms(60'000)))
      << records.Current() << " records still in the outbox";
  records.Stop();
  const json last = status();
  terminal.Stop();
  server.Stop();
  converter.Stop();

  const Delivery d = CheckEvents(records.Seen(), ServerEvents(server.data_dir(), device));
  json report = {{"filled_bytes", filled},
                 {"records_before_full", before_full},
                 {"pending_in_memory_peak", full.value("/records/pending"_json_pointer, 0)},
                 {"recovery_s", recovery_s},
                 {"dropped", last.value("/records/dropped"_json_pointer, -1)},
                 {"records", d.ToJson()}};
  std::cout << "[ faults ] " << report.dump() << "\n";
  EXPECT_EQ(last.value("/records/dropped"_json_pointer, -1), 0);
  EXPECT_GT(d.acknowledged, before_full + size_t(pending));
  EXPECT_EQ(d.lost, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.duplicates, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(d.out_of_order, 0u) << d.ToJson().dump(2);
  EXPECT_EQ(ServerQuarantine(server.data_dir(), device), 0);
  if (!HasFailure()) fs::remove_all(root / "server");
}

}  // namespace
}  // namespace anju::faults
