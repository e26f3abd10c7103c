// A second process for the runtime tests, which the test kills with SIGKILL:
//   runtime_test_peer pop URL PREFIX QUEUE ACK_WAIT_MS   pops one item, prints "popped <id>",
//                                                        then waits without acking
//   runtime_test_peer lead URL PREFIX JOB LEASE_MS       takes JOB's lease, prints "leader",
//                                                        then keeps refreshing it
// Only those lines go to stdout (the test reads them); the log goes to stderr.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "server/runtime/nats_connection.h"
#include "server/runtime/nats_kv.h"
#include "server/runtime/nats_work_queue.h"

using namespace anju::server::runtime;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: runtime_test_peer pop|lead URL PREFIX NAME MS\n");
    return 2;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("peer"));
  const std::string mode = argv[1];
  NatsOptions o;
  o.url = argv[2];
  o.prefix = argv[3];
  o.name = "anju-test-peer";
  auto conn = NatsConnection::Connect(o);
  const auto ms = std::chrono::milliseconds(std::stoll(argv[5]));
  if (mode == "pop") {
    NatsWorkQueueOptions qo;
    qo.name = argv[4];
    qo.ack_wait = ms;
    NatsWorkQueue queue(conn, qo);
    auto item = queue.Pop(std::chrono::seconds(20));
    if (!item) return 1;
    std::printf("popped %s\n", item->id.c_str());
    std::fflush(stdout);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (mode == "lead") {
    NatsLeaderOptions lo;
    lo.lease = ms;
    NatsLeader leader(conn, lo);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!leader.IsLeader(argv[4])) {
      if (std::chrono::steady_clock::now() > deadline) return 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::printf("leader\n");
    std::fflush(stdout);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return 2;
}
