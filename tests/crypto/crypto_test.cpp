// Tests for src/crypto: official SM3/SM4 vectors, HMAC-SM3, SM2, sealed blobs, key files.
#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "crypto/keyfile.h"
#include "crypto/sm2.h"
#include "crypto/sm3.h"
#include "testing.h"

namespace anju::crypto {
namespace {

namespace fs = std::filesystem;

// Runs fn and expects Error(kCrypto); returns its message.
template <typename Fn>
std::string ExpectCryptoError(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCrypto) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "unexpected exception type: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected Error(kCrypto), nothing was thrown";
  return {};
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned Mode(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0);
  return st.st_mode & 07777;
}

// ---- bytes ----

TEST(Bytes, HexRoundTrip) {
  Bytes b = {0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(ToHex(b), "0001abff");
  EXPECT_EQ(FromHex("0001ABff"), b);
  EXPECT_TRUE(FromHex("").empty());
  EXPECT_THROW(FromHex("abc"), Error);
  EXPECT_THROW(FromHex("zz"), Error);
}

TEST(Bytes, Base64Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(ToBase64(AsBytes(plain)), encoded);
    EXPECT_EQ(FromBase64(encoded), ToBytes(plain));
  }
  const Bytes all = [] {
    Bytes b(256);
    for (int i = 0; i < 256; ++i) b[i] = uint8_t(i);
    return b;
  }();
  EXPECT_EQ(FromBase64(ToBase64(all)), all);
  for (const char* bad : {"Zg=", "Z===", "Zm9v!A==", "Zg=A", "Zm=v"})
    EXPECT_THROW(FromBase64(bad), anju::Error) << bad;
}

TEST(Bytes, RandomAndCompare) {
  Bytes a = RandomBytes(32), b = RandomBytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_TRUE(RandomBytes(0).empty());
  EXPECT_TRUE(ConstantTimeEqual(a, a));
  EXPECT_FALSE(ConstantTimeEqual(a, b));
  EXPECT_FALSE(ConstantTimeEqual(a, ByteView(a).first(31)));
  EXPECT_TRUE(ConstantTimeEqual(ByteView{}, ByteView{}));
  Bytes c = a;
  SecureZero(c);
  EXPECT_EQ(c, Bytes(32, 0));
}

// ---- SM3 (GB/T 32905-2016 Appendix A) ----

TEST(Sm3, StandardVectors) {
  EXPECT_EQ(Sm3Hex("abc"), "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  std::string abcd16;
  for (int i = 0; i < 16; ++i) abcd16 += "abcd";
  EXPECT_EQ(Sm3Hex(abcd16), "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");
  EXPECT_EQ(Sm3Hex(""), "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b");
}

TEST(Sm3, IncrementalMatchesOneShot) {
  Bytes data = RandomBytes(10000);
  Sm3Hasher h;
  for (std::size_t off = 0; off < data.size(); off += 777)
    h.Update(ByteView(data).subspan(off, std::min<std::size_t>(777, data.size() - off)));
  EXPECT_EQ(h.Final(), Sm3(data));
  // Final() resets: the hasher is reusable.
  EXPECT_EQ(ToHex(h.Update("ab").Update("c").Final()),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
}

TEST(Sm3, File) {
  auto dir = testing::TempDir("sm3file");
  std::ofstream(dir / "abc.txt", std::ios::binary) << "abc";
  EXPECT_EQ(Sm3File(dir / "abc.txt"),
            "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");
  try {
    Sm3File(dir / "missing");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo);
  }
  fs::remove_all(dir);
}

// ---- HMAC-SM3 ----

// RFC 2104 computed by hand from the SM3 primitive (block size 64).
Sm3Digest ReferenceHmac(Bytes key, ByteView msg) {
  if (key.size() > 64) {
    auto d = Sm3(key);
    key.assign(d.begin(), d.end());
  }
  key.resize(64, 0);
  Bytes inner(64), outer(64);
  for (int i = 0; i < 64; ++i) {
    inner[i] = key[i] ^ 0x36;
    outer[i] = key[i] ^ 0x5c;
  }
  inner.insert(inner.end(), msg.begin(), msg.end());
  auto ih = Sm3(inner);
  outer.insert(outer.end(), ih.begin(), ih.end());
  return Sm3(outer);
}

TEST(HmacSm3, MatchesRfc2104Construction) {
  for (std::size_t key_len : {0, 1, 16, 32, 64, 65, 200}) {
    Bytes key = RandomBytes(key_len);
    Bytes msg = RandomBytes(key_len * 3 + 5);
    EXPECT_EQ(HmacSm3(key, msg), ReferenceHmac(key, msg)) << "key length " << key_len;
  }
}

TEST(HmacSm3, IncrementalAndVerify) {
  Bytes key = RandomBytes(32);
  std::string msg = "The quick brown fox jumps over the lazy dog";
  auto tag = HmacSm3(key, msg);
  EXPECT_EQ(
      HmacSm3Ctx(key).Update("The quick ").Update("brown fox jumps over the lazy dog").Final(),
      tag);
  EXPECT_TRUE(HmacSm3Ctx(key).Update(msg).Verify(tag));
  auto bad = tag;
  bad[31] ^= 1;
  EXPECT_FALSE(HmacSm3Ctx(key).Update(msg).Verify(bad));
  EXPECT_FALSE(HmacSm3Ctx(key).Update(msg).Verify(ByteView(tag).first(16)));
  Bytes other = key;
  other[0] ^= 1;
  EXPECT_NE(HmacSm3(other, msg), tag);
}

TEST(Kdf, DeterministicAndLabelSeparated) {
  Bytes prk = RandomBytes(32);
  Bytes a = DeriveKey(prk, "label-a", 80);
  EXPECT_EQ(a.size(), 80u);
  EXPECT_EQ(DeriveKey(prk, "label-a", 80), a);
  EXPECT_EQ(Bytes(DeriveKey(prk, "label-a", 16)), Bytes(a.begin(), a.begin() + 16));
  EXPECT_NE(DeriveKey(prk, "label-b", 80), a);
  // HKDF-Expand block 1 = HMAC(prk, info || 0x01).
  Bytes info = ToBytes("label-a");
  info.push_back(1);
  auto t1 = HmacSm3(prk, info);
  EXPECT_EQ(Bytes(a.begin(), a.begin() + 32), Bytes(t1.begin(), t1.end()));
}

// ---- SM4 (GB/T 32907-2016 Appendix A), through OpenSSL EVP ----

Bytes Sm4Ecb(ByteView key, ByteView block, int iterations) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free);
  EXPECT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_sm4_ecb(), nullptr, key.data(), nullptr), 1);
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  Bytes in(block.begin(), block.end()), out(16);
  for (int i = 0; i < iterations; ++i) {
    int n = 0;
    EXPECT_EQ(EVP_EncryptUpdate(ctx.get(), out.data(), &n, in.data(), 16), 1);
    EXPECT_EQ(n, 16);
    in = out;
  }
  return out;
}

TEST(Sm4, StandardVector) {
  Bytes k = FromHex("0123456789abcdeffedcba9876543210");
  EXPECT_EQ(ToHex(Sm4Ecb(k, k, 1)), "681edf34d206965e86b3e94f536e4246");
}

TEST(Sm4, MillionIterationVector) {
  Bytes k = FromHex("0123456789abcdeffedcba9876543210");
  EXPECT_EQ(ToHex(Sm4Ecb(k, k, 1000000)), "595298c7c6fd271f0402f804c33d3f66");
}

// ---- DataKey + sealed blobs ----

TEST(DataKey, IdAndValidation) {
  DataKey k = DataKey::Generate();
  EXPECT_EQ(k.id().size(), 16u);
  DataKey same = DataKey::FromBytes(k.bytes());
  EXPECT_EQ(same.id(), k.id());
  EXPECT_EQ(DataKey::FromHex(ToHex(k.bytes())).id(), k.id());
  EXPECT_NE(DataKey::Generate().id(), k.id());
  EXPECT_FALSE(ConstantTimeEqual(k.enc_key(), ByteView(k.bytes()).first(16)));
  EXPECT_FALSE(ConstantTimeEqual(k.mac_key(), k.bytes()));
  EXPECT_THROW(DataKey::FromBytes(RandomBytes(16)), Error);
  EXPECT_THROW(DataKey::FromHex("00"), Error);
}

TEST(Envelope, RoundTripSizes) {
  DataKey key = DataKey::Generate();
  for (std::size_t n : {0, 1, 15, 16, 17, 1 << 20}) {
    Bytes pt = RandomBytes(n);
    Bytes sealed = Seal(key, pt);
    ASSERT_EQ(sealed.size(), n + kSealOverhead);
    EXPECT_TRUE(IsSealed(sealed));
    EXPECT_EQ(SealedKeyId(sealed), key.id());
    EXPECT_EQ(Open(key, sealed), pt) << "size " << n;
    if (n >= 16) {  // the ciphertext is not the plaintext
      EXPECT_FALSE(
          ConstantTimeEqual(ByteView(sealed).subspan(kSealHeaderSize, 16), ByteView(pt).first(16)));
    }
  }
}

TEST(Envelope, FreshIvEveryTime) {
  DataKey key = DataKey::Generate();
  Bytes pt = ToBytes("same message");
  Bytes a = Seal(key, pt), b = Seal(key, pt);
  EXPECT_NE(a, b);
  EXPECT_NE(Bytes(a.begin() + 14, a.begin() + 30), Bytes(b.begin() + 14, b.begin() + 30));
  EXPECT_EQ(Open(key, a), Open(key, b));
}

TEST(Envelope, EveryFlippedBitDetected) {
  DataKey key = DataKey::Generate();
  Bytes pt = ToBytes("room 1203, tenant 42");
  Bytes sealed = Seal(key, pt, AsBytes("record-7"));
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      Bytes bad = sealed;
      bad[i] ^= static_cast<std::uint8_t>(1 << bit);
      try {
        Bytes out = Open(key, bad, AsBytes("record-7"));
        ADD_FAILURE() << "flip of byte " << i << " bit " << bit << " not detected";
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kCrypto) << "byte " << i << ": " << e.what();
      }
    }
  }
  EXPECT_EQ(Open(key, sealed, AsBytes("record-7")), pt);
}

TEST(Envelope, TruncationRefused) {
  DataKey key = DataKey::Generate();
  Bytes sealed = Seal(key, RandomBytes(100));
  for (std::size_t len = 0; len < sealed.size(); ++len) {
    ByteView cut = ByteView(sealed).first(len);
    ExpectCryptoError([&] { Open(key, cut); });
  }
  // Dropping bytes from the front is refused too.
  ExpectCryptoError([&] { Open(key, ByteView(sealed).subspan(1)); });
  // Appended garbage is refused.
  Bytes longer = sealed;
  longer.push_back(0);
  ExpectCryptoError([&] { Open(key, longer); });
  std::string msg = ExpectCryptoError([&] { Open(key, ByteView(sealed).first(40)); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(Envelope, WrongKeyRefused) {
  DataKey key = DataKey::Generate(), other = DataKey::Generate();
  Bytes sealed = Seal(key, ToBytes("secret"));
  std::string msg = ExpectCryptoError([&] { Open(other, sealed); });
  EXPECT_NE(msg.find("wrong key"), std::string::npos) << msg;
  // Even with the key id in the header forged to match, the MAC catches it.
  Bytes forged = sealed;
  std::copy(other.id_bytes().begin(), other.id_bytes().end(), forged.begin() + 6);
  msg = ExpectCryptoError([&] { Open(other, forged); });
  EXPECT_NE(msg.find("authentication failed"), std::string::npos) << msg;
}

TEST(Envelope, AadBound) {
  DataKey key = DataKey::Generate();
  Bytes pt = ToBytes("feature vector");
  Bytes sealed = Seal(key, pt, AsBytes("person:1001"));
  EXPECT_EQ(Open(key, sealed, AsBytes("person:1001")), pt);
  ExpectCryptoError([&] { Open(key, sealed, AsBytes("person:1002")); });
  ExpectCryptoError([&] { Open(key, sealed); });
  Bytes no_aad = Seal(key, pt);
  ExpectCryptoError([&] { Open(key, no_aad, AsBytes("person:1001")); });
}

TEST(Envelope, NotSealed) {
  DataKey key = DataKey::Generate();
  Bytes junk = RandomBytes(200);
  junk[0] = 'x';
  EXPECT_FALSE(IsSealed(junk));
  std::string msg = ExpectCryptoError([&] { Open(key, junk); });
  EXPECT_NE(msg.find("magic"), std::string::npos);
  ExpectCryptoError([&] { SealedKeyId(junk); });
  Bytes v2 = Seal(key, ToBytes("x"));
  v2[4] = 2;
  msg = ExpectCryptoError([&] { Open(key, v2); });
  EXPECT_NE(msg.find("version"), std::string::npos);
}

// ---- SM2 ----

TEST(Sm2, SignVerify) {
  Sm2Key key = Sm2Key::Generate();
  EXPECT_TRUE(key.has_private());
  EXPECT_TRUE(EVP_PKEY_is_a(key.native(), "SM2"));
  std::string msg = "door 3 opened for tenant 42 at 2025-01-31T08:00:00Z";
  Bytes sig = key.Sign(msg);
  EXPECT_TRUE(key.Verify(msg, sig));
  EXPECT_NE(key.Sign(msg), sig);  // randomised, both valid
  EXPECT_TRUE(key.Verify(msg, key.Sign(msg)));
  // Modified message, modified signature, another key, another ID: all rejected.
  std::string changed = msg;
  changed[5] ^= 1;
  EXPECT_FALSE(key.Verify(changed, sig));
  EXPECT_FALSE(key.Verify(msg + " ", sig));
  Bytes bad = sig;
  bad[bad.size() - 1] ^= 1;
  EXPECT_FALSE(key.Verify(msg, bad));
  EXPECT_FALSE(key.Verify(msg, Bytes{}));
  EXPECT_FALSE(key.Verify(msg, RandomBytes(72)));
  EXPECT_FALSE(Sm2Key::Generate().Verify(msg, sig));
  EXPECT_FALSE(key.Verify(msg, sig, "another-user-id"));
  Bytes sig_id = key.Sign(msg, "device-0001");
  EXPECT_TRUE(key.Verify(msg, sig_id, "device-0001"));
  EXPECT_FALSE(key.Verify(msg, sig_id));
  // Empty and binary messages.
  Bytes empty_sig = key.Sign(ByteView{});
  EXPECT_TRUE(key.Verify(ByteView{}, empty_sig));
  Bytes blob = RandomBytes(5000);
  EXPECT_TRUE(key.Verify(blob, key.Sign(blob)));
}

TEST(Sm2, PemRoundTrip) {
  Sm2Key key = Sm2Key::Generate();
  std::string priv = key.PrivatePem(), pub = key.PublicPem();
  EXPECT_NE(priv.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_NE(pub.find("BEGIN PUBLIC KEY"), std::string::npos);

  Sm2Key priv2 = Sm2Key::FromPrivatePem(priv);
  Sm2Key pub2 = Sm2Key::FromPublicPem(pub);
  EXPECT_TRUE(priv2.has_private());
  EXPECT_FALSE(pub2.has_private());
  EXPECT_EQ(priv2.Fingerprint(), key.Fingerprint());
  EXPECT_EQ(pub2.Fingerprint(), key.Fingerprint());
  EXPECT_EQ(pub2.PublicPem(), pub);
  EXPECT_NE(Sm2Key::Generate().Fingerprint(), key.Fingerprint());

  // Signatures cross between the loaded copies; public-only keys cannot sign or decrypt.
  std::string msg = "hello";
  EXPECT_TRUE(pub2.Verify(msg, priv2.Sign(msg)));
  EXPECT_TRUE(key.Verify(msg, priv2.Sign(msg)));
  EXPECT_THROW(pub2.Sign(msg), Error);
  EXPECT_THROW(pub2.PrivatePem(), Error);
  EXPECT_TRUE(pub2.Verify(msg, key.PublicOnly().has_private() ? Bytes{} : key.Sign(msg)));

  // Copies share the key.
  Sm2Key copy = priv2;
  Sm2Key moved = std::move(copy);
  EXPECT_TRUE(moved.Verify(msg, priv2.Sign(msg)));
}

TEST(Sm2, EncryptedPem) {
  Sm2Key key = Sm2Key::Generate();
  std::string pem = key.PrivatePem("correct horse");
  EXPECT_NE(pem.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
  EXPECT_EQ(Sm2Key::FromPrivatePem(pem, "correct horse").Fingerprint(), key.Fingerprint());
  ExpectCryptoError([&] { Sm2Key::FromPrivatePem(pem, "wrong horse"); });
  ExpectCryptoError([&] { Sm2Key::FromPrivatePem(pem); });
}

TEST(Sm2, RejectsGarbageAndNonSm2Keys) {
  ExpectCryptoError([] { Sm2Key::FromPrivatePem("not a pem"); });
  ExpectCryptoError([] {
    Sm2Key::FromPublicPem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  });
  // A NIST P-256 key is an EC key but not SM2.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> p256(EVP_EC_gen("P-256"), EVP_PKEY_free);
  ASSERT_TRUE(p256);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PUBKEY(bio.get(), p256.get()), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string msg = ExpectCryptoError([&] { Sm2Key::FromPublicPem(std::string(data, n)); });
  EXPECT_NE(msg.find("not an SM2 key"), std::string::npos) << msg;
}

TEST(Sm2, EncryptDecrypt) {
  Sm2Key key = Sm2Key::Generate();
  Sm2Key pub = key.PublicOnly();
  for (std::size_t n : {1, 16, 32, 1000}) {
    Bytes pt = RandomBytes(n);
    Bytes ct = pub.Encrypt(pt);
    EXPECT_GT(ct.size(), n);
    EXPECT_EQ(key.Decrypt(ct), pt);
    EXPECT_NE(pub.Encrypt(pt), ct);  // randomised
  }
  Bytes ct = pub.Encrypt(ToBytes("data key"));
  ExpectCryptoError([&] { Sm2Key::Generate().Decrypt(ct); });
  Bytes bad = ct;
  bad[bad.size() - 1] ^= 1;  // last byte of C2
  ExpectCryptoError([&] { key.Decrypt(bad); });
  ExpectCryptoError([&] { key.Decrypt(ByteView(ct).first(ct.size() - 1)); });
  ExpectCryptoError([&] { key.Decrypt(RandomBytes(40)); });
  EXPECT_THROW(pub.Decrypt(ct), Error);
}

// Interoperability with the `openssl` command line (sm2 + distid), when it is installed.
TEST(Sm2, InteropWithOpensslCli) {
  if (std::system("openssl version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl CLI";
  auto dir = testing::TempDir("sm2cli");
  Sm2Key key = Sm2Key::Generate();
  std::ofstream(dir / "pub.pem") << key.PublicPem();
  std::ofstream(dir / "priv.pem") << key.PrivatePem();
  std::ofstream(dir / "msg", std::ios::binary) << "interop message";
  Bytes sig = key.Sign("interop message");
  std::ofstream(dir / "sig", std::ios::binary)
      .write(reinterpret_cast<const char*>(sig.data()), static_cast<std::streamsize>(sig.size()));
  std::string d = dir.string();
  std::string verify = "openssl dgst -sm3 -verify " + d +
                       "/pub.pem -sigopt distid:1234567812345678 -signature " + d + "/sig " + d +
                       "/msg >/dev/null 2>&1";
  EXPECT_EQ(std::system(verify.c_str()), 0) << "openssl rejected our signature";
  std::string sign = "openssl dgst -sm3 -sign " + d +
                     "/priv.pem -sigopt distid:1234567812345678 -out " + d + "/sig2 " + d +
                     "/msg >/dev/null 2>&1";
  ASSERT_EQ(std::system(sign.c_str()), 0);
  std::string sig2 = ReadAll(dir / "sig2");
  EXPECT_TRUE(key.Verify("interop message", AsBytes(sig2)));
  EXPECT_FALSE(key.Verify("interop message", AsBytes(sig2), "other-id"));
  // A key generated by the CLI loads as SM2.
  std::string gen = "openssl genpkey -algorithm SM2 -out " + d + "/cli.pem >/dev/null 2>&1";
  ASSERT_EQ(std::system(gen.c_str()), 0);
  Sm2Key cli = Sm2Key::FromPrivatePem(ReadAll(dir / "cli.pem"));
  EXPECT_TRUE(cli.Verify("x", cli.Sign("x")));
  fs::remove_all(dir);
}

// ---- key files ----

TEST(KeyFile, SymmetricRoundTrip) {
  auto dir = testing::TempDir("keyfile");
  DataKey master = DataKey::Generate(), data = DataKey::Generate();
  fs::path path = dir / "gallery.key";
  WriteKeyFile(path, data, master);
  EXPECT_EQ(Mode(path), 0600u);
  std::string text = ReadAll(path);
  EXPECT_EQ(text.find(ToHex(data.bytes())), std::string::npos) << "data key stored in clear";
  KeyFileInfo info = ReadKeyFileInfo(path);
  EXPECT_EQ(info.key_id, data.id());
  EXPECT_EQ(info.master_id, master.id());
  EXPECT_EQ(info.wrap, "sm4-ctr-hmac-sm3");
  EXPECT_FALSE(info.created.empty());
  DataKey loaded = LoadKeyFile(path, master);
  EXPECT_TRUE(ConstantTimeEqual(loaded.bytes(), data.bytes()));

  // Rotation: re-wrap under a new master, overwriting atomically; data key id unchanged.
  DataKey master2 = DataKey::Generate();
  WriteKeyFile(path, loaded, master2);
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(LoadKeyFile(path, master2).id(), data.id());
  ExpectCryptoError([&] { LoadKeyFile(path, master); });
  // No temp files are left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(KeyFile, WrongMasterKey) {
  auto dir = testing::TempDir("keyfile-wrong");
  DataKey master = DataKey::Generate(), data = DataKey::Generate();
  WriteKeyFile(dir / "k", data, master);
  std::string msg = ExpectCryptoError([&] { LoadKeyFile(dir / "k", DataKey::Generate()); });
  EXPECT_NE(msg.find("wrong master key"), std::string::npos) << msg;
  Sm2Key sm2 = Sm2Key::Generate();
  ExpectCryptoError([&] { LoadKeyFile(dir / "k", sm2); });
  fs::remove_all(dir);
}

TEST(KeyFile, TamperedFileRefused) {
  auto dir = testing::TempDir("keyfile-tamper");
  DataKey master = DataKey::Generate(), data = DataKey::Generate(), other = DataKey::Generate();
  fs::path path = dir / "k";
  WriteKeyFile(path, data, master);
  std::string text = ReadAll(path);
  // Claim a different key id: the AAD no longer matches.
  std::string swapped = text;
  swapped.replace(swapped.find(data.id()), 16, other.id());
  WriteSecretFile(path, swapped);
  ExpectCryptoError([&] { LoadKeyFile(path, master); });
  // Flip a digit of the wrapped key.
  std::string flipped = text;
  std::size_t pos = flipped.find("\"wrapped\": \"") + 40;
  flipped[pos] = flipped[pos] == '0' ? '1' : '0';
  WriteSecretFile(path, flipped);
  ExpectCryptoError([&] { LoadKeyFile(path, master); });
  // Not JSON at all → kCorrupt.
  WriteSecretFile(path, "garbage");
  try {
    LoadKeyFile(path, master);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
  }
  fs::remove_all(dir);
}

TEST(KeyFile, BadPermissionsRefused) {
  auto dir = testing::TempDir("keyfile-perm");
  DataKey master = DataKey::Generate(), data = DataKey::Generate();
  fs::path path = dir / "k";
  WriteKeyFile(path, data, master);
  for (unsigned mode : {0644u, 0640u, 0604u, 0660u, 0602u, 0620u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    std::string msg = ExpectCryptoError([&] { LoadKeyFile(path, master); });
    EXPECT_NE(msg.find("chmod 600"), std::string::npos) << msg;
  }
  for (unsigned mode : {0600u, 0400u}) {
    ASSERT_EQ(::chmod(path.c_str(), mode), 0);
    EXPECT_EQ(LoadKeyFile(path, master).id(), data.id());
  }
  // A directory is not a key file; a missing file is kNotFound.
  ExpectCryptoError([&] { LoadKeyFile(dir, master); });
  try {
    LoadKeyFile(dir / "missing", master);
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  }
  fs::remove_all(dir);
}

TEST(KeyFile, Sm2Wrapped) {
  auto dir = testing::TempDir("keyfile-sm2");
  Sm2Key master = Sm2Key::Generate();
  DataKey data = DataKey::Generate();
  fs::path path = dir / "k";
  WriteKeyFile(path, data, master.PublicOnly());  // wrapping needs only the public key
  EXPECT_EQ(Mode(path), 0600u);
  EXPECT_EQ(ReadKeyFileInfo(path).wrap, "sm2");
  EXPECT_EQ(ReadKeyFileInfo(path).master_id, master.Fingerprint());
  EXPECT_TRUE(ConstantTimeEqual(LoadKeyFile(path, master).bytes(), data.bytes()));
  std::string msg = ExpectCryptoError([&] { LoadKeyFile(path, Sm2Key::Generate()); });
  EXPECT_NE(msg.find("wrong master key"), std::string::npos) << msg;
  ExpectCryptoError([&] { LoadKeyFile(path, DataKey::Generate()); });
  EXPECT_THROW(LoadKeyFile(path, master.PublicOnly()), Error);
  fs::remove_all(dir);
}

TEST(KeyFile, RawKeyFile) {
  auto dir = testing::TempDir("rawkey");
  DataKey key = DataKey::Generate();
  WriteRawKeyFile(dir / "master.key", key);
  EXPECT_EQ(Mode(dir / "master.key"), 0600u);
  EXPECT_EQ(LoadRawKeyFile(dir / "master.key").id(), key.id());
  ASSERT_EQ(::chmod((dir / "master.key").c_str(), 0644), 0);
  ExpectCryptoError([&] { LoadRawKeyFile(dir / "master.key"); });
  WriteSecretFile(dir / "short.key", "abcd\n");
  EXPECT_THROW(LoadRawKeyFile(dir / "short.key"), Error);
  fs::remove_all(dir);
}

TEST(KeyFile, WriteSecretFileIgnoresUmask) {
  auto dir = testing::TempDir("umask");
  mode_t old = ::umask(0);
  WriteSecretFile(dir / "s", "x");
  ::umask(old);
  EXPECT_EQ(Mode(dir / "s"), 0600u);
  EXPECT_EQ(ReadSecretFile(dir / "s"), "x");
  EXPECT_THROW(WriteSecretFile(dir / "no-such-dir" / "s", "x"), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::crypto
