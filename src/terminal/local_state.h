// LocalState: everything a terminal keeps in its data directory ("Local state
// and records"; R3.1.2.6, R3.1.2.7, R3.3.2.3), and the in-memory gallery built from it.
//
//   DATA_DIR/gallery.db          store::Gallery: identity codes + sealed feature codes only
//   DATA_DIR/state.db            SQLite: rules (person → display name, rules JSON), kv
//                                (gallery version, device id, server URL), pending batch
//   DATA_DIR/outbox.db           store::Outbox (opened by the Terminal, not here)
//   DATA_DIR/keys/local-data.key raw 32-byte key sealing the gallery at rest (0600)
//   DATA_DIR/keys/device.pem     the device's SM2 private key (0600)
//   DATA_DIR/keys/device-data.key the device data key from registration (0600)
//   DATA_DIR/keys/server.pub     the server's SM2 public key
//
// Applying a batch of gallery changes is atomic on disk by a redo record: the batch (its
// features sealed with the local key) is committed to state.db first, then applied to
// the gallery and the rules, then the new version is stored and the record deleted in one
// transaction. A crash in between re-applies the record at the next Open (applying a
// complete upsert or a remove twice gives the same state). In memory, each person changes
// atomically (FeatureIndex::ReplacePerson / RemovePerson); a removed person's rules go
// before his templates, so a removal is never seen half-done as "known and allowed". The
// batch is in memory when ApplyBatch returns, so it applies to the next frame.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/sm2.h"
#include "match/index.h"
#include "store/gallery.h"
#include "terminal/access_pipeline.h"
#include "terminal/person_rules.h"

struct sqlite3;

namespace anju::terminal {

struct LocalStateOptions {
  // The feature model in use (vision::FaceEngine::model_version()). Empty = whatever the
  // existing gallery holds (tools such as export); a new gallery then cannot be created.
  std::string model_version;
  size_t dim = 512;
  match::Precision precision = match::Precision::kFloat32;
  // How a person's templates are fused; the thresholds file says which one its levels
  // were calibrated for (match::Thresholds::fusion).
  match::Fusion fusion = match::kDefaultFusion;
  int load_threads = 2;
};

// One change of a sync batch or a package, features already decrypted.
struct GalleryChange {
  enum class Op { kUpsert, kRemove };
  Op op = Op::kUpsert;
  std::string person;
  std::string display_name;                         // upsert only
  std::vector<std::vector<float>> templates;        // upsert only: all of the person's templates
  nlohmann::json rules = nlohmann::json::object();  // upsert only: the protocol object
  std::string reason;                               // remove only (e.g. "moved_out"), for the log
};

// What registration gave this device (docs/device-protocol.md, "Registration").
struct DeviceIdentity {
  std::string device_id;
  std::string server_url;
  crypto::Sm2Key device_key;  // private
  crypto::DataKey data_key;
  crypto::Sm2Key server_public_key;
};

// A person as the package export sees it.
struct StoredPerson {
  std::string person;
  std::string display_name;
  nlohmann::json rules;
  std::vector<std::vector<float>> templates;
};

class LocalState {
 public:
  // Opens DATA_DIR (created with mode 0700 if absent), creating the local key and the
  // gallery on first use, finishing an interrupted batch, and loading the gallery into
  // the index. Errors: a gallery of another model version (kInvalidArgument), a wrong or
  // group-readable key file (kCrypto), damaged files (kCorrupt), no gallery and no
  // model version given (kNotFound).
  static std::unique_ptr<LocalState> Open(const std::filesystem::path& data_dir,
                                          LocalStateOptions options = {});
  ~LocalState();
  LocalState(const LocalState&) = delete;
  LocalState& operator=(const LocalState&) = delete;

  // ---- gallery
  // Applies CHANGES (in order) and stores NEW_VERSION as the gallery version (unless
  // NEW_VERSION < 0: the version is left alone, e.g. for a package import). Validates
  // everything first (identity codes, feature sizes, rules): a bad batch throws
  // Error(kInvalidArgument) and changes nothing.
  void ApplyBatch(const std::vector<GalleryChange>& changes, int64_t new_version);
  // A whole-gallery replacement (package import, a resync from version 0): persons not in
  // PERSONS are removed; NEW_VERSION as in ApplyBatch.
  void ReplaceAll(const std::vector<GalleryChange>& persons, int64_t new_version = -1);
  int64_t gallery_version() const;

  const match::FeatureIndex& index() const { return *index_; }
  // Rules of a person in the gallery; nullopt when the person is unknown. Thread-safe.
  std::optional<PersonRules> Rules(const std::string& person) const;
  RulesLookup Lookup() const;
  size_t persons() const;
  // Every person with rules and decrypted templates (package export).
  std::vector<StoredPerson> Export() const;
  const std::string& model_version() const { return model_version_; }
  size_t dim() const { return options_.dim; }

  // ---- key/value settings (device id, server URL, …)
  std::optional<std::string> Get(const std::string& key) const;
  void Put(const std::string& key, const std::string& value);

  // ---- device identity
  bool registered() const;
  // Stores the keys (private key and data key 0600) and the device id / server URL.
  void SaveIdentity(const DeviceIdentity& identity);
  // Throws Error(kNotFound) when the device has not registered.
  DeviceIdentity LoadIdentity() const;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path outbox_path() const { return dir_ / "outbox.db"; }

 private:
  LocalState(std::filesystem::path dir, LocalStateOptions options);
  void ApplyLocked(const std::vector<GalleryChange>& changes, int64_t new_version,
                   int64_t pending_id, std::vector<PersonRules>* parsed);
  void LoadRules();
  void FinishPending();
  void OpenStateDb(const std::filesystem::path& state_file);  // state.db: open, check, schema
  void Exec(const char* sql) const;

  std::filesystem::path dir_;
  LocalStateOptions options_;
  std::string model_version_;
  crypto::DataKey local_key_;
  std::unique_ptr<store::Gallery> gallery_;
  std::unique_ptr<match::FeatureIndex> index_;
  sqlite3* db_ = nullptr;
  std::mutex write_mu_;              // one batch at a time (sync thread, import)
  std::atomic<int64_t> version_{0};  // applied on disk and in memory
  mutable std::shared_mutex rules_mu_;
  std::unordered_map<std::string, PersonRules> rules_;
  mutable std::mutex db_mu_;  // the state.db connection
};

}  // namespace anju::terminal
