#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "core/error.h"
#include "match/thresholds.h"
#include "testing.h"

namespace anju::match {
namespace {

using ::anju::testing::Name;

Thresholds Sample() {
  Thresholds t;
  t.model_version = "faceplugin-0.0.1/fr_feature.onnx@87aacdfe";
  t.fusion = Fusion::kMean;
  t.at(SecurityLevel::kHigh) = {0.62f, 0.06f, 1e-6};
  t.at(SecurityLevel::kNormal) = {0.55f, 0.04f, 1e-5};
  t.at(SecurityLevel::kLow) = {0.48f, 0.03f, 1e-4};
  t.datasets = {"lfw", "asian"};
  t.created = "2026-01-01T00:00:00Z";
  t.report_json = R"({"lfw":{"impostor_pairs":123}})";
  return t;
}

TEST(Thresholds, FileRoundTrip) {
  auto dir = testing::TempDir("thresholds");
  Thresholds t = Sample();
  t.Save(dir / "t.json");
  Thresholds u = Thresholds::Load(dir / "t.json", t.model_version);
  EXPECT_EQ(u.model_version, t.model_version);
  EXPECT_EQ(u.fusion, Fusion::kMean);
  for (auto l : kAllLevels) {
    EXPECT_FLOAT_EQ(u.at(l).threshold, t.at(l).threshold);
    EXPECT_FLOAT_EQ(u.at(l).margin, t.at(l).margin);
    EXPECT_DOUBLE_EQ(u.at(l).target_fmr, t.at(l).target_fmr);
  }
  EXPECT_EQ(u.datasets, t.datasets);
  EXPECT_NE(u.report_json.find("123"), std::string::npos);
}

TEST(Thresholds, WrongModelVersionRefused) {
  auto dir = testing::TempDir("thresholds-ver");
  Sample().Save(dir / "t.json");
  try {
    Thresholds::Load(dir / "t.json", "other-model@deadbeef");
    FAIL() << "loaded a thresholds file of another model version";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("recalibrate"), std::string::npos);
  }
  EXPECT_NO_THROW(Thresholds::Load(dir / "t.json", ""));  // inspection
}

TEST(Thresholds, MalformedRefused) {
  EXPECT_THROW(Thresholds::Parse("{", "v"), Error);
  EXPECT_THROW(Thresholds::Parse(R"({"kind":"something-else"})", "v"), Error);
  std::string j = Sample().ToJson();
  auto bad = j;
  bad.replace(bad.find("0.62"), 4, "0.12");  // high below normal
  EXPECT_THROW(Thresholds::Parse(bad, ""), Error);
  EXPECT_THROW(Thresholds::Load("/nonexistent/t.json", ""), Error);
}

TEST(Thresholds, ShippedFileLoads) {
  auto p = RepoModelsDir() / "thresholds.json";
  if (!std::filesystem::exists(p)) GTEST_SKIP() << "models/thresholds.json not shipped yet";
  Thresholds t = Thresholds::Load(p, "");
  EXPECT_FALSE(t.model_version.empty());
  for (auto l : kAllLevels) EXPECT_DOUBLE_EQ(t.at(l).target_fmr, TargetFmr(l));
}

std::vector<Candidate> Ranked(std::initializer_list<std::pair<const char*, float>> l) {
  std::vector<Candidate> v;
  for (auto& [p, s] : l) v.push_back({p, s, s, 1, 1});
  return v;
}

TEST(Decide, StrangerUncertainAccept) {
  LevelSetting lv{0.5f, 0.05f, 1e-5};
  EXPECT_EQ(Decide(Ranked({{"a", 0.49f}, {"b", 0.1f}}), lv).outcome, Outcome::kStranger);
  EXPECT_EQ(Decide(Ranked({{"a", 0.60f}, {"b", 0.57f}}), lv).outcome, Outcome::kUncertain);
  auto d = Decide(Ranked({{"a", 0.60f}, {"b", 0.50f}}), lv);
  EXPECT_EQ(d.outcome, Outcome::kAccept);
  EXPECT_EQ(d.person, "a");
  EXPECT_FLOAT_EQ(d.second_score, 0.50f);
  EXPECT_EQ(Decide(Ranked({{"a", 0.51f}}), lv).outcome,
            Outcome::kAccept);  // only one person enrolled
  EXPECT_EQ(Decide({}, lv).outcome, Outcome::kStranger);
  // Exactly at the threshold is accepted.
  EXPECT_EQ(Decide(Ranked({{"a", 0.5f}, {"b", 0.0f}}), lv).outcome, Outcome::kAccept);
}

TEST(Calibration, ThresholdAtFmr) {
  std::vector<float> imp;
  for (int i = 0; i < 100000; ++i) imp.push_back(float(i) / 100000.f);  // uniform [0,1)
  auto p = ThresholdAtFmr(imp, 1e-3);
  EXPECT_TRUE(p.resolved);
  EXPECT_LE(p.fmr, 1e-3);
  EXPECT_NEAR(p.threshold, 0.999f, 2e-5);
  EXPECT_LE(RateAtOrAbove(imp, p.threshold), 1e-3);
  auto q = ThresholdAtFmr(imp, 1e-6, 0.02f);  // 0.1 expected false matches: unresolved
  EXPECT_FALSE(q.resolved);
  EXPECT_NEAR(q.threshold, 0.99999f + 0.02f, 1e-5);
  std::vector<float> gen = {0.2f, 0.5f, 0.9f, 0.95f};
  EXPECT_DOUBLE_EQ(RateBelow(gen, 0.6f), 0.5);
}

TEST(DuplicateCheck, ReportsEnrolledLookAlike) {
  std::mt19937 rng(9);
  std::normal_distribution<float> g;
  auto unit = [&] {
    std::vector<float> v(64);
    double n = 0;
    for (auto& x : v) x = g(rng), n += double(x) * x;
    for (auto& x : v) x = float(x / std::sqrt(n));
    return v;
  };
  FeatureIndex index({.model_version = "v", .dim = 64});
  auto face = unit();
  index.Add("A001", face, "v");
  for (int i = 0; i < 50; ++i) index.Add(Name("B", i), unit(), "v");
  auto same = face;
  for (auto& x : same) x += 0.02f * g(rng);
  auto dups = FindDuplicates(index, same, "v", 0.6f);
  ASSERT_EQ(dups.size(), 1u);
  EXPECT_EQ(dups[0].person, "A001");
  EXPECT_TRUE(FindDuplicates(index, same, "v", 0.6f, "A001").empty());  // re-enrolling A001 itself
  EXPECT_TRUE(FindDuplicates(index, unit(), "v", 0.6f).empty());
}

}  // namespace
}  // namespace anju::match
