#include "crypto/sm2.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <utility>

#include "crypto/ossl.h"
#include "crypto/sm3.h"

namespace anju::crypto {

using detail::BioPtr;
using detail::Check;
using detail::Fail;
using detail::MdCtxPtr;
using detail::PkeyCtxPtr;
using detail::PkeyPtr;

namespace {

BioPtr MemBio() {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) Fail("out of memory", ErrorCode::kInternal);
  return bio;
}

BioPtr ReadBio(std::string_view data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) Fail("out of memory", ErrorCode::kInternal);
  return bio;
}

std::string BioString(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<std::size_t>(n));
}

// Passphrase callback: never prompts on a terminal; an empty passphrase just fails.
int PassCallback(char* buf, int size, int /*rwflag*/, void* u) {
  auto* pass = static_cast<const std::string_view*>(u);
  if (pass == nullptr || pass->empty() || pass->size() > static_cast<std::size_t>(size)) return -1;
  std::memcpy(buf, pass->data(), pass->size());
  return static_cast<int>(pass->size());
}

void RequireSm2(EVP_PKEY* pkey) {
  if (!EVP_PKEY_is_a(pkey, "SM2")) {
    const char* name = EVP_PKEY_get0_type_name(pkey);
    throw Error(ErrorCode::kCrypto,
                std::string("not an SM2 key (key type ") + (name ? name : "unknown") + ")");
  }
}

}  // namespace

Sm2Key::Sm2Key(EVP_PKEY* pkey, bool has_private) : pkey_(pkey), has_private_(has_private) {}

Sm2Key::Sm2Key(const Sm2Key& o) : pkey_(o.pkey_), has_private_(o.has_private_) {
  if (pkey_) EVP_PKEY_up_ref(pkey_);
}

Sm2Key& Sm2Key::operator=(const Sm2Key& o) {
  if (this != &o) {
    if (o.pkey_) EVP_PKEY_up_ref(o.pkey_);
    EVP_PKEY_free(pkey_);
    pkey_ = o.pkey_;
    has_private_ = o.has_private_;
  }
  return *this;
}

Sm2Key::Sm2Key(Sm2Key&& o) noexcept
    : pkey_(std::exchange(o.pkey_, nullptr)), has_private_(o.has_private_) {}

Sm2Key& Sm2Key::operator=(Sm2Key&& o) noexcept {
  if (this != &o) {
    EVP_PKEY_free(pkey_);
    pkey_ = std::exchange(o.pkey_, nullptr);
    has_private_ = o.has_private_;
  }
  return *this;
}

Sm2Key::~Sm2Key() {
  EVP_PKEY_free(pkey_);
}

Sm2Key Sm2Key::Generate() {
  // OpenSSL 3: SM2 is its own key type (not an EC key with an alias as in 1.1.1).
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "SM2", nullptr));
  if (!ctx) Fail("SM2 is unavailable in this OpenSSL", ErrorCode::kInternal);
  Check(EVP_PKEY_keygen_init(ctx.get()), "SM2 keygen init failed", ErrorCode::kInternal);
  EVP_PKEY* pkey = nullptr;
  Check(EVP_PKEY_generate(ctx.get(), &pkey), "SM2 key generation failed", ErrorCode::kInternal);
  PkeyPtr owned(pkey);
  RequireSm2(pkey);
  return Sm2Key(owned.release(), true);
}

Sm2Key Sm2Key::FromPrivatePem(std::string_view pem, std::string_view passphrase) {
  BioPtr bio = ReadBio(pem);
  PkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassCallback, &passphrase));
  if (!pkey)
    Fail(passphrase.empty() ? "cannot read SM2 private key PEM (malformed, or encrypted and no "
                              "passphrase given)"
                            : "cannot read SM2 private key PEM (malformed or wrong passphrase)");
  RequireSm2(pkey.get());
  return Sm2Key(pkey.release(), true);
}

Sm2Key Sm2Key::FromPublicPem(std::string_view pem) {
  BioPtr bio = ReadBio(pem);
  PkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, PassCallback, nullptr));
  if (!pkey) Fail("cannot read SM2 public key PEM");
  RequireSm2(pkey.get());
  return Sm2Key(pkey.release(), false);
}

std::string Sm2Key::PrivatePem(std::string_view passphrase) const {
  if (!has_private_) throw Error(ErrorCode::kInvalidArgument, "SM2 key has no private part");
  BioPtr bio = MemBio();
  int rc;
  if (passphrase.empty()) {
    rc = PEM_write_bio_PrivateKey(bio.get(), pkey_, nullptr, nullptr, 0, nullptr, nullptr);
  } else {
    rc = PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey_, EVP_sm4_cbc(), passphrase.data(),
                                       static_cast<int>(passphrase.size()), nullptr, nullptr);
  }
  Check(rc, "cannot write SM2 private key PEM", ErrorCode::kInternal);
  return BioString(bio.get());
}

std::string Sm2Key::PublicPem() const {
  BioPtr bio = MemBio();
  Check(PEM_write_bio_PUBKEY(bio.get(), pkey_), "cannot write SM2 public key PEM",
        ErrorCode::kInternal);
  return BioString(bio.get());
}

Bytes Sm2Key::PublicDer() const {
  int n = i2d_PUBKEY(pkey_, nullptr);
  if (n <= 0) Fail("cannot encode SM2 public key", ErrorCode::kInternal);
  Bytes out(static_cast<std::size_t>(n));
  unsigned char* p = out.data();
  if (i2d_PUBKEY(pkey_, &p) != n) Fail("cannot encode SM2 public key", ErrorCode::kInternal);
  return out;
}

std::string Sm2Key::Fingerprint() const {
  Sm3Digest d = Sm3(PublicDer());
  return ToHex(ByteView(d).first(8));
}

Sm2Key Sm2Key::PublicOnly() const {
  Bytes der = PublicDer();
  const unsigned char* p = der.data();
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!pkey) Fail("cannot decode SM2 public key", ErrorCode::kInternal);
  RequireSm2(pkey.get());
  return Sm2Key(pkey.release(), false);
}

Bytes Sm2Key::Sign(ByteView message, std::string_view id) const {
  if (!has_private_) throw Error(ErrorCode::kInvalidArgument, "SM2 signing needs a private key");
  // The PKEY_CTX carries the distinguishing ID; it must outlive the MD_CTX that borrows it
  // (EVP_MD_CTX_set_pkey_ctx does not transfer ownership), hence the declaration order.
  PkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!pctx || !md) Fail("out of memory", ErrorCode::kInternal);
  Check(EVP_PKEY_CTX_set1_id(pctx.get(), id.data(), id.size()), "SM2: cannot set ID",
        ErrorCode::kInternal);
  EVP_MD_CTX_set_pkey_ctx(md.get(), pctx.get());
  Check(EVP_DigestSignInit(md.get(), nullptr, EVP_sm3(), nullptr, pkey_), "SM2 sign init failed",
        ErrorCode::kInternal);
  std::size_t len = 0;
  Check(EVP_DigestSign(md.get(), nullptr, &len, message.data(), message.size()), "SM2 sign failed",
        ErrorCode::kInternal);
  Bytes sig(len);
  Check(EVP_DigestSign(md.get(), sig.data(), &len, message.data(), message.size()),
        "SM2 sign failed", ErrorCode::kInternal);
  sig.resize(len);
  return sig;
}

bool Sm2Key::Verify(ByteView message, ByteView signature, std::string_view id) const {
  PkeyCtxPtr pctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
  MdCtxPtr md(EVP_MD_CTX_new());
  if (!pctx || !md) Fail("out of memory", ErrorCode::kInternal);
  Check(EVP_PKEY_CTX_set1_id(pctx.get(), id.data(), id.size()), "SM2: cannot set ID",
        ErrorCode::kInternal);
  EVP_MD_CTX_set_pkey_ctx(md.get(), pctx.get());
  Check(EVP_DigestVerifyInit(md.get(), nullptr, EVP_sm3(), nullptr, pkey_),
        "SM2 verify init failed", ErrorCode::kInternal);
  int rc = EVP_DigestVerify(md.get(), signature.data(), signature.size(), message.data(),
                            message.size());
  ERR_clear_error();  // a bad signature leaves reasons on the queue; they are not errors here
  return rc == 1;
}

Bytes Sm2Key::Encrypt(ByteView plaintext) const {
  if (plaintext.empty())
    throw Error(ErrorCode::kInvalidArgument, "SM2 cannot encrypt an empty message");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
  if (!ctx) Fail("out of memory", ErrorCode::kInternal);
  Check(EVP_PKEY_encrypt_init(ctx.get()), "SM2 encrypt init failed", ErrorCode::kInternal);
  std::size_t len = 0;
  Check(EVP_PKEY_encrypt(ctx.get(), nullptr, &len, plaintext.data(), plaintext.size()),
        "SM2 encrypt failed", ErrorCode::kInternal);
  Bytes out(len);
  Check(EVP_PKEY_encrypt(ctx.get(), out.data(), &len, plaintext.data(), plaintext.size()),
        "SM2 encrypt failed", ErrorCode::kInternal);
  out.resize(len);
  return out;
}

Bytes Sm2Key::Decrypt(ByteView ciphertext) const {
  if (!has_private_) throw Error(ErrorCode::kInvalidArgument, "SM2 decryption needs a private key");
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey_, nullptr));
  if (!ctx) Fail("out of memory", ErrorCode::kInternal);
  Check(EVP_PKEY_decrypt_init(ctx.get()), "SM2 decrypt init failed", ErrorCode::kInternal);
  std::size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, ciphertext.data(), ciphertext.size()) != 1)
    Fail("SM2 decryption failed: malformed ciphertext");
  Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, ciphertext.data(), ciphertext.size()) != 1) {
    SecureZero(out);
    Fail("SM2 decryption failed: wrong key or damaged ciphertext");
  }
  out.resize(len);
  return out;
}

}  // namespace anju::crypto
