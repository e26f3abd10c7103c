// A throwaway nats-server with JetStream for tests and benchmarks (`anju bench runtime`):
// started on a free loopback port with its store in a temporary directory, never a system
// service. It can be stopped, killed and started again on the same port and store, as a
// scenario that restarts the bus needs (docs/distributed.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace anju::server::runtime {

class LocalNatsServer {
 public:
  struct Options {
    std::filesystem::path binary;  // empty: $ANJU_NATS_SERVER, then PATH, /usr/sbin, /usr/bin
    std::filesystem::path dir;     // empty: a new temporary directory, removed at the end
    std::chrono::milliseconds start_timeout{10'000};
    bool jetstream = true;  // false: core NATS only (to test what a client says about it)
  };

  // The nats-server program, or nullopt when it is not installed.
  static std::optional<std::filesystem::path> FindBinary(const std::filesystem::path& hint = {});

  // Starts the server. Error(kUnavailable) when nats-server is not installed ("apt-get
  // install nats-server") or does not come up (its log is in the message).
  explicit LocalNatsServer(Options options);
  LocalNatsServer() : LocalNatsServer(Options{}) {}
  // Kills the server and removes a temporary directory.
  ~LocalNatsServer();
  LocalNatsServer(const LocalNatsServer&) = delete;
  LocalNatsServer& operator=(const LocalNatsServer&) = delete;

  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }  // log and store/jetstream
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // SIGTERM and wait: the server shuts JetStream down cleanly.
  void Stop();
  // SIGKILL: a crash; JetStream recovers its store at the next start.
  void Kill();
  // Starts again on the same port with the same store (after Stop or Kill).
  void Start();
  void Restart() {
    Stop();
    Start();
  }
  // The server's log so far.
  std::string log() const;

 private:
  void Launch();
  void Wait();

  Options options_;
  std::filesystem::path binary_, dir_;
  bool own_dir_ = false;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace anju::server::runtime
