// The server's secrets, created in the data directory at first start and loaded after:
//   master.key       raw 32-byte master key (0600)
//   data.key         the data key, wrapped by the master key (crypto/keyfile.h, 0600);
//                    it seals identity numbers, enrolment photos, feature codes, device
//                    data keys and event snapshots
//   server_sm2.pem   the server's SM2 private key (0600); signs every device response
//   admin.token      the admin API token (0600), sent as "Authorization: Bearer <token>"
//   backup.key       raw 32-byte key of the SM4-encrypted backups (0600): keep a copy
//                    off the machine, a backup cannot be restored without it
// A site that keeps the master key elsewhere replaces master.key by its own file.
#pragma once

#include <filesystem>
#include <string>

#include "crypto/envelope.h"
#include "crypto/sm2.h"

namespace anju::server {

struct ServerKeys {
  crypto::DataKey data_key = crypto::DataKey::Generate();
  crypto::Sm2Key server_key = crypto::Sm2Key::Generate();
  crypto::DataKey backup_key = crypto::DataKey::Generate();
  std::filesystem::path backup_key_file;
  std::string admin_token;
  std::filesystem::path admin_token_file;
  bool created = false;  // true on the first start

  // Loads the files in DATA_DIR, creating any that are missing (the data key only when
  // master.key is also new: a lost master key must not silently start a new archive).
  static ServerKeys LoadOrCreate(const std::filesystem::path& data_dir);
};

}  // namespace anju::server
