// Gallery packages for offline terminals ("Offline / removable-storage
// operation"): a terminal's whole gallery (identity codes, feature codes, rules) in one
// file for a USB stick, SM4-encrypted with a package key and SM2-signed by the issuer.
// Format (docs/terminal.md, "Gallery package"):
//
//   "ANJU-GALLERY-PACKAGE/1\n"
//   <header: one line of JSON>\n        format, version, model_version, dim, created_ms,
//                                       gallery_version, persons, templates, key_id, signer
//   <signature: base64>\n               SM2/SM3 over magic + header line + "\n" + payload
//   <payload: sealed blob>              crypto::Seal(package key, JSON, aad = header line)
//
// The payload JSON: {"persons": [{"person", "display_name", "rules",
// "templates": [base64 of Seal(package key, feature, aad = "anju-feature/v1/" + person)]}]}
// — every feature is re-sealed under the package key, so the gallery's local key never
// leaves the terminal. Reading checks, in order: magic and version, the signature (with
// the trusted public key), the package key id, the payload's seal, the model version.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/sm2.h"
#include "terminal/local_state.h"

namespace anju::terminal {

inline constexpr const char* kPackageMagic = "ANJU-GALLERY-PACKAGE/1";
// The largest feature dimension a package header may name (embedders give 512).
inline constexpr int64_t kMaxPackageDim = 65'536;

struct PackageInfo {
  int version = 1;
  std::string model_version;
  size_t dim = 512;
  int64_t created_ms = 0;
  int64_t gallery_version = 0;  // of the exporting terminal
  size_t persons = 0, templates = 0;
  std::string key_id;  // crypto::DataKey::id() of the package key
  std::string signer;  // crypto::Sm2Key::Fingerprint() of the signing key
};

struct GalleryPackage {
  PackageInfo info;
  std::vector<GalleryChange> persons;  // upserts, features decrypted
};

// Writes STATE's gallery to OUT (atomically: temp file + rename).
PackageInfo ExportPackage(const LocalState& state, const std::filesystem::path& out,
                          const crypto::DataKey& package_key, const crypto::Sm2Key& sign_key);

// The header as written, NOT verified (to pick the model version of a new data dir).
// Throws Error(kInvalidArgument) when FILE is not a package of a known version.
PackageInfo PeekPackage(const std::filesystem::path& file);

// Reads and verifies FILE. Throws Error(kCrypto) for a bad signature, a package sealed
// with another key or a damaged payload, Error(kInvalidArgument) for a file that is not
// a package or of another format version, Error(kNotFound) when it cannot be read.
GalleryPackage ReadPackage(const std::filesystem::path& file, const crypto::DataKey& package_key,
                           const crypto::Sm2Key& trusted_signer);

// ReadPackage + a whole-gallery replacement applied atomically (LocalState::ReplaceAll).
// Throws Error(kInvalidArgument) when the package's model version is not STATE's.
PackageInfo ImportPackage(LocalState& state, const std::filesystem::path& file,
                          const crypto::DataKey& package_key, const crypto::Sm2Key& trusted_signer);

}  // namespace anju::terminal
