// The server side of snapshot cameras (R3.1.4, R3.2.1.1, R3.4.2.2, docs/viid.md): the parts
// put together, and the threads that run them.
//
//   camera ──GA/T 1400──▶ Gat1400Endpoint ──▶ CaptureStore (captures.db + sealed blobs)
//                              │                   │
//                              └──▶ work queue ──▶ RecognitionWorkers ──▶ StrangerDirectory
//                                                  │  finish once, then: live bus,
//                                                  └─▶ Forwarders (outbox), AlertEngine
//   events.db ──▶ Forwarders' tail ──▶ live bus, webhook and forward outboxes
//
// CameraRegistry keeps the cameras and their registrations, LivePreview their live frames,
// SnapshotReports the reports. http/viid_handlers.cpp puts HTTP in front of the parts.
#pragma once

#include <chrono>
#include <thread>
#include <vector>

#include "server/viid/alert_engine.h"
#include "server/viid/camera_registry.h"
#include "server/viid/capture_store.h"
#include "server/viid/context.h"
#include "server/viid/forwarders.h"
#include "server/viid/gat1400_endpoint.h"
#include "server/viid/live_preview.h"
#include "server/viid/recognition.h"
#include "server/viid/reports.h"
#include "server/viid/strangers.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class ViidService {
 public:
  // KEY seals images, features, centroids and device secrets.
  ViidService(ViidDeps deps, const crypto::DataKey& key, ViidOptions options = {});
  ~ViidService();
  ViidService(const ViidService&) = delete;
  ViidService& operator=(const ViidService&) = delete;

  // Queues again the captures left queued (the leader only) and starts the workers and
  // the background loops (idempotent).
  void Start();
  void Stop();

  Gat1400Endpoint& endpoint() { return endpoint_; }
  CameraRegistry& cameras() { return cameras_; }
  CaptureStore& captures() { return captures_; }
  // The captures database (backups of a PostgreSQL installation dump it).
  db::Db& database() { return ctx_.db(); }
  StrangerDirectory& strangers() { return strangers_; }
  AlertEngine& alerts() { return alerts_; }
  Forwarders& forwarders() { return forwarders_; }
  LivePreview& live() { return live_; }
  SnapshotReports& reports() { return reports_; }
  RecognitionWorkers& workers() { return workers_; }
  runtime::EventBus& bus() { return ctx_.bus(); }
  const ViidOptions& options() const { return ctx_.options(); }

  ViidCounters Counters();

  // The sweeper's look (the leader only): captures still `queued` sweep_after_ms after
  // their arrival are pushed again (ViidOptions::sweep_after_ms). Returns how many.
  int SweepOnce();

  // The recognition level in force and the stranger clustering threshold (the low level's
  // unless the options set one), from the thresholds file when there is one.
  struct Levels {
    match::LevelSetting recognition{0.60f, 0.04f, 1e-5};
    float cluster = 0.53f;
  };

 private:
  // Hourly: the periodic alert rules (the leader only). Retention of captures runs on the
  // server's retention schedule (CaptureStore::RetainExpired).
  void RunPeriodic();
  // Runs SweepOnce every ViidOptions::sweep_interval_ms.
  void RunSweeper();

  Levels levels_;
  ViidContext ctx_;
  StrangerDirectory strangers_;
  AlertEngine alerts_;
  CameraRegistry cameras_;
  CaptureStore captures_;
  LivePreview live_;
  Forwarders forwarders_;
  SnapshotReports reports_;
  Gat1400Endpoint endpoint_;
  RecognitionWorkers workers_;
  std::vector<std::thread> threads_;
  bool started_ = false;
};

}  // namespace anju::server
