// Enrolment on the server (R1.0.3.1, R3.3.2.2) with real LFW photos:
// consent first, the quality gate with machine-readable reasons, the duplicate check,
// several photos per person, photos sealed on disk, multipart upload and the batch import.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include "crypto/bytes.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class EnrolmentTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  }
  // Enrols the first acceptable of PERSON's first three photos; returns its bytes.
  std::string EnrolOne(const fs::path& lfw, const std::string& person, const std::string& code) {
    for (const auto& p : PhotosOf(lfw, person)) {
      const std::string bytes = ReadFile(p);
      const auto r = Api("POST", "/api/v1/persons/" + code + "/photos", ImageBody(bytes));
      if (r.status == 201) {
        std::printf("    %s enrolled in %.0f ms (server side)\n", p.filename().c_str(),
                    r.body["elapsed_ms"].get<double>());
        return bytes;
      }
      std::printf("    %s refused: %s\n", p.filename().c_str(), r.body.dump().c_str());
      EXPECT_EQ(r.status, 422) << r.body;
    }
    ADD_FAILURE() << "no photo of " << person << " accepted";
    return {};
  }
};

TEST_F(EnrolmentTest, ConsentRequiredThenRealPhotosAcceptedAndSealed) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  CreatePerson("CP1", "鲍威尔");
  const std::string bytes = ReadFile(PhotosOf(lfw, "Colin_Powell")[0]);
  auto r = Api("POST", "/api/v1/persons/CP1/photos", ImageBody(bytes));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["code"], "consent_required");
  GiveConsent("CP1");
  const std::string enrolled = EnrolOne(lfw, "Colin_Powell", "CP1");
  ASSERT_FALSE(enrolled.empty());
  // A second photo of the same person is welcome (several photos per person).
  std::string second;
  for (const auto& p : PhotosOf(lfw, "Colin_Powell")) {
    const std::string b = ReadFile(p);
    if (b == enrolled) continue;
    if (Api("POST", "/api/v1/persons/CP1/photos", ImageBody(b)).status == 201) {
      second = b;
      break;
    }
  }
  EXPECT_FALSE(second.empty());
  const auto person = Api("GET", "/api/v1/persons/CP1");
  ASSERT_EQ(person.body["photos"].size(), 2u);
  // On disk: sealed, not a JPEG; the API gives the original bytes back.
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "photos" / "CP1")) {
    const std::string disk = ReadFile(e.path());
    EXPECT_NE(disk.substr(0, 2), "\xFF\xD8");
    EXPECT_EQ(disk.find(enrolled.substr(100, 64)), std::string::npos);
  }
  auto photo = Raw(
      "GET",
      "/api/v1/persons/CP1/photos/" + std::to_string(person.body["photos"][0]["id"].get<int64_t>()),
      "", AdminHeaders());
  ASSERT_EQ(photo->status, 200);
  EXPECT_EQ(photo->body, enrolled);
  // The feature is in the archive only sealed, bound to the person.
  EXPECT_EQ(person.body["photos"][0]["model_version"], server_->model_version());
}

TEST_F(EnrolmentTest, QualityGateRefusesWithReasons) {
  CreatePerson("Q1", "测试");
  GiveConsent("Q1");
  // No face: a smooth gradient.
  cv::Mat blank(320, 320, CV_8UC3);
  for (int y = 0; y < blank.rows; ++y)
    blank.row(y).setTo(cv::Scalar(y * 255 / blank.rows, 128, 255 - y * 255 / blank.rows));
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", blank, jpeg);
  auto r =
      Api("POST", "/api/v1/persons/Q1/photos", ImageBody(std::string(jpeg.begin(), jpeg.end())));
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.body["error"]["code"], "quality_rejected");
  EXPECT_EQ(r.body["error"]["reasons"], json::array({"no_face"}));
  // Not an image at all; not base64.
  r = Api("POST", "/api/v1/persons/Q1/photos", ImageBody("this is not a picture"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body["error"]["code"], "bad_image");
  EXPECT_EQ(Api("POST", "/api/v1/persons/Q1/photos", {{"image", "%%%"}}).status, 400);
  // A tiny face: too_small.
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  cv::Mat face = cv::imread(PhotosOf(lfw, "Tony_Blair")[0].string());
  cv::Mat small;
  cv::resize(face, small, {}, 0.25, 0.25, cv::INTER_AREA);
  cv::Mat canvas(400, 400, CV_8UC3, cv::Scalar(120, 120, 120));
  small.copyTo(canvas(cv::Rect(150, 150, small.cols, small.rows)));
  cv::imencode(".jpg", canvas, jpeg);
  r = Api("POST", "/api/v1/persons/Q1/photos", ImageBody(std::string(jpeg.begin(), jpeg.end())));
  EXPECT_EQ(r.status, 422) << r.body;
  const auto reasons = r.body["error"]["reasons"];
  EXPECT_TRUE(std::find(reasons.begin(), reasons.end(), "too_small") != reasons.end() ||
              std::find(reasons.begin(), reasons.end(), "no_face") != reasons.end())
      << reasons;
  // Nothing stored.
  EXPECT_TRUE(Api("GET", "/api/v1/persons/Q1").body["photos"].empty());
}

TEST_F(EnrolmentTest, DuplicateFaceUnderAnotherIdentityIsReported) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  CreatePerson("A1", "甲");
  CreatePerson("B1", "乙");
  GiveConsent("A1");
  GiveConsent("B1");
  const std::string bytes = EnrolOne(lfw, "Tony_Blair", "A1");
  ASSERT_FALSE(bytes.empty());
  auto r = Api("POST", "/api/v1/persons/B1/photos", ImageBody(bytes));
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body["error"]["code"], "duplicate_face");
  ASSERT_EQ(r.body["error"]["candidates"].size(), 1u);
  EXPECT_EQ(r.body["error"]["candidates"][0]["person"], "A1");
  EXPECT_TRUE(Api("GET", "/api/v1/persons/B1").body["photos"].empty());
  // Deliberately accepted (twins, a re-registered tenant): stored, and the audit says so.
  json body = ImageBody(bytes);
  body["accept_duplicate"] = true;
  r = Api("POST", "/api/v1/persons/B1/photos", body);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.body["duplicates"][0]["person"], "A1");
}

TEST_F(EnrolmentTest, MultipartUploadAndPhotoDeletion) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  CreatePerson("M1", "多部件");
  GiveConsent("M1");
  auto dev = RegisterDevice("gate");
  AddToGroup(CreateGroupOn(dev.id), {"M1"});
  std::string accepted;
  for (const auto& p : PhotosOf(lfw, "Aaron_Peirsol")) {
    auto c = Client();
    const std::string bytes = ReadFile(p);
    httplib::MultipartFormDataItems items = {{"image", bytes, "face.jpg", "image/jpeg"}};
    auto res = c->Post("/api/v1/persons/M1/photos", AdminHeaders(), items);
    ASSERT_TRUE(res);
    if (res->status == 201) {
      accepted = bytes;
      break;
    }
    EXPECT_EQ(res->status, 422) << res->body;
  }
  ASSERT_FALSE(accepted.empty());
  std::vector<json> changes;
  const int64_t v = SyncAll(*dev.client, 0, 100, &changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0]["templates"].size(), 1u);
  const auto person = Api("GET", "/api/v1/persons/M1");
  const int64_t photo = person.body["photos"][0]["id"];
  ASSERT_EQ(Api("DELETE", "/api/v1/persons/M1/photos/" + std::to_string(photo)).status, 200);
  EXPECT_FALSE(fs::exists(dir_ / "photos" / "M1") && !fs::is_empty(dir_ / "photos" / "M1"));
  // The device loses the person (no template left).
  changes.clear();
  SyncAll(*dev.client, v, 100, &changes);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0]["op"], "remove");
}

TEST_F(EnrolmentTest, BatchImportReportsEveryRow) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  const auto blair = PhotosOf(lfw, "Tony_Blair");
  const auto bush = PhotosOf(lfw, "George_W_Bush");
  const std::string csv =
      "code,name,phone,photos,consent_notice_version,consent_purpose\n"
      "I1,布莱尔,1380000,blair.jpg,2026-01,门禁\n"
      "I2,\"Bush, George\",,bush.jpg;missing.jpg,2026-01,门禁\n"
      "I3,,,,,\n"
      "I4,无同意,,blair2.jpg,,\n";
  // blair[1] passes the gate (blair[0] has closed eyes, see the duplicate test's log).
  json photos = {{"blair.jpg", crypto::ToBase64(crypto::AsBytes(ReadFile(blair[1])))},
                 {"blair2.jpg", crypto::ToBase64(crypto::AsBytes(ReadFile(blair[2])))}};
  // bush.jpg comes from a folder on the server.
  const fs::path folder = dir_.parent_path() / (dir_.filename().string() + "-imports") / "batch";
  fs::create_directories(folder);
  fs::copy_file(bush[0], folder / "bush.jpg", fs::copy_options::overwrite_existing);
  // A folder outside the import folder is refused: an import cannot read any image on the
  // server.
  EXPECT_EQ(Api("POST", "/api/v1/imports", {{"csv", csv}, {"photo_dir", "/usr/share"}}).status,
            403);
  const auto started = Api("POST", "/api/v1/imports",
                           {{"csv", csv}, {"photos", photos}, {"photo_dir", folder.string()}});
  ASSERT_EQ(started.status, 202) << started.body;
  EXPECT_EQ(started.body["total"], 4);
  json status;
  for (int i = 0; i < 600; ++i) {
    status =
        Api("GET", "/api/v1/imports/" + std::to_string(started.body["id"].get<int64_t>())).body;
    if (status["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  fs::remove_all(folder);
  ASSERT_EQ(status["state"], "done") << status;
  EXPECT_EQ(status["done"], 4);
  const auto& rows = status["results"];
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0]["code"], "I1");
  EXPECT_EQ(rows[0]["photos"][0]["status"], 201) << rows[0];
  EXPECT_EQ(rows[1]["photos"][1]["status"], 404);
  EXPECT_EQ(rows[1]["result"], "partial");
  EXPECT_EQ(rows[2]["result"], "error");
  EXPECT_EQ(rows[3]["photos"][0]["error"]["code"], "consent_required");
  EXPECT_EQ(Api("GET", "/api/v1/persons/I2").body["name"], "Bush, George");
  // An unknown CSV column is refused up front.
  EXPECT_EQ(Api("POST", "/api/v1/imports", {{"csv", "name,colour\nx,red\n"}}).body["error"]["code"],
            "unknown_field");
}

}  // namespace
}  // namespace anju::server::testing
