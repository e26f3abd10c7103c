// Feature codes received from the wire (protocol::OpenFeature: base64, sealed blob, then the
// feature encoding of store/), and the decoding of an authenticated but arbitrary payload
// (what a device holding its data key could send). Failures must be anju::Error.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "protocol/feature_codec.h"

using namespace anju;

namespace {
const crypto::DataKey& Key() {
  static const crypto::DataKey k =
      crypto::DataKey::FromHex("1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100");
  return k;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    protocol::OpenFeature(Key(), "P001", text);
  } catch (const Error&) {
  }
  // The same bytes sealed properly: exercises the decoder behind the authentication.
  const std::string person = "P001";
  const std::string sealed = crypto::ToBase64(crypto::Seal(
      Key(), crypto::ByteView(data, size), crypto::AsBytes("anju-feature/v1/" + person)));
  for (size_t dim : {size_t(0), size_t(4), size_t(512)}) {
    try {
      const auto f = protocol::OpenFeature(Key(), person, sealed, dim);
      if (dim && f.size() != dim) __builtin_trap();
    } catch (const Error&) {
    }
  }
  return 0;
}
