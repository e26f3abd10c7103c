#include "server/audit/server_keys.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <optional>

#include "core/error.h"
#include "core/file_io.h"
#include "crypto/keyfile.h"

namespace anju::server {

namespace fs = std::filesystem;

const std::vector<std::string>& ClassKeyFiles() {
  static const std::vector<std::string> files = {kArchiveKeyFile, kEventsKeyFile, kAuditKeyFile};
  return files;
}

namespace {

constexpr const char* kMasterFile = "master.key";
constexpr const char* kNewSuffix = ".new";

fs::path NewOf(const fs::path& p) {
  return fs::path(p.string() + kNewSuffix);
}

// Exclusive lock on DATA_DIR/.keys.lock for the lifetime of the object: key creation,
// migration and rotation never interleave (a server starting during `anju keys rotate`).
class KeysLock {
 public:
  explicit KeysLock(const fs::path& dir) {
    const fs::path file = dir / ".keys.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw Error(ErrorCode::kIo, "cannot open " + file.string());
    if (::flock(fd_, LOCK_EX) != 0) {
      ::close(fd_);
      throw Error(ErrorCode::kIo, "cannot lock " + file.string());
    }
  }
  ~KeysLock() {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
  KeysLock(const KeysLock&) = delete;
  KeysLock& operator=(const KeysLock&) = delete;

 private:
  int fd_ = -1;
};

void Rename(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw Error(ErrorCode::kIo, "cannot rename " + from.string() + " to " + to.string());
}

// The masters a class key may be wrapped by: master.key, and master.key.new while a rotation
// is under way.
std::vector<crypto::DataKey> Masters(const fs::path& dir) {
  std::vector<crypto::DataKey> m;
  if (fs::exists(dir / kMasterFile)) m.push_back(crypto::LoadRawKeyFile(dir / kMasterFile));
  if (fs::exists(NewOf(dir / kMasterFile)))
    m.push_back(crypto::LoadRawKeyFile(NewOf(dir / kMasterFile)));
  return m;
}

// FILE (or FILE.new) unwrapped by whichever master wraps it; nullopt when neither exists.
std::optional<crypto::DataKey> LoadWrapped(const fs::path& file,
                                           const std::vector<crypto::DataKey>& masters) {
  std::optional<crypto::KeyFileInfo> seen;
  for (const fs::path& f : {file, NewOf(file)}) {
    if (!fs::exists(f)) continue;
    const crypto::KeyFileInfo info = crypto::ReadKeyFileInfo(f);
    seen = info;
    for (const auto& m : masters)
      if (m.id() == info.master_id) return crypto::LoadKeyFile(f, m);
  }
  if (!seen) return std::nullopt;
  std::string have;
  for (const auto& m : masters) have += (have.empty() ? "" : ", ") + m.id();
  throw Error(ErrorCode::kCrypto, "主密钥不匹配 / wrong master key: " + file.string() +
                                      " is wrapped by master key " + seen->master_id +
                                      ", but master.key is " + (have.empty() ? "missing" : have) +
                                      ": restore the master key this data directory was made with");
}

bool RecoverLocked(const fs::path& dir) {
  const fs::path master = dir / kMasterFile, master_new = NewOf(master);
  std::vector<fs::path> class_files, pending;
  for (const auto& name : ClassKeyFiles()) {
    if (fs::exists(dir / name) || fs::exists(NewOf(dir / name))) class_files.push_back(dir / name);
    if (fs::exists(NewOf(dir / name))) pending.push_back(dir / name);
  }
  if (!fs::exists(master_new)) {
    if (pending.empty()) return false;
    // Class files renamed but master.key.new already gone cannot happen in our order; a
    // stray *.new wrapped by the current master is newer than nothing: drop the others.
    for (const auto& f : pending) fs::remove(NewOf(f));
    SyncDir(dir);
    return true;
  }
  const crypto::DataKey next = crypto::LoadRawKeyFile(master_new);
  bool forward = true;
  for (const auto& f : class_files) {
    const bool has_new =
        fs::exists(NewOf(f)) && crypto::ReadKeyFileInfo(NewOf(f)).master_id == next.id();
    const bool done = fs::exists(f) && crypto::ReadKeyFileInfo(f).master_id == next.id();
    if (!has_new && !done) forward = false;
  }
  if (forward) {
    for (const auto& f : class_files) {
      if (fs::exists(NewOf(f))) {
        crypto::LoadKeyFile(NewOf(f), next);  // complete and authentic before it replaces f
        Rename(NewOf(f), f);
      }
    }
    SyncDir(dir);
    Rename(master_new, master);
  } else {
    // Crashed while writing the *.new files: nothing was renamed yet, the old set is whole.
    for (const auto& f : pending) fs::remove(NewOf(f));
    fs::remove(master_new);
  }
  SyncDir(dir);
  return true;
}

}  // namespace

bool RecoverRotation(const fs::path& dir) {
  KeysLock lock(dir);
  return RecoverLocked(dir);
}

ServerKeys ServerKeys::LoadOrCreate(const fs::path& dir) {
  ServerKeys k;
  KeysLock lock(dir);
  RecoverLocked(dir);
  const fs::path master_file = dir / kMasterFile, data_file = dir / kArchiveKeyFile,
                 events_file = dir / kEventsKeyFile, audit_file = dir / kAuditKeyFile,
                 sm2_file = dir / "server_sm2.pem";
  k.admin_token_file = dir / "admin.token";
  if (!fs::exists(master_file)) {
    for (const auto& f : {data_file, events_file, audit_file})
      if (fs::exists(f))
        throw Error(ErrorCode::kCrypto, "数据密钥存在但主密钥缺失 / " + f.string() +
                                            " exists but " + master_file.string() +
                                            " is missing: restore the master key");
    const crypto::DataKey master = crypto::DataKey::Generate();
    crypto::WriteKeyFile(data_file, k.data_key, master);
    crypto::WriteKeyFile(events_file, k.events_key, master);
    crypto::WriteKeyFile(audit_file, k.audit_key, master);
    // The master last: a crash before it leaves class files without a master, which the
    // next start refuses loudly instead of silently making new keys.
    crypto::WriteRawKeyFile(master_file, master);
    k.master_id = master.id();
    k.created = true;
  } else {
    const std::vector<crypto::DataKey> masters = Masters(dir);
    k.master_id = masters.front().id();
    const auto data = LoadWrapped(data_file, masters);
    if (!data)
      throw Error(ErrorCode::kNotFound, "档案数据密钥缺失 / " + data_file.string() +
                                            " is missing: restore it from a backup");
    k.data_key = *data;
    if (const auto ev = LoadWrapped(events_file, masters)) {
      k.events_key = *ev;
    } else {
      // Snapshots stored before the events class existed are sealed with the data key.
      const bool has_events = fs::exists(dir / "events.db") ||
                              (fs::exists(dir / "snapshots") && !fs::is_empty(dir / "snapshots"));
      if (has_events) k.events_key = k.data_key;
      crypto::WriteKeyFile(events_file, k.events_key, masters.front());
      k.migrated.push_back(kEventsKeyFile);
    }
    if (const auto au = LoadWrapped(audit_file, masters)) {
      k.audit_key = *au;
    } else {
      crypto::WriteKeyFile(audit_file, k.audit_key, masters.front());
      k.migrated.push_back(kAuditKeyFile);
    }
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

crypto::DataKey LoadClassKey(const fs::path& dir, const std::string& file_name) {
  const std::vector<crypto::DataKey> masters = Masters(dir);
  if (masters.empty())
    throw Error(ErrorCode::kNotFound, "主密钥缺失 / " + (dir / kMasterFile).string() +
                                          " is missing: restore the master key");
  const auto key = LoadWrapped(dir / file_name, masters);
  if (!key)
    throw Error(ErrorCode::kNotFound, "密钥文件缺失 / " + (dir / file_name).string() +
                                          " is missing (start the server once to create it)");
  return *key;
}

RotateResult RotateMasterKey(const fs::path& dir) {
  RotateResult r;
  if (!fs::is_directory(dir))
    throw Error(ErrorCode::kNotFound, "没有数据目录 / no data directory " + dir.string());
  KeysLock lock(dir);
  r.recovered = RecoverLocked(dir);
  const fs::path master_file = dir / kMasterFile;
  if (!fs::exists(master_file))
    throw Error(ErrorCode::kNotFound,
                "主密钥缺失 / " + master_file.string() + " is missing: nothing to rotate");
  const crypto::DataKey old_master = crypto::LoadRawKeyFile(master_file);
  r.old_master_id = old_master.id();
  // Every class key must open with the current master before anything is written.
  std::vector<std::pair<fs::path, crypto::DataKey>> keys;
  for (const auto& name : ClassKeyFiles()) {
    const fs::path f = dir / name;
    if (!fs::exists(f)) continue;
    keys.emplace_back(f, *LoadWrapped(f, {old_master}));
  }
  const crypto::DataKey next = crypto::DataKey::Generate();
  r.new_master_id = next.id();
  crypto::WriteRawKeyFile(NewOf(master_file), next);
  for (const auto& [f, key] : keys) crypto::WriteKeyFile(NewOf(f), key, next);
  SyncDir(dir);
  // From here on RecoverLocked rolls forward.
  for (const auto& [f, key] : keys) {
    Rename(NewOf(f), f);
    r.rewrapped.push_back(f.filename().string());
  }
  SyncDir(dir);
  Rename(NewOf(master_file), master_file);
  SyncDir(dir);
  return r;
}

}  // namespace anju::server
