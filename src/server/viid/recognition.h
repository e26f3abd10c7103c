// Recognition workers (R3.1.4): each takes captures from the work queue and runs the face
// through the quality and pose gate, the 1:N search at the camera's site level, and a
// stranger cluster when no one matched; then finishes the capture once, publishes it on the
// live bus, forwards it and lets the alert engine look at it.
#pragma once

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "match/thresholds.h"
#include "server/viid/alert_engine.h"
#include "server/viid/camera_registry.h"
#include "server/viid/capture_store.h"
#include "server/viid/context.h"
#include "server/viid/forwarders.h"
#include "server/viid/strangers.h"

namespace anju::vision {
class FaceEngine;
}

namespace anju::server {

class RecognitionWorkers {
 public:
  // LEVEL: the recognition level of the thresholds file (a camera's site may have its own).
  RecognitionWorkers(ViidContext& ctx, CameraRegistry& cameras, CaptureStore& captures,
                     StrangerDirectory& strangers, AlertEngine& alerts, Forwarders& forwarders,
                     match::LevelSetting level);

  // The loop of one worker thread, until the context stops. Each owns a FaceEngine.
  void Run();
  // Captures being recognised right now.
  int busy() const { return busy_; }
  // Waits until no job is queued or running (tests, bench); false on timeout.
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  void Recognise(RecognitionJob& job, vision::FaceEngine* engine);
  // Finishes the capture (once) and sends it on; false when another worker finished it.
  bool Finish(const RecognitionJob& job, const RecognitionResult& r,
              const std::vector<uint8_t>& crop);

  ViidContext& ctx_;
  CameraRegistry& cameras_;
  CaptureStore& captures_;
  StrangerDirectory& strangers_;
  AlertEngine& alerts_;
  Forwarders& forwarders_;
  match::LevelSetting level_;
  std::atomic<int> busy_{0};
};

}  // namespace anju::server
