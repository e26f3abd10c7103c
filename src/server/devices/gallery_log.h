// Per-device gallery change log (docs/device-protocol.md, "Gallery sync"). Every change
// that can alter what a device must hold (enrolment, new photo, rules or access groups,
// move-out, consent withdrawal, device doors) calls PersonChanged / GroupChanged inside
// the same transaction as the change itself; they append one entry per affected device.
// device_persons records what each device has been told to hold, so a person who leaves
// a device's scope gets a "remove" (and a device_removals row whose confirmation time is
// set when the device fetches past it). The SQL is in storage/gallery_repo.h.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "crypto/envelope.h"
#include "db/db.h"

namespace anju::server {

inline constexpr int64_t kGalleryMaxLimit = 500;
inline constexpr int64_t kGalleryDefaultLimit = 200;

class GalleryLog {
 public:
  // MODEL_VERSION: the features the server sends (others stay on the server).
  GalleryLog(const crypto::DataKey& server_key, std::string model_version)
      : key_(server_key), model_version_(std::move(model_version)) {}

  // All of these run on the caller's connection, inside its transaction.
  void PersonChanged(db::Conn& conn, int64_t person_id, const std::string& reason);
  void GroupChanged(db::Conn& conn, int64_t group_id, const std::string& reason);
  // The highest sequence number of DEVICE's log (0 when empty).
  int64_t Latest(db::Conn& conn, const std::string& device_id);

  // The protocol's answer to GET /api/v1/device/gallery?since=&limit=; also records
  // removal confirmations up to SINCE, on the caller's connection (no transaction).
  nlohmann::json Fetch(db::Conn& conn, const std::string& device_id,
                       const crypto::DataKey& device_key, int64_t since, int64_t limit);

  const std::string& model_version() const { return model_version_; }
  void set_model_version(std::string v) { model_version_ = std::move(v); }
  // Called by every PersonChanged / GroupChanged (inside the caller's transaction): the
  // per-site calibration marks the galleries dirty (server/matching/site_thresholds.h).
  void set_on_change(std::function<void(db::Conn&)> f) { on_change_ = std::move(f); }

 private:
  void Append(db::Conn& conn, const std::string& device, const std::string& code,
              const std::string& op, const std::string& reason);
  nlohmann::json Upsert(db::Conn& conn, int64_t person_id, const std::string& code,
                        const std::string& name, int open_ms, const std::string& device_id,
                        int doors, const crypto::DataKey& device_key);

  crypto::DataKey key_;
  std::string model_version_;
  std::function<void(db::Conn&)> on_change_;
};

// "张*明": first and last character kept, the middle masked (UTF-8 aware); "张*" for two.
std::string MaskName(const std::string& name);

}  // namespace anju::server
