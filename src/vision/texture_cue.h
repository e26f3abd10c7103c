// A frequency-domain texture cue for print and screen attacks (R3.1.2.4): a recaptured
// face has passed through a printer or a screen and a second camera, which blur away the
// finest detail of the skin (and a screen adds a regular moiré). After Li, Wang, Tan and
// Jain, "Live face detection based on the analysis of Fourier spectra" (SPIE 2004): the
// share of the face's spectral energy at the highest frequencies. No training, no model,
// deterministic. Measured alone and fused with the network (BENCHMARKS.md "Liveness",
// docs/liveness.md): it is an option, off by default, because it did not help there.
#pragma once

#include <opencv2/core.hpp>

namespace anju::vision {

struct TextureCueOptions {
  // The face box itself (1.0): the background differs by camera and data set, not by
  // liveness, so it is left out.
  float context_scale = 1.0f;
  // The grey crop is resized to side × side before the DFT, so bands are relative to the
  // face, not to the camera's resolution.
  int side = 128;
  // Radial bands in cycles per pixel of the resized crop (Nyquist = 0.5). The cue is
  // log(E[high_from, 0.5] / E[low_cut, 0.5]): Li et al.'s high-frequency descriptor, with
  // the lowest frequencies (illumination, face shape) left out of the denominator.
  float low_cut = 1.0f / 32;
  float high_from = 1.0f / 3;  // Li et al.: above two thirds of the highest frequency
};

// The raw cue: natural log of the high-frequency share, ≤ 0 (higher = more fine detail).
// NaN when the box leaves nothing usable or the crop is flat (no energy).
float TextureHighFrequencyLog(const cv::Mat& bgr, const cv::Rect2f& face_box,
                              const TextureCueOptions& options = {});

}  // namespace anju::vision
