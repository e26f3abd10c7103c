// The durable outbox against real SQLite files: FIFO order, Ack, reopen, kill -9 in the
// middle of appends, the disk quota and its alarms, and damaged files.
#include "store/outbox.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "core/error.h"
#include "testing.h"

namespace anju::store {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using ::anju::testing::CodeOf;

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + i * 7);
  return v;
}

std::string Payload(int i) {
  return "{\"n\":" + std::to_string(i) + ",\"text\":\"陌生人 / stranger\"}";
}

int64_t RawCount(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int64_t n = -1;
  if (sqlite3_step(s) == SQLITE_ROW) n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

struct OutboxTest : ::testing::Test {
  fs::path dir = testing::TempDir("outbox");
  fs::path file = dir / "outbox.db";
  ~OutboxTest() override { fs::remove_all(dir); }
};

TEST_F(OutboxTest, AppendPeekAckInOrder) {
  auto box = Outbox::Open(file);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(box->Append(i % 2 ? "alarm" : "access", Payload(i),
                              i % 3 == 0 ? Bytes(5000 + i, uint8_t(i)) : std::vector<uint8_t>{}));
  auto st = box->Stats();
  EXPECT_EQ(st.count, 6);
  EXPECT_GT(st.bytes, 2 * 5000);
  EXPECT_LE(std::chrono::system_clock::now() - st.oldest, 60s);

  auto head = box->Peek(4);
  ASSERT_EQ(head.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(head[i].id, ids[i]);
    EXPECT_EQ(head[i].kind, i % 2 ? "alarm" : "access");
    EXPECT_EQ(head[i].payload, Payload(i));
    EXPECT_EQ(head[i].attachment,
              i % 3 == 0 ? Bytes(5000 + i, uint8_t(i)) : std::vector<uint8_t>{});
    EXPECT_FALSE(head[i].attachment_dropped);
    if (i) {
      EXPECT_GT(head[i].seq, head[i - 1].seq);
    }
  }
  EXPECT_EQ(box->Peek(4).size(), 4u);  // Peek removes nothing

  // Ack the first two (one with a snapshot) plus an unknown id.
  std::vector<std::string> ack = {ids[0], ids[1], "no-such-id"};
  EXPECT_EQ(box->Ack(ack), 2u);
  EXPECT_EQ(box->Ack(ack), 0u);  // a repeated Ack is harmless
  auto rest = box->Peek(100);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0].id, ids[2]);
  EXPECT_EQ(rest[3].id, ids[5]);
  EXPECT_EQ(box->Stats().count, 4);
  EXPECT_EQ(box->Stats().bytes, st.bytes - head[0].bytes - head[1].bytes);

  std::vector<std::string> all(ids.begin() + 2, ids.end());
  EXPECT_EQ(box->Ack(all), 4u);
  EXPECT_EQ(box->Stats().count, 0);
  EXPECT_EQ(box->Stats().bytes, 0);
  EXPECT_EQ(box->Stats().oldest, std::chrono::system_clock::time_point{});
  box.reset();
  // Rows and their snapshots are gone from the file itself.
  EXPECT_EQ(RawCount(file, "SELECT count(*) FROM items"), 0);
  EXPECT_EQ(RawCount(file, "SELECT count(*) FROM items WHERE attachment IS NOT NULL"), 0);
}

TEST_F(OutboxTest, IdsAreUniqueUuids) {
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 20000; ++i) {
    auto id = NewOutboxId();
    if (i < 100) {
      ASSERT_TRUE(std::regex_match(id, uuid)) << id;
    }
    ASSERT_TRUE(seen.insert(id).second) << "duplicate id " << id;
  }
  auto box = Outbox::Open(file);
  std::set<std::string> appended;
  for (int i = 0; i < 20; ++i) appended.insert(box->Append("access", Payload(i)));
  EXPECT_EQ(appended.size(), 20u);
}

TEST_F(OutboxTest, BadArgumentsRefused) {
  auto box = Outbox::Open(file);
  EXPECT_EQ(CodeOf([&] { box->Append("Bad Kind", "{}"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { box->Append("", "{}"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { box->Append("access", "{not json"); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(box->Stats().count, 0);
  EXPECT_EQ(CodeOf([&] { Outbox::Open(dir / "missing" / "outbox.db"); }), ErrorCode::kIo);
  EXPECT_EQ(CodeOf([&] { Outbox::Open(dir); }), ErrorCode::kIo);
  OutboxOptions bad;
  bad.quota_bytes = 0;
  EXPECT_EQ(CodeOf([&] { Outbox::Open(dir / "other.db", bad); }), ErrorCode::kInvalidArgument);
}

TEST_F(OutboxTest, ReopenKeepsEverything) {
  std::vector<OutboxItem> before;
  {
    auto box = Outbox::Open(file);
    for (int i = 0; i < 10; ++i)
      box->Append("door_event", Payload(i), Bytes(i * 100, uint8_t(i)),
                  std::chrono::system_clock::time_point(std::chrono::seconds(1700000000 + i)));
    box->Ack(std::vector<std::string>{box->Peek(1)[0].id});
    before = box->Peek(100);
  }
  auto box = Outbox::Open(file);
  auto after = box->Peek(100);
  ASSERT_EQ(after.size(), 9u);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].id, before[i].id);
    EXPECT_EQ(after[i].seq, before[i].seq);
    EXPECT_EQ(after[i].payload, before[i].payload);
    EXPECT_EQ(after[i].attachment, before[i].attachment);
    EXPECT_EQ(after[i].created, before[i].created);
  }
  EXPECT_EQ(box->Stats().oldest,
            std::chrono::system_clock::time_point(std::chrono::seconds(1700000001)));
  // New items go after the old ones; sequence numbers are never reused.
  box->Append("access", "{}");
  auto all = box->Peek(100);
  EXPECT_GT(all.back().seq, before.back().seq);
}

// A child appends in a loop and reports each id Append returned through a pipe; it is
// killed with SIGKILL at a random moment. Every reported id must be in the reopened
// outbox, exactly once. Three rounds on the same file (recovery, then more appends).
TEST_F(OutboxTest, KillNineLosesNothingReported) {
  std::random_device rd;
  const unsigned seed = rd();
  std::mt19937 rng(seed);
  std::printf("    seed %u\n", seed);
  std::set<std::string> reported;
  size_t appended_total = 0;
  double rate_sum = 0;
  for (int round = 0; round < 3; ++round) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fds[0]);
      try {
        auto box = Outbox::Open(file);
        auto snap = Bytes(4096, 1);
        for (int i = 0; i < 1000000; ++i) {
          std::string id =
              box->Append(i % 5 ? "access" : "alarm", Payload(i),
                          i % 2 ? std::span<const uint8_t>(snap) : std::span<const uint8_t>{});
          id.push_back('\n');
          if (::write(fds[1], id.data(), id.size()) != ssize_t(id.size())) ::_exit(3);
        }
      } catch (...) {
        ::_exit(2);
      }
      ::_exit(0);
    }
    ::close(fds[1]);
    // Read ids until a random moment after the first one, then SIGKILL.
    std::string buf;
    const auto kill_after =
        std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 250)(rng));
    std::optional<std::chrono::steady_clock::time_point> deadline;
    char chunk[4096];
    while (!deadline || std::chrono::steady_clock::now() < *deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 5) > 0) {
        ssize_t n = ::read(fds[0], chunk, sizeof chunk);
        if (n <= 0) break;
        buf.append(chunk, size_t(n));
        if (!deadline) deadline = std::chrono::steady_clock::now() + kill_after;
      }
      ASSERT_LT(std::chrono::steady_clock::now() - start, 10s) << "child reported nothing";
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (ssize_t n; (n = ::read(fds[0], chunk, sizeof chunk)) > 0;) buf.append(chunk, size_t(n));
    ::close(fds[0]);
    size_t in_round = 0;
    for (size_t pos = 0, nl; (nl = buf.find('\n', pos)) != std::string::npos; pos = nl + 1) {
      ASSERT_TRUE(reported.insert(buf.substr(pos, nl - pos)).second);
      ++in_round;
    }
    ASSERT_GT(in_round, 0u);
    appended_total += in_round;
    rate_sum += double(in_round) / secs;

    auto box = Outbox::Open(file);
    auto items = box->Peek(SIZE_MAX);
    std::set<std::string> present;
    const auto snap = Bytes(4096, 1);
    for (const auto& it : items) {
      EXPECT_TRUE(present.insert(it.id).second) << "duplicate " << it.id;
      // Record and snapshot are committed together: never a torn attachment.
      EXPECT_TRUE(it.attachment.empty() || it.attachment == snap) << it.id;
      EXPECT_TRUE(nlohmann::json::accept(it.payload)) << it.payload;
    }
    for (const auto& id : reported) {
      EXPECT_TRUE(present.count(id)) << "lost " << id;
    }
    // At most one committed Append per round whose id the child had no time to report.
    EXPECT_LE(present.size(), reported.size() + size_t(round + 1));
    for (size_t i = 1; i < items.size(); ++i) {
      EXPECT_GT(items[i].seq, items[i - 1].seq);
    }
    EXPECT_EQ(box->Stats().count, int64_t(items.size()));
    std::printf("    round %d: killed after %zu appends (%.0f ms), %zu items on reopen\n", round,
                in_round, secs * 1000, items.size());
  }
  std::printf("    %zu reported appends survived; ~%.0f appends/s with synchronous=FULL\n",
              appended_total, rate_sum / 3);
}

TEST_F(OutboxTest, ThreadsAppendConcurrently) {
  auto box = Outbox::Open(file);
  std::vector<std::thread> threads;
  std::vector<std::vector<std::string>> ids(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 15; ++i) {
        ids[t].push_back(box->Append("access", Payload(t * 100 + i)));
        box->Stats();
        box->Peek(3);
      }
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 60u);
  EXPECT_EQ(box->Stats().count, 60);
  // Per thread, the FIFO keeps each thread's order.
  auto items = box->Peek(100);
  for (const auto& v : ids) {
    std::vector<size_t> pos;
    for (const auto& id : v)
      pos.push_back(size_t(std::find_if(items.begin(), items.end(),
                                        [&](const OutboxItem& it) { return it.id == id; }) -
                           items.begin()));
    EXPECT_TRUE(std::is_sorted(pos.begin(), pos.end()));
  }
}

size_t CountAlarms(const std::vector<OutboxItem>& items, const std::string& type) {
  return size_t(std::count_if(items.begin(), items.end(), [&](const OutboxItem& it) {
    return it.kind == "alarm" &&
           it.payload.find("\"alarm_type\":\"" + type + "\"") != std::string::npos;
  }));
}

TEST_F(OutboxTest, QuotaAlarmsBeforeDroppingAndKeepsRecords) {
  OutboxOptions o;
  o.quota_bytes = 20000;
  o.high_water = 0.9;
  o.low_water = 0.5;
  o.record_reserve_bytes = 2000;
  auto box = Outbox::Open(file, o);
  const auto snap = Bytes(1500, 9);

  // Fill with snapshots until the first near-full alarm appears.
  std::vector<std::string> ids;
  while (box->Stats().near_full_alarms == 0) {
    ASSERT_LT(ids.size(), 20u);
    const int64_t before = box->Stats().bytes;
    ids.push_back(box->Append("access", Payload(int(ids.size())), snap));
    if (box->Stats().near_full_alarms == 0) {
      EXPECT_LT(double(box->Stats().bytes), 0.9 * 20000);
    } else {
      EXPECT_LT(double(before), 0.9 * 20000);
    }
  }
  auto st = box->Stats();
  EXPECT_TRUE(st.near_full);
  EXPECT_FALSE(st.full);
  EXPECT_EQ(st.attachments_dropped, 0);  // the alarm came before anything was dropped
  auto items = box->Peek(100);
  ASSERT_EQ(CountAlarms(items, "outbox_near_full"), 1u);
  // The alarm record precedes the item that crossed the mark.
  EXPECT_EQ(items[items.size() - 2].kind, "alarm");
  EXPECT_EQ(items.back().id, ids.back());
  for (const auto& it : items) {
    EXPECT_FALSE(it.attachment_dropped);
  }

  // Past the quota: snapshots are refused, the records themselves are kept.
  int dropped_at = -1;
  for (int i = 0; i < 10; ++i) {
    std::string id = box->Append("access", Payload(100 + i), snap);
    ids.push_back(id);
    auto last = box->Peek(1000).back();
    ASSERT_EQ(last.id, id);
    EXPECT_EQ(last.payload, Payload(100 + i));
    if (last.attachment_dropped) {
      EXPECT_TRUE(last.attachment.empty());
      if (dropped_at < 0) dropped_at = i;
    } else {
      EXPECT_EQ(dropped_at, -1) << "a snapshot was stored after one was dropped";
      EXPECT_EQ(last.attachment, snap);
    }
  }
  ASSERT_GE(dropped_at, 0);
  st = box->Stats();
  EXPECT_TRUE(st.full);
  EXPECT_EQ(st.near_full_alarms, 1);  // once per crossing
  EXPECT_GE(st.attachments_dropped, 1);
  EXPECT_LE(st.bytes, o.quota_bytes + o.record_reserve_bytes);
  items = box->Peek(1000);
  EXPECT_EQ(CountAlarms(items, "outbox_near_full"), 1u);
  EXPECT_EQ(CountAlarms(items, "outbox_full"), 1u);

  // Records without snapshots use the reserve; past it Append refuses loudly, and
  // nothing already stored is gone.
  size_t records_in_reserve = 0;
  for (;;) {
    try {
      ids.push_back(box->Append("alarm", "{\"type\":\"tamper\"}"));
      ++records_in_reserve;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
      break;
    }
    ASSERT_LT(records_in_reserve, 100u);
  }
  EXPECT_GT(records_in_reserve, 0u);
  items = box->Peek(1000);
  std::set<std::string> present;
  for (const auto& it : items) present.insert(it.id);
  for (const auto& id : ids) {
    EXPECT_TRUE(present.count(id)) << "dropped " << id;
  }

  // The state survives a restart: no second alarm while still above the mark.
  box.reset();
  box = Outbox::Open(file, o);
  EXPECT_TRUE(box->Stats().near_full);
  EXPECT_TRUE(box->Stats().full);
  items = box->Peek(3);
  std::vector<std::string> first3;
  for (const auto& it : items) first3.push_back(it.id);
  EXPECT_EQ(box->Ack(first3), 3u);  // still above the low-water mark
  box->Append("access", "{}", snap);
  EXPECT_EQ(box->Stats().near_full_alarms, 1);
  EXPECT_TRUE(box->Stats().near_full);

  // Draining below the low-water mark re-arms the alarm; the next crossing raises it again.
  items = box->Peek(1000);
  std::vector<std::string> drain;
  for (const auto& it : items) drain.push_back(it.id);
  box->Ack(drain);
  st = box->Stats();
  EXPECT_FALSE(st.near_full);
  EXPECT_FALSE(st.full);
  EXPECT_EQ(st.count, 0);
  for (int i = 0; i < 20 && box->Stats().near_full_alarms == 1; ++i)
    box->Append("access", Payload(i), snap);
  EXPECT_EQ(box->Stats().near_full_alarms, 2);
  EXPECT_EQ(CountAlarms(box->Peek(1000), "outbox_near_full"), 1u);
}

TEST_F(OutboxTest, DamagedFilesRefused) {
  // Not a database at all.
  {
    std::ofstream f(file, std::ios::binary);
    std::string junk(8192, 'x');
    f << "this is not a database" << junk;
  }
  EXPECT_EQ(CodeOf([&] { Outbox::Open(file); }), ErrorCode::kCorrupt);

  // A SQLite database of something else.
  fs::remove(file);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(CodeOf([&] { Outbox::Open(file); }), ErrorCode::kCorrupt);

  // A real outbox with pages overwritten in the middle.
  fs::remove(file);
  {
    auto box = Outbox::Open(file);
    for (int i = 0; i < 30; ++i) box->Append("access", Payload(i), Bytes(3000, uint8_t(i)));
  }
  ASSERT_GT(fs::file_size(file), 40000u);
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(16384, '\xA5');
    f.write(junk.data(), std::streamsize(junk.size()));
  }
  EXPECT_EQ(CodeOf([&] {
              auto box = Outbox::Open(file);
              box->Peek(1000);
            }),
            ErrorCode::kCorrupt);

  // Truncated to half.
  fs::remove(file);
  {
    auto box = Outbox::Open(file);
    for (int i = 0; i < 30; ++i) box->Append("access", Payload(i), Bytes(3000, uint8_t(i)));
  }
  fs::resize_file(file, fs::file_size(file) / 2);
  EXPECT_EQ(CodeOf([&] {
              auto box = Outbox::Open(file);
              box->Peek(1000);
            }),
            ErrorCode::kCorrupt);
}

// OpenOrSalvage (docs/outbox.md, "Damaged files"): a damaged outbox is moved aside and
// every readable item is carried over with its id, time, payload and attachment.
TEST_F(OutboxTest, DamagedFileIsMovedAsideAndReadableItemsSalvaged) {
  std::vector<std::string> ids;
  {
    auto box = Outbox::Open(file);
    for (int i = 0; i < 200; ++i)
      ids.push_back(box->Append("access", Payload(i), Bytes(i % 4 ? 0 : 3000, uint8_t(i))));
    box->Ack(std::span(ids).first(20));  // acknowledged items must not come back
  }
  const auto original = Outbox::Open(file)->Peek(1000);
  ASSERT_EQ(original.size(), 180u);
  // Overwrite one page near the end (a leaf of the items table).
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto pages = int64_t(fs::file_size(file)) / 4096;
    f.seekp((pages - 2) * 4096);
    const std::string junk(4096, '\x5A');
    f.write(junk.data(), std::streamsize(junk.size()));
  }
  EXPECT_EQ(CodeOf([&] { Outbox::Open(file); }), ErrorCode::kCorrupt);
  OutboxSalvage report;
  auto box = Outbox::OpenOrSalvage(file, {}, &report);
  EXPECT_TRUE(report.happened);
  EXPECT_NE(report.reason.find("outbox"), std::string::npos) << report.reason;
  EXPECT_TRUE(fs::exists(report.moved_to));
  EXPECT_GT(report.salvaged, 150);
  const auto items = box->Peek(1000);
  EXPECT_EQ(int64_t(items.size()), report.salvaged);
  // Same ids, kinds, times, payloads and snapshots as before, in the same order.
  size_t j = 0;
  for (const auto& it : items) {
    while (j < original.size() && original[j].id != it.id) ++j;
    ASSERT_LT(j, original.size()) << "an item out of order or not in the original: " << it.id;
    EXPECT_EQ(it.kind, original[j].kind);
    EXPECT_EQ(it.payload, original[j].payload);
    EXPECT_EQ(it.attachment, original[j].attachment);
    EXPECT_EQ(it.created, original[j].created);
  }
  // A healthy file is opened as it is.
  OutboxSalvage again;
  Outbox::OpenOrSalvage(file, {}, &again);
  EXPECT_FALSE(again.happened);
}

}  // namespace
}  // namespace anju::store
