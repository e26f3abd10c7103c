#include "server/storage/photo_repo.h"

#include "core/clock.h"
#include "db/postgres.h"
#include "server/storage/repo_sql.h"

namespace anju::server::storage {

using nlohmann::json;

namespace {

// Appends PERSON_ID to the feature change log as the caller's transaction commits (at
// once, in a transaction of its own, outside one). Taking the lock last, just before the
// commit, keeps the log in commit order and never waits in a cycle: nothing else is locked
// after it.
void LogFeatureChange(db::Conn& c, int64_t person_id) {
  auto append = [&c, person_id] {
    db::LockInTransaction(c, db::AdvisoryKey("feature-log"));
    db::Stmt s(c, "INSERT INTO feature_log(person_id, time_ms) VALUES(?, ?)");
    s.Bind(1, person_id).Bind(2, NowMs()).Run();
  };
  if (c.in_transaction()) return c.BeforeCommit(append);
  db::Transaction tx(c);
  append();
  tx.Commit();
}

}  // namespace

int64_t PhotoRepo::InsertPhoto(db::Conn& c, int64_t person_id, const std::string& file,
                               int64_t bytes, const std::string& quality_json, int64_t now_ms,
                               const std::string& actor) {
  db::Stmt p(c,
             "INSERT INTO photos(person_id, file, bytes, quality, created_ms, operator) "
             "VALUES(?,?,?,?,?,?) RETURNING id");
  p.Bind(1, person_id)
      .Bind(2, file)
      .Bind(3, bytes)
      .Bind(4, quality_json)
      .Bind(5, now_ms)
      .Bind(6, actor);
  return InsertReturningId(p);
}

std::optional<std::pair<int64_t, std::string>> PhotoRepo::Photo(db::Conn& c, std::string_view id,
                                                                int64_t person_id) {
  const auto row = RowIdOf(id);
  if (!row) return std::nullopt;
  db::Stmt s(c, "SELECT id, file FROM photos WHERE id = ? AND person_id = ?");
  s.Bind(1, *row).Bind(2, person_id);
  if (!s.Step()) return std::nullopt;
  return std::pair{s.Int(0), s.Text(1)};
}

json PhotoRepo::Photos(db::Conn& c, int64_t person_id) {
  db::Stmt ph(c,
              "SELECT p.id, p.bytes, p.quality, p.created_ms, p.operator, f.id, "
              "f.model_version FROM photos p LEFT JOIN features f ON f.photo_id = p.id "
              "WHERE p.person_id = ? ORDER BY p.id");
  ph.Bind(1, person_id);
  json out = json::array();
  while (ph.Step())
    out.push_back({{"id", ph.Int(0)},
                   {"bytes", ph.Int(1)},
                   {"quality", json::parse(ph.Text(2))},
                   {"created_ms", ph.Int(3)},
                   {"operator", ph.Text(4)},
                   {"template", "t-" + std::to_string(ph.Int(5))},
                   {"model_version", ph.Text(6)}});
  return out;
}

std::vector<std::string> PhotoRepo::PhotoFiles(db::Conn& c, int64_t person_id) {
  db::Stmt s(c, "SELECT file FROM photos WHERE person_id = ?");
  s.Bind(1, person_id);
  std::vector<std::string> files;
  while (s.Step()) files.push_back(s.Text(0));
  return files;
}

std::vector<int64_t> PhotoRepo::DeletePhoto(db::Conn& c, int64_t photo_id) {
  db::Stmt owner(c, "SELECT person_id FROM photos WHERE id = ?");
  owner.Bind(1, photo_id);
  if (owner.Step()) LogFeatureChange(c, owner.Int(0));
  std::vector<int64_t> features;
  db::Stmt f(c, "SELECT id FROM features WHERE photo_id = ?");
  f.Bind(1, photo_id);
  while (f.Step()) features.push_back(f.Int(0));
  db::Stmt df(c, "DELETE FROM features WHERE photo_id = ?");
  df.Bind(1, photo_id).Run();
  db::Stmt dp(c, "DELETE FROM photos WHERE id = ?");
  dp.Bind(1, photo_id).Run();
  return features;
}

int64_t PhotoRepo::InsertFeature(db::Conn& c, int64_t person_id, std::optional<int64_t> photo_id,
                                 const std::string& model_version, std::span<const uint8_t> sealed,
                                 int64_t now_ms) {
  db::Stmt f(c,
             "INSERT INTO features(person_id, photo_id, model_version, sealed, created_ms) "
             "VALUES(?,?,?,?,?) RETURNING id");
  f.Bind(1, person_id).Bind(2, photo_id).Bind(3, model_version).Bind(4, sealed).Bind(5, now_ms);
  const int64_t id = InsertReturningId(f);
  LogFeatureChange(c, person_id);
  return id;
}

int64_t PhotoRepo::CountFeatures(db::Conn& c, int64_t person_id) {
  db::Stmt s(c, "SELECT COUNT(*) FROM features WHERE person_id = ?");
  s.Bind(1, person_id).Step();
  return s.Int(0);
}

void PhotoRepo::ForEachFeature(
    db::Conn& c, const std::string& model_version,
    const std::function<void(int64_t, const std::string&, std::span<const uint8_t>)>& f) {
  db::Stmt s(c,
             "SELECT f.id, p.code, f.sealed FROM features f JOIN persons p ON p.id = f.person_id "
             "WHERE f.model_version = ?");
  s.Bind(1, model_version);
  while (s.Step()) {
    const auto sealed = s.Blob(2);
    f(s.Int(0), s.Text(1), sealed);
  }
}

void PhotoRepo::DeleteBiometrics(db::Conn& c, int64_t person_id) {
  LogFeatureChange(c, person_id);
  db::Stmt f(c, "DELETE FROM features WHERE person_id = ?");
  f.Bind(1, person_id).Run();
  db::Stmt p(c, "DELETE FROM photos WHERE person_id = ?");
  p.Bind(1, person_id).Run();
}

std::optional<PhotoRepo::PersonFeatures> PhotoRepo::FeaturesOf(db::Conn& c, int64_t person_id,
                                                               const std::string& model_version) {
  db::Stmt p(c, "SELECT code FROM persons WHERE id = ?");
  p.Bind(1, person_id);
  if (!p.Step()) return std::nullopt;
  PersonFeatures out{p.Text(0), {}};
  db::Stmt f(c, "SELECT id, sealed FROM features WHERE person_id = ? AND model_version = ?");
  f.Bind(1, person_id).Bind(2, model_version);
  while (f.Step()) {
    const auto sealed = f.Blob(1);
    out.features.emplace_back(f.Int(0), std::vector<uint8_t>(sealed.begin(), sealed.end()));
  }
  return out;
}

std::vector<PhotoRepo::FeatureChange> PhotoRepo::FeatureChangesAfter(db::Conn& c, int64_t seq,
                                                                     int64_t limit) {
  db::Stmt s(c, "SELECT seq, person_id FROM feature_log WHERE seq > ? ORDER BY seq LIMIT ?");
  s.Bind(1, seq).Bind(2, limit);
  std::vector<FeatureChange> out;
  while (s.Step()) out.push_back({s.Int(0), s.Int(1)});
  return out;
}

std::pair<int64_t, int64_t> PhotoRepo::FeatureLogBounds(db::Conn& c) {
  db::Stmt s(c, "SELECT COALESCE(MIN(seq), 0), COALESCE(MAX(seq), 0) FROM feature_log");
  s.Step();
  return {s.Int(0), s.Int(1)};
}

int64_t PhotoRepo::PruneFeatureLog(db::Conn& c, int64_t before_ms) {
  db::Stmt s(c, "DELETE FROM feature_log WHERE time_ms < ?");
  s.Bind(1, before_ms).Run();
  return c.Changes();
}

int64_t ImportRepo::Insert(db::Conn& c, int64_t now_ms, const std::string& actor, int64_t total) {
  db::Stmt s(c,
             "INSERT INTO imports(created_ms, actor, state, total) VALUES(?,?,?,?) RETURNING id");
  s.Bind(1, now_ms).Bind(2, actor).Bind(3, "running").Bind(4, total);
  return InsertReturningId(s);
}

void ImportRepo::Save(db::Conn& c, int64_t id, const std::string& state, int64_t done,
                      const std::string& results_json, std::optional<int64_t> finished_ms) {
  db::Stmt s(c,
             "UPDATE imports SET state = ?, done = ?, results = ?, finished_ms = ? "
             "WHERE id = ?");
  s.Bind(1, state).Bind(2, done).Bind(3, results_json).Bind(4, finished_ms).Bind(5, id).Run();
}

std::optional<json> ImportRepo::Get(db::Conn& c, std::string_view id) {
  const auto row = RowIdOf(id);
  if (!row) return std::nullopt;
  db::Stmt s(c,
             "SELECT id, created_ms, actor, state, total, done, results, finished_ms FROM "
             "imports WHERE id = ?");
  s.Bind(1, *row);
  if (!s.Step()) return std::nullopt;
  const auto finished = s.OptInt(7);
  return json{{"id", s.Int(0)},
              {"created_ms", s.Int(1)},
              {"actor", s.Text(2)},
              {"state", s.Text(3)},
              {"total", s.Int(4)},
              {"done", s.Int(5)},
              {"results", json::parse(s.Text(6))},
              {"finished_ms", finished ? json(*finished) : json()}};
}

}  // namespace anju::server::storage
