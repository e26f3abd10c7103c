// Infrared evidence for liveness (R3.1.2.4), for terminals with a near-infrared camera
// beside the colour one. Under NIR illumination an LCD or OLED screen emits nothing the
// sensor sees (the replayed face is gone) and many colour prints lose their contrast,
// while a live face stays a face. So the check asks: is there a face in the IR frame where
// the colour camera saw one? It reuses the face detector (no NIR-trained network ships in
// the model set); an operator with such a network plugs it in through the manifest later.
//
// No NIR data exists in the developer data: the path is tested with recorded colour frames
// turned grey (a visible face, as NIR shows skin) and with the face region blanked (as NIR
// shows a screen). That proves the plumbing, not the rates; measure on the device's own
// IR frames before relying on it (docs/terminal.md).
#pragma once

#include <opencv2/core.hpp>

#include <array>

#include "vision/detector.h"

namespace anju::vision {

struct IrCheckOptions {
  // Colour-frame point → IR-frame point {a, b, c, d, e, f}: x' = a·x + b·y + c,
  // y' = d·x + e·y + f. Identity for a co-registered RGB-IR sensor; otherwise from a
  // one-time calibration of the two cameras (e.g. three face centres seen by both).
  std::array<float, 6> map = {1, 0, 0, 0, 1, 0};
  // The detector searches the mapped box enlarged by this much (parallax between the two
  // lenses, frames a few ms apart).
  float search_scale = 2.0f;
  float min_iou = 0.3f;             // a face in the IR frame must overlap the mapped box this much
  float detector_threshold = 0.5f;  // lower than for colour: NIR faces are flatter
};

// Where the colour box lands in the IR frame.
cv::Rect2f MapBoxToIr(const cv::Rect2f& rgb_box, const std::array<float, 6>& map);

// The detector score (0..1) of the face found in the IR frame at the mapped place, 0 when
// there is none (or the mapped box is outside the IR frame). IR frames may be grey or BGR.
float IrFaceScore(FaceDetector& detector, const cv::Mat& ir_frame, const cv::Rect2f& rgb_box,
                  const IrCheckOptions& options = {});

}  // namespace anju::vision
