// Offline gallery packages (terminal/gallery_package.h), the file a USB stick brings to a
// terminal. The first byte picks what the rest is:
//   0  the whole file, as found on the stick: PeekPackage and ReadPackage must refuse it with
//      anju::Error (nothing forged verifies);
//   1  the payload JSON, wrapped by this target in a correctly sealed and signed package with
//      a valid header: exercises the content checks behind the signature;
//   2  the header line, signed with the payload of a valid package: the header fields as
//      read after the signature (types, sizes).
// Reading and the person rules of what was read (ParseRules, as an import applies them)
// must end in success or anju::Error.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/sm2.h"
#include "protocol/feature_codec.h"
#include "terminal/gallery_package.h"
#include "terminal/person_rules.h"

using namespace anju;

namespace {

const crypto::DataKey& Key() {
  static const crypto::DataKey k =
      crypto::DataKey::FromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  return k;
}
const crypto::Sm2Key& Signer() {
  static const crypto::Sm2Key k = crypto::Sm2Key::Generate();
  return k;
}

// The package file lives in memory; ReadPackage opens it by path.
const std::string& PackagePath() {
  static const std::string path = [] {
    const int fd = memfd_create("anju-package", 0);
    if (fd < 0) __builtin_trap();
    return "/proc/self/fd/" + std::to_string(fd);
  }();
  return path;
}
void WritePackage(const std::string& bytes) {
  const int fd = std::stoi(PackagePath().substr(14));
  if (ftruncate(fd, 0) != 0) __builtin_trap();
  if (pwrite(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
    __builtin_trap();
}

std::string ValidHeader() {
  return nlohmann::json{{"format", "anju-gallery-package"},
                        {"version", 1},
                        {"model_version", "fuzz@1"},
                        {"dim", 4},
                        {"created_ms", 1},
                        {"gallery_version", 1},
                        {"persons", 1},
                        {"templates", 1},
                        {"key_id", Key().id()},
                        {"signer", Signer().Fingerprint()}}
      .dump();
}

std::string Build(const std::string& header_line, const std::string& plain) {
  const crypto::Bytes sealed =
      crypto::Seal(Key(), crypto::AsBytes(plain), crypto::AsBytes(header_line));
  const std::string payload(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  const std::string magic = std::string(terminal::kPackageMagic) + "\n";
  const crypto::Bytes sig = Signer().Sign(magic + header_line + "\n" + payload);
  return magic + header_line + "\n" + crypto::ToBase64(sig) + "\n" + payload;
}

void Read() {
  try {
    terminal::PeekPackage(PackagePath());
  } catch (const Error&) {
  }
  try {
    const auto pkg = terminal::ReadPackage(PackagePath(), Key(), Signer().PublicOnly());
    for (const auto& p : pkg.persons) {
      for (const auto& t : p.templates)
        if (t.size() != pkg.info.dim) __builtin_trap();
      terminal::ParseRules(p.person, p.display_name, p.rules);
    }
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 3) {
    case 0:
      WritePackage(rest);
      try {
        terminal::ReadPackage(PackagePath(), Key(), Signer().PublicOnly());
        __builtin_trap();  // a file made without the signing key verified
      } catch (const Error&) {
      }
      try {
        terminal::PeekPackage(PackagePath());
      } catch (const Error&) {
      }
      return 0;
    case 1:
      WritePackage(Build(ValidHeader(), rest));
      break;
    case 2: {
      if (rest.find('\n') != std::string::npos) return 0;  // one line by construction
      const std::string person =
          std::string(
              "{\"persons\":[{\"person\":\"P1\",\"display_name\":\"x\",\"rules\":null,"
              "\"templates\":[\"") +
          protocol::SealFeature(Key(), "P1", std::vector<float>{0.5f, 0.5f, 0.5f, 0.5f}) + "\"]}]}";
      WritePackage(Build(rest, person));
      break;
    }
  }
  Read();
  return 0;
}
