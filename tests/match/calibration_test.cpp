// Threshold calibration (match/calibration.h): the reference levels from pair scores and a
// site's levels from its own gallery.
#include "match/calibration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/error.h"
#include "core/paths.h"
#include "eval/open_set.h"
#include "testing.h"

namespace anju::match {
namespace {

std::vector<float> Unit(std::mt19937& rng, size_t dim) {
  std::normal_distribution<float> g;
  std::vector<float> v(dim);
  double n = 0;
  for (auto& x : v) x = g(rng), n += double(x) * x;
  for (auto& x : v) x = float(x / std::sqrt(n));
  return v;
}

// A face of PERSON: the person's centre plus noise, so that genuine pairs score high.
std::vector<float> Near(const std::vector<float>& centre, std::mt19937& rng, float noise) {
  std::normal_distribution<float> g;
  std::vector<float> v = centre;
  double n = 0;
  for (auto& x : v) x += noise * g(rng), n += double(x) * x;
  for (auto& x : v) x = float(x / std::sqrt(n));
  return v;
}

TEST(Calibration, AllPairScoresSplitsGenuineAndImpostor) {
  std::mt19937 rng(3);
  const size_t dim = 32;
  std::vector<float> F;
  std::vector<std::string> labels;
  // 3 people × 3 faces + 2 one-face people = 11 faces: 9 genuine pairs, 55 − 9 = 46 impostor.
  for (int p = 0; p < 5; ++p) {
    auto c = Unit(rng, dim);
    for (int k = 0; k < (p < 3 ? 3 : 1); ++k) {
      auto f = Near(c, rng, 0.05f);
      F.insert(F.end(), f.begin(), f.end());
      labels.push_back("p" + std::to_string(p));
    }
  }
  auto s = AllPairScores(F, dim, labels);
  EXPECT_EQ(s.genuine.size(), 9u);
  EXPECT_EQ(s.impostor.size(), 46u);
  // The first pair (faces 0 and 1, same person) is the first genuine score, computed by hand.
  double dot = 0;
  for (size_t d = 0; d < dim; ++d) dot += double(F[d]) * F[dim + d];
  EXPECT_NEAR(s.genuine[0], dot, 1e-5);
  for (float g : s.genuine) EXPECT_GT(g, 0.8f);
  EXPECT_THROW(AllPairScores(F, dim, std::vector<std::string>(3)), Error);
  EXPECT_THROW(AllPairScores(std::vector<float>(33), dim, labels), Error);
}

// Impostor scores: a normal tail (mean M, sd S) of N values, deterministic.
std::vector<float> Tail(size_t n, float mean, float sd, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(mean, sd);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

TEST(Calibration, ReferenceLevelsFollowTheShiftedEastAsianTail) {
  ReferenceScores lfw{"lfw", {Tail(2000, 0.7f, 0.05f, 1), Tail(2'000'000, 0.0f, 0.08f, 2)}};
  // The East-Asian impostors sit 0.1 higher: the levels must move up by about that much.
  ReferenceScores ea{"ea", {Tail(300, 0.7f, 0.05f, 3), Tail(200'000, 0.1f, 0.08f, 4)}};
  const float lfw_normal = [&] {
    auto v = lfw.scores.impostor;
    return ThresholdAtFmr(v, 1e-5).threshold;
  }();
  auto c = CalibrateReference(lfw, ea);
  const auto& off = c.report["asian_extrapolated"];
  EXPECT_NEAR(off["offset"].get<float>(), 0.1f, 0.02f);
  // Quantiles with fewer than 10 East-Asian pairs above them are not used: 1e-4 × 200,000 = 20
  // is, so all five are.
  EXPECT_EQ(off["offsets"].size(), 5u);
  const auto& T = c.thresholds;
  EXPECT_NEAR(T.at(SecurityLevel::kNormal).threshold, lfw_normal + off["offset"].get<float>(),
              0.02f);
  EXPECT_GE(T.at(SecurityLevel::kHigh).threshold, T.at(SecurityLevel::kNormal).threshold);
  EXPECT_GE(T.at(SecurityLevel::kNormal).threshold, T.at(SecurityLevel::kLow).threshold);
  // Never looser than the East-Asian data where it resolves the target (1e-4 × 200,000 = 20).
  auto ei = ea.scores.impostor;
  EXPECT_LE(RateAtOrAbove(ei, T.at(SecurityLevel::kLow).threshold), 1e-4);
  EXPECT_EQ(c.thresholds.datasets, (std::vector<std::string>{"lfw", "ea"}));
  EXPECT_FLOAT_EQ(T.at(SecurityLevel::kNormal).margin, 0.04f);
}

TEST(Calibration, ReferenceIgnoresTailPointsTooThinToMeasure) {
  ReferenceScores lfw{"lfw", {Tail(100, 0.7f, 0.05f, 1), Tail(1'000'000, 0.0f, 0.08f, 2)}};
  // 5,000 East-Asian pairs: 1e-3 leaves 5 pairs above (< 10), so only 1e-2 and 3e-3 count.
  ReferenceScores ea{"ea", {Tail(50, 0.7f, 0.05f, 3), Tail(5'000, 0.05f, 0.08f, 4)}};
  auto c = CalibrateReference(lfw, ea);
  EXPECT_EQ(c.report["asian_extrapolated"]["offsets"].size(), 2u);
  EXPECT_THROW(CalibrateReference(lfw, {"empty", {}}), Error);
}

// A gallery of PERSONS people (one template each) drawn around GROUPS centres: people of the
// same group look alike, which is what raises a site's impostor tail.
void FillGallery(FeatureIndex& index, size_t persons, size_t groups, float spread, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t dim = index.options().dim;
  std::vector<std::vector<float>> centre;
  for (size_t g = 0; g < groups; ++g) centre.push_back(Unit(rng, dim));
  for (size_t p = 0; p < persons; ++p)
    index.Add(testing::Name("r", long(p)), Near(centre[p % groups], rng, spread),
              index.options().model_version);
}

Thresholds Base(float high, float normal, float low) {
  Thresholds t;
  t.model_version = "v";
  t.fusion = Fusion::kMean;
  t.at(SecurityLevel::kHigh) = {high, 0.06f, 1e-6};
  t.at(SecurityLevel::kNormal) = {normal, 0.04f, 1e-5};
  t.at(SecurityLevel::kLow) = {low, 0.03f, 1e-4};
  return t;
}

TEST(SiteCalibration, LookAlikeGalleryGetsStricterLevels) {
  FeatureIndex index({.model_version = "v", .dim = 64, .fusion = Fusion::kMean});
  FillGallery(index, 400, 40, 0.12f, 5);  // 40 families of 10 look-alikes
  // High at 0.9: the duplicate check flags nothing here, every look-alike pair counts.
  const Thresholds base = Base(0.9f, 0.45f, 0.4f);
  auto c = CalibrateGallery(index, base);
  const auto& T = c.thresholds;
  for (auto l : kAllLevels) {
    EXPECT_GE(T.at(l).threshold, base.at(l).threshold) << LevelName(l);
    EXPECT_FLOAT_EQ(T.at(l).margin, base.at(l).margin);
  }
  EXPECT_GT(T.at(SecurityLevel::kNormal).threshold, 0.6f) << c.report.dump();
  // At the chosen normal level at most 0.5% of the enrolled templates would be accepted as
  // somebody else (the leave-one-out estimate of FPIR at this size).
  EXPECT_LE(c.report["levels"]["normal"]["leave_one_out"]["fpir_at_chosen"].get<double>(),
            0.005 + 1e-9);
  EXPECT_GE(T.at(SecurityLevel::kHigh).threshold, T.at(SecurityLevel::kNormal).threshold);
  EXPECT_GE(T.at(SecurityLevel::kNormal).threshold, T.at(SecurityLevel::kLow).threshold);
  EXPECT_EQ(T.fusion, Fusion::kMean);
  EXPECT_EQ(T.datasets.back(), "site gallery (400 persons, 400 templates)");
}

TEST(SiteCalibration, LargerGalleryNeedsAHigherThreshold) {
  FeatureIndex index({.model_version = "v", .dim = 64});
  FillGallery(index, 600, 60, 0.15f, 6);
  const Thresholds base =
      Base(0.9f, 0.15f, 0.1f);  // normal, low: below anything the gallery supports
  SiteOptions now, later;
  later.gallery_persons = 1200;  // the site expects twice as many residents
  const float t_now =
      CalibrateGallery(index, base, now).thresholds.at(SecurityLevel::kNormal).threshold;
  const float t_later =
      CalibrateGallery(index, base, later).thresholds.at(SecurityLevel::kNormal).threshold;
  EXPECT_GT(t_later, t_now);
}

TEST(SiteCalibration, LargeGalleriesAreSampled) {
  FeatureIndex index({.model_version = "v", .dim = 64});
  FillGallery(index, 2000, 200, 0.15f, 9);
  const Thresholds base = Base(0.9f, 0.15f, 0.1f);
  SiteOptions all, sampled;
  sampled.max_probes = 500;
  auto a = CalibrateGallery(index, base, all);
  auto b = CalibrateGallery(index, base, sampled);
  EXPECT_EQ(a.report["probes"], 2000);
  EXPECT_EQ(b.report["probes"], 500);
  EXPECT_EQ(b.report["levels"]["low"]["leave_one_out"]["probes"], 500);
  // A quarter of the probes estimates the same tail: the low level (2% FPIR, resolved by both)
  // moves by little.
  EXPECT_NEAR(b.thresholds.at(SecurityLevel::kLow).threshold,
              a.thresholds.at(SecurityLevel::kLow).threshold, 0.03f);
}

TEST(SiteCalibration, NeverBelowTheBaseUnlessAsked) {
  FeatureIndex index({.model_version = "v", .dim = 64});
  FillGallery(index, 300, 300, 0.1f, 7);  // unrelated people: a low tail
  const Thresholds base = Base(0.9f, 0.85f, 0.8f);
  auto kept = CalibrateGallery(index, base);
  EXPECT_FLOAT_EQ(kept.thresholds.at(SecurityLevel::kNormal).threshold, 0.85f);
  SiteOptions free;
  free.never_below_base = false;
  auto loose = CalibrateGallery(index, base, free);
  EXPECT_LT(loose.thresholds.at(SecurityLevel::kNormal).threshold, 0.85f);
}

TEST(SiteCalibration, TooSmallAGalleryKeepsTheBase) {
  FeatureIndex index({.model_version = "v", .dim = 64});
  FillGallery(index, 20, 2, 0.1f, 8);
  const Thresholds base = Base(0.6f, 0.5f, 0.4f);
  auto c = CalibrateGallery(index, base);
  EXPECT_TRUE(c.report.contains("kept_base"));
  for (auto l : kAllLevels) EXPECT_FLOAT_EQ(c.thresholds.at(l).threshold, base.at(l).threshold);
}

// ---- on real East-Asian faces (CASIA-FaceV5 and asian/people), when present
TEST(CalibrationRealData, ShippedLevelsHoldOnEastAsianFaces) {
  ANJU_REQUIRE_DATA(casia, "east-asian/casia5");
  ANJU_REQUIRE_DATA(asian, "asian");
  if (!std::filesystem::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "models not installed";
  eval::LoadOptions lo;
  lo.progress = false;
  const auto set = eval::LoadLabelledSets({casia, asian}, lo);
  const auto th = Thresholds::Load(RepoModelsDir() / "thresholds.json", set.model_version);
  std::vector<float> F;
  std::vector<std::string> labels;
  for (const auto& f : set.faces)
    if (f.rec.found)
      F.insert(F.end(), f.rec.feature.begin(), f.rec.feature.end()), labels.push_back(f.person);
  auto s = AllPairScores(F, 512, labels);
  ASSERT_GT(s.impostor.size(), 20000u);
  ASSERT_GT(s.genuine.size(), 300u);
  const float normal = th.at(SecurityLevel::kNormal).threshold;
  // No two of these 49 people are taken for each other at the normal level, and most genuine
  // pairs (different photos, poses, expressions) still match.
  EXPECT_EQ(RateAtOrAbove(s.impostor, normal), 0.0);
  EXPECT_LT(RateBelow(s.genuine, normal), 0.35);
  std::printf(
      "East-Asian pairs at the shipped normal level %.4f: %zu impostor, FMR 0; %zu "
      "genuine, FNMR %.3f\n",
      normal, s.impostor.size(), s.genuine.size(), RateBelow(s.genuine, normal));

  // The site's own gallery: its levels never fall below the shipped ones, and a gallery
  // calibrated for 20,000 persons needs at least the threshold of one calibrated for its size.
  FeatureIndex index({.model_version = set.model_version, .fusion = th.fusion});
  for (size_t i = 0; i < labels.size(); ++i)
    index.Add(labels[i], {F.data() + i * 512, 512}, set.model_version);
  SiteOptions now, big;
  now.min_persons = big.min_persons = 40;
  big.gallery_persons = 20000;
  auto a = CalibrateGallery(index, th, now), b = CalibrateGallery(index, th, big);
  for (auto l : kAllLevels) {
    EXPECT_GE(a.thresholds.at(l).threshold, th.at(l).threshold);
    EXPECT_GE(b.thresholds.at(l).threshold, a.thresholds.at(l).threshold);
  }
}

}  // namespace
}  // namespace anju::match
