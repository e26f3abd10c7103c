// anju — command-line tool: detect, embed, verify, evaluate, benchmark, administer.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <opencv2/core/utils/logger.hpp>

#include <iostream>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/paths.h"

namespace anju::cli {
namespace {
std::vector<Installer>& Installers() {
  static std::vector<Installer> v;
  return v;
}
}  // namespace

bool Register(Installer installer) {
  Installers().push_back(std::move(installer));
  return true;
}

CLI::App* Group(CLI::App& parent, const std::string& name, const std::string& description) {
  for (auto* sub : parent.get_subcommands([](CLI::App*) { return true; }))
    if (sub->get_name() == name) return sub;
  auto* g = parent.add_subcommand(name, description);
  g->require_subcommand(1);
  return g;
}

void EngineFlags::Add(CLI::App* app) {
  app->add_option("--models", models, "model directory with manifest.json")
      ->envname("ANJU_MODEL_DIR");
  app->add_flag("--no-flip", no_flip, "embed without the mirror image");
  app->add_option("--detect-threshold", detect_threshold, "detector score threshold");
  app->add_option("--liveness-threshold", liveness_threshold, "liveness decision threshold");
  app->add_flag("--no-refine", no_refine, "one landmark pass (no box re-drawing)");
  app->add_flag("--no-fallbacks", no_fallbacks, "plain detection only (no padding / enhancement)");
  app->add_option("--dark-level", dark_level,
                  "normalise aligned crops darker than this (0 = never)");
}

vision::EngineOptions EngineFlags::Options() const {
  vision::EngineOptions o;
  o.embedder.flip_tta = !no_flip;
  o.detector.score_threshold = detect_threshold;
  o.liveness.threshold = liveness_threshold;
  o.refine_landmarks = !no_refine;
  o.fallbacks = !no_fallbacks;
  o.dark_level = dark_level;
  return o;
}

std::unique_ptr<vision::FaceEngine> EngineFlags::Open() const {
  return vision::FaceEngine::Open(
      models.empty() ? DefaultModelDir() : std::filesystem::path(models), Options());
}

}  // namespace anju::cli

int main(int argc, char** argv) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  spdlog::set_default_logger(spdlog::stderr_color_mt("anju"));
  CLI::App app{"anju 安居 — 公租房人脸识别 / face recognition for public rental housing"};
  app.require_subcommand(1);
  for (auto& install : anju::cli::Installers()) install(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const anju::Error& e) {
    std::cerr << "错误 / error [" << anju::ErrorCodeName(e.code()) << "]: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "错误 / error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
