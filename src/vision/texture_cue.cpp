#include "vision/texture_cue.h"

#include <opencv2/imgproc.hpp>

#include <cmath>
#include <limits>

#include "vision/liveness.h"

namespace anju::vision {

float TextureHighFrequencyLog(const cv::Mat& bgr, const cv::Rect2f& face_box,
                              const TextureCueOptions& o) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const cv::Rect r = LivenessCrop(bgr.size(), face_box, o.context_scale);
  if (r.empty() || o.side < 8) return nan;
  cv::Mat grey;
  if (bgr.channels() == 3)
    cv::cvtColor(bgr(r), grey, cv::COLOR_BGR2GRAY);
  else if (bgr.channels() == 4)
    cv::cvtColor(bgr(r), grey, cv::COLOR_BGRA2GRAY);
  else
    grey = bgr(r).clone();
  // INTER_AREA when shrinking (no aliasing that would fake high frequencies); linear when
  // enlarging a small face (it has no detail to add, and the cue reports that).
  const bool shrink = r.width > o.side || r.height > o.side;
  cv::Mat f;
  cv::resize(grey, f, cv::Size(o.side, o.side), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
  f.convertTo(f, CV_32F);
  f -= cv::mean(f)[0];
  // A Hann window: the crop's borders would otherwise add a cross of false high frequencies.
  cv::Mat window;
  cv::createHanningWindow(window, f.size(), CV_32F);
  f = f.mul(window);
  cv::Mat spectrum;
  cv::dft(f, spectrum, cv::DFT_COMPLEX_OUTPUT);
  double high = 0, band = 0;
  const int n = o.side;
  for (int y = 0; y < n; ++y) {
    const float fy = static_cast<float>(y <= n / 2 ? y : y - n) / static_cast<float>(n);
    const auto* row = spectrum.ptr<cv::Vec2f>(y);
    for (int x = 0; x < n; ++x) {
      const float fx = static_cast<float>(x <= n / 2 ? x : x - n) / static_cast<float>(n);
      const float radius = std::sqrt(fx * fx + fy * fy);
      if (radius < o.low_cut || radius > 0.5f) continue;  // corners beyond Nyquist: left out
      const double e = double(row[x][0]) * row[x][0] + double(row[x][1]) * row[x][1];
      band += e;
      if (radius >= o.high_from) high += e;
    }
  }
  if (!(band > 0) || !(high > 0)) return nan;
  return static_cast<float>(std::log(high / band));
}

}  // namespace anju::vision
