// The server side of snapshot cameras (R3.1.4, R3.2.1.1, R3.4.2.2): GA/T 1400
// devices and their digest credentials, capture records with sealed crops, recognition
// workers behind a work-queue interface, stranger clusters, alert rules that raise alarms
// through the event store, the webhook outbox, the live event bus and the reports.
// http/viid_handlers.cpp puts HTTP in front of it; the parts live in server/viid/
// (docs/viid.md).
//
// Storage: <data>/captures.db (SQLite, WAL, synchronous=FULL) and one sealed file per image,
// <data>/captures/YYYY/MM/DD/<capture id>-<n>.jpg.sealed = Seal(data key, jpeg,
// aad = "anju-capture/v1/<capture id>/<n>"), written and fsynced before the row commits.
// The capture row is the durable queue entry: rows still `queued` at start are queued again.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "protocol/viid.h"
#include "server/runtime/blob_store.h"
#include "server/runtime/event_bus.h"
#include "server/runtime/leader.h"
#include "server/runtime/shared_state.h"
#include "server/runtime/work_queue.h"
#include "server/viid/auth_failures.h"
#include "server/viid/image_fetch.h"
#include "server/viid/stranger_clusters.h"

namespace anju::server {

class EventStore;

// ---- options ---------------------------------------------------------------------------

struct ViidOptions {
  std::string realm = "anju-viid";
  int workers = 1;  // recognition threads (each owns a FaceEngine)
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
  int64_t periodic_interval_ms = 3600 * 1000;  // tenant-absent rule, capture retention
  int retention_months = 12;  // captures, their images and idle stranger clusters (R3.3.2.6)
  // Live preview frames (memory only): older ones are not served as "live"; at most this
  // many MJPEG streams at once (each holds an HTTP thread) and this long each.
  int64_t live_max_age_ms = 30'000;
  int max_live_streams = 8;
  int64_t live_stream_max_ms = 10 * 60'000;
};

// The latest live-preview frame of a camera (never written to disk: privacy).
struct LiveFrame {
  std::shared_ptr<const std::string> jpeg;
  int64_t time_ms = 0;  // arrival
  uint64_t seq = 0;     // per server, increasing
};

struct ViidDeps {
  std::filesystem::path data_dir;
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
  // the periodic rules and retention, the webhook and forward senders). Null: embedded
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
};

// One capture to recognise, as a worker takes it from the queue.
struct RecognitionJob {
  std::string capture_id;
  int64_t enqueued_ms = 0;
  std::vector<uint8_t> face_jpeg;  // optional: the crop, saves reading it back
};

// ---- records ---------------------------------------------------------------------------

struct ViidDevice {
  std::string id;
  std::string name;
  std::string place;  // free text ("3号楼2单元门口")
  std::optional<int64_t> building_id, unit_id;
  std::string linked_device;  // the access terminal at the same door ("" = none)
  std::string status = "active";
  bool registered = false;
  int64_t last_seen_ms = 0;
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};

struct CaptureQuery {
  int64_t from_ms = 0, to_ms = 0;
  std::string device, person, outcome, state;
  int64_t stranger = 0;
  int64_t limit = 50, offset = 0;
  // Only cameras in these buildings (an account's sites, server/site_scope.h); none = all.
  std::optional<std::vector<int64_t>> buildings;
};

struct AlertRule {
  int64_t id = 0;
  std::string type;  // repeated_stranger | stranger_at_night | tenant_absent |
                     // shared_authorisation | blacklist
  std::string name;
  bool enabled = true;
  nlohmann::json params = nlohmann::json::object();
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};
// Checks TYPE and PARAMS (fills defaults); throws Error(kInvalidArgument) when invalid.
AlertRule ValidateRule(AlertRule rule);

class ViidService {
 public:
  // KEY seals images, features, centroids and device secrets.
  ViidService(ViidDeps deps, const crypto::DataKey& key, ViidOptions options = {});
  ~ViidService();
  ViidService(const ViidService&) = delete;
  ViidService& operator=(const ViidService&) = delete;

  // Starts the workers and background threads (idempotent).
  void Start();
  void Stop();

  // --- devices (admin) ---
  ViidDevice AddDevice(ViidDevice device, const std::string& password);
  std::vector<ViidDevice> Devices();
  std::optional<ViidDevice> Device(const std::string& id);
  bool RemoveDevice(const std::string& id);

  // --- GA/T 1400 ---
  // What a GA/T 1400 request is answered: the standard's ResponseStatusObject (or list) in
  // BODY, how the request fared (the HTTP front, http/viid_handlers.cpp, makes it a status)
  // and a Digest challenge (WWW-Authenticate) when the camera is to log in.
  struct ViidAnswer {
    enum class Outcome { kOk, kMalformed, kUnauthenticated, kRefused, kTooLarge };
    Outcome outcome = Outcome::kOk;
    nlohmann::json body;
    std::string challenge;  // "" = none
  };
  // Authenticates a request (Digest, or a registered device's User-Identify session from
  // the same address) and returns the device id, or an answer to send instead
  // (kUnauthenticated with a challenge, or kRefused for a revoked device).
  std::variant<std::string, ViidAnswer> Authenticate(
      const std::string& method, const std::string& target, const std::string& authorization,
      const std::string& user_identify, const std::string& remote_addr, bool require_digest);
  ViidAnswer Register(const std::string& device, const std::string& body,
                      const std::string& remote_addr);
  ViidAnswer Unregister(const std::string& device, const std::string& body);
  ViidAnswer Keepalive(const std::string& device, const std::string& body,
                       const std::string& remote_addr);
  // REMOTE_ADDR: the upload's source, the only host StoragePath images are fetched from.
  ViidAnswer Faces(const std::string& device, const std::string& body,
                   const std::string& remote_addr = "");

  // --- captures ---
  nlohmann::json Captures(const CaptureQuery& q);
  nlohmann::json Capture(const std::string& id);
  std::vector<uint8_t> CaptureImage(const std::string& id, int n);
  // Latest capture per camera (live preview of recent captures).
  nlohmann::json Latest();
  // A capture's clip (frames around the best face, sealed like its images): {"capture_id",
  // "frames": [{"n", "offset_ms", "bytes", "width", "height"}]}; 404 for an unknown capture
  // or one without a clip.
  nlohmann::json Clip(const std::string& id);
  std::vector<uint8_t> ClipFrame(const std::string& id, int n);

  // --- live preview ---
  // Keeps BODY (a JPEG) as DEVICE's latest live frame; answers a ResponseStatusObject.
  ViidAnswer PutLiveFrame(const std::string& device, const std::string& body);
  // The latest frame newer than AFTER_SEQ and not older than live_max_age_ms, waiting up to
  // WAIT for one; nullopt otherwise (or when stopping).
  std::optional<LiveFrame> Live(const std::string& device, uint64_t after_seq = 0,
                                std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // Counts an MJPEG stream in; false when max_live_streams are open. LeaveLiveStream ends it.
  bool EnterLiveStream();
  void LeaveLiveStream();
  // Waits until no job is queued or running (tests, bench); false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout);

  // --- strangers ---
  // BUILDINGS: only sightings by cameras in these buildings (an account's sites,
  // server/site_scope.h); a stranger no such camera saw is left out / not found. none = all.
  nlohmann::json Strangers(int64_t from_ms, int64_t to_ms, const std::string& device,
                           int64_t min_count, int64_t limit, int64_t offset,
                           const std::optional<std::vector<int64_t>>& buildings = std::nullopt);
  nlohmann::json Stranger(int64_t id,
                          const std::optional<std::vector<int64_t>>& buildings = std::nullopt);

  // --- alert rules ---
  std::vector<AlertRule> Rules();
  AlertRule AddRule(AlertRule rule);
  AlertRule UpdateRule(int64_t id, const nlohmann::json& patch);
  bool RemoveRule(int64_t id);
  // Runs the periodic rules (tenant_absent) now; returns the alarms raised.
  int EvaluatePeriodic(int64_t now_ms);

  // --- webhook ---
  void SetWebhook(const std::string& url);
  nlohmann::json Webhook();

  // --- forwarding to an upper platform (own durable outbox) ---
  // {"kind": "" (off) | "http" | "gat1400", "url", "username"?, "password"?, "captures"?,
  // "alarms"?}: http POSTs {"type":"capture"|"alarm", ...} JSON to url; gat1400 POSTs each
  // recognised capture as a FaceListObject to url + /VIID/Faces with HTTP Digest. Throws
  // Error(kInvalidArgument) when invalid. The password is kept sealed.
  void SetForward(const nlohmann::json& config);
  nlohmann::json Forward();  // the config without the password, plus the outbox state

  // Deletes captures (rows and sealed images) older than BEFORE_MS and stranger clusters
  // last seen before it; at most MAX captures per call. Returns the captures deleted.
  int64_t RetainCaptures(int64_t before_ms, int64_t max = 1000);
  // A whole pass at the snapshot retention in force (0 months = keep forever: nothing is
  // deleted): RetainCaptures until nothing older is left. Returns the captures deleted;
  // *BEFORE_MS = the cutoff used. Run hourly by the service and on demand.
  int64_t RetainExpired(int64_t* before_ms = nullptr);

  // --- reports ---
  nlohmann::json TrafficReport(int64_t from_ms, int64_t to_ms, const std::string& bucket,
                               int utc_offset_minutes);
  nlohmann::json StrangerReport(
      int64_t from_ms, int64_t to_ms, int utc_offset_minutes,
      const std::optional<std::vector<int64_t>>& buildings = std::nullopt);
  nlohmann::json AlertReport(int64_t from_ms, int64_t to_ms, int64_t top);

  runtime::EventBus& bus() { return *bus_; }
  runtime::WorkQueue& queue() { return *queue_; }
  const ViidOptions& options() const { return options_; }

  struct Stats {
    std::atomic<int64_t> received{0}, recognised{0}, accepted{0}, strangers{0}, rejected{0},
        no_face{0}, failed{0}, alarms{0};
    std::atomic<int64_t> latency_sum_ms{0}, latency_max_ms{0};
  };
  const Stats& stats() const { return stats_; }
  nlohmann::json StatsJson() const;

 private:
  struct Recognised;
  void Worker();
  void Recognise(RecognitionJob& job, void* engine);
  void Tail();
  void Periodic();
  void WebhookSender();
  bool HoldsJob(const char* job);
  void ForwardSender();
  void EnqueueForward(const std::string& kind, const nlohmann::json& body);
  void ForwardCapture(const std::string& capture_id, const std::vector<uint8_t>& crop);
  void OnStranger(const std::string& capture_id, const std::string& device, int64_t time_ms,
                  int64_t cluster, const std::vector<uint8_t>& crop);
  void OnPerson(const std::string& capture_id, const std::string& device, int64_t time_ms,
                const std::string& person, const std::vector<uint8_t>& crop);
  // Raises an alarm through the event store (kind "alarm") with EVIDENCE and the crop as
  // its snapshot; de-duplicated by KEY within DEDUP_MS. Returns true when raised.
  bool RaiseAlarm(const std::string& key, int64_t dedup_ms, const std::string& device,
                  const std::string& type, const std::string& severity,
                  const std::string& description, const std::string& person, int64_t time_ms,
                  nlohmann::json evidence, const std::vector<uint8_t>& snapshot);
  // A digest login that failed: logged, counted, and an alarm once it repeats (auth_failures.h).
  void OnAuthFailure(const std::string& remote_addr, const std::string& camera,
                     const std::string& why);
  std::string NewNonce(int64_t now_ms) const;
  bool NonceFresh(const std::string& nonce, int64_t now_ms, bool* valid) const;
  // The blob key of capture ID's image NAME ("0", "1", … or "clip0", …) taken at TIME_MS:
  // captures/YYYY/MM/DD/<id>-<name>.jpg.sealed.
  std::string ImageKey(const std::string& id, const std::string& name, int64_t time_ms) const;
  bool Stopping() const;

  ViidDeps deps_;
  crypto::DataKey key_;
  ViidOptions options_;
  std::unique_ptr<db::Db> db_;
  crypto::Bytes nonce_key_;
  match::LevelSetting level_;
  std::unique_ptr<StrangerClusters> clusters_;
  // The seams in use: DEPS_'s, else these embedded ones.
  std::unique_ptr<runtime::WorkQueue> own_queue_;
  std::unique_ptr<runtime::EventBus> own_bus_;
  std::unique_ptr<runtime::SharedState> own_state_;
  std::unique_ptr<runtime::Leader> own_leader_;
  std::unique_ptr<runtime::BlobStore> own_blobs_;
  runtime::WorkQueue* queue_ = nullptr;
  runtime::EventBus* bus_ = nullptr;
  runtime::SharedState* state_ = nullptr;
  runtime::Leader* leader_ = nullptr;
  runtime::BlobStore* blobs_ = nullptr;
  Stats stats_;

  // Camera registrations (User-Identify sessions) in the shared state: the registering
  // address under "viid.session.<device>", expiring session_ttl_ms after the last request.
  std::optional<std::string> SessionAddr(const std::string& device);
  void KeepSession(const std::string& device, const std::string& addr);
  void EndSession(const std::string& device);
  cameras::AuthFailureWatch auth_failures_;

  std::mutex live_mu_;
  std::condition_variable live_cv_;
  std::map<std::string, LiveFrame> live_;
  uint64_t live_seq_ = 0;
  std::atomic<int> live_streams_{0};

  std::atomic<int> busy_{0};
  std::atomic<bool> stop_{false};
  std::mutex bg_mu_;
  std::condition_variable bg_cv_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

// The CSV of a report (UTF-8 with BOM, CRLF): its "columns" in order, one line per item.
std::string ReportCsv(const nlohmann::json& report);

}  // namespace anju::server
