// The TLS certificate of a server or terminal endpoint. At first start an endpoint makes a
// self-signed certificate (ECDSA P-256, which every TLS 1.3 client accepts; OpenSSL 3 has
// no TLCP / SM2 cipher suites for TLS, see docs/security.md) and prints its fingerprint so
// that clients can pin it or trust the file. A site installs a real certificate by putting
// its own files in place of these two.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace anju::crypto {

struct TlsFiles {
  std::filesystem::path cert;  // PEM certificate (also the CA file clients trust)
  std::filesystem::path key;   // PEM private key, 0600
  std::string fingerprint;     // SHA-256 of the DER certificate, "AB:CD:…"
  bool created = false;        // made by this call
};

// Loads CERT and KEY when both exist; otherwise creates a self-signed pair valid for
// DAYS, with the subject alternative names HOSTS (IP addresses or DNS names; 127.0.0.1,
// ::1 and localhost are always included). Throws Error(kIo / kInternal).
TlsFiles EnsureSelfSignedCert(const std::filesystem::path& cert, const std::filesystem::path& key,
                              const std::string& common_name, std::vector<std::string> hosts,
                              int days = 3650);

// SHA-256 fingerprint of the first certificate in a PEM file.
std::string CertFingerprint(const std::filesystem::path& cert);

}  // namespace anju::crypto
