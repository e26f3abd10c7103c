// The lower end of a platform link (docs/platform.md): what a community server (or a
// district platform) sends to the level above. Records are queued in the transaction that
// stores what they describe (OnEvent, OnCapture), numbered once, sent in order in sealed
// batches and deleted only once the level above has stored them, so a link lost for days
// loses nothing (R3.3.2.4) and a batch sent twice is stored once above (the records' numbers
// are their idempotency keys). Each answer carries the commands from above; each is applied
// once and confirmed up as a record of its own. One sender per installation (a singleton job).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "server/platform/platform_options.h"
#include "server/runtime/leader.h"
#include "server/storage/event_repo.h"
#include "server/storage/platform_repo.h"
#include "server/viid/viid_types.h"

namespace anju::server {

inline constexpr const char* kJobUplink = "uplink";

struct UplinkStatus {
  bool configured = false;
  std::string upstream;
  int64_t backlog = 0, oldest_ms = 0;
  int64_t sent = 0, pushes = 0, last_ok_ms = 0, last_attempt_ms = 0;
  int64_t commands_applied = 0, down_cursor = 0;
  std::string last_error;
};
nlohmann::json ToJson(const UplinkStatus& s);

class UplinkSender {
 public:
  // What a command from above does here: (state, result) to confirm up ("applied" or
  // "failed"); state "" = nothing to confirm from here (a district relays it down).
  using ApplyCommand =
      std::function<std::pair<std::string, std::string>(const storage::PlatformCommand&)>;

  struct Deps {
    db::Db* events = nullptr;    // required: its outbox, the state, notices
    db::Db* captures = nullptr;  // its outbox (null: none)
    runtime::Leader* leader = nullptr;
    std::function<nlohmann::json()> health;  // the node's health record's body
    ApplyCommand apply;
  };

  // Error(kInvalidArgument / kNotFound) for a bad secret file.
  UplinkSender(PlatformOptions options, Deps deps);
  ~UplinkSender();
  UplinkSender(const UplinkSender&) = delete;
  UplinkSender& operator=(const UplinkSender&) = delete;

  bool enabled() const { return !options_.upstream.empty(); }

  // The records, on the caller's transaction (no-op without an upstream).
  void OnEvent(db::Conn& conn, const storage::EventRow& row);
  void OnCapture(db::Conn& conn, const CaptureDetail& capture, const std::vector<uint8_t>& crop);

  // The captures database's outbox (before Start).
  void SetCaptures(db::Db* captures) { deps_.captures = captures; }

  void Start();
  void Stop();
  // Sends what is queued now (tests, the bench): true when the level above took it all.
  bool PushNow();
  UplinkStatus Status();

 private:
  void Run();
  // One push: false when the level above could not be reached or refused it.
  bool PushOnce(bool* more);
  void ApplyCommands(const nlohmann::json& down);
  void QueueHealth(int64_t now_ms);

  PlatformOptions options_;
  Deps deps_;
  std::optional<crypto::DataKey> key_;
  std::mutex mu_;  // status_, and one push at a time
  std::mutex push_mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  UplinkStatus status_;
  int64_t last_health_ms_ = 0;
  std::thread thread_;
};

}  // namespace anju::server
