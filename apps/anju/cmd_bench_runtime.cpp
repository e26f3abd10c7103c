// anju bench runtime — throughput of the runtime seams on NATS JetStream (docs/distributed.md)
// beside the embedded ones: work items through the queue (push → pop → ack), live events
// published and read back, shared counters. Starts its own nats-server on a loopback port
// unless --nats names one. Ends with a table of the figures (Markdown, as in BENCHMARKS.md);
// with --json, then one JSON object on the last line.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/uuid.h"
#include "server/runtime/embedded.h"
#include "server/runtime/local_nats.h"
#include "server/runtime/nats_event_bus.h"
#include "server/runtime/nats_kv.h"
#include "server/runtime/nats_work_queue.h"

namespace anju::cli {
namespace {

using nlohmann::json;
using Steady = std::chrono::steady_clock;
namespace rt = server::runtime;

double Seconds(Steady::time_point t0) {
  return std::chrono::duration<double>(Steady::now() - t0).count();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[size_t(p * double(v.size() - 1))];
}

// Connections to URL under one fresh prefix: each run gets its own streams and buckets.
std::function<std::shared_ptr<rt::NatsConnection>()> Connector(const std::string& url) {
  const std::string prefix = "bench" + NewUuid().substr(0, 8);
  return [url, prefix] {
    rt::NatsOptions o;
    o.url = url;
    o.prefix = prefix;
    o.name = "anju-bench";
    return rt::NatsConnection::Connect(o);
  };
}

struct QueueRun {
  std::string name;
  int fetch_batch = 1;
  bool sync_ack = true;
};

// PRODUCERS threads push ITEMS items while WORKERS threads pop and ack them, each on its
// own connection (as separate processes would be). Latency: push → ack.
json RunQueue(const std::string& url, const QueueRun& run, int items, int producers, int workers,
              size_t payload_bytes) {
  const auto connect = Connector(url);
  rt::NatsWorkQueueOptions qo;
  qo.fetch_batch = run.fetch_batch;
  qo.sync_ack = run.sync_ack;
  std::vector<std::unique_ptr<rt::NatsWorkQueue>> pushers, pullers;
  for (int i = 0; i < producers; ++i)
    pushers.push_back(std::make_unique<rt::NatsWorkQueue>(connect(), qo));
  for (int i = 0; i < workers; ++i)
    pullers.push_back(std::make_unique<rt::NatsWorkQueue>(connect(), qo));
  const std::string payload(payload_bytes, 'x');

  // Push only (nothing pops): what an API server's intake costs.
  const int push_only = std::max(1, items / 2);
  auto t0 = Steady::now();
  {
    std::vector<std::thread> ts;
    for (int p = 0; p < producers; ++p)
      ts.emplace_back([&, p] {
        for (int i = p; i < push_only; i += producers)
          pushers[size_t(p)]->Push({"pre-" + std::to_string(i), payload, 0, 1, 0});
      });
    for (auto& t : ts) t.join();
  }
  const double push_s = Seconds(t0);
  // Drain only: what the workers take off a full queue.
  std::atomic<int> done{0};
  t0 = Steady::now();
  {
    std::vector<std::thread> ts;
    for (int w = 0; w < workers; ++w)
      ts.emplace_back([&, w] {
        while (done < push_only) {
          auto item = pullers[size_t(w)]->Pop(std::chrono::milliseconds(200));
          if (!item) continue;
          pullers[size_t(w)]->Ack(*item);
          ++done;
        }
      });
    for (auto& t : ts) t.join();
  }
  const double drain_s = Seconds(t0);

  // Both at once: push → pop → ack, end to end.
  done = 0;
  std::mutex mu;
  std::vector<double> latency_ms;
  t0 = Steady::now();
  {
    std::vector<std::thread> ts;
    for (int w = 0; w < workers; ++w)
      ts.emplace_back([&, w] {
        std::vector<double> mine;
        while (done < items) {
          auto item = pullers[size_t(w)]->Pop(std::chrono::milliseconds(200));
          if (!item) continue;
          pullers[size_t(w)]->Ack(*item);
          mine.push_back(double(NowMs() - item->enqueued_ms));
          ++done;
        }
        std::lock_guard lock(mu);
        latency_ms.insert(latency_ms.end(), mine.begin(), mine.end());
      });
    for (int p = 0; p < producers; ++p)
      ts.emplace_back([&, p] {
        for (int i = p; i < items; i += producers)
          pushers[size_t(p)]->Push({"item-" + std::to_string(i), payload, 0, 1, 0});
      });
    for (auto& t : ts) t.join();
  }
  const double e2e_s = Seconds(t0);
  json j = {{"config", run.name},
            {"fetch_batch", run.fetch_batch},
            {"sync_ack", run.sync_ack},
            {"push_per_s", double(push_only) / push_s},
            {"drain_per_s", double(push_only) / drain_s},
            {"end_to_end_per_s", double(items) / e2e_s},
            {"latency_ms_p50", Pct(latency_ms, 0.5)},
            {"latency_ms_p95", Pct(latency_ms, 0.95)}};
  std::printf(
      "  queue %-18s push %7.0f/s  drain %7.0f/s  push→pop→ack %7.0f/s  p50 %.1f ms  p95 %.1f ms\n",
      run.name.c_str(), j["push_per_s"].get<double>(), j["drain_per_s"].get<double>(),
      j["end_to_end_per_s"].get<double>(), j["latency_ms_p50"].get<double>(),
      j["latency_ms_p95"].get<double>());
  return j;
}

json RunEmbeddedQueue(int items) {
  rt::InProcessQueue q;
  const auto t0 = Steady::now();
  std::thread worker([&] {
    for (int n = 0; n < items;) {
      auto item = q.Pop(std::chrono::milliseconds(200));
      if (!item) continue;
      q.Ack(*item);
      ++n;
    }
  });
  for (int i = 0; i < items; ++i) q.Push({"item-" + std::to_string(i), "", 0, 1, 0});
  worker.join();
  const double s = Seconds(t0);
  std::printf("  queue %-18s push→pop→ack %7.0f/s\n", "embedded", double(items) / s);
  return {{"end_to_end_per_s", double(items) / s}};
}

json RunBus(const std::string& url, int events) {
  const auto connect = Connector(url);
  const json body = {{"id", NewUuid()},
                     {"device", "cam-0001"},
                     {"person", "P000123"},
                     {"score", 0.83},
                     {"state", "matched"},
                     {"time_ms", 1800000000000},
                     {"site", "北京某公租房小区"},
                     {"door", 2}};
  // A second "server" follows the stream live while the first publishes.
  rt::NatsEventBus publisher(connect());
  rt::NatsEventBus follower(connect());
  std::atomic<bool> stop{false};
  std::atomic<size_t> seen{0};
  std::vector<double> live_ms;  // the reader's; read after it is joined
  const uint64_t start_seq = follower.last_seq();
  std::thread reader([&] {
    uint64_t after = start_seq;
    while (!stop) {
      for (const auto& m : follower.Read(after, std::chrono::milliseconds(200))) {
        after = m.seq;
        live_ms.push_back(double(NowMs() - m.data["sent_ms"].get<int64_t>()));
        ++seen;
      }
    }
  });
  auto t0 = Steady::now();
  for (int i = 0; i < events; ++i) {
    json d = body;
    d["sent_ms"] = NowMs();
    publisher.Publish("capture", std::move(d));
  }
  const double pub_s = Seconds(t0);
  while (seen < size_t(events) && Seconds(t0) < pub_s + 30)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  reader.join();
  // Two publishers at once (two API servers).
  rt::NatsEventBus second(connect());
  t0 = Steady::now();
  {
    std::thread other([&] {
      for (int i = 0; i < events / 2; ++i) second.Publish("access", body);
    });
    for (int i = 0; i < events / 2; ++i) publisher.Publish("access", body);
    other.join();
  }
  const double pub2_s = Seconds(t0);
  // A console that reconnects far behind: pages of 500 from the start, mostly from the
  // stream itself (beyond the process's cache of 2000).
  rt::NatsEventBus late(connect());
  t0 = Steady::now();
  size_t read = 0;
  for (uint64_t after = 0;;) {
    auto page = late.Read(after, std::chrono::milliseconds(100), 500);
    if (page.empty()) break;
    read += page.size();
    after = page.back().seq;
  }
  const double catchup_s = Seconds(t0);
  json j = {{"publish_per_s", double(events) / pub_s},
            {"publish_two_servers_per_s", double(events / 2 * 2) / pub2_s},
            {"live_read_ms_p50", Pct(live_ms, 0.5)},
            {"live_read_ms_p95", Pct(live_ms, 0.95)},
            {"catch_up_read_per_s", double(read) / catchup_s},
            {"catch_up_read", read}};
  std::printf(
      "  bus publish %7.0f/s (one server), %7.0f/s (two); live read p50 %.1f ms p95 %.1f ms; "
      "catch-up read %7.0f/s (%zu)\n",
      j["publish_per_s"].get<double>(), j["publish_two_servers_per_s"].get<double>(),
      j["live_read_ms_p50"].get<double>(), j["live_read_ms_p95"].get<double>(),
      j["catch_up_read_per_s"].get<double>(), read);
  return j;
}

json RunEmbeddedBus(int events) {
  rt::InProcessBus bus;
  const json body = {{"id", NewUuid()}, {"device", "cam-0001"}, {"score", 0.83}};
  const auto t0 = Steady::now();
  for (int i = 0; i < events; ++i) bus.Publish("capture", body);
  const double s = Seconds(t0);
  std::printf("  bus embedded publish %7.0f/s\n", double(events) / s);
  return {{"publish_per_s", double(events) / s}};
}

json RunState(const std::string& url, int adds) {
  const auto connect = Connector(url);
  rt::NatsSharedState a(connect()), b(connect());
  auto run = [&](bool same_key) {
    const auto t0 = Steady::now();
    std::vector<std::thread> ts;
    int t = 0;
    for (rt::NatsSharedState* s : {&a, &b, &a, &b}) {
      ts.emplace_back([&, s, t] {
        for (int i = 0; i < adds / 4; ++i)
          s->Add(same_key ? "risk:u1" : "risk:u" + std::to_string(t) + ":" + std::to_string(i % 50),
                 1, std::chrono::minutes(5));
      });
      ++t;
    }
    for (auto& th : ts) th.join();
    return double(adds / 4 * 4) / Seconds(t0);
  };
  json j = {{"add_per_s_one_key", run(true)}, {"add_per_s_many_keys", run(false)}};
  std::printf(
      "  shared state Add %7.0f/s (4 threads, 2 connections, one key), %7.0f/s (many keys)\n",
      j["add_per_s_one_key"].get<double>(), j["add_per_s_many_keys"].get<double>());
  return j;
}

// The figures as one Markdown table: NATS beside embedded where both were measured.
void PrintTable(const json& queue, const json& queue_embedded, const json& bus,
                const json& bus_embedded, const json& state) {
  auto row = [](const std::string& what, const std::string& nats, const std::string& embedded) {
    std::printf("| %s | %s | %s |\n", what.c_str(), nats.c_str(), embedded.c_str());
  };
  auto rate = [](const json& v) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f/s", v.get<double>());
    return std::string(buf);
  };
  auto ms = [](const json& p50, const json& p95) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "p50 %.1f ms, p95 %.1f ms", p50.get<double>(),
                  p95.get<double>());
    return std::string(buf);
  };
  std::printf("\n| seam, figure | NATS JetStream | embedded |\n|---|---|---|\n");
  for (const json& q : queue) {
    const std::string name = "work queue, " + q["config"].get<std::string>() + ": ";
    row(name + "push only", rate(q["push_per_s"]), "");
    row(name + "drain (pop + ack)", rate(q["drain_per_s"]), "");
    row(name + "push → pop → ack", rate(q["end_to_end_per_s"]),
        rate(queue_embedded["end_to_end_per_s"]));
    row(name + "push → ack latency", ms(q["latency_ms_p50"], q["latency_ms_p95"]), "");
  }
  row("event bus, publish (one server)", rate(bus["publish_per_s"]),
      rate(bus_embedded["publish_per_s"]));
  row("event bus, publish (two servers at once)", rate(bus["publish_two_servers_per_s"]), "");
  row("event bus, publish → live read by another server",
      ms(bus["live_read_ms_p50"], bus["live_read_ms_p95"]), "");
  row("event bus, catch-up read from the start", rate(bus["catch_up_read_per_s"]), "");
  row("shared state, Add on one key (4 threads, 2 connections)", rate(state["add_per_s_one_key"]),
      "");
  row("shared state, Add on many keys", rate(state["add_per_s_many_keys"]), "");
}

void InstallBenchRuntime(CLI::App& root) {
  static std::string url;
  static int items = 20000, producers = 2, workers = 4, events = 20000, adds = 4000;
  static int payload = 8192;
  static bool as_json = false;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("runtime",
                                   "the runtime seams on NATS JetStream: work queue, event bus, "
                                   "shared state (docs/distributed.md)");
  cmd->add_option("--nats", url, "a NATS server with JetStream (default: start one on loopback)");
  cmd->add_option("--items", items, "work items")->check(CLI::Range(10, 10000000));
  cmd->add_option("--producers", producers, "pushing connections")->check(CLI::Range(1, 64));
  cmd->add_option("--workers", workers, "popping connections")->check(CLI::Range(1, 64));
  cmd->add_option("--payload", payload, "bytes per work item (a face crop)")
      ->check(CLI::Range(0, 512 * 1024));
  cmd->add_option("--events", events, "bus events")->check(CLI::Range(10, 10000000));
  cmd->add_option("--adds", adds, "shared counter additions")->check(CLI::Range(4, 10000000));
  cmd->add_flag("--json", as_json, "print the figures as one JSON line at the end");
  cmd->callback([] {
    std::unique_ptr<rt::LocalNatsServer> local;
    std::string nats_url = url;
    if (nats_url.empty()) {
      local = std::make_unique<rt::LocalNatsServer>();
      nats_url = local->url();
    }
    std::printf("runtime seams on %s (%s): %d items of %d bytes, %d producers, %d workers\n",
                nats_url.c_str(), local ? "a nats-server started for this run" : "given", items,
                payload, producers, workers);
    json queue = json::array();
    for (const QueueRun& run :
         {QueueRun{"default (batch 1)", 1, true}, QueueRun{"batch 16, async ack", 16, false}})
      queue.push_back(RunQueue(nats_url, run, items, producers, workers, size_t(payload)));
    const json queue_embedded = RunEmbeddedQueue(items);
    const json bus = RunBus(nats_url, events);
    const json bus_embedded = RunEmbeddedBus(events);
    const json state = RunState(nats_url, adds);
    PrintTable(queue, queue_embedded, bus, bus_embedded, state);
    json out = {{"bench", "runtime"}, {"items", items},
                {"payload", payload}, {"producers", producers},
                {"workers", workers}, {"queue_per_s", queue[0]["end_to_end_per_s"]},
                {"queue", queue},     {"queue_embedded", queue_embedded},
                {"bus", bus},         {"bus_embedded", bus_embedded},
                {"state", state}};
    if (as_json) std::printf("%s\n", out.dump().c_str());
  });
}

ANJU_COMMAND(InstallBenchRuntime);

}  // namespace
}  // namespace anju::cli
