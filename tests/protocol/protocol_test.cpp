// Device protocol signing rules (docs/device-protocol.md) and the device client against a
// real HTTP peer on loopback.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"
#include "protocol/device_client.h"
#include "protocol/feature_codec.h"
#include "testing.h"

namespace anju::protocol {
namespace {

using crypto::Sm2Key;

TEST(DeviceAuth, SignedRequestVerifiesAndEveryFieldIsBound) {
  const Sm2Key device = Sm2Key::Generate();
  const Sm2Key pub = device.PublicOnly();
  const int64_t now = NowMs();
  const SignedHeaders h = SignRequest(device, "dev-1", "POST", "/api/v1/device/events", "{}", now);
  EXPECT_EQ(VerifyRequest(h, pub, "POST", "/api/v1/device/events", "{}", now), AuthResult::kOk);
  EXPECT_EQ(VerifyRequest(h, pub, "GET", "/api/v1/device/events", "{}", now),
            AuthResult::kBadSignature);
  EXPECT_EQ(VerifyRequest(h, pub, "POST", "/api/v1/device/events?x=1", "{}", now),
            AuthResult::kBadSignature);
  EXPECT_EQ(VerifyRequest(h, pub, "POST", "/api/v1/device/events", "{ }", now),
            AuthResult::kBadSignature);
  SignedHeaders other = h;
  other.device = "dev-2";
  EXPECT_EQ(VerifyRequest(other, pub, "POST", "/api/v1/device/events", "{}", now),
            AuthResult::kBadSignature);
  other = h;
  other.nonce[0] = other.nonce[0] == 'a' ? 'b' : 'a';
  EXPECT_EQ(VerifyRequest(other, pub, "POST", "/api/v1/device/events", "{}", now),
            AuthResult::kBadSignature);
  // Another device's key.
  EXPECT_EQ(VerifyRequest(h, Sm2Key::Generate(), "POST", "/api/v1/device/events", "{}", now),
            AuthResult::kBadSignature);
}

TEST(DeviceAuth, ClockSkewAndMalformedHeaders) {
  const Sm2Key device = Sm2Key::Generate();
  const int64_t now = NowMs();
  const SignedHeaders h = SignRequest(device, "dev-1", "GET", "/x", "", now);
  const int64_t skew = kMaxClockSkew.count();
  EXPECT_EQ(VerifyRequest(h, device, "GET", "/x", "", now + skew - 1000), AuthResult::kOk);
  EXPECT_EQ(VerifyRequest(h, device, "GET", "/x", "", now + skew + 1000), AuthResult::kClockSkew);
  EXPECT_EQ(VerifyRequest(h, device, "GET", "/x", "", now - skew - 1000), AuthResult::kClockSkew);
  SignedHeaders bad = h;
  bad.time = "12ab";
  EXPECT_EQ(VerifyRequest(bad, device, "GET", "/x", "", now), AuthResult::kMalformed);
  bad = h;
  bad.nonce = "short";
  EXPECT_EQ(VerifyRequest(bad, device, "GET", "/x", "", now), AuthResult::kMalformed);
  bad = h;
  bad.signature = "not base64!";
  EXPECT_EQ(VerifyRequest(bad, device, "GET", "/x", "", now), AuthResult::kMalformed);
}

TEST(DeviceAuth, NonceCacheRefusesReplaysWithinTheWindow) {
  NonceCache cache;
  const int64_t t = 1'000'000'000'000;
  EXPECT_TRUE(cache.CheckAndRemember("dev-1", "n1", t));
  EXPECT_FALSE(cache.CheckAndRemember("dev-1", "n1", t + 1000));
  EXPECT_TRUE(cache.CheckAndRemember("dev-2", "n1", t + 1000));  // per device
  EXPECT_TRUE(cache.CheckAndRemember("dev-1", "n1", t + kNonceMemory.count() + 1));
  // Pruning forgets old entries.
  EXPECT_TRUE(cache.CheckAndRemember("dev-1", "n2", t + 3 * kNonceMemory.count()));
  EXPECT_EQ(cache.size(), 1u);
}

TEST(DeviceAuth, ResponseSignatureBindsStatusBodyAndNonce) {
  const Sm2Key server = Sm2Key::Generate();
  const std::string sig = SignResponse(server, "dev-1", "nonce-a", 200, "{\"ok\":1}");
  const Sm2Key pub = server.PublicOnly();
  EXPECT_TRUE(VerifyResponse(pub, "dev-1", "nonce-a", 200, "{\"ok\":1}", sig));
  EXPECT_FALSE(VerifyResponse(pub, "dev-1", "nonce-b", 200, "{\"ok\":1}", sig));
  EXPECT_FALSE(VerifyResponse(pub, "dev-1", "nonce-a", 201, "{\"ok\":1}", sig));
  EXPECT_FALSE(VerifyResponse(pub, "dev-1", "nonce-a", 200, "{\"ok\":2}", sig));
  EXPECT_FALSE(VerifyResponse(pub, "dev-2", "nonce-a", 200, "{\"ok\":1}", sig));
  EXPECT_FALSE(VerifyResponse(pub, "dev-1", "nonce-a", 200, "{\"ok\":1}", ""));
}

std::vector<float> UnitFeature(size_t dim, float seed) {
  std::vector<float> f(dim);
  double norm = 0;
  for (size_t i = 0; i < dim; ++i) {
    f[i] = std::sin(seed * float(i + 1));
    norm += double(f[i]) * f[i];
  }
  for (float& v : f) v = float(v / std::sqrt(norm));
  return f;
}

TEST(FeatureCodec, RoundTripIsCloseAndBoundToKeyAndPerson) {
  const auto key = crypto::DataKey::Generate();
  const auto f = UnitFeature(512, 0.37f);
  const std::string sealed = SealFeature(key, "P0001", f);
  const auto back = OpenFeature(key, "P0001", sealed);
  ASSERT_EQ(back.size(), f.size());
  double dot = 0;
  for (size_t i = 0; i < f.size(); ++i) dot += double(f[i]) * back[i];
  EXPECT_GT(dot, 0.999);
  EXPECT_THROW(OpenFeature(key, "P0002", sealed), Error);                          // moved person
  EXPECT_THROW(OpenFeature(crypto::DataKey::Generate(), "P0001", sealed), Error);  // wrong key
  EXPECT_THROW(OpenFeature(key, "P0001", sealed, 128), Error);                     // wrong size
  EXPECT_THROW(OpenFeature(key, "P0001", "@@@@"), Error);                          // bad base64
}

TEST(FeatureCodec, APlainFeatureMustBeBase64OfDimFloatsWithUnitLength) {
  const auto f = UnitFeature(512, 0.37f);
  const auto bytes = [](const std::vector<float>& v) {
    return crypto::ToBase64(std::span(reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4));
  };
  EXPECT_EQ(DecodePlainFeature(bytes(f), 512), f);
  const auto reason = [](const std::function<void()>& fn) {
    EXPECT_EQ(anju::testing::CodeOf(fn), ErrorCode::kInvalidArgument);
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(reason([&] { DecodePlainFeature("@@@@", 512); }).find("bad base64"), std::string::npos);
  EXPECT_NE(reason([&] { DecodePlainFeature(bytes(f), 128); }).find("128 float32"),
            std::string::npos);
  auto doubled = f;
  for (float& v : doubled) v *= 2;
  EXPECT_NE(reason([&] { DecodePlainFeature(bytes(doubled), 512); }).find("L2-normalised"),
            std::string::npos);
}

// A minimal device endpoint on loopback that verifies requests and signs answers the way
// the server must.
class SigningPeer {
 public:
  SigningPeer(Sm2Key server, Sm2Key device_pub) : server_(server), device_pub_(device_pub) {
    http_.Post(
        "/api/v1/device/register", [this](const httplib::Request& req, httplib::Response& res) {
          const auto j = nlohmann::json::parse(req.body);
          if (j.at("enrolment_code") != "GOOD") {
            res.status = 403;
            res.set_content(ErrorBody("enrolment_code_invalid", "注册码无效 / invalid code"),
                            "application/json");
            return;
          }
          const Sm2Key pub = Sm2Key::FromPublicPem(j.at("public_key").get<std::string>());
          const nlohmann::json answer = {{"device_id", "dev-7"},
                                         {"data_key", crypto::ToHex(pub.Encrypt(data_key.bytes()))},
                                         {"server_public_key", server_.PublicPem()},
                                         {"server_time_ms", NowMs()}};
          res.set_content(answer.dump(), "application/json");
        });
    http_.Post("/api/v1/device/echo", [this](const httplib::Request& req, httplib::Response& res) {
      SignedHeaders h{req.get_header_value(kHeaderDevice), req.get_header_value(kHeaderTime),
                      req.get_header_value(kHeaderNonce), req.get_header_value(kHeaderSignature)};
      const AuthResult r = VerifyRequest(h, device_pub_, req.method, req.target, req.body);
      if (r == AuthResult::kOk) {
        res.status = 200;
        res.set_content(req.body, "application/json");
      } else {
        res.status = 401;
        res.set_content(ErrorBody("unauthenticated", AuthResultName(r)), "application/json");
      }
      const Sm2Key& signer = tamper_ ? other_ : server_;
      res.set_header(kHeaderSignature,
                     SignResponse(signer, h.device, h.nonce, res.status, res.body));
    });
    port_ = http_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    while (!http_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~SigningPeer() {
    http_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void SignWithWrongKey(bool on) { tamper_ = on; }
  crypto::DataKey data_key = crypto::DataKey::Generate();

 private:
  Sm2Key server_, device_pub_, other_ = Sm2Key::Generate();
  bool tamper_ = false;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

TEST(DeviceClient, RegistersThenSignsRequestsAndChecksAnswers) {
  const Sm2Key server = Sm2Key::Generate();
  const Sm2Key device = Sm2Key::Generate();
  SigningPeer peer(server, device.PublicOnly());

  RegisterRequest req;
  req.enrolment_code = "BAD";
  try {
    DeviceClient::Register(peer.url(), device, req);
    FAIL() << "a bad enrolment code was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_EQ(e.code(), "enrolment_code_invalid");
  }
  req.enrolment_code = "GOOD";
  const Registration reg = DeviceClient::Register(peer.url(), device, req);
  EXPECT_EQ(reg.device_id, "dev-7");
  EXPECT_EQ(reg.data_key.id(), peer.data_key.id());
  EXPECT_EQ(reg.server_public_key.Fingerprint(), server.Fingerprint());

  DeviceClient client(peer.url(), reg.device_id, device, reg.server_public_key);
  const nlohmann::json body = {{"hello", "世界"}};
  EXPECT_EQ(client.CallJson("POST", "/api/v1/device/echo", &body), body);
  // Another device key: the peer refuses with 401, the signed error arrives as ApiError.
  DeviceClient impostor(peer.url(), reg.device_id, Sm2Key::Generate(), reg.server_public_key);
  try {
    impostor.CallJson("POST", "/api/v1/device/echo", &body);
    FAIL() << "a request signed with the wrong key was accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 401);
    EXPECT_EQ(e.code(), "unauthenticated");
  }
  // A response not signed by the server is not trusted.
  peer.SignWithWrongKey(true);
  EXPECT_THROW(client.Call("POST", "/api/v1/device/echo", "{}"), Error);
}

// A signed answer is still peer input: JSON nested 2,001 levels is refused by the client
// (json_limits.h) with a clear error instead of being handed to the sync or upload code.
TEST(DeviceClient, DeeplyNestedAnswerIsRefused) {
  const Sm2Key server = Sm2Key::Generate();
  const Sm2Key device = Sm2Key::Generate();
  SigningPeer peer(server, device.PublicOnly());
  DeviceClient client(peer.url(), "dev-7", device, server.PublicOnly());
  nlohmann::json deep = 1;
  for (int i = 0; i < 2001; ++i) deep = nlohmann::json::array({std::move(deep)});
  try {
    client.CallJson("POST", "/api/v1/device/echo", &deep);
    FAIL() << "a 2,001-level answer was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("nested deeper than 64"), std::string::npos) << e.what();
  }
  const nlohmann::json normal = {{"stored", {"a", "b"}}, {"duplicates", nlohmann::json::array()}};
  EXPECT_EQ(client.CallJson("POST", "/api/v1/device/echo", &normal), normal);
}

TEST(DeviceClient, UnreachableServerIsUnavailable) {
  const Sm2Key device = Sm2Key::Generate();
  ClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(500);
  DeviceClient client("http://127.0.0.1:1", "dev-1", device, device.PublicOnly(), options);
  try {
    client.Call("GET", "/api/v1/device/commands");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
}

}  // namespace
}  // namespace anju::protocol
