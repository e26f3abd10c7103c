#include <spdlog/spdlog.h>

#include <variant>

#include "core/error.h"
#include "server/viid/common.h"
#include "server/viid/gat1400_endpoint.h"
#include "server/viid/image_fetch.h"

namespace anju::server {

namespace viid = protocol::viid;
using Outcome = ViidAnswer::Outcome;
using cameras::NowMs;
using cameras::StatusAnswer;

namespace {

// The DeviceID of a Register / UnRegister / Keepalive BODY sent to PATH by the authenticated
// DEVICE, or the answer refusing it (malformed, or another camera's id).
std::variant<std::string, ViidAnswer> SystemObjectOf(viid::SystemObject kind, const char* path,
                                                     const std::string& device,
                                                     const std::string& body) {
  std::string id;
  try {
    id = viid::ParseSystemObject(body, kind);
  } catch (const Error& e) {
    return StatusAnswer(Outcome::kMalformed, path, viid::kInvalidJsonContent, e.what(), device);
  }
  if (id != device)
    return StatusAnswer(Outcome::kRefused, path, viid::kInvalidOperation,
                        "DeviceID 与认证用户不符 / DeviceID differs from the authenticated device",
                        id);
  return id;
}

}  // namespace

ViidAnswer Gat1400Endpoint::Register(const std::string& device, const std::string& body,
                                     const std::string& remote_addr) {
  auto parsed = SystemObjectOf(viid::SystemObject::kRegister, viid::kPathRegister, device, body);
  if (auto* refused = std::get_if<ViidAnswer>(&parsed)) return std::move(*refused);
  const std::string& id = std::get<std::string>(parsed);
  cameras_.Registered(id, remote_addr, NowMs());
  spdlog::info("viid: camera {} registered from {}", id, remote_addr);
  return StatusAnswer(Outcome::kOk, viid::kPathRegister, viid::kOk, "正常 / OK", id);
}

ViidAnswer Gat1400Endpoint::Unregister(const std::string& device, const std::string& body) {
  auto parsed =
      SystemObjectOf(viid::SystemObject::kUnRegister, viid::kPathUnRegister, device, body);
  if (auto* refused = std::get_if<ViidAnswer>(&parsed)) return std::move(*refused);
  const std::string& id = std::get<std::string>(parsed);
  cameras_.Unregistered(id);
  spdlog::info("viid: camera {} unregistered", id);
  return StatusAnswer(Outcome::kOk, viid::kPathUnRegister, viid::kOk, "正常 / OK", id);
}

ViidAnswer Gat1400Endpoint::Keepalive(const std::string& device, const std::string& body,
                                      const std::string& remote_addr) {
  auto parsed = SystemObjectOf(viid::SystemObject::kKeepalive, viid::kPathKeepalive, device, body);
  if (auto* refused = std::get_if<ViidAnswer>(&parsed)) return std::move(*refused);
  const std::string& id = std::get<std::string>(parsed);
  // Only a registration this server holds, from the address that registered and not lapsed,
  // is kept alive; any other keepalive is answered like an unregistered device's, so that the
  // camera registers again (a GA/T 1400 registration expires without requests).
  if (cameras_.SessionAddress(id) != remote_addr) {
    cameras_.Unregistered(id);
    spdlog::info("viid: keepalive of unregistered camera {} from {}: told to register again", id,
                 remote_addr);
    return StatusAnswer(
        Outcome::kUnauthenticated, viid::kPathKeepalive, viid::kInvalidOperation,
        "设备未注册或注册已失效，请重新注册 / device not registered (or its registration lapsed): "
        "register again",
        id);
  }
  cameras_.Refresh(id, remote_addr);
  cameras_.Touch(id, NowMs());
  spdlog::info("viid: keepalive from camera {} ({})", id, remote_addr);
  return StatusAnswer(Outcome::kOk, viid::kPathKeepalive, viid::kOk, "正常 / OK", id);
}

ViidAnswer Gat1400Endpoint::Faces(const std::string& device, const std::string& body,
                                  const std::string& remote_addr) {
  viid::ParsedFaceList parsed;
  try {
    parsed = viid::ParseFaceList(body);
  } catch (const Error& e) {
    spdlog::info("viid: upload from camera {} refused: {}", device, e.what());
    return StatusAnswer(Outcome::kMalformed, viid::kPathFaces, viid::kInvalidJsonFormat, e.what(),
                        "");
  }
  // Images given only as a URL are fetched from the uploading camera itself (image_fetch.h).
  const size_t fetched =
      cameras::ResolveStoragePaths(parsed, remote_addr, ctx_.options().image_fetch);
  const int64_t now = NowMs();
  // Any accepted request keeps a registration alive.
  if (cameras_.SessionAddress(device) == remote_addr) cameras_.Refresh(device, remote_addr);
  CaptureStore::Stored stored = captures_.Store(device, parsed.list, now);
  for (const auto& e : parsed.errors)
    stored.statuses.push_back(
        {viid::kPathFaces, viid::kInvalidJsonContent, e.message, e.face_id, ""});
  ctx_.stats().received += int64_t(stored.jobs.size());
  spdlog::info("viid: upload from camera {} ({}): {} faces stored, {} refused, {} images fetched",
               device, remote_addr, stored.jobs.size(), parsed.errors.size(), fetched);
  for (const auto& e : parsed.errors)
    spdlog::info("viid: face '{}' of camera {} refused: {}", e.face_id, device, e.message);
  for (auto& j : stored.jobs)
    ctx_.queue().Push({std::move(j.capture_id), std::string(j.face_jpeg.begin(), j.face_jpeg.end()),
                       j.enqueued_ms});
  ViidAnswer a;
  a.body = viid::ToJson(stored.statuses);
  return a;
}

ViidAnswer Gat1400Endpoint::LiveFrame(const std::string& device, const std::string& body) {
  return live_.Put(device, body);
}

}  // namespace anju::server
