#include "crypto/tls_cert.h"

#include <arpa/inet.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <memory>

#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/ossl.h"

namespace anju::crypto {

namespace fs = std::filesystem;

namespace {

using X509Ptr = std::unique_ptr<X509, detail::Deleter<X509, X509_free>>;

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

[[noreturn]] void Fail(const std::string& what) {
  throw Error(ErrorCode::kInternal, what + ": " + detail::OpenSslErrors());
}

bool IsIp(const std::string& h) {
  unsigned char buf[16];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

void WritePem(const fs::path& path, mode_t mode, const std::function<int(FILE*)>& write) {
  const fs::path tmp = path.string() + ".tmp";
  {
    FilePtr f(std::fopen(tmp.c_str(), "wb"));
    if (!f) throw Error(ErrorCode::kIo, "cannot write " + tmp.string());
    ::chmod(tmp.c_str(), mode);
    if (write(f.get()) != 1) Fail("cannot encode " + path.string());
    if (std::fflush(f.get()) != 0) throw Error(ErrorCode::kIo, "cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot rename " + tmp.string() + ": " + ec.message());
}

std::string Fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha256(), md, &n) != 1) Fail("X509_digest");
  std::string hex = ToHex(ByteView(md, n)), out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (!out.empty()) out += ':';
    out += char(std::toupper(hex[i]));
    out += char(std::toupper(hex[i + 1]));
  }
  return out;
}

X509Ptr ReadCert(const fs::path& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  if (!f) throw Error(ErrorCode::kNotFound, "certificate not found: " + path.string());
  X509Ptr cert(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!cert)
    throw Error(ErrorCode::kInvalidArgument,
                "not a PEM certificate: " + path.string() + ": " + detail::OpenSslErrors());
  return cert;
}

}  // namespace

std::string CertFingerprint(const fs::path& cert) {
  return Fingerprint(ReadCert(cert).get());
}

TlsFiles EnsureSelfSignedCert(const fs::path& cert_path, const fs::path& key_path,
                              const std::string& common_name, std::vector<std::string> hosts,
                              int days) {
  TlsFiles out{cert_path, key_path, "", false};
  if (fs::exists(cert_path) && fs::exists(key_path)) {
    out.fingerprint = CertFingerprint(cert_path);
    return out;
  }
  std::error_code ec;
  if (cert_path.has_parent_path()) fs::create_directories(cert_path.parent_path(), ec);
  if (key_path.has_parent_path()) fs::create_directories(key_path.parent_path(), ec);

  detail::PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Fail("cannot generate the TLS key");
  X509Ptr cert(X509_new());
  if (!cert) Fail("X509_new");
  X509_set_version(cert.get(), 2);
  const Bytes serial = RandomBytes(16);
  BIGNUM* bn = BN_bin2bn(serial.data(), int(serial.size()), nullptr);
  BN_clear_bit(bn, 127);  // positive
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), long(days) * 24 * 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("anju"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);

  for (const char* h : {"127.0.0.1", "::1", "localhost"}) hosts.emplace_back(h);
  std::string san;
  std::vector<std::string> seen;
  for (const auto& h : hosts) {
    if (h.empty() || std::find(seen.begin(), seen.end(), h) != seen.end()) continue;
    seen.push_back(h);
    if (!san.empty()) san += ",";
    san += (IsIp(h) ? "IP:" : "DNS:") + h;
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
           {NID_subject_alt_name, san},
           {NID_basic_constraints, "critical,CA:TRUE"},
           {NID_key_usage, "critical,digitalSignature,keyCertSign"},
           {NID_ext_key_usage, "serverAuth"},
           {NID_subject_key_identifier, "hash"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    if (!ext) Fail("certificate extension " + value);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) Fail("cannot sign the certificate");

  WritePem(key_path, 0600, [&](FILE* f) {
    return PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  WritePem(cert_path, 0644, [&](FILE* f) { return PEM_write_X509(f, cert.get()); });
  out.fingerprint = Fingerprint(cert.get());
  out.created = true;
  return out;
}

}  // namespace anju::crypto
