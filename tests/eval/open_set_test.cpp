// The open-set protocol (eval/open_set.h): what is enrolled, what is probed, what the frame
// gate refuses, and how decisions are counted — first on constructed features where every
// answer is known, then on the East-Asian developer data when it is present.
#include "eval/open_set.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "core/error.h"
#include "core/paths.h"
#include "testing.h"

namespace anju::eval {
namespace {

constexpr size_t kDim = 512;

std::vector<float> Unit(std::mt19937& rng) {
  std::normal_distribution<float> g;
  std::vector<float> v(kDim);
  double n = 0;
  for (auto& x : v) x = g(rng), n += double(x) * x;
  for (auto& x : v) x = float(x / std::sqrt(n));
  return v;
}

std::vector<float> Near(const std::vector<float>& c, std::mt19937& rng, float noise) {
  std::normal_distribution<float> g;
  std::vector<float> v = c;
  double n = 0;
  for (auto& x : v) x += noise * g(rng), n += double(x) * x;
  for (auto& x : v) x = float(x / std::sqrt(n));
  return v;
}

LabelledFace Face(const std::string& person, int k, std::vector<float> f, float quality = 0.8f,
                  float px = 120) {
  LabelledFace lf;
  lf.person = person;
  lf.file = person + "_" + std::to_string(k) + ".jpg";
  lf.rec.found = true;
  lf.rec.feature = std::move(f);
  lf.rec.quality = quality;
  lf.rec.face_px = px;
  lf.rec.liveness = 0.9f;
  return lf;
}

match::Thresholds Levels(float t, float margin) {
  match::Thresholds th;
  th.model_version = "test";
  th.fusion = match::Fusion::kMean;
  for (auto l : match::kAllLevels) th.at(l) = {t, margin, match::TargetFmr(l)};
  return th;
}

// 10 residents × 4 photos (noise 0.02 per component: genuine ≈ 0.85), 40 one-photo people.
LabelledSet Community(uint32_t seed) {
  std::mt19937 rng(seed);
  LabelledSet s;
  s.model_version = "test";
  for (int p = 0; p < 10; ++p) {
    auto c = Unit(rng);
    for (int k = 0; k < 4; ++k)
      s.faces.push_back(Face(testing::Name("res", p), k, Near(c, rng, 0.02f)));
  }
  for (int p = 0; p < 40; ++p) s.faces.push_back(Face(testing::Name("one", p), 0, Unit(rng)));
  return s;
}

TEST(OpenSet, CountsWhatItEnrolsAndProbes) {
  const LabelledSet s = Community(1);
  const auto th = Levels(0.5f, 0.04f);
  OpenSetOptions o;
  o.gallery_size = 100;
  o.threads = 1;
  auto r = RunOpenSet({.set = &s}, o, &th);
  EXPECT_EQ(r["residents"], 10);
  EXPECT_EQ(r["mated_probes"], 30);            // 3 photos after the enrolled one
  EXPECT_EQ(r["absent_resident_probes"], 30);  // the same photos, resident left out
  EXPECT_EQ(r["distractors_real"], 20);        // half of the 40 one-photo people
  EXPECT_EQ(r["nonmated_probes"], 20);         // the other half are strangers
  EXPECT_EQ(r["distractors_random"], 70);      // 100 − 10 − 20
  EXPECT_EQ(r["gallery_persons"], 100);
  EXPECT_DOUBLE_EQ(r["rank1"].get<double>(), 1.0);
  const auto& n = r["levels"]["normal"];
  EXPECT_EQ(n["fnir"], 0.0);
  EXPECT_EQ(n["fpir"], 0.0);
  EXPECT_EQ(n["mated_wrong_person_accepted"], 0);
  // Every probe passes the gate: the gated figures are the same.
  EXPECT_EQ(r["gated"]["mated_probes"], 30);
  EXPECT_EQ(r["quality_refused"]["mated"], 0);
}

TEST(OpenSet, FrameGateRefusalsAreCountedApart) {
  LabelledSet s = Community(2);
  // Resident 0's last photo is a profile (quality 0.05), resident 1's last is far away (40 px).
  s.faces[3].rec.quality = 0.05f;
  s.faces[7].rec.face_px = 40;
  const auto th = Levels(0.5f, 0.04f);
  OpenSetOptions o;
  o.threads = 1;
  o.absent_residents = false;
  auto r = RunOpenSet({.set = &s}, o, &th);
  EXPECT_EQ(r["mated_probes"], 30);
  EXPECT_EQ(r["quality_refused"]["mated"], 2);
  EXPECT_EQ(r["quality_refused"]["by_reason"]["low_quality"], 1);
  EXPECT_EQ(r["quality_refused"]["by_reason"]["too_small"], 1);
  EXPECT_EQ(r["gated"]["mated_probes"], 28);
  // A sequence of two frames is refused only when both are: fused probes of resident 0 that
  // hold the profile and a good frame still pass (on the good frame).
  o.probe_frames = 2;
  auto q = RunOpenSet({.set = &s}, o, &th);
  EXPECT_EQ(q["mated_probes"], 30);  // C(3,2) = 3 sequences per resident
  EXPECT_EQ(q["quality_refused"]["mated"], 0);
  // The optional liveness gate refuses a probe whose frames are not live.
  s.faces[5].rec.liveness = 0.1f;
  o.probe_frames = 1;
  o.liveness_threshold = 0.5f;
  auto l = RunOpenSet({.set = &s}, o, &th);
  EXPECT_EQ(l["quality_refused"]["by_reason"]["not_live"], 1);
}

TEST(OpenSet, TwinsAreWrongPersonAcceptsUnlessTheMarginHolds) {
  std::mt19937 rng(3);
  LabelledSet s;
  s.model_version = "test";
  const auto c = Unit(rng);
  // Two residents with nearly the same face; the probe of A is closer to B's enrolled photo.
  const auto a0 = Near(c, rng, 0.01f), b0 = Near(c, rng, 0.01f);
  s.faces.push_back(Face("A", 0, a0));
  s.faces.push_back(Face("A", 1, Near(b0, rng, 0.002f)));
  s.faces.push_back(Face("B", 0, b0));
  s.faces.push_back(Face("B", 1, Near(b0, rng, 0.01f)));
  OpenSetOptions o;
  o.threads = 1;
  o.absent_residents = false;
  const auto no_margin = Levels(0.5f, 0.0f);
  auto r = RunOpenSet({.set = &s}, o, &no_margin);
  EXPECT_EQ(r["levels"]["normal"]["mated_wrong_person_accepted"], 1);
  EXPECT_DOUBLE_EQ(r["levels"]["normal"]["wrong_person_rate"].get<double>(), 0.5);
  EXPECT_EQ(r["levels"]["normal"]["wrong_person_examples"][0]["taken_for"], "B");
  const auto margin = Levels(0.5f, 0.1f);
  auto m = RunOpenSet({.set = &s}, o, &margin);
  EXPECT_EQ(m["levels"]["normal"]["mated_wrong_person_accepted"], 0);
  EXPECT_EQ(m["levels"]["normal"]["mated_uncertain"], 2);
}

TEST(OpenSet, SeveralEnrolmentPhotosProbeTheSameLastPhotos) {
  const LabelledSet s = Community(4);
  const auto th = Levels(0.5f, 0.04f);
  OpenSetOptions o;
  o.threads = 1;
  o.probes_per_resident = 1;
  for (size_t enrol : {1, 2, 3}) {
    o.enrol = enrol;
    for (auto mode : {TemplateMode::kEach, TemplateMode::kMean}) {
      o.templates = mode;
      auto r = RunOpenSet({.set = &s}, o, &th);
      EXPECT_EQ(r["mated_probes"], 10);
      EXPECT_EQ(r["gallery_templates"], mode == TemplateMode::kMean ? 10 : 10 * enrol);
    }
  }
  o.enrol = 4;  // nothing left to probe: nobody is a resident
  EXPECT_EQ(RunOpenSet({.set = &s}, o, &th)["residents"], 0);
}

TEST(OpenSet, WholeGalleryWithAllowedListOpensNoOtherDoor) {
  const LabelledSet s = Community(5);
  const auto th = Levels(0.5f, 0.04f);
  OpenSetOptions o;
  o.threads = 1;
  o.gallery_size = 30;
  o.door_size = 5;
  auto r = RunOpenSet({.set = &s}, o, &th);
  const auto& u = r["levels"]["normal"]["unit_doors"];
  EXPECT_EQ(u["doors"], 6);
  // Residents are recognised as themselves: their own door opens, no other one.
  EXPECT_EQ(u["whole_gallery_allowed_list"]["own_door_fnir"], 0.0);
  EXPECT_EQ(u["whole_gallery_allowed_list"]["other_door_opens"], 0);
  EXPECT_EQ(u["unit_gallery"]["own_door_fnir"], 0.0);
}

TEST(OpenSet, SiteCalibrationAndHubCorrectionAreReported) {
  const LabelledSet s = Community(6);
  const auto th = Levels(0.3f, 0.04f);
  OpenSetOptions o;
  o.threads = 1;
  o.gallery_size = 30;
  o.site_calibration = true;
  o.site.min_persons = 10;
  o.hub.strength = 1.0f;
  auto r = RunOpenSet({.set = &s}, o, &th);
  ASSERT_TRUE(r.contains("site_calibration"));
  EXPECT_EQ(r["site_calibration"]["persons"], 30);  // residents + real distractors, no random
  ASSERT_TRUE(r.contains("hub_correction"));
  EXPECT_GE(r["levels"]["normal"]["threshold"].get<float>(), 0.3f);
}

TEST(Split, ByIdentityStableAndAboutHalf) {
  size_t held = 0;
  for (int i = 0; i < 2000; ++i) held += IsHeldOut(testing::Name("person", i), 1);
  EXPECT_GT(held, 900u);
  EXPECT_LT(held, 1100u);
  EXPECT_EQ(IsHeldOut("cn_12", 1), IsHeldOut("cn_12", 1));
  const LabelledSet s = Community(7);
  auto tune = SelectSplit(s, Split::kTune, 1), heldout = SelectSplit(s, Split::kHeldOut, 1);
  EXPECT_EQ(tune.faces.size() + heldout.faces.size(), s.faces.size());
  std::set<std::string> a, b;
  for (auto& f : tune.faces) a.insert(f.person);
  for (auto& f : heldout.faces) b.insert(f.person);
  for (auto& p : a) EXPECT_FALSE(b.count(p)) << p << " is in both halves";
  EXPECT_THROW(ParseSplit("half"), Error);
}

// ---- on the East-Asian developer data (CASIA-FaceV5 and asian/people), when present
TEST(OpenSetRealData, EastAsianResidentsThroughTheTerminalGate) {
  ANJU_REQUIRE_DATA(casia, "east-asian/casia5");
  ANJU_REQUIRE_DATA(asian, "asian");
  if (!std::filesystem::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "models not installed";
  LoadOptions lo;
  lo.progress = false;
  const LabelledSet set = LoadLabelledSets({casia, asian}, lo);
  // 20 CASIA people × 5 photos and 29 people × 4 photos (one file OpenCV cannot decode).
  size_t expect_mated = 0;
  std::map<std::string, size_t> found;
  for (const auto& f : set.faces) found[f.person] += f.rec.found;
  size_t residents = 0;
  for (auto& [p, n] : found)
    if (n >= 2) ++residents, expect_mated += n - 1;
  ASSERT_GE(residents, 45u);
  auto th = match::Thresholds::Load(match::RepoModelsDir() / "thresholds.json", set.model_version);
  OpenSetOptions o;
  o.threads = 2;
  o.fusion = th.fusion;
  auto r = RunOpenSet({.set = &set}, o, &th);
  EXPECT_EQ(r["residents"], residents);
  EXPECT_EQ(r["mated_probes"], expect_mated);
  // The gate's refusals and the gated probes add up to all probes.
  EXPECT_EQ(r["gated"]["mated_probes"].get<size_t>() + r["quality_refused"]["mated"].get<size_t>(),
            expect_mated);
  std::printf(
      "East-Asian residents: rank-1 %.3f (gated %.3f), normal FNIR %.3f (gated %.3f), "
      "wrong person %zu, absent-resident FPIR %.4f; refused %s\n",
      r["rank1"].get<double>(), r["gated"]["rank1"].get<double>(),
      r["levels"]["normal"]["fnir"].get<double>(),
      r["gated"]["levels"]["normal"]["fnir"].get<double>(),
      r["levels"]["normal"]["mated_wrong_person_accepted"].get<size_t>(),
      r["levels"]["normal"]["absent_fpir"].get<double>(), r["quality_refused"].dump().c_str());
  EXPECT_GE(r["rank1"].get<double>(), 0.85);
}

}  // namespace
}  // namespace anju::eval
