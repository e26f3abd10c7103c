// Per-frame face quality for capture: size, sharpness (Laplacian variance), pose from the
// five landmarks, brightness, combined into one score that ranks the frames of a track.
// Cheaper than vision::MeasureQuality (no pose or eye network): it runs on every face of
// every frame.
#pragma once

#include <opencv2/core.hpp>

#include "vision/engine.h"

namespace anju::capture {

struct FaceQuality {
  float size = 0;        // box side, pixels
  float sharpness = 0;   // variance of the Laplacian on the central aligned crop
  float brightness = 0;  // mean grey of the central aligned crop, 0..255
  float yaw = 0;         // degrees, estimated from the 5 points (+ = turned to image right)
  float pitch = 0;       // degrees, + = looking up
  float detector = 0;    // detector score
  float score = 0;       // 0..1, higher is better
};

// Yaw and pitch (degrees) from the five points: the nose tip's offset from the eyes'
// midline, relative to the eye distance (yaw), and its vertical position between the eye
// line and the mouth line (pitch). Coarse (±10°), but free and monotonic.
void PoseFromPoints5(const vision::Points5& p, float* yaw, float* pitch);

// Measures one detected face. `frame` is the BGR frame the face was detected in.
FaceQuality MeasureFace(const cv::Mat& frame, const vision::DetectedFace& face);

}  // namespace anju::capture
