// The link between two levels of the platform (docs/platform.md): every push and every
// answer is sealed with the link's own key (SM4-CTR + HMAC-SM3, crypto/envelope.h) on top of
// TLS, bound to the node and the direction, so that a record is readable and writable only
// by the two ends of its link (R4.1.2.2).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "crypto/envelope.h"

namespace anju::server::platform {

enum class LinkDirection { kUp, kDown };

// {"node": NODE, "sealed": base64} for BODY.
nlohmann::json SealLink(const crypto::DataKey& key, const std::string& node, LinkDirection d,
                        const nlohmann::json& body);
// The body of ENVELOPE; Error(kCrypto) when it was not sealed with KEY for NODE and D,
// Error(kInvalidArgument) when it is no such envelope.
nlohmann::json OpenLink(const crypto::DataKey& key, const std::string& node, LinkDirection d,
                        const nlohmann::json& envelope);

}  // namespace anju::server::platform
