#include "protocol/feature_codec.h"

#include "core/error.h"
#include "crypto/bytes.h"
#include "store/gallery.h"

namespace anju::protocol {

namespace {
std::string FeatureAad(std::string_view person) {
  return "anju-feature/v1/" + std::string(person);
}
}  // namespace

std::string SealFeature(const crypto::DataKey& key, std::string_view person,
                        std::span<const float> feature) {
  return crypto::ToBase64(
      crypto::Seal(key, store::EncodeFeature(feature), crypto::AsBytes(FeatureAad(person))));
}

std::vector<float> OpenFeature(const crypto::DataKey& key, std::string_view person,
                               std::string_view sealed_base64, size_t dim) {
  const crypto::Bytes sealed = crypto::FromBase64(sealed_base64);
  const crypto::Bytes plain = crypto::Open(key, sealed, crypto::AsBytes(FeatureAad(person)));
  if (plain.size() != sizeof(float) + dim)
    throw Error(ErrorCode::kInvalidArgument, "feature code has " + std::to_string(plain.size()) +
                                                 " bytes, expected a feature of dimension " +
                                                 std::to_string(dim));
  return store::DecodeFeature(plain, dim);
}

}  // namespace anju::protocol
