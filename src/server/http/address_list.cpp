#include "server/http/address_list.h"

#include <arpa/inet.h>

#include <cstring>

#include "core/error.h"

namespace anju::server::http {

namespace {

// Parses TEXT into BYTES (4 bytes for IPv4, 16 for IPv6); IPv4-mapped IPv6 becomes IPv4.
bool ParseAddress(const std::string& text, bool* v6, std::array<uint8_t, 16>* bytes) {
  bytes->fill(0);
  if (inet_pton(AF_INET, text.c_str(), bytes->data()) == 1) {
    *v6 = false;
    return true;
  }
  std::array<uint8_t, 16> b{};
  if (inet_pton(AF_INET6, text.c_str(), b.data()) != 1) return false;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b.data(), kMapped, 12) == 0) {
    std::memcpy(bytes->data(), b.data() + 12, 4);
    *v6 = false;
    return true;
  }
  *bytes = b;
  *v6 = true;
  return true;
}

bool PrefixEqual(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int prefix) {
  int i = 0;
  for (; prefix >= 8; prefix -= 8, ++i)
    if (a[i] != b[i]) return false;
  if (prefix == 0) return true;
  const uint8_t mask = uint8_t(0xff << (8 - prefix));
  return (a[i] & mask) == (b[i] & mask);
}

}  // namespace

AddressList AddressList::Parse(const std::vector<std::string>& entries) {
  AddressList list;
  for (const auto& e : entries) {
    const size_t slash = e.find('/');
    Net n;
    if (!ParseAddress(e.substr(0, slash), &n.v6, &n.bytes))
      throw Error(ErrorCode::kInvalidArgument, "not an IP address or network: \"" + e + "\"");
    const int max = n.v6 ? 128 : 32;
    n.prefix = max;
    if (slash != std::string::npos) {
      const std::string p = e.substr(slash + 1);
      if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos ||
          std::stoi(p) > max)
        throw Error(ErrorCode::kInvalidArgument, "bad network prefix in \"" + e + "\"");
      n.prefix = std::stoi(p);
    }
    list.nets_.push_back(n);
    list.entries_.push_back(e);
  }
  return list;
}

bool AddressList::Contains(const std::string& address) const {
  bool v6 = false;
  std::array<uint8_t, 16> b{};
  if (!ParseAddress(address, &v6, &b)) return false;
  for (const auto& n : nets_)
    if (n.v6 == v6 && PrefixEqual(n.bytes, b, n.prefix)) return true;
  return false;
}

}  // namespace anju::server::http
