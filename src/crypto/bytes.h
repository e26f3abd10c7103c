// Byte buffers and the small primitives every crypto caller needs: hex, secure
// randomness (OpenSSL RAND_bytes), constant-time comparison and wiping secrets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anju::crypto {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

// View the characters of a string as bytes (no copy).
inline ByteView AsBytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline Bytes ToBytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// Lower-case hex. FromHex accepts either case; throws Error(kInvalidArgument) on bad input.
std::string ToHex(ByteView data);
Bytes FromHex(std::string_view hex);

// Standard base64 (RFC 4648, with padding). FromBase64 ignores no characters: anything
// outside the alphabet, bad padding or a bad length throws Error(kInvalidArgument).
std::string ToBase64(ByteView data);
Bytes FromBase64(std::string_view text);

// Cryptographically secure random bytes; throws Error(kCrypto) if the DRBG fails.
Bytes RandomBytes(std::size_t n);
void RandomFill(std::span<std::uint8_t> out);

// True when a and b have the same length and contents; time depends only on the length.
bool ConstantTimeEqual(ByteView a, ByteView b);

// Overwrite memory that held a secret (not optimised away).
void SecureZero(std::span<std::uint8_t> data);
inline void SecureZero(Bytes& data) {
  SecureZero(std::span<std::uint8_t>(data));
}

}  // namespace anju::crypto
