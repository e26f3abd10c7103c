// What every part of the snapshot-camera side shares (docs/viid.md): its options, what the
// server hands it (ViidDeps), captures.db, the data key, the runtime seams in use, the
// counters and the stop signal of its background loops.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "crypto/envelope.h"
#include "db/db.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "server/runtime/blob_store.h"
#include "server/runtime/event_bus.h"
#include "server/runtime/leader.h"
#include "server/runtime/runtime.h"
#include "server/runtime/shared_state.h"
#include "server/runtime/work_queue.h"
#include "server/viid/auth_failures.h"
#include "server/viid/image_fetch.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class EventStore;

struct ViidOptions {
  std::string realm = "anju-viid";
  // Recognition threads (each owns a FaceEngine); 0 = none here: another process of the
  // installation (a worker, ServerRole::kWorker) recognises what this one queues.
  int workers = 1;
  int64_t nonce_ttl_ms = 5 * 60 * 1000;
  // A registration (and its User-Identify session) lapses this long after the last register,
  // keepalive or upload (3 missed keepalives); a keepalive after that is told to register
  // again. Registrations live in memory: a restarted server knows none.
  int64_t session_ttl_ms = 3 * 60 * 1000;
  // Images given only as a URL on the camera (StoragePath) and failed digest logins.
  cameras::ImageFetchOptions image_fetch;
  cameras::AuthFailureOptions auth_failures;
  // Quality / pose gate before 1:N (R3.1.3.1 limits: yaw ≤ 45°, pitch ≤ 20°; a little
  // slack on pitch because the landmark estimate is coarse).
  float min_inter_pupil = 16;
  float max_yaw = 45, max_pitch = 25;
  float min_sharpness = 10;
  // Snapshot faces arrive as tight crops: locate the face with the landmarker alone and
  // run the detector only when that fails (vision::FaceEngine::LocateInTightCrop).
  bool tight_crop = true;
  // Mirror averaging of the embedding for snapshots (figures in BENCHMARKS.md).
  bool embed_flip = true;
  // Recognition level (thresholds file) and stranger clustering threshold (low level by
  // default: clusters may merge look-alikes rather than split one visitor).
  match::SecurityLevel level = match::SecurityLevel::kNormal;
  float cluster_threshold = 0;     // 0 = the thresholds file's low level
  int64_t tail_interval_ms = 200;  // how often new access records / alarms are published
  int64_t periodic_interval_ms = 3600 * 1000;  // the tenant-absent rule
  // The sweeper: captures still `queued` sweep_after_ms after their arrival were lost on the
  // way (a crash between the row and the push, an item past the queue's max deliver, a
  // queue that lost its data) and are pushed again; looked at every sweep_interval_ms. A
  // push of an item still in the queue is dropped (embedded) or, past the duplicate window,
  // recognised twice and finished once (docs/distributed.md).
  int64_t sweep_interval_ms = 60'000;
  int64_t sweep_after_ms = 10 * 60'000;
  // Captures, their images and idle stranger clusters (R3.3.2.6), when the server does not
  // give the period in force (ViidDeps::retention_months).
  int retention_months = 12;
  // Live preview frames (memory only): older ones are not served as "live"; at most this
  // many MJPEG streams at once (each holds an HTTP thread) and this long each.
  int64_t live_max_age_ms = 30'000;
  int max_live_streams = 8;
  int64_t live_stream_max_ms = 10 * 60'000;
};

struct ViidDeps {
  std::filesystem::path data_dir;
  // Where the captures database is (storage/databases.h): "" = data_dir/captures.db.
  std::string database;
  // The snapshot retention in force (it may change at run time); unset = options.
  std::function<int()> retention_months;
  EventStore* events = nullptr;
  db::Db* archive = nullptr;
  std::function<match::FeatureIndex*()> index;  // enrolled persons (may return null)
  std::filesystem::path model_dir;
  std::filesystem::path thresholds_file;
  // The level in force at a camera's building: its site's calibrated level (docs/matching.md,
  // "Per-site calibration"), nullopt = the thresholds file's. May be empty.
  std::function<std::optional<match::LevelSetting>(int64_t building_id, match::SecurityLevel)>
      site_level;
  std::string model_version;
  const std::atomic<bool>* stopping = nullptr;
  // The runtime seams (server/runtime/runtime.h): the recognition queue, the live stream,
  // camera sessions and digest nonces, and who runs the singleton jobs (the event tail,
  // the periodic rules, the webhook and forward senders). Null: embedded
  // ones of the service's own.
  runtime::WorkQueue* queue = nullptr;
  runtime::EventBus* bus = nullptr;
  runtime::SharedState* state = nullptr;
  runtime::Leader* leader = nullptr;
  // Where the sealed capture images go (null: files under data_dir). Keys are the paths
  // the capture rows name, relative to the store's root.
  runtime::BlobStore* blobs = nullptr;
  // The seams are shared by several server processes (runtime::Runtime::distributed()):
  // camera sessions outlive one server's restart and a nonce is good on every server.
  bool distributed = false;
  // The NATS connection when the seams are on NATS: live preview frames go to a key-value
  // bucket of their own, held in the NATS server's memory (never on its disk).
  std::shared_ptr<runtime::NatsConnection> nats;
  // A capture finished by recognition, on the transaction that finishes it, with its face
  // crop: the three-level platform's uplink (server/platform/uplink_sender.h). May be empty.
  std::function<void(db::Conn&, const CaptureDetail&, const std::vector<uint8_t>&)> on_finished;
};

// Running totals since start (the stats endpoint).
struct ViidStats {
  std::atomic<int64_t> received{0}, recognised{0}, accepted{0}, strangers{0}, rejected{0},
      no_face{0}, failed{0}, alarms{0};
  std::atomic<int64_t> latency_sum_ms{0}, latency_max_ms{0};
  void AddLatency(int64_t ms);
};

class ViidContext {
 public:
  // Opens the captures database (DEPS.database, else captures.db under DEPS.data_dir);
  // KEY seals images, features, centroids and device secrets.
  ViidContext(ViidDeps deps, const crypto::DataKey& key, ViidOptions options);
  ViidContext(const ViidContext&) = delete;
  ViidContext& operator=(const ViidContext&) = delete;

  const ViidDeps& deps() const { return deps_; }
  const ViidOptions& options() const { return options_; }
  const crypto::DataKey& key() const { return key_; }
  db::Db& db() { return *db_; }
  runtime::WorkQueue& queue() { return *queue_; }
  runtime::EventBus& bus() { return *bus_; }
  runtime::SharedState& state() { return *state_; }
  runtime::Leader& leader() { return *leader_; }
  runtime::BlobStore& blobs() { return *blobs_; }
  // Where live preview frames go when the runtime is shared (ViidDeps::nats; else state()).
  runtime::SharedState& live_state() { return live_state_ ? *live_state_ : *state_; }
  ViidStats& stats() { return stats_; }

  // True once Stop() ran or the server is stopping.
  bool Stopping() const;
  // Ends the background loops: wakes them, closes the seams this context made itself
  // (shared ones belong to the server and outlive it).
  void Stop();
  // Background loops sleep here: up to D, less when woken (Wake, Stop). The server's own
  // stop flag does not wake it: loops keep D short (a second or less).
  void Sleep(std::chrono::milliseconds d);
  void Wake() { bg_cv_.notify_all(); }
  // Waits the whole of D (in short sleeps), ending early only when stopping: the pause of
  // a loop that runs on a schedule.
  void WaitFor(std::chrono::milliseconds d);
  // True when this process runs singleton JOB now; otherwise sleeps a second first.
  bool HoldsJob(const char* job);

 private:
  ViidDeps deps_;
  crypto::DataKey key_;
  ViidOptions options_;
  std::unique_ptr<db::Db> db_;
  runtime::Runtime own_;  // the embedded seams, used where DEPS_ gives none
  std::unique_ptr<runtime::BlobStore> own_blobs_;
  std::unique_ptr<runtime::SharedState> live_state_;
  runtime::WorkQueue* queue_ = nullptr;
  runtime::EventBus* bus_ = nullptr;
  runtime::SharedState* state_ = nullptr;
  runtime::Leader* leader_ = nullptr;
  runtime::BlobStore* blobs_ = nullptr;
  ViidStats stats_;
  std::atomic<bool> stop_{false};
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
};

}  // namespace anju::server
