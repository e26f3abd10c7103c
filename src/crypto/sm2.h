// SM2 (GB/T 32918) public-key cryptography on the sm2p256v1 curve: key generation,
// PEM import/export, signatures with SM3 and a distinguishing ID, and public-key
// encryption (used to wrap data keys).
//
// Formats: private keys are PKCS#8 PEM ("BEGIN PRIVATE KEY", or "BEGIN ENCRYPTED PRIVATE
// KEY" with a passphrase: PBES2/PBKDF2 with SM4-CBC); public keys are SubjectPublicKeyInfo
// PEM ("BEGIN PUBLIC KEY"). Both are what `openssl genpkey -algorithm SM2` produces and
// reads. Signatures are DER SEQUENCE{r, s} over SM3(Z_A || M), Z_A computed from the ID
// (default "1234567812345678", GM/T 0009); interoperable with
// `openssl dgst -sm3 -sigopt distid:1234567812345678`. Ciphertexts are the GM/T 0009
// ASN.1 form SEQUENCE{C1.x, C1.y, C3 (SM3), C2}, about 97-107 bytes + plaintext length.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "crypto/bytes.h"

struct evp_pkey_st;

namespace anju::crypto {

// The default SM2 user distinguishing ID (GB/T 35276 / GM/T 0009).
inline constexpr std::string_view kSm2DefaultId = "1234567812345678";

// An SM2 key pair, or a public key alone. Immutable once made; copies share the
// underlying EVP_PKEY (reference counted), so copying is cheap and thread-safe.
class Sm2Key {
 public:
  // A fresh key pair.
  static Sm2Key Generate();
  // Parse PEM. Throws Error(kCrypto) if the PEM is malformed, the passphrase is wrong, or
  // the key is not an SM2 key (e.g. a NIST P-256 or RSA key).
  static Sm2Key FromPrivatePem(std::string_view pem, std::string_view passphrase = {});
  static Sm2Key FromPublicPem(std::string_view pem);

  Sm2Key(const Sm2Key&);
  Sm2Key& operator=(const Sm2Key&);
  Sm2Key(Sm2Key&&) noexcept;
  Sm2Key& operator=(Sm2Key&&) noexcept;
  ~Sm2Key();

  bool has_private() const { return has_private_; }

  // PKCS#8 PEM of the private key, encrypted with SM4-CBC when `passphrase` is non-empty.
  // Throws Error(kInvalidArgument) for a public-only key.
  std::string PrivatePem(std::string_view passphrase = {}) const;
  std::string PublicPem() const;
  // SubjectPublicKeyInfo DER of the public key.
  Bytes PublicDer() const;
  // 16 hex digits: the first 8 bytes of SM3(PublicDer()). Names the key in files/logs.
  std::string Fingerprint() const;
  // A public-only copy of this key.
  Sm2Key PublicOnly() const;

  // SM2 signature (DER) over `message` with SM3 and the distinguishing `id`. Needs the
  // private key. Signatures are randomised: signing twice gives different bytes.
  Bytes Sign(ByteView message, std::string_view id = kSm2DefaultId) const;
  Bytes Sign(std::string_view message, std::string_view id = kSm2DefaultId) const {
    return Sign(AsBytes(message), id);
  }
  // True only for a valid signature by this key over `message` with the same id.
  // Malformed signatures give false, never an exception.
  bool Verify(ByteView message, ByteView signature, std::string_view id = kSm2DefaultId) const;
  bool Verify(std::string_view message, ByteView signature,
              std::string_view id = kSm2DefaultId) const {
    return Verify(AsBytes(message), signature, id);
  }

  // SM2 public-key encryption (anyone with the public key) / decryption (private key).
  // Decrypt throws Error(kCrypto) for a wrong key or a damaged ciphertext.
  Bytes Encrypt(ByteView plaintext) const;
  Bytes Decrypt(ByteView ciphertext) const;

  // The underlying OpenSSL key (still owned by this object), for other OpenSSL calls.
  evp_pkey_st* native() const { return pkey_; }

 private:
  Sm2Key(evp_pkey_st* pkey, bool has_private);  // takes ownership
  evp_pkey_st* pkey_ = nullptr;
  bool has_private_ = false;
};

}  // namespace anju::crypto
