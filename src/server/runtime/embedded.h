// The embedded implementations of the runtime seams: everything in this process, with the
// database and the data directory as the durable state (the default, `make run`).
#pragma once

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "server/runtime/blob_store.h"
#include "server/runtime/event_bus.h"
#include "server/runtime/leader.h"
#include "server/runtime/notifier.h"
#include "server/runtime/shared_state.h"
#include "server/runtime/work_queue.h"

namespace anju::server::runtime {

// In memory, first in first out; an item naked is delivered again after its delay.
// InProgress needs no bookkeeping: nothing redelivers by itself in one process.
class InProcessQueue final : public WorkQueue {
 public:
  void Push(WorkItem item) override;
  std::optional<WorkItem> Pop(std::chrono::milliseconds timeout) override;
  void Ack(const WorkItem& item) override;
  void Nak(const WorkItem& item, std::chrono::milliseconds delay) override;
  void InProgress(const WorkItem&) override {}
  size_t size() const override;
  void Close() override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WorkItem> items_;
  std::multimap<int64_t, WorkItem> delayed_;  // naked: due time (ms) → item
  std::set<std::string> ids_;  // queued or delivered, not yet acked: a second push is one item
  uint64_t next_token_ = 0;
  size_t delivered_ = 0;
  bool closed_ = false;
};

// A ring of the latest CAPACITY messages.
class InProcessBus final : public EventBus {
 public:
  explicit InProcessBus(size_t capacity = 2000) : capacity_(capacity) {}
  uint64_t Publish(std::string event, nlohmann::json data) override;
  std::vector<BusMessage> Read(uint64_t after, std::chrono::milliseconds timeout,
                               size_t max = 500) override;
  uint64_t last_seq() const override;
  void Close() override;

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> ring_;
  uint64_t seq_ = 0;
  bool closed_ = false;
};

// Calls the handlers of a topic on the publishing thread.
class LocalNotifier final : public Notifier {
 public:
  void Publish(const std::string& topic, const nlohmann::json& message) override;
  std::unique_ptr<Subscription> Subscribe(const std::string& topic, Handler handler) override;

 private:
  class Sub;
  std::mutex mu_;
  uint64_t next_ = 0;
  std::map<uint64_t, std::pair<std::string, Handler>> subs_;
};

// How FileBlobStore::PutMany makes a batch durable before it returns. All three are
// equally durable; `anju bench event-store` compares them (docs/events-and-retention.md,
// "Snapshots on disk", has the figures).
enum class BlobSync {
  kParallel,  // write every file, then fsync the files and the directories they need
              // concurrently (one thread each, up to 32): the file system commits them in
              // one journal transaction, so a batch costs about one fsync
  kPerFile,   // fsync each file as it is written, then the directories, one by one
  kSyncfs,    // write every file, then one syncfs() of the file system holding the root
              // (flushes everything dirty on that disk, not only ours)
};

// Files under ROOT (a key is the file's path relative to ROOT); every file and every
// directory PutMany creates is durable before it returns (SYNC says how).
class FileBlobStore final : public BlobStore {
 public:
  explicit FileBlobStore(std::filesystem::path root, BlobSync sync = BlobSync::kParallel);
  void PutMany(const std::vector<std::pair<std::string, std::span<const uint8_t>>>& blobs) override;
  std::vector<uint8_t> Get(const std::string& key) const override;
  bool Exists(const std::string& key) const override;
  std::optional<int64_t> Size(const std::string& key) const override;
  bool Remove(const std::string& key) override;
  void List(const std::string& prefix,
            const std::function<bool(const std::string& key)>& fn) const override;
  // Removes the empty directories under PREFIX, deepest first (PREFIX itself stays).
  void Prune(const std::string& prefix) override;
  const std::filesystem::path& root() const { return root_; }
  // The file of KEY (Error(kInvalidArgument) for a key that leaves the root).
  std::filesystem::path PathOf(const std::string& key) const;

 private:
  std::filesystem::path root_;
  BlobSync sync_;
};

class MemorySharedState final : public SharedState {
 public:
  int64_t Add(const std::string& key, int64_t delta, std::chrono::milliseconds ttl) override;
  void Put(const std::string& key, std::string value, std::chrono::milliseconds ttl) override;
  bool PutIfAbsent(const std::string& key, std::string value,
                   std::chrono::milliseconds ttl) override;
  std::optional<std::string> Get(const std::string& key) const override;
  void Remove(const std::string& key) override;

 private:
  struct Entry {
    std::string value;
    int64_t expires_ms = 0;
  };
  void Sweep(int64_t now);  // drops expired entries now and then (caller holds mu_)
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  int64_t next_sweep_ms_ = 0;
};

class AlwaysLeader final : public Leader {
 public:
  bool IsLeader(const std::string&) override { return true; }
};

}  // namespace anju::server::runtime
