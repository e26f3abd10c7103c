// Accounts and approvals (issue 7): login / logout / password / TOTP, users and their
// roles, API tokens, sessions, and bulk exports that one user requests and another
// approves (R4.2.1.1). The logic lives in server/accounts.h; this file is the HTTP shape.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "crypto/password.h"
#include "protocol/api_error.h"
#include "server/accounts.h"
#include "server/audit.h"
#include "server/export_archive.h"
#include "server/rbac.h"
#include "server/server_state.h"
#include "server/site_scope.h"

namespace anju::server {

using nlohmann::json;
using protocol::ApiError;

namespace {

std::vector<std::string> Strings(const json& j) {
  return j.get<std::vector<std::string>>();
}

json ExportJson(Stmt& s) {
  return {{"id", s.Int(0)},
          {"requester", s.Text(1)},
          {"kind", s.Text(2)},
          {"filter", json::parse(s.Text(3))},
          {"reason", s.Text(4)},
          {"state", s.Text(5)},
          {"created_ms", s.Int(6)},
          {"approver", s.IsNull(7) ? json() : json(s.Text(7))},
          {"decided_ms", J(s.OptInt(8))},
          {"note", s.Text(9)},
          {"downloaded_ms", J(s.OptInt(10))},
          {"rows", J(s.OptInt(11))}};
}

constexpr const char* kExportColumns =
    "SELECT id, requester, kind, filter, reason, state, created_ms, approver, decided_ms, note, "
    "downloaded_ms, rows FROM exports";

// RFC 4180 field.
std::string Csv(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string Server::Impl::RenderExport(const std::string& kind, const json& filter,
                                       const Principal& who, const std::string& watermark,
                                       int64_t* rows) {
  const SiteScope scope(who);  // the requester's sites bound what the file holds
  std::ostringstream out;
  out << "\xEF\xBB\xBF";  // UTF-8 BOM for spreadsheet programs
  *rows = 0;
  if (kind == "persons") {
    out << "编码 / code,姓名 / name,电话 / phone,状态 / status,入住 / moved_in_ms,迁出 / "
           "moved_out_ms\n";
    std::lock_guard lock(db->mutex());
    const std::string status = filter.value("status", "");
    Stmt s(db->handle(),
           "SELECT code, name, phone, status, moved_in_ms, moved_out_ms FROM persons WHERE (?1 = "
           "'' OR status = ?1) AND " +
               scope.PersonCondition("id") + " ORDER BY code");
    s.Bind(1, status);
    while (s.Step()) {
      out << Csv(s.Text(0)) << ',' << Csv(s.Text(1)) << ',' << Csv(s.Text(2)) << ','
          << Csv(s.Text(3)) << ',' << (s.IsNull(4) ? "" : std::to_string(s.Int(4))) << ','
          << (s.IsNull(5) ? "" : std::to_string(s.Int(5))) << '\n';
      ++*rows;
    }
    return out.str();
  }
  if (kind == "photos") return RenderPhotoExport(filter, who, watermark, rows);
  if (kind == "events") {
    EventQuery q;
    q.from_ms = filter.value("from_ms", int64_t(0));
    q.to_ms = filter.value("to_ms", int64_t(0));
    q.door = filter.value("door", "");
    q.device = filter.value("device", "");
    q.person = filter.value("person", "");
    q.kind = filter.value("kind", "");
    q.decision = filter.value("decision", "");
    q.devices = ScopedDevices(who);
    std::ostringstream csv;
    *rows = int64_t(events->ExportCsv(q, csv));
    return csv.str();
  }
  throw ApiError(400, "bad_request", "不支持的导出类型 / unsupported export kind: " + kind);
}

// A tar of the enrolment photos of the persons FILTER selects (status, persons), each
// watermarked with the export, and a manifest. Bounded, because the file is built in memory.
std::string Server::Impl::RenderPhotoExport(const json& filter, const Principal& who,
                                            const std::string& watermark, int64_t* rows) {
  constexpr int64_t kMaxPhotos = 2000;
  const SiteScope scope(who);
  struct Photo {
    std::string code, name, file;
    int64_t id, created_ms;
  };
  std::vector<Photo> photos;
  {
    std::lock_guard lock(db->mutex());
    Stmt s(db->handle(),
           "SELECT p.code, p.name, ph.file, ph.id, ph.created_ms FROM photos ph JOIN persons p ON "
           "p.id = ph.person_id WHERE (?1 = '' OR p.status = ?1) AND (?3 IS NULL OR p.code IN "
           "(SELECT value FROM json_each(?3))) AND " +
               scope.PersonCondition("p.id") + " ORDER BY p.code, ph.id LIMIT ?2");
    if (filter.contains("persons")) s.Bind(3, filter["persons"].dump());
    s.Bind(1, filter.value("status", "")).Bind(2, kMaxPhotos + 1);
    while (s.Step()) photos.push_back({s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4)});
  }
  if (int64_t(photos.size()) > kMaxPhotos)
    throw ApiError(413, "too_large",
                   "照片超过 2000 张，请缩小范围 / more than 2000 photos: narrow the filter");
  // The images get the English part: the drawing font has no Chinese.
  const size_t english = watermark.find("anju export");
  const std::string image_mark =
      english == std::string::npos ? watermark : watermark.substr(english);
  std::vector<std::pair<std::string, std::string>> files;
  std::ostringstream manifest;
  manifest << "\xEF\xBB\xBF编码 / code,姓名 / name,照片 / photo,文件 / file,采集 / created_ms\n";
  for (const auto& p : photos) {
    const auto plain = ReadPhoto(p.file);
    const std::string path = "photos/" + p.code + "/" + std::to_string(p.id) + ".jpg";
    files.emplace_back(path, WatermarkJpeg(std::string(plain.begin(), plain.end()), image_mark));
    manifest << Csv(p.code) << ',' << Csv(p.name) << ',' << p.id << ',' << path << ','
             << p.created_ms << '\n';
  }
  *rows = int64_t(photos.size());
  files.emplace_back("manifest.csv", manifest.str());
  files.emplace_back("WATERMARK.txt", watermark + "\n");
  return TarArchive(files, NowMs() / 1000);
}

json ApprovalRequestPage(Database& db, const Request& r, const std::string& table,
                         const std::string& select, const std::function<json(Stmt&)>& to_json) {
  const Paging p = ReadPaging(r);
  const bool all = r.principal.Can("export.approve");
  std::lock_guard lock(db.mutex());
  Stmt c(db.handle(), "SELECT COUNT(*) FROM " + table + " WHERE ?1 OR requester = ?2");
  c.Bind(1, int64_t(all)).Bind(2, r.actor).Step();
  Stmt s(db.handle(), select + " WHERE ?1 OR requester = ?2 ORDER BY id DESC LIMIT ?3 OFFSET ?4");
  s.Bind(1, int64_t(all)).Bind(2, r.actor).Bind(3, p.limit).Bind(4, p.offset);
  json items = json::array();
  while (s.Step()) items.push_back(to_json(s));
  return PageJson(items, c.Int(0), p);
}

void Server::Impl::AddAuthRoutes() {
  // ---- sessions ------------------------------------------------------------------------
  router
      .Add("POST", "/api/v1/auth/login", "auth", Auth::kNone,
           "Log in: 200 with a session token; 401 wrong credentials or TOTP needed; 423 locked "
           "(with until_ms)",
           [this](Request& r) {
             const auto res = accounts->Login(r.body.at("username").get<std::string>(),
                                              r.body.at("password").get<std::string>(),
                                              r.body.value("totp", ""), r.http.remote_addr);
             return Reply::Json({{"token", res.token},
                                 {"expires_ms", res.expires_ms},
                                 {"idle_timeout_s", accounts->policy().idle_timeout_ms / 1000},
                                 {"user", res.user}});
           })
      .Body(Obj({Req("username", Str().MaxLength(64)), Req("password", Str().MaxLength(256)),
                 Opt("totp", Str("6-digit code (administrators)").MaxLength(16))}));

  router.Add("POST", "/api/v1/auth/logout", "auth", Auth::kAdmin, kPermSelf, "End this session",
             [this](Request& r) {
               accounts->Logout(r.principal);
               return Reply::Json({{"ok", true}});
             });

  router.Add("GET", "/api/v1/auth/me", "auth", Auth::kAdmin, kPermSelf,
             "The logged-in user (roles, permissions, what must happen first)", [this](Request& r) {
               if (r.principal.kind != "user")
                 return Reply::Json({{"username", r.principal.name},
                                     {"roles", r.principal.roles},
                                     {"permissions", r.principal.permissions},
                                     {"must_change_password", false},
                                     {"totp_required", false},
                                     {"totp_enabled", false}});
               json u = accounts->UserJson(r.principal.user_id);
               u["restriction"] = r.principal.restriction;
               return Reply::Json(u);
             });

  router
      .Add("POST", "/api/v1/auth/password", "auth", Auth::kAdmin, kPermSelf,
           "Change one's password (policy: ≥ 8 characters, 3 classes, not a recent one)",
           [this](Request& r) {
             accounts->ChangePassword(r.principal, r.body.at("old_password").get<std::string>(),
                                      r.body.at("new_password").get<std::string>());
             return Reply::Json(accounts->UserJson(r.principal.user_id));
           })
      .Body(Obj(
          {Req("old_password", Str().MaxLength(256)), Req("new_password", Str().MaxLength(256))}));

  router.Add("POST", "/api/v1/auth/totp/setup", "auth", Auth::kAdmin, kPermSelf,
             "Start TOTP enrolment: a secret and otpauth URI for an authenticator app",
             [this](Request& r) { return Reply::Json(accounts->StartTotp(r.principal)); });

  router
      .Add("POST", "/api/v1/auth/totp/confirm", "auth", Auth::kAdmin, kPermSelf,
           "Finish TOTP enrolment with a current code",
           [this](Request& r) {
             accounts->ConfirmTotp(r.principal, r.body.at("code").get<std::string>());
             return Reply::Json(accounts->UserJson(r.principal.user_id));
           })
      .Body(Obj({Req("code", Str().MaxLength(16))}));

  router.Add("GET", "/api/v1/auth/sessions", "auth", Auth::kAdmin, kPermSelf, "One's open sessions",
             [this](Request& r) {
               return Reply::Json({{"items", accounts->ListSessions(r.principal.user_id)}});
             });
  router.Add("DELETE", "/api/v1/auth/sessions/{id}", "auth", Auth::kAdmin, kPermSelf,
             "End a session (one's own; any with users.manage)", [this](Request& r) {
               accounts->RevokeSession(std::stoll(r.Path("id")), r.principal);
               return Reply::Json({{"ok", true}});
             });

  // ---- users (sysadmin) and roles (secadmin) ---------------------------------------------
  router
      .Add("GET", "/api/v1/users", "users", Auth::kAdmin, "users.manage",
           "User accounts (the security administrator reads them to grant roles)",
           [this](Request&) { return Reply::Json({{"items", accounts->ListUsers()}}); })
      .OrPerm("roles.manage");
  router.Add("GET", "/api/v1/roles", "users", Auth::kAdmin, "roles.manage",
             "Roles and their permissions", [](Request&) {
               json roles = json::array();
               for (const auto& role : AllRoles())
                 roles.push_back({{"role", role},
                                  {"admin", IsAdminRole(role)},
                                  {"permissions", RolePermissions(role)}});
               json perms = json::array();
               for (const auto& [p, d] : AllPermissions())
                 perms.push_back({{"permission", p}, {"description", d}});
               return Reply::Json({{"roles", roles}, {"permissions", perms}});
             });
  router
      .Add("POST", "/api/v1/users", "users", Auth::kAdmin, "users.manage",
           "Create an account (no roles until a security administrator grants them; the "
           "password is one-time)",
           [this](Request& r) {
             return Reply::Json(
                 accounts->CreateUser(r.body.at("username").get<std::string>(),
                                      r.body.value("display_name", ""),
                                      r.body.at("password").get<std::string>(), r.principal),
                 201);
           })
      .Body(Obj({Req("username", Str().MaxLength(64)), Opt("display_name", Str().MaxLength(100)),
                 Req("password", Str("one-time password").MaxLength(256))}));
  router
      .Add("PATCH", "/api/v1/users/{username}", "users", Auth::kAdmin, "users.manage",
           "Disable / enable, unlock, set a one-time password, reset TOTP (users.manage for "
           "accounts without an administrator role, roles.manage for administrators'; 202 "
           "when a change to a security administrator waits for a second administrator)",
           [this](Request& r) {
             json out = accounts->UpdateUser(r.Path("username"), r.body, r.principal);
             return Reply::Json(out, out.contains("request") ? 202 : 200);
           })
      .OrPerm("roles.manage")
      .Body(Obj({Opt("disabled", Bool()), Opt("unlock", Bool()),
                 Opt("password", Str().MaxLength(256)), Opt("reset_totp", Bool())}));
  router
      .Add("PUT", "/api/v1/users/{username}/roles", "users", Auth::kAdmin, "roles.manage",
           "Grant roles and sites (an account holds at most one administrator role; 202 when "
           "granting or taking away secadmin waits for a second administrator)",
           [this](Request& r) {
             std::vector<int64_t> sites;
             if (r.body.contains("sites")) sites = r.body["sites"].get<std::vector<int64_t>>();
             json out = accounts->SetRoles(r.Path("username"), Strings(r.body.at("roles")), sites,
                                           r.principal);
             return Reply::Json(out, out.contains("request") ? 202 : 200);
           })
      .Body(Obj({Req("roles", Arr(Str().Enum(AllRoles()))), Opt("sites", Arr(Int()))}));
  router
      .Add("POST", "/api/v1/users/{username}/review", "users", Auth::kAdmin, "policy.manage",
           "Lift a risk block after review",
           [this](Request& r) {
             return Reply::Json(
                 accounts->Review(r.Path("username"), r.body.value("note", ""), r.principal));
           })
      .Body(Obj({Req("note", Str().MaxLength(1000))}));

  // ---- changes to a security administrator, co-signed (R4.2.1.1) --------------------------
  router.Add("GET", "/api/v1/admin-changes", "users", Auth::kAdmin, "admin.cosign",
             "Changes to security administrators' accounts and their co-signatures",
             [this](Request&) { return Reply::Json({{"items", accounts->ListAdminChanges()}}); });
  for (const std::string decision : {"approve", "reject"})
    router
        .Add("POST", "/api/v1/admin-changes/{id}/" + decision, "users", Auth::kAdmin,
             "admin.cosign",
             decision == "approve"
                 ? "Co-sign a change to a security administrator (another administrator than "
                   "the requester and the account changed); it takes effect"
                 : "Refuse a change to a security administrator",
             [this, decision](Request& r) {
               return Reply::Json(accounts->DecideAdminChange(
                   std::stoll(r.Path("id")), decision == "approve", r.body.value("note", ""),
                   r.principal));
             })
        .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- API tokens (secadmin) -------------------------------------------------------------
  router.Add("GET", "/api/v1/tokens", "users", Auth::kAdmin, "roles.manage",
             "API tokens for integrations", [this](Request&) {
               return Reply::Json({{"items", accounts->ListTokens()}});
             });
  router
      .Add("POST", "/api/v1/tokens", "users", Auth::kAdmin, "roles.manage",
           "Create an API token (shown once) with integration roles (operator, viewer, "
           "installer), limited to sites within the creator's, expiring after 1–365 days",
           [this](Request& r) {
             std::vector<int64_t> sites;
             if (r.body.contains("sites")) sites = r.body["sites"].get<std::vector<int64_t>>();
             return Reply::Json(
                 accounts->CreateToken(r.body.at("name").get<std::string>(),
                                       Strings(r.body.at("roles")), sites,
                                       r.body.value("expires_in_days", 90), r.principal),
                 201);
           })
      .Body(Obj({Req("name", Str().MaxLength(64)), Req("roles", Arr(Str().Enum(AllRoles()))),
                 Opt("sites", Arr(Int())),
                 Opt("expires_in_days", Int("1–365, default 90"))}));
  router.Add("POST", "/api/v1/tokens/{id}/revoke", "users", Auth::kAdmin, "roles.manage",
             "Revoke an API token", [this](Request& r) {
               accounts->RevokeToken(std::stoll(r.Path("id")), r.principal);
               return Reply::Json({{"ok", true}});
             });

  // ---- security policy (secadmin reads it; the config file sets it) ----------------------
  router.Add("GET", "/api/v1/security/policy", "users", Auth::kAdmin, "policy.manage",
             "Lockout, session, password and risk-warning settings", [this](Request&) {
               const auto& p = accounts->policy();
               return Reply::Json({{"max_failures", p.max_failures},
                                   {"lockout_s", p.lockout_ms / 1000},
                                   {"source_max_failures", p.source_max_failures},
                                   {"idle_timeout_s", p.idle_timeout_ms / 1000},
                                   {"session_max_s", p.session_max_ms / 1000},
                                   {"password_max_age_days", p.password_max_age_days},
                                   {"password_history", p.password_history},
                                   {"totp_for_admins", p.totp_for_admins},
                                   {"views_per_hour_alarm", p.views_per_hour_alarm},
                                   {"tls", options.tls}});
             });

  // ---- exports with approval (R4.2.1.1) ---------------------------------------------------
  router
      .Add("POST", "/api/v1/exports", "exports", Auth::kAdmin, "export.request",
           "Request a bulk export (events or persons as CSV, enrolment photos as a tar); another "
           "user approves it",
           [this](Request& r) {
             const std::string kind = r.body.at("kind").get<std::string>();
             const json filter = r.body.value("filter", json::object());
             if (filter.contains("persons") &&
                 (!filter["persons"].is_array() ||
                  !std::all_of(filter["persons"].begin(), filter["persons"].end(),
                               [](const json& c) { return c.is_string(); })))
               throw ApiError(400, "bad_request",
                              "filter.persons 须为编码数组 / filter.persons: identity codes");
             std::lock_guard lock(db->mutex());
             Stmt s(db->handle(),
                    "INSERT INTO exports(requester, kind, filter, reason, state, created_ms) "
                    "VALUES(?,?,?,?, 'pending', ?)");
             s.Bind(1, r.actor).Bind(2, kind).Bind(3, filter.dump());
             s.Bind(4, r.body.at("reason").get<std::string>()).Bind(5, NowMs()).Run();
             const int64_t id = db->LastInsertId();
             Audit(*db, r.actor, "export.request", "export " + std::to_string(id),
                   {{"kind", kind}, {"filter", filter}, {"source", r.principal.source}});
             Stmt q(db->handle(), std::string(kExportColumns) + " WHERE id = ?");
             q.Bind(1, id).Step();
             return Reply::Json(ExportJson(q), 201);
           })
      .Body(Obj({Req("kind", Str("events or persons: CSV; photos: a tar of watermarked JPEGs "
                                 "(filter: status, persons)")
                                 .Enum({"events", "persons", "photos"})),
                 Opt("filter", Obj({}).Open()),
                 Req("reason", Str("why the data leaves the system").MaxLength(1000))}));

  router
      .Add("GET", "/api/v1/exports", "exports", Auth::kAdmin, kPermSelf,
           "Export requests (one's own; every request with export.approve)",
           [this](Request& r) {
             return Reply::Json(ApprovalRequestPage(*db, r, "exports", kExportColumns, ExportJson));
           })
      .Query(PagingParams());

  for (const std::string decision : {"approve", "reject"}) {
    router
        .Add("POST", "/api/v1/exports/{id}/" + decision, "exports", Auth::kAdmin, "export.approve",
             decision == "approve" ? "Approve an export (not one's own)" : "Reject an export",
             [this, decision](Request& r) {
               const int64_t id = std::stoll(r.Path("id"));
               std::lock_guard lock(db->mutex());
               Stmt q(db->handle(), "SELECT requester, state FROM exports WHERE id = ?");
               q.Bind(1, id);
               if (!q.Step()) NotFound("export " + std::to_string(id));
               accounts->CheckApprover(q.Text(0), r.principal);
               if (q.Text(1) != "pending")
                 throw ApiError(409, "conflict", "申请已处理 / already " + q.Text(1));
               Stmt u(db->handle(),
                      "UPDATE exports SET state = ?, approver = ?, decided_ms = ?, note = ? "
                      "WHERE id = ?");
               u.Bind(1, decision == "approve" ? "approved" : "rejected")
                   .Bind(2, r.actor)
                   .Bind(3, NowMs())
                   .Bind(4, r.body.value("note", ""))
                   .Bind(5, id)
                   .Run();
               Audit(*db, r.actor, "export." + decision, "export " + std::to_string(id),
                     {{"note", r.body.value("note", "")}, {"source", r.principal.source}});
               Stmt s(db->handle(), std::string(kExportColumns) + " WHERE id = ?");
               s.Bind(1, id).Step();
               return Reply::Json(ExportJson(s));
             })
        .Body(Obj({Opt("note", Str().MaxLength(1000))}));
  }

  router
      .Add("POST", "/api/v1/exports/{id}/download", "exports", Auth::kAdmin, "export.request",
           "Download an approved export once (requester only), encrypted with the passphrase "
           "and watermarked; open with `anju export open`",
           [this](Request& r) {
             const int64_t id = std::stoll(r.Path("id"));
             std::string kind, approver;
             json filter;
             {
               std::lock_guard lock(db->mutex());
               Stmt q(db->handle(),
                      "SELECT requester, state, kind, filter, approver, decided_ms FROM exports "
                      "WHERE id = ?");
               q.Bind(1, id);
               if (!q.Step()) NotFound("export " + std::to_string(id));
               if (q.Text(0) != r.actor)
                 throw ApiError(403, "forbidden", "只有申请人可以下载 / only the requester");
               if (q.Text(1) == "pending")
                 throw ApiError(403, "approval_required", "尚未审批 / not approved yet");
               if (q.Text(1) != "approved")
                 throw ApiError(409, "conflict", "不可下载 / export is " + q.Text(1));
               kind = q.Text(2);
               filter = json::parse(q.Text(3));
               approver = q.Text(4);
             }
             const std::string passphrase = r.body.at("passphrase").get<std::string>();
             if (passphrase.size() < 8)
               throw ApiError(400, "weak_password", "口令至少 8 位 / passphrase: ≥ 8 characters");
             int64_t rows = 0;
             const int64_t now = NowMs();
             const std::string watermark =
                 "安居导出 #" + std::to_string(id) + " 申请人 " + r.actor + " 审批人 " + approver +
                 " / anju export #" + std::to_string(id) + " for " + r.actor + " approved by " +
                 approver + " time_ms=" + std::to_string(now);
             const std::string data = RenderExport(kind, filter, r.principal, watermark, &rows);
             const json header = {{"export", id},          {"kind", kind},   {"requester", r.actor},
                                  {"approver", approver},  {"time_ms", now}, {"rows", rows},
                                  {"watermark", watermark}};
             // The watermark travels inside the plaintext too, so a copy of the opened CSV
             // still names who took it out (a photo export has it in every image).
             const std::string marked = kind == "photos" ? data : data + "# " + watermark + "\n";
             const auto file =
                 crypto::SealWithPassphrase(passphrase, crypto::AsBytes(marked), header.dump());
             {
               std::lock_guard lock(db->mutex());
               Stmt u(db->handle(),
                      "UPDATE exports SET state = 'downloaded', downloaded_ms = ?, rows = ? "
                      "WHERE id = ? AND state = 'approved'");
               u.Bind(1, now).Bind(2, rows).Bind(3, id).Run();
               if (db->Changes() == 0)
                 throw ApiError(409, "conflict", "已下载 / already downloaded");
               Audit(*db, r.actor, "export.download", "export " + std::to_string(id),
                     {{"rows", rows}, {"kind", kind}, {"source", r.principal.source}});
             }
             if (accounts->CountViews(r.principal, rows)) RaiseRiskAlarm(r.principal);
             Reply rep;
             rep.body.assign(file.begin(), file.end());
             rep.content_type = "application/octet-stream";
             rep.headers.emplace_back("Content-Disposition", "attachment; filename=\"anju-export-" +
                                                                 std::to_string(id) + ".anjx\"");
             return rep;
           })
      .Body(Obj({Req("passphrase", Str().MaxLength(256))}))
      .Returns("application/octet-stream", "encrypted export file");
}

}  // namespace anju::server
