// Source-address allow-lists: addresses and CIDR networks, IPv4 and IPv6. The camera listener
// admits only its list ("camera_allow_from"), and the GA/T 1400 code can check a camera's own
// list per request (Server::Impl::camera_source_allowed; docs/security.md).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace anju::server::http {

class AddressList {
 public:
  AddressList() = default;
  // "192.0.2.7", "192.0.2.0/24", "2001:db8::/32", "::1". Throws Error(kInvalidArgument)
  // naming the entry that is not an address or network.
  static AddressList Parse(const std::vector<std::string>& entries);
  bool empty() const { return nets_.empty(); }
  // True when ADDRESS (as text) lies in one of the networks. An IPv4-mapped IPv6 address
  // (::ffff:192.0.2.7) is compared as the IPv4 address; text that is no address is never in.
  bool Contains(const std::string& address) const;
  const std::vector<std::string>& entries() const { return entries_; }

 private:
  struct Net {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    int prefix = 0;
  };
  std::vector<Net> nets_;
  std::vector<std::string> entries_;
};

}  // namespace anju::server::http
