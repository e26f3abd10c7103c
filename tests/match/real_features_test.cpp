// int8 vs fp32 agreement on real LFW features (skips without the data).
#include <gtest/gtest.h>

#include <cmath>

#include "core/paths.h"
#include "eval/datasets.h"
#include "eval/feature_batch.h"
#include "match/index.h"
#include "testing.h"

namespace anju::match {
namespace {

TEST(RealFeatures, Int8AgreesWithFp32OnLfw) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  if (!std::filesystem::exists(DefaultModelDir() / "manifest.json"))
    GTEST_SKIP() << "models not installed";
  // 60 people with ≥ 3 images: first image enrolled, the next two probed (≈180 faces).
  std::vector<std::filesystem::path> files;
  std::vector<std::string> person;
  std::vector<int> role;  // 0 enrol, 1 probe
  for (auto& [name, imgs] : eval::ListIdentityFolders(lfw / "lfw")) {
    if (imgs.size() < 3) continue;
    for (int k = 0; k < 3; ++k)
      files.push_back(imgs[k]), person.push_back(name), role.push_back(k > 0);
    if (files.size() >= 180) break;
  }
  eval::BatchOptions o;
  o.threads = 2;
  o.with_pose = false;
  o.progress = false;
  o.cache = eval::DefaultCachePath("lfw-match-test");
  auto recs = eval::EmbedFiles(files, DefaultModelDir(), {}, o);
  const std::string ver = "lfw-test";
  FeatureIndex f32({.model_version = ver}),
      i8({.model_version = ver, .precision = Precision::kInt8});
  for (size_t i = 0; i < files.size(); ++i)
    if (recs[i].found && role[i] == 0)
      f32.Add(person[i], recs[i].feature, ver), i8.Add(person[i], recs[i].feature, ver);
  ASSERT_GT(f32.persons(), 40u);
  size_t probes = 0, same_top1 = 0;
  double max_diff = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (!recs[i].found || role[i] != 1) continue;
    auto a = f32.Search(recs[i].feature, ver, {.k = 3}),
         b = i8.Search(recs[i].feature, ver, {.k = 3});
    ++probes;
    same_top1 += a[0].person == b[0].person;
    for (size_t r = 0; r < a.size(); ++r)
      max_diff = std::max(max_diff, double(std::fabs(a[r].score - b[r].score)));
  }
  std::printf("int8 vs fp32 on %zu LFW probes: top-1 agreement %zu/%zu, max |Δscore| %.5f\n",
              probes, same_top1, probes, max_diff);
  EXPECT_GE(double(same_top1), 0.99 * double(probes));
  EXPECT_LT(max_diff, 0.01);
}

}  // namespace
}  // namespace anju::match
