// SharedState and Leader on JetStream key-value buckets (docs/distributed.md, "Shared
// state" and "Leases"). A bucket keeps one value per key on disk in the server, and a
// write can be made conditional on the key's revision (compare-and-swap): counters are
// read, added to and written back on the revision they were read at, retried when
// another process wrote first; a lease is created when absent and refreshed on its
// revision, and the bucket's TTL removes a lease its holder stopped refreshing.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "server/runtime/leader.h"
#include "server/runtime/nats_connection.h"
#include "server/runtime/shared_state.h"

namespace anju::server::runtime {

// A key-value bucket (stream "KV_<bucket>", subjects "$KV.<bucket>.<key>", one value per
// key), read and written with JetStream calls so that a lost race is told apart from a
// failure. Any key is accepted: characters a KV key cannot hold are escaped ("=3A").
class NatsKvBucket {
 public:
  struct Options {
    std::string name;                      // "<prefix>_<name>"
    std::chrono::milliseconds ttl{0};      // every value vanishes this long after its write
    int32_t max_value_bytes = 512 * 1024;  // bigger values are refused (kTooLarge)
    int64_t max_bytes = -1;                // of the whole bucket; -1: the server's limit
    // How long one call may wait and retry while the server is away (0: the connection's
    // request_timeout and retry_for).
    std::chrono::milliseconds patience{0};
    // Held in the NATS server's memory, never on its disk (live preview frames: privacy);
    // lost when the server restarts.
    bool memory = false;
  };
  struct Entry {
    std::string value;
    uint64_t revision = 0;  // the stream sequence of the key's last write
    bool deleted = false;   // the last write was a delete
  };

  NatsKvBucket(std::shared_ptr<NatsConnection> conn, Options options);

  // The key's last write (deleted = true for a delete); nullopt when the key has none.
  std::optional<Entry> Get(const std::string& key) const;
  // Writes unconditionally; returns the new revision.
  uint64_t Put(const std::string& key, std::string_view value);
  // Writes only when the key's last write is still LAST (0: the key has no write at all);
  // nullopt when another write came first.
  std::optional<uint64_t> Update(const std::string& key, std::string_view value, uint64_t last);
  // Deletes (when LAST is given: only if the key's last write is still LAST). False when
  // that condition failed.
  bool Delete(const std::string& key, std::optional<uint64_t> last = std::nullopt);

  const std::string& bucket() const { return bucket_; }
  static std::string EncodeKey(const std::string& key);

 private:
  std::optional<uint64_t> Publish(const std::string& key, std::string_view value, bool del,
                                  std::optional<uint64_t> last);

  std::shared_ptr<NatsConnection> conn_;
  Options options_;
  std::string bucket_, stream_, subject_prefix_;
};

struct NatsSharedStateOptions {
  std::string bucket = "state";
  // The bucket's TTL and so the longest TTL a caller may give (longer: kInvalidArgument).
  // Shorter TTLs are kept with the value and honoured when it is read.
  std::chrono::milliseconds max_ttl{std::chrono::hours(24)};
  int32_t max_value_bytes = 512 * 1024;  // live preview frames are up to ~200 KB
  int64_t max_bytes = -1;
  bool memory = false;  // NatsKvBucket::Options::memory
};

// Expiry uses NowMs() (the process clock): processes on several machines need their
// clocks in step (NTP), as the database's timestamps already do.
class NatsSharedState final : public SharedState {
 public:
  NatsSharedState(std::shared_ptr<NatsConnection> conn, NatsSharedStateOptions options = {});

  // Error(kConflict) when the counter changed under it 100 times in a row (a storm);
  // Error(kUnavailable) when NATS is away beyond NatsOptions::retry_for.
  int64_t Add(const std::string& key, int64_t delta, std::chrono::milliseconds ttl) override;
  void Put(const std::string& key, std::string value, std::chrono::milliseconds ttl) override;
  bool PutIfAbsent(const std::string& key, std::string value,
                   std::chrono::milliseconds ttl) override;
  std::optional<std::string> Get(const std::string& key) const override;
  void Remove(const std::string& key) override;

 private:
  std::string Wrap(int64_t expires_ms, std::string_view value) const;
  void CheckTtl(std::chrono::milliseconds ttl) const;
  void CheckSize(const std::string& key, std::string_view value) const;  // kTooLarge

  NatsSharedStateOptions options_;
  NatsKvBucket kv_;
};

struct NatsLeaderOptions {
  std::string bucket = "leases";
  // A holder that stops refreshing (it died, or lost the server) loses a job this long
  // after its last refresh; it stops calling itself leader a fifth of it earlier.
  std::chrono::milliseconds lease{15'000};
  std::string holder;  // who this process is; empty: "<host>:<pid>:<uuid>"
};

// One holder per job name across every process on the server. Leases this process holds
// are refreshed by a thread of its own every lease/3 until it is destroyed, which
// releases them (the next process takes over at once instead of after the lease).
class NatsLeader final : public Leader {
 public:
  NatsLeader(std::shared_ptr<NatsConnection> conn, NatsLeaderOptions options = {});
  ~NatsLeader() override;

  // True when this process holds JOB's lease (taking it when nobody does). One round trip
  // at most, none while a recent refresh vouches for the lease. Never throws: a server
  // that cannot be reached means "not leader" once the lease would have run out.
  bool IsLeader(const std::string& job) override;
  // Gives JOB up now (if held).
  void Release(const std::string& job);

  const std::string& holder() const { return options_.holder; }

 private:
  struct Lease {
    bool held = false;
    uint64_t revision = 0;
    std::chrono::steady_clock::time_point written{};  // sent before this: valid lease-margin
  };
  void Refresh(const std::string& job, Lease& lease);  // caller holds mu_
  bool Valid(const Lease& lease, std::chrono::steady_clock::time_point now) const;
  void Run();

  NatsLeaderOptions options_;
  NatsKvBucket kv_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Lease> leases_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace anju::server::runtime
