#include "core/paths.h"

#include <cstdlib>

namespace anju {

std::filesystem::path DefaultModelDir() {
  if (const char* env = std::getenv("ANJU_MODEL_DIR"); env && *env) return env;
  const char* home = std::getenv("HOME");
  std::filesystem::path base = (home && *home) ? home : "/var/lib/anju";
  return base / ".cache" / "anju" / "models" / "default";
}

std::filesystem::path DefaultDataDir() {
  if (const char* env = std::getenv("ANJU_DATA_DIR"); env && *env) return env;
#ifdef ANJU_SOURCE_DIR
  std::filesystem::path guess = std::filesystem::path(ANJU_SOURCE_DIR) / ".." / "shared" / "data";
  std::error_code ec;
  if (std::filesystem::is_directory(guess, ec)) return std::filesystem::weakly_canonical(guess, ec);
#endif
  return {};
}

}  // namespace anju
