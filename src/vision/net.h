// Small helpers shared by the model-backed stages.
#pragma once

#include <opencv2/core.hpp>
#include <opencv2/dnn.hpp>

#include "vision/model_set.h"

namespace anju::vision {

// Builds a cv::dnn::Net from an in-memory ONNX file; Error(kModel) if it does not load.
// A Net is not safe to run from two threads at once: each stage object owns its own.
cv::dnn::Net LoadNet(const ModelFile& file);

// The pixels of `rect` (may reach outside the image); outside is filled with black,
// so a face at the image border is not shifted or squashed.
cv::Mat CropWithBorder(const cv::Mat& image, const cv::Rect& rect);

// Square box of the given side centred on the rectangle's centre.
cv::Rect2f SquareAround(const cv::Rect2f& r, float side);

// Softmax of a row of logits.
std::vector<float> Softmax(const float* logits, int n);

}  // namespace anju::vision
