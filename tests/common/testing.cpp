#include "testing.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
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

size_t FillDisk(const std::filesystem::path& file) {
  std::FILE* f = std::fopen(file.c_str(), "wb");
  if (!f) return 0;
  std::setvbuf(f, nullptr, _IONBF, 0);
  size_t total = 0;
  std::vector<char> chunk(1 << 20, 0);
  for (size_t size : {size_t{1} << 20, size_t{4096}, size_t{512}})
    while (std::fwrite(chunk.data(), 1, size, f) == size) total += size;
  std::fclose(f);
  return total;
}

}  // namespace anju::testing
