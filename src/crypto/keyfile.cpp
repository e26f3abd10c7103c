#include "crypto/keyfile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "core/error.h"

namespace anju::crypto {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "anju-keyfile";
constexpr int kVersion = 1;
constexpr const char* kWrapSm4 = "sm4-ctr-hmac-sm3";
constexpr const char* kWrapSm2 = "sm2";

std::string Errno() {
  return std::strerror(errno);
}

// Closes an fd on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void Wipe(std::string& s) {
  if (!s.empty())
    SecureZero(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(s.data()), s.size()));
}

std::string NowUtc() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Aad(const std::string& key_id) {
  return "anju-keyfile/v1/" + key_id;
}

void WriteJson(const fs::path& path, const DataKey& data_key, const std::string& wrap,
               const std::string& master_id, ByteView wrapped) {
  json j = {
      {"format", kFormat},      {"version", kVersion}, {"key_id", data_key.id()},  {"wrap", wrap},
      {"master_id", master_id}, {"created", NowUtc()}, {"wrapped", ToHex(wrapped)}};
  WriteSecretFile(path, j.dump(2) + "\n");
}

struct Parsed {
  KeyFileInfo info;
  Bytes wrapped;
};

Parsed Parse(const fs::path& path) {
  std::string text = ReadSecretFile(path);
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::kCorrupt, "key file " + path.string() + ": " + why);
  };
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw bad("not valid JSON");
  auto str = [&](const char* field) {
    auto it = j.find(field);
    if (it == j.end() || !it->is_string())
      throw bad(std::string("missing field \"") + field + "\"");
    return it->get<std::string>();
  };
  if (str("format") != kFormat) throw bad("not an anju key file");
  auto v = j.find("version");
  if (v == j.end() || !v->is_number_integer() || v->get<int>() != kVersion)
    throw bad("unsupported key file version");
  Parsed p;
  p.info = {str("key_id"), str("wrap"), str("master_id"), str("created")};
  try {
    p.wrapped = FromHex(str("wrapped"));
  } catch (const Error&) {
    throw bad("\"wrapped\" is not hex");
  }
  return p;
}

DataKey Finish(const fs::path& path, const Parsed& p, Bytes& raw) {
  try {
    DataKey key = DataKey::FromBytes(raw);
    SecureZero(raw);
    if (key.id() != p.info.key_id)
      throw Error(ErrorCode::kCrypto, "key file " + path.string() +
                                          ": unwrapped key does not match key_id " + p.info.key_id);
    return key;
  } catch (const Error& e) {
    SecureZero(raw);
    if (e.code() == ErrorCode::kCrypto) throw;
    throw Error(ErrorCode::kCrypto, "key file " + path.string() + ": unwrapped key is malformed");
  }
}

void RequireWrap(const fs::path& path, const Parsed& p, const char* wrap, const char* given) {
  if (p.info.wrap != wrap)
    throw Error(ErrorCode::kCrypto, "key file " + path.string() + " is wrapped with \"" +
                                        p.info.wrap + "\" but " + given + " was given");
}

}  // namespace

void WriteSecretFile(const fs::path& path, std::string_view contents) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  fs::path tmp = dir / ("." + path.filename().string() + ".tmp." + std::to_string(::getpid()) +
                        "." + ToHex(RandomBytes(4)));
  Fd f;
  f.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  // A full disk is told apart (kStorageFull): the server answers it with 507, not 500.
  auto fail = [&](const std::string& what) {
    const int e = errno;
    const bool full = e == ENOSPC || e == EDQUOT;
    std::string msg = (full ? "磁盘已满 / disk full: " : "") + what + " " + tmp.string() + ": " +
                      std::strerror(e);
    ::unlink(tmp.c_str());
    return Error(full ? ErrorCode::kStorageFull : ErrorCode::kIo, msg);
  };
  if (f.fd < 0) throw fail("cannot create");
  if (::fchmod(f.fd, 0600) != 0) throw fail("cannot chmod");
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    ssize_t n = ::write(f.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw fail("cannot write");
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (::fsync(f.fd) != 0) throw fail("cannot fsync");
  int fd = std::exchange(f.fd, -1);
  if (::close(fd) != 0) throw fail("cannot close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string msg = "cannot rename " + tmp.string() + " to " + path.string() + ": " + Errno();
    ::unlink(tmp.c_str());
    throw Error(ErrorCode::kIo, msg);
  }
  Fd d;  // make the rename durable; failure here is not fatal
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd >= 0) ::fsync(d.fd);
}

std::string ReadSecretFile(const fs::path& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) {
    if (errno == ENOENT)
      throw Error(ErrorCode::kNotFound, "key file " + path.string() + " not found");
    throw Error(ErrorCode::kIo, "cannot open key file " + path.string() + ": " + Errno());
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0)
    throw Error(ErrorCode::kIo, "cannot stat key file " + path.string() + ": " + Errno());
  if (!S_ISREG(st.st_mode))
    throw Error(ErrorCode::kCrypto, "key file " + path.string() + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(ErrorCode::kCrypto,
                "密钥文件权限过宽 / key file " + path.string() + " has mode " + mode +
                    " and is accessible by group or others; refusing to use it (run: chmod 600 " +
                    path.string() + ")");
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw Error(ErrorCode::kIo, "cannot read key file " + path.string() + ": " + Errno());
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > (1 << 20))
      throw Error(ErrorCode::kCorrupt, "key file " + path.string() + " is too large");
  }
  SecureZero(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(buf), sizeof(buf)));
  return out;
}

void WriteKeyFile(const fs::path& path, const DataKey& data_key, const DataKey& master) {
  Bytes wrapped = Seal(master, data_key.bytes(), AsBytes(Aad(data_key.id())));
  WriteJson(path, data_key, kWrapSm4, master.id(), wrapped);
}

void WriteKeyFile(const fs::path& path, const DataKey& data_key, const Sm2Key& master) {
  Bytes wrapped = master.Encrypt(data_key.bytes());
  WriteJson(path, data_key, kWrapSm2, master.Fingerprint(), wrapped);
}

DataKey LoadKeyFile(const fs::path& path, const DataKey& master) {
  Parsed p = Parse(path);
  RequireWrap(path, p, kWrapSm4, "a symmetric master key");
  if (p.info.master_id != master.id())
    throw Error(ErrorCode::kCrypto, "wrong master key: key file " + path.string() +
                                        " is wrapped by master key " + p.info.master_id +
                                        ", given master key " + master.id());
  Bytes raw;
  try {
    raw = Open(master, p.wrapped, AsBytes(Aad(p.info.key_id)));
  } catch (const Error& e) {
    throw Error(ErrorCode::kCrypto, "key file " + path.string() + ": " + e.what());
  }
  return Finish(path, p, raw);
}

DataKey LoadKeyFile(const fs::path& path, const Sm2Key& master) {
  Parsed p = Parse(path);
  RequireWrap(path, p, kWrapSm2, "an SM2 key");
  if (!master.has_private())
    throw Error(ErrorCode::kInvalidArgument, "unwrapping an SM2 key file needs the private key");
  if (p.info.master_id != master.Fingerprint())
    throw Error(ErrorCode::kCrypto, "wrong master key: key file " + path.string() +
                                        " is wrapped by SM2 key " + p.info.master_id +
                                        ", given SM2 key " + master.Fingerprint());
  Bytes raw;
  try {
    raw = master.Decrypt(p.wrapped);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCrypto, "key file " + path.string() + ": " + e.what());
  }
  return Finish(path, p, raw);
}

KeyFileInfo ReadKeyFileInfo(const fs::path& path) {
  return Parse(path).info;
}

void WriteRawKeyFile(const fs::path& path, const DataKey& key) {
  std::string text = ToHex(key.bytes()) + "\n";
  try {
    WriteSecretFile(path, text);
  } catch (...) {
    Wipe(text);
    throw;
  }
  Wipe(text);
}

DataKey LoadRawKeyFile(const fs::path& path) {
  std::string text = ReadSecretFile(path);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
    text.pop_back();
  try {
    DataKey key = DataKey::FromHex(text);
    Wipe(text);
    return key;
  } catch (const Error&) {
    Wipe(text);
    throw Error(ErrorCode::kCorrupt,
                "raw key file " + path.string() + " must hold exactly 64 hex digits");
  }
}

}  // namespace anju::crypto
