// The per-device gallery change log in archive.db (docs/device-protocol.md, "Gallery sync"):
// device_changes (one sequence per device), device_persons (what each device has been told
// to hold), device_removals (when a device confirmed a removal), and the reads of persons,
// features and access groups that decide what a device holds. Rows in, rows out; the rules
// live in devices/gallery_log.h. Every function runs on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

// The access rules of one access group that reaches a device.
struct GroupRuleRow {
  std::string windows;  // JSON array text
  std::optional<int64_t> valid_from_ms, valid_until_ms;
  int64_t open_ms = 0;
};

// The newest change of one person in a device's log, with the person's row (when it still
// exists) and whether the device is to hold them.
struct GalleryChangeRow {
  std::string person_code;
  int64_t seq = 0;
  std::string reason;
  std::optional<int64_t> person_id;
  std::string name;
  int64_t open_ms = 0;
  bool held = false;
};

class GalleryRepo {
 public:
  // The highest sequence number of DEVICE's log (0 when empty).
  static int64_t Latest(db::Conn& c, const std::string& device_id);
  static void AppendChange(db::Conn& c, const std::string& device_id, int64_t seq,
                           const std::string& code, const std::string& op,
                           const std::string& reason, int64_t now_ms);
  static void AppendRemoval(db::Conn& c, const std::string& device_id, const std::string& code,
                            int64_t seq, const std::string& reason, int64_t now_ms);
  // The person's code and whether a device may hold them: active, a standing consent and a
  // feature of MODEL_VERSION. Nullopt when there is no such person.
  static std::optional<std::pair<std::string, bool>> Eligibility(db::Conn& c, int64_t person_id,
                                                                 const std::string& model_version);
  // The devices (not revoked) the person's access groups reach.
  static std::set<std::string> Reaching(db::Conn& c, int64_t person_id);
  // The devices told to hold CODE.
  static std::set<std::string> Holders(db::Conn& c, const std::string& code);
  static void AddHolder(db::Conn& c, const std::string& device_id, const std::string& code);
  static void RemoveHolder(db::Conn& c, const std::string& device_id, const std::string& code);
  static std::vector<int64_t> GroupMembers(db::Conn& c, int64_t group_id);

  // (feature id, sealed feature) of the person for MODEL_VERSION, by id.
  static std::vector<std::pair<int64_t, std::vector<uint8_t>>> Features(
      db::Conn& c, int64_t person_id, const std::string& model_version);
  // The doors of DEVICE_ID the person's access groups open.
  static std::set<int> Doors(db::Conn& c, int64_t person_id, const std::string& device_id);
  static std::vector<GroupRuleRow> Rules(db::Conn& c, int64_t person_id,
                                         const std::string& device_id);

  // Removals up to SINCE are confirmed; the device has applied version SINCE and was seen.
  static void Confirm(db::Conn& c, const std::string& device_id, int64_t since, int64_t now_ms);
  // The newest change per person after SINCE, at most LIMIT persons, in log order.
  static std::vector<GalleryChangeRow> Changes(db::Conn& c, const std::string& device_id,
                                               int64_t since, int64_t limit);
};

}  // namespace anju::server::storage
