#include "eval/datasets.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "testing.h"

namespace anju::eval {
namespace {

TEST(DatasetsTest, ReadsLfwPairsWithFolds) {
  auto dir = testing::TempDir("pairs");
  std::ofstream(dir / "pairs.txt") << "2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t12\n";
  auto pairs = ReadLfwPairs(dir / "pairs.txt", dir / "lfw");
  ASSERT_EQ(pairs.size(), 4u);
  EXPECT_TRUE(pairs[0].same);
  EXPECT_EQ(pairs[0].a, dir / "lfw" / "A" / "A_0001.jpg");
  EXPECT_EQ(pairs[1].b, dir / "lfw" / "C" / "C_0003.jpg");
  EXPECT_FALSE(pairs[1].same);
  EXPECT_EQ(pairs[0].fold, 0);
  EXPECT_EQ(pairs[3].fold, 1);
  EXPECT_EQ(pairs[3].b, dir / "lfw" / "F" / "F_0012.jpg");
  std::filesystem::remove_all(dir);
}

TEST(DatasetsTest, MalformedPairsFileIsAnError) {
  auto dir = testing::TempDir("badpairs");
  std::ofstream(dir / "pairs.txt") << "1\t1\nA\t1\n";
  EXPECT_THROW(ReadLfwPairs(dir / "pairs.txt", dir), Error);
  EXPECT_THROW(ReadLfwPairs(dir / "missing.txt", dir), Error);
  std::filesystem::remove_all(dir);
}

TEST(DatasetsTest, YaleBucketsByLightAngle) {
  YaleImage img;
  img.azimuth = 10, img.elevation = -20;
  EXPECT_EQ(YaleBucket(img), "0-25");
  img.azimuth = -60;
  EXPECT_EQ(YaleBucket(img), "51-70");
  img.azimuth = 130;
  EXPECT_EQ(YaleBucket(img), ">90");
  img.ambient = true;
  EXPECT_EQ(YaleBucket(img), "ambient");
}

TEST(DatasetsTest, RealProtocolFilesParse) {
  ANJU_REQUIRE_DATA(root, "");
  if (auto lfw = testing::DataPath("lfw"); !lfw.empty()) {
    auto pairs = ReadLfwPairs(lfw / "pairs.txt", lfw / "lfw");
    EXPECT_EQ(pairs.size(), 6000u);
    EXPECT_EQ(pairs.back().fold, 9);
    for (size_t i = 0; i < pairs.size(); i += 500)
      EXPECT_TRUE(std::filesystem::exists(pairs[i].a)) << pairs[i].a;
  }
  if (auto cfp = testing::DataPath("cfp"); !cfp.empty()) {
    auto fp = ReadCfpPairs(cfp, "FP");
    EXPECT_EQ(fp.size() % 700, 0u);
    for (size_t i = 0; i < fp.size(); i += 300)
      EXPECT_TRUE(std::filesystem::exists(fp[i].b)) << fp[i].b;
    EXPECT_THROW(ReadCfpPairs(cfp, "XX"), Error);
  }
  if (auto yale = testing::DataPath("yaleb"); !yale.empty()) {
    auto images = ListYaleB(yale);
    EXPECT_GT(images.size(), 400u);
  }
  if (auto nuaa = testing::DataPath("nuaa"); !nuaa.empty()) {
    auto items =
        ListNuaa(nuaa, nuaa / "client_train_subset.txt", nuaa / "imposter_train_subset.txt");
    EXPECT_EQ(items.size(), 400u);
    for (auto& i : items) EXPECT_TRUE(std::filesystem::exists(i.path)) << i.path;
  }
}

}  // namespace
}  // namespace anju::eval
