// Administration settings shown in the console (issue 8): the retention periods in force,
// changeable within the guideline's limits, and the key hierarchy with online master-key
// rotation (issue 7, R3.3.3.2). Key material never leaves the server: only key ids.
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "crypto/keyfile.h"
#include "protocol/api_error.h"
#include "server/audit.h"
#include "server/server_state.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using protocol::ApiError;

namespace {

// What a period may be set to from the console. Snapshots at most 12 months and video
// references at most 3 (R3.3.2.6); events at least 6 months, the log keeping R4.2.3.1 asks.
struct PeriodLimit {
  const char* key;  // settings key and JSON field
  int RetentionPolicy::*field;
  int min, max;
};
constexpr PeriodLimit kPeriods[] = {
    {"snapshot_months", &RetentionPolicy::snapshot_months, 1, 12},
    {"video_months", &RetentionPolicy::video_months, 1, 3},
    {"event_months", &RetentionPolicy::event_months, 6, 120},
    {"quarantine_months", &RetentionPolicy::quarantine_months, 1, 24},
};

// The newest audit record with ACTION, or null. Caller holds the db lock.
json LastAudit(Conn& conn, const std::string& action) {
  Stmt s(conn,
         "SELECT time_ms, actor, detail FROM audit WHERE action = ? ORDER BY id DESC LIMIT 1");
  s.Bind(1, action);
  if (!s.Step()) return nullptr;
  json detail;
  try {
    detail = json::parse(s.Text(2));
  } catch (const json::exception&) {
    detail = s.Text(2);
  }
  return {{"time_ms", s.Int(0)}, {"actor", s.Text(1)}, {"detail", detail}};
}

const char* KeyPurpose(const std::string& file) {
  if (file == kArchiveKeyFile)
    return "档案：身份证号、照片、特征码、设备密钥 / archive: ID numbers, photos, feature "
           "codes, device keys";
  if (file == kEventsKeyFile) return "通行与抓拍快照 / event and capture snapshots";
  if (file == kAuditKeyFile) return "审计日志检查点 (HMAC-SM3) / audit log checkpoints";
  return "";
}

}  // namespace

RetentionPolicy Server::Impl::Retention() {
  std::lock_guard lock(retention_mu);
  return retention;
}

void Server::Impl::LoadSettings() {
  RetentionPolicy m;
  m.snapshot_months = options.snapshot_retention_months;
  m.video_months = options.video_retention_months;
  m.event_months = options.event_retention_months;
  m.quarantine_months = options.quarantine_retention_months;
  {
    auto conn = db->Acquire();
    Stmt s(conn, "SELECT key, value FROM settings");
    while (s.Step())
      for (const auto& p : kPeriods)
        if (s.Text(0) == p.key) m.*p.field = std::stoi(s.Text(1));
  }
  std::lock_guard lock(retention_mu);
  retention = m;
}

void Server::Impl::AddAdminRoutes() {
  auto retention_json = [this] {
    const RetentionPolicy m = Retention();
    json out = {{"interval_s", options.retention_interval_s}};
    json limits = json::object();
    for (const auto& p : kPeriods) {
      out[p.key] = m.*p.field;
      limits[p.key] = {{"min", p.min}, {"max", p.max}};
    }
    out["limits"] = limits;
    auto conn = db->Acquire();
    Stmt s(conn,
           "SELECT updated_ms, updated_by FROM settings WHERE key LIKE '%_months' ORDER BY "
           "updated_ms DESC LIMIT 1");
    out["source"] = "config";
    if (s.Step()) {
      out["source"] = "console";
      out["updated_ms"] = s.Int(0);
      out["updated_by"] = s.Text(1);
    }
    out["last_run"] = LastAudit(conn, "retention.completed");
    out["last_capture_run"] = LastAudit(conn, "capture_retention");
    return out;
  };

  router.Add("GET", "/api/v1/admin/retention", "maintenance", Auth::kAdmin, "maintenance",
             "Retention periods in force (R3.3.2.6), their limits, and the last run",
             [retention_json](Request&) { return Reply::Json(retention_json()); });

  std::vector<Prop> fields;
  for (const auto& p : kPeriods) fields.push_back(Opt(p.key, Int("months").Range(p.min, p.max)));
  router
      .Add("PUT", "/api/v1/admin/retention", "maintenance", Auth::kAdmin, "config.manage",
           "Change retention periods within the guideline's limits (kept across restarts; "
           "the next run applies them)",
           [this, retention_json](Request& r) {
             if (r.body.empty())
               throw ApiError(400, "bad_request", "未指定保留期 / no period given");
             json before = json::object(), after = json::object();
             {
               auto conn = db->Acquire();
               Transaction tx(conn);
               const RetentionPolicy now = Retention();
               for (const auto& p : kPeriods) {
                 if (!r.body.contains(p.key)) continue;
                 const int v = r.body[p.key].get<int>();
                 before[p.key] = now.*p.field;
                 after[p.key] = v;
                 Stmt s(conn,
                        "INSERT INTO settings(key, value, updated_ms, updated_by) VALUES(?,?,?,?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = "
                        "excluded.updated_ms, updated_by = excluded.updated_by");
                 s.Bind(1, p.key).Bind(2, std::to_string(v)).Bind(3, NowMs()).Bind(4, r.actor);
                 s.Run();
               }
               Audit(conn, AuditEntry{r.actor,
                                     r.principal.source,
                                     "config.retention",
                                     "retention",
                                     "ok",
                                     {{"before", before}, {"after", after}}});
               tx.Commit();
             }
             LoadSettings();
             return Reply::Json(retention_json());
           })
      .Body(Obj(std::move(fields)));

  // ---- keys (security administrator) -------------------------------------------------------
  auto keys_json = [this] {
    const fs::path dir = options.data_dir;
    json out;
    out["master"] = {{"file", "master.key"},
                     {"id", fs::exists(dir / "master.key")
                                ? json(crypto::LoadRawKeyFile(dir / "master.key").id())
                                : json(nullptr)}};
    json classes = json::array();
    for (const auto& name : ClassKeyFiles()) {
      json k = {{"file", name}, {"purpose", KeyPurpose(name)}};
      if (fs::exists(dir / name)) {
        const crypto::KeyFileInfo i = crypto::ReadKeyFileInfo(dir / name);
        k["key_id"] = i.key_id;
        k["master_id"] = i.master_id;
        k["wrap"] = i.wrap;
        k["created"] = i.created;
      }
      classes.push_back(k);
    }
    out["class_keys"] = classes;
    out["server_sm2"] = {{"file", "server_sm2.pem"},
                         {"fingerprint", keys.server_key.Fingerprint()}};
    out["backup_key"] = {{"file", "backup.key"}, {"id", keys.backup_key.id()}};
    out["tls"] = options.tls
                     ? json{{"certificate", tls.cert.string()}, {"fingerprint", tls.fingerprint}}
                     : json(nullptr);
    auto conn = db->Acquire();
    out["last_rotation"] = LastAudit(conn, "keys.rotate");
    return out;
  };

  router.Add("GET", "/api/v1/keys", "keys", Auth::kAdmin, "keys.manage",
             "The key hierarchy: ids of the master and class keys, which master wraps each, "
             "the server's SM2 and TLS fingerprints (never key material)",
             [keys_json](Request&) { return Reply::Json(keys_json()); });

  router
      .Add("POST", "/api/v1/keys/rotate", "keys", Auth::kAdmin, "keys.manage",
           "New master key; every class key re-wrapped under it, without downtime (the class "
           "keys and all sealed data stay as they are)",
           [this, keys_json](Request& r) {
             const RotateResult res = RotateMasterKey(options.data_dir);
             {
               auto conn = db->Acquire();
               Audit(conn, AuditEntry{r.actor,
                                     r.principal.source,
                                     "keys.rotate",
                                     "master.key",
                                     "ok",
                                     {{"old_master_id", res.old_master_id},
                                      {"new_master_id", res.new_master_id},
                                      {"rewrapped", res.rewrapped},
                                      {"recovered", res.recovered},
                                      {"note", r.body.value("note", "")}}});
             }
             json out = keys_json();
             out["rotation"] = {{"old_master_id", res.old_master_id},
                                {"new_master_id", res.new_master_id},
                                {"rewrapped", res.rewrapped}};
             return Reply::Json(out);
           })
      .Body(Obj({Opt("note", Str("why (kept in the audit log)").MaxLength(1000))}));
}

}  // namespace anju::server
