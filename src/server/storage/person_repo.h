// Persons in archive.db (schema: archive_schema.cpp) and what hangs off a person's row:
// household memberships, consents (R1.0.3.1), credentials, history, the removals queued to
// devices. Rows in, rows out; the rules live in archive/person_service.h. Every function
// runs on the caller's connection.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server {
class SiteScope;
}

namespace anju::server::storage {

// One row of persons.
struct PersonRow {
  int64_t id = 0;
  std::string code, name, phone, status;
  bool minor = false;
  std::optional<int64_t> moved_in_ms, moved_out_ms;
  int64_t open_ms = 0, created_ms = 0, updated_ms = 0;
  std::optional<std::vector<uint8_t>> id_number_sealed;
  std::optional<std::string> birth_date;  // "YYYY-MM-DD"
};

// A new person's row (status active).
struct NewPersonRow {
  std::string code, name, phone;
  std::optional<std::vector<uint8_t>> id_number_sealed;
  std::optional<std::string> birth_date;  // "YYYY-MM-DD"
  bool minor = false;
  int64_t moved_in_ms = 0, open_ms = 0, now_ms = 0;
};

// The filters of the persons list: code or name contains Q, STATUS exactly, the phone
// number's digits end with PHONE_DIGITS (each ignored when empty).
struct PersonFilter {
  std::string q, status, phone_digits;
};

struct ConsentRow {
  std::string notice_version, purpose;
  int64_t granted_ms = 0;
  std::string operator_name, evidence_file, guardian_name, guardian_relation;
};

struct CredentialRow {
  std::string kind;
  std::optional<std::string> card_number, pin_hash, qr_token;
  std::optional<int64_t> valid_from_ms, valid_until_ms;
  int64_t created_ms = 0;
};

// Whether a person may be enrolled: their status and whether a consent is in force.
struct EnrolState {
  std::string status;
  bool consent = false;
};

class PersonRepo {
 public:
  // The row id of identity code CODE; nullopt when there is no such person.
  static std::optional<int64_t> IdByCode(db::Conn& c, const std::string& code);
  static std::optional<PersonRow> Get(db::Conn& c, const std::string& code);
  static std::optional<PersonRow> GetById(db::Conn& c, int64_t id);
  // Persons matching F within SCOPE, by code, and how many there are.
  static int64_t Count(db::Conn& c, const PersonFilter& f, const SiteScope& scope);
  static std::vector<PersonRow> List(db::Conn& c, const PersonFilter& f, const SiteScope& scope,
                                     int64_t limit, int64_t offset);
  // Every person in the archive (GET /healthz).
  static int64_t CountAll(db::Conn& c);
  // Returns the new row id.
  static int64_t Insert(db::Conn& c, const NewPersonRow& p);
  // One column of the row and updated_ms. COLUMN is one of name, phone, minor, open_ms
  // (VALUE text or integer) or id_number_sealed (VALUE bytes): the caller's constant.
  static void SetText(db::Conn& c, int64_t id, const char* column, const std::string& value,
                      int64_t now_ms);
  static void SetInt(db::Conn& c, int64_t id, const char* column, int64_t value, int64_t now_ms);
  static void SetBlob(db::Conn& c, int64_t id, const char* column,
                      const std::vector<uint8_t>& value, int64_t now_ms);
  // The date of birth ("YYYY-MM-DD", checked by the caller; nullopt clears it) and updated_ms.
  static void SetBirthDate(db::Conn& c, int64_t id, const std::optional<std::string>& value,
                           int64_t now_ms);
  // Status moved_out; credentials, household and access group memberships removed.
  static void MoveOut(db::Conn& c, int64_t id, int64_t now_ms);
  // The person's name and status by identity code (the search by face).
  static std::optional<std::pair<std::string, std::string>> NameAndStatus(db::Conn& c,
                                                                          const std::string& code);
  static std::optional<EnrolState> EnrolStateOf(db::Conn& c, const std::string& code);

  // ---- households and access groups ----
  // Throws the database's error when the household does not exist. OR_IGNORE: keep an
  // existing membership (the import).
  static void AddToHousehold(db::Conn& c, int64_t household, int64_t person_id,
                             const std::string& role, int64_t now_ms, bool or_ignore);
  // [{"household_id", "role", "since_ms"}].
  static nlohmann::json Households(db::Conn& c, int64_t person_id);
  // [{"id", "name"}] of the groups within SCOPE, by id.
  static nlohmann::json AccessGroups(db::Conn& c, int64_t person_id, const SiteScope& scope);
  static void AddToGroup(db::Conn& c, int64_t group, int64_t person_id);
  // Adds to ITEMS[i] (the person whose row id is IDS[i]) what the console's archives list
  // shows beside the identity data:
  //   "features": feature codes on file (a usable face: the terminals can recognise them),
  //   "photos": enrolment photos on file,
  //   "photo_id": the newest photo that gave a feature code (else the newest photo) or null,
  //   "home": {"household_id", "household", "room", "unit", "building", "site"} of the
  //           person's first household (names; null where the household has no room), or null.
  static void AddFaceAndHome(db::Conn& c, nlohmann::json& items, const std::vector<int64_t>& ids);

  // ---- consents ----
  static int64_t InsertConsent(db::Conn& c, int64_t person_id, const ConsentRow& row);
  // [{"id", "notice_version", …, "withdrawn_ms", "withdrawn_by"}] by id.
  static nlohmann::json Consents(db::Conn& c, int64_t person_id);
  // Withdraws every consent in force; returns how many.
  static int WithdrawConsents(db::Conn& c, int64_t person_id, int64_t now_ms,
                              const std::string& by);

  // ---- credentials ----
  // Throws the database's error when the card number is in use.
  static int64_t InsertCredential(db::Conn& c, int64_t person_id, const CredentialRow& row);
  // True when the credential existed.
  static bool DeleteCredential(db::Conn& c, std::string_view id, int64_t person_id);
  // [{"id", "kind", "card_number", "valid_from_ms", "valid_until_ms", "created_ms"}] by id.
  static nlohmann::json Credentials(db::Conn& c, int64_t person_id);
  // (credential id, stored hash) of the person's PINs valid at NOW_MS, by id.
  static std::vector<std::pair<int64_t, std::string>> PinHashes(db::Conn& c, int64_t person_id,
                                                                int64_t now_ms);
  static void SetPinHash(db::Conn& c, int64_t credential_id, const std::string& hash);

  // ---- history and removals ----
  static int64_t CountHistory(db::Conn& c, int64_t person_id);
  // [{"action", "detail", "actor", "time_ms"}] in order.
  static nlohmann::json History(db::Conn& c, int64_t person_id, int64_t limit, int64_t offset);
  // [{"device_id", "device_name", "seq", "reason", "queued_ms", "confirmed_ms"}] by time.
  static nlohmann::json Removals(db::Conn& c, const std::string& code);
};

}  // namespace anju::server::storage
