#include "testing.h"

#include <unistd.h>

#include <cmath>
#include <random>

#include "core/paths.h"

namespace anju::testing {

std::filesystem::path DataPath(const std::string& sub) {
  auto root = DefaultDataDir();
  if (root.empty()) return {};
  auto p = sub.empty() ? root : root / sub;
  std::error_code ec;
  return std::filesystem::exists(p, ec) ? p : std::filesystem::path{};
}

std::filesystem::path TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("anju-test-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<float> RandomUnitFeature(uint32_t seed, size_t dim) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n;
  std::vector<float> f(dim);
  double s = 0;
  for (auto& v : f) {
    v = n(rng);
    s += double(v) * v;
  }
  for (auto& v : f) v = float(v / std::sqrt(s));
  return f;
}

}  // namespace anju::testing
