// The HTTP shape of persons (archive/person_service.h): identity data, move-in / move-out,
// consent (R1.0.3.1), credentials, history, the removal confirmations of every device, and
// the bulk creation of persons.
#include <nlohmann/json.hpp>

#include "protocol/api_error.h"
#include "server/access/account_support.h"
#include "server/archive/person_service.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

namespace {

// The optional date of birth (null clears it); the service checks that the day exists and is
// not in the future.
Schema BirthDateSchema() {
  return Str("date of birth YYYY-MM-DD (the elderly_not_seen alert rule, R3.4.2.2)")
      .Pattern("^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
      .MaxLength(10)
      .Nullable();
}

}  // namespace

void RegisterPersonHandlers(Router& router, PersonService& persons) {
  const Schema person_fields = Obj(
      {Opt("code", Str("identity code, 1-64 of [A-Za-z0-9_.-]; generated when absent")
                       .Pattern("^[A-Za-z0-9_.-]{1,64}$")),
       Req("name", Str("full name").MaxLength(200)),
       Opt("id_number", Str("ID card number (stored SM4-sealed)").MaxLength(64)),
       Opt("phone", Str().MaxLength(40)), Opt("minor", Bool("under 18: consent from a guardian")),
       Opt("birth_date", BirthDateSchema()), Opt("moved_in_ms", Int().Nullable()),
       Opt("open_ms", Int("door open time for this person, 0 = default").Range(0, 600000)),
       Opt("household_id", Int("join this household")),
       Opt("role", Str().Enum({"tenant", "family", "carer", "staff", "visitor"}))});

  router
      .Add("GET", "/api/v1/persons", "persons", Auth::kAdmin, "archive.read",
           "List persons (identity data without ID numbers)",
           [&persons](Request& r) {
             const Paging p = ReadPaging(r);
             const PersonQuery q{r.Query("q").value_or(""), r.Query("status").value_or(""),
                                 r.Query("phone").value_or("")};
             const json page = persons.List(q, ScopeOf(r.principal), p.limit, p.offset);
             for (const auto& item : page["items"])
               r.persons_listed.push_back(item.value("code", ""));
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams({{"q", JType::kString, "code or name contains"},
                           {"status", JType::kString, "active | moved_out"},
                           {"phone", JType::kString,
                            "phone number or its last digits (at least 4; other characters "
                            "ignored): the number's digits end with these"}}));

  router
      .Add("POST", "/api/v1/persons", "persons", Auth::kAdmin, "archive.write",
           "Create a person's archive (move-in)",
           [&persons](Request& r) {
             return Reply::Json(persons.Create(r.body, r.actor, ScopeOf(r.principal)), 201);
           })
      .Body(person_fields);

  router
      .Add("GET", "/api/v1/persons/{code}", "persons", Auth::kAdmin, "archive.read",
           "A person's whole archive: identity, households, consents, photos, features, "
           "credentials, access groups (reveal=true shows the ID number, audited)",
           [&persons](Request& r) {
             const bool reveal = r.Query("reveal").value_or("") == "true";
             return Reply::Json(persons.Get(r.Path("code"), reveal,
                                            r.principal.Can("archive.reveal"), r.actor,
                                            ScopeOf(r.principal)));
           })
      .Query({{"reveal", JType::kBoolean, "show the full ID number (archive.reveal; audited)"}});

  router
      .Add("PATCH", "/api/v1/persons/{code}", "persons", Auth::kAdmin, "archive.write",
           "Change identity data or the door open time",
           [&persons](Request& r) {
             const std::string& code = r.Path("code");
             persons.Update(code, r.body, r.actor);
             return Reply::Json({{"code", code}, {"updated", true}});
           })
      .Body(Obj({Opt("name", Str().MaxLength(200)), Opt("id_number", Str().MaxLength(64)),
                 Opt("phone", Str().MaxLength(40)), Opt("minor", Bool()),
                 Opt("open_ms", Int().Range(0, 600000)), Opt("birth_date", BirthDateSchema())}));

  router
      .Add("POST", "/api/v1/persons/{code}/move-out", "persons", Auth::kAdmin, "archive.write",
           "Move out: photos and feature codes deleted, removal queued to every device",
           [&persons](Request& r) {
             const std::string& code = r.Path("code");
             const size_t deleted = persons.MoveOut(code, r.body, r.actor);
             return Reply::Json(
                 {{"code", code}, {"status", "moved_out"}, {"photos_deleted", deleted}});
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- consent
  router
      .Add("POST", "/api/v1/persons/{code}/consents", "consent", Auth::kAdmin, "archive.write",
           "Record consent to face collection (a minor's from a guardian, R1.0.3.1)",
           [&persons](Request& r) {
             const std::string& code = r.Path("code");
             const int64_t id = persons.GrantConsent(code, r.body, r.actor);
             return Reply::Json({{"id", id}, {"person", code}}, 201);
           })
      .Body(Obj({Req("notice_version", Str("version of the notice text shown").MaxLength(100)),
                 Req("purpose", Str("e.g. access control of building 3").MaxLength(500)),
                 Opt("granted_ms", Int("when given; default now")),
                 Opt("operator", Str("who collected it; default the admin").MaxLength(100)),
                 Opt("evidence_file", Str("signed form scan reference").MaxLength(500)),
                 Opt("guardian_name", Str().MaxLength(200)),
                 Opt("guardian_relation", Str().MaxLength(100))}));

  router
      .Add("POST", "/api/v1/persons/{code}/consents/withdraw", "consent", Auth::kAdmin,
           "archive.write",
           "Withdraw consent: photos and feature codes deleted, removal queued to every device",
           [&persons](Request& r) {
             const std::string& code = r.Path("code");
             const auto [withdrawn, deleted] = persons.WithdrawConsent(code, r.body, r.actor);
             return Reply::Json(
                 {{"person", code}, {"withdrawn", withdrawn}, {"photos_deleted", deleted}});
           })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  // ---- credentials (the non-face alternative, R1.0.3.1)
  router
      .Add("POST", "/api/v1/persons/{code}/credentials", "persons", Auth::kAdmin, "archive.write",
           "Add a card, PIN or QR credential (a QR token is returned once)",
           [&persons](Request& r) {
             return Reply::Json(persons.AddCredential(r.Path("code"), r.body, r.actor), 201);
           })
      .Body(Obj({Req("kind", Str().Enum({"card", "pin", "qr"})),
                 Opt("card_number", Str("Wiegand card number").MaxLength(64)),
                 Opt("pin", Str("4-8 digits (stored as a scrypt hash)").MaxLength(8)),
                 Opt("valid_from_ms", Int().Nullable()), Opt("valid_until_ms", Int().Nullable())}));

  router.Add("DELETE", "/api/v1/persons/{code}/credentials/{id}", "persons", Auth::kAdmin,
             "archive.write", "Delete a credential", [&persons](Request& r) {
               persons.DeleteCredential(r.Path("code"), r.Path("id"), r.actor);
               return Reply::Json({{"deleted", r.Path("id")}});
             });

  router
      .Add("GET", "/api/v1/persons/{code}/history", "persons", Auth::kAdmin, "archive.read",
           "History: move-in, move-out, changes (who, when)",
           [&persons](Request& r) {
             const Paging p = ReadPaging(r);
             const json page = persons.History(r.Path("code"), p.limit, p.offset);
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/persons/{code}/removals", "consent", Auth::kAdmin, "archive.read",
             "Removals queued to devices for this person and when each device confirmed",
             [&persons](Request& r) { return Reply::Json(persons.Removals(r.Path("code"))); });

  // ---- bulk (migration, large sites, end-to-end tests): one transaction per request
  router
      .Add("POST", "/api/v1/persons/batch", "persons", Auth::kAdmin, "archive.write",
           "Create up to 1000 persons in one transaction, each optionally with consent, "
           "feature codes (base64 float32, this server's model) and access groups; per-person "
           "results, failed persons are skipped",
           [&persons](Request& r) {
             const BatchResult b =
                 persons.Batch(r.body["persons"], r.body.value("accept_duplicates", false), r.actor,
                               ScopeOf(r.principal));
             json results = json::array();
             for (const BatchItem& item : b.items) {
               json out = {{"code", item.code}};
               if (!item.error) {
                 out["status"] = 201;
               } else {
                 const auto a = protocol::FromError(*item.error);
                 out["status"] = a.status();
                 out["error"] = {{"code", a.code()}, {"message", a.what()}};
               }
               results.push_back(out);
             }
             return Reply::Json({{"created", b.created}, {"results", results}});
           })
      .Body(Obj({Req("persons",
                     Arr(Obj({Req("code", Str().Pattern("^[A-Za-z0-9_.-]{1,64}$")),
                              Req("name", Str().MaxLength(200)), Opt("phone", Str().MaxLength(40)),
                              Opt("id_number", Str().MaxLength(64)), Opt("minor", Bool()),
                              Opt("open_ms", Int().Range(0, 600000)),
                              Opt("consent", Obj({Req("notice_version", Str().MaxLength(100)),
                                                  Req("purpose", Str().MaxLength(500)),
                                                  Opt("evidence_file", Str().MaxLength(500))})),
                              Opt("features", Arr(Str("base64 float32")).MaxLength(10)),
                              Opt("access_groups", Arr(Int()).MaxLength(100))}))
                         .MaxLength(1000)),
                 Opt("accept_duplicates", Bool())}));
}

}  // namespace anju::server
