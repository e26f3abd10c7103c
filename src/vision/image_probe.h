// What an encoded image is and how large it would be, read from its first bytes and its
// header alone, without decoding a pixel. DecodeImage (image.h) decides on this before
// handing anything to a decoder: only JPEG, PNG and BMP are decoded, and only when the
// header's size is within the limits, so a 3 KB file claiming 20000×20000 pixels, or a
// format nobody uploads (TIFF, WebP, JPEG 2000 …, each with its own decoder bugs), never
// reaches OpenCV.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace anju::vision {

enum class ImageFormat {
  kUnknown,
  kJpeg,
  kPng,
  kBmp,
  // Recognised so that the refusal can name them; never decoded.
  kGif,
  kTiff,
  kWebp,
  kJpeg2000,
  kPnm,  // PBM / PGM / PPM / PAM / PFM
  kSunRaster,
  kOpenExr,
  kRadianceHdr,
  kHeif,  // HEIF / HEIC / AVIF
  kPsd,
  kIco,
};

const char* ImageFormatName(ImageFormat format);  // "JPEG", "TIFF", "unknown" …
bool IsAcceptedFormat(ImageFormat format);        // JPEG, PNG or BMP

struct ImageProbe {
  ImageFormat format = ImageFormat::kUnknown;
  // From the header; 0 when the format is not accepted or its header could not be read.
  int64_t width = 0;
  int64_t height = 0;
  int jpeg_scans = 0;  // JPEG: start-of-scan markers (progressive images have several)
  // Empty when the header of an accepted format was read completely; otherwise why not
  // (English, for the error message), e.g. "PNG header truncated".
  std::string problem;
};

// Identifies the format by its magic bytes (never by a file name) and, for JPEG, PNG and
// BMP, reads the dimensions from the header. Never throws and never reads past BYTES.
ImageProbe ProbeImage(std::span<const uint8_t> bytes);

}  // namespace anju::vision
