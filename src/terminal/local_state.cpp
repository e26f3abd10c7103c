#include "terminal/local_state.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "protocol/feature_codec.h"
#include "store/sqlite_stmt.h"

namespace anju::terminal {
namespace fs = std::filesystem;

namespace {

constexpr int kStateFormat = 1;  // PRAGMA user_version of state.db

[[noreturn]] void Fail(sqlite3* db, int rc, const std::string& what) {
  store::ThrowSqliteError(db, rc, what, "terminal state database",
                          "终端状态库已损坏 / terminal state database is damaged");
}

class Stmt : public store::SqliteStmt {
 public:
  Stmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, Fail) {}
};

fs::path KeysDir(const fs::path& dir) {
  return dir / "keys";
}

void MakePrivateDir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error(ErrorCode::kIo, "无法创建数据目录 / cannot create directory " + dir.string() +
                                    (ec ? ": " + ec.message() : ""));
  ::chmod(dir.c_str(), 0700);
}

crypto::DataKey LoadOrCreateLocalKey(const fs::path& dir) {
  const fs::path file = KeysDir(dir) / "local-data.key";
  if (fs::exists(file)) return crypto::LoadRawKeyFile(file);
  if (fs::exists(dir / "gallery.db"))
    throw Error(ErrorCode::kCrypto, "本地密钥缺失 / the local data key " + file.string() +
                                        " is missing, so the gallery cannot be opened");
  const auto key = crypto::DataKey::Generate();
  crypto::WriteRawKeyFile(file, key);
  return key;
}

// The redo record of a batch: features sealed with the local key, never in the clear.
std::string EncodePending(const crypto::DataKey& key, const std::vector<GalleryChange>& changes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : changes) {
    nlohmann::json j = {{"op", c.op == GalleryChange::Op::kUpsert ? "upsert" : "remove"},
                        {"person", c.person}};
    if (c.op == GalleryChange::Op::kUpsert) {
      j["display_name"] = c.display_name;
      j["rules"] = c.rules;
      auto& t = j["templates"] = nlohmann::json::array();
      for (const auto& f : c.templates) t.push_back(protocol::SealFeature(key, c.person, f));
    } else {
      j["reason"] = c.reason;
    }
    out.push_back(std::move(j));
  }
  return out.dump();
}

std::vector<GalleryChange> DecodePending(const crypto::DataKey& key, const std::string& text,
                                         size_t dim) {
  std::vector<GalleryChange> changes;
  for (const auto& j : nlohmann::json::parse(text)) {
    GalleryChange c;
    c.person = j.at("person").get<std::string>();
    if (j.at("op") == "upsert") {
      c.display_name = j.at("display_name").get<std::string>();
      c.rules = j.at("rules");
      for (const auto& t : j.at("templates"))
        c.templates.push_back(protocol::OpenFeature(key, c.person, t.get<std::string>(), dim));
    } else {
      c.op = GalleryChange::Op::kRemove;
      c.reason = j.value("reason", "");
    }
    changes.push_back(std::move(c));
  }
  return changes;
}

}  // namespace

LocalState::LocalState(fs::path dir, LocalStateOptions options)
    : dir_(std::move(dir)), options_(std::move(options)), local_key_(LoadOrCreateLocalKey(dir_)) {}

LocalState::~LocalState() {
  if (db_) sqlite3_close(db_);
}

void LocalState::Exec(const char* sql) const {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string m = err ? err : "";
    sqlite3_free(err);
    Fail(nullptr, rc, std::string(sql).substr(0, 40) + ": " + m);
  }
}

std::unique_ptr<LocalState> LocalState::Open(const fs::path& data_dir, LocalStateOptions options) {
  MakePrivateDir(data_dir);
  MakePrivateDir(KeysDir(data_dir));
  const fs::path gallery_file = data_dir / "gallery.db";
  if (!fs::exists(gallery_file) && options.model_version.empty())
    throw Error(ErrorCode::kNotFound,
                "数据目录中没有人脸库 / no gallery in " + data_dir.string() +
                    " (start the terminal once, or import a package, to create it)");
  std::unique_ptr<LocalState> s(new LocalState(data_dir, options));
  if (fs::exists(gallery_file)) {
    s->gallery_ = store::Gallery::Open(gallery_file, s->local_key_, options.model_version);
  } else {
    s->gallery_ =
        store::Gallery::Create(gallery_file, s->local_key_, options.model_version, options.dim);
  }
  s->model_version_ = s->gallery_->model_version();
  s->options_.dim = s->gallery_->info().dim;

  const fs::path state_file = data_dir / "state.db";
  try {
    s->OpenStateDb(state_file);
  } catch (const Error& e) {
    // Every refusal names the file (the operator restores that one).
    const std::string what = e.what();
    if (e.code() != ErrorCode::kCorrupt || what.find(state_file.string()) != std::string::npos)
      throw;
    throw Error(ErrorCode::kCorrupt, what + ": " + state_file.string());
  }

  s->index_ = std::make_unique<match::FeatureIndex>(match::IndexOptions{
      s->model_version_, s->options_.dim, s->options_.precision, s->options_.fusion});
  s->FinishPending();
  s->gallery_->LoadInto(*s->index_, options.load_threads);
  s->LoadRules();
  const auto v = s->Get("gallery_version");
  s->version_ = v ? std::stoll(*v) : 0;
  return s;
}

void LocalState::OpenStateDb(const fs::path& state_file) {
  LocalState* s = this;
  int rc =
      sqlite3_open_v2(state_file.c_str(), &s->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) Fail(s->db_, rc, "open " + state_file.string());
  ::chmod(state_file.c_str(), 0600);
  sqlite3_busy_timeout(s->db_, 5000);
  s->Exec("PRAGMA journal_mode=WAL");
  s->Exec("PRAGMA synchronous=FULL");
  {
    // Page-level consistency, as the gallery and the outbox check theirs.
    Stmt q(s->db_, "PRAGMA quick_check");
    if (!q.Step() || q.Text(0) != "ok")
      throw Error(ErrorCode::kCorrupt, "终端状态库已损坏 / terminal state database " +
                                           state_file.string() + " failed its integrity check");
  }
  {
    Stmt v(s->db_, "PRAGMA user_version");
    v.Step();
    const int64_t version = v.Int(0);
    if (version != 0 && version != kStateFormat)
      throw Error(ErrorCode::kCorrupt, "终端状态库版本不符 / " + state_file.string() +
                                           " has format " + std::to_string(version) +
                                           ", this program reads " + std::to_string(kStateFormat));
  }
  s->Exec(
      "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS rules (person TEXT PRIMARY KEY, display_name TEXT NOT NULL,"
      " rules TEXT NOT NULL);"
      "CREATE TABLE IF NOT EXISTS pending (id INTEGER PRIMARY KEY AUTOINCREMENT,"
      " version INTEGER NOT NULL, batch TEXT NOT NULL);"
      "PRAGMA user_version = 1;");
}

void LocalState::FinishPending() {
  std::vector<std::tuple<int64_t, int64_t, std::string>> rows;
  {
    Stmt q(db_, "SELECT id, version, batch FROM pending ORDER BY id");
    while (q.Step()) rows.emplace_back(q.Int(0), q.Int(1), q.Text(2));
  }
  std::lock_guard lock(write_mu_);
  for (const auto& [id, version, batch] : rows) {
    // The index is filled from the gallery afterwards, so only the disk is redone here.
    ApplyLocked(DecodePending(local_key_, batch, options_.dim), version, id, nullptr);
  }
}

void LocalState::LoadRules() {
  std::unordered_map<std::string, PersonRules> rules;
  {
    std::lock_guard db_lock(db_mu_);
    Stmt q(db_, "SELECT person, display_name, rules FROM rules");
    while (q.Step()) {
      std::string person = q.Text(0);
      rules.emplace(person, ParseRules(person, q.Text(1), nlohmann::json::parse(q.Text(2))));
    }
  }
  std::unique_lock lock(rules_mu_);
  rules_ = std::move(rules);
}

void LocalState::ApplyBatch(const std::vector<GalleryChange>& changes, int64_t new_version) {
  // Everything is checked before anything is written.
  std::vector<PersonRules> parsed(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    if (!store::IsValidIdentityCode(c.person))
      throw Error(ErrorCode::kInvalidArgument,
                  "无效的身份编码 / invalid identity code '" + c.person.substr(0, 80) + "'");
    if (c.op == GalleryChange::Op::kRemove) continue;
    for (const auto& f : c.templates)
      if (f.size() != options_.dim)
        throw Error(ErrorCode::kInvalidArgument, "person " + c.person + ": feature of size " +
                                                     std::to_string(f.size()) + ", expected " +
                                                     std::to_string(options_.dim));
    parsed[i] = ParseRules(c.person, c.display_name,
                           c.rules.is_null() ? nlohmann::json::object() : c.rules);
  }
  std::lock_guard lock(write_mu_);
  int64_t pending_id = 0;
  {
    std::lock_guard db_lock(db_mu_);
    Stmt ins(db_, "INSERT INTO pending (version, batch) VALUES (?, ?)");
    ins.Bind(1, new_version).Bind(2, EncodePending(local_key_, changes));
    ins.Step();
    pending_id = sqlite3_last_insert_rowid(db_);
  }
  ApplyLocked(changes, new_version, pending_id, &parsed);
}

void LocalState::ApplyLocked(const std::vector<GalleryChange>& changes, int64_t new_version,
                             int64_t pending_id, std::vector<PersonRules>* parsed) {
  // 1. The gallery (each call is its own transaction; a crash here is redone from the
  //    pending record, and upsert = remove + add is idempotent).
  std::vector<std::vector<match::TemplateId>> ids(changes.size());
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    gallery_->RemoveIdentity(c.person);
    if (c.op == GalleryChange::Op::kUpsert && !c.templates.empty()) {
      std::vector<store::Gallery::NewTemplate> items;
      for (const auto& f : c.templates) items.emplace_back(c.person, std::span<const float>(f));
      ids[i] = gallery_->AddBatch(items);
    }
  }
  // 2. Rules, version, and the end of the redo record, in one transaction.
  {
    std::lock_guard db_lock(db_mu_);
    Exec("BEGIN IMMEDIATE");
    try {
      for (const auto& c : changes) {
        if (c.op == GalleryChange::Op::kRemove) {
          Stmt d(db_, "DELETE FROM rules WHERE person = ?");
          d.Bind(1, c.person);
          d.Step();
        } else {
          Stmt u(db_, "INSERT OR REPLACE INTO rules (person, display_name, rules) VALUES (?,?,?)");
          u.Bind(1, c.person)
              .Bind(2, c.display_name)
              .Bind(3, (c.rules.is_null() ? nlohmann::json::object() : c.rules).dump());
          u.Step();
        }
      }
      if (new_version >= 0) {
        Stmt v(db_, "INSERT OR REPLACE INTO kv (key, value) VALUES ('gallery_version', ?)");
        v.Bind(1, std::to_string(new_version));
        v.Step();
      }
      Stmt d(db_, "DELETE FROM pending WHERE id = ?");
      d.Bind(1, pending_id);
      d.Step();
      Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  // 3. Memory, in change order: a removal drops the rules before the templates, an
  //    upsert adds the templates before the rules, so no frame sees "known and allowed"
  //    half-way. Skipped while opening (PARSED null): the index is then filled from disk.
  if (!parsed) return;
  for (size_t i = 0; i < changes.size(); ++i) {
    const auto& c = changes[i];
    if (c.op == GalleryChange::Op::kRemove) {
      {
        std::unique_lock rl(rules_mu_);
        rules_.erase(c.person);
      }
      index_->RemovePerson(c.person);
      continue;
    }
    std::vector<match::TemplateInput> in;
    for (size_t k = 0; k < c.templates.size(); ++k) in.push_back({c.templates[k], ids[i][k]});
    if (in.empty())
      index_->RemovePerson(c.person);
    else
      index_->ReplacePerson(c.person, in, model_version_);
    std::unique_lock rl(rules_mu_);
    rules_[c.person] = (*parsed)[i];
  }
  if (new_version >= 0) version_ = new_version;  // only once memory matches it
}

void LocalState::ReplaceAll(const std::vector<GalleryChange>& persons, int64_t new_version) {
  std::set<std::string> keep;
  for (const auto& p : persons) keep.insert(p.person);
  std::set<std::string> present;
  {
    std::shared_lock rl(rules_mu_);
    for (const auto& [person, r] : rules_) present.insert(person);
  }
  for (const auto& t : gallery_->LoadAll(options_.load_threads)) present.insert(t.identity);
  std::vector<GalleryChange> changes;
  for (const auto& p : present)
    if (!keep.count(p)) {
      GalleryChange c;
      c.op = GalleryChange::Op::kRemove;
      c.person = p;
      c.reason = "package_import";
      changes.push_back(std::move(c));
    }
  changes.insert(changes.end(), persons.begin(), persons.end());
  ApplyBatch(changes, new_version);
}

int64_t LocalState::gallery_version() const {
  return version_;
}

std::optional<PersonRules> LocalState::Rules(const std::string& person) const {
  std::shared_lock lock(rules_mu_);
  auto it = rules_.find(person);
  if (it == rules_.end()) return std::nullopt;
  return it->second;
}

RulesLookup LocalState::Lookup() const {
  return [this](const std::string& person) { return Rules(person); };
}

size_t LocalState::persons() const {
  return index_->persons();
}

std::vector<StoredPerson> LocalState::Export() const {
  std::map<std::string, StoredPerson> by_person;
  for (auto& t : gallery_->LoadAll(options_.load_threads)) {
    auto& p = by_person[t.identity];
    p.person = t.identity;
    p.templates.push_back(std::move(t.feature));
  }
  {
    std::lock_guard db_lock(db_mu_);
    Stmt q(db_, "SELECT person, display_name, rules FROM rules");
    while (q.Step()) {
      auto& p = by_person[q.Text(0)];
      p.person = q.Text(0);
      p.display_name = q.Text(1);
      p.rules = nlohmann::json::parse(q.Text(2));
    }
  }
  std::vector<StoredPerson> out;
  for (auto& [person, p] : by_person) {
    if (p.rules.is_null()) p.rules = nlohmann::json::object();
    out.push_back(std::move(p));
  }
  return out;
}

std::optional<std::string> LocalState::Get(const std::string& key) const {
  std::lock_guard db_lock(db_mu_);
  Stmt q(db_, "SELECT value FROM kv WHERE key = ?");
  q.Bind(1, key);
  if (!q.Step()) return std::nullopt;
  return q.Text(0);
}

void LocalState::Put(const std::string& key, const std::string& value) {
  std::lock_guard db_lock(db_mu_);
  Stmt q(db_, "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)");
  q.Bind(1, key).Bind(2, value);
  q.Step();
}

bool LocalState::registered() const {
  return Get("device_id").has_value() && fs::exists(KeysDir(dir_) / "device.pem") &&
         fs::exists(KeysDir(dir_) / "device-data.key") && fs::exists(KeysDir(dir_) / "server.pub");
}

void LocalState::SaveIdentity(const DeviceIdentity& id) {
  const fs::path keys = KeysDir(dir_);
  crypto::WriteSecretFile(keys / "device.pem", id.device_key.PrivatePem());
  crypto::WriteRawKeyFile(keys / "device-data.key", id.data_key);
  crypto::WriteSecretFile(keys / "server.pub", id.server_public_key.PublicPem());
  // The id last: registered() is true only once every key is on disk.
  Put("server_url", id.server_url);
  Put("device_id", id.device_id);
}

DeviceIdentity LocalState::LoadIdentity() const {
  if (!registered())
    throw Error(ErrorCode::kNotFound,
                "终端尚未注册 / this terminal is not registered (run `anju-terminal register "
                "--server URL --code CODE --data-dir " +
                    dir_.string() + "`)");
  const fs::path keys = KeysDir(dir_);
  return DeviceIdentity{*Get("device_id"), Get("server_url").value_or(""),
                        crypto::Sm2Key::FromPrivatePem(crypto::ReadSecretFile(keys / "device.pem")),
                        crypto::LoadRawKeyFile(keys / "device-data.key"),
                        crypto::Sm2Key::FromPublicPem(crypto::ReadSecretFile(keys / "server.pub"))};
}

}  // namespace anju::terminal
