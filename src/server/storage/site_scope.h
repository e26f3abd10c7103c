// Least privilege per site (R4.2.1.1): an account limited to sites
// (Principal::sites, set by PUT /api/v1/users/{username}/roles) sees and changes only what
// belongs to those sites. Everything that filters by site goes through this one helper:
//   - a person belongs to the sites of the rooms of their households
//     (household → room → unit → building → site); a person in no household belongs to
//     no site and is visible only to unscoped accounts;
//   - a device belongs to devices.site_id (none: only unscoped accounts see it);
//   - events, alarms and snapshots belong to the site of their device;
//   - snapshot cameras (GA/T 1400) and their captures belong to the site of the camera's
//     building (none: only unscoped accounts see them); a stranger (cluster of unknown
//     faces) is visible when one of those cameras saw it, with only those sightings;
//   - an access group is visible when it has doors and all of them are devices of the
//     account's sites (a group with no doors has no site: unscoped accounts only; a scoped
//     account therefore cannot create one nor empty the doors of one);
//   - the device quarantine follows the site of the uploading device; an import is
//     visible to a scoped account when it started it, and its rows must name households of
//     its sites (persons already in the archive must be visible).
// Objects outside the scope are answered 404 (their existence is not revealed) and left
// out of lists. An unscoped principal (empty sites: every site) is never filtered.
//
// This is the storage side of the typed predicate access/principal.h calls Scope: the
// conditions below are SQL fragments for the repositories' queries.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/access/principal.h"

namespace anju::server {

class SiteScope {
 public:
  explicit SiteScope(const Principal& p) : sites_(p.sites) {}
  explicit SiteScope(const Scope& s) : sites_(s.sites) {}
  explicit SiteScope(std::vector<int64_t> sites) : sites_(std::move(sites)) {}

  bool unscoped() const { return sites_.empty(); }
  const std::vector<int64_t>& sites() const { return sites_; }
  bool HasSite(int64_t site_id) const;

  // SQL conditions (site ids are numbers from the account, written inline): "1" when
  // unscoped. PERSON_ID / SITE_ID name a column of the caller's query.
  std::string PersonCondition(const std::string& person_id) const;
  std::string SiteCondition(const std::string& site_id) const;
  std::string DeviceCondition(const std::string& device_id) const;
  // GROUP_ID names an access group id: all its doors are devices of the sites (and it has
  // at least one).
  std::string GroupCondition(const std::string& group_id) const;
  // Over the snapshot-camera database (viid_devices): DEVICE_ID names a camera id whose
  // building is one of BUILDINGS (from Buildings(); nullopt = all).
  static std::string CameraCondition(const std::optional<std::vector<int64_t>>& buildings,
                                     const std::string& device_id);
  // The site of a row of an archive table (sites, buildings, units, rooms, households) as an
  // SQL expression over that table's columns; "" for tables with no site (access_groups
  // have a condition of their own, GroupCondition).
  static std::string ArchiveSite(const std::string& table);
  // Whether row ID of TABLE is in scope (always for tables with no site; access groups by
  // GroupVisible).
  bool RowVisible(db::Conn& conn, const std::string& table, int64_t id) const;

  // Checks on one object, on the caller's connection.
  bool PersonVisible(db::Conn& conn, int64_t person_id) const;
  bool PersonCodeVisible(db::Conn& conn, const std::string& code) const;
  bool DeviceVisible(db::Conn& conn, const std::string& device_id) const;
  bool HouseholdVisible(db::Conn& conn, int64_t household_id) const;
  bool GroupVisible(db::Conn& conn, int64_t group_id) const;
  // The devices in scope (for the event store, a separate database); nullopt = all.
  std::optional<std::vector<std::string>> Devices(db::Conn& conn) const;
  // The buildings in scope (snapshot cameras name their building); nullopt = all.
  std::optional<std::vector<int64_t>> Buildings(db::Conn& conn) const;

  // 404 not_found unless visible (the message is the one a missing object gets).
  void RequirePerson(db::Conn& conn, const std::string& code) const;
  void RequireDevice(db::Conn& conn, const std::string& device_id) const;
  // Whether a scoped account may see import IMPORT_ID: the ones it started (ACTOR).
  bool ImportVisible(db::Conn& conn, const std::string& import_id, const std::string& actor) const;

 private:
  std::string SiteList() const;  // "1,2"
  std::vector<int64_t> sites_;
};

}  // namespace anju::server
