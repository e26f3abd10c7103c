#include "server/viid/common.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/clock.h"
#include "core/error.h"
#include "protocol/viid.h"

namespace anju::server::cameras {

namespace fs = std::filesystem;
namespace viid = protocol::viid;

int64_t NowMs() {
  return anju::NowMs();  // the process clock (core/clock.h), which tests may replace
}

std::string DeviceAad(const std::string& id) {
  return "anju-viid-device/v1/" + id;
}
std::string ImageAad(const std::string& id, int n) {
  return "anju-capture/v1/" + id + "/" + std::to_string(n);
}
std::string ClipAad(const std::string& id, int n) {
  return "anju-capture-clip/v1/" + id + "/" + std::to_string(n);
}
std::string FeatureAad(const std::string& id) {
  return "anju-capture-feature/v1/" + id;
}

std::vector<uint8_t> FeatureBytes(std::span<const float> f) {
  std::vector<uint8_t> b(f.size() * sizeof(float));
  std::memcpy(b.data(), f.data(), b.size());
  return b;
}
std::vector<float> BytesFeature(const std::vector<uint8_t>& b) {
  std::vector<float> f(b.size() / sizeof(float));
  std::memcpy(f.data(), b.data(), f.size() * sizeof(float));
  return f;
}

void WriteDurable(const fs::path& file, std::span<const uint8_t> bytes) {
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(ErrorCode::kIo, "cannot write " + file.string());
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n <= 0) {
      ::close(fd);
      throw Error(errno == ENOSPC ? ErrorCode::kUnavailable : ErrorCode::kIo,
                  "cannot write " + file.string());
    }
    off += size_t(n);
  }
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) throw Error(ErrorCode::kIo, "fsync failed: " + file.string());
}

std::vector<uint8_t> ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "missing file " + file.string());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

ViidService::ViidAnswer StatusAnswer(ViidService::ViidAnswer::Outcome outcome,
                                     const std::string& url, int code, const std::string& text,
                                     const std::string& id) {
  ViidService::ViidAnswer a;
  a.outcome = outcome;
  a.body = viid::ToJson(viid::ResponseStatus{url, code, text, id, ""});
  return a;
}

}  // namespace anju::server::cameras
