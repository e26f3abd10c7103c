// The contract of each runtime seam, run against the embedded implementation and the NATS
// JetStream one alike (docs/distributed.md): what a service may rely on whichever runs.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "runtime_test_support.h"
#include "server/runtime/embedded.h"
#include "server/runtime/nats_event_bus.h"
#include "server/runtime/nats_kv.h"
#include "server/runtime/nats_notifier.h"
#include "server/runtime/nats_work_queue.h"
#include "testing.h"

namespace anju::server::runtime {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

int64_t MsSince(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t).count();
}

// GetParam(): "embedded" or "nats".
class RuntimeContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() != "nats") return;
    server_ = testing::SharedNats();
    if (!server_) GTEST_SKIP() << testing::SkipReason();
    conn_ = testing::Connect(*server_, testing::UniquePrefix());
  }
  void TearDown() override { SetProcessClock(nullptr); }
  bool nats() const { return GetParam() == "nats"; }

  std::unique_ptr<WorkQueue> MakeQueue() {
    if (!nats()) return std::make_unique<InProcessQueue>();
    NatsWorkQueueOptions o;
    o.name = "jobs";
    return std::make_unique<NatsWorkQueue>(conn_, o);
  }
  // Holds the latest CAPACITY messages. The NATS bus caches fewer than that in the
  // process, so that reading old messages from the stream itself is exercised too.
  std::unique_ptr<EventBus> MakeBus(size_t capacity = 2000) {
    if (!nats()) return std::make_unique<InProcessBus>(capacity);
    NatsEventBusOptions o;
    o.max_msgs = int64_t(capacity);
    o.cache = std::max<size_t>(1, capacity / 2);
    return std::make_unique<NatsEventBus>(conn_, o);
  }
  std::unique_ptr<Notifier> MakeNotifier() {
    if (!nats()) return std::make_unique<LocalNotifier>();
    return std::make_unique<NatsNotifier>(conn_);
  }
  std::unique_ptr<SharedState> MakeState() {
    if (!nats()) return std::make_unique<MemorySharedState>();
    return std::make_unique<NatsSharedState>(conn_);
  }
  std::unique_ptr<Leader> MakeLeader() {
    if (!nats()) return std::make_unique<AlwaysLeader>();
    return std::make_unique<NatsLeader>(conn_);
  }

  LocalNatsServer* server_ = nullptr;
  std::shared_ptr<NatsConnection> conn_;
};

INSTANTIATE_TEST_SUITE_P(Runtime, RuntimeContract, ::testing::Values("embedded", "nats"),
                         [](const auto& info) { return info.param; });

// ---- WorkQueue -------------------------------------------------------------------------

TEST_P(RuntimeContract, QueueHandsItemsOutInOrderAndForgetsAcked) {
  auto q = MakeQueue();
  q->Push({"a", "crop-a", 0, 1, 0});
  q->Push({"b", std::string("crop\0b", 6), 0, 1, 0});
  q->Push({"c", "", 0, 1, 0});
  EXPECT_EQ(q->size(), 3u);
  std::vector<WorkItem> got;
  for (int i = 0; i < 3; ++i) {
    auto item = q->Pop(5s);
    ASSERT_TRUE(item) << i;
    got.push_back(*item);
  }
  EXPECT_EQ(got[0].id, "a");
  EXPECT_EQ(got[0].payload, "crop-a");
  EXPECT_EQ(got[1].id, "b");
  EXPECT_EQ(got[1].payload, std::string("crop\0b", 6));
  EXPECT_EQ(got[2].id, "c");
  for (const auto& item : got) {
    EXPECT_EQ(item.deliveries, 1);
    EXPECT_GT(item.enqueued_ms, 0);
  }
  EXPECT_NE(got[0].token, got[1].token);
  EXPECT_EQ(q->size(), 3u);  // handed out, not acked: still the queue's
  for (const auto& item : got) q->Ack(item);
  EXPECT_EQ(q->size(), 0u);
  EXPECT_FALSE(q->Pop(300ms));
}

TEST_P(RuntimeContract, QueuePushOfAWaitingIdIsOneItem) {
  auto q = MakeQueue();
  q->Push({"capture-1", "x", 0, 1, 0});
  q->Push({"capture-1", "x", 0, 1, 0});
  q->Push({"capture-2", "y", 0, 1, 0});
  EXPECT_EQ(q->size(), 2u);
  auto first = q->Pop(5s);
  ASSERT_TRUE(first);
  q->Push({"capture-1", "x", 0, 1, 0});  // handed out, not acked: still one item
  auto second = q->Pop(5s);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->id, "capture-1");
  EXPECT_EQ(second->id, "capture-2");
  q->Ack(*first);
  q->Ack(*second);
  EXPECT_FALSE(q->Pop(300ms));
}

TEST_P(RuntimeContract, QueueNakDeliversAgainAfterTheDelay) {
  auto q = MakeQueue();
  q->Push({"n1", "p", 0, 1, 0});
  auto item = q->Pop(5s);
  ASSERT_TRUE(item);
  const auto naked = Steady::now();
  q->Nak(*item, 700ms);
  EXPECT_FALSE(q->Pop(200ms)) << "delivered again before its delay";
  auto again = q->Pop(5s);
  ASSERT_TRUE(again);
  EXPECT_GE(MsSince(naked), 600);
  EXPECT_EQ(again->id, "n1");
  EXPECT_EQ(again->payload, "p");
  EXPECT_EQ(again->deliveries, 2);
  q->Ack(*again);
  EXPECT_EQ(q->size(), 0u);
}

TEST_P(RuntimeContract, QueuePopWaitsForAPushAndTimesOut) {
  auto q = MakeQueue();
  auto t0 = Steady::now();
  EXPECT_FALSE(q->Pop(300ms));
  EXPECT_GE(MsSince(t0), 250);
  std::thread pusher([&] {
    std::this_thread::sleep_for(200ms);
    q->Push({"late", "", 0, 1, 0});
  });
  t0 = Steady::now();
  auto item = q->Pop(10s);
  pusher.join();
  ASSERT_TRUE(item);
  EXPECT_EQ(item->id, "late");
  EXPECT_LT(MsSince(t0), 5000);
  q->Ack(*item);
}

TEST_P(RuntimeContract, QueueCloseReleasesAWaitingPop) {
  auto q = MakeQueue();
  std::atomic<bool> returned{false};
  const auto t0 = Steady::now();
  std::thread popper([&] {
    EXPECT_FALSE(q->Pop(20s));
    returned = true;
  });
  std::this_thread::sleep_for(200ms);
  q->Close();
  popper.join();
  EXPECT_TRUE(returned);
  EXPECT_LT(MsSince(t0), 3000);
}

// ---- EventBus --------------------------------------------------------------------------

TEST_P(RuntimeContract, BusReadGivesWhatCameAfterASequenceInOrder) {
  auto bus = MakeBus();
  const uint64_t before = bus->last_seq();
  const uint64_t s1 = bus->Publish("access", {{"person", "P1"}, {"door", 1}});
  const uint64_t s2 = bus->Publish("alarm", {{"type", "tamper"}});
  const uint64_t s3 = bus->Publish("capture", {{"id", "c-1"}, {"name", "张三"}});
  EXPECT_GT(s1, before);
  EXPECT_LT(s1, s2);
  EXPECT_LT(s2, s3);
  EXPECT_EQ(bus->last_seq(), s3);
  auto all = bus->Read(before, 5s);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].seq, s1);
  EXPECT_EQ(all[0].event, "access");
  EXPECT_EQ(all[0].data["person"], "P1");
  EXPECT_EQ(all[1].event, "alarm");
  EXPECT_EQ(all[2].data["name"], "张三");
  auto rest = bus->Read(s1, 5s);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].seq, s2);
  EXPECT_EQ(rest[1].seq, s3);
  auto limited = bus->Read(before, 5s, 2);
  ASSERT_EQ(limited.size(), 2u);
  EXPECT_EQ(limited[1].seq, s2);
  EXPECT_EQ(EventBus::Sse(all[1]),
            "id: " + std::to_string(s2) + "\nevent: alarm\ndata: {\"type\":\"tamper\"}\n\n");
}

TEST_P(RuntimeContract, BusReaderWaitsForTheNextMessage) {
  auto bus = MakeBus();
  const uint64_t last = bus->last_seq();
  auto t0 = Steady::now();
  EXPECT_TRUE(bus->Read(last, 300ms).empty());
  EXPECT_GE(MsSince(t0), 250);
  std::vector<BusMessage> got;
  std::thread reader([&] { got = bus->Read(last, 10s); });
  std::this_thread::sleep_for(200ms);
  t0 = Steady::now();
  const uint64_t seq = bus->Publish("access", {{"n", 1}});
  reader.join();
  EXPECT_LT(MsSince(t0), 5000);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, seq);
}

TEST_P(RuntimeContract, BusCloseReleasesAWaitingReader) {
  auto bus = MakeBus();
  const auto t0 = Steady::now();
  std::thread reader([&] { EXPECT_TRUE(bus->Read(bus->last_seq(), 20s).empty()); });
  std::this_thread::sleep_for(200ms);
  bus->Close();
  reader.join();
  EXPECT_LT(MsSince(t0), 3000);
}

TEST_P(RuntimeContract, BusHoldsTheLatestMessagesOnly) {
  auto bus = MakeBus(6);
  const uint64_t before = bus->last_seq();
  std::vector<uint64_t> seqs;
  for (int i = 0; i < 10; ++i) seqs.push_back(bus->Publish("access", {{"i", i}}));
  // A reader that was away since BEFORE gets what the bus still holds: the last six.
  auto got = bus->Read(before, 5s, 100);
  ASSERT_EQ(got.size(), 6u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq, seqs[4 + i]);
    EXPECT_EQ(got[i].data["i"], int(4 + i));
  }
}

// ---- Notifier --------------------------------------------------------------------------

// Collects what a subscription receives, waitable.
struct Inbox {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<nlohmann::json> got;
  Notifier::Handler handler() {
    return [this](const nlohmann::json& m) {
      std::lock_guard lock(mu);
      got.push_back(m);
      cv.notify_all();
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return got.size() >= n; });
  }
  size_t size() {
    std::lock_guard lock(mu);
    return got.size();
  }
};

TEST_P(RuntimeContract, NotifierFansOutPerTopic) {
  auto n = MakeNotifier();
  Inbox gallery1, gallery2, control;
  auto s1 = n->Subscribe("gallery", gallery1.handler());
  auto s2 = n->Subscribe("gallery", gallery2.handler());
  auto s3 = n->Subscribe("control", control.handler());
  for (int i = 0; i < 3; ++i) n->Publish("gallery", {{"version", i}});
  n->Publish("control", {{"revoked", "dev-1"}});
  ASSERT_TRUE(gallery1.WaitFor(3));
  ASSERT_TRUE(gallery2.WaitFor(3));
  ASSERT_TRUE(control.WaitFor(1));
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(gallery1.got[size_t(i)]["version"], i);  // in order from one publisher
    EXPECT_EQ(gallery2.got[size_t(i)]["version"], i);
  }
  EXPECT_EQ(control.got[0]["revoked"], "dev-1");
  // Only what was published on its topic.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(gallery1.size(), 3u);
  EXPECT_EQ(control.size(), 1u);
}

TEST_P(RuntimeContract, NotifierStopsCallingAnEndedSubscription) {
  auto n = MakeNotifier();
  Inbox ended, kept;
  auto gone = n->Subscribe("gallery", ended.handler());
  auto stays = n->Subscribe("gallery", kept.handler());
  n->Publish("gallery", {{"v", 1}});
  ASSERT_TRUE(ended.WaitFor(1));
  gone.reset();
  n->Publish("gallery", {{"v", 2}});
  // Once the kept subscriber saw the second message, the ended one would have too.
  ASSERT_TRUE(kept.WaitFor(2));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(ended.size(), 1u);
}

// ---- SharedState -----------------------------------------------------------------------

TEST_P(RuntimeContract, StateCounterAddsAndKeepsItsExpiry) {
  ManualClock clock(1'800'000'000'000);
  SetProcessClock(&clock);
  auto s = MakeState();
  EXPECT_EQ(s->Add("lockout:alice", 1, 1000ms), 1);
  EXPECT_EQ(s->Add("lockout:alice", 2, 1000ms), 3);
  EXPECT_EQ(s->Add("lockout:alice", -1, 1000ms), 2);
  EXPECT_EQ(s->Get("lockout:alice"), "2");
  clock.Advance(600);
  EXPECT_EQ(s->Add("lockout:alice", 1, 1000ms), 3);  // not a new TTL for an existing counter
  clock.Advance(500);                                // 1100 ms after it was created
  EXPECT_FALSE(s->Get("lockout:alice"));
  EXPECT_EQ(s->Add("lockout:alice", 1, 1000ms), 1);  // expired: starts again at 0
  EXPECT_EQ(s->Add("lockout:bob", 5, 1000ms), 5);    // counters are separate
  EXPECT_EQ(s->Get("lockout:alice"), "1");
}

TEST_P(RuntimeContract, StatePutGetRemoveAnyKeyAndBytes) {
  ManualClock clock(1'800'000'000'000);
  SetProcessClock(&clock);
  auto s = MakeState();
  const std::string key = "frame:摄像机/1 a.b:c";
  std::string frame(200 * 1024, '\0');
  for (size_t i = 0; i < frame.size(); ++i) frame[i] = char((i * 131) & 0xFF);
  s->Put(key, frame, 5000ms);
  EXPECT_EQ(s->Get(key), frame);
  s->Put(key, "second\nline", 5000ms);
  EXPECT_EQ(s->Get(key), "second\nline");
  EXPECT_FALSE(s->Get("frame:摄像机/2"));
  clock.Advance(5001);
  EXPECT_FALSE(s->Get(key));
  s->Put(key, "again", 5000ms);
  s->Remove(key);
  EXPECT_FALSE(s->Get(key));
  s->Remove("never-there");
}

TEST_P(RuntimeContract, StatePutIfAbsentRefusesALiveKey) {
  ManualClock clock(1'800'000'000'000);
  SetProcessClock(&clock);
  auto s = MakeState();
  EXPECT_TRUE(s->PutIfAbsent("nonce:abc", "1", 1000ms));
  EXPECT_FALSE(s->PutIfAbsent("nonce:abc", "2", 1000ms));
  EXPECT_EQ(s->Get("nonce:abc"), "1");
  clock.Advance(1001);
  EXPECT_TRUE(s->PutIfAbsent("nonce:abc", "3", 1000ms));  // expired counts as absent
  EXPECT_EQ(s->Get("nonce:abc"), "3");
  s->Remove("nonce:abc");
  EXPECT_TRUE(s->PutIfAbsent("nonce:abc", "4", 1000ms));
  EXPECT_EQ(s->Get("nonce:abc"), "4");
}

// ---- Leader ----------------------------------------------------------------------------

TEST_P(RuntimeContract, ALoneProcessLeadsEveryJob) {
  auto leader = MakeLeader();
  EXPECT_TRUE(leader->IsLeader("retention"));
  EXPECT_TRUE(leader->IsLeader("retention"));
  EXPECT_TRUE(leader->IsLeader("webhook-sender"));
}

}  // namespace
}  // namespace anju::server::runtime
