#include "server/storage/site_thresholds_repo.h"

#include "crypto/sm3.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

// The residents' templates: persons eligible for a gallery (as GallerySync counts them)
// joined to the site through household → room → unit → building.
constexpr const char* kResidentTemplates =
    "FROM persons p JOIN household_members hm ON hm.person_id = p.id "
    "JOIN households h ON h.id = hm.household_id JOIN rooms r ON r.id = h.room_id "
    "JOIN units u ON u.id = r.unit_id JOIN buildings b ON b.id = u.building_id "
    "JOIN features f ON f.person_id = p.id AND f.model_version = ?1 "
    "WHERE p.status = 'active' AND EXISTS(SELECT 1 FROM consents c WHERE c.person_id = p.id "
    "AND c.withdrawn_ms IS NULL)";

SiteThresholdsRow ReadRow(Stmt& s) {
  SiteThresholdsRow r;
  r.site_id = s.Int(0);
  r.model_version = s.Text(1);
  r.thresholds_json = s.Text(2);
  r.fingerprint = s.Text(3);
  r.persons = s.Int(4);
  r.templates = s.Int(5);
  r.kept_base = s.Text(6);
  r.elapsed_ms = s.Int(7);
  r.created_ms = s.Int(8);
  return r;
}

constexpr const char* kColumns =
    "SELECT site_id, model_version, thresholds, fingerprint, persons, templates, kept_base, "
    "elapsed_ms, created_ms FROM site_thresholds";

}  // namespace

std::optional<SiteThresholdsRow> SiteThresholdsRepo::Get(db::Conn& c, int64_t site_id) {
  Stmt s(c, std::string(kColumns) + " WHERE site_id = ?");
  s.Bind(1, site_id);
  if (!s.Step()) return std::nullopt;
  return ReadRow(s);
}

std::vector<SiteThresholdsRow> SiteThresholdsRepo::All(db::Conn& c) {
  Stmt s(c, std::string(kColumns) + " ORDER BY site_id");
  std::vector<SiteThresholdsRow> out;
  while (s.Step()) out.push_back(ReadRow(s));
  return out;
}

void SiteThresholdsRepo::Put(db::Conn& c, const SiteThresholdsRow& r) {
  Stmt s(c,
         "INSERT INTO site_thresholds(site_id, model_version, thresholds, fingerprint, persons, "
         "templates, kept_base, elapsed_ms, created_ms) VALUES(?,?,?,?,?,?,?,?,?) "
         "ON CONFLICT(site_id) DO UPDATE SET model_version = excluded.model_version, "
         "thresholds = excluded.thresholds, fingerprint = excluded.fingerprint, "
         "persons = excluded.persons, templates = excluded.templates, "
         "kept_base = excluded.kept_base, elapsed_ms = excluded.elapsed_ms, "
         "created_ms = excluded.created_ms");
  s.Bind(1, r.site_id)
      .Bind(2, r.model_version)
      .Bind(3, r.thresholds_json)
      .Bind(4, r.fingerprint)
      .Bind(5, r.persons)
      .Bind(6, r.templates)
      .Bind(7, r.kept_base)
      .Bind(8, r.elapsed_ms)
      .Bind(9, r.created_ms)
      .Run();
}

bool SiteThresholdsRepo::SiteExists(db::Conn& c, int64_t site_id) {
  Stmt s(c, "SELECT 1 FROM sites WHERE id = ?");
  s.Bind(1, site_id);
  return s.Step();
}

std::vector<int64_t> SiteThresholdsRepo::Sites(db::Conn& c) {
  Stmt s(c, "SELECT id FROM sites ORDER BY id");
  std::vector<int64_t> out;
  while (s.Step()) out.push_back(s.Int(0));
  return out;
}

std::vector<SiteTemplate> SiteThresholdsRepo::Gallery(db::Conn& c, int64_t site_id,
                                                      const std::string& model_version) {
  Stmt s(c, std::string("SELECT DISTINCT p.code, f.id, f.sealed ") + kResidentTemplates +
                " AND b.site_id = ?2 ORDER BY p.code, f.id");
  s.Bind(1, model_version).Bind(2, site_id);
  std::vector<SiteTemplate> out;
  while (s.Step()) out.push_back({s.Text(0), s.Int(1), s.Blob(2)});
  return out;
}

std::map<int64_t, SiteThresholdsRepo::Fingerprint> SiteThresholdsRepo::Fingerprints(
    db::Conn& c, const std::string& model_version) {
  Stmt s(c, std::string("SELECT DISTINCT b.site_id, p.code, f.id ") + kResidentTemplates +
                " ORDER BY b.site_id, p.code, f.id");
  s.Bind(1, model_version);
  std::map<int64_t, Fingerprint> out;
  std::map<int64_t, std::string> text;
  std::map<int64_t, std::string> last_person;
  while (s.Step()) {
    const int64_t site = s.Int(0);
    const std::string code = s.Text(1);
    auto& fp = out[site];
    ++fp.templates;
    auto [it, fresh] = last_person.try_emplace(site, code);
    if (fresh || it->second != code) ++fp.persons, it->second = code;
    text[site] += code + ":" + std::to_string(s.Int(2)) + "\n";
  }
  for (auto& [site, fp] : out) fp.hash = crypto::Sm3Hex(std::string_view(text[site]));
  return out;
}

std::optional<int64_t> SiteThresholdsRepo::SiteOfBuilding(db::Conn& c, int64_t building_id) {
  Stmt s(c, "SELECT site_id FROM buildings WHERE id = ?");
  s.Bind(1, building_id);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

std::optional<int64_t> SiteThresholdsRepo::SiteOfDevice(db::Conn& c, const std::string& device_id) {
  Stmt s(c, "SELECT site_id FROM devices WHERE id = ?");
  s.Bind(1, device_id);
  if (!s.Step()) return std::nullopt;
  return s.OptInt(0);
}

}  // namespace anju::server::storage
