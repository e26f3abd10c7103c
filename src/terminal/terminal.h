// Terminal: the whole gate / unit-door terminal wired together, shared by the
// anju-terminal program and by end-to-end tests that run it in-process.
//
//   camera (video::FrameSource) ─▶ frame thread ─▶ AccessPipeline ─▶ door / records
//   records ─▶ store::Outbox (durable) ─▶ upload thread (Uploader) ─▶ server
//   server ─▶ sync thread (SyncClient: gallery, commands, heartbeat) ─▶ LocalState
//   StatusServer (status page, /status.json, /healthz)
//
// Recognition never waits on the network (R3.1.2.7): the frame thread touches only the
// in-memory index, the rules map, the door and the outbox, never the server.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "door/controller.h"
#include "door/outbox_sink.h"
#include "match/thresholds.h"
#include "protocol/device_client.h"
#include "store/outbox.h"
#include "terminal/access_pipeline.h"
#include "terminal/command_runner.h"
#include "terminal/local_state.h"
#include "terminal/status_server.h"
#include "terminal/sync_client.h"
#include "terminal/terminal_config.h"
#include "terminal/uploader.h"
#include "video/frame_source.h"
#include "vision/engine.h"

namespace anju::terminal {

inline constexpr const char* kSoftwareVersion = "0.1.0";

// Optional parts given instead of being made from the config (tests, benchmarks).
struct TerminalParts {
  std::shared_ptr<vision::FaceEngine> engine;       // default: FaceEngine::Open(model_dir)
  std::unique_ptr<door::DoorController> door;       // default: from config.door
  std::optional<match::Thresholds> thresholds;      // default: config.thresholds / shipped
  std::optional<SyncOptions> sync;                  // default: config poll / heartbeat
  std::optional<UploaderOptions> upload;            // default: UploaderOptions{}
  std::chrono::milliseconds register_retry{5'000};  // first registration retried this often
};

// Registers this device with the server (docs/device-protocol.md, "Registration"): makes
// the device key if there is none, calls DeviceClient::Register and stores everything
// in STATE. Throws what DeviceClient::Register throws.
DeviceIdentity RegisterDevice(LocalState& state, const std::string& server_url,
                              const std::string& enrolment_code, const std::string& name, int doors,
                              const protocol::ClientOptions& client = {});

class Terminal {
 public:
  // Opens the data directory, the outbox, the engine, the thresholds and the door, and
  // builds the pipeline; nothing runs yet. Throws anju::Error with a clear message.
  Terminal(TerminalConfig config, TerminalParts parts = {});
  ~Terminal();  // Stop()
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // Starts the status page, the camera thread and (with a server) registration, sync and
  // upload threads. Throws Error(kUnavailable) when the status address cannot be bound.
  // Call once: a stopped terminal is not restarted (make a new one on the same data dir).
  void Start();
  // Stops every thread, flushes the pipeline; idempotent.
  void Stop();
  // True once a finite camera source (file, directory without loop) has played out and
  // the pipeline was flushed. Waits up to TIMEOUT.
  bool WaitCameraEnded(std::chrono::milliseconds timeout);

  nlohmann::json Status() const;  // what /status.json serves

  LocalState& state() { return *state_; }
  store::Outbox& outbox() { return *outbox_; }
  AccessPipeline& pipeline() { return *pipeline_; }
  door::DoorController& door() { return *door_; }
  NoticeBoard& notices() { return notices_; }
  SyncClient* sync() { return sync_.get(); }        // null until registered
  Uploader* uploader() { return uploader_.get(); }  // null until registered
  int status_port() const { return status_ ? status_->port() : 0; }
  // The status page's base URL and TLS certificate (CA file for clients) / fingerprint;
  // empty without a status page (certificate: also with status_tls false).
  std::string status_url() const { return status_ ? status_->url() : std::string(); }
  std::filesystem::path status_cert_file() const {
    return status_ ? status_->cert_file() : std::filesystem::path();
  }
  std::string status_fingerprint() const { return status_ ? status_->fingerprint() : ""; }
  const TerminalConfig& config() const { return config_; }
  uint64_t records() const { return records_; }
  uint64_t record_failures() const { return record_failures_; }
  // Records the outbox refused (full disk, reserve exhausted) and kept in memory to be
  // written, in order, before any newer record.
  size_t pending_records() const;

 private:
  void FrameLoop();
  void IrLoop();       // the infrared camera's frames → AccessPipeline::OnIrFrame
  void ConnectLoop();  // registration (if needed), then the sync and upload threads
  bool Connect();
  void Record(std::string_view kind, const nlohmann::json& payload, std::vector<uint8_t> jpeg);
  // The site's levels from the server (null = none): laid over the file's, kept on disk.
  void ApplySiteLevels(const nlohmann::json& levels);
  // A record on its way to the outbox (an access decision, an alarm, a door event).
  struct PendingRecord {
    std::string kind, payload;
    std::vector<uint8_t> jpeg;
    std::chrono::system_clock::time_point created;
    bool door_event = false;
  };
  // Appends R after every record still pending; keeps it in memory when the outbox refuses
  // (docs/terminal.md, "When the disk is full"). Any thread.
  void Store(PendingRecord r);
  void FlushPendingLocked();

  TerminalConfig config_;
  TerminalParts parts_;
  match::Thresholds file_thresholds_;  // the thresholds file's (or TerminalParts') levels
  nlohmann::json site_levels_;         // the server's, as last applied (null = none)
  std::chrono::steady_clock::time_point started_;
  std::unique_ptr<LocalState> state_;
  std::unique_ptr<store::Outbox> outbox_;
  std::shared_ptr<vision::FaceEngine> engine_;
  std::unique_ptr<door::DoorController> door_;
  std::unique_ptr<door::EventPoller> door_poller_;
  std::unique_ptr<AccessPipeline> pipeline_;
  std::unique_ptr<video::FrameSource> source_, ir_source_;
  NoticeBoard notices_;
  std::unique_ptr<CommandRunner> commands_;
  std::unique_ptr<protocol::DeviceClient> sync_client_, upload_client_;
  std::unique_ptr<SyncClient> sync_;
  std::unique_ptr<Uploader> uploader_;
  std::unique_ptr<StatusServer> status_;
  std::atomic<uint64_t> records_{0}, record_failures_{0}, bad_frames_{0};
  std::atomic<uint64_t> door_events_{0}, door_event_failures_{0}, records_dropped_{0};
  mutable std::mutex records_mu_;  // the pending records and the outbox appends' order
  std::deque<PendingRecord> pending_;
  size_t pending_bytes_ = 0;
  std::string record_error_;  // the last append error while records are pending
  std::atomic<bool> has_pending_{false};
  std::chrono::steady_clock::time_point last_flush_try_{};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool started_threads_ = false;
  bool camera_ended_ = false;
  std::thread frame_thread_, connect_thread_, ir_thread_;
};

}  // namespace anju::terminal
