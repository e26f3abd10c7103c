// SHA-256, used to check model weights against the manifest.
#pragma once

#include <cstddef>
#include <string>

namespace anju {

// Lower-case hex digest of a buffer.
std::string Sha256Hex(const void* data, size_t size);

}  // namespace anju
