#include "crypto/sm3.h"

#include <openssl/core_names.h>
#include <openssl/params.h>

#include <fstream>

#include "crypto/ossl.h"

namespace anju::crypto {

using detail::Check;

// ---- SM3 ----

Sm3Digest Sm3(ByteView data) {
  Sm3Digest out;
  unsigned int len = 0;
  Check(EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sm3(), nullptr),
        "SM3 digest failed", ErrorCode::kInternal);
  return out;
}

struct Sm3Hasher::Impl {
  detail::MdCtxPtr ctx{EVP_MD_CTX_new()};
  void Init() {
    if (!ctx) detail::Fail("out of memory", ErrorCode::kInternal);
    Check(EVP_DigestInit_ex(ctx.get(), EVP_sm3(), nullptr), "SM3 is unavailable",
          ErrorCode::kInternal);
  }
};

Sm3Hasher::Sm3Hasher() : impl_(std::make_unique<Impl>()) {
  impl_->Init();
}
Sm3Hasher::~Sm3Hasher() = default;
Sm3Hasher::Sm3Hasher(Sm3Hasher&&) noexcept = default;
Sm3Hasher& Sm3Hasher::operator=(Sm3Hasher&&) noexcept = default;

Sm3Hasher& Sm3Hasher::Update(ByteView data) {
  Check(EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()), "SM3 update failed",
        ErrorCode::kInternal);
  return *this;
}

Sm3Digest Sm3Hasher::Final() {
  Sm3Digest out;
  unsigned int len = 0;
  Check(EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len), "SM3 final failed",
        ErrorCode::kInternal);
  impl_->Init();
  return out;
}

std::string Sm3File(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kIo, "cannot read " + path.string());
  Sm3Hasher h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0)
      h.Update(std::string_view(buf.data(), static_cast<std::size_t>(in.gcount())));
  }
  if (in.bad()) throw Error(ErrorCode::kIo, "error reading " + path.string());
  return ToHex(h.Final());
}

// ---- HMAC-SM3 ----

struct HmacSm3Ctx::Impl {
  detail::MacCtxPtr ctx;
  bool finished = false;
};

HmacSm3Ctx::HmacSm3Ctx(ByteView key) : impl_(std::make_unique<Impl>()) {
  // Fetching is a provider lookup under a lock (≈100 µs); the fetched algorithm is
  // immutable and shared by every thread, so it is fetched once.
  static const detail::MacPtr mac(EVP_MAC_fetch(nullptr, OSSL_MAC_NAME_HMAC, nullptr));
  if (!mac) detail::Fail("HMAC is unavailable", ErrorCode::kInternal);
  impl_->ctx.reset(EVP_MAC_CTX_new(mac.get()));
  if (!impl_->ctx) detail::Fail("out of memory", ErrorCode::kInternal);
  char digest[] = "SM3";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end(),
  };
  // A zero-length key is legal HMAC; OpenSSL wants a non-null pointer for it.
  static const unsigned char kEmpty[1] = {0};
  Check(EVP_MAC_init(impl_->ctx.get(), key.empty() ? kEmpty : key.data(), key.size(), params),
        "HMAC-SM3 init failed", ErrorCode::kInternal);
}

HmacSm3Ctx::~HmacSm3Ctx() = default;
HmacSm3Ctx::HmacSm3Ctx(HmacSm3Ctx&&) noexcept = default;
HmacSm3Ctx& HmacSm3Ctx::operator=(HmacSm3Ctx&&) noexcept = default;

HmacSm3Ctx& HmacSm3Ctx::Update(ByteView data) {
  if (impl_->finished) throw Error(ErrorCode::kInternal, "HmacSm3Ctx used after Final()");
  Check(EVP_MAC_update(impl_->ctx.get(), data.data(), data.size()), "HMAC-SM3 update failed",
        ErrorCode::kInternal);
  return *this;
}

Sm3Digest HmacSm3Ctx::Final() {
  if (impl_->finished) throw Error(ErrorCode::kInternal, "HmacSm3Ctx::Final() called twice");
  impl_->finished = true;
  Sm3Digest out;
  std::size_t len = 0;
  Check(EVP_MAC_final(impl_->ctx.get(), out.data(), &len, out.size()), "HMAC-SM3 final failed",
        ErrorCode::kInternal);
  return out;
}

bool HmacSm3Ctx::Verify(ByteView tag) {
  Sm3Digest mac = Final();
  return ConstantTimeEqual(mac, tag);
}

Sm3Digest HmacSm3(ByteView key, ByteView data) {
  return HmacSm3Ctx(key).Update(data).Final();
}

// ---- KDF ----

Bytes DeriveKey(ByteView prk, std::string_view info, std::size_t length) {
  if (length > 255 * kSm3Size)
    throw Error(ErrorCode::kInvalidArgument, "DeriveKey: requested length too large");
  Bytes out;
  out.reserve(length);
  Sm3Digest t{};
  for (std::uint8_t i = 1; out.size() < length; ++i) {
    HmacSm3Ctx h(prk);
    if (i > 1) h.Update(ByteView(t));
    h.Update(info);
    h.Update(ByteView(&i, 1));
    t = h.Final();
    std::size_t take = std::min(kSm3Size, length - out.size());
    out.insert(out.end(), t.begin(), t.begin() + static_cast<std::ptrdiff_t>(take));
  }
  SecureZero(t);
  return out;
}

}  // namespace anju::crypto
