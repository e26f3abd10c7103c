// Snapshot recognition with the real models: a camera's tight face crop is recognised
// without the detector (quality.found_by = "crop"), and an image without a face falls
// back to the detector and ends as no_face.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "crypto/envelope.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "protocol/viid.h"
#include "server/events/event_store.h"
#include "server/viid/viid_service.h"
#include "testing.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using nlohmann::json;

std::vector<uint8_t> ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), {});
}

std::string Body(const std::string& id, const std::vector<uint8_t>& jpeg) {
  viid::FaceList list;
  viid::FaceObject f;
  f.face_id = id;
  f.device_id = "CAM";
  viid::SubImageInfo img;
  img.type = viid::kImageTypeFace;
  img.data = jpeg;
  f.images.push_back(img);
  list.faces.push_back(f);
  return viid::ToJson(list).dump();
}

std::optional<CaptureRecord> Find(ViidService& s, const std::string& face_id) {
  CaptureQuery q;
  q.limit = 100;
  for (auto& c : s.captures().List(q).items)
    if (c.face_id == face_id) return std::move(c);
  return std::nullopt;
}

class ViidRecognitionTest : public ::testing::TestWithParam<bool> {};

TEST_P(ViidRecognitionTest, TightCropIsRecognisedAndANonFaceIsNoFace) {
  const bool tight_crop = GetParam();
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  std::unique_ptr<vision::FaceEngine> engine;
  try {
    engine = vision::FaceEngine::Open();
  } catch (const Error& e) {
    GTEST_SKIP() << "face models not installed: " << e.what();
  }
  const std::string version = engine->model_version();
  match::IndexOptions io;
  io.model_version = version;
  match::FeatureIndex index(io);
  const fs::path person = lfw / "Aaron_Peirsol";
  const auto enrolled =
      engine->DetectCentral(vision::DecodeImage(ReadBytes(person / "Aaron_Peirsol_0001.jpg")));
  ASSERT_TRUE(enrolled);
  index.Add("Aaron_Peirsol", engine->Embed(*enrolled).values, version);
  for (int i = 0; i < 50; ++i)
    index.Add("R" + std::to_string(i), anju::testing::RandomUnitFeature(uint32_t(i)), version);
  engine.reset();

  const fs::path dir = anju::testing::TempDir("viid-recognition");
  // Removed last, also after a failed ASSERT (declared before everything that uses it).
  struct RemoveOnExit {
    fs::path dir;
    ~RemoveOnExit() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } remove_on_exit{dir};
  const auto key = crypto::DataKey::Generate();
  EventStore events(dir, key);
  std::atomic<bool> stopping{false};
  ViidDeps deps;
  deps.data_dir = dir / "viid";
  fs::create_directories(deps.data_dir);
  deps.events = &events;
  deps.index = [&] { return &index; };
  deps.model_version = version;
  deps.thresholds_file = match::DefaultThresholdsPath();
  deps.stopping = &stopping;
  ViidOptions o;
  o.tight_crop = tight_crop;
  ViidService s(deps, key, o);
  s.Start();

  const auto answer =
      s.endpoint().Faces("CAM", Body("same", ReadBytes(person / "Aaron_Peirsol_0003.jpg")));
  ASSERT_EQ(answer.outcome, ViidAnswer::Outcome::kOk) << answer.body;
  ASSERT_EQ(viid::ParseResponseStatus(answer.body.dump()).at(0).status_code, viid::kOk)
      << answer.body;
  std::vector<uint8_t> grey;
  cv::imencode(".jpg", cv::Mat(200, 200, CV_8UC3, cv::Scalar::all(128)), grey);
  s.endpoint().Faces("CAM", Body("grey", grey));
  ASSERT_TRUE(s.workers().WaitIdle(std::chrono::minutes(2)));

  const auto same = Find(s, "same");
  ASSERT_TRUE(same);
  EXPECT_EQ(same->state, "done");
  EXPECT_EQ(same->outcome, "accept");
  EXPECT_EQ(same->person, "Aaron_Peirsol");
  if (tight_crop)
    EXPECT_EQ(same->quality["found_by"], "crop");
  else
    EXPECT_NE(same->quality["found_by"], "crop");
  const auto none = Find(s, "grey");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->state, "no_face");
  stopping = true;
}

INSTANTIATE_TEST_SUITE_P(TightCrop, ViidRecognitionTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "On" : "Off"; });

}  // namespace
}  // namespace anju::server
