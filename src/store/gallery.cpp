#include "store/gallery.h"

#include <sqlite3.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <ctime>
#include <thread>

#include "core/error.h"
#include "crypto/bytes.h"
#include "match/kernels.h"
#include "store/sqlite_stmt.h"

namespace anju::store {
namespace fs = std::filesystem;
using crypto::Bytes;
using crypto::ByteView;

static_assert(std::endian::native == std::endian::little, "feature blobs are stored little-endian");

namespace {

constexpr const char* kFormat = "anju-gallery/1 int8";
constexpr int32_t kApplicationId = 0x414E4A47;  // "ANJG"

[[noreturn]] void Fail(sqlite3* db, int rc, const std::string& what) {
  const std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB || rc == SQLITE_FORMAT)
    throw Error(
        ErrorCode::kCorrupt,
        "人脸库文件已损坏或被截断 / gallery database is damaged or truncated (" + msg + ")");
  throw Error(ErrorCode::kIo, "gallery database: " + msg);
}

// Statements of this database report failures through Fail() above.
class Stmt : public SqliteStmt {
 public:
  Stmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, Fail) {}
};

struct Digest {
  uint64_t count = 0;
  std::array<uint8_t, crypto::kSealTagSize> x{};
  void Toggle(ByteView sealed) {
    if (sealed.size() < crypto::kSealTagSize)
      throw Error(ErrorCode::kCorrupt, "gallery row too short");
    auto tag = sealed.subspan(sealed.size() - crypto::kSealTagSize);
    for (size_t i = 0; i < x.size(); ++i) x[i] ^= tag[i];
  }
  Bytes Encode() const {
    Bytes b(8 + x.size());
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(count >> (56 - 8 * i));
    std::copy(x.begin(), x.end(), b.begin() + 8);
    return b;
  }
  static Digest Decode(ByteView b) {
    if (b.size() != 8 + 32) throw Error(ErrorCode::kCorrupt, "gallery digest has the wrong size");
    Digest d;
    for (int i = 0; i < 8; ++i) d.count = (d.count << 8) | b[i];
    std::copy(b.begin() + 8, b.end(), d.x.begin());
    return d;
  }
};

std::string DigestAad(const std::string& version) {
  return "anju-gallery/v1/digest/" + version;
}
std::string KeyCheckAad(const std::string& version, size_t dim) {
  return "anju-gallery/v1/key-check/" + version + "/" + std::to_string(dim);
}
constexpr std::string_view kKeyCheckPlain = "anju gallery key check";

}  // namespace

Bytes EncodeFeature(std::span<const float> f) {
  Bytes b(sizeof(float) + f.size());
  const float scale = match::QuantizeInt8(f, reinterpret_cast<int8_t*>(b.data() + sizeof(float)));
  std::memcpy(b.data(), &scale, sizeof scale);
  return b;
}

std::vector<float> DecodeFeature(ByteView b, size_t dim) {
  if (b.size() != sizeof(float) + dim)
    throw Error(ErrorCode::kCorrupt, "stored feature has the wrong size");
  float scale;
  std::memcpy(&scale, b.data(), sizeof scale);
  std::vector<float> f(dim);
  for (size_t d = 0; d < dim; ++d) f[d] = scale * float(static_cast<int8_t>(b[sizeof(float) + d]));
  return f;
}

bool IsValidIdentityCode(std::string_view code) {
  if (code.empty() || code.size() > 64) return false;
  return std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

Gallery::Gallery(fs::path path, sqlite3* db, const crypto::DataKey& key)
    : path_(std::move(path)), db_(db), key_(key) {}

Gallery::~Gallery() {
  if (db_) sqlite3_close_v2(db_);
}

void Gallery::Exec(const char* sql) const {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string m = err ? err : "";
    sqlite3_free(err);
    Fail(nullptr, rc, std::string(sql).substr(0, 40) + ": " + m);
  }
}

std::string Gallery::GetMeta(const std::string& key) const {
  Stmt s(db_, "SELECT value FROM meta WHERE key = ?");
  s.Bind(1, key);
  if (!s.Step())
    throw Error(ErrorCode::kCorrupt,
                "gallery database lacks '" + key + "': not an anju gallery or damaged");
  Bytes b = s.Blob(0);
  return std::string(b.begin(), b.end());
}

void Gallery::PutMeta(const std::string& key, std::span<const uint8_t> value) {
  Stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  s.Bind(1, key).Bind(2, value);
  s.Step();
}

std::string Gallery::RowAad(const std::string& identity, match::TemplateId id) const {
  return "anju-gallery/v1/row/" + model_version_ + "/" + std::to_string(id) + "/" + identity;
}

std::unique_ptr<Gallery> Gallery::Create(const fs::path& file, const crypto::DataKey& key,
                                         const std::string& model_version, size_t dim) {
  if (model_version.empty() || dim == 0)
    throw Error(ErrorCode::kInvalidArgument, "gallery needs a model version and size");
  std::error_code ec;
  if (fs::exists(file, ec))
    throw Error(ErrorCode::kInvalidArgument, "gallery already exists: " + file.string());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<Gallery> g(new Gallery(file, db, key));
  if (rc != SQLITE_OK) Fail(db, rc, "create " + file.string());
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write, ec);
  g->model_version_ = model_version;
  g->dim_ = dim;
  g->Exec(("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA application_id=" +
           std::to_string(kApplicationId) + ";")
              .c_str());
  g->Exec("BEGIN IMMEDIATE");
  g->Exec(
      "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
      "CREATE TABLE templates(id INTEGER PRIMARY KEY AUTOINCREMENT, identity TEXT NOT NULL,"
      " created INTEGER NOT NULL, code BLOB NOT NULL);"
      "CREATE INDEX templates_identity ON templates(identity);");
  g->PutMeta("format", crypto::AsBytes(kFormat));
  g->PutMeta("model_version", crypto::AsBytes(model_version));
  g->PutMeta("dim", crypto::AsBytes(std::to_string(dim)));
  g->PutMeta("key_id", crypto::AsBytes(key.id()));
  g->PutMeta("key_check", crypto::Seal(key, crypto::AsBytes(kKeyCheckPlain),
                                       crypto::AsBytes(KeyCheckAad(model_version, dim))));
  g->PutMeta("digest",
             crypto::Seal(key, Digest{}.Encode(), crypto::AsBytes(DigestAad(model_version))));
  g->Exec("COMMIT");
  return g;
}

std::unique_ptr<Gallery> Gallery::Open(const fs::path& file, const crypto::DataKey& key,
                                       std::string_view expected_model_version) {
  // Every refusal names the file: an operator has to know which one to restore.
  try {
    return OpenFile(file, key, expected_model_version);
  } catch (const Error& e) {
    const std::string what = e.what();
    if (e.code() != ErrorCode::kCorrupt || what.find(file.string()) != std::string::npos) throw;
    throw Error(ErrorCode::kCorrupt, what + ": " + file.string());
  }
}

std::unique_ptr<Gallery> Gallery::OpenFile(const fs::path& file, const crypto::DataKey& key,
                                           std::string_view expected_model_version) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    throw Error(ErrorCode::kNotFound, "gallery database not found: " + file.string());
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
  std::unique_ptr<Gallery> g(new Gallery(file, db, key));
  if (rc != SQLITE_OK) Fail(db, rc, "open " + file.string());
  sqlite3_extended_result_codes(db, 0);
  {
    Stmt s(db, "PRAGMA application_id");
    if (!s.Step() || s.Int(0) != kApplicationId)
      throw Error(ErrorCode::kCorrupt, file.string() + " is not an anju gallery database");
  }
  {
    // Page-level consistency: catches truncation and damaged b-trees up front.
    Stmt s(db, "PRAGMA quick_check");
    if (!s.Step() || s.Text(0) != "ok")
      throw Error(
          ErrorCode::kCorrupt,
          "人脸库文件已损坏或被截断 / gallery database is damaged or truncated: " + file.string());
  }
  if (g->GetMeta("format") != kFormat)
    throw Error(ErrorCode::kCorrupt, "unsupported gallery format in " + file.string());
  g->model_version_ = g->GetMeta("model_version");
  try {
    g->dim_ = std::stoul(g->GetMeta("dim"));
  } catch (const std::logic_error&) {
    throw Error(ErrorCode::kCorrupt, "gallery header is damaged");
  }
  const std::string stored_id = g->GetMeta("key_id");
  const std::string check = g->GetMeta("key_check");
  try {
    Bytes plain = crypto::Open(key, crypto::AsBytes(check),
                               crypto::AsBytes(KeyCheckAad(g->model_version_, g->dim_)));
    if (std::string(plain.begin(), plain.end()) != kKeyCheckPlain)
      throw Error(ErrorCode::kCrypto, "key check mismatch");
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCrypto) throw;
    if (stored_id != key.id())
      throw Error(ErrorCode::kCrypto, "密钥错误 / wrong key for gallery " + file.string() +
                                          ": it is sealed with key " + stored_id + ", not " +
                                          key.id());
    throw Error(ErrorCode::kCrypto,
                "人脸库头部被篡改 / gallery header of " + file.string() + " failed authentication");
  }
  if (!expected_model_version.empty() && g->model_version_ != expected_model_version)
    throw Error(ErrorCode::kInvalidArgument,
                "gallery " + file.string() + " holds features of model '" + g->model_version_ +
                    "', the engine runs '" + std::string(expected_model_version) + "': re-enrol");
  return g;
}

void Gallery::UpdateDigest(std::span<const uint8_t> tag_source, int64_t count_delta) {
  const std::string d = GetMeta("digest");
  Digest dg = Digest::Decode(
      crypto::Open(key_, crypto::AsBytes(d), crypto::AsBytes(DigestAad(model_version_))));
  dg.Toggle(tag_source);
  dg.count = uint64_t(int64_t(dg.count) + count_delta);
  PutMeta("digest", crypto::Seal(key_, dg.Encode(), crypto::AsBytes(DigestAad(model_version_))));
}

match::TemplateId Gallery::Add(const std::string& identity, std::span<const float> feature) {
  return AddBatch({{identity, feature}})[0];
}

std::vector<match::TemplateId> Gallery::AddBatch(const std::vector<NewTemplate>& items) {
  for (auto& [identity, feature] : items) {
    if (!IsValidIdentityCode(identity))
      throw Error(ErrorCode::kInvalidArgument,
                  "identity codes are opaque: 1-64 of [A-Za-z0-9_.-], got '" + identity + "'");
    if (feature.size() != dim_)
      throw Error(ErrorCode::kInvalidArgument, "feature size " + std::to_string(feature.size()) +
                                                   " != gallery's " + std::to_string(dim_));
  }
  Exec("BEGIN IMMEDIATE");
  try {
    std::vector<match::TemplateId> ids;
    Stmt ins(db_, "INSERT INTO templates(identity, created, code) VALUES(?, ?, x'')");
    Stmt up(db_, "UPDATE templates SET code = ? WHERE id = ?");
    Digest dg = Digest::Decode(crypto::Open(key_, crypto::AsBytes(GetMeta("digest")),
                                            crypto::AsBytes(DigestAad(model_version_))));
    for (auto& [identity, feature] : items) {
      ins.Reset().Bind(1, identity).Bind(2, int64_t(std::time(nullptr)));
      ins.Step();
      const auto id = match::TemplateId(sqlite3_last_insert_rowid(db_));
      Bytes code =
          crypto::Seal(key_, EncodeFeature(feature), crypto::AsBytes(RowAad(identity, id)));
      up.Reset().Bind(1, code).Bind(2, int64_t(id));
      up.Step();
      dg.Toggle(code);
      ++dg.count;
      ids.push_back(id);
    }
    PutMeta("digest", crypto::Seal(key_, dg.Encode(), crypto::AsBytes(DigestAad(model_version_))));
    Exec("COMMIT");
    return ids;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

size_t Gallery::RemoveIdentity(const std::string& identity) {
  Exec("BEGIN IMMEDIATE");
  try {
    size_t n = 0;
    Stmt s(db_, "SELECT code FROM templates WHERE identity = ?");
    s.Bind(1, identity);
    while (s.Step()) UpdateDigest(s.Blob(0), -1), ++n;
    Stmt d(db_, "DELETE FROM templates WHERE identity = ?");
    d.Bind(1, identity);
    d.Step();
    Exec("COMMIT");
    return n;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

bool Gallery::RemoveTemplate(match::TemplateId id) {
  Exec("BEGIN IMMEDIATE");
  try {
    Stmt s(db_, "SELECT code FROM templates WHERE id = ?");
    s.Bind(1, int64_t(id));
    bool found = s.Step();
    if (found) {
      UpdateDigest(s.Blob(0), -1);
      Stmt d(db_, "DELETE FROM templates WHERE id = ?");
      d.Bind(1, int64_t(id));
      d.Step();
    }
    Exec("COMMIT");
    return found;
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<StoredTemplate> Gallery::LoadAll(int threads) const {
  std::vector<StoredTemplate> out;
  std::vector<Bytes> codes;
  {
    Stmt s(db_, "SELECT id, identity, created, code FROM templates ORDER BY id");
    out.reserve(info().templates);
    while (s.Step()) {
      StoredTemplate t;
      t.id = match::TemplateId(s.Int(0));
      t.identity = s.Text(1);
      t.created = s.Int(2);
      out.push_back(std::move(t));
      codes.push_back(s.Blob(3));
    }
  }
  Digest expect = Digest::Decode(crypto::Open(key_, crypto::AsBytes(GetMeta("digest")),
                                              crypto::AsBytes(DigestAad(model_version_))));
  Digest seen;
  for (auto& c : codes) seen.Toggle(c);
  seen.count = codes.size();
  if (seen.count != expect.count || seen.x != expect.x)
    throw Error(
        ErrorCode::kCorrupt,
        "人脸库记录被增删 / gallery " + path_.string() + " holds " + std::to_string(seen.count) +
            " templates that do not match its sealed digest (" + std::to_string(expect.count) +
            " templates): rows were added, removed or copied outside anju");
  const size_t n = out.size(), T = std::clamp<size_t>(threads, 1, 16);
  std::vector<std::string> errors(T);
  auto work = [&](size_t t) {
    try {
      for (size_t i = n * t / T; i < n * (t + 1) / T; ++i) {
        Bytes plain =
            crypto::Open(key_, codes[i], crypto::AsBytes(RowAad(out[i].identity, out[i].id)));
        if (plain.size() != sizeof(float) + dim_)
          throw Error(ErrorCode::kCorrupt,
                      "template " + std::to_string(out[i].id) + " has the wrong size");
        out[i].feature = DecodeFeature(plain, dim_);
      }
    } catch (const std::exception& e) {
      errors[t] = e.what();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < T; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (!e.empty())
      throw Error(ErrorCode::kCrypto,
                  "人脸库记录校验失败 / a gallery template failed authentication (tampered, moved "
                  "to another identity, or wrong key): " +
                      e);
  return out;
}

size_t Gallery::LoadInto(match::FeatureIndex& index, int threads) const {
  auto all = LoadAll(threads);
  std::vector<match::FeatureIndex::Entry> entries;
  entries.reserve(all.size());
  for (auto& t : all) entries.push_back({t.identity, t.id, t.feature});
  index.PutBatch(entries, model_version_);
  return all.size();
}

GalleryInfo Gallery::info() const {
  GalleryInfo i{model_version_, dim_, 0, 0, key_.id()};
  Stmt s(db_, "SELECT COUNT(*), COUNT(DISTINCT identity) FROM templates");
  if (s.Step()) i.templates = size_t(s.Int(0)), i.identities = size_t(s.Int(1));
  return i;
}

}  // namespace anju::store
