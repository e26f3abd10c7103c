#include "server/backup/backup.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "db/db.h"
#include "server/health/storage_health.h"

namespace anju::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kHeaderSize = 64;
constexpr char kMagic[8] = {'A', 'N', 'J', 'U', 'B', 'A', 'K', '\0'};
constexpr uint16_t kVersion = 1;
constexpr uint32_t kChunkSize = 1 << 20;
constexpr uint32_t kMaxRecord = 64u << 20;  // the index of a very large data directory

enum RecordType : uint8_t { kEntry = 1, kData = 2, kEnd = 3, kIndex = 4 };

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (24 - 8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (56 - 8 * i));
}
uint32_t GetU32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

[[noreturn]] void IoFail(const std::string& what, int err) {
  throw Error(err == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
              what + ": " + std::strerror(err));
}

// A plain POSIX file: exact reads, full writes, fsync.
class File {
 public:
  File(const fs::path& path, int flags, mode_t mode = 0600) : path_(path) {
    fd_ = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd_ < 0) {
      const int err = errno;
      if (err == ENOENT) throw Error(ErrorCode::kNotFound, "no such file: " + path.string());
      IoFail("cannot open " + path.string(), err);
    }
  }
  ~File() {
    if (fd_ >= 0) ::close(fd_);
  }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  void Write(const uint8_t* p, size_t n) {
    while (n) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) IoFail("cannot write " + path_.string(), errno);
      p += w;
      n -= size_t(w);
    }
  }
  // Reads up to N bytes; fewer only at end of file.
  size_t Read(uint8_t* p, size_t n) {
    size_t got = 0;
    while (got < n) {
      ssize_t r = ::read(fd_, p + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) IoFail("cannot read " + path_.string(), errno);
      if (r == 0) break;
      got += size_t(r);
    }
    return got;
  }
  void Sync() {
    if (::fsync(fd_) != 0) IoFail("fsync " + path_.string(), errno);
  }
  void Close() {
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) IoFail("close " + path_.string(), errno);
  }
  int fd() const { return fd_; }

 private:
  fs::path path_;
  int fd_ = -1;
};

std::string Hex(const uint8_t* p, size_t n) {
  return crypto::ToHex(crypto::ByteView(p, n));
}

// ---- writing ---------------------------------------------------------------------------

class ArchiveWriter {
 public:
  ArchiveWriter(File& out, const crypto::DataKey& key) : out_(out), key_(key) {
    std::memcpy(header_.data(), kMagic, 8);
    PutU16(&header_[8], kVersion);
    std::copy(key.id_bytes().begin(), key.id_bytes().end(), &header_[12]);
    crypto::RandomFill(std::span<uint8_t>(&header_[20], 16));
    created_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    PutU64(&header_[36], uint64_t(created_ms_));
    PutU32(&header_[44], kChunkSize);
    out_.Write(header_.data(), header_.size());
    aad_.assign(header_.begin(), header_.end());
    aad_.resize(kHeaderSize + 8);
  }

  void Record(RecordType type, crypto::ByteView body) {
    plain_.clear();
    plain_.push_back(type);
    plain_.insert(plain_.end(), body.begin(), body.end());
    PutU64(&aad_[kHeaderSize], seq_++);
    const crypto::Bytes sealed = crypto::Seal(key_, plain_, aad_);
    uint8_t len[4];
    PutU32(len, uint32_t(sealed.size()));
    out_.Write(len, 4);
    out_.Write(sealed.data(), sealed.size());
    crypto::SecureZero(plain_);
  }
  void Record(RecordType type, const json& j) { Record(type, crypto::AsBytes(j.dump())); }

  // One entry: ENTRY, DATA..., END, reading SOURCE to its end.
  BackupEntry Entry(const std::string& path, const std::string& kind, uint32_t mode, File& source) {
    return Entry(path, kind, mode, [&](uint8_t* p, size_t n) { return source.Read(p, n); });
  }
  // The same from bytes in memory (a blob of the blob store).
  BackupEntry Entry(const std::string& path, const std::string& kind, uint32_t mode,
                    crypto::ByteView bytes) {
    size_t at = 0;
    return Entry(path, kind, mode, [&](uint8_t* p, size_t n) {
      const size_t k = std::min(n, bytes.size() - at);
      std::memcpy(p, bytes.data() + at, k);
      at += k;
      return k;
    });
  }
  // READ(p, n) fills up to N bytes, fewer only at the end.
  BackupEntry Entry(const std::string& path, const std::string& kind, uint32_t mode,
                    const std::function<size_t(uint8_t*, size_t)>& read) {
    BackupEntry e{path, kind, mode, 0, ""};
    Record(kEntry, json{{"path", path}, {"kind", kind}, {"mode", mode}});
    crypto::Sm3Hasher hash;
    std::vector<uint8_t> buf(kChunkSize);
    for (;;) {
      const size_t n = read(buf.data(), buf.size());
      if (n == 0) break;
      const crypto::ByteView chunk(buf.data(), n);
      hash.Update(chunk);
      Record(kData, chunk);
      e.size += int64_t(n);
      if (n < buf.size()) break;
    }
    const auto digest = hash.Final();
    e.sm3 = Hex(digest.data(), digest.size());
    Record(kEnd, json{{"size", e.size}, {"sm3", e.sm3}});
    return e;
  }

  uint64_t records() const { return seq_; }
  std::string archive_id() const { return Hex(&header_[20], 16); }
  int64_t created_ms() const { return created_ms_; }

 private:
  File& out_;
  const crypto::DataKey& key_;
  std::array<uint8_t, kHeaderSize> header_{};
  std::vector<uint8_t> aad_;
  std::vector<uint8_t> plain_;
  uint64_t seq_ = 0;
  int64_t created_ms_ = 0;
};

// A consistent copy of a live database file into DEST, through the database seam (online
// backup: one read transaction, so the server's writers go on in WAL mode).
void CopyDatabase(const fs::path& source, const fs::path& dest) {
  db::SqliteOptions o;
  o.name = source.stem().string();
  o.read_only = true;
  o.busy_timeout_ms = 10'000;
  db::OpenSqlite(source, {}, o)->CopyTo(dest);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- reading ---------------------------------------------------------------------------

// Receives the entries of an archive being read (restore); all calls may throw.
struct EntrySink {
  virtual ~EntrySink() = default;
  virtual void Begin(const BackupEntry& entry) = 0;
  virtual void Data(crypto::ByteView chunk) = 0;
  virtual void End(const BackupEntry& entry) = 0;
};

bool SafeRelativePath(const std::string& path) {
  if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos ||
      path.front() == '/')
    return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

[[noreturn]] void Corrupt(const fs::path& file, const std::string& what) {
  throw Error(ErrorCode::kCorrupt, "备份文件损坏 / backup archive " + file.string() + " " + what);
}

BackupInfo ReadArchive(const fs::path& in_file, const crypto::DataKey& key, EntrySink* sink) {
  File in(in_file, O_RDONLY);
  struct stat st {};
  if (::fstat(in.fd(), &st) != 0) IoFail("stat " + in_file.string(), errno);
  std::array<uint8_t, kHeaderSize> header{};
  if (in.Read(header.data(), header.size()) != header.size() ||
      std::memcmp(header.data(), kMagic, 8) != 0)
    throw Error(ErrorCode::kCorrupt,
                "不是 anju 备份文件 / " + in_file.string() + " is not an anju backup archive");
  if (header[8] != 0 || header[9] != kVersion)
    throw Error(ErrorCode::kCorrupt, "不支持的备份格式版本 / unsupported backup archive version " +
                                         std::to_string(header[8] << 8 | header[9]));
  BackupInfo info;
  info.key_id = Hex(&header[12], 8);
  if (!crypto::ConstantTimeEqual(crypto::ByteView(&header[12], 8), key.id_bytes()))
    throw Error(ErrorCode::kCrypto,
                "备份密钥不匹配 / wrong backup key: the archive was made with key " + info.key_id +
                    ", the key given is " + key.id());
  info.archive_id = Hex(&header[20], 16);
  info.created_ms = int64_t(GetU64(&header[36]));
  info.archive_bytes = int64_t(st.st_size);
  const uint32_t chunk_size = GetU32(&header[44]);

  std::vector<uint8_t> aad(header.begin(), header.end());
  aad.resize(kHeaderSize + 8);
  std::vector<uint8_t> sealed;
  std::set<std::string> paths;
  BackupEntry current;
  bool in_entry = false;
  std::optional<crypto::Sm3Hasher> hash;
  for (uint64_t seq = 0;; ++seq) {
    uint8_t len_bytes[4];
    const size_t got = in.Read(len_bytes, 4);
    if (got != 4)
      Corrupt(in_file, "is truncated (ends before its index, at record " + std::to_string(seq) +
                           ") / 备份文件不完整");
    const uint32_t len = GetU32(len_bytes);
    if (len < crypto::kSealOverhead + 1 || len > kMaxRecord)
      Corrupt(in_file, "has a bad record length at record " + std::to_string(seq));
    sealed.resize(len);
    if (in.Read(sealed.data(), len) != len)
      Corrupt(in_file, "is truncated (record " + std::to_string(seq) + " is cut) / 备份文件不完整");
    PutU64(&aad[kHeaderSize], seq);
    crypto::Bytes plain;
    try {
      plain = crypto::Open(key, sealed, aad);
    } catch (const Error&) {
      throw Error(ErrorCode::kCrypto, "备份文件被篡改或损坏 / backup archive " + in_file.string() +
                                          " failed authentication at record " +
                                          std::to_string(seq) + " (tampered or damaged)");
    }
    const uint8_t type = plain[0];
    const crypto::ByteView body(plain.data() + 1, plain.size() - 1);
    auto body_json = [&] {
      json j = json::parse(body.begin(), body.end(), nullptr, false);
      if (!j.is_object()) Corrupt(in_file, "has a malformed record " + std::to_string(seq));
      return j;
    };
    try {
      if (type == kEntry) {
        if (in_entry) Corrupt(in_file, "starts an entry inside another");
        json j = body_json();
        current = BackupEntry{j.at("path").get<std::string>(), j.at("kind").get<std::string>(),
                              j.at("mode").get<uint32_t>(), 0, ""};
        if (!SafeRelativePath(current.path) || !paths.insert(current.path).second)
          Corrupt(in_file, "names an unsafe or repeated path: " + current.path);
        if (current.kind != "sqlite" && current.kind != "file" && current.kind != "pgdump")
          Corrupt(in_file, "has an unknown entry kind: " + current.kind);
        in_entry = true;
        hash.emplace();
        if (sink) sink->Begin(current);
      } else if (type == kData) {
        if (!in_entry || body.size() > chunk_size) Corrupt(in_file, "has a stray data record");
        hash->Update(body);
        current.size += int64_t(body.size());
        if (sink) sink->Data(body);
      } else if (type == kEnd) {
        if (!in_entry) Corrupt(in_file, "ends an entry it never started");
        json j = body_json();
        const auto digest = hash->Final();
        current.sm3 = Hex(digest.data(), digest.size());
        if (j.at("size").get<int64_t>() != current.size ||
            j.at("sm3").get<std::string>() != current.sm3)
          Corrupt(in_file, "entry " + current.path + " does not match its checksum");
        in_entry = false;
        info.entries.push_back(current);
        info.bytes += current.size;
        if (sink) sink->End(current);
      } else if (type == kIndex) {
        if (in_entry) Corrupt(in_file, "ends inside an entry");
        json j = body_json();
        const json& list = j.at("entries");
        bool same = list.is_array() && list.size() == info.entries.size() &&
                    j.at("records").get<uint64_t>() == seq;
        for (size_t i = 0; same && i < info.entries.size(); ++i) {
          const auto& e = info.entries[i];
          same = list[i].at("path") == e.path && list[i].at("size") == e.size &&
                 list[i].at("sm3") == e.sm3 && list[i].at("kind") == e.kind;
        }
        if (!same) Corrupt(in_file, "index does not match its content");
        uint8_t extra;
        if (in.Read(&extra, 1) != 0) Corrupt(in_file, "has bytes after its index");
        return info;
      } else {
        Corrupt(in_file, "has an unknown record type " + std::to_string(type));
      }
    } catch (const json::exception& e) {
      Corrupt(in_file, std::string("has a malformed record: ") + e.what());
    }
  }
}

// Restore sink: files under STAGING, each fsynced, modes as recorded.
class RestoreSink : public EntrySink {
 public:
  explicit RestoreSink(fs::path staging) : staging_(std::move(staging)) {}
  void Begin(const BackupEntry& e) override {
    const fs::path path = staging_ / fs::path(e.path);
    fs::create_directories(path.parent_path());
    for (fs::path d = path.parent_path(); d != staging_ && d.has_parent_path(); d = d.parent_path())
      fs::permissions(d, fs::perms::owner_all);
    file_ = std::make_unique<File>(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  }
  void Data(crypto::ByteView chunk) override { file_->Write(chunk.data(), chunk.size()); }
  void End(const BackupEntry& e) override {
    if (::fchmod(file_->fd(), mode_t(e.mode & 0777)) != 0) IoFail("chmod " + e.path, errno);
    file_->Sync();
    file_->Close();
    file_.reset();
  }

 private:
  fs::path staging_;
  std::unique_ptr<File> file_;
};

}  // namespace

int64_t BackupInfo::databases() const {
  return std::count_if(entries.begin(), entries.end(),
                       [](auto& e) { return e.kind == "sqlite" || e.kind == "pgdump"; });
}
int64_t BackupInfo::files() const {
  return int64_t(entries.size()) - databases();
}

json ToJson(const BackupInfo& info) {
  json entries = json::array();
  for (auto& e : info.entries)
    entries.push_back(
        {{"path", e.path}, {"kind", e.kind}, {"mode", e.mode}, {"size", e.size}, {"sm3", e.sm3}});
  return {{"archive_id", info.archive_id},
          {"key_id", info.key_id},
          {"created_ms", info.created_ms},
          {"databases", info.databases()},
          {"files", info.files()},
          {"bytes", info.bytes},
          {"archive_bytes", info.archive_bytes},
          {"entries", entries}};
}

BackupInfo CreateBackup(const fs::path& data_dir, const fs::path& out_file,
                        const crypto::DataKey& key, const runtime::BlobStore* blobs,
                        const std::vector<db::Db*>& postgres) {
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec))
    throw Error(ErrorCode::kNotFound, "数据目录不存在 / no data directory " + data_dir.string());
  if (fs::exists(out_file, ec))
    throw Error(ErrorCode::kInvalidArgument,
                "备份文件已存在 / " + out_file.string() + " already exists (not overwritten)");
  const fs::path data_abs = fs::weakly_canonical(data_dir);
  const fs::path out_abs = fs::weakly_canonical(fs::absolute(out_file));
  const auto rel = out_abs.lexically_relative(data_abs);
  if (!rel.empty() && *rel.begin() != "..")
    throw Error(ErrorCode::kInvalidArgument,
                "备份文件不能放在数据目录里 / the backup file must not be inside the data "
                "directory " +
                    data_dir.string());

  // Databases first, then the other regular files, each in path order. The files are
  // listed only after the databases were copied: every snapshot a copied row names was
  // fsynced before that row committed, so it is in the second listing.
  auto list = [&](std::vector<std::string>& databases, std::vector<std::string>& files) {
    std::set<std::string> db_names;
    std::error_code walk_ec;
    for (fs::recursive_directory_iterator it(data_abs, walk_ec), end; !walk_ec && it != end;
         it.increment(walk_ec)) {
      if (!it->is_regular_file(walk_ec) || it->is_symlink(walk_ec)) continue;
      const std::string rel_path = it->path().lexically_relative(data_abs).generic_string();
      // Zeros kept for a full disk (storage_health.h), not data.
      if (rel_path.starts_with(StorageHealth::kReserveName)) continue;
      if (EndsWith(rel_path, ".db")) {
        databases.push_back(rel_path);
        db_names.insert(rel_path);
      } else {
        files.push_back(rel_path);
      }
    }
    if (walk_ec) IoFail("cannot list " + data_dir.string(), walk_ec.value());
    std::sort(databases.begin(), databases.end());
    std::sort(files.begin(), files.end());
    // SQLite's own side files: their content is in the online copy.
    std::erase_if(files, [&](const std::string& f) {
      for (const char* suffix : {"-wal", "-shm", "-journal"})
        if (EndsWith(f, suffix) && db_names.count(f.substr(0, f.size() - std::strlen(suffix))))
          return true;
      return false;
    });
  };
  std::vector<std::string> databases, files, ignored;
  list(databases, ignored);

  const fs::path partial = out_abs.string() + ".partial";
  const fs::path db_copy = out_abs.string() + ".partial-db";
  BackupInfo info;
  try {
    File out(partial, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ArchiveWriter writer(out, key);
    auto mode_of = [&](const std::string& rel_path) {
      struct stat st {};
      return ::stat((data_abs / rel_path).c_str(), &st) == 0 ? uint32_t(st.st_mode & 0777) : 0600u;
    };
    for (db::Db* pg : postgres) {
      fs::remove(db_copy, ec);
      pg->CopyTo(db_copy);
      File source(db_copy, O_RDONLY);
      info.entries.push_back(
          writer.Entry("postgres/" + pg->name() + ".dump", "pgdump", 0600, source));
      fs::remove(db_copy, ec);
    }
    for (const std::string& db : databases) {
      fs::remove(db_copy, ec);
      CopyDatabase(data_abs / db, db_copy);
      File source(db_copy, O_RDONLY);
      info.entries.push_back(writer.Entry(db, "sqlite", mode_of(db), source));
      fs::remove(db_copy, ec);
    }
    ignored.clear();
    list(ignored, files);
    // Blobs kept outside the data directory, listed after the databases too; each goes in
    // as a file at its key. A data-directory file of the same path (left from before the
    // blob directory was set) is not the one the rows mean: the blob wins.
    std::vector<std::string> blob_keys;
    if (blobs) {
      blobs->List("", [&](const std::string& k) {
        blob_keys.push_back(k);
        return true;
      });
      std::sort(blob_keys.begin(), blob_keys.end());
      std::erase_if(files, [&](const std::string& f) {
        return std::binary_search(blob_keys.begin(), blob_keys.end(), f);
      });
    }
    for (const std::string& f : files) {
      std::unique_ptr<File> source;
      try {
        source = std::make_unique<File>(data_abs / f, O_RDONLY);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kNotFound) continue;  // deleted since the listing (retention)
        throw;
      }
      info.entries.push_back(writer.Entry(f, "file", mode_of(f), *source));
    }
    for (const std::string& k : blob_keys) {
      std::vector<uint8_t> bytes;
      try {
        bytes = blobs->Get(k);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::kNotFound) continue;  // deleted since the listing (retention)
        throw;
      }
      info.entries.push_back(writer.Entry(k, "file", 0600, bytes));
    }
    json index = json::array();
    for (auto& e : info.entries) {
      index.push_back(
          {{"path", e.path}, {"kind", e.kind}, {"mode", e.mode}, {"size", e.size}, {"sm3", e.sm3}});
      info.bytes += e.size;
    }
    writer.Record(kIndex,
                  json{{"entries", index}, {"records", writer.records()}, {"bytes", info.bytes}});
    out.Sync();
    out.Close();
    info.archive_id = writer.archive_id();
    info.created_ms = writer.created_ms();
    info.key_id = key.id();
    fs::rename(partial, out_abs);
    SyncDir(out_abs.parent_path());
    info.archive_bytes = int64_t(fs::file_size(out_abs));
  } catch (...) {
    fs::remove(partial, ec);
    fs::remove(db_copy, ec);
    throw;
  }
  return info;
}

BackupInfo VerifyBackup(const fs::path& in_file, const crypto::DataKey& key) {
  return ReadArchive(in_file, key, nullptr);
}

BackupInfo RestoreBackup(const fs::path& in_file, const fs::path& target_dir,
                         const crypto::DataKey& key) {
  std::error_code ec;
  if (!fs::is_regular_file(in_file, ec))
    throw Error(ErrorCode::kNotFound, "备份文件不存在 / no backup archive " + in_file.string());
  if (fs::exists(target_dir, ec)) {
    if (!fs::is_directory(target_dir, ec))
      throw Error(ErrorCode::kInvalidArgument, target_dir.string() + " is not a directory");
    if (!fs::is_empty(target_dir, ec))
      throw Error(ErrorCode::kInvalidArgument,
                  "恢复目标目录不是空的 / restore target " + target_dir.string() +
                      " is not empty (restore only into an empty or new directory)");
  } else {
    fs::create_directories(target_dir, ec);
    if (ec) IoFail("cannot create " + target_dir.string(), ec.value());
    fs::permissions(target_dir, fs::perms::owner_all, ec);
  }
  const fs::path staging = target_dir / ".anju-restore-partial";
  BackupInfo info;
  try {
    fs::create_directory(staging);
    fs::permissions(staging, fs::perms::owner_all);
    RestoreSink sink(staging);
    info = ReadArchive(in_file, key, &sink);
    // Authenticated to the end: move everything into place.
    for (fs::directory_iterator it(staging), end; it != end; ++it)
      fs::rename(it->path(), target_dir / it->path().filename());
    fs::remove(staging);
    SyncDir(target_dir);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(staging, ec);
    throw Error(ErrorCode::kIo, std::string("restore: ") + e.what());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  return info;
}

}  // namespace anju::server
