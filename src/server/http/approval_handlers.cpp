// The HTTP shape of requests that one user makes and another approves (R4.2.1.1): bulk
// exports (approvals/export_service.h) and bulk deletions (approvals/deletion_service.h).
#include <nlohmann/json.hpp>

#include "server/access/rbac.h"
#include "server/approvals/deletion_service.h"
#include "server/approvals/export_service.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

void RegisterExportHandlers(Router& router, ExportService& exports) {
  router
      .Add("POST", "/api/v1/exports", "exports", Auth::kAdmin, "export.request",
           "Request a bulk export (events or persons as CSV, enrolment photos as a tar); another "
           "user approves it",
           [&exports](Request& r) {
             return Reply::Json(exports.Request(r.principal, r.body.at("kind").get<std::string>(),
                                                r.body.value("filter", json::object()),
                                                r.body.at("reason").get<std::string>()),
                                201);
           })
      .Body(Obj({Req("kind", Str("events or persons: CSV; photos: a tar of watermarked JPEGs "
                                 "(filter: status, persons)")
                                 .Enum({"events", "persons", "photos"})),
                 Opt("filter", Obj({}).Open()),
                 Req("reason", Str("why the data leaves the system").MaxLength(1000))}));

  router
      .Add("GET", "/api/v1/exports", "exports", Auth::kAdmin, kPermSelf,
           "Export requests (one's own; every request with export.approve)",
           [&exports](Request& r) {
             const Paging p = ReadPaging(r);
             const json page = exports.List(r.principal, p.limit, p.offset);
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams());

  for (const std::string decision : {"approve", "reject"}) {
    router
        .Add("POST", "/api/v1/exports/{id}/" + decision, "exports", Auth::kAdmin, "export.approve",
             decision == "approve" ? "Approve an export (not one's own)" : "Reject an export",
             [&exports, decision](Request& r) {
               return Reply::Json(exports.Decide(std::stoll(r.Path("id")), decision == "approve",
                                                 r.body.value("note", ""), r.principal));
             })
        .Body(Obj({Opt("note", Str().MaxLength(1000))}));
  }

  router
      .Add("POST", "/api/v1/exports/{id}/download", "exports", Auth::kAdmin, "export.request",
           "Download an approved export once (requester only), encrypted with the passphrase "
           "and watermarked; open with `anju export open`",
           [&exports](Request& r) {
             auto file = exports.Download(std::stoll(r.Path("id")),
                                          r.body.at("passphrase").get<std::string>(), r.principal);
             Reply rep;
             rep.body = std::move(file.bytes);
             rep.content_type = "application/octet-stream";
             rep.headers.emplace_back("Content-Disposition",
                                      "attachment; filename=\"" + file.name + "\"");
             return rep;
           })
      .Body(Obj({Req("passphrase", Str().MaxLength(256))}))
      .Returns("application/octet-stream", "encrypted export file");
}

void RegisterDeletionHandlers(Router& router, DeletionService& deletions) {
  router
      .Add("POST", "/api/v1/deletions", "deletions", Auth::kAdmin, "archive.write",
           "Request a bulk deletion of face data or archives (listed persons or a filter); "
           "another user approves it",
           [&deletions](Request& r) {
             std::optional<std::vector<std::string>> persons;
             std::optional<json> filter;
             if (r.body.contains("persons"))
               persons = r.body["persons"].get<std::vector<std::string>>();
             else if (r.body.contains("filter"))
               filter = r.body["filter"];
             return Reply::Json(deletions.Request(r.principal, r.body.at("kind").get<std::string>(),
                                                  persons, filter,
                                                  r.body.at("reason").get<std::string>()),
                                201);
           })
      .Body(
          Obj({Req("kind", Str("biometrics: photos and feature codes; archives: the whole "
                               "archive (personal fields erased)")
                               .Enum({"biometrics", "archives"})),
               Opt("persons", Arr(Str("identity code").MaxLength(64))),
               Opt("filter", Obj({Opt("status", Str().Enum({"", "active", "moved_out"})),
                                  Opt("moved_out_before_ms", Int("moved out before (Unix ms)"))})),
               Req("reason", Str("why the data is destroyed").MaxLength(1000))}));

  router
      .Add("GET", "/api/v1/deletions", "deletions", Auth::kAdmin, kPermSelf,
           "Bulk deletion requests (one's own; every request with export.approve)",
           [&deletions](Request& r) {
             const Paging p = ReadPaging(r);
             const json page = deletions.List(r.principal, p.limit, p.offset);
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/deletions/{id}", "deletions", Auth::kAdmin, kPermSelf,
             "One request with every identity code it names", [&deletions](Request& r) {
               return Reply::Json(deletions.Get(std::stoll(r.Path("id")), r.principal));
             });

  router
      .Add("POST", "/api/v1/deletions/{id}/reject", "deletions", Auth::kAdmin, "export.approve",
           "Reject a bulk deletion",
           [&deletions](Request& r) {
             return Reply::Json(deletions.Reject(std::stoll(r.Path("id")),
                                                 r.body.value("note", ""), r.principal));
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  router
      .Add("POST", "/api/v1/deletions/{id}/approve", "deletions", Auth::kAdmin, "export.approve",
           "Approve a bulk deletion (not one's own); the server deletes at once and reports "
           "how many persons and photos",
           [&deletions](Request& r) {
             return Reply::Json(deletions.Approve(std::stoll(r.Path("id")),
                                                  r.body.value("note", ""), r.principal));
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));
}

}  // namespace anju::server
