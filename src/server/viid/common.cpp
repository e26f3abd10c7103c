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

ViidAnswer StatusAnswer(ViidAnswer::Outcome outcome, const std::string& url, int code,
                        const std::string& text, const std::string& id) {
  ViidAnswer a;
  a.outcome = outcome;
  a.body = viid::ToJson(viid::ResponseStatus{url, code, text, id, ""});
  return a;
}

}  // namespace anju::server::cameras
