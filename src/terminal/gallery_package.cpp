#include "terminal/gallery_package.h"

#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "protocol/device_auth.h"
#include "protocol/feature_codec.h"
#include "protocol/json_limits.h"

namespace anju::terminal {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RawPackage {
  std::string header_line;
  json header;
  crypto::Bytes signature;
  std::string payload;  // sealed
};

[[noreturn]] void NotAPackage(const fs::path& file, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument,
              "不是有效的人脸库包 / " + file.string() + " is not an anju gallery package: " + why);
}

std::string SignedBytes(const std::string& header_line, std::string_view payload) {
  std::string m = std::string(kPackageMagic) + "\n" + header_line + "\n";
  m.append(payload);
  return m;
}

RawPackage Split(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "无法读取人脸库包 / cannot read " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  const std::string magic = std::string(kPackageMagic) + "\n";
  if (data.compare(0, 21, magic.substr(0, 21)) != 0) NotAPackage(file, "no package header");
  if (data.compare(0, magic.size(), magic) != 0)
    NotAPackage(file, "format version " + data.substr(21, data.find('\n') - 21) +
                          " is not supported (this program reads version 1)");
  RawPackage p;
  const size_t h_end = data.find('\n', magic.size());
  if (h_end == std::string::npos) NotAPackage(file, "truncated header");
  p.header_line = data.substr(magic.size(), h_end - magic.size());
  const size_t s_end = data.find('\n', h_end + 1);
  if (s_end == std::string::npos) NotAPackage(file, "truncated signature");
  try {
    p.header = protocol::ParseJson(p.header_line);  // read before the signature is checked
    if (p.header.at("format") != "anju-gallery-package" || p.header.at("version") != 1)
      NotAPackage(file, "unknown format in header");
    p.signature = crypto::FromBase64(data.substr(h_end + 1, s_end - h_end - 1));
  } catch (const json::exception& e) {
    NotAPackage(file, std::string("bad header: ") + e.what());
  } catch (const Error& e) {
    NotAPackage(file, std::string("bad header or signature field: ") + e.what());
  }
  p.payload = data.substr(s_end + 1);
  return p;
}

// An integer header field within [LO, HI]. PeekPackage reads the header before any
// signature is checked, so a fraction, a negative count or a number such as 1e300 is refused
// here rather than converted (converting 1e300 to size_t or int64_t was undefined
// behaviour; docs/fuzzing.md).
int64_t HeaderInt(const fs::path& file, const json& h, const char* key, int64_t lo, int64_t hi) {
  const json& v = h.at(key);
  bool ok = v.is_number_integer() &&
            !(v.is_number_unsigned() &&
              v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  if (ok) ok = v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  if (!ok)
    NotAPackage(file, std::string("header field '") + key + "' is not an integer " +
                          std::to_string(lo) + " … " + std::to_string(hi));
  return v.get<int64_t>();
}

PackageInfo InfoOf(const fs::path& file, const json& h) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  PackageInfo i;
  i.version = static_cast<int>(HeaderInt(file, h, "version", 1, 1));
  i.model_version = h.at("model_version").get<std::string>();
  i.dim = static_cast<size_t>(HeaderInt(file, h, "dim", 1, kMaxPackageDim));
  i.created_ms = HeaderInt(file, h, "created_ms", 0, kMax);
  i.gallery_version = HeaderInt(file, h, "gallery_version", 0, kMax);
  i.persons = static_cast<size_t>(HeaderInt(file, h, "persons", 0, kMax));
  i.templates = static_cast<size_t>(HeaderInt(file, h, "templates", 0, kMax));
  i.key_id = h.at("key_id").get<std::string>();
  i.signer = h.at("signer").get<std::string>();
  return i;
}

}  // namespace

PackageInfo ExportPackage(const LocalState& state, const fs::path& out, const crypto::DataKey& key,
                          const crypto::Sm2Key& sign_key) {
  if (!sign_key.has_private())
    throw Error(ErrorCode::kInvalidArgument,
                "签名需要私钥 / the signing key must be an SM2 private key");
  PackageInfo info;
  info.model_version = state.model_version();
  info.dim = state.dim();
  info.created_ms = protocol::NowMs();
  info.gallery_version = state.gallery_version();
  info.key_id = key.id();
  info.signer = sign_key.Fingerprint();
  json persons = json::array();
  for (const auto& p : state.Export()) {
    json templates = json::array();
    for (const auto& f : p.templates) templates.push_back(protocol::SealFeature(key, p.person, f));
    info.templates += p.templates.size();
    ++info.persons;
    persons.push_back({{"person", p.person},
                       {"display_name", p.display_name},
                       {"rules", p.rules},
                       {"templates", std::move(templates)}});
  }
  const json header = {{"format", "anju-gallery-package"},
                       {"version", 1},
                       {"model_version", info.model_version},
                       {"dim", info.dim},
                       {"created_ms", info.created_ms},
                       {"gallery_version", info.gallery_version},
                       {"persons", info.persons},
                       {"templates", info.templates},
                       {"key_id", info.key_id},
                       {"signer", info.signer}};
  const std::string header_line = header.dump();
  std::string plain = json{{"persons", std::move(persons)}}.dump();
  const crypto::Bytes sealed =
      crypto::Seal(key, crypto::AsBytes(plain), crypto::AsBytes(header_line));
  crypto::SecureZero(std::span<uint8_t>(reinterpret_cast<uint8_t*>(plain.data()), plain.size()));
  const std::string_view payload(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  const crypto::Bytes sig = sign_key.Sign(SignedBytes(header_line, payload));
  std::string file =
      std::string(kPackageMagic) + "\n" + header_line + "\n" + crypto::ToBase64(sig) + "\n";
  file.append(payload);
  crypto::WriteSecretFile(out, file);  // atomic, fsynced, 0600
  return info;
}

PackageInfo PeekPackage(const fs::path& file) {
  const RawPackage p = Split(file);
  try {
    return InfoOf(file, p.header);
  } catch (const json::exception& e) {
    NotAPackage(file, std::string("bad header: ") + e.what());
  }
}

GalleryPackage ReadPackage(const fs::path& file, const crypto::DataKey& key,
                           const crypto::Sm2Key& trusted) {
  const RawPackage p = Split(file);
  if (!trusted.Verify(SignedBytes(p.header_line, p.payload), p.signature))
    throw Error(ErrorCode::kCrypto,
                "人脸库包签名无效 / the package's signature does not verify with the trusted key " +
                    trusted.Fingerprint() + " (wrong signer, or the file was altered)");
  GalleryPackage out;
  try {
    out.info = InfoOf(file, p.header);
  } catch (const json::exception& e) {
    NotAPackage(file, std::string("bad header: ") + e.what());
  }
  if (out.info.key_id != key.id())
    throw Error(ErrorCode::kCrypto, "人脸库包密钥错误 / the package is sealed with key " +
                                        out.info.key_id + ", the key given is " + key.id());
  crypto::Bytes plain =
      crypto::Open(key, crypto::AsBytes(p.payload), crypto::AsBytes(p.header_line));
  try {
    // Not the peer limits of protocol::ParseJson: the contents were authenticated by the
    // open above, and a 20,000-person package is far beyond 16 MiB and 100,000 items.
    const json j = json::parse(plain.begin(), plain.end());
    crypto::SecureZero(plain);
    for (const auto& person : j.at("persons")) {
      GalleryChange c;
      c.person = person.at("person").get<std::string>();
      c.display_name = person.at("display_name").get<std::string>();
      c.rules = person.at("rules");
      for (const auto& t : person.at("templates"))
        c.templates.push_back(
            protocol::OpenFeature(key, c.person, t.get<std::string>(), out.info.dim));
      out.persons.push_back(std::move(c));
    }
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kCorrupt,
                "人脸库包内容损坏 / package content is malformed: " + std::string(e.what()));
  }
  return out;
}

PackageInfo ImportPackage(LocalState& state, const fs::path& file, const crypto::DataKey& key,
                          const crypto::Sm2Key& trusted) {
  GalleryPackage pkg = ReadPackage(file, key, trusted);
  if (pkg.info.model_version != state.model_version())
    throw Error(ErrorCode::kInvalidArgument,
                "人脸库包模型版本不符 / the package holds features of model '" +
                    pkg.info.model_version + "', this terminal uses '" + state.model_version() +
                    "'");
  state.ReplaceAll(pkg.persons);
  state.Put("package_imported_ms", std::to_string(protocol::NowMs()));
  state.Put("package_signer", pkg.info.signer);
  return pkg.info;
}

}  // namespace anju::terminal
