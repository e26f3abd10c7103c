// What the archive seals with the server data key, and the associated data that binds
// each sealed value to its owner (a value copied to another row no longer opens).
#pragma once

#include <span>
#include <string>
#include <vector>

#include "crypto/envelope.h"

namespace anju::server {

crypto::Bytes SealIdNumber(const crypto::DataKey& key, const std::string& person_code,
                           const std::string& id_number);
std::string OpenIdNumber(const crypto::DataKey& key, const std::string& person_code,
                         crypto::ByteView sealed);

// Feature codes at rest: the raw float32 values (no quantisation on the server).
crypto::Bytes SealFeatureAtRest(const crypto::DataKey& key, const std::string& person_code,
                                std::span<const float> feature);
std::vector<float> OpenFeatureAtRest(const crypto::DataKey& key, const std::string& person_code,
                                     crypto::ByteView sealed);

crypto::Bytes SealDeviceKey(const crypto::DataKey& key, const std::string& device_id,
                            const crypto::DataKey& device_key);
crypto::DataKey OpenDeviceKey(const crypto::DataKey& key, const std::string& device_id,
                              crypto::ByteView sealed);

// Enrolment photos on disk: Seal(key, jpeg, aad = "anju-photo/v1/" + file name).
crypto::Bytes SealPhoto(const crypto::DataKey& key, const std::string& file_name,
                        crypto::ByteView jpeg);
crypto::Bytes OpenPhoto(const crypto::DataKey& key, const std::string& file_name,
                        crypto::ByteView sealed);

}  // namespace anju::server
