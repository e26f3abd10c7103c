// The enrolled gallery on disk: SQLite, one row per template, keyed by an opaque
// identity code (no names, no photos on a terminal: R3.3.2.3). Feature codes are sealed
// at rest with SM4-CTR + HMAC-SM3 (crypto/envelope.h), each bound to its identity code,
// template id and model version as associated data, so a row moved to another identity
// or another id no longer opens. A keyed digest over the set of rows (XOR of the rows'
// tags plus their count, itself sealed) detects rows deleted or added outside anju.
//
// Feature codes are stored as int8 with one scale per vector (516 B for 512-d; score error
// < 0.01, measured in BENCHMARKS.md): a quarter of the bytes to decrypt, which is what
// keeps a 20,000-template start-up under a second with SM4 in software.
//
// Refused with a clear anju::Error: a wrong key (kCrypto), a tampered row (kCrypto), a
// truncated or otherwise damaged file (kCorrupt), a gallery of another model version
// (kInvalidArgument). Not detected: rolling the whole file back to an older copy.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/envelope.h"
#include "match/index.h"

struct sqlite3;

namespace anju::store {

// Identity codes are opaque: 1–64 characters of [A-Za-z0-9_.-].
bool IsValidIdentityCode(std::string_view code);

struct StoredTemplate {
  match::TemplateId id = 0;
  std::string identity;
  std::vector<float> feature;
  int64_t created = 0;  // Unix seconds
};

struct GalleryInfo {
  std::string model_version;
  size_t dim = 0;
  size_t templates = 0;
  size_t identities = 0;
  std::string key_id;  // DataKey::id() of the key that seals it
};

// The stored plaintext of a feature: float scale, then dim int8 codes.
crypto::Bytes EncodeFeature(std::span<const float> feature);
std::vector<float> DecodeFeature(crypto::ByteView plain, size_t dim);

class Gallery {
 public:
  // A new gallery file; refuses to overwrite an existing file.
  static std::unique_ptr<Gallery> Create(const std::filesystem::path& file,
                                         const crypto::DataKey& key,
                                         const std::string& model_version, size_t dim = 512);
  // Opens and checks the header, the key and the file's integrity (SQLite quick_check).
  // EXPECTED_MODEL_VERSION empty = any.
  static std::unique_ptr<Gallery> Open(const std::filesystem::path& file,
                                       const crypto::DataKey& key,
                                       std::string_view expected_model_version = {});
  ~Gallery();
  Gallery(const Gallery&) = delete;
  Gallery& operator=(const Gallery&) = delete;

  match::TemplateId Add(const std::string& identity, std::span<const float> feature);
  // Many templates in one transaction (bulk enrolment / import).
  using NewTemplate = std::pair<std::string, std::span<const float>>;
  std::vector<match::TemplateId> AddBatch(const std::vector<NewTemplate>& items);
  size_t RemoveIdentity(const std::string& identity);  // templates removed
  bool RemoveTemplate(match::TemplateId id);

  // Every template, decrypted and verified, with the row-set digest checked (THREADS
  // workers decrypt).
  std::vector<StoredTemplate> LoadAll(int threads = 2) const;
  // LoadAll into an index of the same model version; returns the number of templates.
  size_t LoadInto(match::FeatureIndex& index, int threads = 2) const;

  GalleryInfo info() const;
  const std::string& model_version() const { return model_version_; }
  const std::filesystem::path& path() const { return path_; }

 private:
  static std::unique_ptr<Gallery> OpenFile(const std::filesystem::path& file,
                                           const crypto::DataKey& key,
                                           std::string_view expected_model_version);
  Gallery(std::filesystem::path path, sqlite3* db, const crypto::DataKey& key);
  void Exec(const char* sql) const;
  std::string GetMeta(const std::string& key) const;
  void PutMeta(const std::string& key, std::span<const uint8_t> value);
  void UpdateDigest(std::span<const uint8_t> tag, int64_t count_delta);
  std::string RowAad(const std::string& identity, match::TemplateId id) const;

  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
  crypto::DataKey key_;
  std::string model_version_;
  size_t dim_ = 0;
};

}  // namespace anju::store
