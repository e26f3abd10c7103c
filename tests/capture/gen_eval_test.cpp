// `anju gen capture` + `anju eval capture` end to end on real LFW faces over real
// backgrounds: the documented annotation format, and the capture rate on a small set.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "testing.h"

namespace anju::capture {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

#ifdef ANJU_CLI
std::string RunCli(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>/dev/null").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd;
  return out;
}

TEST(GenEvalCaptureTest, SmallSyntheticSetIsCaptured) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  const fs::path nuaa = testing::DataPath("nuaa/ClientRaw");
  auto dir = testing::TempDir("gen-capture");
  std::string gen = std::string(ANJU_CLI) + " gen capture --faces " + lfw.string() + " --out " +
                    dir.string() + " --people 10 --seed 7 --size 1280x720";
  if (!nuaa.empty()) gen += " --backgrounds " + nuaa.string();
  RunCli(gen);

  // The format of docs/capture.md.
  int people = 0, in_limits = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ASSERT_TRUE(fs::exists(e.path() / "annotations.json")) << e.path();
    std::ifstream in(e.path() / "annotations.json");
    const json a = json::parse(in);
    EXPECT_EQ(a["format"], "anju-capture-sequence/1");
    EXPECT_EQ(a["width"], 1280);
    for (int f = 0; f < a["frames"].get<int>(); ++f) {
      char name[32];
      std::snprintf(name, sizeof name, "%06d.jpg", f);
      EXPECT_TRUE(fs::exists(e.path() / name)) << name;
    }
    for (const auto& p : a["people"]) {
      ++people;
      in_limits += p["in_limits"].get<bool>();
      EXPECT_EQ(p["in_limits"].get<bool>(), p["reasons"].empty());
      EXPECT_EQ(p["boxes"].size(),
                size_t(p["last_frame"].get<int>() - p["first_frame"].get<int>() + 1));
      for (const auto& b : p["boxes"]) {
        EXPECT_GE(b[3].get<double>(), 20);  // width
        EXPECT_GE(b[4].get<double>(), 55);  // height (60–250 px)
        EXPECT_LE(b[4].get<double>(), 255);
      }
    }
  }
  EXPECT_EQ(people, 10);
  EXPECT_GE(in_limits, 6);

  const std::string out =
      RunCli(std::string(ANJU_CLI) + " eval capture --json --data " + dir.string());
  std::string trimmed = out.substr(0, out.find_last_not_of('\n') + 1);
  const std::string last = trimmed.substr(trimmed.rfind('\n') + 1);  // the JSON line
  std::printf("%s", out.c_str());
  const json r = json::parse(last);
  EXPECT_EQ(r["people"], in_limits);
  EXPECT_GE(r["capture_rate"].get<double>(), 0.9);
  EXPECT_LE(r["duplicates_per_person"].get<double>(), 0.3);
  EXPECT_LE(r["false_captures"].get<int>(), 2);
  EXPECT_GT(r["fps"].get<double>(), 0);
  fs::remove_all(dir);
}
#endif

}  // namespace
}  // namespace anju::capture
