// The places and groups of the archive: sites, buildings, units, rooms, households (with
// their members) and access groups (doors, time windows, validity, members). The simple
// kinds share one table-driven CRUD, so every one validates, pages and audits alike. An
// account limited to sites sees and changes only rows of its sites (R4.2.1.1,
// storage/site_scope.h); every change is audited in its transaction (R4.2.3.1) and a change
// of who may open which door reaches the devices through the gallery log
// (devices/gallery_log.h).
//
// Errors are anju::Error: kNotFound (no such row, or one outside the caller's sites),
// kInvalidArgument (a null required field, bad time windows, a door the device does not
// have), kPermissionDenied (an account limited to sites creating a site or an access group),
// kConflict (a parent that does not exist, a row still referenced).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/access/principal.h"
#include "server/devices/gallery_log.h"
#include "server/storage/place_repo.h"

namespace anju::server {

// One kind of place: its name in paths and audit records ("sites", "access-groups"), its
// table, and which columns a new row must have.
struct PlaceKind {
  std::string path;
  storage::PlaceTable table;
  std::vector<std::string> required;
  bool IsRequired(const std::string& column) const;
};

// Sites, buildings, units, rooms, households, access groups, in this order.
const std::vector<PlaceKind>& PlaceKinds();

// A person's row id by identity code within a scope (404 otherwise), on the caller's
// connection: the persons' service's, wired by the composition root.
using PersonLookup = std::function<int64_t(db::Conn&, const Scope&, const std::string& code)>;

class PlaceService {
 public:
  // GALLERY_CHANGED: who counts at a site changed (the per-site calibration,
  // matching/site_thresholds.h).
  PlaceService(db::Db& db, GalleryLog& gallery, PersonLookup person,
               std::function<void()> gallery_changed)
      : db_(db),
        gallery_(gallery),
        person_(std::move(person)),
        gallery_changed_(std::move(gallery_changed)) {}

  // ---- rows of KIND (a PlaceKinds() path) ----
  // {"items", "total"}: under PARENT (0 = all), by id.
  nlohmann::json List(const std::string& kind, int64_t parent, const Scope& scope, int64_t limit,
                      int64_t offset);
  nlohmann::json Get(const std::string& kind, int64_t id, const Scope& scope);
  nlohmann::json Create(const std::string& kind, const nlohmann::json& fields,
                        const std::string& actor, const Scope& scope);
  // An access group's members' devices get the new rules.
  nlohmann::json Update(const std::string& kind, int64_t id, const nlohmann::json& fields,
                        const std::string& actor, const Scope& scope);
  void Delete(const std::string& kind, int64_t id, const std::string& actor, const Scope& scope);

  // ---- household members ----
  void AddMember(int64_t household, const std::string& person, const std::string& role,
                 const std::string& actor, const Scope& scope);
  // {"items", "total"}: by identity code.
  nlohmann::json Members(int64_t household);
  void RemoveMember(int64_t household, const std::string& person, const std::string& actor);

  // ---- access group members and doors ----
  // {"changed", "members"}; CHANGE: {"add": [codes], "remove": [codes]}.
  nlohmann::json ChangeGroupMembers(int64_t group, const nlohmann::json& change,
                                    const std::string& actor, const Scope& scope);
  // {"items", "total"}: identity codes within SCOPE.
  nlohmann::json GroupMembers(int64_t group, const Scope& scope, int64_t limit, int64_t offset);
  // DOORS: [{"device_id", "door"?}]; replaces the group's doors.
  void SetGroupDoors(int64_t group, const nlohmann::json& doors, const std::string& actor,
                     const Scope& scope);
  // [{"device_id", "door"}].
  nlohmann::json GroupDoors(int64_t group);

 private:
  db::Db& db_;
  GalleryLog& gallery_;
  PersonLookup person_;
  std::function<void()> gallery_changed_;
};

}  // namespace anju::server
