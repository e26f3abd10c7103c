// GA/T 1400 (VIID) intake from snapshot cameras (protocol/viid.h): FaceListObject uploads,
// Register / Keepalive objects, ResponseStatus, the HTTP Digest headers and the time format.
// The first byte picks the parser. Failures must be anju::Error(kInvalidArgument).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "protocol/viid.h"

using namespace anju;
namespace viid = anju::protocol::viid;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (data[0] % 8) {
      case 0: {
        const auto parsed = viid::ParseFaceList(in);
        viid::ToJson(parsed.list).dump();
        break;
      }
      case 1:
        viid::ParseSystemObject(in, viid::SystemObject::kRegister);
        break;
      case 2:
        viid::ParseSystemObject(in, viid::SystemObject::kKeepalive);
        break;
      case 3:
        viid::ToJson(viid::ParseResponseStatus(in)).dump();
        break;
      case 4: {
        const auto c = viid::ParseChallenge(in);
        viid::FormatChallenge(c);
        break;
      }
      case 5: {
        const auto c = viid::ParseAuthorization(in);
        // What we format must parse back to the same credentials.
        const auto again = viid::ParseAuthorization(viid::FormatAuthorization(c));
        if (again.username != c.username || again.uri != c.uri || again.nonce != c.nonce)
          __builtin_trap();
        viid::VerifyDigest(c, viid::DigestHa1("cam", "anju", "secret"), "GET");
        break;
      }
      case 6:
        viid::ParseTime(in);
        break;
      case 7:
        viid::ValidId(in);
        break;
    }
  } catch (const Error&) {
  }
  return 0;
}
