// What only the NATS JetStream runtime promises (docs/distributed.md): several processes
// (here: several connections, or a peer process killed with SIGKILL) share one queue, one
// event sequence, one set of counters and one holder per lease, and nothing queued is lost
// when nats-server restarts.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "runtime_test_support.h"
#include "server/runtime/nats_event_bus.h"
#include "server/runtime/nats_kv.h"
#include "server/runtime/nats_notifier.h"
#include "server/runtime/nats_work_queue.h"
#include "testing.h"

namespace anju::server::runtime {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
using testing::Connect;
using testing::Peer;
using testing::UniquePrefix;

int64_t MsSince(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t).count();
}

// ---- connection and local server ------------------------------------------------------

TEST(NatsConnection, UnreachableServerIsAClearErrorAtOnce) {
  ANJU_REQUIRE_NATS(server);
  LocalNatsServer gone;  // a port that was a server's a moment ago
  const std::string url = gone.url();
  gone.Kill();
  NatsOptions o;
  o.url = url;
  const auto t0 = Steady::now();
  try {
    NatsConnection::Connect(o);
    ADD_FAILURE() << "connected to nothing";
  } catch (const Error& e) {
    std::printf("    refused: %s\n", e.what());
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(url), std::string::npos);
  }
  EXPECT_LT(MsSince(t0), 3000);
}

// R3.4.2.1: a process started before its nats-server waits for it (0.5 s doubling to 5 s)
// instead of exiting, and then works as if the server had been there.
TEST(NatsConnection, ConnectWaitingWaitsForAServerStartedLaterAndThenWorks) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer later;
  later.Stop();  // its port and store, nobody listening
  NatsOptions o;
  o.url = later.url();
  o.prefix = UniquePrefix();
  std::thread starter([&] {
    std::this_thread::sleep_for(2s);
    later.Start();
  });
  const auto t0 = Steady::now();
  std::shared_ptr<NatsConnection> conn;
  try {
    conn = NatsConnection::ConnectWaiting(o, [] { return false; });
  } catch (const Error& e) {
    ADD_FAILURE() << "gave up: " << e.what();
  }
  starter.join();
  ASSERT_TRUE(conn);
  const int64_t waited = MsSince(t0);
  EXPECT_GE(waited, 1900) << "connected before the server was there";
  // Attempts at 0, 0.5, 1.5 and 3.5 s: the one after the start connects.
  EXPECT_LT(waited, 6000);
  NatsWorkQueue q(conn);
  q.Push({"after-wait", "crop", 0, 1, 0});
  auto item = q.Pop(5s);
  ASSERT_TRUE(item);
  EXPECT_EQ(item->id, "after-wait");
  q.Ack(*item);
}

// SIGTERM must still stop a process that waits for its bus: the wait looks at STOP often.
TEST(NatsConnection, ConnectWaitingStopsPromptlyWhenAsked) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer gone;
  const std::string url = gone.url();
  gone.Kill();
  NatsOptions o;
  o.url = url;
  std::atomic<bool> stop{false};
  std::thread asker([&] {
    std::this_thread::sleep_for(2500ms);  // amid a 2 s back-off step
    stop = true;
  });
  const auto t0 = Steady::now();
  try {
    NatsConnection::ConnectWaiting(o, [&] { return stop.load(); });
    ADD_FAILURE() << "connected to nothing";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("stopped"), std::string::npos) << e.what();
  }
  asker.join();
  EXPECT_GE(MsSince(t0), 2500);
  EXPECT_LT(MsSince(t0), 3200);
  // A mistake in the options is not waited for: it will not heal.
  o.prefix = "a.b";
  EXPECT_EQ(
      ::anju::testing::CodeOf([&] { NatsConnection::ConnectWaiting(o, [] { return false; }); }),
      ErrorCode::kInvalidArgument);
}

TEST(NatsConnection, ServerWithoutJetStreamIsAClearError) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer::Options so;
  so.jetstream = false;
  LocalNatsServer plain(so);
  NatsOptions o;
  o.url = plain.url();
  try {
    NatsConnection::Connect(o);
    ADD_FAILURE() << "accepted a server without JetStream";
  } catch (const Error& e) {
    std::printf("    refused: %s\n", e.what());
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("JetStream"), std::string::npos);
  }
}

TEST(NatsConnection, BadPrefixIsRefused) {
  NatsOptions o;
  o.prefix = "a.b";
  EXPECT_EQ(::anju::testing::CodeOf([&] { NatsConnection::Connect(o); }),
            ErrorCode::kInvalidArgument);
}

TEST(LocalNats, MissingProgramIsAClearError) {
  LocalNatsServer::Options o;
  o.binary = "/nonexistent/nats-server";
  try {
    LocalNatsServer s(o);
    ADD_FAILURE() << "started a program that does not exist";
  } catch (const Error& e) {
    std::printf("    refused: %s\n", e.what());
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find("nats-server"), std::string::npos);
  }
}

// ---- work queue ------------------------------------------------------------------------

TEST(NatsWorkQueue, ItemsSurviveAServerRestartAndACrash) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer server;  // its own: restarted below
  auto conn = Connect(server, UniquePrefix());
  NatsWorkQueue q(conn);
  for (int i = 0; i < 40; ++i)
    q.Push({"c" + std::to_string(i), "crop" + std::to_string(i), 0, 1, 0});
  auto first = q.Pop(5s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, "c0");

  server.Restart();  // graceful
  // The item handed out before the restart can still be acked after it.
  q.Ack(*first);
  for (int i = 0; i < 10; ++i) q.Push({"d" + std::to_string(i), "", 0, 1, 0});
  server.Kill();  // a crash
  server.Start();

  std::set<std::string> got;
  while (auto item = q.Pop(5s)) {
    EXPECT_TRUE(got.insert(item->id).second) << item->id << " twice";
    q.Ack(*item);
    if (got.size() == 49) break;
  }
  EXPECT_EQ(got.size(), 49u);
  for (int i = 1; i < 40; ++i) EXPECT_TRUE(got.count("c" + std::to_string(i))) << i;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(got.count("d" + std::to_string(i))) << i;
  EXPECT_FALSE(got.count("c0"));
  EXPECT_EQ(q.size(), 0u);
  EXPECT_GE(conn->reconnects(), 2u);
}

TEST(NatsWorkQueue, APushWhileTheServerIsDownWaitsForIt) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer server;
  auto conn = Connect(server, UniquePrefix());
  NatsWorkQueue q(conn);
  server.Stop();
  std::thread starter([&] {
    std::this_thread::sleep_for(1500ms);
    server.Start();
  });
  const auto t0 = Steady::now();
  EXPECT_NO_THROW(q.Push({"while-down", "x", 0, 1, 0}));
  starter.join();
  EXPECT_GE(MsSince(t0), 1000);
  auto item = q.Pop(5s);
  ASSERT_TRUE(item) << server.log();
  EXPECT_EQ(item->id, "while-down");
  q.Ack(*item);
}

TEST(NatsWorkQueue, AnItemWhoseWorkerVanishedIsDeliveredAgainAfterAckWait) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  auto conn = Connect(*server, prefix);
  NatsWorkQueueOptions o;
  o.name = "jobs";
  o.ack_wait = 1500ms;
  NatsWorkQueue q(conn, o);
  q.Push({"capture-7", "crop", 0, 1, 0});
  // A worker in another process takes it and is killed before it acks.
  Peer worker({"pop", server->url(), prefix, "jobs", "1500"});
  auto line = worker.ReadLine(15s);
  ASSERT_TRUE(line) << "the peer did not pop";
  EXPECT_EQ(*line, "popped capture-7");
  const auto popped = Steady::now();
  worker.Kill();
  EXPECT_FALSE(q.Pop(500ms)) << "delivered again before its ack wait";
  auto again = q.Pop(10s);
  ASSERT_TRUE(again);
  EXPECT_GE(MsSince(popped), 1200);
  EXPECT_EQ(again->id, "capture-7");
  EXPECT_EQ(again->payload, "crop");
  // The server's delivery count: 2 as a rule, but nats-server 2.9.10 once reported 1 here
  // (one run in three on a loaded machine), the first delivery apparently not counted.
  // deliveries is advisory (docs/distributed.md); the redelivery itself is the contract.
  EXPECT_GE(again->deliveries, 1);
  EXPECT_LE(again->deliveries, 2);
  if (again->deliveries != 2) std::printf("    redelivered with deliveries = 1\n");
  q.Ack(*again);
  EXPECT_EQ(q.size(), 0u);
}

TEST(NatsWorkQueue, InProgressKeepsAnItemFromBeingDeliveredAgain) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsWorkQueueOptions o;
  o.ack_wait = 1000ms;
  NatsWorkQueue mine(Connect(*server, prefix), o);
  NatsWorkQueue other(Connect(*server, prefix), o);
  mine.Push({"slow", "", 0, 1, 0});
  auto item = mine.Pop(5s);
  ASSERT_TRUE(item);
  std::atomic<bool> stop{false};
  std::thread keeper([&] {
    while (!stop) {
      mine.InProgress(*item);
      std::this_thread::sleep_for(300ms);
    }
  });
  EXPECT_FALSE(other.Pop(2500ms)) << "redelivered while in progress";
  stop = true;
  keeper.join();
  mine.Ack(*item);
  EXPECT_FALSE(other.Pop(1500ms)) << "redelivered after its ack";
}

TEST(NatsWorkQueue, ReopenedWithOtherLimitsTheQueueTakesThem) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  { NatsWorkQueue first(Connect(*server, prefix)); }  // ack wait 30 s
  NatsWorkQueueOptions o;
  o.ack_wait = 800ms;
  NatsWorkQueue q(Connect(*server, prefix), o);
  q.Push({"x", "", 0, 1, 0});
  auto item = q.Pop(5s);
  ASSERT_TRUE(item);
  auto again = q.Pop(5s);  // not acked: back after 0.8 s, not 30 s
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, "x");
  EXPECT_EQ(again->deliveries, 2);
  q.Ack(*again);
}

TEST(NatsWorkQueue, ThousandsOfItemsNoneLostNoneTwiceAcrossWorkers) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  constexpr int kItems = 3000;
  // Two "API servers" push, three "worker machines" with two threads each pop and ack.
  std::vector<std::unique_ptr<NatsWorkQueue>> pushers, workers;
  for (int i = 0; i < 2; ++i)
    pushers.push_back(std::make_unique<NatsWorkQueue>(Connect(*server, prefix)));
  for (int i = 0; i < 3; ++i)
    workers.push_back(std::make_unique<NatsWorkQueue>(Connect(*server, prefix)));
  std::mutex mu;
  std::map<std::string, int> seen;
  std::atomic<int> acked{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (auto& w : workers)
    for (int t = 0; t < 2; ++t)
      threads.emplace_back([&, q = w.get()] {
        while (acked < kItems && !stop) {
          auto item = q->Pop(300ms);
          if (!item) continue;
          {
            std::lock_guard lock(mu);
            ++seen[item->id];
          }
          q->Ack(*item);
          ++acked;
        }
      });
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p)
    producers.emplace_back([&, p] {
      for (int i = p; i < kItems; i += 2)
        pushers[size_t(p)]->Push({"item-" + std::to_string(i), std::to_string(i), 0, 1, 0});
    });
  for (auto& t : producers) t.join();
  const auto deadline = Steady::now() + 60s;
  while (acked < kItems && Steady::now() < deadline) std::this_thread::sleep_for(50ms);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_EQ(acked.load(), kItems);
  EXPECT_EQ(seen.size(), size_t(kItems));
  int twice = 0;
  for (const auto& [id, n] : seen) twice += n > 1;
  EXPECT_EQ(twice, 0);
  EXPECT_EQ(pushers[0]->size(), 0u);
  for (auto& w : workers) w->Close();
}

// ---- event bus -------------------------------------------------------------------------

TEST(NatsEventBus, TwoServersShareOneSequence) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsEventBus a(Connect(*server, prefix));
  NatsEventBus b(Connect(*server, prefix));
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 20; ++i)
    seqs.push_back((i % 2 ? b : a).Publish("capture", {{"i", i}, {"by", i % 2 ? "B" : "A"}}));
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], seqs[i - 1] + 1);
  // A follows the stream asynchronously: it is sure to hold its own messages at once
  // (read-your-writes), B's last one once it has arrived.
  ASSERT_EQ(a.Read(seqs[18], 5s).size(), 1u);
  auto from_a = a.Read(0, 5s, 100);
  auto from_b = b.Read(0, 5s, 100);
  ASSERT_EQ(from_a.size(), 20u);
  ASSERT_EQ(from_b.size(), 20u);
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(from_a[i].seq, seqs[i]);
    EXPECT_EQ(from_b[i].seq, seqs[i]);
    EXPECT_EQ(from_a[i].data, from_b[i].data);
    EXPECT_EQ(from_b[i].data["i"], int(i));
  }
  // A console that read up to id 10 from A resumes on B with the rest.
  auto resumed = b.Read(seqs[9], 5s, 100);
  ASSERT_EQ(resumed.size(), 10u);
  EXPECT_EQ(resumed[0].seq, seqs[10]);
  // A reader waiting on A sees what B publishes.
  std::vector<BusMessage> live;
  std::thread reader([&] { live = a.Read(seqs.back(), 10s); });
  std::this_thread::sleep_for(200ms);
  const uint64_t s = b.Publish("alarm", {{"type", "forced"}});
  reader.join();
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0].seq, s);
  EXPECT_EQ(live[0].event, "alarm");
  EXPECT_EQ(a.last_seq(), s);
}

TEST(NatsEventBus, AReaderFarBehindIsServedFromTheStream) {
  ANJU_REQUIRE_NATS(server);
  NatsEventBusOptions o;
  o.cache = 4;
  NatsEventBus bus(Connect(*server, UniquePrefix()), o);
  for (int i = 0; i < 30; ++i) bus.Publish("access", {{"i", i}});
  auto got = bus.Read(0, 5s, 100);
  ASSERT_EQ(got.size(), 30u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].data["i"], int(i));
  }
  auto page = bus.Read(5, 5s, 10);
  ASSERT_EQ(page.size(), 10u);
  EXPECT_EQ(page.front().seq, 6u);
  EXPECT_EQ(page.back().seq, 15u);
}

TEST(NatsEventBus, KeepsFollowingAcrossAServerRestart) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer server;
  const std::string prefix = UniquePrefix();
  NatsEventBus a(Connect(server, prefix));
  NatsEventBus b(Connect(server, prefix));
  const uint64_t s1 = a.Publish("access", {{"n", 1}});
  ASSERT_EQ(b.Read(0, 5s).size(), 1u);
  server.Restart();
  const uint64_t s2 = a.Publish("access", {{"n", 2}});
  EXPECT_EQ(s2, s1 + 1);  // the sequence goes on: the stream is on disk
  const auto t0 = Steady::now();
  std::vector<BusMessage> got;
  while (got.empty() && MsSince(t0) < 15'000) got = b.Read(s1, 1s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, s2);
  EXPECT_EQ(got[0].data["n"], 2);
}

TEST(NatsEventBus, EventNameMustBeASubjectToken) {
  ANJU_REQUIRE_NATS(server);
  NatsEventBus bus(Connect(*server, UniquePrefix()));
  EXPECT_EQ(::anju::testing::CodeOf([&] { bus.Publish("a.b", {}); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(::anju::testing::CodeOf([&] { bus.Publish("", {}); }), ErrorCode::kInvalidArgument);
}

// ---- notifier --------------------------------------------------------------------------

TEST(NatsNotifier, ReachesSubscribersOfEveryConnection) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsNotifier a(Connect(*server, prefix)), b(Connect(*server, prefix));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> at_a, at_b;
  auto sa = a.Subscribe("gallery", [&](const nlohmann::json& m) {
    std::lock_guard lock(mu);
    at_a.push_back(m["from"]);
    cv.notify_all();
  });
  auto sb = b.Subscribe("gallery", [&](const nlohmann::json& m) {
    std::lock_guard lock(mu);
    at_b.push_back(m["from"]);
    cv.notify_all();
  });
  a.Publish("gallery", {{"from", "A"}});
  b.Publish("gallery", {{"from", "B"}});
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return at_a.size() >= 2 && at_b.size() >= 2; }));
  EXPECT_EQ(std::set<std::string>(at_a.begin(), at_a.end()), (std::set<std::string>{"A", "B"}));
  EXPECT_EQ(std::set<std::string>(at_b.begin(), at_b.end()), (std::set<std::string>{"A", "B"}));
}

TEST(NatsNotifier, SubscriptionsAreRenewedAfterAServerRestart) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer server;
  const std::string prefix = UniquePrefix();
  auto ca = Connect(server, prefix), cb = Connect(server, prefix);
  NatsNotifier a(ca), b(cb);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> got;
  auto sub = b.Subscribe("control", [&](const nlohmann::json& m) {
    std::lock_guard lock(mu);
    got.push_back(m["n"]);
    cv.notify_all();
  });
  server.Restart();
  const auto t0 = Steady::now();
  while ((!ca->connected() || !cb->connected()) && MsSince(t0) < 10'000)
    std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(ca->connected() && cb->connected());
  // The subscription is sent again on reconnection; publish until it is in place.
  std::unique_lock lock(mu);
  for (int n = 0; got.empty() && n < 50; ++n) {
    lock.unlock();
    a.Publish("control", {{"n", n}});
    lock.lock();
    cv.wait_for(lock, 100ms, [&] { return !got.empty(); });
  }
  EXPECT_FALSE(got.empty());
}

// ---- shared state ----------------------------------------------------------------------

TEST(NatsSharedState, ACounterAddedToFromTwoConnectionsAtOnceEndsExact) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsSharedState one(Connect(*server, prefix)), two(Connect(*server, prefix));
  constexpr int kPerThread = 150;
  std::mutex mu;
  std::vector<int64_t> results;
  std::vector<std::thread> threads;
  for (NatsSharedState* s : {&one, &two, &one, &two})
    threads.emplace_back([&, s] {
      for (int i = 0; i < kPerThread; ++i) {
        const int64_t v = s->Add("risk:views:u1", 1, std::chrono::minutes(5));
        std::lock_guard lock(mu);
        results.push_back(v);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(one.Get("risk:views:u1"), std::to_string(4 * kPerThread));
  // Every increment saw its own value: none was lost, none counted twice.
  std::set<int64_t> unique(results.begin(), results.end());
  EXPECT_EQ(unique.size(), size_t(4 * kPerThread));
  EXPECT_EQ(*unique.begin(), 1);
  EXPECT_EQ(*unique.rbegin(), 4 * kPerThread);
}

TEST(NatsSharedState, ANonceIsTakenOnceAcrossConnections) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsSharedState one(Connect(*server, prefix)), two(Connect(*server, prefix));
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (NatsSharedState* s : {&one, &two, &one, &two})
    threads.emplace_back([&, s] {
      for (int k = 0; k < 40; ++k)
        if (s->PutIfAbsent("nonce:" + std::to_string(k), "seen", std::chrono::minutes(5))) ++wins;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 40);  // one winner per nonce
}

TEST(NatsSharedState, ALockoutOutlivesAServerRestart) {
  ANJU_REQUIRE_NATS(shared);
  LocalNatsServer server;
  NatsSharedState s(Connect(server, UniquePrefix()));
  for (int i = 0; i < 5; ++i) s.Add("login:failures:alice", 1, std::chrono::minutes(15));
  s.Put("lock:alice", "until=123", std::chrono::minutes(15));
  server.Kill();
  server.Start();
  EXPECT_EQ(s.Get("login:failures:alice"), "5");
  EXPECT_EQ(s.Get("lock:alice"), "until=123");
  EXPECT_EQ(s.Add("login:failures:alice", 1, std::chrono::minutes(15)), 6);
}

TEST(NatsSharedState, LimitsAreClearErrors) {
  ANJU_REQUIRE_NATS(server);
  NatsSharedStateOptions o;
  o.max_ttl = std::chrono::hours(1);
  NatsSharedState s(Connect(*server, UniquePrefix()), o);
  EXPECT_EQ(::anju::testing::CodeOf(
                [&] { s.Put("frame:cam", std::string(o.max_value_bytes + 1, 'x'), 1000ms); }),
            ErrorCode::kTooLarge);
  EXPECT_EQ(::anju::testing::CodeOf([&] { s.Put("k", "v", std::chrono::hours(2)); }),
            ErrorCode::kInvalidArgument);
  // Long enough not to expire before the Add on a loaded machine (an expired value would
  // be a new counter).
  s.Put("not-a-counter", "abc", std::chrono::minutes(1));
  EXPECT_EQ(::anju::testing::CodeOf([&] { s.Add("not-a-counter", 1, 1000ms); }),
            ErrorCode::kInvalidArgument);
}

// ---- leases ----------------------------------------------------------------------------

TEST(NatsLeader, OneHolderAtATimeAndHandOverOnRelease) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  NatsLeaderOptions o;
  o.lease = 1500ms;
  NatsLeader a(Connect(*server, prefix), o), b(Connect(*server, prefix), o);
  EXPECT_TRUE(a.IsLeader("retention"));
  EXPECT_TRUE(b.IsLeader("senders"));  // jobs are separate
  // For longer than the lease: A keeps it (its thread refreshes), B never gets it.
  const auto t0 = Steady::now();
  int both = 0, polls = 0;
  while (MsSince(t0) < 3500) {
    const bool la = a.IsLeader("retention"), lb = b.IsLeader("retention");
    both += la && lb;
    EXPECT_TRUE(la);
    ++polls;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(both, 0) << "of " << polls;
  a.Release("retention");
  EXPECT_TRUE(b.IsLeader("retention"));
  EXPECT_FALSE(a.IsLeader("retention"));
}

TEST(NatsLeader, ALeaseMovesAfterItsHolderDies) {
  ANJU_REQUIRE_NATS(server);
  const std::string prefix = UniquePrefix();
  Peer holder({"lead", server->url(), prefix, "retention", "1500"});
  auto line = holder.ReadLine(15s);
  ASSERT_TRUE(line) << "the peer did not take the lease";
  EXPECT_EQ(*line, "leader");
  NatsLeaderOptions o;
  o.lease = 1500ms;
  NatsLeader me(Connect(*server, prefix), o);
  EXPECT_FALSE(me.IsLeader("retention"));
  std::this_thread::sleep_for(2000ms);  // longer than the lease: the peer refreshes it
  EXPECT_FALSE(me.IsLeader("retention"));
  holder.Kill();
  const auto killed = Steady::now();
  while (!me.IsLeader("retention") && MsSince(killed) < 10'000) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(me.IsLeader("retention"));
  // Not before the dead holder's last refresh ran out (it refreshed every 500 ms).
  EXPECT_GE(MsSince(killed), 900);
  EXPECT_LT(MsSince(killed), 5000);
}

}  // namespace
}  // namespace anju::server::runtime
