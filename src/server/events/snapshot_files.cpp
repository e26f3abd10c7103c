#include "server/events/snapshot_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace anju::server::snapshot_files {

namespace fs = std::filesystem;

namespace {

void SyncFd(int fd, const fs::path& what) {
  if (::fsync(fd) != 0)
    throw Error(ErrorCode::kIo, "fsync " + what.string() + ": " + std::strerror(errno));
}

}  // namespace

void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kIo, "open " + dir.string() + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::kIo, "fsync " + dir.string() + ": " + std::strerror(err));
}

// Writes the whole buffer to a new (or truncated) file of mode 0600; fsyncs when asked.
void WriteWholeFile(const fs::path& path, crypto::ByteView data, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                "cannot write snapshot " + path.string() + ": " + std::strerror(err));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw Error(err == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                  "cannot write snapshot " + path.string() + ": " + std::strerror(err));
    }
    done += size_t(n);
  }
  try {
    if (sync) SyncFd(fd, path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

// fsyncs every path (files and directories) at once, one thread each (up to 32): the file
// system commits concurrent fsyncs in one journal transaction, so a batch with ten
// snapshots costs about one fsync instead of ten (docs/events-and-retention.md).
void SyncInParallel(const std::vector<fs::path>& paths) {
  const size_t threads = std::min<size_t>(paths.size(), 32);
  std::vector<int> errors(paths.size(), 0);
  auto work = [&](size_t first) {
    for (size_t i = first; i < paths.size(); i += threads) {
      int fd = ::open(paths[i].c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || ::fsync(fd) != 0) errors[i] = errno ? errno : EIO;
      if (fd >= 0) ::close(fd);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  if (threads) work(0);
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < paths.size(); ++i)
    if (errors[i])
      throw Error(ErrorCode::kIo, "fsync " + paths[i].string() + ": " + std::strerror(errors[i]));
}

std::vector<uint8_t> ReadWholeFile(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                "cannot read " + path.string() + ": " + std::strerror(err));
  }
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      throw Error(ErrorCode::kIo, "cannot read " + path.string() + ": " + std::strerror(err));
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

void SyncFileSystem(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::syncfs(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    throw Error(ErrorCode::kIo, std::string("syncfs: ") + std::strerror(err));
  }
  ::close(fd);
}

}  // namespace anju::server::snapshot_files
