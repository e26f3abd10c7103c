// Signing rules of the device protocol (docs/device-protocol.md, "Signed requests"):
// a device signs every request with its SM2 key; the server signs every response with
// its own. Both sides build the same canonical strings here, so they cannot drift.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "crypto/sm2.h"

namespace anju::protocol {

inline constexpr const char* kHeaderDevice = "X-Anju-Device";
inline constexpr const char* kHeaderTime = "X-Anju-Time";
inline constexpr const char* kHeaderNonce = "X-Anju-Nonce";
inline constexpr const char* kHeaderSignature = "X-Anju-Signature";

// Requests whose time is further than this from the server's clock are refused.
inline constexpr std::chrono::milliseconds kMaxClockSkew{5 * 60 * 1000};
// Nonces are remembered this long (twice the skew window covers every acceptable time).
inline constexpr std::chrono::milliseconds kNonceMemory{10 * 60 * 1000};

int64_t NowMs();         // system clock, Unix milliseconds
std::string NewNonce();  // 32 random hex digits

// "ANJU-DEVICE-V1\n<METHOD>\n<path?query>\n<device>\n<time>\n<nonce>\n<hex SM3(body)>"
std::string RequestSigningString(std::string_view method, std::string_view path_and_query,
                                 std::string_view device_id, int64_t time_ms,
                                 std::string_view nonce, std::string_view body);
// "ANJU-SERVER-V1\n<device>\n<request nonce>\n<status>\n<hex SM3(body)>"
std::string ResponseSigningString(std::string_view device_id, std::string_view nonce, int status,
                                  std::string_view body);

// The four headers a device adds to a request.
struct SignedHeaders {
  std::string device;
  std::string time;  // decimal Unix ms
  std::string nonce;
  std::string signature;  // base64 of the DER signature
};

// Signs a request with the device's private key (time = now unless given).
SignedHeaders SignRequest(const crypto::Sm2Key& device_key, std::string_view device_id,
                          std::string_view method, std::string_view path_and_query,
                          std::string_view body, int64_t time_ms = 0);

enum class AuthResult {
  kOk,
  kMalformed,     // a header is missing or not in its format
  kClockSkew,     // time outside kMaxClockSkew
  kBadSignature,  // does not verify with the device's public key
  kReplayed,      // nonce seen before (only from NonceCache)
};
const char* AuthResultName(AuthResult r);  // "ok", "malformed", …

// Checks the time and the signature of a request against the device's public key
// (on a cpp-httplib server pass req.target, the raw path + query as sent, not req.path). The
// caller looks the key up from headers.device first, and checks the nonce with a
// NonceCache after a kOk (so unauthenticated traffic cannot fill the cache).
AuthResult VerifyRequest(const SignedHeaders& headers, const crypto::Sm2Key& device_public_key,
                         std::string_view method, std::string_view path_and_query,
                         std::string_view body, int64_t now_ms = 0);

// Server side: base64 signature for the response header.
std::string SignResponse(const crypto::Sm2Key& server_key, std::string_view device_id,
                         std::string_view nonce, int status, std::string_view body);
// Device side: true when SIGNATURE_BASE64 is the server's signature of this response.
bool VerifyResponse(const crypto::Sm2Key& server_public_key, std::string_view device_id,
                    std::string_view nonce, int status, std::string_view body,
                    std::string_view signature_base64);

// Nonces seen within kNonceMemory, per device. Thread-safe.
class NonceCache {
 public:
  // False when (device, nonce) was already seen within the window; remembers it otherwise.
  bool CheckAndRemember(std::string_view device_id, std::string_view nonce, int64_t now_ms = 0);
  size_t size() const;

 private:
  void Prune(int64_t now_ms);
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> seen_;  // device + '\n' + nonce → time seen
  int64_t last_prune_ms_ = 0;
};

}  // namespace anju::protocol
