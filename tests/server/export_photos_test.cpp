// Photo exports (R4.2.1.1): approved by another user, encrypted with the
// requester's passphrase, a tar of the enrolment photos each watermarked with the export,
// plus a manifest; real LFW photos through the real enrolment gate.
#include <archive.h>
#include <archive_entry.h>

#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "crypto/bytes.h"
#include "crypto/password.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Path → bytes of every file in a tar.
std::map<std::string, std::string> Untar(const std::string& tar) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_memory(a, tar.data(), tar.size()), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string bytes(size_t(archive_entry_size(e)), '\0');
    EXPECT_EQ(archive_read_data(a, bytes.data(), bytes.size()), la_ssize_t(bytes.size()));
    out[archive_entry_pathname(e)] = bytes;
  }
  archive_read_free(a);
  return out;
}

cv::Mat Decode(const std::string& jpeg) {
  return cv::imdecode(cv::Mat(1, int(jpeg.size()), CV_8U, const_cast<char*>(jpeg.data())),
                      cv::IMREAD_GRAYSCALE);
}

class ExportPhotosTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  }
  // Enrols one photo of PERSON; returns the photo id.
  int64_t Enrol(const fs::path& lfw, const std::string& person, const std::string& code) {
    CreatePerson(code, person);
    GiveConsent(code);
    for (const auto& p : PhotosOf(lfw, person)) {
      const auto r = Api("POST", "/api/v1/persons/" + code + "/photos", ImageBody(ReadFile(p)));
      if (r.status == 201) return r.body["photo_id"];
    }
    ADD_FAILURE() << "no photo of " << person << " accepted";
    return 0;
  }
  // Requested by OP, approved by the security administrator, downloaded and opened.
  std::map<std::string, std::string> Export(const Session& op, const json& filter,
                                            json* header_out) {
    const auto req =
        As(op.token, "POST", "/api/v1/exports",
           {{"kind", "photos"}, {"filter", filter}, {"reason", "移交公安 / handover"}});
    EXPECT_EQ(req.status, 201) << req.body;
    const std::string id = std::to_string(req.body.value("id", int64_t(0)));
    EXPECT_EQ(As(op.token, "POST", "/api/v1/exports/" + id + "/download",
                 {{"passphrase", "Photo-Pass-1"}})
                  .status,
              403);
    const auto ok =
        As(Ready("secadmin").token, "POST", "/api/v1/exports/" + id + "/approve", json::object());
    EXPECT_EQ(ok.status, 200) << ok.body;
    auto res =
        Raw("POST", "/api/v1/exports/" + id + "/download",
            json{{"passphrase", "Photo-Pass-1"}}.dump(), {{"Authorization", "Bearer " + op.token}});
    EXPECT_EQ(res->status, 200) << res->body;
    std::string header;
    const auto plain =
        crypto::OpenWithPassphrase("Photo-Pass-1", crypto::AsBytes(res->body), &header);
    *header_out = json::parse(header);
    return Untar(std::string(plain.begin(), plain.end()));
  }
};

TEST_F(ExportPhotosTest, ApprovedPhotoExportIsATarOfWatermarkedPhotos) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  const int64_t blair = Enrol(lfw, "Tony_Blair", "X1");
  Enrol(lfw, "Colin_Powell", "X2");
  CreatePerson("X3", "no photo");
  const auto op = UserWithRoles("liu", {"operator"});
  // A malformed list is refused at request time.
  EXPECT_EQ(As(op.token, "POST", "/api/v1/exports",
               {{"kind", "photos"}, {"filter", {{"persons", "X1"}}}, {"reason", "x"}})
                .status,
            400);

  json header;
  auto files = Export(op, {{"persons", {"X1"}}}, &header);
  EXPECT_EQ(header["kind"], "photos");
  EXPECT_EQ(header["rows"], 1);
  const std::string path = "photos/X1/" + std::to_string(blair) + ".jpg";
  ASSERT_EQ(files.size(), 3u) << "photo, manifest.csv, WATERMARK.txt";
  ASSERT_TRUE(files.count(path)) << files.begin()->first;
  EXPECT_NE(files["manifest.csv"].find("X1,Tony_Blair," + std::to_string(blair)), std::string::npos)
      << files["manifest.csv"];
  EXPECT_NE(files["WATERMARK.txt"].find("申请人 liu"), std::string::npos);

  // The photo is the enrolled one with the watermark band at the bottom.
  auto original =
      Raw("GET", "/api/v1/persons/X1/photos/" + std::to_string(blair), "", AdminHeaders());
  ASSERT_EQ(original->status, 200);
  const cv::Mat a = Decode(original->body), b = Decode(files[path]);
  ASSERT_FALSE(b.empty());
  ASSERT_EQ(a.size(), b.size());
  const int h = a.rows;
  EXPECT_LT(cv::norm(a.rowRange(0, h / 2), b.rowRange(0, h / 2), cv::NORM_L1) / (h / 2 * a.cols),
            3.0)
      << "the face must be untouched";
  EXPECT_GT(cv::norm(a.rowRange(h - 8, h), b.rowRange(h - 8, h), cv::NORM_L1) / (8 * a.cols), 10.0)
      << "the watermark band is missing";

  // Without a list: every photo the requester's sites hold.
  files = Export(op, json::object(), &header);
  EXPECT_EQ(header["rows"], 2);
  EXPECT_EQ(files.size(), 4u);
  // The download counts as viewing that many photos (risk warning) and is audited.
  const auto audit = As(RoleToken({"auditadmin"}), "GET", "/api/v1/audit?action=export.download");
  EXPECT_EQ(audit.body["total"], 2);
  EXPECT_EQ(audit.body["items"][0]["detail"]["kind"], "photos");
}

}  // namespace
}  // namespace anju::server::testing
