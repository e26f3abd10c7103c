// Persons: one person one archive (R3.3.2.2). Identity data (the ID number SM4-sealed),
// move-in and move-out, consent to face collection (a minor's from a guardian, R1.0.3.1),
// credentials for people without face enrolment (card, PIN, QR), history, the removal
// confirmations of every device, and the bulk creation of persons with feature codes.
// Every change is audited in its transaction (R4.2.3.1) and reaches the devices through the
// gallery log (devices/gallery_log.h). An account limited to sites creates persons only into
// its households (R4.2.1.1, storage/site_scope.h).
//
// Errors are anju::Error: kNotFound (no such person, household, credential or access
// group), kInvalidArgument (a bad identity code, PIN or phone query, a missing card number,
// a scoped account without household_id; reason "guardian_required" for a minor's consent
// without a guardian), kConflict (an identity code or card number in use, a moved-out
// person; reason "consent_required" / "duplicate_face" in the batch), kPermissionDenied (the
// ID number without archive.reveal, the batch for a scoped account), kUnavailable (feature
// codes without face models).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "match/index.h"
#include "server/access/principal.h"
#include "server/devices/gallery_log.h"
#include "server/runtime/blob_store.h"

namespace anju::server {

struct PersonDeps {
  db::Db* db = nullptr;
  GalleryLog* gallery = nullptr;
  crypto::DataKey data_key;              // seals ID numbers and feature codes at rest
  runtime::BlobStore* blobs = nullptr;   // the sealed enrolment photos (keys photos/...)
  match::FeatureIndex* index = nullptr;  // the duplicate index; null without face models
  std::string model_version;             // the server's face model ("" = none)
  float duplicate_threshold = 0.68f;     // the high level (docs/matching.md)
};

// The filters of the persons list: code or name contains Q, STATUS (active | moved_out),
// PHONE (a number or its last digits, at least 4; other characters ignored).
struct PersonQuery {
  std::string q, status, phone;
};

// One person of a batch: created, or the refusal that skipped it.
struct BatchItem {
  std::string code;
  std::optional<Error> error;
};

struct BatchResult {
  int64_t created = 0;
  std::vector<BatchItem> items;  // in the order given
};

class PersonService {
 public:
  explicit PersonService(PersonDeps deps) : d_(std::move(deps)) {}

  // The row id of CODE (kNotFound otherwise), and within SCOPE (kNotFound outside it).
  static int64_t Id(db::Conn& conn, const std::string& code);
  static int64_t ScopedId(db::Conn& conn, const Scope& scope, const std::string& code);

  // {"items", "total"}: persons within SCOPE by code, each with its face and home
  // (storage::PersonRepo::AddFaceAndHome); no ID numbers.
  nlohmann::json List(const PersonQuery& query, const Scope& scope, int64_t limit, int64_t offset);
  // FIELDS as POST /api/v1/persons; {"code", "id"}. A missing code is generated. An optional
  // birth_date is checked as in Update.
  nlohmann::json Create(const nlohmann::json& fields, const std::string& actor, const Scope& scope);
  // The whole archive: identity, households, consents, photos, feature count, credentials,
  // access groups within SCOPE. REVEAL shows the full ID number (MAY_REVEAL: the caller has
  // archive.reveal; audited), otherwise it is masked.
  nlohmann::json Get(const std::string& code, bool reveal, bool may_reveal,
                     const std::string& actor, const Scope& scope);
  // FIELDS: name, id_number, phone, minor, open_ms, birth_date ("YYYY-MM-DD" up to today, or
  // null to clear; kInvalidArgument otherwise) (each optional).
  void Update(const std::string& code, const nlohmann::json& fields, const std::string& actor);
  // Photos and feature codes deleted, credentials and memberships removed, removal queued
  // to every device. NOTE goes to the history. Returns how many photos were deleted.
  size_t MoveOut(const std::string& code, const nlohmann::json& note, const std::string& actor);

  // ---- consent (R1.0.3.1) ----
  // FIELDS as POST /api/v1/persons/{code}/consents; returns the consent's id.
  int64_t GrantConsent(const std::string& code, const nlohmann::json& fields,
                       const std::string& actor);
  // Every consent in force withdrawn, photos and feature codes deleted, removal queued to
  // every device. Returns {consents withdrawn, photos deleted}.
  std::pair<int, size_t> WithdrawConsent(const std::string& code, const nlohmann::json& note,
                                         const std::string& actor);

  // ---- credentials (the non-face alternative, R1.0.3.1) ----
  // FIELDS as POST /api/v1/persons/{code}/credentials; {"id", "kind", "qr_token"?} (the QR
  // token is shown once). A PIN is stored as a scrypt hash (crypto/password.h).
  nlohmann::json AddCredential(const std::string& code, const nlohmann::json& fields,
                               const std::string& actor);
  void DeleteCredential(const std::string& code, const std::string& id, const std::string& actor);
  // Whether PIN is one of the person's PINs valid now. A PIN stored by an older server as
  // salted SM3 ("sm3$salt$hex") is rehashed with scrypt on its first successful use.
  bool VerifyPin(const std::string& code, const std::string& pin);

  // {"items", "total"}: move-in, move-out, changes, in order.
  nlohmann::json History(const std::string& code, int64_t limit, int64_t offset);
  // {"person", "removals", "all_confirmed"}: removals queued to devices and their
  // confirmations.
  nlohmann::json Removals(const std::string& code);

  // Up to 1000 persons in one transaction, each optionally with consent, feature codes
  // (base64 float32 of this server's model) and access groups; a person that fails is
  // skipped with its error. Features join the duplicate index as they are added (later
  // persons are checked against earlier ones); a rollback takes them out again.
  BatchResult Batch(const nlohmann::json& persons, bool accept_duplicates, const std::string& actor,
                    const Scope& scope);

  // In the caller's transaction: the person's photo rows and feature codes go; returns the
  // photo blob keys to remove once it commits.
  std::vector<std::string> DeleteBiometrics(db::Conn& conn, int64_t person_id);
  // After the commit: remove the photo blobs, drop the person from the duplicate index.
  void FinishDelete(const std::string& code, const std::vector<std::string>& photos);

 private:
  PersonDeps d_;
};

}  // namespace anju::server
