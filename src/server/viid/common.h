// What the snapshot service's files share (docs/viid.md): the clock, the associated data
// binding each sealed blob to its record, feature bytes, durable files and GA/T 1400 status
// answers.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "server/viid/viid_types.h"

namespace anju::server::cameras {

int64_t NowMs();

// Associated data of a camera's sealed digest HA1, a capture's image N, clip frame N and
// feature.
std::string DeviceAad(const std::string& id);
std::string ImageAad(const std::string& id, int n);
std::string ClipAad(const std::string& id, int n);
std::string FeatureAad(const std::string& id);

std::vector<uint8_t> FeatureBytes(std::span<const float> f);
std::vector<float> BytesFeature(const std::vector<uint8_t>& b);

// A GA/T 1400 ResponseStatusObject answering with OUTCOME.
ViidAnswer StatusAnswer(ViidAnswer::Outcome outcome, const std::string& url, int code,
                        const std::string& text, const std::string& id);

}  // namespace anju::server::cameras
