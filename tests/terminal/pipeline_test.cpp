// AccessPipeline end to end on real face images played as camera frames (
// "Recognition loop"): the real engine, index, thresholds and a logging door.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "door/logging_controller.h"
#include "match/thresholds.h"
#include "terminal/access_pipeline.h"
#include "terminal/mask.h"
#include "testing.h"
#include "vision/image.h"

namespace anju::terminal {
namespace {

using std::chrono::milliseconds;

struct Record {
  std::string kind;
  nlohmann::json payload;
  std::vector<uint8_t> jpeg;
};

bool IsJpeg(const std::vector<uint8_t>& b) {
  return b.size() > 100 && b[0] == 0xFF && b[1] == 0xD8 && b[b.size() - 2] == 0xFF &&
         b.back() == 0xD9;
}

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      engine_ = vision::FaceEngine::Open().release();
    } catch (const Error& e) {
      std::printf("face models not available: %s\n", e.what());
    }
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "face models not installed (scripts/fetch-models)";
    lfw_ = testing::DataPath("lfw/lfw");
    if (lfw_.empty()) GTEST_SKIP() << "evaluation data 'lfw' not found";
    const auto tpath = match::DefaultThresholdsPath();
    ASSERT_FALSE(tpath.empty()) << "no thresholds file";
    thresholds_ = match::Thresholds::Load(tpath, engine_->model_version());
    match::IndexOptions io;
    io.model_version = engine_->model_version();
    index_ = std::make_unique<match::FeatureIndex>(io);
  }

  // The I-th image (1-based, in name order) of an LFW person.
  cv::Mat Lfw(const std::string& name, int i) {
    std::vector<std::filesystem::path> files;
    for (const auto& e : std::filesystem::directory_iterator(lfw_ / name))
      files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (i < 1 || size_t(i) > files.size()) throw std::runtime_error("no image " + name);
    return vision::LoadImage(files[size_t(i) - 1]);
  }

  void Enrol(const std::string& person, const cv::Mat& image, PersonRules rules = {}) {
    auto face = engine_->DetectLargest(image);
    ASSERT_TRUE(face) << person;
    index_->Add(person, engine_->Embed(*face).values, engine_->model_version());
    rules.person = person;
    std::lock_guard lock(mu_);
    rules_[person] = rules;
  }

  std::unique_ptr<AccessPipeline> Make(PipelineOptions o = {}) {
    o.terminal_id = "T-test";
    o.level = match::SecurityLevel::kNormal;  // the shipped default
    return std::make_unique<AccessPipeline>(
        o, *engine_, *index_, thresholds_,
        [this](const std::string& p) -> std::optional<PersonRules> {
          std::lock_guard lock(mu_);
          auto it = rules_.find(p);
          if (it == rules_.end()) return std::nullopt;
          return it->second;
        },
        door_,
        [this](std::string_view kind, const nlohmann::json& payload, std::vector<uint8_t> jpeg) {
          std::lock_guard lock(mu_);
          records_.push_back({std::string(kind), payload, std::move(jpeg)});
        });
  }

  // N frames of IMAGE stamped as they are handed over, like a camera at ~10 fps.
  void Play(AccessPipeline& p, const cv::Mat& image, int n, milliseconds period = milliseconds(0)) {
    for (int i = 0; i < n; ++i) {
      video::Frame f{image.clone(), video::Clock::now(), seq_++};
      p.OnFrame(f);
      if (period.count()) std::this_thread::sleep_for(period);
    }
  }
  static cv::Mat Blank(const cv::Size& size) {
    return cv::Mat(size, CV_8UC3, cv::Scalar(90, 100, 110));
  }
  // Face, then enough empty frames for the track to end.
  void Approach(AccessPipeline& p, const cv::Mat& face, int frames = 6) {
    Play(p, Blank(face.size()), 1);
    Play(p, face, frames);
    Play(p, Blank(face.size()), 8);
  }

  std::vector<Record> Records(const std::string& kind, const std::string& field = "",
                              const std::string& value = "") {
    std::lock_guard lock(mu_);
    std::vector<Record> out;
    for (const auto& r : records_)
      if (r.kind == kind &&
          (field.empty() || (r.payload.contains(field) && r.payload[field].is_string() &&
                             r.payload[field] == value)))
        out.push_back(r);
    return out;
  }
  void PrintRecords() {
    std::lock_guard lock(mu_);
    for (const auto& r : records_)
      std::printf("    %s %s\n", r.kind.c_str(), r.payload.dump().c_str());
  }

  static vision::FaceEngine* engine_;
  std::filesystem::path lfw_;
  match::Thresholds thresholds_;
  std::unique_ptr<match::FeatureIndex> index_;
  door::LoggingDoorController door_{1};
  std::mutex mu_;
  std::map<std::string, PersonRules> rules_;
  std::vector<Record> records_;
  uint64_t seq_ = 0;
};

vision::FaceEngine* PipelineTest::engine_ = nullptr;

// R3.1.2.2: an enrolled, live, authorised person is admitted; the door opens once with the
// person's own open time (R2.1.4.1) and one "open" record carries a face snapshot.
TEST_F(PipelineTest, EnrolledPersonIsAdmittedOnce) {
  PersonRules rules;
  rules.display_name = "温*宝";
  rules.open_ms = 8000;
  Enrol("P-wen", Lfw("Wen_Jiabao", 1), rules);
  Enrol("P-chretien", Lfw("Jean_Chretien", 1));
  auto p = Make();
  Play(*p, Blank({250, 250}), 1);
  Play(*p, Lfw("Wen_Jiabao", 2), 30);  // standing at the door for 30 frames
  EXPECT_TRUE(door_.released(0));
  Play(*p, Blank({250, 250}), 8);
  p->Flush();
  PrintRecords();
  auto open = Records("access", "decision", "open");
  ASSERT_EQ(open.size(), 1u) << "decided once per approach, not per frame";
  EXPECT_EQ(open[0].payload["person"], "P-wen");
  EXPECT_EQ(open[0].payload["open_ms"], 8000);
  EXPECT_GE(open[0].payload["frames"].get<int>(), 1);
  EXPECT_GE(open[0].payload["liveness"].get<float>(), p->options().liveness_threshold);
  EXPECT_TRUE(IsJpeg(open[0].jpeg));
  EXPECT_EQ(Records("access").size(), 1u);
  EXPECT_TRUE(Records("alarm").empty());
  const auto d = p->last_result();
  EXPECT_EQ(d.result, "open");
  EXPECT_EQ(d.display_name, "温*宝");
  EXPECT_EQ(d.message_zh, "请通行");
  const auto s = p->stats();
  EXPECT_EQ(s.decisions.at("open"), 1u);
  EXPECT_GT(s.latency_p50_ms, 0);
}

// R3.1.2.5: an unknown live face is refused; a stranger record and an alarm with a JPEG.
TEST_F(PipelineTest, StrangerIsRefusedWithRecordAndAlarm) {
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  auto p = Make();
  Approach(*p, Lfw("Hans_Blix", 2));
  p->Flush();
  PrintRecords();
  EXPECT_FALSE(door_.released(0));
  auto st = Records("access", "decision", "stranger");
  ASSERT_EQ(st.size(), 1u);
  EXPECT_TRUE(st[0].payload["person"].is_null());
  EXPECT_TRUE(IsJpeg(st[0].jpeg));
  auto alarms = Records("alarm", "alarm_type", "stranger");
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_TRUE(IsJpeg(alarms[0].jpeg));
  EXPECT_EQ(alarms[0].payload["terminal"], "T-test");
  EXPECT_EQ(p->last_result().result, "stranger");
  EXPECT_TRUE(Records("access", "decision", "open").empty());
}

// R3.1.2.4: a printed photograph held to the camera (NUAA ImposterRaw) is a spoof, even
// of an enrolled person; the client's live frames are admitted.
TEST_F(PipelineTest, PrintedPhotoIsRefusedAsSpoof) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const auto live_dir = nuaa / "ClientRaw/0001";
  const auto attack_dir = nuaa / "ImposterRaw/0001";
  std::vector<std::filesystem::path> live, attack;
  for (const auto& e : std::filesystem::directory_iterator(live_dir)) live.push_back(e.path());
  for (const auto& e : std::filesystem::directory_iterator(attack_dir)) attack.push_back(e.path());
  std::sort(live.begin(), live.end());
  std::sort(attack.begin(), attack.end());
  ASSERT_FALSE(live.empty());
  ASSERT_GE(attack.size(), 4u);
  Enrol("P-nuaa-1", vision::LoadImage(live[0]));
  auto p = Make();
  const cv::Mat first = vision::LoadImage(attack[0]);
  Play(*p, Blank(first.size()), 1);
  for (size_t i = 0; i < 4; ++i) Play(*p, vision::LoadImage(attack[i]), 2);
  Play(*p, Blank(first.size()), 8);
  p->Flush();
  PrintRecords();
  EXPECT_FALSE(door_.released(0));
  auto spoof = Records("access", "decision", "spoof");
  ASSERT_EQ(spoof.size(), 1u);
  EXPECT_LT(spoof[0].payload["liveness"].get<float>(), 0.5f);
  auto alarms = Records("alarm", "alarm_type", "spoof");
  ASSERT_EQ(alarms.size(), 1u);
  EXPECT_TRUE(IsJpeg(alarms[0].jpeg));
  EXPECT_TRUE(Records("access", "decision", "open").empty());
  EXPECT_EQ(p->last_result().result, "spoof");
}

// R3.2.2.2: after one admission, a second person in the door window raises tailgating.
TEST_F(PipelineTest, SecondPersonInDoorWindowRaisesTailgating) {
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  auto p = Make();
  const cv::Mat a = Lfw("Wen_Jiabao", 2), b = Lfw("Hans_Blix", 2);
  cv::Mat alone = Blank({500, 250}), together = Blank({500, 250});
  a.copyTo(alone(cv::Rect(0, 0, 250, 250)));
  a.copyTo(together(cv::Rect(0, 0, 250, 250)));
  b.copyTo(together(cv::Rect(250, 0, 250, 250)));
  Play(*p, Blank({500, 250}), 1);
  Play(*p, alone, 4);
  ASSERT_TRUE(door_.released(0)) << "the first person is admitted";
  Play(*p, together, 8, milliseconds(100));  // someone follows while the door is open
  Play(*p, Blank({500, 250}), 8);
  p->Flush();
  PrintRecords();
  auto tg = Records("alarm", "alarm_type", "tailgating");
  ASSERT_EQ(tg.size(), 1u);
  EXPECT_EQ(tg[0].payload["admitted"], 1);
  EXPECT_GE(tg[0].payload["people"].get<int>(), 2);
  EXPECT_TRUE(IsJpeg(tg[0].jpeg));
  EXPECT_EQ(p->stats().tailgating_alarms, 1u);
}

// Two residents who are both admitted on their own faces are not tailgating.
TEST_F(PipelineTest, TwoAdmittedPeopleAreNotTailgating) {
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  Enrol("P-chretien", Lfw("Jean_Chretien", 1));
  auto p = Make();
  cv::Mat together = Blank({500, 250});
  Lfw("Wen_Jiabao", 2).copyTo(together(cv::Rect(0, 0, 250, 250)));
  Lfw("Jean_Chretien", 2).copyTo(together(cv::Rect(250, 0, 250, 250)));
  Play(*p, Blank({500, 250}), 1);
  Play(*p, together, 8);
  Play(*p, Blank({500, 250}), 8);
  p->Flush();
  PrintRecords();
  EXPECT_EQ(Records("access", "decision", "open").size(), 2u);
  EXPECT_TRUE(Records("alarm", "alarm_type", "tailgating").empty());
}

// R3.2.1: a known face outside its time window, or after valid_until, is denied with the
// reason; the door stays shut.
TEST_F(PipelineTest, RulesDenyWithReason) {
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  const int today = (local.tm_wday + 6) % 7;  // 0 = Monday
  PersonRules not_today;
  not_today.windows.push_back({static_cast<uint8_t>(0x7f & ~(1u << today)), 0, 1440});
  Enrol("P-wen", Lfw("Wen_Jiabao", 1), not_today);
  PersonRules expired;
  expired.valid_until_ms =
      std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() -
      1000;
  Enrol("P-chretien", Lfw("Jean_Chretien", 1), expired);
  auto p = Make();
  Approach(*p, Lfw("Wen_Jiabao", 2));
  EXPECT_EQ(p->last_result().result, "deny");
  EXPECT_EQ(p->last_result().reason, "outside_hours");
  Approach(*p, Lfw("Jean_Chretien", 2));
  EXPECT_EQ(p->last_result().result, "deny");
  EXPECT_EQ(p->last_result().reason, "expired");
  p->Flush();
  PrintRecords();
  EXPECT_FALSE(door_.released(0));
  auto deny = Records("access", "decision", "deny");
  ASSERT_EQ(deny.size(), 2u);
  EXPECT_EQ(deny[0].payload["reason"], "outside_hours");
  EXPECT_EQ(deny[0].payload["person"], "P-wen");
  EXPECT_EQ(deny[1].payload["reason"], "expired");
}

// Unit doors (docs/matching.md): a resident of another unit held as recognise-only is
// recognised as who they are and refused as wrong_door; the door stays shut and the record names
// them, while the door's own resident is let in.
TEST_F(PipelineTest, RecogniseOnlyResidentIsRefusedAsWrongDoor) {
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  PersonRules other_unit;
  other_unit.recognise_only = true;
  Enrol("P-chretien", Lfw("Jean_Chretien", 1), other_unit);
  PipelineOptions o;
  o.tailgating_grace = milliseconds(0);
  auto p = Make(o);
  Approach(*p, Lfw("Jean_Chretien", 2));
  EXPECT_EQ(p->last_result().result, "deny");
  EXPECT_EQ(p->last_result().reason, "wrong_door");
  EXPECT_FALSE(door_.released(0));
  Approach(*p, Lfw("Wen_Jiabao", 2));
  p->Flush();
  PrintRecords();
  EXPECT_EQ(p->last_result().result, "open");
  auto deny = Records("access", "decision", "deny");
  ASSERT_EQ(deny.size(), 1u);
  EXPECT_EQ(deny[0].payload["person"], "P-chretien");
  EXPECT_EQ(deny[0].payload["reason"], "wrong_door");
  EXPECT_EQ(Records("access", "decision", "open").size(), 1u);
}

// A removal from the index (gallery sync) applies to the next approach.
TEST_F(PipelineTest, RemovalTakesEffectOnNextApproach) {
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  PipelineOptions o;
  o.tailgating_grace = milliseconds(0);  // the same person returns while the door is open
  auto p = Make(o);
  Approach(*p, Lfw("Wen_Jiabao", 2));
  ASSERT_EQ(p->last_result().result, "open");
  index_->RemovePerson("P-wen");
  {
    std::lock_guard lock(mu_);
    rules_.erase("P-wen");
  }
  Approach(*p, Lfw("Wen_Jiabao", 3));
  p->Flush();
  PrintRecords();
  EXPECT_EQ(Records("access", "decision", "open").size(), 1u);
  EXPECT_EQ(Records("access", "decision", "stranger").size(), 1u);
  EXPECT_EQ(p->last_result().result, "stranger");
}

// R3.2.3.2: with nothing moving, frames only reach the motion gate, at the idle rate.
TEST_F(PipelineTest, IdleFramesOnlyReachTheMotionGate) {
  auto p = Make();
  Play(*p, Blank({320, 240}), 40);
  auto s = p->stats();
  EXPECT_EQ(s.frames, 40u);
  EXPECT_LE(s.processed, 1u);  // the first frame of a new size is looked at
  EXPECT_GE(s.idle, 39u);
  EXPECT_TRUE(Records("access").empty());
}

TEST_F(PipelineTest, BadFramesAreRefusedClearly) {
  auto p = Make();
  EXPECT_EQ(testing::CodeOf([&] { p->OnFrame(video::Frame{}); }), ErrorCode::kBadImage);
  video::Frame f{cv::Mat(100, 100, CV_16UC3, cv::Scalar(0)), video::Clock::now(), 1};
  EXPECT_EQ(testing::CodeOf([&] { p->OnFrame(f); }), ErrorCode::kBadImage);
  Approach(*p, Lfw("Hans_Blix", 2));  // still works afterwards
  EXPECT_EQ(p->last_result().result, "stranger");
}

// R2.1.5.1 policies on a real masked photo played as frames: `ask_remove` asks for the
// mask to come off and never matches the masked face; `stricter` matches with a raised
// threshold and says so in the record.
TEST_F(PipelineTest, MaskPolicies) {
  ANJU_REQUIRE_DATA(masked, "masked");
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(masked)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  cv::Mat frame;
  for (const auto& f : files) {  // the first clearly masked, large enough face
    cv::Mat img = vision::LoadImage(f);
    auto face = engine_->DetectLargest(img);
    if (face && face->det.box.width >= 100 && MaskScore(face->aligned) >= 0.8f) {
      frame = img;
      break;
    }
  }
  ASSERT_FALSE(frame.empty());
  Enrol("P-wen", Lfw("Wen_Jiabao", 1));
  {
    PipelineOptions o;
    o.mask_policy = MaskPolicy::kAskRemove;
    auto p = Make(o);
    Play(*p, Blank(frame.size()), 1);
    Play(*p, frame, 3);
    EXPECT_EQ(p->last_result().result, "mask_off");
    EXPECT_EQ(p->last_result().message_zh, "请摘下口罩");
    Play(*p, Blank(frame.size()), 8);
    p->Flush();
    auto rec = Records("access", "decision", "uncertain");
    ASSERT_EQ(rec.size(), 1u);
    EXPECT_EQ(rec[0].payload["reason"], "mask");
    EXPECT_EQ(rec[0].payload["frames"], 0) << "masked frames are not matched";
  }
  {
    std::lock_guard lock(mu_);
    records_.clear();
  }
  PipelineOptions o;
  o.mask_policy = MaskPolicy::kStricter;
  auto p = Make(o);
  Approach(*p, frame, 4);
  p->Flush();
  PrintRecords();
  auto rec = Records("access");
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].payload["mask"], true);
  EXPECT_NEAR(rec[0].payload["threshold"].get<float>(),
              thresholds_.at(match::SecurityLevel::kNormal).threshold + o.mask_threshold_delta,
              1e-5);
}

TEST(PipelineOptionsTest, ParsesRefusesUnknownKeysAndRoundTrips) {
  auto o = PipelineOptions::FromJson(
      {{"door", 1}, {"level", "high"}, {"decision_budget_ms", 400}, {"mask_policy", "ask_remove"}});
  EXPECT_EQ(o.door, 1);
  EXPECT_EQ(o.level, match::SecurityLevel::kHigh);
  EXPECT_EQ(o.decision_budget, milliseconds(400));
  EXPECT_EQ(o.mask_policy, MaskPolicy::kAskRemove);
  auto back = PipelineOptions::FromJson(o.ToJson());
  EXPECT_EQ(back.ToJson(), o.ToJson());
  EXPECT_EQ(testing::CodeOf([] {
              PipelineOptions::FromJson({{"decison_budget_ms", 1}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(testing::CodeOf([] {
              PipelineOptions::FromJson({{"door", "front"}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(testing::CodeOf([] {
              PipelineOptions::FromJson({{"level", "extreme"}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(testing::CodeOf([] {
              PipelineOptions::FromJson({{"fuse_frames", 0}});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(testing::CodeOf([] { PipelineOptions::FromJson(nlohmann::json::array()); }),
            ErrorCode::kInvalidArgument);
}

// R2.1.5.1: the mask test on real photos: masks from masked/ and mfr2, bare faces from
// mfr2 (the same people and cameras). Whole-set rates: docs/terminal.md (`anju bench mask`).
TEST_F(PipelineTest, MaskTestSeparatesMaskedFromBareFaces) {
  ANJU_REQUIRE_DATA(masked, "masked");
  ANJU_REQUIRE_DATA(mfr2, "mfr2");
  auto score = [&](const std::filesystem::path& f) -> std::optional<float> {
    auto face = engine_->DetectLargest(vision::LoadImage(f));
    if (!face) return std::nullopt;
    return MaskScore(face->aligned);
  };
  int masked_n = 0, masked_hit = 0, bare_n = 0, bare_hit = 0;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(masked)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size() && masked_n < 25; ++i)
    if (auto s = score(files[i])) masked_n++, masked_hit += *s >= 0.5f;
  std::ifstream labels(mfr2 / "mfr2_labels.txt");
  std::string line;
  while (std::getline(labels, line) && bare_n + masked_n < 75) {
    std::stringstream ss(line);
    std::string name, num, type;
    std::getline(ss, name, ',');
    std::getline(ss, num, ',');
    std::getline(ss, type);
    type.erase(0, type.find_first_not_of(' '));
    char file[256];
    std::snprintf(file, sizeof file, "%s/%s_%04d.png", name.c_str(), name.c_str(), std::stoi(num));
    auto s = score(mfr2 / file);
    if (!s) continue;
    if (type == "no-mask")
      bare_n++, bare_hit += *s >= 0.5f;
    else
      masked_n++, masked_hit += *s >= 0.5f;
  }
  std::printf("    masks detected %d / %d, bare faces called masked %d / %d\n", masked_hit,
              masked_n, bare_hit, bare_n);
  ASSERT_GE(masked_n, 40);
  ASSERT_GE(bare_n, 10);
  EXPECT_GE(masked_hit, masked_n * 8 / 10);
  EXPECT_LE(bare_hit, bare_n * 2 / 10);
}

}  // namespace
}  // namespace anju::terminal
