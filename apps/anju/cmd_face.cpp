// anju detect | embed | verify | liveness — one image at a time.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "command.h"
#include "core/error.h"
#include "vision/image.h"

namespace anju::cli {
namespace {

using nlohmann::json;

json BoxJson(const vision::FaceBox& b) {
  return {
      {"x", b.box.x}, {"y", b.box.y}, {"w", b.box.width}, {"h", b.box.height}, {"score", b.score}};
}

vision::DetectedFace RequireFace(vision::FaceEngine& engine, const cv::Mat& img,
                                 const std::string& name) {
  auto face = engine.DetectLargest(img);
  if (!face) throw Error(ErrorCode::kNotFound, "未检测到人脸 / no face found in " + name);
  return std::move(*face);
}

void InstallFaceCommands(CLI::App& root) {
  static EngineFlags flags;
  static std::string img1, img2;
  static bool as_json = false;
  static float verify_threshold = 0.42f;

  auto* detect = root.add_subcommand("detect", "detect faces: boxes, landmarks, pose, quality");
  detect->add_option("image", img1, "image file")->required();
  detect->add_flag("--json", as_json, "print JSON");
  flags.Add(detect);
  detect->callback([] {
    auto engine = flags.Open();
    cv::Mat img = vision::LoadImage(img1);
    json out = json::array();
    for (auto& f : engine->Detect(img)) {
      auto q = engine->AssessQuality(img, f);
      json pts = json::array();
      for (auto& p : f.points) pts.push_back({p.x, p.y});
      out.push_back(
          {{"box", BoxJson(f.det)},
           {"points5", pts},
           {"found_by", f.found_by},
           {"pose", {{"yaw", q.pose.yaw}, {"pitch", q.pose.pitch}, {"roll", q.pose.roll}}},
           {"quality",
            {{"score", q.score},
             {"inter_pupil", q.inter_pupil},
             {"sharpness", q.sharpness},
             {"brightness", q.brightness},
             {"eyes_open", q.eyes_open}}},
           {"problems", vision::QualityProblems(q, {})}});
    }
    if (as_json) {
      std::cout
          << json{{"image", img1}, {"width", img.cols}, {"height", img.rows}, {"faces", out}}.dump()
          << "\n";
      return;
    }
    std::printf("%s: %dx%d, %zu face(s)\n", img1.c_str(), img.cols, img.rows, out.size());
    for (auto& f : out)
      std::printf(
          "  box x=%.0f y=%.0f w=%.0f h=%.0f score=%.3f yaw=%.0f pitch=%.0f quality=%.2f (%s)\n",
          f["box"]["x"].get<float>(), f["box"]["y"].get<float>(), f["box"]["w"].get<float>(),
          f["box"]["h"].get<float>(), f["box"]["score"].get<float>(), f["pose"]["yaw"].get<float>(),
          f["pose"]["pitch"].get<float>(), f["quality"]["score"].get<float>(),
          f["found_by"].get<std::string>().c_str());
  });

  auto* embed = root.add_subcommand("embed", "print the feature code of the largest face");
  embed->add_option("image", img1, "image file")->required();
  flags.Add(embed);
  embed->callback([] {
    auto engine = flags.Open();
    cv::Mat img = vision::LoadImage(img1);
    auto f = engine->Embed(RequireFace(*engine, img, img1));
    std::cout << json{{"model_version", f.model_version}, {"feature", f.values}}.dump() << "\n";
  });

  auto* verify = root.add_subcommand("verify", "1:1 compare the largest faces of two images");
  verify->add_option("image1", img1)->required();
  verify->add_option("image2", img2)->required();
  verify->add_option("--threshold", verify_threshold, "same-person threshold on cosine similarity");
  verify->add_flag("--json", as_json, "print JSON");
  flags.Add(verify);
  verify->callback([] {
    auto engine = flags.Open();
    cv::Mat a = vision::LoadImage(img1), b = vision::LoadImage(img2);
    float s = vision::Similarity(engine->Embed(RequireFace(*engine, a, img1)),
                                 engine->Embed(RequireFace(*engine, b, img2)));
    bool same = s >= verify_threshold;
    if (as_json)
      std::cout << json{{"similarity", s}, {"threshold", verify_threshold}, {"same", same}}.dump()
                << "\n";
    else
      std::printf("similarity %.4f → %s (threshold %.2f)\n", s,
                  same ? "同一人 / same person" : "不同人 / different people", verify_threshold);
  });

  auto* live = root.add_subcommand("liveness", "passive liveness score of every face");
  live->add_option("image", img1)->required();
  live->add_flag("--json", as_json, "print JSON");
  flags.Add(live);
  live->callback([] {
    auto engine = flags.Open();
    cv::Mat img = vision::LoadImage(img1);
    json out = json::array();
    for (auto& f : engine->Detect(img)) {
      float s = engine->Liveness(img, f);
      out.push_back(
          {{"box", BoxJson(f.det)}, {"score", s}, {"live", engine->liveness().IsLive(s)}});
    }
    if (out.empty()) throw Error(ErrorCode::kNotFound, "未检测到人脸 / no face found in " + img1);
    if (as_json) {
      std::cout
          << json{{"faces", out}, {"threshold", engine->liveness().options().threshold}}.dump()
          << "\n";
      return;
    }
    for (auto& f : out)
      std::printf("face at (%.0f,%.0f): liveness %.3f → %s\n", f["box"]["x"].get<float>(),
                  f["box"]["y"].get<float>(), f["score"].get<float>(),
                  f["live"].get<bool>() ? "真人 / live" : "疑似攻击 / spoof");
  });
}

ANJU_COMMAND(InstallFaceCommands);

}  // namespace
}  // namespace anju::cli
