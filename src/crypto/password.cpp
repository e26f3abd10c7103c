#include "crypto/password.h"

#include <openssl/kdf.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "crypto/ossl.h"

namespace anju::crypto {

namespace {

Bytes Scrypt(std::string_view password, ByteView salt, const ScryptCost& c, size_t length) {
  Bytes out(length);
  // maxmem must cover 128 * N * r * p plus slack.
  const uint64_t maxmem = 128 * c.n * c.r * c.p + (1u << 20);
  if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), c.n, c.r, c.p,
                     maxmem, out.data(), out.size()) != 1)
    throw Error(ErrorCode::kInternal, "scrypt failed: " + detail::OpenSslErrors());
  return out;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i)
    if (i == s.size() || s[i] == sep) {
      parts.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}

bool ParseU64(std::string_view s, uint64_t& v) {
  if (s.empty() || s.size() > 12) return false;
  v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + uint64_t(ch - '0');
  }
  return true;
}

}  // namespace

std::string HashPassword(std::string_view password, ScryptCost cost) {
  const Bytes salt = RandomBytes(16);
  const Bytes hash = Scrypt(password, salt, cost, 32);
  return "scrypt$" + std::to_string(cost.n) + "$" + std::to_string(cost.r) + "$" +
         std::to_string(cost.p) + "$" + ToBase64(salt) + "$" + ToBase64(hash);
}

bool VerifyPassword(std::string_view password, std::string_view stored) {
  const auto parts = Split(stored, '$');
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  ScryptCost c;
  if (!ParseU64(parts[1], c.n) || !ParseU64(parts[2], c.r) || !ParseU64(parts[3], c.p))
    return false;
  // Refuse costs that would take the server down (a stored hash is ours, but be safe).
  if (c.n < 2 || c.n > (1u << 20) || (c.n & (c.n - 1)) != 0 || c.r == 0 || c.r > 32 || c.p == 0 ||
      c.p > 16)
    return false;
  try {
    const Bytes salt = FromBase64(parts[4]);
    const Bytes want = FromBase64(parts[5]);
    if (salt.empty() || want.size() != 32) return false;
    return ConstantTimeEqual(Scrypt(password, salt, c, want.size()), want);
  } catch (const Error&) {
    return false;
  }
}

DataKey KeyFromPassphrase(std::string_view passphrase, ByteView salt, ScryptCost cost) {
  Bytes k = Scrypt(passphrase, salt, cost, DataKey::kSize);
  DataKey key = DataKey::FromBytes(k);
  SecureZero(k);
  return key;
}

}  // namespace anju::crypto

namespace anju::crypto {

namespace {
constexpr std::string_view kMagic = "ANJU-PASSPHRASE/1\n";
}

Bytes SealWithPassphrase(std::string_view passphrase, ByteView plaintext, std::string header_json) {
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_json);
  } catch (const nlohmann::json::exception&) {
    throw Error(ErrorCode::kInvalidArgument, "passphrase file header must be a JSON object");
  }
  if (!header.is_object())
    throw Error(ErrorCode::kInvalidArgument, "passphrase file header must be a JSON object");
  const ScryptCost cost;
  const Bytes salt = RandomBytes(16);
  header["kdf"] = {
      {"name", "scrypt"}, {"n", cost.n}, {"r", cost.r}, {"p", cost.p}, {"salt", ToBase64(salt)}};
  header["cipher"] = "SM4-CTR + HMAC-SM3 (anju seal)";
  const std::string line = header.dump();
  const DataKey key = KeyFromPassphrase(passphrase, salt, cost);
  const Bytes sealed = Seal(key, plaintext, AsBytes(line));
  const std::string head = std::string(kMagic) + line + "\n";
  Bytes out(head.size() + sealed.size());
  std::copy(head.begin(), head.end(), out.begin());
  std::copy(sealed.begin(), sealed.end(), out.begin() + std::ptrdiff_t(head.size()));
  return out;
}

Bytes OpenWithPassphrase(std::string_view passphrase, ByteView file, std::string* header_json) {
  const auto bad = [] {
    return Error(ErrorCode::kInvalidArgument, "not an anju passphrase-protected file");
  };
  if (file.size() < kMagic.size() ||
      std::string_view(reinterpret_cast<const char*>(file.data()), kMagic.size()) != kMagic)
    throw bad();
  const auto* begin = file.data() + kMagic.size();
  const auto* end = file.data() + file.size();
  const auto* nl = std::find(begin, end, uint8_t('\n'));
  if (nl == end) throw bad();
  const std::string line(begin, nl);
  ScryptCost cost;
  Bytes salt;
  try {
    const auto h = nlohmann::json::parse(line);
    const auto& k = h.at("kdf");
    cost.n = k.at("n").get<uint64_t>();
    cost.r = k.at("r").get<uint64_t>();
    cost.p = k.at("p").get<uint64_t>();
    salt = FromBase64(k.at("salt").get<std::string>());
  } catch (const nlohmann::json::exception&) {
    throw bad();
  }
  if (cost.n < 2 || cost.n > (1u << 20) || (cost.n & (cost.n - 1)) != 0 || cost.r == 0 ||
      cost.r > 32 || cost.p == 0 || cost.p > 16 || salt.empty())
    throw bad();
  if (header_json) *header_json = line;
  const DataKey key = KeyFromPassphrase(passphrase, salt, cost);
  return Open(key, ByteView(nl + 1, size_t(end - nl - 1)), AsBytes(line));
}

}  // namespace anju::crypto
