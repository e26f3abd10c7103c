#include "capture/live_preview.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace anju::capture {

std::vector<uint8_t> DownscaledJpeg(const cv::Mat& image, int width, int quality) {
  cv::Mat small = image;
  if (width > 0 && image.cols > width) {
    const int h = std::max(1, cvRound(double(image.rows) * width / image.cols));
    cv::resize(image, small, cv::Size(width, h), 0, 0, cv::INTER_AREA);
  }
  std::vector<uint8_t> out;
  cv::imencode(".jpg", small, out, {cv::IMWRITE_JPEG_QUALITY, quality});
  return out;
}

struct LivePreview::Http {
  httplib::Client client;
  explicit Http(const std::string& url) : client(url) {}
};

LivePreview::LivePreview(ViidOptions options) : options_(std::move(options)) {
  if (options_.username.empty()) options_.username = options_.device_id;
  http_ = std::make_unique<Http>(options_.server_url);
  auto& cli = http_->client;
  // Short timeouts: a late live frame is worthless.
  cli.set_connection_timeout(std::chrono::milliseconds(1000));
  cli.set_read_timeout(std::chrono::milliseconds(3000));
  cli.set_write_timeout(std::chrono::milliseconds(3000));
  cli.set_keep_alive(true);
  if (!options_.password.empty()) cli.set_digest_auth(options_.username, options_.password);
  if (!options_.ca_file.empty()) cli.set_ca_cert_path(options_.ca_file);
  cli.enable_server_certificate_verification(options_.verify_tls);
  // A registered device's User-Identify session spares the digest round trip (and sending
  // the JPEG twice); without one the server challenges and httplib answers with the digest.
  cli.set_default_headers({{"User-Identify", options_.device_id}});
}

LivePreview::~LivePreview() {
  Stop();
}

void LivePreview::Submit(const std::string& camera, std::vector<uint8_t> jpeg) {
  if (jpeg.empty()) return;
  ++submitted_;
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = pending_.try_emplace(camera);
    if (!fresh) ++replaced_;
    it->second = std::move(jpeg);
  }
  cv_.notify_all();
}

size_t LivePreview::SendPending() {
  std::map<std::string, std::vector<uint8_t>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(pending_);
  }
  size_t ok = 0;
  for (const auto& [camera, jpeg] : batch) {
    auto r = http_->client.Post(kPathLiveFrame, reinterpret_cast<const char*>(jpeg.data()),
                                jpeg.size(), "image/jpeg");
    if (r && r->status == 200) {
      ++sent_;
      ++ok;
    } else {
      ++failed_;
      spdlog::debug("{}: 实时画面发送失败，丢弃 / live frame dropped: {}", camera,
                    r ? "HTTP " + std::to_string(r->status) : httplib::to_string(r.error()));
    }
  }
  return ok;
}

void LivePreview::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void LivePreview::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LivePreview::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      if (stop_) return;
    }
    const uint64_t failed_before = failed_;
    SendPending();
    if (failed_ > failed_before) {
      // Server down or refusing: drop what comes in meanwhile rather than retry in a loop.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stop_; });
      if (stop_) return;
      replaced_ += pending_.size();
      pending_.clear();
    }
  }
}

PreviewStats LivePreview::stats() const {
  return {submitted_.load(), sent_.load(), replaced_.load(), failed_.load()};
}

}  // namespace anju::capture
