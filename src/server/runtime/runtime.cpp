#include "server/runtime/runtime.h"

#include "server/runtime/embedded.h"
#include "server/runtime/nats_event_bus.h"
#include "server/runtime/nats_kv.h"
#include "server/runtime/nats_notifier.h"
#include "server/runtime/nats_work_queue.h"

namespace anju::server::runtime {

Runtime Runtime::Embedded() {
  Runtime r;
  r.recognition = std::make_unique<InProcessQueue>();
  r.events = std::make_unique<InProcessBus>();
  r.notifier = std::make_unique<LocalNotifier>();
  r.state = std::make_unique<MemorySharedState>();
  r.leader = std::make_unique<AlwaysLeader>();
  return r;
}

Runtime Runtime::Nats(NatsOptions options) {
  return Nats(NatsConnection::Connect(std::move(options)));
}

Runtime Runtime::Nats(std::shared_ptr<NatsConnection> connection) {
  Runtime r;
  r.nats = std::move(connection);
  r.recognition = std::make_unique<NatsWorkQueue>(r.nats);
  r.events = std::make_unique<NatsEventBus>(r.nats);
  r.notifier = std::make_unique<NatsNotifier>(r.nats);
  r.state = std::make_unique<NatsSharedState>(r.nats);
  r.leader = std::make_unique<NatsLeader>(r.nats);
  return r;
}

}  // namespace anju::server::runtime
