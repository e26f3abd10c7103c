// GA/T 1400 logins (docs/viid.md): HTTP Digest with nonces the server can check without
// state, replayed nonce counts, failed logins (auth_failures.h).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "server/viid/common.h"
#include "server/viid/gat1400_endpoint.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;
using Outcome = ViidAnswer::Outcome;
using cameras::NowMs;
using cameras::StatusAnswer;

Gat1400Endpoint::Gat1400Endpoint(ViidContext& ctx, CameraRegistry& cameras, CaptureStore& captures,
                                 LivePreview& live, AlertEngine& alerts)
    : ctx_(ctx),
      cameras_(cameras),
      captures_(captures),
      live_(live),
      alerts_(alerts),
      auth_failures_(ctx.options().auth_failures) {
  // Nonces are checked without state. Embedded, with a key of this process: a nonce from
  // before a restart is foreign, since the nonce counts it saw are gone. Shared, with a key
  // every server derives from the data key, so that a camera's nonce from one server is
  // good on another; the counts are in the shared state too.
  if (!ctx_.deps().distributed) {
    nonce_key_ = crypto::RandomBytes(32);
  } else {
    const auto k = crypto::HmacSm3(ctx_.key().bytes(), std::string_view("anju-viid-nonce/v1"));
    nonce_key_.assign(k.begin(), k.end());
  }
}

// "<issued ms>.<16 random hex digits>.<HMAC>": the random part keeps two challenges issued
// in the same millisecond (by one server or by two sharing the key) apart, so that two
// cameras never share a nonce and its counts.
std::string Gat1400Endpoint::NewNonce(int64_t now_ms) const {
  const std::string t = std::to_string(now_ms);
  const std::string r = crypto::ToHex(crypto::RandomBytes(8));
  const auto mac = crypto::HmacSm3(nonce_key_, ctx_.options().realm + "|" + t + "|" + r);
  return t + "." + r + "." + crypto::ToHex(crypto::ByteView(mac.data(), 16));
}

bool Gat1400Endpoint::NonceFresh(const std::string& nonce, int64_t now_ms, bool* valid) const {
  *valid = false;
  const size_t dot = nonce.find('.');
  if (dot == std::string::npos || dot == 0 || dot > 15) return false;
  const size_t dot2 = nonce.find('.', dot + 1);
  if (dot2 != dot + 17) return false;
  const std::string t = nonce.substr(0, dot);
  const std::string r = nonce.substr(dot + 1, 16);
  if (t.find_first_not_of("0123456789") != std::string::npos ||
      r.find_first_not_of("0123456789abcdef") != std::string::npos)
    return false;
  const auto mac = crypto::HmacSm3(nonce_key_, ctx_.options().realm + "|" + t + "|" + r);
  const std::string want = crypto::ToHex(crypto::ByteView(mac.data(), 16));
  const std::string got = nonce.substr(dot2 + 1);
  if (!crypto::ConstantTimeEqual(crypto::AsBytes(want), crypto::AsBytes(got))) return false;
  *valid = true;
  const int64_t issued = std::stoll(t);
  return now_ms - issued <= ctx_.options().nonce_ttl_ms && issued <= now_ms + 60000;
}

void Gat1400Endpoint::OnAuthFailure(const std::string& remote_addr, const std::string& username,
                                    const std::string& why) {
  // The username is the client's text: only id characters reach the log and the alarm.
  std::string camera = username.substr(0, 64);
  for (auto& ch : camera)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '.' && ch != '-')
      ch = '?';
  spdlog::warn("viid: digest login failed for camera '{}' from {}: {}", camera, remote_addr,
               why.substr(0, 200));
  const int64_t now = NowMs();
  const auto trip = auth_failures_.Record(remote_addr, camera, now);
  if (!trip) return;
  const auto& o = auth_failures_.options();
  const std::string window = std::to_string(o.window_ms / 60000);
  std::string who_zh, who_en;
  if (!trip->address.empty()) who_zh += "来自 " + trip->address, who_en += "from " + trip->address;
  if (!trip->camera.empty()) {
    who_zh += std::string(who_zh.empty() ? "" : "、") + "摄像机 " + trip->camera;
    who_en += std::string(who_en.empty() ? "" : ", ") + "as camera " + trip->camera;
  }
  const int failures = std::max(trip->address.empty() ? 0 : trip->address_failures,
                                trip->camera.empty() ? 0 : trip->camera_failures);
  // The server's own alarm, stored like the others (R4.2.2.1 risk warning); one per address
  // or camera per window (AuthFailureWatch).
  const json evidence = {{"address", trip->address},
                         {"camera", trip->camera},
                         {"failures", failures},
                         {"window_s", o.window_ms / 1000},
                         {"last_reason", why.substr(0, 200)}};
  const bool raised = alerts_.RaiseAlarm(
      "camera_auth_failure|" + trip->address + "|" + trip->camera, o.window_ms, "",
      "camera_auth_failure", "major",
      "摄像机登录反复失败（" + who_zh + "，" + window + " 分钟内 " + std::to_string(failures) +
          " 次），可能在猜测密码或密码配置错误 / repeated failed camera logins (" + who_en + ", " +
          std::to_string(failures) + " within " + window +
          " minutes): password guessing or a misconfigured camera",
      "", now, evidence, {});
  spdlog::warn("viid: {} failed camera logins {} within {} min: alarm {}", failures, who_en, window,
               raised ? "raised" : "not stored");
}

std::variant<std::string, ViidAnswer> Gat1400Endpoint::Authenticate(
    const std::string& method, const std::string& target, const std::string& authorization,
    const std::string& user_identify, const std::string& remote_addr, bool require_digest) {
  const int64_t now = NowMs();
  auto challenge = [&](bool stale, const std::string& why) {
    ViidAnswer a = StatusAnswer(Outcome::kUnauthenticated, target, viid::kInvalidOperation,
                                "未认证 / unauthorised: " + why, "");
    viid::DigestChallenge c;
    c.realm = ctx_.options().realm;
    c.nonce = NewNonce(now);
    const auto opaque = crypto::HmacSm3(nonce_key_, std::string_view("opaque"));
    c.opaque = crypto::ToHex(crypto::ByteView(opaque.data(), 8));
    c.stale = stale;
    a.challenge = viid::FormatChallenge(c);
    return a;
  };
  // A wrong password, an unknown camera, a malformed or replayed Authorization: a failed
  // login. A foreign or stale nonce is not (the previous server process issued it).
  auto failed = [&](const std::string& camera, const std::string& why) {
    OnAuthFailure(remote_addr, camera, why);
    return challenge(false, why);
  };
  if (!authorization.empty()) {
    viid::DigestCredentials c;
    try {
      c = viid::ParseAuthorization(authorization);
    } catch (const Error& e) {
      return failed("", e.what());
    }
    if (c.realm != ctx_.options().realm) return challenge(false, "realm");
    if (c.uri != target) return challenge(false, "uri");
    bool nonce_valid = false;
    const bool fresh = NonceFresh(c.nonce, now, &nonce_valid);
    if (!nonce_valid) return challenge(false, "nonce");
    const auto cred = cameras_.CredentialsOf(c.username);
    if (!cred || !viid::VerifyDigest(c, cred->ha1, method))
      return failed(c.username, "credentials");
    if (cred->status != "active")
      return StatusAnswer(Outcome::kRefused, target, viid::kInvalidOperation,
                          "设备已吊销 / device revoked", c.username);
    if (!fresh) return challenge(true, "stale nonce");
    const uint32_t nc = uint32_t(std::stoul(c.nc, nullptr, 16));
    // Each (nonce, count) pair is taken once, in the shared state so that every server
    // agrees; the nonce's highest count refuses a count that goes back. Both live as long
    // as the nonce is fresh.
    const std::chrono::milliseconds ttl(ctx_.options().nonce_ttl_ms + 60'000);
    const std::string key = "viid.nc." + c.nonce;
    bool replayed = !ctx_.state().PutIfAbsent(key + "." + std::to_string(nc), "1", ttl);
    if (!replayed) {
      const auto highest = ctx_.state().Get(key);
      replayed = highest && nc <= uint32_t(std::stoul(*highest));
      if (!replayed) ctx_.state().Put(key, std::to_string(nc), ttl);
    }
    if (replayed) return failed(c.username, "nonce count replayed");
    return c.username;
  }
  if (!require_digest && !user_identify.empty()) {
    if (cameras_.SessionAddress(user_identify) == remote_addr) return user_identify;
  }
  return challenge(false, "credentials required");
}

}  // namespace anju::server
