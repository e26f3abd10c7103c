#include "crypto/envelope.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "crypto/ossl.h"
#include "crypto/sm3.h"

namespace anju::crypto {

namespace {

constexpr std::uint8_t kMagic[4] = {'A', 'N', 'J', 'E'};
constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kAlgSm4CtrHmacSm3 = 1;
constexpr std::size_t kIvOffset = 14;
constexpr std::size_t kIvSize = 16;

void CopyInto(std::span<std::uint8_t> dst, ByteView src) {
  std::copy(src.begin(), src.end(), dst.begin());
}

// SM4-CTR is its own inverse: out = in XOR keystream(key, iv).
void Sm4Ctr(ByteView key, ByteView iv, ByteView in, std::uint8_t* out) {
  detail::CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) detail::Fail("out of memory", ErrorCode::kInternal);
  detail::Check(EVP_EncryptInit_ex(ctx.get(), EVP_sm4_ctr(), nullptr, key.data(), iv.data()),
                "SM4-CTR init failed", ErrorCode::kInternal);
  std::size_t done = 0;
  while (done < in.size()) {
    int chunk = static_cast<int>(std::min<std::size_t>(in.size() - done, INT_MAX / 2));
    int outl = 0;
    detail::Check(EVP_EncryptUpdate(ctx.get(), out + done, &outl, in.data() + done, chunk),
                  "SM4-CTR failed", ErrorCode::kInternal);
    done += static_cast<std::size_t>(chunk);
  }
  int finl = 0;
  std::uint8_t tail[16];  // CTR is a stream mode: Final produces nothing
  detail::Check(EVP_EncryptFinal_ex(ctx.get(), tail, &finl), "SM4-CTR final failed",
                ErrorCode::kInternal);
}

Sm3Digest Tag(const DataKey& key, ByteView header, ByteView aad, ByteView ciphertext) {
  std::uint8_t aad_len[8];
  std::uint64_t n = aad.size();
  for (int i = 7; i >= 0; --i, n >>= 8) aad_len[i] = static_cast<std::uint8_t>(n & 0xff);
  HmacSm3Ctx mac(key.mac_key());
  mac.Update(header).Update(ByteView(aad_len, 8)).Update(aad).Update(ciphertext);
  return mac.Final();
}

void CheckHeader(ByteView sealed) {
  if (sealed.size() < 6 || !std::equal(kMagic, kMagic + 4, sealed.begin()))
    throw Error(ErrorCode::kCrypto, "not an anju sealed blob (bad magic)");
  if (sealed[4] != kVersion)
    throw Error(ErrorCode::kCrypto, "unsupported sealed blob version " + std::to_string(sealed[4]));
  if (sealed[5] != kAlgSm4CtrHmacSm3)
    throw Error(ErrorCode::kCrypto,
                "unsupported sealed blob algorithm " + std::to_string(sealed[5]));
  if (sealed.size() < kSealOverhead)
    throw Error(ErrorCode::kCrypto, "sealed blob is truncated (" + std::to_string(sealed.size()) +
                                        " bytes, at least " + std::to_string(kSealOverhead) +
                                        " expected)");
}

}  // namespace

// ---- DataKey ----

DataKey::DataKey(ByteView key) {
  if (key.size() != kSize)
    throw Error(ErrorCode::kInvalidArgument,
                "a data key must be exactly 32 bytes, got " + std::to_string(key.size()));
  CopyInto(key_, key);
  Bytes enc = DeriveKey(key_, "anju/envelope/v1/sm4-ctr", enc_.size());
  Bytes mac = DeriveKey(key_, "anju/envelope/v1/hmac-sm3", mac_.size());
  CopyInto(enc_, enc);
  CopyInto(mac_, mac);
  SecureZero(enc);
  SecureZero(mac);
  Sm3Digest id = HmacSm3(key_, std::string_view("anju/key-id/v1"));
  std::copy_n(id.begin(), kIdSize, id_.begin());
}

DataKey::~DataKey() {
  SecureZero(key_);
  SecureZero(enc_);
  SecureZero(mac_);
}

DataKey DataKey::Generate() {
  Bytes k = RandomBytes(kSize);
  DataKey key(k);
  SecureZero(k);
  return key;
}

DataKey DataKey::FromBytes(ByteView key) {
  return DataKey(key);
}

DataKey DataKey::FromHex(std::string_view hex) {
  Bytes k = crypto::FromHex(hex);
  try {
    DataKey key(k);
    SecureZero(k);
    return key;
  } catch (...) {
    SecureZero(k);
    throw;
  }
}

// ---- Seal / Open ----

Bytes Seal(const DataKey& key, ByteView plaintext, ByteView aad) {
  Bytes out(kSealOverhead + plaintext.size());
  std::uint8_t* p = out.data();
  std::memcpy(p, kMagic, 4);
  p[4] = kVersion;
  p[5] = kAlgSm4CtrHmacSm3;
  std::copy(key.id_bytes().begin(), key.id_bytes().end(), p + 6);
  RandomFill(std::span<std::uint8_t>(p + kIvOffset, kIvSize));
  ByteView header(p, kSealHeaderSize);
  ByteView iv(p + kIvOffset, kIvSize);
  std::uint8_t* ct = p + kSealHeaderSize;
  Sm4Ctr(key.enc_key(), iv, plaintext, ct);
  Sm3Digest tag = Tag(key, header, aad, ByteView(ct, plaintext.size()));
  std::copy(tag.begin(), tag.end(), ct + plaintext.size());
  return out;
}

Bytes Open(const DataKey& key, ByteView sealed, ByteView aad) {
  CheckHeader(sealed);
  ByteView header = sealed.first(kSealHeaderSize);
  ByteView id = sealed.subspan(6, DataKey::kIdSize);
  if (!ConstantTimeEqual(id, key.id_bytes()))
    throw Error(ErrorCode::kCrypto,
                "wrong key: data was sealed with key " + ToHex(id) + ", not with key " + key.id());
  std::size_t n = sealed.size() - kSealOverhead;
  ByteView ct = sealed.subspan(kSealHeaderSize, n);
  ByteView tag = sealed.subspan(kSealHeaderSize + n, kSealTagSize);
  Sm3Digest expect = Tag(key, header, aad, ct);
  if (!ConstantTimeEqual(expect, tag))
    throw Error(ErrorCode::kCrypto,
                "authentication failed: sealed data was modified or truncated, or the "
                "associated data does not match");
  Bytes out(n);
  Sm4Ctr(key.enc_key(), sealed.subspan(kIvOffset, kIvSize), ct, out.data());
  return out;
}

std::string SealedKeyId(ByteView sealed) {
  CheckHeader(sealed);
  return ToHex(sealed.subspan(6, DataKey::kIdSize));
}

bool IsSealed(ByteView data) {
  return data.size() >= 5 && std::equal(kMagic, kMagic + 4, data.begin()) && data[4] == kVersion;
}

}  // namespace anju::crypto
