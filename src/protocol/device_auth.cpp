#include "protocol/device_auth.h"

#include <algorithm>
#include <charconv>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"

namespace anju::protocol {

// The wall clock, not the process clock (core/clock.h): a signature's freshness is
// judged against real time even where a test or a tool runs the process on another clock.
int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewNonce() {
  return crypto::ToHex(crypto::RandomBytes(16));
}

std::string RequestSigningString(std::string_view method, std::string_view path_and_query,
                                 std::string_view device_id, int64_t time_ms,
                                 std::string_view nonce, std::string_view body) {
  std::string s = "ANJU-DEVICE-V1\n";
  s.append(method).append("\n");
  s.append(path_and_query).append("\n");
  s.append(device_id).append("\n");
  s.append(std::to_string(time_ms)).append("\n");
  s.append(nonce).append("\n");
  s.append(crypto::Sm3Hex(body));
  return s;
}

std::string ResponseSigningString(std::string_view device_id, std::string_view nonce, int status,
                                  std::string_view body) {
  std::string s = "ANJU-SERVER-V1\n";
  s.append(device_id).append("\n");
  s.append(nonce).append("\n");
  s.append(std::to_string(status)).append("\n");
  s.append(crypto::Sm3Hex(body));
  return s;
}

SignedHeaders SignRequest(const crypto::Sm2Key& device_key, std::string_view device_id,
                          std::string_view method, std::string_view path_and_query,
                          std::string_view body, int64_t time_ms) {
  if (time_ms == 0) time_ms = NowMs();
  SignedHeaders h;
  h.device = std::string(device_id);
  h.time = std::to_string(time_ms);
  h.nonce = NewNonce();
  h.signature = crypto::ToBase64(device_key.Sign(
      RequestSigningString(method, path_and_query, device_id, time_ms, h.nonce, body)));
  return h;
}

const char* AuthResultName(AuthResult r) {
  switch (r) {
    case AuthResult::kOk:
      return "ok";
    case AuthResult::kMalformed:
      return "malformed";
    case AuthResult::kClockSkew:
      return "clock_skew";
    case AuthResult::kBadSignature:
      return "bad_signature";
    case AuthResult::kReplayed:
      return "replayed";
  }
  return "?";
}

namespace {

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

}  // namespace

AuthResult VerifyRequest(const SignedHeaders& headers, const crypto::Sm2Key& device_public_key,
                         std::string_view method, std::string_view path_and_query,
                         std::string_view body, int64_t now_ms) {
  if (headers.device.empty() || headers.nonce.size() != 32 || !IsHex(headers.nonce) ||
      headers.signature.empty() || headers.time.empty())
    return AuthResult::kMalformed;
  int64_t time_ms = 0;
  const char* end = headers.time.data() + headers.time.size();
  if (auto [p, ec] = std::from_chars(headers.time.data(), end, time_ms);
      ec != std::errc() || p != end)
    return AuthResult::kMalformed;
  if (now_ms == 0) now_ms = NowMs();
  if (time_ms > now_ms + kMaxClockSkew.count() || time_ms < now_ms - kMaxClockSkew.count())
    return AuthResult::kClockSkew;
  crypto::Bytes signature;
  try {
    signature = crypto::FromBase64(headers.signature);
  } catch (const Error&) {
    return AuthResult::kMalformed;
  }
  const std::string text =
      RequestSigningString(method, path_and_query, headers.device, time_ms, headers.nonce, body);
  return device_public_key.Verify(text, signature) ? AuthResult::kOk : AuthResult::kBadSignature;
}

std::string SignResponse(const crypto::Sm2Key& server_key, std::string_view device_id,
                         std::string_view nonce, int status, std::string_view body) {
  return crypto::ToBase64(server_key.Sign(ResponseSigningString(device_id, nonce, status, body)));
}

bool VerifyResponse(const crypto::Sm2Key& server_public_key, std::string_view device_id,
                    std::string_view nonce, int status, std::string_view body,
                    std::string_view signature_base64) {
  crypto::Bytes signature;
  try {
    signature = crypto::FromBase64(signature_base64);
  } catch (const Error&) {
    return false;
  }
  return server_public_key.Verify(ResponseSigningString(device_id, nonce, status, body), signature);
}

bool NonceCache::CheckAndRemember(std::string_view device_id, std::string_view nonce,
                                  int64_t now_ms) {
  if (now_ms == 0) now_ms = NowMs();
  std::string key;
  key.reserve(device_id.size() + 1 + nonce.size());
  key.append(device_id).append("\n").append(nonce);
  std::lock_guard lock(mu_);
  if (now_ms - last_prune_ms_ > 60'000) Prune(now_ms);
  auto [it, inserted] = seen_.try_emplace(std::move(key), now_ms);
  if (inserted) return true;
  if (now_ms - it->second > kNonceMemory.count()) {
    it->second = now_ms;  // expired entry not yet pruned: a request this old fails the clock check
    return true;
  }
  return false;
}

size_t NonceCache::size() const {
  std::lock_guard lock(mu_);
  return seen_.size();
}

void NonceCache::Prune(int64_t now_ms) {
  last_prune_ms_ = now_ms;
  std::erase_if(seen_, [&](const auto& kv) { return now_ms - kv.second > kNonceMemory.count(); });
}

}  // namespace anju::protocol
