#include "server/server_keys.h"

#include "core/error.h"
#include "crypto/keyfile.h"

namespace anju::server {

namespace fs = std::filesystem;

ServerKeys ServerKeys::LoadOrCreate(const fs::path& dir) {
  ServerKeys k;
  const fs::path master_file = dir / "master.key", data_file = dir / "data.key",
                 sm2_file = dir / "server_sm2.pem";
  k.admin_token_file = dir / "admin.token";
  if (!fs::exists(master_file)) {
    if (fs::exists(data_file))
      throw Error(ErrorCode::kCrypto, "数据密钥存在但主密钥缺失 / " + data_file.string() +
                                          " exists but " + master_file.string() +
                                          " is missing: restore the master key");
    const crypto::DataKey master = crypto::DataKey::Generate();
    crypto::WriteRawKeyFile(master_file, master);
    crypto::WriteKeyFile(data_file, k.data_key, master);
    k.created = true;
  } else {
    const crypto::DataKey master = crypto::LoadRawKeyFile(master_file);
    k.data_key = crypto::LoadKeyFile(data_file, master);
  }
  if (fs::exists(sm2_file)) {
    k.server_key = crypto::Sm2Key::FromPrivatePem(crypto::ReadSecretFile(sm2_file));
  } else {
    crypto::WriteSecretFile(sm2_file, k.server_key.PrivatePem());
  }
  k.backup_key_file = dir / "backup.key";
  if (fs::exists(k.backup_key_file))
    k.backup_key = crypto::LoadRawKeyFile(k.backup_key_file);
  else
    crypto::WriteRawKeyFile(k.backup_key_file, k.backup_key);
  if (fs::exists(k.admin_token_file)) {
    k.admin_token = crypto::ReadSecretFile(k.admin_token_file);
    while (!k.admin_token.empty() && std::isspace(static_cast<unsigned char>(k.admin_token.back())))
      k.admin_token.pop_back();
    if (k.admin_token.size() < 16)
      throw Error(ErrorCode::kCrypto, "admin token in " + k.admin_token_file.string() +
                                          " is shorter than 16 characters");
  } else {
    k.admin_token = crypto::ToHex(crypto::RandomBytes(24));
    crypto::WriteSecretFile(k.admin_token_file, k.admin_token + "\n");
  }
  return k;
}

}  // namespace anju::server
