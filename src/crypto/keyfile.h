// Key files: a 32-byte data key stored wrapped by a master key, plus raw master-key files.
//
// Wrapped key file (JSON, UTF-8, written with mode 0600 via temp file + rename):
//
//   {
//     "format": "anju-keyfile",
//     "version": 1,
//     "key_id": "<16 hex>",          DataKey::id() of the wrapped data key
//     "wrap": "sm4-ctr-hmac-sm3"     wrapped by a symmetric master DataKey, or
//           | "sm2",                 wrapped by an SM2 public key
//     "master_id": "<16 hex>",       DataKey::id() of the master key, or
//                                    Sm2Key::Fingerprint() of the SM2 key
//     "created": "2025-01-31T08:00:00Z",
//     "wrapped": "<hex>"             "sm4-ctr-hmac-sm3": Seal(master, data key,
//                                        aad = "anju-keyfile/v1/" + key_id)
//                                    "sm2": Sm2Key::Encrypt(data key)
//   }
//
// Loading checks, in order: the file is a regular file with no group/other permission bits
// (else Error(kCrypto) telling you to chmod 600); the JSON is well-formed (else kCorrupt);
// master_id matches the given master key (else kCrypto "wrong master key"); the unwrap
// authenticates (else kCrypto); the unwrapped key's id equals key_id (else kCrypto).
// Rotating the master key = LoadKeyFile with the old master + WriteKeyFile with the new;
// the data key and its key_id stay the same, so data sealed with it stays readable.
//
// Raw key file (for a master key kept on disk): 64 hex digits and a newline, mode 0600,
// same permission check on load.
#pragma once

#include <filesystem>
#include <string>

#include "crypto/envelope.h"
#include "crypto/sm2.h"

namespace anju::crypto {

struct KeyFileInfo {
  std::string key_id;     // id of the wrapped data key
  std::string wrap;       // "sm4-ctr-hmac-sm3" or "sm2"
  std::string master_id;  // id / fingerprint of the wrapping key
  std::string created;    // ISO 8601 UTC
};

// Write `data_key` wrapped by `master` (or by the SM2 public key `master`) to `path`,
// atomically and with mode 0600. Throws Error(kIo) when the file system refuses.
void WriteKeyFile(const std::filesystem::path& path, const DataKey& data_key,
                  const DataKey& master);
void WriteKeyFile(const std::filesystem::path& path, const DataKey& data_key, const Sm2Key& master);

// Load and unwrap. `master` must be the symmetric master key, or the SM2 private key,
// matching the file's "wrap". See the header comment for the checks and error codes.
DataKey LoadKeyFile(const std::filesystem::path& path, const DataKey& master);
DataKey LoadKeyFile(const std::filesystem::path& path, const Sm2Key& master);

// The file's metadata without unwrapping (still checks permissions and format).
KeyFileInfo ReadKeyFileInfo(const std::filesystem::path& path);

// Raw key files: 32 bytes as hex.
void WriteRawKeyFile(const std::filesystem::path& path, const DataKey& key);
DataKey LoadRawKeyFile(const std::filesystem::path& path);

// Write `contents` to `path` atomically (temp file in the same directory, fsync, rename)
// with mode 0600 regardless of umask. Throws Error(kIo).
void WriteSecretFile(const std::filesystem::path& path, std::string_view contents);
// Read a file that must be private to its owner: throws Error(kCrypto) when it has any
// group/other permission bits or is not a regular file, Error(kNotFound)/kIo otherwise.
std::string ReadSecretFile(const std::filesystem::path& path);

}  // namespace anju::crypto
