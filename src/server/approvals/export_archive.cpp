#include "server/approvals/export_archive.h"

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"

namespace anju::server {

namespace {

using ArchivePtr = std::unique_ptr<archive, decltype(&archive_write_free)>;
using EntryPtr = std::unique_ptr<archive_entry, decltype(&archive_entry_free)>;

la_ssize_t Append(archive*, void* out, const void* buf, size_t n) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), n);
  return la_ssize_t(n);
}

void Check(archive* a, int rc, const char* what) {
  if (rc != ARCHIVE_OK)
    throw Error(ErrorCode::kIo, std::string("tar ") + what + ": " +
                                    (archive_error_string(a) ? archive_error_string(a) : "failed"));
}

}  // namespace

std::string TarArchive(const std::vector<std::pair<std::string, std::string>>& files,
                       int64_t mtime_s) {
  std::string out;
  ArchivePtr a(archive_write_new(), &archive_write_free);
  Check(a.get(), archive_write_set_format_pax_restricted(a.get()), "format");
  // Unblocked output: the archive ends right after its end-of-archive records.
  Check(a.get(), archive_write_set_bytes_in_last_block(a.get(), 1), "block");
  Check(a.get(), archive_write_open(a.get(), &out, nullptr, &Append, nullptr), "open");
  for (const auto& [path, bytes] : files) {
    EntryPtr e(archive_entry_new(), &archive_entry_free);
    archive_entry_set_pathname_utf8(e.get(), path.c_str());
    archive_entry_set_size(e.get(), la_int64_t(bytes.size()));
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0600);
    archive_entry_set_mtime(e.get(), time_t(mtime_s), 0);
    Check(a.get(), archive_write_header(a.get(), e.get()), "header");
    if (archive_write_data(a.get(), bytes.data(), bytes.size()) != la_ssize_t(bytes.size()))
      Check(a.get(), ARCHIVE_FATAL, "data");
  }
  Check(a.get(), archive_write_close(a.get()), "close");
  return out;
}

std::string WatermarkJpeg(const std::string& jpeg, const std::string& text) {
  if (jpeg.empty()) throw Error(ErrorCode::kInvalidArgument, "photo is empty");
  cv::Mat img = cv::imdecode(cv::Mat(1, int(jpeg.size()), CV_8U, const_cast<char*>(jpeg.data())),
                             cv::IMREAD_COLOR);
  if (img.empty()) throw Error(ErrorCode::kInvalidArgument, "photo does not decode");
  // Scale the text to the image width; a dark band keeps it readable on any background.
  const double scale = std::max(0.3, img.cols / 640.0);
  int baseline = 0;
  const cv::Size size = cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &baseline);
  const double fit = std::min(1.0, (img.cols - 8.0) / std::max(1, size.width));
  const int band = int((size.height + baseline) * fit) + 8;
  cv::Mat strip = img.rowRange(std::max(0, img.rows - band), img.rows);
  strip.convertTo(strip, -1, 0.4);
  cv::putText(img, text, {4, img.rows - 4 - int(baseline * fit)}, cv::FONT_HERSHEY_SIMPLEX,
              scale * fit, {255, 255, 255}, 1, cv::LINE_AA);
  std::vector<uint8_t> out;
  cv::imencode(".jpg", img, out, {cv::IMWRITE_JPEG_QUALITY, 92});
  return {out.begin(), out.end()};
}

}  // namespace anju::server
