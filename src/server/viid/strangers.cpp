// The stranger lists and one stranger's sightings (R3.2.1.1, docs/viid.md).
#include "server/viid/viid_service.h"

#include "core/error.h"
#include "server/storage/stranger_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::StrangerRepo;

json ViidService::Strangers(int64_t from_ms, int64_t to_ms, const std::string& device,
                            int64_t min_count, int64_t limit, int64_t offset,
                            const std::optional<std::vector<int64_t>>& buildings) {
  auto conn = db_->Acquire();
  const int64_t to = to_ms > 0 ? to_ms : (int64_t(1) << 53);
  json items = json::array();
  for (const auto& s :
       StrangerRepo::List(conn, from_ms, to, device, min_count, limit, offset, buildings)) {
    json it = {{"id", s.id},
               {"count", s.count},
               {"first_ms", s.first_ms},
               {"last_ms", s.last_ms},
               {"devices", s.devices}};
    json places = json::array();
    for (const auto& p : StrangerRepo::Places(conn, s.id, from_ms, to, buildings)) {
      places.push_back({{"device_id", p.device_id},
                        {"place", p.place},
                        {"building_id", p.building_id ? json(*p.building_id) : json()},
                        {"unit_id", p.unit_id ? json(*p.unit_id) : json()},
                        {"count", p.count},
                        {"last_ms", p.last_ms}});
      it["latest_capture"] = p.latest_capture;
    }
    it["places"] = places;
    items.push_back(std::move(it));
  }
  const int64_t total = StrangerRepo::Count(conn, from_ms, to, device, buildings);
  return {{"items", items}, {"total", total}, {"limit", limit}, {"offset", offset}};
}

json ViidService::Stranger(int64_t id, const std::optional<std::vector<int64_t>>& buildings) {
  json out;
  {
    auto conn = db_->Acquire();
    const auto s = StrangerRepo::Get(conn, id, buildings);
    if (!s) throw Error(ErrorCode::kNotFound, "不存在 / not found: stranger " + std::to_string(id));
    out = {{"id", id},
           {"count", s->count},
           {"first_ms", s->first_ms},
           {"last_ms", s->last_ms},
           {"first_capture", s->first_capture},
           {"last_capture", s->last_capture},
           {"last_device", s->last_device}};
  }
  CaptureQuery q;
  q.stranger = id;
  q.limit = 100;
  q.buildings = buildings;
  out["captures"] = Captures(q)["items"];
  return out;
}

}  // namespace anju::server
