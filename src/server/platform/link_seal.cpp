#include "server/platform/link_seal.h"

#include "core/error.h"
#include "crypto/bytes.h"

namespace anju::server::platform {

namespace {

std::string Aad(const std::string& node, LinkDirection d) {
  return std::string("anju/platform-link/v1/") + (d == LinkDirection::kUp ? "up/" : "down/") + node;
}

}  // namespace

nlohmann::json SealLink(const crypto::DataKey& key, const std::string& node, LinkDirection d,
                        const nlohmann::json& body) {
  const std::string text = body.dump();
  const std::string aad = Aad(node, d);
  return {
      {"node", node},
      {"sealed", crypto::ToBase64(crypto::Seal(key, crypto::AsBytes(text), crypto::AsBytes(aad)))}};
}

nlohmann::json OpenLink(const crypto::DataKey& key, const std::string& node, LinkDirection d,
                        const nlohmann::json& envelope) {
  if (!envelope.is_object() || !envelope.contains("sealed") || !envelope["sealed"].is_string())
    throw Error(ErrorCode::kInvalidArgument, "缺少 sealed / missing sealed");
  const crypto::Bytes sealed = crypto::FromBase64(envelope["sealed"].get<std::string>());
  const std::string aad = Aad(node, d);
  const crypto::Bytes plain = crypto::Open(key, sealed, crypto::AsBytes(aad));
  auto j = nlohmann::json::parse(plain.begin(), plain.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(ErrorCode::kInvalidArgument,
                "链路内容不是 JSON 对象 / link body is no JSON object");
  return j;
}

}  // namespace anju::server::platform
