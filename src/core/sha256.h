// SHA-256 of files, used to check model weights against the manifest.
#pragma once

#include <filesystem>
#include <string>

namespace anju {

// Lower-case hex digest. Throws Error(kIo) when the file cannot be read.
std::string Sha256File(const std::filesystem::path& path);
std::string Sha256Hex(const void* data, size_t size);

}  // namespace anju
