// SM3 hash (GB/T 32905), HMAC-SM3 and an HMAC-SM3 key derivation function.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/bytes.h"

namespace anju::crypto {

inline constexpr std::size_t kSm3Size = 32;
using Sm3Digest = std::array<std::uint8_t, kSm3Size>;

// One-shot SM3.
Sm3Digest Sm3(ByteView data);
inline Sm3Digest Sm3(std::string_view data) {
  return Sm3(AsBytes(data));
}
inline std::string Sm3Hex(ByteView data) {
  return ToHex(Sm3(data));
}
inline std::string Sm3Hex(std::string_view data) {
  return ToHex(Sm3(data));
}

// Lower-case hex SM3 of a file's contents. Throws Error(kIo) when it cannot be read.
std::string Sm3File(const std::filesystem::path& path);

// Incremental SM3: Update() any number of times, then Final() once (Final resets the
// hasher so it can be reused).
class Sm3Hasher {
 public:
  Sm3Hasher();
  ~Sm3Hasher();
  Sm3Hasher(Sm3Hasher&&) noexcept;
  Sm3Hasher& operator=(Sm3Hasher&&) noexcept;

  Sm3Hasher& Update(ByteView data);
  Sm3Hasher& Update(std::string_view data) { return Update(AsBytes(data)); }
  Sm3Digest Final();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One-shot HMAC-SM3 (RFC 2104 with SM3; 32-byte tag). Any key length is accepted.
Sm3Digest HmacSm3(ByteView key, ByteView data);
inline Sm3Digest HmacSm3(ByteView key, std::string_view data) {
  return HmacSm3(key, AsBytes(data));
}

// Incremental HMAC-SM3. Final() may be called once; Verify() compares in constant time.
class HmacSm3Ctx {
 public:
  explicit HmacSm3Ctx(ByteView key);
  ~HmacSm3Ctx();
  HmacSm3Ctx(HmacSm3Ctx&&) noexcept;
  HmacSm3Ctx& operator=(HmacSm3Ctx&&) noexcept;

  HmacSm3Ctx& Update(ByteView data);
  HmacSm3Ctx& Update(std::string_view data) { return Update(AsBytes(data)); }
  Sm3Digest Final();
  // Final() compared against `tag` in constant time.
  bool Verify(ByteView tag);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// HKDF-Expand (RFC 5869 §2.3) with HMAC-SM3: derives `length` bytes (≤ 255*32) from a
// uniformly random key `prk` and a context label `info`. Different labels give
// independent keys; used to split one data key into encryption and MAC subkeys.
Bytes DeriveKey(ByteView prk, std::string_view info, std::size_t length);

}  // namespace anju::crypto
