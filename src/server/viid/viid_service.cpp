// The snapshot service itself: opening captures.db, the stranger clusters and the
// thresholds, starting and stopping its threads, its counters (docs/viid.md).
#include "server/viid/viid_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "match/thresholds.h"
#include "server/runtime/embedded.h"
#include "server/runtime/runtime.h"
#include "server/storage/capture_repo.h"
#include "server/storage/captures_schema.h"
#include "server/storage/stranger_repo.h"
#include "server/storage/viid_camera_repo.h"
#include "server/viid/common.h"

namespace anju::server {

using cameras::BytesFeature;
using cameras::NowMs;
using nlohmann::json;
using storage::CaptureRepo;
using storage::StrangerRepo;
using storage::ViidCameraRepo;

// ---- service ---------------------------------------------------------------------------

ViidService::ViidService(ViidDeps deps, const crypto::DataKey& key, ViidOptions options)
    : deps_(std::move(deps)),
      key_(key),
      options_(std::move(options)),
      auth_failures_(options_.auth_failures) {
  if (!deps_.queue) own_queue_ = std::make_unique<runtime::InProcessQueue>();
  if (!deps_.bus) own_bus_ = std::make_unique<runtime::InProcessBus>();
  if (!deps_.state) own_state_ = std::make_unique<runtime::MemorySharedState>();
  if (!deps_.leader) own_leader_ = std::make_unique<runtime::AlwaysLeader>();
  queue_ = deps_.queue ? deps_.queue : own_queue_.get();
  bus_ = deps_.bus ? deps_.bus : own_bus_.get();
  state_ = deps_.state ? deps_.state : own_state_.get();
  leader_ = deps_.leader ? deps_.leader : own_leader_.get();
  if (!deps_.blobs) own_blobs_ = std::make_unique<runtime::FileBlobStore>(deps_.data_dir);
  blobs_ = deps_.blobs ? deps_.blobs : own_blobs_.get();
  db_ = storage::OpenCapturesDb(deps_.data_dir / "captures.db");
  if (!deps_.distributed) {
    // Registrations are sessions in this process's memory: after a restart none is known,
    // and the cameras are told to register again at their next keepalive. (In a shared
    // state they outlive one server's restart.)
    auto conn = db_->Acquire();
    ViidCameraRepo::UnregisterAll(conn);
  }
  // Nonces are checked without state (digest_auth.cpp). Embedded, with a key of this
  // process: a nonce from before a restart is foreign, since the nonce counts it saw are
  // gone. Shared, with a key every server derives from the data key, so that a camera's
  // nonce from one server is good on another; the counts are in the shared state too.
  if (!deps_.distributed) {
    nonce_key_ = crypto::RandomBytes(32);
  } else {
    const auto k = crypto::HmacSm3(key_.bytes(), std::string_view("anju-viid-nonce/v1"));
    nonce_key_.assign(k.begin(), k.end());
  }
  float low = 0.53f;
  level_ = {0.60f, 0.04f, 1e-5};
  if (!deps_.model_version.empty() && !deps_.thresholds_file.empty()) {
    try {
      const auto t = match::Thresholds::Load(deps_.thresholds_file, deps_.model_version);
      level_ = t.at(options_.level);
      low = t.at(match::SecurityLevel::kLow).threshold;
    } catch (const Error& e) {
      spdlog::warn("viid: default recognition thresholds: {}", e.what());
    }
  }
  clusters_ = std::make_unique<StrangerClusters>(
      options_.cluster_threshold > 0 ? options_.cluster_threshold : low);
  auto conn = db_->Acquire();
  for (const auto& row : StrangerRepo::Centroids(conn)) {
    try {
      const auto c = crypto::Open(key_, row.centroid_sealed,
                                  crypto::AsBytes("anju-stranger/v1/" + std::to_string(row.id)));
      clusters_->Load(row.id, BytesFeature(c), row.members);
    } catch (const Error& e) {
      spdlog::error("viid: stranger {} does not open: {}", row.id, e.what());
    }
  }
}

ViidService::~ViidService() {
  Stop();
}

bool ViidService::Stopping() const {
  return stop_ || (deps_.stopping && deps_.stopping->load());
}

void ViidService::Start() {
  if (started_) return;
  started_ = true;
  // Captures that were stored but not recognised before a restart (a shared queue drops
  // the ones it still holds: the capture id is the item's id).
  if (leader_->IsLeader(runtime::kJobRequeue)) {
    std::vector<std::string> queued;
    {
      auto conn = db_->Acquire();
      queued = CaptureRepo::Queued(conn);
    }
    for (auto& id : queued) queue_->Push({std::move(id), {}, NowMs()});
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i)
    threads_.emplace_back([this] { Worker(); });
  threads_.emplace_back([this] { Tail(); });
  threads_.emplace_back([this] { Periodic(); });
  threads_.emplace_back([this] { WebhookSender(); });
  threads_.emplace_back([this] { ForwardSender(); });
}

void ViidService::Stop() {
  stop_ = true;
  live_cv_.notify_all();
  // Shared seams belong to the server and outlive this service: only ours close here.
  if (own_queue_) own_queue_->Close();
  if (own_bus_) own_bus_->Close();
  bg_cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

json ViidService::StatsJson() const {
  const int64_t n = stats_.recognised.load();
  return {{"received", stats_.received.load()},
          {"recognised", n},
          {"accepted", stats_.accepted.load()},
          {"strangers", stats_.strangers.load()},
          {"rejected", stats_.rejected.load()},
          {"no_face", stats_.no_face.load()},
          {"failed", stats_.failed.load()},
          {"alarms", stats_.alarms.load()},
          {"queued", queue_->size()},
          {"busy", busy_.load()},
          {"latency_mean_ms", n ? double(stats_.latency_sum_ms.load()) / double(n) : 0.0},
          {"latency_max_ms", stats_.latency_max_ms.load()},
          {"clusters", clusters_->size()}};
}

}  // namespace anju::server
