#include "vision/image_probe.h"

#include <cstring>
#include <string_view>

namespace anju::vision {
namespace {

using Bytes = std::span<const uint8_t>;

bool StartsWith(Bytes b, std::string_view magic, size_t at = 0) {
  return b.size() >= at + magic.size() &&
         std::memcmp(b.data() + at, magic.data(), magic.size()) == 0;
}

uint32_t Be16(const uint8_t* p) {
  return (uint32_t{p[0]} << 8) | p[1];
}
uint32_t Be32(const uint8_t* p) {
  return (Be16(p) << 16) | Be16(p + 2);
}
uint32_t Le16(const uint8_t* p) {
  return (uint32_t{p[1]} << 8) | p[0];
}
uint32_t Le32(const uint8_t* p) {
  return (Le16(p + 2) << 16) | Le16(p);
}
int64_t LeI32(const uint8_t* p) {
  return static_cast<int32_t>(Le32(p));
}

// Formats that are only recognised (to be named in the refusal).
ImageFormat OtherFormat(Bytes b) {
  using namespace std::string_view_literals;
  if (StartsWith(b, "GIF87a") || StartsWith(b, "GIF89a")) return ImageFormat::kGif;
  if (StartsWith(b, "II*\0"sv) || StartsWith(b, "MM\0*"sv) || StartsWith(b, "II+\0"sv) ||
      StartsWith(b, "MM\0+"sv))
    return ImageFormat::kTiff;
  if (StartsWith(b, "RIFF") && StartsWith(b, "WEBP", 8)) return ImageFormat::kWebp;
  if (StartsWith(b, "\0\0\0\x0CjP  \r\n\x87\n"sv) || StartsWith(b, "\xFF\x4F\xFF\x51"sv))
    return ImageFormat::kJpeg2000;
  if (b.size() >= 3 && b[0] == 'P' &&
      ((b[1] >= '1' && b[1] <= '7') || b[1] == 'F' || b[1] == 'f') &&
      (b[2] == ' ' || b[2] == '\n' || b[2] == '\r' || b[2] == '\t'))
    return ImageFormat::kPnm;
  if (StartsWith(b, "\x59\xA6\x6A\x95"sv)) return ImageFormat::kSunRaster;
  if (StartsWith(b, "\x76\x2F\x31\x01"sv)) return ImageFormat::kOpenExr;
  if (StartsWith(b, "#?RADIANCE") || StartsWith(b, "#?RGBE")) return ImageFormat::kRadianceHdr;
  if (StartsWith(b, "ftyp", 4))
    for (std::string_view brand :
         {"heic", "heix", "hevc", "heim", "heis", "mif1", "msf1", "avif", "avis"})
      if (StartsWith(b, brand, 8)) return ImageFormat::kHeif;
  if (StartsWith(b, "8BPS")) return ImageFormat::kPsd;
  if (StartsWith(b, "\0\0\1\0"sv) && b.size() >= 6 && Le16(&b[4]) > 0) return ImageFormat::kIco;
  return ImageFormat::kUnknown;
}

void ProbePng(Bytes b, ImageProbe& p) {
  // Signature (8), then the first chunk must be IHDR: length 13, type, width, height.
  if (!StartsWith(b, "\x89PNG\r\n\x1A\n")) {
    p.problem = "PNG signature damaged";
    return;
  }
  if (b.size() < 33) {
    p.problem = "PNG header truncated";
    return;
  }
  if (Be32(&b[8]) != 13 || !StartsWith(b, "IHDR", 12)) {
    p.problem = "PNG does not start with its IHDR header";
    return;
  }
  p.width = Be32(&b[16]);
  p.height = Be32(&b[20]);
}

void ProbeBmp(Bytes b, ImageProbe& p) {
  if (b.size() < 26) {
    p.problem = "BMP header truncated";
    return;
  }
  const uint32_t dib = Le32(&b[14]);
  if (dib == 12) {  // OS/2 1.x BITMAPCOREHEADER: unsigned 16-bit sizes
    p.width = Le16(&b[18]);
    p.height = Le16(&b[20]);
    return;
  }
  if (dib < 40 || dib > 124) {
    p.problem = "BMP header of unknown size " + std::to_string(dib);
    return;
  }
  // BITMAPINFOHEADER and its successors: signed 32-bit, a negative height = top-down.
  p.width = LeI32(&b[18]);
  const int64_t h = LeI32(&b[22]);
  p.height = h < 0 ? -h : h;
  if (p.width < 0) p.problem = "BMP with a negative width";
}

// Walks the marker segments like libjpeg does (fill bytes and stray bytes between segments
// are skipped), takes the size from the first start-of-frame, counts the scans and
// requires the end-of-image marker: a JPEG cut short is refused here, where libjpeg
// would only warn and return a half-grey picture.
void ProbeJpeg(Bytes b, ImageProbe& p) {
  size_t i = 2;
  bool eoi = false;
  while (i < b.size() && !eoi) {
    if (b[i] != 0xFF) {  // stray bytes before a marker
      ++i;
      continue;
    }
    while (i < b.size() && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= b.size()) break;
    const uint8_t m = b[i++];
    if (m == 0xD9) {
      eoi = true;
      break;
    }
    if (m == 0x00 || m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    if (i + 2 > b.size()) break;
    const size_t len = Be16(&b[i]);
    if (len < 2) {
      p.problem = "JPEG segment with a bad length";
      return;
    }
    if (i + len > b.size()) break;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (len < 8) {
        p.problem = "JPEG frame header too short";
        return;
      }
      const int64_t h = Be16(&b[i + 3]), w = Be16(&b[i + 5]);
      if (p.width == 0 && p.height == 0 && !(w == 0 && h == 0)) {
        p.width = w;
        p.height = h;
      } else if (w != p.width || h != p.height) {
        p.problem = "JPEG with two different frame headers";
        return;
      }
      if (w == 0 || h == 0) {
        p.problem = "JPEG frame header with a zero size";
        return;
      }
    }
    i += len;
    if (m == 0xDA) {  // start of scan: entropy-coded data up to the next real marker
      if (p.width == 0) {
        p.problem = "JPEG scan before its frame header";
        return;
      }
      ++p.jpeg_scans;
      while (i + 1 < b.size() &&
             !(b[i] == 0xFF && b[i + 1] != 0x00 && !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7)))
        ++i;
      if (i + 1 >= b.size()) break;
    }
  }
  if (p.width == 0)
    p.problem = "JPEG without a frame header";
  else if (p.jpeg_scans == 0)
    p.problem = "JPEG without image data";
  else if (!eoi)
    p.problem = "truncated JPEG (no end marker)";
}

}  // namespace

const char* ImageFormatName(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "JPEG";
    case ImageFormat::kPng:
      return "PNG";
    case ImageFormat::kBmp:
      return "BMP";
    case ImageFormat::kGif:
      return "GIF";
    case ImageFormat::kTiff:
      return "TIFF";
    case ImageFormat::kWebp:
      return "WebP";
    case ImageFormat::kJpeg2000:
      return "JPEG 2000";
    case ImageFormat::kPnm:
      return "PNM (PBM/PGM/PPM/PAM/PFM)";
    case ImageFormat::kSunRaster:
      return "Sun raster";
    case ImageFormat::kOpenExr:
      return "OpenEXR";
    case ImageFormat::kRadianceHdr:
      return "Radiance HDR";
    case ImageFormat::kHeif:
      return "HEIF/AVIF";
    case ImageFormat::kPsd:
      return "PSD";
    case ImageFormat::kIco:
      return "ICO";
    case ImageFormat::kUnknown:
      break;
  }
  return "unknown";
}

bool IsAcceptedFormat(ImageFormat format) {
  return format == ImageFormat::kJpeg || format == ImageFormat::kPng || format == ImageFormat::kBmp;
}

ImageProbe ProbeImage(Bytes b) {
  ImageProbe p;
  if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    p.format = ImageFormat::kJpeg;
    ProbeJpeg(b, p);
  } else if (b.size() >= 4 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
    p.format = ImageFormat::kPng;
    ProbePng(b, p);
  } else if (StartsWith(b, "BM")) {
    p.format = ImageFormat::kBmp;
    ProbeBmp(b, p);
  } else {
    p.format = OtherFormat(b);
  }
  if (!IsAcceptedFormat(p.format)) p.width = p.height = 0;
  return p;
}

}  // namespace anju::vision
