// The server's feature index kept equal to the archive's feature codes when several
// processes share the archive (docs/distributed.md, "The gallery index"; R3.1.4.3).
//
// Every insert or delete of a feature code appends its person to the archive's feature
// change log as the transaction commits (storage/photo_repo.h), in commit order. Each
// process applies the log after the sequence number it last applied: it re-reads the
// persons named and replaces their templates in its index (atomically per person, so a
// search never sees half a person). It looks when the process that made a change announces
// it ("gallery" on the notifier, after the commit) and every poll interval, in case a
// notification was lost. A process that was away longer than the log is kept (its
// sequence number is older than the log's first) reloads the whole index.
//
// The embedded server needs none of this (its one process updates its index in place), but
// runs it too: the poll then finds nothing to do, and the log is pruned all the same.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "crypto/envelope.h"
#include "db/db.h"
#include "match/index.h"
#include "server/runtime/notifier.h"

namespace anju::server {

struct IndexSyncOptions {
  std::chrono::milliseconds poll{2000};
  // Log rows older than this are pruned; a process away longer reloads everything.
  int64_t keep_ms = int64_t(7) * 24 * 3600 * 1000;
};

class IndexSync {
 public:
  // INDEX holds the features of its model version; KEY opens them (sealed at rest).
  // NOTIFIER (may be null): announcements to and from the other processes.
  IndexSync(db::Db& archive, match::FeatureIndex& index, const crypto::DataKey& key,
            runtime::Notifier* notifier, IndexSyncOptions options = {});
  ~IndexSync();
  IndexSync(const IndexSync&) = delete;
  IndexSync& operator=(const IndexSync&) = delete;

  // Fills the index with every feature code and starts applying the log from its head
  // (read before the load: a change committed meanwhile is applied again, harmlessly).
  void LoadAll();
  // Applies the log after the last applied sequence number; returns the persons re-read.
  size_t CatchUp();
  // Inside a transaction that changed feature codes: announces it once it has committed.
  void Announce(db::Conn& conn);
  // Background: catch up on announcements and every poll interval; prune the log.
  void Start();
  void Stop();

  int64_t applied() const { return applied_.load(); }

 private:
  void LoadAllLocked();
  void Run();

  db::Db& archive_;
  match::FeatureIndex& index_;
  crypto::DataKey key_;
  runtime::Notifier* notifier_;
  IndexSyncOptions options_;
  std::atomic<int64_t> applied_{0};
  std::mutex apply_mu_;  // one applier at a time
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false, stop_ = false, announce_ = false;
  std::unique_ptr<runtime::Notifier::Subscription> subscription_;
  std::thread thread_;
};

}  // namespace anju::server
