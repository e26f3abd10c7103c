// The device-auth headers and signature check every device request passes before anything
// else (protocol/device_auth.h): VerifyRequest over arbitrary headers, method, target and
// body; VerifyResponse (device side); the nonce cache; and the SM2 public-key PEM a device
// sends at registration. Input: lines "method\ntarget\ndevice\ntime\nnonce\nsignature\n"
// then the body; the first byte picks which entry point runs.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "crypto/sm2.h"
#include "protocol/device_auth.h"

using namespace anju;

namespace {

const crypto::Sm2Key& DeviceKey() {
  static const crypto::Sm2Key k = crypto::Sm2Key::Generate();
  return k;
}

std::vector<std::string_view> Split(std::string_view s, size_t n, std::string_view* rest) {
  std::vector<std::string_view> out;
  while (out.size() < n) {
    const size_t p = s.find('\n');
    if (p == std::string_view::npos) {
      out.push_back(s);
      s = {};
      continue;
    }
    out.push_back(s.substr(0, p));
    s.remove_prefix(p + 1);
  }
  *rest = s;
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0] % 4;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view body;
  const auto f = Split(in, 6, &body);
  const int64_t now = 1764115200000;  // fixed: the time check is part of what is fuzzed
  switch (mode) {
    case 0: {
      const protocol::SignedHeaders h{std::string(f[2]), std::string(f[3]), std::string(f[4]),
                                      std::string(f[5])};
      const auto r = protocol::VerifyRequest(h, DeviceKey(), f[0], f[1], body, now);
      if (r == protocol::AuthResult::kOk) __builtin_trap();  // forged without the key
      protocol::AuthResultName(r);
      break;
    }
    case 1: {
      // A correctly signed request with fuzzed parts must verify exactly when unchanged.
      const auto h = protocol::SignRequest(DeviceKey(), f[2], f[0], f[1], body, now);
      if (protocol::VerifyRequest(h, DeviceKey(), f[0], f[1], body, now) !=
          protocol::AuthResult::kOk)
        if (!f[2].empty()) __builtin_trap();
      static protocol::NonceCache cache;
      cache.CheckAndRemember(f[2], f[4], now);
      break;
    }
    case 2:
      if (protocol::VerifyResponse(DeviceKey(), f[2], f[4], 200, body, f[5])) __builtin_trap();
      break;
    case 3:
      try {
        const crypto::Sm2Key k = crypto::Sm2Key::FromPublicPem(in);
        k.Fingerprint();
      } catch (const Error&) {
      }
      break;
  }
  return 0;
}
