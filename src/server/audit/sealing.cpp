#include "server/audit/sealing.h"

#include <cstring>

#include "core/error.h"

namespace anju::server {

namespace {
crypto::Bytes Aad(const std::string& label, const std::string& owner) {
  return crypto::ToBytes(label + owner);
}
}  // namespace

crypto::Bytes SealIdNumber(const crypto::DataKey& key, const std::string& code,
                           const std::string& id_number) {
  return crypto::Seal(key, crypto::AsBytes(id_number), Aad("anju-id-number/v1/", code));
}

std::string OpenIdNumber(const crypto::DataKey& key, const std::string& code,
                         crypto::ByteView sealed) {
  const crypto::Bytes plain = crypto::Open(key, sealed, Aad("anju-id-number/v1/", code));
  return std::string(plain.begin(), plain.end());
}

crypto::Bytes SealFeatureAtRest(const crypto::DataKey& key, const std::string& code,
                                std::span<const float> feature) {
  crypto::ByteView raw(reinterpret_cast<const uint8_t*>(feature.data()), feature.size_bytes());
  return crypto::Seal(key, raw, Aad("anju-archive-feature/v1/", code));
}

std::vector<float> OpenFeatureAtRest(const crypto::DataKey& key, const std::string& code,
                                     crypto::ByteView sealed) {
  crypto::Bytes plain = crypto::Open(key, sealed, Aad("anju-archive-feature/v1/", code));
  if (plain.size() % sizeof(float) != 0)
    throw Error(ErrorCode::kCorrupt, "stored feature of " + code + " has a bad size");
  std::vector<float> f(plain.size() / sizeof(float));
  std::memcpy(f.data(), plain.data(), plain.size());
  return f;
}

crypto::Bytes SealDeviceKey(const crypto::DataKey& key, const std::string& device_id,
                            const crypto::DataKey& device_key) {
  return crypto::Seal(key, device_key.bytes(), Aad("anju-device-key/v1/", device_id));
}

crypto::DataKey OpenDeviceKey(const crypto::DataKey& key, const std::string& device_id,
                              crypto::ByteView sealed) {
  crypto::Bytes plain = crypto::Open(key, sealed, Aad("anju-device-key/v1/", device_id));
  crypto::DataKey k = crypto::DataKey::FromBytes(plain);
  crypto::SecureZero(plain);
  return k;
}

crypto::Bytes SealPhoto(const crypto::DataKey& key, const std::string& name,
                        crypto::ByteView jpeg) {
  return crypto::Seal(key, jpeg, Aad("anju-photo/v1/", name));
}

crypto::Bytes OpenPhoto(const crypto::DataKey& key, const std::string& name,
                        crypto::ByteView sealed) {
  return crypto::Open(key, sealed, Aad("anju-photo/v1/", name));
}

}  // namespace anju::server
