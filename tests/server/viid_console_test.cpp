// What the console's capture lists need (docs/console.md): each capture names its face image
// (GA/T 1400 type 11) so that a list can show the face and not the scene, and the image route
// sends a thumbnail on `?size=N`. A camera posting over HTTP Digest to a real server.
#include <gtest/gtest.h>
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "protocol/viid.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace viid = protocol::viid;
using nlohmann::json;

std::vector<uint8_t> Jpeg(int width, int height, int grey) {
  cv::Mat m(height, width, CV_8UC3, cv::Scalar(grey, grey, grey));
  cv::circle(m, {width / 2, height / 2}, std::min(width, height) / 3, cv::Scalar(200, 180, 160),
             -1);
  std::vector<uint8_t> out;
  cv::imencode(".jpg", m, out);
  return out;
}

class ViidConsoleTest : public ServerTest {};

TEST_F(ViidConsoleTest, CapturesNameTheirFaceImageAndSendThumbnails) {
  const std::string cam = "34020000001190000077", password = "camera-pass-77";
  ASSERT_EQ(
      Api("POST", "/api/v1/viid/devices", {{"id", cam}, {"password", password}, {"name", "南门"}})
          .status,
      201);
  // The scene first, then the face: the list must point at the face.
  viid::FaceList list;
  viid::FaceObject f;
  f.face_id = cam + "02" + "20260101000000" + "00001";
  f.device_id = cam;
  f.face_appear_time = viid::FormatTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count());
  viid::SubImageInfo scene, face;
  scene.type = viid::kImageTypeScene;
  scene.data = Jpeg(640, 360, 40);
  face.type = viid::kImageTypeFace;
  face.data = Jpeg(160, 200, 90);
  f.images = {scene, face};
  list.faces.push_back(f);
  const std::string body = viid::ToJson(list).dump();

  // Unauthenticated first: the server's digest challenge, then the answer to it.
  auto first = Raw("POST", viid::kPathFaces, body, {}, "application/json;charset=UTF-8");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 401);
  const auto challenge = viid::ParseChallenge(first->get_header_value("WWW-Authenticate"));
  httplib::Headers h = {
      {"Authorization", viid::FormatAuthorization(viid::AnswerChallenge(
                            challenge, cam, password, "POST", viid::kPathFaces, 1))}};
  auto res = Raw("POST", viid::kPathFaces, body, h, "application/json;charset=UTF-8");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;

  const auto page = Api("GET", "/api/v1/captures?device=" + cam);
  ASSERT_EQ(page.status, 200) << page.body;
  ASSERT_EQ(page.body["items"].size(), 1u) << page.body;
  const json c = page.body["items"][0];
  EXPECT_EQ(c["face_image"], 1) << c;  // n of the type-11 image
  EXPECT_EQ(Api("GET", "/api/v1/captures/" + c["id"].get<std::string>()).body["face_image"], 1);

  const std::string path = "/api/v1/captures/" + c["id"].get<std::string>() + "/images/1";
  auto full = Raw("GET", path, "", AdminHeaders());
  ASSERT_EQ(full->status, 200);
  EXPECT_EQ(full->body, std::string(face.data.begin(), face.data.end()));
  auto thumb = Raw("GET", path + "?size=50", "", AdminHeaders());
  ASSERT_EQ(thumb->status, 200);
  const std::vector<uint8_t> tb(thumb->body.begin(), thumb->body.end());
  const cv::Mat m = cv::imdecode(tb, cv::IMREAD_COLOR);
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m.rows, 50);  // 160 × 200 → 40 × 50
  EXPECT_EQ(m.cols, 40);
  EXPECT_EQ(Raw("GET", path + "?size=2000", "", AdminHeaders())->status, 400);
}

}  // namespace
}  // namespace anju::server::testing
