// Snapshot cameras: adding, listing and revoking them (docs/viid.md).
#include "server/viid/viid_service.h"

#include "core/error.h"
#include "crypto/envelope.h"
#include "protocol/viid.h"
#include "server/storage/viid_camera_repo.h"
#include "server/viid/common.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;
using cameras::DeviceAad;
using cameras::NowMs;
using storage::ViidCameraRepo;

namespace {

storage::ViidCameraRow ToRow(const ViidDevice& d) {
  return {d.id,     d.name,       d.place,        d.building_id, d.unit_id, d.linked_device,
          d.status, d.registered, d.last_seen_ms, d.created_ms};
}

ViidDevice FromRow(storage::ViidCameraRow r) {
  ViidDevice d;
  d.id = std::move(r.id);
  d.name = std::move(r.name);
  d.place = std::move(r.place);
  d.building_id = r.building_id;
  d.unit_id = r.unit_id;
  d.linked_device = std::move(r.linked_device);
  d.status = std::move(r.status);
  d.registered = r.registered;
  d.last_seen_ms = r.last_seen_ms;
  d.created_ms = r.created_ms;
  return d;
}

}  // namespace

json ViidDevice::ToJson() const {
  return {{"id", id},
          {"name", name},
          {"place", place},
          {"building_id", building_id ? json(*building_id) : json()},
          {"unit_id", unit_id ? json(*unit_id) : json()},
          {"linked_device", linked_device},
          {"status", status},
          {"registered", registered},
          {"last_seen_ms", last_seen_ms},
          {"online", registered && NowMs() - last_seen_ms < 3 * 60 * 1000},
          {"created_ms", created_ms}};
}

// ---- devices ---------------------------------------------------------------------------

ViidDevice ViidService::AddDevice(ViidDevice d, const std::string& password) {
  if (!viid::ValidId(d.id))
    throw Error(ErrorCode::kInvalidArgument,
                "设备编号应为 1-64 位 [A-Za-z0-9_.-] / id: 1-64 of [A-Za-z0-9_.-]");
  if (password.size() < 8)
    throw Error(ErrorCode::kInvalidArgument, "密码至少 8 位 / password: at least 8 characters");
  const std::string ha1 = viid::DigestHa1(d.id, options_.realm, password);
  const auto sealed = crypto::Seal(key_, crypto::AsBytes(ha1), crypto::AsBytes(DeviceAad(d.id)));
  d.created_ms = NowMs();
  auto conn = db_->Acquire();
  if (ViidCameraRepo::Exists(conn, d.id))
    throw Error(ErrorCode::kConflict, "设备已存在 / device exists: " + d.id);
  ViidCameraRepo::Insert(conn, ToRow(d), options_.realm, sealed);
  return d;
}

std::vector<ViidDevice> ViidService::Devices() {
  auto conn = db_->Acquire();
  std::vector<ViidDevice> out;
  for (auto& row : ViidCameraRepo::List(conn)) out.push_back(FromRow(std::move(row)));
  return out;
}

std::optional<ViidDevice> ViidService::Device(const std::string& id) {
  auto conn = db_->Acquire();
  auto row = ViidCameraRepo::Get(conn, id);
  if (!row) return std::nullopt;
  return FromRow(std::move(*row));
}

bool ViidService::RemoveDevice(const std::string& id) {
  EndSession(id);
  auto conn = db_->Acquire();
  // Revoked, not deleted: its captures keep naming it.
  return ViidCameraRepo::Revoke(conn, id);
}

}  // namespace anju::server
