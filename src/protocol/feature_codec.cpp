#include "protocol/feature_codec.h"

#include <cmath>
#include <cstring>

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

std::vector<float> DecodePlainFeature(std::string_view base64, size_t dim) {
  crypto::Bytes raw;
  try {
    raw = crypto::FromBase64(base64);
  } catch (const Error&) {
    throw Error(ErrorCode::kInvalidArgument, "feature 不是 base64 / bad base64");
  }
  if (raw.size() != dim * sizeof(float))
    throw Error(ErrorCode::kInvalidArgument, "feature 须为 " + std::to_string(dim) +
                                                 " 个 float32 / feature must hold " +
                                                 std::to_string(dim) + " float32 values");
  std::vector<float> f(dim);
  std::memcpy(f.data(), raw.data(), raw.size());
  double norm = 0;
  for (float v : f) norm += double(v) * v;
  if (!(std::abs(norm - 1.0) < 0.01))
    throw Error(ErrorCode::kInvalidArgument, "feature 未归一化 / feature is not L2-normalised");
  return f;
}

}  // namespace anju::protocol
