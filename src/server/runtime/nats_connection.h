// One connection to NATS (JetStream), shared by the NATS implementations of the runtime
// seams (docs/distributed.md). It reconnects by itself, forever, when the server goes away;
// calls made meanwhile are retried for a while (NatsOptions::retry_for) and then fail with
// Error(kUnavailable). Connect does not wait: an unreachable server, or one without
// JetStream, is a clear Error(kUnavailable) at once; ConnectWaiting waits for it.
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace anju::server::runtime {

struct NatsOptions {
  // "nats://host:port"; several servers of one cluster separated by commas.
  std::string url = "nats://127.0.0.1:4222";
  std::string name = "anju";  // the client's name in the server's monitoring
  // Namespaces everything: subjects "<prefix>.…", streams "<PREFIX>_…", buckets
  // "<prefix>_…". Two installations (or two tests) on one server use two prefixes.
  std::string prefix = "anju";
  int replicas = 1;  // of every stream and bucket (3 on a three-node cluster)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds request_timeout{5000};  // one JetStream API call
  // How long a call keeps trying while the server is away or restarting.
  std::chrono::milliseconds retry_for{15000};
  std::chrono::milliseconds reconnect_wait{250};
};

class NatsConnection {
 public:
  // Connects; Error(kUnavailable) naming the URL when no server answers or JetStream is
  // not enabled on it, Error(kInvalidArgument) for a malformed URL.
  static std::shared_ptr<NatsConnection> Connect(NatsOptions options);
  // Connect, but while no server answers (Error kUnavailable) tries again after FIRST,
  // doubling up to MOST, logging every attempt, until it connects or STOP returns true
  // (looked at every 100 ms): then Error(kUnavailable). A process started before its
  // nats-server waits for it instead of exiting (R3.4.2.1).
  static std::shared_ptr<NatsConnection> ConnectWaiting(
      NatsOptions options, const std::function<bool()>& stop,
      std::chrono::milliseconds first = std::chrono::milliseconds(500),
      std::chrono::milliseconds most = std::chrono::milliseconds(5000));
  ~NatsConnection();
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* nc() const { return nc_; }
  jsCtx* js() const { return js_; }
  const NatsOptions& options() const { return options_; }

  // "<prefix>.<name>".
  std::string Subject(std::string_view name) const;
  // "<PREFIX>_<NAME>", upper case, characters a stream name cannot hold as '_'.
  std::string StreamName(std::string_view name) const;
  // "<prefix>_<name>" for a key-value bucket.
  std::string BucketName(std::string_view name) const;

  bool connected() const;
  uint64_t reconnects() const;

  // Runs OP until it returns NATS_OK, for up to RETRY_FOR (0: options().retry_for) while it
  // fails in a way a reconnecting client or a restarting server explains; then throws the
  // error (kUnavailable naming WHAT). OP reports JetStream's error code through its argument.
  void Retry(const std::string& what, const std::function<natsStatus(jsErrCode*)>& op,
             std::chrono::milliseconds retry_for = {}) const;

  // Creates the stream of CFG, or brings an existing one to CFG (limits may change,
  // retention may not: Error(kConflict) then, naming the stream).
  void EnsureStream(jsStreamConfig& cfg) const;

  // FN runs (on a thread of the library's; keep it short) after every reconnection.
  // Returns a handle for RemoveReconnectListener.
  uint64_t AddReconnectListener(std::function<void()> fn);
  void RemoveReconnectListener(uint64_t id);

  // Closes the connection now: what a process that dies looks like to the server (tests).
  void Close();

 public:
  struct Hooks;  // what the library's callbacks reach; outlives this object if need be

 private:
  explicit NatsConnection(NatsOptions options);
  static void OnReconnected(natsConnection*, void* hooks);
  static void OnDisconnected(natsConnection*, void* hooks);
  static void OnAsyncError(natsConnection*, natsSubscription*, natsStatus, void* hooks);

  NatsOptions options_;
  std::shared_ptr<Hooks> hooks_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
};

// Whether a failure is one that retrying after a reconnection can cure.
bool IsTransient(natsStatus s, jsErrCode jerr);
// The error for a failed call: kUnavailable when transient, kConflict for a wrong last
// sequence, kTooLarge for a message over the limit, kStorageFull when a stream is full,
// else kInternal. The message names WHAT and the library's own words.
[[noreturn]] void ThrowNats(const std::string& what, natsStatus s, jsErrCode jerr = jsErrCode(0));
// The library's last error text for the calling thread ("" when none).
std::string NatsLastError(natsStatus s);

}  // namespace anju::server::runtime
