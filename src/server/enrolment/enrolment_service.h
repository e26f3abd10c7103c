// Enrolment (R1.0.3.1, R3.3.2.2): one photo at a time through the quality gate
// (face_gate.h) and the duplicate check, a feature code made elsewhere with the same model,
// enrolment photos (sealed with the data key, in the server's blob store), the search of the
// archive by a face, and the batch import of a CSV of people with their photos
// (enrolment/import.h).
//
// Refusals of an enrolment are returned as EnrolResult::refused, an anju::Error:
// kUnavailable (no face models), kNotFound (no such person), kConflict (a moved-out person;
// reason "consent_required" without consent in force, "duplicate_face" with the
// candidates), kBadImage with reason "bad_image" (not an image), kInvalidArgument with
// reason "quality_rejected" (the gate's reasons and assessment). Other errors are thrown:
// kNotFound (no such photo or import), kInvalidArgument (a malformed feature code or CSV,
// reason "bad_request" or "unknown_field"), kConflict (another model version),
// kPermissionDenied (a photo folder outside the import folder).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "match/index.h"
#include "server/access/principal.h"
#include "server/devices/gallery_log.h"
#include "server/enrolment/face_gate.h"
#include "server/runtime/blob_store.h"

namespace anju::server {

struct EnrolmentDeps {
  db::Db* db = nullptr;
  GalleryLog* gallery = nullptr;
  FaceGate* gate = nullptr;
  match::FeatureIndex* index = nullptr;  // null without face models
  crypto::DataKey data_key;              // seals photos and feature codes
  runtime::BlobStore* blobs = nullptr;   // the sealed photos (keys photos/<code>/...)
  std::filesystem::path import_dir;      // imports read photo folders only inside it
  float duplicate_threshold = 0.68f;     // the high level (docs/matching.md)
  float match_threshold = 0.60f;         // the normal level: "match" in the search by face
  // Runs an import in the background (the server's workers, stopped with it).
  std::function<void(std::function<void()>)> spawn;
  const std::atomic<bool>* stopping = nullptr;  // set when the server stops
};

// One enrolment: ENROLLED on success, otherwise REFUSED with DETAILS for the error object
// ("reasons", "candidates") and, for a photo the gate refused, its ASSESSMENT.
struct EnrolResult {
  std::optional<Error> refused;
  nlohmann::json details = nlohmann::json::object();
  nlohmann::json assessment;
  // {"person", "photo_id", "template", "model_version", "assessment", "duplicates",
  //  "elapsed_ms", "gate_ms"?}
  nlohmann::json enrolled;
};

// A person the search by face found.
struct FaceMatch {
  std::string code;
  std::optional<std::string> name, status;  // nullopt: no longer in the archive
  float score = 0.f;
  bool match = false;  // reaches the match threshold
};

class EnrolmentService {
 public:
  explicit EnrolmentService(EnrolmentDeps deps) : d_(std::move(deps)) {}

  const std::string& model_version() const { return d_.gate->model_version(); }
  float match_threshold() const { return d_.match_threshold; }

  // One photo for CODE: consent required, quality gate, duplicate check (ACCEPT_DUPLICATE
  // enrols anyway and records the candidates), sealed photo file, rows, change log, index.
  EnrolResult Enrol(const std::string& code, std::span<const uint8_t> image, bool accept_duplicate,
                    const std::string& actor);
  // A feature code made elsewhere with the same model: FEATURE_B64 is base64 of DIM
  // little-endian float32, L2-normalised. Consent and the duplicate check apply.
  EnrolResult ImportFeature(const std::string& code, const std::string& model_version,
                            const std::string& feature_b64, bool accept_duplicate,
                            const std::string& actor);

  // The decrypted JPEG of enrolment photo ID of CODE (audited as photo_view).
  std::vector<uint8_t> Photo(const std::string& code, const std::string& id,
                             const std::string& actor);
  // The JPEG of the enrolment photo file NAME (blob photos/NAME, SM4-sealed), decrypted.
  crypto::Bytes ReadPhoto(const std::string& name);
  // One photo and its feature codes; the devices get the change.
  void DeletePhoto(const std::string& code, const std::string& id, const std::string& actor);

  // The K persons most like FEATURE within SCOPE, best first; audited as view.face_search
  // by ACTOR (a view of their archives, R4.2.2.1).
  std::vector<FaceMatch> Search(std::span<const float> feature, size_t k, const Scope& scope,
                                const std::string& actor, const std::string& source);

  // ---- batch imports (enrolment/import.cpp) ----
  // REQUEST as POST /api/v1/imports: checks the CSV's header and the photo folder, records
  // the import and starts it in the background. Returns {id, rows}.
  std::pair<int64_t, int64_t> StartImport(nlohmann::json request, const std::string& actor,
                                          const Scope& scope);
  // {"id", "created_ms", "actor", "state", "total", "done", "results", "finished_ms"}; a
  // refused photo of a result row carries "refused" (the ErrorCodeName of the refusal) and
  // "error", from which the HTTP edge makes its status (http/enrolment_status.h).
  nlohmann::json Import(const std::string& id);
  // Runs import IMPORT_ID (REQUEST as checked by StartImport) for an account with SCOPE.
  void RunImport(int64_t import_id, const nlohmann::json& request, const std::string& actor,
                 const Scope& scope);

 private:
  // Nullopt when CODE may be enrolled (exists, active, consent in force); else the refusal.
  std::optional<Error> CheckEnrollable(db::Conn& conn, const std::string& code);
  // Duplicate check, sealed photo file (when IMAGE is not empty), rows, change log, index.
  EnrolResult StoreTemplate(const std::string& code, std::span<const float> feature,
                            std::span<const uint8_t> image, const nlohmann::json& assessment,
                            bool accept_duplicate, const std::string& actor,
                            std::chrono::steady_clock::time_point t0);

  EnrolmentDeps d_;
};

}  // namespace anju::server
