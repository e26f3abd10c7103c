#include "video_test_support.h"

#include <algorithm>

namespace anju::video::testing {

std::vector<std::filesystem::path> LfwImages(const std::filesystem::path& lfw, size_t n) {
  std::filesystem::path root = lfw / "lfw";
  if (!std::filesystem::is_directory(root)) root = lfw;
  std::vector<std::filesystem::path> people;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    if (e.is_directory()) people.push_back(e.path());
  }
  std::sort(people.begin(), people.end());
  std::vector<std::filesystem::path> out;
  for (const auto& person : people) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(person)) {
      if (e.path().extension() == ".jpg") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      if (out.size() == n) return out;
      out.push_back(f);
    }
  }
  return out;
}

}  // namespace anju::video::testing
