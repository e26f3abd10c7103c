// JSON from peers (devices, cameras, the server's answers, gallery packages) parsed with
// limits, in one pass: nesting depth, total size, the length of any string or key, and
// the number of items in any array or members in any object. A document beyond a limit is
// refused with Error(kInvalidArgument) naming the limit, before it is stored anywhere or
// walked recursively (dump(), reports): one event nested 2,001 levels deep must never
// reach a table that every report reads (docs/device-protocol.md, "Limits").
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string_view>

namespace anju::protocol {

struct JsonLimits {
  size_t max_bytes = 16u << 20;        // the whole text
  int max_depth = 64;                  // nested objects / arrays; a scalar document is depth 0
  size_t max_string_bytes = 8u << 20;  // one string value (snapshots travel as base64)
  size_t max_key_bytes = 256;          // one object key
  size_t max_items = 100'000;          // elements of one array, members of one object

  // What the device protocol and GA/T 1400 intake accept (request bodies of at most
  // 16 MiB): deep enough for every documented shape (≤ 6 levels) with a wide margin.
  static JsonLimits Peer() { return {}; }
};

// Parses TEXT under LIMITS. Throws Error(kInvalidArgument) for malformed JSON or a limit
// exceeded ("JSON 嵌套超过 64 层 / JSON nested deeper than 64 levels"); never throws
// anything else and never recurses on the input's structure.
nlohmann::json ParseJson(std::string_view text, const JsonLimits& limits = JsonLimits::Peer());

}  // namespace anju::protocol
