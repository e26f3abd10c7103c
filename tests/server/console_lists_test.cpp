// What the console's lists need beside identity data (docs/console.md): the persons list says
// whether a usable face is on file, which photo to show and where the person lives; the
// device list names the site; the image routes send thumbnails on `?size=N`, audited like
// the full image. A real server, real LFW photos, real device uploads.
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <map>

#include "crypto/bytes.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The longer side of a JPEG answer; 0 when it does not decode.
int LongerSide(const std::string& bytes) {
  const std::vector<uint8_t> v(bytes.begin(), bytes.end());
  const cv::Mat m = cv::imdecode(v, cv::IMREAD_COLOR);
  return m.empty() ? 0 : std::max(m.cols, m.rows);
}

class ConsoleListsTest : public ServerTest {
 protected:
  // Audit records of ACTION whose object contains OBJECT (read as the audit administrator).
  int64_t CountAudit(const std::string& action, const std::string& object) {
    if (audit_token_.empty()) audit_token_ = RoleToken({"auditadmin"});
    const auto a = As(audit_token_, "GET", "/api/v1/audit?action=" + action + "&limit=1000");
    EXPECT_EQ(a.status, 200) << a.body;
    int64_t n = 0;
    for (const auto& e : a.body["items"])
      if (e["object"].get<std::string>().find(object) != std::string::npos) ++n;
    return n;
  }
  std::string audit_token_;

  json Find(const json& page, const std::string& code) {
    for (const auto& p : page["items"])
      if (p["code"] == code) return p;
    ADD_FAILURE() << code << " not in " << page;
    return json::object();
  }
};

TEST_F(ConsoleListsTest, PersonsListGivesFaceOnFileThumbnailAndHome) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  const auto site = Api("POST", "/api/v1/sites", {{"name", "安居示范社区"}}).body;
  const auto building =
      Api("POST", "/api/v1/buildings", {{"site_id", site["id"]}, {"name", "1号楼"}}).body;
  const auto unit =
      Api("POST", "/api/v1/units", {{"building_id", building["id"]}, {"name", "1单元"}}).body;
  const auto room = Api("POST", "/api/v1/rooms", {{"unit_id", unit["id"]}, {"name", "101"}}).body;
  const auto household =
      Api("POST", "/api/v1/households", {{"room_id", room["id"]}, {"name", "101户"}}).body;
  ASSERT_TRUE(household.contains("id")) << household;
  auto r = Api(
      "POST", "/api/v1/persons",
      {{"code", "H1"}, {"name", "张三明"}, {"household_id", household["id"]}, {"role", "tenant"}});
  ASSERT_EQ(r.status, 201) << r.body;
  CreatePerson("H2", "李四海");  // no household, no face
  GiveConsent("H1");
  int64_t photo = 0;
  for (const auto& p : PhotosOf(lfw, "Colin_Powell")) {
    const auto e = Api("POST", "/api/v1/persons/H1/photos", ImageBody(ReadFile(p)));
    if (e.status == 201) {
      photo = e.body["photo_id"].get<int64_t>();
      break;
    }
  }
  ASSERT_GT(photo, 0);

  const auto page = Api("GET", "/api/v1/persons?limit=50");
  ASSERT_EQ(page.status, 200) << page.body;
  const json h1 = Find(page.body, "H1"), h2 = Find(page.body, "H2");
  EXPECT_EQ(h1["features"], 1) << h1;
  EXPECT_EQ(h1["photos"], 1);
  EXPECT_EQ(h1["photo_id"], photo);
  EXPECT_EQ(h1["home"]["site"], "安居示范社区") << h1;
  EXPECT_EQ(h1["home"]["building"], "1号楼");
  EXPECT_EQ(h1["home"]["unit"], "1单元");
  EXPECT_EQ(h1["home"]["room"], "101");
  EXPECT_EQ(h1["home"]["household"], "101户");
  EXPECT_EQ(h2["features"], 0) << h2;
  EXPECT_EQ(h2["photos"], 0);
  EXPECT_TRUE(h2["photo_id"].is_null());
  EXPECT_TRUE(h2["home"].is_null());
  // A list is not a view of anyone's archive: nothing audited as a person view.
  EXPECT_EQ(CountAudit("view.person", "H1"), 0);

  // Withdrawing consent deletes the face: the list says so at once.
  ASSERT_EQ(Api("POST", "/api/v1/persons/H1/consents/withdraw", json::object()).status, 200);
  const json after = Find(Api("GET", "/api/v1/persons?q=H1").body, "H1");
  EXPECT_EQ(after["features"], 0) << after;
  EXPECT_TRUE(after["photo_id"].is_null());
}

TEST_F(ConsoleListsTest, PhotoThumbnailIsSmallAuditedAndBounded) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  if (server_->model_version().empty()) GTEST_SKIP() << "face models not installed";
  CreatePerson("T1", "王五岳");
  GiveConsent("T1");
  std::string original;
  int64_t photo = 0;
  for (const auto& p : PhotosOf(lfw, "George_W_Bush")) {
    original = ReadFile(p);
    const auto e = Api("POST", "/api/v1/persons/T1/photos", ImageBody(original));
    if (e.status == 201) {
      photo = e.body["photo_id"].get<int64_t>();
      break;
    }
  }
  ASSERT_GT(photo, 0);
  const std::string path = "/api/v1/persons/T1/photos/" + std::to_string(photo);
  const int64_t views = CountAudit("photo_view", "persons/T1");

  auto full = Raw("GET", path, "", AdminHeaders());
  ASSERT_EQ(full->status, 200);
  EXPECT_EQ(full->body, original);  // without size: the photo as enrolled
  auto thumb = Raw("GET", path + "?size=64", "", AdminHeaders());
  ASSERT_EQ(thumb->status, 200);
  EXPECT_EQ(thumb->get_header_value("Content-Type"), "image/jpeg");
  EXPECT_EQ(LongerSide(thumb->body), 64) << "LFW photos are 250 px";
  EXPECT_LT(thumb->body.size(), original.size() / 3);
  // Larger than the photo: the photo itself.
  auto big = Raw("GET", path + "?size=1024", "", AdminHeaders());
  EXPECT_EQ(big->body, original);
  // Out of range or not a number: 400, nothing sent.
  EXPECT_EQ(Raw("GET", path + "?size=8", "", AdminHeaders())->status, 400);
  EXPECT_EQ(Raw("GET", path + "?size=big", "", AdminHeaders())->status, 400);
  // Every image answered is a view in the audit log, thumbnails too.
  EXPECT_EQ(CountAudit("photo_view", "persons/T1"), views + 3);
}

TEST_F(ConsoleListsTest, SnapshotThumbnailAndDeviceSiteName) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  const auto site = Api("POST", "/api/v1/sites", {{"name", "北苑小区"}}).body;
  auto dev = RegisterDevice("2号楼门");
  ASSERT_EQ(Api("PATCH", "/api/v1/devices/" + dev.id, {{"site_id", site["id"]}}).status, 200);
  auto other = RegisterDevice("未分配的门");
  const auto devices = Api("GET", "/api/v1/devices");
  ASSERT_EQ(devices.status, 200);
  std::map<std::string, json> by_id;
  for (const auto& d : devices.body["items"]) by_id[d["device_id"].get<std::string>()] = d;
  EXPECT_EQ(by_id[dev.id]["site_name"], "北苑小区") << devices.body;
  EXPECT_TRUE(by_id[other.id]["site_name"].is_null()) << devices.body;
  EXPECT_EQ(Api("GET", "/api/v1/devices/" + dev.id).body["site_name"], "北苑小区");

  // A record with a snapshot, uploaded through the device protocol.
  const std::string jpeg = ReadFile(PhotosOf(lfw, "Serena_Williams")[0]);
  const json events = {
      {"events",
       json::array(
           {{{"id", "0b0f3c1e-7d2a-4c1b-9a55-1f2e3d4c5b6a"},
             {"kind", "access"},
             {"created_ms", 1764060000000},
             {"payload", {{"time_ms", 1764060000000}, {"door", 0}, {"decision", "stranger"}}},
             {"snapshot", crypto::ToBase64(std::vector<uint8_t>(jpeg.begin(), jpeg.end()))}}})}};
  const auto up = dev.client->CallJson("POST", "/api/v1/device/events", &events);
  ASSERT_EQ(up["stored"].size(), 1u) << up;
  const std::string path = "/api/v1/events/0b0f3c1e-7d2a-4c1b-9a55-1f2e3d4c5b6a/snapshot";
  auto full = Raw("GET", path, "", AdminHeaders());
  ASSERT_EQ(full->status, 200);
  EXPECT_EQ(full->body, jpeg);
  auto thumb = Raw("GET", path + "?size=48", "", AdminHeaders());
  ASSERT_EQ(thumb->status, 200);
  EXPECT_EQ(LongerSide(thumb->body), 48);
  EXPECT_EQ(CountAudit("snapshot_view", "events/0b0f3c1e"), 2);
}

}  // namespace
}  // namespace anju::server::testing
