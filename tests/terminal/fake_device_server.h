// FakeDeviceServer: a small real HTTP server on 127.0.0.1 that speaks the device side of
// docs/device-protocol.md (registration, signed requests checked with
// protocol::VerifyRequest, answers signed with protocol::SignResponse, gallery change
// log, commands, heartbeat, idempotent event store). A test peer for the terminal's
// clients until the real anju_server is available, not a stand-in for terminal code.
// Fault injection: stop/start on the same port (network cut), a reply delayed past the
// client's timeout after the events were stored (lost response), failing gallery pages.
// Kept-alive connections are closed after 1 s idle (anju-server: 5 s).
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/sm2.h"
#include "protocol/device_auth.h"

namespace anju::testing {

class FakeDeviceServer {
 public:
  explicit FakeDeviceServer(std::string model_version);
  // Over HTTPS with this certificate and key (PEM files), as anju-server serves devices.
  FakeDeviceServer(std::string model_version, std::filesystem::path tls_cert,
                   std::filesystem::path tls_key);
  ~FakeDeviceServer();

  void Start();  // binds the same port again after Stop (ephemeral on the first Start)
  void Stop();   // a network cut: connections refused until Start
  std::string url() const {
    return (tls_cert_.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") + std::to_string(port_);
  }
  int port() const { return port_; }

  // A one-time enrolment code for POST /register.
  std::string NewEnrolmentCode();
  // Registers a device directly (tests that do not exercise /register).
  struct Device {
    std::string id;
    crypto::Sm2Key key;  // the device's private key (the test plays the device)
    crypto::DataKey data_key;
  };
  Device AddDevice();
  const crypto::Sm2Key& server_key() const { return server_key_; }

  // The change log (one log shared by every device).
  void Upsert(const std::string& person, const std::string& display_name,
              const std::vector<std::vector<float>>& features,
              const nlohmann::json& rules = nlohmann::json::object());
  void Remove(const std::string& person, const std::string& reason = "moved_out");
  int64_t latest() const;
  // The server "restored from an older backup": the change log starts again at 0.
  void ResetLog();
  int64_t last_since() const { return last_since_; }  // the last ?since= a device sent

  void QueueCommand(nlohmann::json command);
  std::vector<std::string> acked_commands() const;
  size_t pending_commands() const;
  nlohmann::json last_heartbeat() const;
  int heartbeats() const { return heartbeats_; }

  // Events: stored once per id, in arrival order; receipts counts every time an id came.
  std::vector<nlohmann::json> events() const;
  std::map<std::string, int> receipts() const;
  int event_requests() const { return event_requests_; }

  // Faults.
  void DelayEventReplies(int count, std::chrono::milliseconds delay);  // after storing
  void SlowEventRequests(std::chrono::milliseconds delay);  // before storing, every request
  void FailGalleryAfter(int pages);  // later gallery requests get 503; -1 = never
  // The site levels sent with every gallery answer (null = none; docs/device-protocol.md).
  void SetThresholds(nlohmann::json levels);

 private:
  struct Entry {
    int64_t seq = 0;
    bool remove = false;
    std::string display_name, reason;
    std::vector<std::vector<float>> features;
    nlohmann::json rules;
  };
  using Handler = std::function<int(const std::string& device, const httplib::Request& req,
                                    nlohmann::json& answer)>;
  void Route(const char* method, const char* path, Handler handler);
  void Bind();

  std::string model_version_;
  nlohmann::json thresholds_;
  std::filesystem::path tls_cert_, tls_key_;  // empty: plain HTTP
  crypto::Sm2Key server_key_ = crypto::Sm2Key::Generate();
  mutable std::mutex mu_;
  std::map<std::string, Device> devices_;  // by id
  std::set<std::string> codes_;
  int next_device_ = 1;
  int64_t seq_ = 0;
  std::map<std::string, Entry> people_;  // latest entry per person
  std::atomic<int64_t> last_since_{-1};
  std::vector<nlohmann::json> commands_;
  std::vector<std::string> acked_;
  nlohmann::json heartbeat_;
  std::atomic<int> heartbeats_{0};
  std::vector<nlohmann::json> events_;
  std::map<std::string, int> receipts_;
  std::atomic<int> event_requests_{0};
  int delay_replies_ = 0;
  std::chrono::milliseconds reply_delay_{0}, slow_events_{0};
  int gallery_pages_left_ = -1;
  protocol::NonceCache nonces_;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace anju::testing
