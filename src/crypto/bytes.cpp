#include "crypto/bytes.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <climits>

#include "core/error.h"
#include "crypto/ossl.h"

namespace anju::crypto {

std::string ToHex(ByteView data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(data.size() * 2);
  for (std::uint8_t b : data) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Bytes FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0)
    throw Error(ErrorCode::kInvalidArgument, "hex string has an odd number of digits");
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      throw Error(ErrorCode::kInvalidArgument,
                  "invalid hex digit at offset " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return out;
}

void RandomFill(std::span<std::uint8_t> out) {
  while (!out.empty()) {
    int n = static_cast<int>(std::min<std::size_t>(out.size(), INT_MAX));
    detail::Check(RAND_bytes(out.data(), n), "random number generator failed");
    out = out.subspan(static_cast<std::size_t>(n));
  }
}

Bytes RandomBytes(std::size_t n) {
  Bytes out(n);
  RandomFill(out);
  return out;
}

bool ConstantTimeEqual(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void SecureZero(std::span<std::uint8_t> data) {
  if (!data.empty()) OPENSSL_cleanse(data.data(), data.size());
}

}  // namespace anju::crypto
