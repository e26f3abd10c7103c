// The enrolment service on a real archive database, without HTTP: the refusals of an
// enrolment (no models, no consent, a moved-out person, not an image, the quality gate,
// a duplicate face), feature codes made elsewhere, and the batch import with its per-row
// results (R1.0.3.1, R4.2.1.1). Tests that need the face models skip without them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "core/clock.h"
#include "core/error.h"
#include "core/paths.h"
#include "crypto/bytes.h"
#include "server/archive/person_service.h"
#include "server/archive/place_service.h"
#include "server/enrolment/enrolment_service.h"
#include "server/http/enrolment_status.h"
#include "server/runtime/embedded.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::testing::CodeOf;
using anju::testing::ReasonOf;
using nlohmann::json;

// A plain grey JPEG: an image without a face.
std::vector<uint8_t> GreyJpeg() {
  cv::Mat m(240, 320, CV_8UC3, cv::Scalar(128, 128, 128));
  std::vector<uint8_t> out;
  cv::imencode(".jpg", m, out);
  return out;
}

// Base64 of a unit feature of dimension DIM along AXIS (plus a little of the last axis).
std::string Feature(size_t dim, size_t axis) {
  std::vector<float> f(dim, 0.f);
  f[axis] = 0.8f;
  f[dim - 1] += 0.6f;
  std::vector<uint8_t> raw(f.size() * sizeof(float));
  std::memcpy(raw.data(), f.data(), raw.size());
  return crypto::ToBase64(raw);
}

class EnrolmentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("enrolment-service");
    fs::create_directories(dir_ / "imports" / "photos");
    clock_.Set(1'800'000'000'000);
    SetProcessClock(&clock_);
    db_ = OpenArchiveDb(dir_ / "archive.db");
  }
  // The service with the face models of MODEL_DIR (none in a folder without them).
  void Start(const fs::path& model_dir) {
    gate_ = std::make_unique<FaceGate>(model_dir, GatePolicy{});
    gallery_ = std::make_unique<GalleryLog>(key_, gate_->model_version());
    if (!gate_->model_version().empty()) {
      match::IndexOptions io;
      io.model_version = gate_->model_version();
      index_ = std::make_unique<match::FeatureIndex>(io);
    }
    blobs_ = std::make_unique<runtime::FileBlobStore>(dir_);
    persons_ =
        std::make_unique<PersonService>(PersonDeps{db_.get(), gallery_.get(), key_, blobs_.get(),
                                                   index_.get(), gate_->model_version(), 0.68f});
    places_ = std::make_unique<PlaceService>(*db_, *gallery_, &PersonService::ScopedId, [] {});
    enrolment_ = std::make_unique<EnrolmentService>(EnrolmentDeps{
        db_.get(), gallery_.get(), gate_.get(), index_.get(), key_, blobs_.get(), dir_ / "imports",
        0.68f, 0.60f, [](std::function<void()> work) { work(); }, nullptr});
  }
  void TearDown() override {
    enrolment_.reset();
    places_.reset();
    persons_.reset();
    index_.reset();
    gallery_.reset();
    gate_.reset();
    db_.reset();
    SetProcessClock(nullptr);
    fs::remove_all(dir_);
  }
  void Person(const std::string& code, bool consent) {
    persons_->Create({{"code", code}, {"name", "住户" + code}}, "admin", {});
    if (consent)
      persons_->GrantConsent(code, {{"notice_version", "v1"}, {"purpose", "门禁"}}, "admin");
  }
  int64_t CountAudit(const std::string& action) {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "SELECT COUNT(*) FROM audit WHERE action = ?");
    s.Bind(1, action).Step();
    return s.Int(0);
  }

  fs::path dir_;
  ManualClock clock_;
  crypto::DataKey key_ = crypto::DataKey::Generate();
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<runtime::FileBlobStore> blobs_;
  std::unique_ptr<FaceGate> gate_;
  std::unique_ptr<GalleryLog> gallery_;
  std::unique_ptr<match::FeatureIndex> index_;
  std::unique_ptr<PersonService> persons_;
  std::unique_ptr<PlaceService> places_;
  std::unique_ptr<EnrolmentService> enrolment_;
};

TEST_F(EnrolmentServiceTest, WithoutModelsNothingIsEnrolled) {
  Start(dir_ / "no-models");
  Person("P1", true);
  const EnrolResult r = enrolment_->Enrol("P1", GreyJpeg(), false, "admin");
  ASSERT_TRUE(r.refused);
  EXPECT_EQ(r.refused->code(), ErrorCode::kUnavailable);
  EXPECT_EQ(EnrolStatus(&*r.refused), 503);
  EXPECT_EQ(CodeOf([&] { enrolment_->ImportFeature("P1", "m", "", false, "admin"); }),
            ErrorCode::kUnavailable);
  EXPECT_EQ(persons_->Get("P1", false, false, "admin", {})["features"], 0);
  EXPECT_EQ(EnrolStatus(nullptr), 201);
}

TEST_F(EnrolmentServiceTest, ImportsRunRowByRow) {
  Start(dir_ / "no-models");
  const json grey = crypto::ToBase64(GreyJpeg());
  // The request is checked before anything is recorded.
  EXPECT_EQ(ReasonOf([&] {
              enrolment_->StartImport({{"csv", "code,nom\nX,y\n"}}, "admin", {});
            }),
            "unknown_field");
  EXPECT_EQ(ReasonOf([&] {
              enrolment_->StartImport({{"csv", "code\nX\n"}}, "admin", {});
            }),
            "bad_request");
  EXPECT_EQ(CodeOf([&] {
              enrolment_->StartImport({{"csv", "name\nx\n"}, {"photo_dir", "photos"}}, "admin", {});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      CodeOf([&] {
        enrolment_->StartImport({{"csv", "name\nx\n"}, {"photo_dir", dir_.string()}}, "admin", {});
      }),
      ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeOf([&] { enrolment_->Import("1"); }), ErrorCode::kNotFound);

  const std::string csv =
      "code,name,minor,consent_notice_version,consent_purpose,photos\n"
      "I1,甲,yes,v1,门禁,grey.jpg;missing.jpg\n"
      ",,,,,\n"
      "I2,乙,,,,\n"
      "bad code,丙,,,,\n";
  const auto [id, total] =
      enrolment_->StartImport({{"csv", csv},
                               {"photos", {{"grey.jpg", grey}}},
                               {"photo_dir", (dir_ / "imports" / "photos").string()}},
                              "admin", {});
  EXPECT_EQ(total, 4);
  // The spawn ran it already; the statuses are the HTTP edge's (http/enrolment_status.h).
  const json imp = ImportWithStatuses(enrolment_->Import(std::to_string(id)));
  EXPECT_EQ(imp["state"], "done");
  EXPECT_EQ(imp["done"], 4);
  const json& rows = imp["results"];
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["row"], 2);
  EXPECT_EQ(rows[0]["person"], "created");
  EXPECT_EQ(rows[0]["result"], "partial");
  EXPECT_EQ(rows[0]["photos"][0]["status"], 503);  // no face models
  EXPECT_EQ(rows[0]["photos"][0]["error"]["code"], "unavailable");
  EXPECT_EQ(rows[0]["photos"][1]["status"], 404);
  EXPECT_EQ(rows[1]["result"], "error");
  EXPECT_EQ(rows[1]["error"]["code"], "bad_request");  // no name
  EXPECT_EQ(rows[2]["result"], "ok");
  EXPECT_EQ(rows[3]["error"]["code"], "bad_request");  // not an identity code
  const json p = persons_->Get("I1", false, false, "admin", {});
  EXPECT_EQ(p["minor"], true);
  EXPECT_EQ(p["consent_active"], true);
  EXPECT_EQ(CountAudit("import"), 1);

  // An account limited to sites imports only into households of its sites.
  const int64_t site =
      places_->Create("sites", {{"name", "东区"}}, "admin", {})["id"].get<int64_t>();
  const auto scoped =
      enrolment_->StartImport({{"csv", "name,household_id\n丁,\n戊,999\n"}}, "op", Scope{{site}});
  const json s = enrolment_->Import(std::to_string(scoped.first))["results"];
  EXPECT_EQ(s[0]["error"]["code"], "bad_request");
  EXPECT_EQ(s[1]["error"]["code"], "not_found");
  EXPECT_EQ(persons_->List({}, {}, 50, 0)["total"], 2);  // I1 and I2 only
}

TEST_F(EnrolmentServiceTest, RefusalsOfAnEnrolment) {
  Start(DefaultModelDir());
  if (gate_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  Person("A", false);
  Person("B", true);
  const size_t dim = index_->options().dim;
  const std::string version = gate_->model_version();

  auto refused = [](const EnrolResult& r) { return r.refused ? r.refused->reason() : "ok"; };
  EXPECT_EQ(refused(enrolment_->ImportFeature("A", version, Feature(dim, 0), false, "admin")),
            "consent_required");
  const EnrolResult no_consent = enrolment_->Enrol("A", GreyJpeg(), false, "admin");
  ASSERT_TRUE(no_consent.refused);
  EXPECT_EQ(EnrolStatus(&*no_consent.refused), 409);
  const EnrolResult none = enrolment_->ImportFeature("Z", version, Feature(dim, 0), false, "x");
  ASSERT_TRUE(none.refused);
  EXPECT_EQ(EnrolStatus(&*none.refused), 404);
  EXPECT_EQ(CodeOf([&] { enrolment_->ImportFeature("B", "other", Feature(dim, 0), false, "x"); }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] { enrolment_->ImportFeature("B", version, Feature(8, 0), false, "x"); }),
            ErrorCode::kInvalidArgument);

  // Not an image; an image without a face.
  const std::vector<uint8_t> text = {'n', 'o', 't'};
  const EnrolResult bad = enrolment_->Enrol("B", text, false, "admin");
  EXPECT_EQ(refused(bad), "bad_image");
  EXPECT_EQ(EnrolStatus(&*bad.refused), 400);
  const EnrolResult blank = enrolment_->Enrol("B", GreyJpeg(), false, "admin");
  EXPECT_EQ(refused(blank), "quality_rejected");
  EXPECT_EQ(EnrolStatus(&*blank.refused), 422);
  EXPECT_FALSE(blank.details["reasons"].empty());
  EXPECT_FALSE(blank.assessment.is_null());

  // A feature code, then the same face for another person.
  const EnrolResult b = enrolment_->ImportFeature("B", version, Feature(dim, 0), false, "admin");
  ASSERT_FALSE(b.refused) << b.refused->what();
  EXPECT_TRUE(b.enrolled["photo_id"].is_null());
  persons_->GrantConsent("A", {{"notice_version", "v1"}, {"purpose", "门禁"}}, "admin");
  const EnrolResult dup = enrolment_->ImportFeature("A", version, Feature(dim, 0), false, "admin");
  EXPECT_EQ(refused(dup), "duplicate_face");
  EXPECT_EQ(dup.details["candidates"][0]["person"], "B");
  const EnrolResult anyway =
      enrolment_->ImportFeature("A", version, Feature(dim, 0), true, "admin");
  ASSERT_FALSE(anyway.refused);
  EXPECT_EQ(anyway.enrolled["duplicates"][0]["person"], "B");
  EXPECT_EQ(CountAudit("feature_import"), 2);

  // The search by face finds both; a moved-out person is refused.
  const std::vector<uint8_t> raw = crypto::FromBase64(Feature(dim, 0));
  std::vector<float> probe(dim);
  std::memcpy(probe.data(), raw.data(), raw.size());
  const auto found = enrolment_->Search(probe, 5, {}, "admin", "");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_TRUE(found[0].match);
  EXPECT_EQ(CountAudit("view.face_search"), 1);
  persons_->MoveOut("B", json::object(), "admin");
  const EnrolResult gone = enrolment_->ImportFeature("B", version, Feature(dim, 1), false, "x");
  ASSERT_TRUE(gone.refused);
  EXPECT_EQ(gone.refused->code(), ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] { enrolment_->DeletePhoto("A", "1", "admin"); }), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace anju::server
