#include "core/file_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/uuid.h"

namespace anju {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void Fail(const std::string& what, const fs::path& p, int err) {
  throw Error(IsDiskFull(err) ? ErrorCode::kStorageFull : ErrorCode::kIo,
              (IsDiskFull(err) ? "磁盘已满 / disk full: " : "") + what + " " + p.string() + ": " +
                  std::strerror(err));
}

}  // namespace

bool IsDiskFull(int e) {
  return e == ENOSPC || e == EDQUOT;
}

void SyncFile(int fd, const fs::path& what) {
  if (::fsync(fd) != 0) Fail("fsync", what, errno);
}

namespace {
// Opens DIR, runs SYNC on it (fsync or syncfs), closes it; WHAT names SYNC in the error.
void SyncOpenedDir(const fs::path& dir, int (*sync)(int), const char* what) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) Fail("open directory", dir, errno);
  const int rc = sync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) Fail(what, dir, err);
}
}  // namespace

void SyncDir(const fs::path& dir) {
  SyncOpenedDir(dir, ::fsync, "fsync directory");
}

void SyncFileSystem(const fs::path& dir) {
  SyncOpenedDir(dir, ::syncfs, "syncfs");
}

void WriteFileDurably(const fs::path& path, std::span<const uint8_t> data, unsigned mode) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path tmp = dir / ("." + path.filename().string() + "." + NewUuid() + ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) Fail("create", tmp, errno);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      Fail("write", tmp, err);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    Fail("fsync", tmp, err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    Fail("rename to", path, err);
  }
  SyncDir(dir);
}

void WriteFileDurably(const fs::path& path, const std::string& data, unsigned mode) {
  WriteFileDurably(
      path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
      mode);
}

std::vector<uint8_t> ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw Error(ErrorCode::kNotFound, "no file " + path.string());
    throw Error(ErrorCode::kIo, "cannot read " + path.string());
  }
  std::vector<uint8_t> out((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read " + path.string());
  return out;
}

std::string ReadFileText(const fs::path& path) {
  const auto b = ReadFileBytes(path);
  return std::string(b.begin(), b.end());
}

}  // namespace anju
