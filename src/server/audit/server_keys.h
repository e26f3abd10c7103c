// The server's secrets, created in the data directory at first start and loaded after
// (docs/audit-and-keys.md):
//   master.key       raw 32-byte master key (0600); wraps the class keys below and nothing
//                    else. Keep a copy off the machine; `anju keys rotate` replaces it.
//   data.key         archive class key, wrapped by the master key (crypto/keyfile.h, 0600):
//                    seals identity numbers, enrolment photos, feature codes, device data
//                    keys (the name is kept from the single-key layout it started as)
//   events.key       events class key (wrapped): seals event snapshots
//   audit.key        audit class key (wrapped): HMAC-SM3 checkpoints of the audit chain
//   server_sm2.pem   the server's SM2 private key (0600); signs every device response
//   admin.token      the admin API token (0600), sent as "Authorization: Bearer <token>"
//   backup.key       raw 32-byte key of the SM4-encrypted backups (0600). Deliberately NOT
//                    wrapped by the master key: a backup holds the master key and the wrapped
//                    class keys, so it must open on a new machine with this key alone. Keep a
//                    copy off the machine, a backup cannot be restored without it.
// A site that keeps the master key elsewhere replaces master.key by its own file.
//
// Older data directories had data.key only (it sealed snapshots too). LoadOrCreate adds the
// missing class keys: audit.key fresh; events.key fresh when the directory has no events
// yet, else the old data key re-wrapped as events.key (so old snapshots still open).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/sm2.h"

namespace anju::server {

// The wrapped class key files, in the order they are loaded and rotated.
inline constexpr const char* kArchiveKeyFile = "data.key";
inline constexpr const char* kEventsKeyFile = "events.key";
inline constexpr const char* kAuditKeyFile = "audit.key";
const std::vector<std::string>& ClassKeyFiles();

struct ServerKeys {
  crypto::DataKey data_key = crypto::DataKey::Generate();    // archive class (data.key)
  crypto::DataKey events_key = crypto::DataKey::Generate();  // events class (events.key)
  crypto::DataKey audit_key = crypto::DataKey::Generate();   // audit class (audit.key)
  crypto::Sm2Key server_key = crypto::Sm2Key::Generate();
  crypto::DataKey backup_key = crypto::DataKey::Generate();
  std::filesystem::path backup_key_file;
  std::string admin_token;
  std::filesystem::path admin_token_file;
  std::string master_id;              // DataKey::id() of the master key
  bool created = false;               // true on the first start
  std::vector<std::string> migrated;  // class key files this start added to an older dir

  const crypto::DataKey& archive_key() const { return data_key; }

  // Loads the files in DATA_DIR, creating any that are missing (the archive key only when
  // master.key is also new: a lost master key must not silently start a new archive), and
  // finishing a key rotation that was interrupted. Error(kCrypto) names the file when the
  // master key is missing or does not unwrap a class key.
  static ServerKeys LoadOrCreate(const std::filesystem::path& data_dir);
};

// One class key of an existing data directory (e.g. kAuditKeyFile), read-only: nothing is
// created or repaired, and a rotation in progress is read through. Error(kNotFound) when
// the file or master.key is missing, Error(kCrypto) for a wrong master key.
crypto::DataKey LoadClassKey(const std::filesystem::path& data_dir, const std::string& file_name);

struct RotateResult {
  std::string old_master_id, new_master_id;
  std::vector<std::string> rewrapped;  // class key files now wrapped by the new master key
  bool recovered = false;              // an interrupted rotation was finished first
};

// Replaces master.key by a fresh master key and re-wraps every class key under it; the class
// keys themselves do not change, so every sealed value stays readable and a running server
// (which unwrapped its keys at start) is not affected. Crash-safe: the new master and the
// re-wrapped files are written as *.new first, then renamed class keys first and master.key
// last; every intermediate state loads (LoadOrCreate and LoadClassKey try both masters) and
// the next LoadOrCreate / RotateMasterKey finishes or undoes it. Serialised with
// LoadOrCreate by a lock file (DATA_DIR/.keys.lock).
RotateResult RotateMasterKey(const std::filesystem::path& data_dir);

// Finishes (all *.new files present and loadable) or undoes (new master only) a rotation
// left behind by a crash. True when there was one. Caller need not hold the lock.
bool RecoverRotation(const std::filesystem::path& data_dir);

}  // namespace anju::server
