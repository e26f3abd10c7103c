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

namespace anju::crypto {

std::string ToBase64(ByteView data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t v = (uint32_t(data[i]) << 16) | (uint32_t(data[i + 1]) << 8) | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (const size_t rest = data.size() - i; rest > 0) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (rest == 2) v |= uint32_t(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

namespace {
int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

Bytes FromBase64(std::string_view text) {
  if (text.size() % 4 != 0) throw Error(ErrorCode::kInvalidArgument, "base64: bad length");
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++pad;
  Bytes out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    uint32_t v = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      int d;
      if (c == '=' && last && k >= 4 - pad) {
        d = 0;
      } else {
        d = Base64Value(c);
        if (d < 0) throw Error(ErrorCode::kInvalidArgument, "base64: invalid character");
      }
      v = (v << 6) | uint32_t(d);
    }
    out.push_back(uint8_t(v >> 16));
    if (!(last && pad == 2)) out.push_back(uint8_t(v >> 8));
    if (!(last && pad >= 1)) out.push_back(uint8_t(v));
  }
  return out;
}

}  // namespace anju::crypto
