#include "eval/metrics.h"

#include <gtest/gtest.h>

namespace anju::eval {
namespace {

TEST(MetricsTest, BestThresholdSeparatesSeparableScores) {
  std::vector<ScoredPair> p = {
      {0.9f, true, 0}, {0.8f, true, 0}, {0.3f, false, 0}, {0.1f, false, 0}};
  float t = BestThreshold(p);
  EXPECT_GT(t, 0.3f);
  EXPECT_LE(t, 0.8f);
  EXPECT_DOUBLE_EQ(AccuracyAt(p, t), 1.0);
}

TEST(MetricsTest, AccuracyCountsBothErrorKinds) {
  std::vector<ScoredPair> p = {
      {0.9f, true, 0}, {0.2f, true, 0}, {0.7f, false, 0}, {0.1f, false, 0}};
  EXPECT_DOUBLE_EQ(AccuracyAt(p, 0.5f), 0.5);  // one genuine rejected, one impostor accepted
  EXPECT_DOUBLE_EQ(AccuracyAt(p, 0.8f), 0.75);
}

TEST(MetricsTest, KFoldChoosesThresholdOnOtherFolds) {
  // Fold 0 alone would pick a threshold near 0.5; folds 1 and 2 push it to ≈0.75, so a
  // fold-0 genuine pair at 0.6 is misjudged: the threshold must not be fitted on fold 0.
  std::vector<ScoredPair> p;
  for (int f = 1; f <= 2; ++f)
    for (int i = 0; i < 10; ++i)
      p.push_back({0.8f + 0.01f * i, true, f}), p.push_back({0.7f - 0.01f * i, false, f});
  p.push_back({0.6f, true, 0});
  p.push_back({0.4f, false, 0});
  auto r = KFoldAccuracy(p);
  ASSERT_EQ(r.fold_accuracy.size(), 3u);
  EXPECT_DOUBLE_EQ(r.fold_accuracy[0], 0.5);
  EXPECT_DOUBLE_EQ(r.fold_accuracy[1], 1.0);
  EXPECT_NEAR(r.mean_accuracy, (0.5 + 1 + 1) / 3, 1e-9);
  EXPECT_GT(r.std_accuracy, 0.2);
}

TEST(MetricsTest, TarAtFarAllowsTheRightNumberOfImpostors) {
  std::vector<ScoredPair> p;
  for (int i = 0; i < 1000; ++i) p.push_back({i / 1000.f, false, 0});  // impostors 0 .. 0.999
  for (int i = 0; i < 100; ++i)
    p.push_back({0.95f + i * 1e-4f, true, 0});  // genuine 0.95 .. 0.9599
  auto r = TarAtFar(p, 1e-2);                   // 10 impostors may pass: threshold just above 0.989
  EXPECT_NEAR(r.far_achieved, 1e-2, 1e-9);
  EXPECT_TRUE(r.resolved);
  EXPECT_GT(r.threshold, 0.989f);
  EXPECT_DOUBLE_EQ(r.tar, 0.0);   // every genuine score is below it
  auto loose = TarAtFar(p, 0.1);  // 100 impostors: threshold just above 0.899
  EXPECT_DOUBLE_EQ(loose.tar, 1.0);
  auto tiny = TarAtFar(p, 1e-6);  // below the resolution of 1,000 impostors
  EXPECT_FALSE(tiny.resolved);
  EXPECT_EQ(tiny.far_achieved, 0.0);
}

TEST(MetricsTest, PadRatesFollowIso30107Definitions) {
  std::vector<float> live = {0.9f, 0.8f, 0.4f, 0.7f};    // one live face rejected at 0.5
  std::vector<float> attack = {0.1f, 0.6f, 0.2f, 0.3f};  // one attack accepted at 0.5
  auto r = PadRatesAt(live, attack, 0.5f);
  EXPECT_DOUBLE_EQ(r.apcer, 0.25);
  EXPECT_DOUBLE_EQ(r.bpcer, 0.25);
  EXPECT_DOUBLE_EQ(r.acer, 0.25);
  auto eer = EqualErrorPoint(live, attack);
  EXPECT_NEAR(eer.apcer, eer.bpcer, 0.26);
  EXPECT_LE(eer.acer, 0.25);
}

}  // namespace
}  // namespace anju::eval
