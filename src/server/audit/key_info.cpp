#include "server/audit/key_info.h"

#include "crypto/keyfile.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* KeyPurpose(const std::string& file) {
  if (file == kArchiveKeyFile)
    return "档案：身份证号、照片、特征码、设备密钥 / archive: ID numbers, photos, feature "
           "codes, device keys";
  if (file == kEventsKeyFile) return "通行与抓拍快照 / event and capture snapshots";
  if (file == kAuditKeyFile) return "审计日志检查点 (HMAC-SM3) / audit log checkpoints";
  return "";
}

}  // namespace

json KeyHierarchy(const fs::path& dir, const ServerKeys& keys, const std::optional<TlsInfo>& tls,
                  json last_rotation) {
  json out;
  out["master"] = {{"file", "master.key"},
                   {"id", fs::exists(dir / "master.key")
                              ? json(crypto::LoadRawKeyFile(dir / "master.key").id())
                              : json(nullptr)}};
  json classes = json::array();
  for (const auto& name : ClassKeyFiles()) {
    json k = {{"file", name}, {"purpose", KeyPurpose(name)}};
    if (fs::exists(dir / name)) {
      const crypto::KeyFileInfo i = crypto::ReadKeyFileInfo(dir / name);
      k["key_id"] = i.key_id;
      k["master_id"] = i.master_id;
      k["wrap"] = i.wrap;
      k["created"] = i.created;
    }
    classes.push_back(k);
  }
  out["class_keys"] = classes;
  out["server_sm2"] = {{"file", "server_sm2.pem"}, {"fingerprint", keys.server_key.Fingerprint()}};
  out["backup_key"] = {{"file", "backup.key"}, {"id", keys.backup_key.id()}};
  out["tls"] = tls ? json{{"certificate", tls->certificate}, {"fingerprint", tls->fingerprint}}
                   : json(nullptr);
  out["last_rotation"] = std::move(last_rotation);
  return out;
}

}  // namespace anju::server
