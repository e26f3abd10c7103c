#include "core/paths.h"

#include <cstdlib>

#include "core/error.h"

namespace anju {

namespace fs = std::filesystem;

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

fs::path FolderInside(const fs::path& root, const std::string& path, const std::string& what) {
  const fs::path p(path);
  if (!p.is_absolute())
    throw Error(ErrorCode::kInvalidArgument, what + " 需为绝对路径 / " + what + ": absolute path",
                "bad_request");
  std::error_code ec;
  const fs::path r = fs::weakly_canonical(fs::absolute(root), ec);
  const fs::path c = fs::weakly_canonical(p, ec);
  const auto rel = c.lexically_relative(r);
  if (ec || rel.empty() || *rel.begin() == ".." || rel == ".")
    throw Error(ErrorCode::kPermissionDenied, what + " 须位于 " + root.string() + " 之内 / " +
                                                  what + " must lie inside " + root.string());
  return c;
}

}  // namespace anju
