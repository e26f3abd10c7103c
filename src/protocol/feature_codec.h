// Feature codes in transit (docs/device-protocol.md, "Gallery sync"): sealed with the
// device data key (SM4-CTR + HMAC-SM3) and bound to the identity code, so a template is
// unreadable on the wire and cannot be moved to another person.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/envelope.h"

namespace anju::protocol {

// base64(Seal(key, store::EncodeFeature(feature), aad = "anju-feature/v1/" + person)).
std::string SealFeature(const crypto::DataKey& key, std::string_view person,
                        std::span<const float> feature);
// The inverse. Throws Error(kCrypto) for a wrong key, person or tampered data and
// Error(kInvalidArgument) for bad base64 or a size that is not DIM.
std::vector<float> OpenFeature(const crypto::DataKey& key, std::string_view person,
                               std::string_view sealed_base64, size_t dim = 512);

// An unsealed feature as the admin API takes it (feature import, bulk person import):
// base64 of DIM little-endian float32 values, L2-normalised. Error(kInvalidArgument) with a
// message saying which of the three it is not.
std::vector<float> DecodePlainFeature(std::string_view base64, size_t dim);

}  // namespace anju::protocol
