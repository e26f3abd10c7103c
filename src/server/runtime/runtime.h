// The runtime seams one server process runs on, chosen once at start (docs/distributed.md):
// embedded (everything in this process: the default, `make run`) or NATS JetStream (several
// API and worker processes on several machines share the queue, the live stream, the
// counters and the leases).
#pragma once

#include <memory>

#include "server/runtime/event_bus.h"
#include "server/runtime/leader.h"
#include "server/runtime/nats_connection.h"
#include "server/runtime/notifier.h"
#include "server/runtime/shared_state.h"
#include "server/runtime/work_queue.h"

namespace anju::server::runtime {

struct Runtime {
  std::unique_ptr<WorkQueue> recognition;  // snapshot recognition (GA/T 1400 captures)
  std::unique_ptr<EventBus> events;        // the console's live stream
  std::unique_ptr<Notifier> notifier;      // "look again" fan-out (gallery, control)
  std::unique_ptr<SharedState> state;      // counters, lockouts, nonces, camera sessions
  std::unique_ptr<Leader> leader;          // who runs the singleton jobs
  std::shared_ptr<NatsConnection> nats;    // null when embedded

  static Runtime Embedded();
  // Error(kUnavailable) when the server cannot be reached or has no JetStream.
  static Runtime Nats(NatsOptions options);
  // The same on a connection made already (NatsConnection::ConnectWaiting).
  static Runtime Nats(std::shared_ptr<NatsConnection> connection);

  bool distributed() const { return nats != nullptr; }
};

// Singleton job names (Leader::IsLeader): one holder per installation.
inline constexpr const char* kJobRetention = "retention";   // events, snapshots, quarantine
inline constexpr const char* kJobDeletions = "deletions";   // finishing interrupted deletions
inline constexpr const char* kJobEventTail = "event-tail";  // events.db → the live stream
inline constexpr const char* kJobSnapshotRules = "snapshot-rules";  // periodic alert rules
inline constexpr const char* kJobWebhook = "webhook";               // the webhook sender
inline constexpr const char* kJobForward = "forward";               // the upper-platform sender
inline constexpr const char* kJobRequeue = "requeue";               // captures left queued

}  // namespace anju::server::runtime
