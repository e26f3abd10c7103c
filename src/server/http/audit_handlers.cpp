// The HTTP shape of the audit log (audit/audit_log.h, R4.2.2.1): read, verify, export; and
// of the administration settings: retention periods (retention/retention_settings.h) and the
// key hierarchy with online master-key rotation (audit/key_info.h, R3.3.3.2).
#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/retention/retention_settings.h"

namespace anju::server {

using nlohmann::json;

void RegisterAuditHandlers(Router& router, db::Db& archive, const crypto::DataKey& audit_key,
                           const std::filesystem::path& head_file) {
  router
      .Add("GET", "/api/v1/audit", "system", Auth::kAdmin, "audit.read",
           "Audit log, newest first (append-only)",
           [&archive](Request& r) {
             const Paging p = ReadPaging(r);
             auto conn = archive.Acquire();
             const auto [records, total] = storage::AuditRepo::Page(
                 conn, r.Query("action").value_or(""), r.Query("object").value_or(""),
                 r.Query("actor").value_or(""), p.limit, p.offset);
             json items = json::array();
             for (const auto& rec : records) {
               json item = ToJson(rec);
               // The list shows what the log says; `anju audit verify` judges the chain.
               item.erase("hash");
               item.erase("time");
               items.push_back(std::move(item));
             }
             return Reply::Json(PageJson(items, total, p));
           })
      .Query(PagingParams({{"action", JType::kString, "only this action"},
                           {"object", JType::kString, "only this object"},
                           {"actor", JType::kString, "only this actor"}}));

  router.Add("POST", "/api/v1/audit/verify", "system", Auth::kAdmin, "audit.read",
             "Verify the SM3 hash chain, the HMAC-SM3 checkpoints and the head of the audit log",
             [&archive, &audit_key, head_file](Request& r) {
               auto conn = archive.Acquire();
               const auto result = VerifyAudit(conn, audit_key, head_file);
               Audit(conn, AuditEntry{r.actor, r.principal.source, "audit.verify", "audit",
                                      result.ok ? "ok" : "broken", result.ToJson()});
               return Reply::Json(result.ToJson());
             });

  router
      .Add("GET", "/api/v1/audit/export", "system", Auth::kAdmin, "audit.read",
           "The audit log as CSV or JSON lines (from_ms, to_ms, actor, action)",
           [&archive](Request& r) {
             AuditQuery q;
             if (auto v = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53)) q.from_ms = v;
             if (auto v = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53)) q.to_ms = v;
             q.actor = r.Query("actor").value_or("");
             q.action = r.Query("action").value_or("");
             const std::string format = r.Query("format").value_or("csv");
             if (format != "csv" && format != "json")
               throw protocol::ApiError(400, "bad_request", "format: csv | json");
             std::ostringstream out;
             auto conn = archive.Acquire();
             const size_t n = ExportAudit(conn, q, format, out);
             Audit(conn, AuditEntry{r.actor,
                                    r.principal.source,
                                    "audit.export",
                                    "audit",
                                    "ok",
                                    {{"records", n}, {"format", format}}});
             Reply rep;
             rep.body = out.str();
             rep.content_type =
                 format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
             rep.headers.emplace_back("Content-Disposition",
                                      std::string("attachment; filename=\"audit.") +
                                          (format == "csv" ? "csv" : "jsonl") + "\"");
             return rep;
           })
      .Query({{"from_ms", JType::kInteger, "time ≥ (Unix ms)"},
              {"to_ms", JType::kInteger, "time < (Unix ms)"},
              {"actor", JType::kString, "only this actor"},
              {"action", JType::kString, "only this action"},
              {"format", JType::kString, "csv (default) or json (JSON lines)"}})
      .Returns("text/csv", "the audit records");
}

void RegisterAdminHandlers(Router& router, RetentionSettings& retention, int64_t interval_s,
                           std::function<json()> keys, std::function<json(const Request&)> rotate) {
  router.Add(
      "GET", "/api/v1/admin/retention", "maintenance", Auth::kAdmin, "maintenance",
      "Retention periods in force (R3.3.2.6), their limits, and the last run",
      [&retention, interval_s](Request&) { return Reply::Json(retention.Json(interval_s)); });

  std::vector<Prop> fields;
  for (const auto& l : RetentionSettings::Limits())
    fields.push_back(Opt(l.key, Int("months").Range(l.min, l.max)));
  router
      .Add("PUT", "/api/v1/admin/retention", "maintenance", Auth::kAdmin, "config.manage",
           "Change retention periods within the guideline's limits (kept across restarts; "
           "the next run applies them)",
           [&retention, interval_s](Request& r) {
             retention.Update(r.body, r.principal);
             return Reply::Json(retention.Json(interval_s));
           })
      .Body(Obj(std::move(fields)));

  router.Add("GET", "/api/v1/keys", "keys", Auth::kAdmin, "keys.manage",
             "The key hierarchy: ids of the master and class keys, which master wraps each, "
             "the server's SM2 and TLS fingerprints (never key material)",
             [keys](Request&) { return Reply::Json(keys()); });

  router
      .Add("POST", "/api/v1/keys/rotate", "keys", Auth::kAdmin, "keys.manage",
           "New master key; every class key re-wrapped under it, without downtime (the class "
           "keys and all sealed data stay as they are)",
           [rotate](Request& r) { return Reply::Json(rotate(r)); })
      .Body(Obj({Opt("note", Str("why (kept in the audit log)").MaxLength(1000))}));
}

}  // namespace anju::server
