// Registration of `anju` subcommands. Each cmd_*.cpp defines an installer and
// registers it with ANJU_COMMAND; main() runs every installer on the root app.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>

#include "vision/engine.h"

namespace anju::cli {

using Installer = std::function<void(CLI::App& root)>;
bool Register(Installer installer);

// The subcommand NAME of `parent`, created on first use (e.g. "eval", "bench").
CLI::App* Group(CLI::App& parent, const std::string& name, const std::string& description);

// Options every engine-using command shares.
struct EngineFlags {
  std::string models;    // model directory (default: DefaultModelDir())
  bool no_flip = false;  // disable flip test-time augmentation
  float detect_threshold = 0.7f;
  float liveness_threshold = vision::LivenessOptions{}.threshold;
  bool no_refine = false;     // one landmark pass only
  bool no_fallbacks = false;  // plain detection pass only
  float dark_level = 80.f;    // aligned crops darker than this are normalised
  void Add(CLI::App* app);
  vision::EngineOptions Options() const;
  std::unique_ptr<vision::FaceEngine> Open() const;
};

}  // namespace anju::cli

#define ANJU_CONCAT_(a, b) a##b
#define ANJU_CONCAT(a, b) ANJU_CONCAT_(a, b)
#define ANJU_COMMAND(fn) \
  static const bool ANJU_CONCAT(anju_registered_, __LINE__) = ::anju::cli::Register(fn)
