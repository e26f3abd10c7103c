// Shared by the runtime tests: one throwaway nats-server per test process (the tests skip
// with a message when nats-server is not installed), a fresh namespace per test, and a
// peer process that a test can kill with SIGKILL (docs/distributed.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/runtime/local_nats.h"
#include "server/runtime/nats_connection.h"

namespace anju::server::runtime::testing {

// The process's nats-server, started on first use; nullptr when nats-server is not
// installed (SkipReason() says why).
LocalNatsServer* SharedNats();
std::string SkipReason();

// "t<8 hex>": a namespace of its own for each test (streams, subjects, buckets).
std::string UniquePrefix();

// A connection to SERVER in namespace PREFIX, with short retry windows for tests.
std::shared_ptr<NatsConnection> Connect(const LocalNatsServer& server, const std::string& prefix);

// runtime_test_peer started with ARGS, its stdout readable line by line.
class Peer {
 public:
  explicit Peer(const std::vector<std::string>& args);
  ~Peer();
  // The next line it printed, or nullopt after TIMEOUT (or when it exited).
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  void Kill();  // SIGKILL and reap
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

}  // namespace anju::server::runtime::testing

// Skips the test when no nats-server can be started.
#define ANJU_REQUIRE_NATS(var)                                                                    \
  ::anju::server::runtime::LocalNatsServer* var = ::anju::server::runtime::testing::SharedNats(); \
  if (!var) GTEST_SKIP() << ::anju::server::runtime::testing::SkipReason()
