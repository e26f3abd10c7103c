#include "server/viid/context.h"

#include "server/runtime/embedded.h"
#include "server/runtime/nats_kv.h"
#include "server/storage/databases.h"

namespace anju::server {

void ViidStats::AddLatency(int64_t ms) {
  latency_sum_ms += ms;
  int64_t prev = latency_max_ms.load();
  while (ms > prev && !latency_max_ms.compare_exchange_weak(prev, ms)) {
  }
}

ViidContext::ViidContext(ViidDeps deps, const crypto::DataKey& key, ViidOptions options)
    : deps_(std::move(deps)),
      key_(key),
      options_(std::move(options)),
      own_(runtime::Runtime::Embedded()) {
  queue_ = deps_.queue ? deps_.queue : own_.recognition.get();
  bus_ = deps_.bus ? deps_.bus : own_.events.get();
  state_ = deps_.state ? deps_.state : own_.state.get();
  leader_ = deps_.leader ? deps_.leader : own_.leader.get();
  if (!deps_.blobs) own_blobs_ = std::make_unique<runtime::FileBlobStore>(deps_.data_dir);
  blobs_ = deps_.blobs ? deps_.blobs : own_blobs_.get();
  if (deps_.nats) {
    runtime::NatsSharedStateOptions o;
    o.bucket = "live";
    o.max_ttl = std::chrono::hours(1);
    o.memory = true;
    live_state_ = std::make_unique<runtime::NatsSharedState>(deps_.nats, o);
  }
  db_ = storage::OpenCapturesAt(deps_.database, deps_.data_dir);
}

bool ViidContext::Stopping() const {
  return stop_ || (deps_.stopping && deps_.stopping->load());
}

void ViidContext::Stop() {
  stop_ = true;
  if (!deps_.queue) own_.recognition->Close();
  if (!deps_.bus) own_.events->Close();
  bg_cv_.notify_all();
}

void ViidContext::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(bg_mu_);
  if (!Stopping()) bg_cv_.wait_for(lock, d);
}

void ViidContext::WaitFor(std::chrono::milliseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  for (auto left = d; !Stopping() && left.count() > 0;
       left = std::chrono::duration_cast<std::chrono::milliseconds>(
           until - std::chrono::steady_clock::now()))
    Sleep(std::min(left, std::chrono::milliseconds(500)));
}

bool ViidContext::HoldsJob(const char* job) {
  if (leader_->IsLeader(job)) return true;
  Sleep(std::chrono::seconds(1));
  return false;
}

}  // namespace anju::server
