#include "server/person_extras.h"

#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace anju::server {

using nlohmann::json;

void AddFaceAndHome(Conn& conn, json& items, const std::vector<int64_t>& ids) {
  if (ids.empty()) return;
  // Row ids are integers from our own query: written inline as the IN list.
  std::string in;
  for (const int64_t id : ids) in += (in.empty() ? "" : ",") + std::to_string(id);

  std::map<int64_t, int64_t> features, photos;
  std::map<int64_t, json> photo, home;
  Stmt f(conn, "SELECT person_id, COUNT(*) FROM features WHERE person_id IN (" + in +
                          ") GROUP BY person_id");
  while (f.Step()) features[f.Int(0)] = f.Int(1);
  // Newest first; a photo with a feature code before one without.
  Stmt p(conn,
         "SELECT p.person_id, p.id, EXISTS(SELECT 1 FROM features x WHERE x.photo_id = p.id) "
         "AS usable FROM photos p WHERE p.person_id IN (" +
             in + ") ORDER BY p.person_id, usable DESC, p.id DESC");
  while (p.Step()) {
    const int64_t pid = p.Int(0);
    if (photos[pid]++ == 0) photo[pid] = p.Int(1);
  }
  Stmt h(conn,
         "SELECT m.person_id, h.id, h.name, r.name, u.name, b.name, s.name FROM household_members "
         "m JOIN households h ON h.id = m.household_id LEFT JOIN rooms r ON r.id = h.room_id "
         "LEFT JOIN units u ON u.id = r.unit_id LEFT JOIN buildings b ON b.id = u.building_id "
         "LEFT JOIN sites s ON s.id = b.site_id WHERE m.person_id IN (" +
             in + ") ORDER BY m.person_id, m.since_ms, h.id");
  auto text = [&](int col) { return h.IsNull(col) ? json() : json(h.Text(col)); };
  while (h.Step()) {
    const int64_t pid = h.Int(0);
    if (home.count(pid)) continue;
    home[pid] = {{"household_id", h.Int(1)}, {"household", h.Text(2)}, {"room", text(3)},
                 {"unit", text(4)},          {"building", text(5)},    {"site", text(6)}};
  }
  for (size_t i = 0; i < ids.size() && i < items.size(); ++i) {
    const int64_t pid = ids[i];
    items[i]["features"] = features.count(pid) ? features[pid] : 0;
    items[i]["photos"] = photos.count(pid) ? photos[pid] : 0;
    items[i]["photo_id"] = photo.count(pid) ? photo[pid] : json();
    items[i]["home"] = home.count(pid) ? home[pid] : json();
  }
}

}  // namespace anju::server
