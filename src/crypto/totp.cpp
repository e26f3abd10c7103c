#include "crypto/totp.h"

#include <openssl/hmac.h>

#include <cctype>

#include "core/error.h"
#include "crypto/ossl.h"

namespace anju::crypto {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += char(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}
}  // namespace

std::string ToBase32(ByteView data) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31];
  return out;
}

Bytes FromBase32(std::string_view text) {
  Bytes out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char ch : text) {
    if (ch == ' ' || ch == '=' || ch == '-') continue;
    int v = -1;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    if (ch >= 'a' && ch <= 'z') v = ch - 'a';
    if (ch >= '2' && ch <= '7') v = ch - '2' + 26;
    if (v < 0) throw Error(ErrorCode::kInvalidArgument, "not base32: bad character");
    buffer = (buffer << 5) | uint32_t(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(uint8_t((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

std::string Hotp(ByteView secret, uint64_t counter, int digits) {
  if (digits < 6 || digits > 9) throw Error(ErrorCode::kInvalidArgument, "HOTP digits: 6..9");
  uint8_t msg[8];
  for (int i = 7; i >= 0; --i, counter >>= 8) msg[i] = uint8_t(counter & 0xff);
  uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha1(), secret.data(), int(secret.size()), msg, sizeof(msg), mac, &len))
    throw Error(ErrorCode::kInternal, "HMAC-SHA1 failed: " + detail::OpenSslErrors());
  const int offset = mac[len - 1] & 0x0f;
  const uint32_t bin = (uint32_t(mac[offset] & 0x7f) << 24) | (uint32_t(mac[offset + 1]) << 16) |
                       (uint32_t(mac[offset + 2]) << 8) | uint32_t(mac[offset + 3]);
  uint32_t mod = 1;
  for (int i = 0; i < digits; ++i) mod *= 10;
  std::string code = std::to_string(bin % mod);
  return std::string(size_t(digits) - code.size(), '0') + code;
}

std::string Totp(ByteView secret, int64_t unix_seconds, int step, int digits) {
  return Hotp(secret, uint64_t(unix_seconds / step), digits);
}

std::optional<int64_t> VerifyTotp(ByteView secret, std::string_view code, int64_t unix_seconds,
                                  int window, int step) {
  if (code.size() != 6) return std::nullopt;
  for (char ch : code)
    if (ch < '0' || ch > '9') return std::nullopt;
  const int64_t now = unix_seconds / step;
  std::optional<int64_t> hit;
  // Check every step in the window (no early exit: constant work per attempt).
  for (int64_t s = now - window; s <= now + window; ++s) {
    if (s < 0) continue;
    const std::string want = Hotp(secret, uint64_t(s), 6);
    if (ConstantTimeEqual(AsBytes(want), AsBytes(code)) && !hit) hit = s;
  }
  return hit;
}

std::string TotpUri(std::string_view issuer, std::string_view account, ByteView secret) {
  return "otpauth://totp/" + UrlEncode(issuer) + ":" + UrlEncode(account) +
         "?secret=" + ToBase32(secret) + "&issuer=" + UrlEncode(issuer) +
         "&algorithm=SHA1&digits=6&period=30";
}

}  // namespace anju::crypto
