// anju-capture — snapshot cameras (R3.1.3): reads every configured camera on its
// own thread, captures the best face of each person passing, keeps the captures in a
// durable local buffer and uploads them to a GA/T 1400 server (docs/capture.md).
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/core/utils/logger.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "capture/capturer.h"
#include "capture/config.h"
#include "capture/live_preview.h"
#include "capture/viid_uploader.h"
#include "core/error.h"
#include "core/paths.h"
#include "store/outbox.h"
#include "video/frame_source.h"
#include "vision/model_set.h"

namespace {

namespace fs = std::filesystem;
using namespace anju;

std::atomic<bool> g_stop{false};
void OnSignal(int) {
  g_stop = true;
}

struct CameraStats {
  std::atomic<uint64_t> frames{0}, captures{0};
};

void RunCamera(const capture::CameraConfig& cam, std::shared_ptr<const vision::ModelSet> models,
               store::Outbox& outbox, capture::ViidUploader* uploader,
               capture::LivePreview* preview, const fs::path& save_dir, video::FrameSource& source,
               CameraStats& stats) {
  vision::EngineOptions eo;
  eo.fallbacks = false;  // constant per-frame cost on live video
  vision::FaceEngine engine(std::move(models), eo);
  capture::Capturer capturer(engine, cam.options, cam.id);
  auto keep = [&](std::vector<capture::Capture> caps) {
    for (const auto& c : caps) {
      const std::string face_id = capture::EnqueueCapture(outbox, c, cam.device_id);
      stats.captures += c.rank == 0;
      spdlog::info("{}: 抓拍 / capture track {} #{} rank {} quality {:.2f} box {}x{} → {}", cam.id,
                   c.track_id, c.index, c.rank, c.quality.score, cvRound(c.box.width),
                   cvRound(c.box.height), face_id);
      if (!save_dir.empty()) {
        std::ofstream(save_dir / (face_id + ".jpg"), std::ios::binary)
            .write(reinterpret_cast<const char*>(c.face_jpeg.data()),
                   std::streamsize(c.face_jpeg.size()));
        if (!c.frame_jpeg.empty())
          std::ofstream(save_dir / (face_id + "_frame.jpg"), std::ios::binary)
              .write(reinterpret_cast<const char*>(c.frame_jpeg.data()),
                     std::streamsize(c.frame_jpeg.size()));
      }
    }
    if (!caps.empty() && uploader) uploader->Wake();
  };
  auto next_preview = std::chrono::steady_clock::now();
  for (;;) {
    auto frame = source.Read(std::chrono::seconds(1));
    if (frame) {
      ++stats.frames;
      if (preview && cam.preview.interval_ms > 0 &&
          std::chrono::steady_clock::now() >= next_preview) {
        next_preview =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(cam.preview.interval_ms);
        preview->Submit(cam.id, capture::DownscaledJpeg(frame->image, cam.preview.width,
                                                        cam.preview.jpeg_quality));
      }
      try {
        keep(capturer.Process(*frame));
      } catch (const Error& e) {
        // A full buffer (kUnavailable) or a bad frame must not stop the camera.
        spdlog::error("{}: {}", cam.id, e.what());
      }
      continue;
    }
    const auto st = source.status();
    if (st.state == video::SourceState::kEnded || st.state == video::SourceState::kStopped) break;
  }
  try {
    keep(capturer.Flush());
  } catch (const Error& e) {
    spdlog::error("{}: {}", cam.id, e.what());
  }
  const auto& s = capturer.stats();
  spdlog::info("{}: 结束 / done: {} frames, {} tracks, {} captures, {:.1f} frames/s", cam.id,
               s.frames, s.tracks, s.captures,
               s.total_seconds > 0 ? double(s.frames) / s.total_seconds : 0.0);
}

}  // namespace

int main(int argc, char** argv) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  spdlog::set_default_logger(spdlog::stderr_color_mt("anju-capture"));
  CLI::App app{
      "anju-capture 安居人脸抓拍 — snapshot cameras: best face per person, uploaded as GA/T 1400 "
      "Faces through a durable local buffer (docs/capture.md)"};
  std::string config_file, log_level = "info", models;
  bool exit_at_end = false;
  int threads = 1, drain_s = 30;
  app.add_option("--config", config_file, "capture config file (JSON, see docs/capture.md)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_flag("--exit-at-end", exit_at_end,
               "stop when every camera source is finite and has played out (files, image "
               "directories), after uploading the buffer (at most --drain-timeout)");
  app.add_option("--drain-timeout", drain_s, "seconds to wait for the upload at --exit-at-end")
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenCV threads per camera")->capture_default_str();
  app.add_option("--models", models, "model directory (overrides the config's \"models\")")
      ->envname("ANJU_MODEL_DIR");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    std::signal(SIGPIPE, SIG_IGN);  // a peer closing a kept-alive TLS connection
    spdlog::set_level(spdlog::level::from_str(log_level));
    cv::setNumThreads(threads);
    capture::CaptureConfig config = capture::CaptureConfig::Load(config_file);
    if (!models.empty()) config.models = models;
    fs::create_directories(config.buffer_dir);
    if (!config.save_dir.empty()) fs::create_directories(config.save_dir);
    store::OutboxOptions oo;
    oo.quota_bytes = config.buffer_quota_mb << 20;
    // A damaged buffer is moved aside and what can be read carried over (docs/outbox.md).
    store::OutboxSalvage salvage;
    auto outbox = store::Outbox::OpenOrSalvage(config.buffer_dir / "capture.db", oo, &salvage);
    if (salvage.happened)
      spdlog::error(
          "抓拍缓冲区已损坏：已移至 {}，恢复 {} 条，{} 处无法读取 / damaged capture buffer moved "
          "to {}; {} captures salvaged, {} unreadable ({})",
          salvage.moved_to.string(), salvage.salvaged, salvage.unreadable,
          salvage.moved_to.string(), salvage.salvaged, salvage.unreadable, salvage.reason);
    if (const auto s = outbox->Stats(); s.count > 0)
      spdlog::info("缓冲区中有 {} 条待上传 / {} captures waiting in the buffer", s.count, s.count);
    auto model_set = vision::ModelSet::Load(config.models.empty() ? anju::DefaultModelDir()
                                                                  : fs::path(config.models));

    std::unique_ptr<capture::ViidUploader> uploader;
    std::unique_ptr<capture::LivePreview> preview;
    if (!config.server_url.empty()) {
      capture::ViidOptions vo;
      vo.server_url = config.server_url;
      vo.device_id = config.device_id;
      vo.username = config.username;
      vo.password = config.password;
      vo.ca_file = config.server_ca_file;
      vo.verify_tls = config.verify_tls;
      vo.keepalive = std::chrono::seconds(config.keepalive_s);
      for (const auto& c : config.cameras) vo.other_device_ids.push_back(c.device_id);
      uploader = std::make_unique<capture::ViidUploader>(*outbox, vo);
      uploader->Start();
      for (const auto& c : config.cameras)
        if (c.preview.interval_ms > 0 && !preview) {
          preview = std::make_unique<capture::LivePreview>(vo);
          preview->Start();
        }
    } else {
      spdlog::warn(
          "未配置 server_url，抓拍只保存在本地缓冲区 / no server_url: captures stay in "
          "the local buffer");
    }

    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::vector<std::unique_ptr<video::FrameSource>> sources;
    std::vector<std::unique_ptr<CameraStats>> stats;
    std::vector<std::thread> workers;
    for (const auto& cam : config.cameras) {
      sources.push_back(video::FrameSource::Open(cam.source));
      stats.push_back(std::make_unique<CameraStats>());
      spdlog::info("摄像机 / camera {}: {} (DeviceID {})", cam.id, cam.source, cam.device_id);
    }
    std::atomic<size_t> running{config.cameras.size()};
    for (size_t i = 0; i < config.cameras.size(); ++i)
      workers.emplace_back([&, i] {
        try {
          RunCamera(config.cameras[i], model_set, *outbox, uploader.get(), preview.get(),
                    config.save_dir, *sources[i], *stats[i]);
        } catch (const std::exception& e) {
          spdlog::error("{}: {}", config.cameras[i].id, e.what());
        }
        --running;
      });
    auto last_log = std::chrono::steady_clock::now();
    while (!g_stop && !(exit_at_end && running == 0)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      if (std::chrono::steady_clock::now() - last_log > std::chrono::seconds(60)) {
        last_log = std::chrono::steady_clock::now();
        for (size_t i = 0; i < sources.size(); ++i)
          spdlog::info("{}: {} frames, {} captures; {}", config.cameras[i].id,
                       stats[i]->frames.load(), stats[i]->captures.load(),
                       video::Describe(sources[i]->status()));
        if (uploader)
          spdlog::info("上传 / upload: {}; buffer {} items", uploader->stats().ToJson().dump(),
                       outbox->Stats().count);
      }
    }
    for (auto& s : sources) s->Stop();
    for (auto& w : workers) w.join();
    if (uploader && exit_at_end && !g_stop) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(drain_s);
      uploader->Wake();
      while (outbox->Stats().count > 0 && std::chrono::steady_clock::now() < until && !g_stop)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (preview) preview->Stop();
    if (uploader) uploader->Stop();
    nlohmann::json summary = {{"buffered", outbox->Stats().count},
                              {"cameras", nlohmann::json::array()}};
    for (size_t i = 0; i < config.cameras.size(); ++i)
      summary["cameras"].push_back({{"id", config.cameras[i].id},
                                    {"frames", stats[i]->frames.load()},
                                    {"captures", stats[i]->captures.load()}});
    if (uploader) summary["upload"] = uploader->stats().ToJson();
    if (preview) {
      const auto p = preview->stats();
      summary["preview"] = {{"sent", p.sent}, {"failed", p.failed}, {"replaced", p.replaced}};
    }
    std::cout << summary.dump() << std::endl;
    return 0;
  } catch (const Error& e) {
    std::cerr << "错误 / error [" << ErrorCodeName(e.code()) << "]: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "错误 / error: " << e.what() << "\n";
    return 1;
  }
}
