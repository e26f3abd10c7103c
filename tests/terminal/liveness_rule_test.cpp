// The terminal's per-approach liveness (R3.1.2.4, docs/terminal.md "Liveness"): recorded
// NUAA and CASIA-FaceV5 frames replayed through the real AccessPipeline
// (terminal::ReplayApproach), the infrared path, the per-device threshold calibration
// and their configuration.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "eval/liveness_eval.h"
#include "match/thresholds.h"
#include "terminal/approach_replay.h"
#include "terminal/liveness_calibration.h"
#include "terminal/terminal.h"
#include "terminal/terminal_config.h"
#include "testing.h"
#include "vision/image.h"

// The code of the anju::Error that EXPR throws (message printed), like the other suites.
#define EXPECT_ANJU_ERROR(expr, code) \
  EXPECT_EQ(::anju::testing::CodeOf([&] { (void)(expr); }), (code))

namespace anju::terminal {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Frames of one NUAA recording session (subject_glasses_position_session) from the subset
// list, in picture-number order: real consecutive webcam frames of one sitting.
std::vector<fs::path> NuaaSession(const fs::path& nuaa, bool live, size_t min_frames) {
  std::ifstream list(nuaa / (live ? "client_train_subset.txt" : "imposter_train_subset.txt"));
  std::map<std::string, std::vector<fs::path>> groups;
  std::vector<std::string> order;
  for (std::string line; std::getline(list, line);) {
    if (line.empty()) continue;
    const fs::path p = nuaa / (live ? "ClientRaw" : "ImposterRaw") / line;
    const std::string stem = p.stem().string();
    const std::string group = stem.substr(0, stem.rfind('_'));
    if (!groups.count(group)) order.push_back(group);
    groups[group].push_back(p);
  }
  for (const auto& g : order) {
    auto& v = groups[g];
    if (v.size() < min_frames) continue;
    std::sort(v.begin(), v.end(), [](const fs::path& a, const fs::path& b) {
      return eval::NaturalLess(a.filename().string(), b.filename().string());
    });
    v.resize(min_frames);
    return v;
  }
  return {};
}

std::vector<cv::Mat> Load(const std::vector<fs::path>& files) {
  std::vector<cv::Mat> out;
  for (const auto& f : files) out.push_back(vision::LoadImage(f));
  return out;
}

class LivenessRuleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      engine_ = vision::FaceEngine::Open();
    } catch (const Error& e) {
      std::printf("face models not available: %s\n", e.what());
    }
  }
  static void TearDownTestSuite() { engine_.reset(); }
  void SetUp() override {
    if (!engine_) GTEST_SKIP() << "face models not installed (scripts/fetch-models)";
    nuaa_ = anju::testing::DataPath("nuaa");
    if (nuaa_.empty()) GTEST_SKIP() << "evaluation data 'nuaa' not found";
    live_ = Load(NuaaSession(nuaa_, true, 4));
    attack_ = Load(NuaaSession(nuaa_, false, 4));
    ASSERT_EQ(live_.size(), 4u);
    ASSERT_EQ(attack_.size(), 4u);
  }
  // Live probabilities of the largest face of each image (the pipeline's own engine).
  std::vector<float> Scores(const std::vector<fs::path>& files) {
    std::vector<float> out;
    for (const auto& f : files) {
      const cv::Mat img = vision::LoadImage(f);
      if (auto face = engine_->DetectLargest(img)) out.push_back(engine_->Liveness(img, *face));
    }
    return out;
  }
  // IR stand-ins (no NIR data exists): the colour frame turned grey, a face as NIR shows
  // one; or with the face region flattened dark, as NIR shows a screen.
  std::vector<cv::Mat> IrStandIns(const std::vector<cv::Mat>& colour, bool blank_face) {
    std::vector<cv::Mat> out;
    for (const auto& c : colour) {
      cv::Mat grey;
      cv::cvtColor(c, grey, cv::COLOR_BGR2GRAY);
      if (blank_face) {
        auto face = engine_->DetectLargest(c);
        if (face) {
          const cv::Rect r = cv::Rect(face->det.box) & cv::Rect({0, 0}, grey.size());
          grey(r).setTo(cv::Scalar(12));
        }
      }
      out.push_back(grey);
    }
    return out;
  }

  static std::unique_ptr<vision::FaceEngine> engine_;
  fs::path nuaa_;
  std::vector<cv::Mat> live_, attack_;
};
std::unique_ptr<vision::FaceEngine> LivenessRuleTest::engine_;

// The terminal's rule on one approach each: four webcam frames of a live client are
// admitted, four frames of a printed photo are refused, both with their fused score on
// the right side of the threshold.
TEST_F(LivenessRuleTest, LiveApproachAdmittedPrintedPhotoRefused) {
  const PipelineOptions o;
  const auto live = ReplayApproach(*engine_, live_, o);
  const auto attack = ReplayApproach(*engine_, attack_, o);
  std::printf("    live: %s %.4f (%d frames), print: %s %.2e (%d frames)\n", live.decision.c_str(),
              live.liveness, live.frames_used, attack.decision.c_str(), attack.liveness,
              attack.frames_used);
  EXPECT_EQ(live.decision, "open");
  EXPECT_GE(live.liveness, o.liveness_threshold);
  EXPECT_GE(live.frames_used, o.fuse_frames);
  EXPECT_EQ(attack.decision, "spoof");
  EXPECT_LT(attack.liveness, o.liveness_threshold);
  EXPECT_EQ(attack.reason, "");
  // No face at all: no decision (nothing to judge), not a refusal.
  const cv::Mat blank(480, 640, CV_8UC3, cv::Scalar(90, 100, 110));
  EXPECT_EQ(ReplayApproach(*engine_, {blank, blank, blank}, o).decision, "");
  EXPECT_ANJU_ERROR(ReplayApproach(*engine_, live_, o, 0), ErrorCode::kInvalidArgument);
}

TEST_F(LivenessRuleTest, InfraredRequiredPairsFramesAndFailsClosed) {
  PipelineOptions o;
  o.ir_required = true;
  const auto with_face = ReplayApproach(*engine_, live_, o, 10, IrStandIns(live_, false));
  const auto screen = ReplayApproach(*engine_, live_, o, 10, IrStandIns(live_, true));
  const auto missing = ReplayApproach(*engine_, live_, o);
  std::printf("    IR face: %s, IR blank: %s/%s, no IR: %s/%s\n", with_face.decision.c_str(),
              screen.decision.c_str(), screen.reason.c_str(), missing.decision.c_str(),
              missing.reason.c_str());
  EXPECT_EQ(with_face.decision, "open");
  EXPECT_EQ(screen.decision, "spoof");
  EXPECT_EQ(screen.reason, "ir_no_face");
  EXPECT_EQ(missing.decision, "spoof");
  EXPECT_EQ(missing.reason, "ir_missing");
  // The print stays refused by the colour model whatever the IR frames show.
  EXPECT_EQ(ReplayApproach(*engine_, attack_, o, 10, IrStandIns(attack_, false)).decision, "spoof");
  EXPECT_ANJU_ERROR(ReplayApproach(*engine_, live_, o, 10, {live_[0]}),
                    ErrorCode::kInvalidArgument);
}

// A device whose camera gives residents high scores raises its threshold from its own
// recognised traffic; a harder camera leaves it near the configured floor; prints stay
// refused at every calibrated threshold.
TEST_F(LivenessRuleTest, CalibrationRisesTowardTheDevicesOwnCamera) {
  ANJU_REQUIRE_DATA(casia, "east-asian/casia5");
  std::vector<fs::path> nuaa_live, nuaa_attack, casia_live;
  {
    std::ifstream l(nuaa_ / "client_train_subset.txt"), a(nuaa_ / "imposter_train_subset.txt");
    int i = 0;
    for (std::string s; std::getline(l, s); ++i)
      if (!s.empty() && i % 5 == 0) nuaa_live.push_back(nuaa_ / "ClientRaw" / s);
    i = 0;
    for (std::string s; std::getline(a, s); ++i)
      if (!s.empty() && i % 10 == 0) nuaa_attack.push_back(nuaa_ / "ImposterRaw" / s);
  }
  for (const auto& p : eval::ListImagesRecursive(casia))
    if (casia_live.size() < 40) casia_live.push_back(p);
  const auto nl = Scores(nuaa_live), na = Scores(nuaa_attack), cl = Scores(casia_live);
  ASSERT_GE(nl.size(), 35u);
  ASSERT_GE(na.size(), 15u);
  ASSERT_GE(cl.size(), 35u);

  LivenessCalibrationOptions co;
  co.enabled = true;
  co.min_samples = 30;
  co.window = 100;
  co.quantile = 0.05;
  const float floor = PipelineOptions{}.liveness_threshold;
  LivenessCalibrator webcam(co, floor), usb(co, floor);
  for (size_t i = 0; i < nl.size(); ++i) {
    if (i + 1 == size_t(co.min_samples)) {
      EXPECT_EQ(webcam.threshold(), floor) << "the floor until min_samples approaches";
    }
    webcam.Add(nl[i]);
  }
  for (float s : cl) usb.Add(s);
  std::printf("    calibrated thresholds: NUAA webcam %.4f, CASIA USB camera %.4f (floor %.4f)\n",
              webcam.threshold(), usb.threshold(), floor);
  EXPECT_GT(webcam.threshold(), 10 * floor);
  EXPECT_LE(webcam.threshold(), co.max_threshold);
  EXPECT_GE(usb.threshold(), floor);
  EXPECT_LT(usb.threshold(), webcam.threshold());
  auto refused = [](const std::vector<float>& v, float t) {
    return std::count_if(v.begin(), v.end(), [&](float s) { return s < t; });
  };
  EXPECT_LE(refused(nl, webcam.threshold()), 1) << "residents still pass";
  EXPECT_LE(double(refused(cl, usb.threshold())), 0.1 * double(cl.size()));
  EXPECT_EQ(refused(na, webcam.threshold()), long(na.size())) << "prints still refused";
  // Calibration never accepts a print that the configured floor refuses.
  EXPECT_GE(refused(na, usb.threshold()), refused(na, floor));
  // Attack traffic among the recognised approaches can only pull it back to the floor.
  for (int i = 0; i < 100; ++i) webcam.Add(1e-6f);
  EXPECT_EQ(webcam.threshold(), floor);
}

TEST_F(LivenessRuleTest, PipelineAppliesThePersistedCalibration) {
  ANJU_REQUIRE_DATA(casia, "east-asian/casia5");
  // An approach of five USB-camera photos of one person, admitted at the configured
  // threshold with a fused score below 0.99 (the first such person).
  PipelineOptions o;
  std::vector<cv::Mat> frames;
  ApproachResult plain;
  for (const auto& a : eval::ListApproaches(casia)) {
    frames = Load(a.frames);
    plain = ReplayApproach(*engine_, frames, o);
    if (plain.decision == "open" && plain.liveness < 0.99f) break;
  }
  ASSERT_EQ(plain.decision, "open");
  ASSERT_LT(plain.liveness, 0.99f) << "no CASIA approach below the calibrated threshold";
  // A device whose residents all score ≈1 has calibrated far above that approach's score.
  const fs::path dir = anju::testing::TempDir("liveness-calibration");
  o.liveness_calibration.enabled = true;
  o.liveness_calibration.min_samples = 20;
  o.liveness_calibration.window = 50;
  o.liveness_calibration.max_threshold = 0.999f;
  o.liveness_calibration_file = dir / "liveness-calibration.json";
  {
    std::ofstream f(o.liveness_calibration_file);
    f << json{{"format", 1}, {"scores", std::vector<float>(50, 0.99999f)}}.dump();
  }
  {
    LivenessCalibrator c(o.liveness_calibration, o.liveness_threshold, o.liveness_calibration_file);
    EXPECT_FLOAT_EQ(c.threshold(), 0.999f);
  }
  const auto calibrated = ReplayApproach(*engine_, frames, o);
  std::printf("    fused %.4f: %s at the floor, %s after calibration\n", plain.liveness,
              plain.decision.c_str(), calibrated.decision.c_str());
  EXPECT_EQ(calibrated.decision, "spoof");
  // The refused approach was recognised: it joined the device's sample and was saved.
  {
    LivenessCalibrator c(o.liveness_calibration, o.liveness_threshold, o.liveness_calibration_file);
    EXPECT_EQ(c.samples(), 50u);  // the window: oldest dropped
  }
  // A damaged file is ignored: back to the configured threshold, nothing else changes.
  {
    std::ofstream f(o.liveness_calibration_file, std::ios::trunc);
    f << "{\"scores\": [0.5, \"x\"";
  }
  EXPECT_EQ(ReplayApproach(*engine_, frames, o).decision, "open");
  fs::remove_all(dir);
}

TEST(LivenessCalibrationTest, OptionsAndSmallSamples) {
  const auto o = LivenessCalibrationOptions::FromJson({{"enabled", true},
                                                       {"window", 300},
                                                       {"min_samples", 100},
                                                       {"quantile", 0.02},
                                                       {"margin", 0.5},
                                                       {"max_threshold", 0.3}});
  EXPECT_TRUE(o.enabled);
  EXPECT_EQ(o.window, 300);
  EXPECT_EQ(LivenessCalibrationOptions::FromJson(o.ToJson()).ToJson(), o.ToJson());
  for (const json& bad :
       {json{{"enable", true}}, json{{"window", 5}}, json{{"window", 50}, {"min_samples", 60}},
        json{{"quantile", 0.9}}, json{{"margin", "1"}}, json("on")})
    EXPECT_ANJU_ERROR(LivenessCalibrationOptions::FromJson(bad), ErrorCode::kInvalidArgument)
        << bad.dump();
  EXPECT_FLOAT_EQ(LowerQuantile({0.9f, 0.1f, 0.5f, 0.7f}, 0.25), 0.5f);
  EXPECT_FLOAT_EQ(LowerQuantile({0.9f, 0.1f, 0.5f, 0.7f}, 0.0), 0.1f);
  EXPECT_EQ(LowerQuantile({}, 0.1), 0.f);
  // Disabled: the floor, whatever it is fed; out-of-range scores are ignored.
  LivenessCalibrator off({}, 0.01f);
  for (int i = 0; i < 300; ++i) off.Add(0.99f);
  EXPECT_EQ(off.threshold(), 0.01f);
  LivenessCalibrationOptions on;
  on.enabled = true;
  on.min_samples = 10;
  LivenessCalibrator c(on, 0.01f);
  for (int i = 0; i < 20; ++i) c.Add(std::nanf(""));
  EXPECT_EQ(c.samples(), 0u);
}

TEST(LivenessOptionsTest, PipelineKeysParseRefuseAndRoundTrip) {
  const auto o = PipelineOptions::FromJson({{"liveness_fusion", "min"},
                                            {"liveness_threshold", 0.01},
                                            {"liveness_calibration", {{"enabled", true}}},
                                            {"ir_mode", "require"},
                                            {"ir_threshold", 0.6},
                                            {"ir_max_skew_ms", 80},
                                            {"ir_map", {0.5, 0, 12, 0, 0.5, -4}}});
  EXPECT_EQ(o.liveness_fusion, vision::LivenessFusion::kMin);
  EXPECT_TRUE(o.liveness_calibration.enabled);
  EXPECT_TRUE(o.ir_required);
  EXPECT_EQ(o.ir_max_skew.count(), 80);
  EXPECT_FLOAT_EQ(o.ir_check.map[2], 12.f);
  EXPECT_FLOAT_EQ(o.ir_check.map[5], -4.f);
  EXPECT_EQ(PipelineOptions::FromJson(o.ToJson()).ToJson(), o.ToJson());
  const PipelineOptions d;
  EXPECT_EQ(d.liveness_fusion, vision::LivenessFusion::kLogitMean);
  EXPECT_FALSE(d.ir_required);
  for (const json& bad : {json{{"liveness_fusion", "avg"}}, json{{"ir_mode", "on"}},
                          json{{"ir_map", {1, 0, 0}}}, json{{"ir_map", {1, 0, 0, 0, 1, "x"}}},
                          json{{"liveness_calibration", {{"x", 1}}}}, json{{"ir_threshold", 2}}})
    EXPECT_ANJU_ERROR(PipelineOptions::FromJson(bad), ErrorCode::kInvalidArgument) << bad.dump();
  // The terminal config: an IR camera and the IR rule come together.
  const std::string base = R"("data_dir": "/tmp/x", "camera": "dir:/tmp/frames")";
  EXPECT_ANJU_ERROR(TerminalConfig::Parse("{" + base + R"(, "ir_camera": "dir:/tmp/ir"})"),
                    ErrorCode::kInvalidArgument);
  EXPECT_ANJU_ERROR(TerminalConfig::Parse("{" + base + R"(, "pipeline": {"ir_mode": "require"}})"),
                    ErrorCode::kInvalidArgument);
  EXPECT_ANJU_ERROR(TerminalConfig::Parse("{" + base + R"(, "ir_camera": 5})"),
                    ErrorCode::kInvalidArgument);
  const auto cfg = TerminalConfig::Parse(
      "{" + base + R"(, "ir_camera": "dir:/tmp/ir", "pipeline": {"ir_mode": "require"}})");
  EXPECT_EQ(cfg.ir_camera, "dir:/tmp/ir");
  EXPECT_TRUE(cfg.pipeline.ir_required);
}

// The terminal program's wiring: a second camera's frames reach the pipeline. An offline
// terminal with an empty gallery judges one approach twice: IR frames showing the face
// (grey stand-ins) → live, so "stranger"; IR frames showing a flat dark face region (how
// near-infrared shows a screen; stand-ins, no NIR data exists) → "spoof" / "ir_no_face".
TEST_F(LivenessRuleTest, TerminalFeedsTheInfraredCameraToThePipeline) {
  if (match::DefaultThresholdsPath().empty()) GTEST_SKIP() << "no thresholds file";
  const fs::path dir = anju::testing::TempDir("terminal-ir");
  auto write = [&](const std::string& name, const std::vector<cv::Mat>& faces) {
    const fs::path d = dir / name;
    fs::create_directories(d);
    int n = 0;
    auto put = [&](const cv::Mat& m) {
      char file[32];
      std::snprintf(file, sizeof file, "%04d.png", n++);
      cv::imwrite((d / file).string(), m);
    };
    for (const auto& f : faces) put(f);
    return d;
  };
  std::shared_ptr<vision::FaceEngine> shared(engine_.get(), [](vision::FaceEngine*) {});
  for (const bool screen : {false, true}) {
    const std::string tag = screen ? "screen" : "face";
    // Every IR frame shows the same thing, so the check does not depend on how the two
    // directory sources' clocks interleave.
    const auto ir_one = IrStandIns({live_[0]}, screen).at(0);
    std::vector<cv::Mat> colour, ir;
    for (int i = 0; i < 8; ++i) colour.push_back(live_[0]), ir.push_back(ir_one);
    json j = {{"data_dir", (dir / ("data-" + tag)).string()},
              {"camera", "dir:" + write("rgb-" + tag, colour).string() + "?fps=10"},
              {"ir_camera", "dir:" + write("ir-" + tag, ir).string() + "?fps=40"},
              {"status_listen", ""},
              {"thresholds", match::DefaultThresholdsPath().string()},
              {"pipeline", {{"ir_mode", "require"}, {"ir_max_skew_ms", 5000}}}};
    TerminalParts parts;
    parts.engine = shared;
    Terminal t(TerminalConfig::Parse(j.dump(), "ir test"), std::move(parts));
    t.Start();
    ASSERT_TRUE(t.WaitCameraEnded(std::chrono::seconds(60)));
    t.Stop();
    std::vector<json> access;
    for (const auto& item : t.outbox().Peek(100))
      if (item.kind == "access") access.push_back(json::parse(item.payload));
    ASSERT_FALSE(access.empty()) << tag;
    std::printf("    IR %s: %s / %s\n", tag.c_str(),
                access[0]["decision"].get<std::string>().c_str(),
                access[0]["reason"].get<std::string>().c_str());
    if (screen) {
      EXPECT_EQ(access[0]["decision"], "spoof");
      EXPECT_EQ(access[0]["reason"], "ir_no_face");
    } else {
      EXPECT_EQ(access[0]["decision"], "stranger");
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace anju::terminal
