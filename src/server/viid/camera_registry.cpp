#include "server/viid/camera_registry.h"

#include "core/error.h"
#include "crypto/envelope.h"
#include "protocol/viid.h"
#include "server/storage/viid_camera_repo.h"
#include "server/viid/common.h"

namespace anju::server {

namespace viid = protocol::viid;
using cameras::DeviceAad;
using cameras::NowMs;
using storage::ViidCameraRepo;

namespace {

const std::string kSessionPrefix = "viid.session.";

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

CameraRegistry::CameraRegistry(ViidContext& ctx) : ctx_(ctx) {
  if (!ctx_.deps().distributed) {
    // In a shared state the sessions outlive one server's restart.
    auto conn = ctx_.db().Acquire();
    ViidCameraRepo::UnregisterAll(conn);
  }
}

ViidDevice CameraRegistry::Add(ViidDevice d, const std::string& password) {
  if (!viid::ValidId(d.id))
    throw Error(ErrorCode::kInvalidArgument,
                "设备编号应为 1-64 位 [A-Za-z0-9_.-] / id: 1-64 of [A-Za-z0-9_.-]");
  if (password.size() < 8)
    throw Error(ErrorCode::kInvalidArgument, "密码至少 8 位 / password: at least 8 characters");
  const std::string ha1 = viid::DigestHa1(d.id, ctx_.options().realm, password);
  const auto sealed =
      crypto::Seal(ctx_.key(), crypto::AsBytes(ha1), crypto::AsBytes(DeviceAad(d.id)));
  d.created_ms = NowMs();
  auto conn = ctx_.db().Acquire();
  if (ViidCameraRepo::Exists(conn, d.id))
    throw Error(ErrorCode::kConflict, "设备已存在 / device exists: " + d.id);
  ViidCameraRepo::Insert(conn, ToRow(d), ctx_.options().realm, sealed);
  return d;
}

std::vector<ViidDevice> CameraRegistry::List() {
  auto conn = ctx_.db().Acquire();
  std::vector<ViidDevice> out;
  for (auto& row : ViidCameraRepo::List(conn)) out.push_back(FromRow(std::move(row)));
  return out;
}

std::optional<ViidDevice> CameraRegistry::Get(const std::string& id) {
  auto conn = ctx_.db().Acquire();
  auto row = ViidCameraRepo::Get(conn, id);
  if (!row) return std::nullopt;
  return FromRow(std::move(*row));
}

bool CameraRegistry::Revoke(const std::string& id) {
  EndSession(id);
  auto conn = ctx_.db().Acquire();
  return ViidCameraRepo::Revoke(conn, id);
}

std::optional<CameraRegistry::Credentials> CameraRegistry::CredentialsOf(const std::string& id) {
  auto conn = ctx_.db().Acquire();
  const auto cred = ViidCameraRepo::Credentials(conn, id);
  if (!cred) return std::nullopt;
  try {
    const auto h = crypto::Open(ctx_.key(), cred->ha1_sealed, crypto::AsBytes(DeviceAad(id)));
    return Credentials{std::string(h.begin(), h.end()), cred->status};
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::optional<std::string> CameraRegistry::SessionAddress(const std::string& id) {
  return ctx_.state().Get(kSessionPrefix + id);
}

void CameraRegistry::Refresh(const std::string& id, const std::string& addr) {
  ctx_.state().Put(kSessionPrefix + id, addr,
                   std::chrono::milliseconds(ctx_.options().session_ttl_ms));
}

void CameraRegistry::EndSession(const std::string& id) {
  ctx_.state().Remove(kSessionPrefix + id);
}

void CameraRegistry::Registered(const std::string& id, const std::string& addr, int64_t now_ms) {
  {
    auto conn = ctx_.db().Acquire();
    ViidCameraRepo::SetRegistered(conn, id, now_ms);
  }
  Refresh(id, addr);
}

void CameraRegistry::Unregistered(const std::string& id) {
  EndSession(id);
  auto conn = ctx_.db().Acquire();
  ViidCameraRepo::SetUnregistered(conn, id);
}

void CameraRegistry::Touch(const std::string& id, int64_t now_ms) {
  auto conn = ctx_.db().Acquire();
  ViidCameraRepo::Touch(conn, id, now_ms);
}

}  // namespace anju::server
