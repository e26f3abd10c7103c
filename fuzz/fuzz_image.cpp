// Image intake (vision/image_probe.h, vision/image.h): every uploaded or received image is
// decoded by DecodeImage, which identifies the format by content, reads the size from the
// header and only then hands JPEG / PNG / BMP to OpenCV. Arbitrary bytes must give an image
// within the limits or Error(kBadImage), never a crash, and never a decoded image whose size
// differs from what the probe read (the header is what the limits were checked against).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "vision/image.h"
#include "vision/image_probe.h"

using namespace anju;
using namespace anju::vision;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  const ImageProbe probe = ProbeImage(bytes);
  if (!IsAcceptedFormat(probe.format) && (probe.width != 0 || probe.height != 0)) __builtin_trap();
  // Small limits keep each run fast; the checks are the same at any size.
  ImageLimits limits;
  limits.max_side = 2048;
  limits.max_pixels = 1 << 20;
  try {
    const cv::Mat img = DecodeImage(bytes, limits);
    if (!IsAcceptedFormat(probe.format) || !probe.problem.empty()) __builtin_trap();
    const bool same = img.cols == probe.width && img.rows == probe.height;
    const bool rotated = img.cols == probe.height && img.rows == probe.width;  // EXIF
    if (!same && !rotated) __builtin_trap();
    if (int64_t{img.cols} * img.rows > limits.max_pixels || img.type() != CV_8UC3) __builtin_trap();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kBadImage) __builtin_trap();
  }
  return 0;
}
