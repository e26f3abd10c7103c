// SyncClient: the terminal's gallery sync, command poll and heartbeat (docs/device-
// protocol.md, "Gallery sync", "Commands", "Heartbeat"). One background thread:
//
//   every poll_interval (default 2 s): GET /gallery?since=<stored version> and apply each
//   page atomically (LocalState::ApplyBatch) while `more`; GET /commands, run them,
//   POST /commands/ack; every heartbeat_interval (30 s, and at start): POST /heartbeat.
//
// An interrupted sync resumes from the version stored with the last applied page. While
// the server cannot be reached the thread backs off (capped exponential) and the link
// state changes are logged once. Recognition never waits for any of this (R3.1.2.7).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "protocol/device_client.h"
#include "terminal/command_runner.h"
#include "terminal/link_state.h"
#include "terminal/local_state.h"

namespace anju::terminal {

struct SyncOptions {
  std::chrono::milliseconds poll_interval{2'000};
  std::chrono::milliseconds heartbeat_interval{30'000};
  std::chrono::milliseconds backoff_initial{1'000};
  std::chrono::milliseconds backoff_max{30'000};
  int page_limit = 200;  // changes per gallery request (server caps at 500)
  std::string software_version = "0.1.0";
  // The "thresholds" of each gallery answer (null when absent: the site has no levels of its
  // own), on the sync thread; the terminal lays them over its file (terminal/site_levels.h).
  std::function<void(const nlohmann::json&)> thresholds;
};

struct SyncStats {
  int64_t gallery_version = 0;  // applied
  int64_t latest_version = 0;   // the server's latest, as last seen
  uint64_t pages = 0;           // gallery responses applied
  uint64_t changes = 0;         // changes applied
  uint64_t commands = 0;        // commands run and acknowledged
  uint64_t heartbeats = 0;
  uint64_t failures = 0;  // rounds that failed
  LinkState link = LinkState::kUnknown;
  std::string last_error;
  int64_t last_success_ms = 0;
  nlohmann::json ToJson() const;
};

class SyncClient {
 public:
  // Extra heartbeat fields (outbox_count, outbox_bytes, outbox_oldest_ms, camera,
  // uptime_s), called on the sync thread.
  using HeartbeatFields = std::function<nlohmann::json()>;

  SyncClient(LocalState& state, protocol::DeviceClient& client, crypto::DataKey device_data_key,
             CommandRunner& commands, SyncOptions options = {}, HeartbeatFields fields = {});
  ~SyncClient();  // stops the thread
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // One step each, on the caller's thread; they throw what DeviceClient throws
  // (Error kUnavailable / kCrypto, protocol::ApiError) and Error(kCorrupt) for an answer
  // that is not what the protocol says (nothing of it is applied).
  size_t SyncGallery();   // pages until more=false; returns the changes applied
  size_t PollCommands();  // returns the commands run (all fetched ones are acknowledged)
  void Heartbeat();
  // SyncGallery + PollCommands + Heartbeat when due; updates the link state.
  bool RunOnce();

  void Start();
  void Stop();
  void RequestSync();  // wake the thread now (a "sync" command, a test)

  SyncStats stats() const;
  const Link& link() const { return link_; }

 private:
  void Loop();
  LocalState& state_;
  protocol::DeviceClient& client_;
  crypto::DataKey data_key_;
  CommandRunner& commands_;
  SyncOptions options_;
  HeartbeatFields fields_;
  Link link_{"sync"};
  std::chrono::steady_clock::time_point next_heartbeat_{};
  std::atomic<int64_t> latest_{0};
  std::atomic<uint64_t> pages_{0}, changes_{0}, commands_run_{0}, heartbeats_{0}, failures_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace anju::terminal
