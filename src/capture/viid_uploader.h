// Upload of captures to a GA/T 1400 (视图库, VIID) server (R3.1.3.3):
// EnqueueCapture() stores a capture as one outbox item (a FaceObject without image data,
// the JPEGs as the attachment), so captures survive a server outage and kill -9;
// ViidUploader registers the device (POST /VIID/System/Register, HTTP digest auth), sends
// keepalives, and drains the outbox oldest first as FaceListObject batches to
// POST /VIID/Faces, acknowledging each face the server answers with StatusCode 0 (or a
// definite refusal). FaceIDs are made once at capture time, so a resend after a lost
// answer carries the same FaceID and the server can drop the duplicate.
//
// Encoder note: written before src/protocol/viid.h was committed; it emits the same JSON
// shapes (FaceListObject / SubImageList / ResponseStatus(List)Object).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/capturer.h"
#include "store/outbox.h"

namespace anju::capture {

inline constexpr const char* kOutboxKind = "viid_face";
// The clip of a capture rides in its FaceObject under this vendor key (GA/T 1400 servers
// ignore unknown keys; a standard SubImageList stays as other servers expect it):
// {"Frames": [{"OffsetMs", "Width", "Height", "Data": base64 JPEG}, …]}.
inline constexpr const char* kClipKey = "AnjuClip";

// "YYYYMMDDhhmmss" in Beijing time (UTC+8), as GA/T 1400 servers expect.
std::string ViidTime(std::chrono::system_clock::time_point t);
// A 48-character FaceID: DeviceID + "02" + time + 5-digit counter (the 41-character
// SourceID of the image), then "06" (face) + 5-digit counter. A DeviceID of other length
// still gives a unique id.
std::string MakeFaceId(const std::string& device_id, std::chrono::system_clock::time_point t);

// The FaceObject of a capture (SubImageList with base64 Data when WITH_DATA).
nlohmann::json FaceObjectJson(const Capture& capture, const std::string& device_id,
                              const std::string& face_id, bool with_data);

// Stores the capture durably; returns the FaceID.
std::string EnqueueCapture(store::Outbox& outbox, const Capture& capture,
                           const std::string& device_id);

struct ViidOptions {
  std::string server_url;                     // http://host:port or https://host:port
  std::string device_id;                      // the device registered and named in User-Identify
  std::vector<std::string> other_device_ids;  // cameras with their own DeviceID: registered too
  std::string username;                       // digest user (default: device_id)
  std::string password;
  std::string ca_file;     // https: CA or self-signed server certificate (PEM)
  bool verify_tls = true;  // https: verify the server's certificate
  std::chrono::milliseconds keepalive{30'000};
  std::chrono::milliseconds connect_timeout{3'000};
  std::chrono::milliseconds read_timeout{15'000};
  size_t max_faces = 16;               // per request
  size_t max_bytes = size_t{8} << 20;  // request body estimate (base64 included)
  std::chrono::milliseconds idle_poll{500};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
};

struct ViidStats {
  uint64_t registrations = 0, keepalives = 0, requests = 0;
  uint64_t acked = 0, refused = 0, failures = 0;
  bool registered = false;
  std::string last_error;
  nlohmann::json ToJson() const;
};

class ViidUploader {
 public:
  ViidUploader(store::Outbox& outbox, ViidOptions options);
  ~ViidUploader();  // stops the thread
  ViidUploader(const ViidUploader&) = delete;
  ViidUploader& operator=(const ViidUploader&) = delete;

  // Registers every device id. Throws Error(kUnavailable) when the server cannot be
  // reached, Error(kCrypto) when it refuses the credentials, Error(kCorrupt) for an
  // answer that is not a ResponseStatus.
  void Register();
  void Keepalive();  // same errors; a 401 marks the device unregistered
  // One request with the oldest items (registering first if needed); returns how many
  // were acknowledged (0 when the outbox is empty).
  size_t UploadOnce();
  // UploadOnce until the outbox is empty; Error(kUnavailable) if an answer acknowledges
  // nothing.
  size_t Drain();

  void Start();
  void Stop();
  void Wake();
  ViidStats stats() const;

 private:
  struct Http;
  nlohmann::json Post(const char* path, const nlohmann::json& body, int* status);
  void Loop();

  store::Outbox& outbox_;
  ViidOptions options_;
  std::unique_ptr<Http> http_;
  std::atomic<bool> registered_{false};
  std::atomic<uint64_t> registrations_{0}, keepalives_{0}, requests_{0}, acked_{0}, refused_{0},
      failures_{0};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false, wake_ = false;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace anju::capture
