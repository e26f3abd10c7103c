// Mask / lower-face occlusion test on the aligned 112×112 crop (R2.1.5.1): a cheap
// image test, no extra network. docs/terminal.md has the detection and false-mask rates
// measured on masked/ + mfr2 and on unmasked faces (`anju bench mask`).
#pragma once

#include <opencv2/core.hpp>

namespace anju::terminal {

// 0 = bare lower face … 1 = covered. ALIGNED_BGR: vision::AlignFace output (112×112).
float MaskScore(const cv::Mat& aligned_bgr);

}  // namespace anju::terminal
