// Symmetric data keys and sealed blobs: SM4-CTR encryption + HMAC-SM3 (encrypt-then-MAC).
//
// Sealed blob format, version 1 (all integers big-endian):
//
//   offset  size  field
//   0       4     magic "ANJE"
//   4       1     version = 0x01
//   5       1     algorithm = 0x01 (SM4-CTR, HMAC-SM3)
//   6       8     key id: first 8 bytes of HMAC-SM3(data key, "anju/key-id/v1")
//   14      16    IV: fresh random initial counter block for SM4-CTR
//   30      n     ciphertext: SM4-CTR(enc_key, IV, plaintext), n = plaintext length
//   30+n    32    tag: HMAC-SM3(mac_key, bytes[0..30) || u64(len(aad)) || aad || ciphertext)
//
// The 32-byte data key is never used directly: enc_key (16 bytes) and mac_key (32 bytes)
// are derived from it with DeriveKey (HKDF-Expand/HMAC-SM3) under the labels
// "anju/envelope/v1/sm4-ctr" and "anju/envelope/v1/hmac-sm3". The optional associated
// data (AAD) is authenticated but not stored: pass the same bytes (e.g. a record id) to
// Open() or it fails. Open() checks the tag in constant time before decrypting anything;
// every failure throws Error(kCrypto) and no plaintext is ever returned.
#pragma once

#include <array>
#include <string>

#include "crypto/bytes.h"

namespace anju::crypto {

// A 32-byte symmetric key with its derived subkeys and key id. Secrets are wiped on
// destruction. Copyable (copies are wiped too).
class DataKey {
 public:
  static constexpr std::size_t kSize = 32;
  static constexpr std::size_t kIdSize = 8;

  // A fresh random key.
  static DataKey Generate();
  // Wraps existing key material; throws Error(kInvalidArgument) unless exactly 32 bytes.
  static DataKey FromBytes(ByteView key);
  static DataKey FromHex(std::string_view hex);

  DataKey(const DataKey&) = default;
  DataKey& operator=(const DataKey&) = default;
  ~DataKey();

  ByteView bytes() const { return key_; }
  // Public fingerprint of the key: 16 lower-case hex digits, stable across runs.
  std::string id() const { return ToHex(id_); }
  ByteView id_bytes() const { return id_; }

  // Subkeys (used by the envelope; exposed for other encrypt-then-MAC layouts).
  ByteView enc_key() const { return enc_; }
  ByteView mac_key() const { return mac_; }

 private:
  explicit DataKey(ByteView key);
  std::array<std::uint8_t, kSize> key_{};
  std::array<std::uint8_t, 16> enc_{};
  std::array<std::uint8_t, 32> mac_{};
  std::array<std::uint8_t, kIdSize> id_{};
};

inline constexpr std::size_t kSealHeaderSize = 30;
inline constexpr std::size_t kSealTagSize = 32;
inline constexpr std::size_t kSealOverhead = kSealHeaderSize + kSealTagSize;

// Encrypts and authenticates `plaintext`, binding `aad` (may be empty) into the tag.
// Output is plaintext.size() + kSealOverhead bytes.
Bytes Seal(const DataKey& key, ByteView plaintext, ByteView aad = {});

// Verifies and decrypts. Throws Error(kCrypto) for a wrong key, a wrong AAD, or data that
// is truncated, tampered, or not a sealed blob.
Bytes Open(const DataKey& key, ByteView sealed, ByteView aad = {});

// The key id (16 hex digits) recorded in a sealed blob's header, so a caller holding
// several keys (rotation) can pick the right one. Not authenticated until Open().
// Throws Error(kCrypto) if `sealed` is not a version-1 sealed blob.
std::string SealedKeyId(ByteView sealed);

// True when `data` starts with the sealed-blob magic and version (cheap format sniff).
bool IsSealed(ByteView data);

}  // namespace anju::crypto
