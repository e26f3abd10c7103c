// The server's data disk filled (docs/reliability.md, "Disk full"): the test mounts a small
// tmpfs as the data directory (needs root) and fills it. Writes must answer 507
// insufficient_storage (they answered 400 "COMMIT: constraint failed"), the storage_full
// alarm must be listed, /healthz must say degraded, nothing stored before is lost, and all of
// it returns to normal once space is back.
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>
#include <vector>

#include "server/health/storage_health.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using StorageFullTest = ServerTest;

TEST_F(StorageFullTest, WritesAnswer507AlarmIsRaisedHealthDegradesAndRecovers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root: the test mounts a small tmpfs";
  StopServer();
  if (mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=40m,mode=0700") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::unique_ptr<Server>& server;
    fs::path dir;
    ~Unmount() {
      server.reset();
      umount2(dir.c_str(), MNT_DETACH);
    }
  } unmount{server_, dir_};
  StartServer();  // a fresh data directory on the tmpfs

  const fs::path reserve = dir_ / StorageHealth::kReserveName;
  ASSERT_TRUE(fs::exists(reserve));
  EXPECT_EQ(fs::file_size(reserve), StorageHealth::kDefaultReserveBytes);
  auto health = [&] {
    auto r = Raw("GET", "/healthz", "");
    EXPECT_TRUE(r);
    return r ? std::make_pair(r->status, json::parse(r->body)) : std::make_pair(0, json());
  };
  auto [status, body] = health();
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(body["storage"]["state"], "ok");
  CreatePerson("P0001", "张三");

  const fs::path filler = dir_ / "filler";
  ASSERT_GT(anju::testing::FillDisk(filler), 0u);
  // SQLite may still find room in pages it holds; the first refused write is the one.
  ApiResult refused;
  int written = 0;
  for (int i = 0; i < 500; ++i) {
    refused = Api("POST", "/api/v1/persons",
                  {{"code", "F" + std::to_string(1000 + i)}, {"name", "李四" + std::to_string(i)}});
    if (refused.status != 201) break;
    ++written;
  }
  ASSERT_EQ(refused.status, 507) << "after " << written << " writes: " << refused.body;
  EXPECT_EQ(refused.body["error"]["code"], "insufficient_storage") << refused.body;
  EXPECT_NE(refused.body.dump().find("disk full"), std::string::npos) << refused.body;

  // The alarm is listed where the console reads alarms; /healthz says why.
  const auto alarms = Api("GET", "/api/v1/alarms?state=new");
  ASSERT_EQ(alarms.status, 200) << alarms.body;
  int storage_alarms = 0;
  for (const auto& a : alarms.body["items"])
    if (a["type"] == "storage_full") {
      ++storage_alarms;
      EXPECT_EQ(a["severity"], "critical");
      EXPECT_EQ(a["device_id"], "anju-server");
    }
  EXPECT_EQ(storage_alarms, 1) << alarms.body;
  std::tie(status, body) = health();
  EXPECT_EQ(status, 503) << body;
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["storage"]["state"], "full");
  EXPECT_EQ(body["storage"]["alarm_raised"], true);
  EXPECT_NE(body["storage"]["error"].get<std::string>().find("insufficient_storage"),
            std::string::npos);
  // Nothing stored before is lost, and reads still work.
  EXPECT_EQ(Api("GET", "/api/v1/persons/P0001").status, 200);

  // Space returns: healthy again by itself, the reserve is back, writes work.
  fs::remove(filler);
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(15)) {
    std::tie(status, body) = health();
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(status, 200) << body;
  EXPECT_EQ(body["status"], "ok");
  EXPECT_TRUE(fs::exists(reserve));
  CreatePerson("P0002", "王五");
  // One episode, one alarm.
  const auto after = Api("GET", "/api/v1/alarms?state=new");
  int count = 0;
  for (const auto& a : after.body["items"]) count += a["type"] == "storage_full";
  EXPECT_EQ(count, 1);
}

}  // namespace
}  // namespace anju::server::testing
