// Image intake (image_probe.h, image.h): only JPEG, PNG and BMP are decoded, identified by
// content; the size comes from the header and is checked before any decoder runs. Every
// other format is refused by name even when OpenCV could decode it, and crafted headers
// (a 3.7 KB TIFF claiming 20000×20000, a WebP canvas of 16384², a JPEG claiming
// 60000×60000, thousands of progressive scans) are refused from the header alone.
#include <opencv2/imgcodecs.hpp>

#include <cstring>
#include <map>

#include "vision/image.h"
#include "vision/image_probe.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::LfwFile;
using test::ReadBytes;

// The message of the anju::Error that DecodeImage throws ("" when it did not throw).
std::string Refusal(std::span<const uint8_t> bytes, const ImageLimits& limits = {}) {
  try {
    DecodeImage(bytes, limits);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadImage) << e.what();
    return e.what();
  }
  return "";
}

void PutLe16(std::vector<uint8_t>& b, uint16_t v) {
  b.push_back(v & 0xFF);
  b.push_back(v >> 8);
}
void PutLe32(std::vector<uint8_t>& b, uint32_t v) {
  PutLe16(b, v & 0xFFFF);
  PutLe16(b, v >> 16);
}

// A little-endian baseline TIFF (8-bit grey, one uncompressed strip) whose IFD claims
// WIDTH × HEIGHT while the file carries only DATA_BYTES of pixels: libtiff sizes its
// buffers from the IFD.
std::vector<uint8_t> CraftedTiff(uint32_t width, uint32_t height, size_t data_bytes) {
  std::vector<uint8_t> b = {'I', 'I', 42, 0};
  PutLe32(b, 8);  // first IFD
  const uint16_t entries = 9;
  const uint32_t data_at = 8 + 2 + entries * 12 + 4;
  PutLe16(b, entries);
  auto entry = [&](uint16_t tag, uint16_t type, uint32_t value) {
    PutLe16(b, tag);
    PutLe16(b, type);
    PutLe32(b, 1);
    if (type == 3) {  // SHORT, left-justified in the value field
      PutLe16(b, static_cast<uint16_t>(value));
      PutLe16(b, 0);
    } else {
      PutLe32(b, value);
    }
  };
  entry(256, 4, width);                                  // ImageWidth
  entry(257, 4, height);                                 // ImageLength
  entry(258, 3, 8);                                      // BitsPerSample
  entry(259, 3, 1);                                      // Compression: none
  entry(262, 3, 1);                                      // Photometric: min-is-black
  entry(273, 4, data_at);                                // StripOffsets
  entry(277, 3, 1);                                      // SamplesPerPixel
  entry(278, 4, height);                                 // RowsPerStrip
  entry(279, 4, static_cast<uint32_t>(width * height));  // StripByteCounts (a lie)
  PutLe32(b, 0);                                         // no next IFD
  b.resize(b.size() + data_bytes, 0x80);
  return b;
}

// A WebP with an extended-format header (VP8X) declaring a WIDTH × HEIGHT canvas.
std::vector<uint8_t> CraftedWebp(uint32_t width, uint32_t height) {
  std::vector<uint8_t> b = {'R', 'I', 'F', 'F'};
  PutLe32(b, 4 + 8 + 10);
  for (char c : std::string("WEBPVP8X")) b.push_back(static_cast<uint8_t>(c));
  PutLe32(b, 10);
  for (int i = 0; i < 4; ++i) b.push_back(0);  // flags + reserved
  for (uint32_t v : {width - 1, height - 1})
    for (int i = 0; i < 3; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  return b;
}

std::vector<uint8_t> Encode(const cv::Mat& img, const char* ext) {
  std::vector<uint8_t> out;
  if (!cv::haveImageWriter(std::string("x") + ext)) return out;
  try {
    cv::imencode(ext, img, out);
  } catch (const cv::Exception&) {
    out.clear();
  }
  return out;
}

cv::Mat TestPattern(int w, int h) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) m.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 4, y * 4, (x + y) * 2);
  return m;
}

TEST(ImageIntake, ProbeReadsFormatAndSizeFromTheHeader) {
  const cv::Mat img = TestPattern(64, 48);
  for (auto [ext, format] :
       {std::pair{".jpg", ImageFormat::kJpeg}, std::pair{".png", ImageFormat::kPng},
        std::pair{".bmp", ImageFormat::kBmp}}) {
    SCOPED_TRACE(ext);
    const auto bytes = Encode(img, ext);
    ASSERT_FALSE(bytes.empty());
    const ImageProbe p = ProbeImage(bytes);
    EXPECT_EQ(p.format, format);
    EXPECT_EQ(p.width, 64);
    EXPECT_EQ(p.height, 48);
    EXPECT_EQ(p.problem, "");
    EXPECT_EQ(DecodeImage(bytes).size(), cv::Size(64, 48));
  }
  EXPECT_EQ(ProbeImage(Encode(img, ".jpg")).jpeg_scans, 1);
}

// Formats OpenCV decodes but anju never should: each is a small valid file (OpenCV's own
// encoder), cv::imdecode reads it, and DecodeImage refuses it by name.
TEST(ImageIntake, OtherFormatsAreRefusedByNameEvenWhenOpenCvCouldDecodeThem) {
  const cv::Mat img = TestPattern(64, 64);
  int tried = 0;
  for (auto [ext, name] :
       {std::pair{".tiff", "TIFF"}, std::pair{".webp", "WebP"}, std::pair{".jp2", "JPEG 2000"},
        std::pair{".ppm", "PNM"}, std::pair{".pgm", "PNM"}, std::pair{".ras", "Sun raster"},
        std::pair{".hdr", "Radiance HDR"}, std::pair{".pfm", "PNM"}}) {
    SCOPED_TRACE(ext);
    cv::Mat src = img;
    if (std::string(ext) == ".hdr" || std::string(ext) == ".pfm") img.convertTo(src, CV_32FC3);
    const auto bytes = Encode(src, ext);
    if (bytes.empty()) continue;  // this OpenCV build has no such writer
    ++tried;
    ASSERT_FALSE(cv::imdecode(bytes, cv::IMREAD_COLOR).empty()) << "OpenCV decodes it";
    const std::string why = Refusal(bytes);
    EXPECT_NE(why.find("unsupported image format"), std::string::npos) << why;
    EXPECT_NE(why.find(name), std::string::npos) << why;
    EXPECT_NE(why.find("不支持"), std::string::npos) << why;
  }
  EXPECT_GE(tried, 4);  // Debian's OpenCV writes at least TIFF, WebP, PNM and Sun raster
}

TEST(ImageIntake, CraftedTiffClaiming20000SquareIsRefusedWithoutDecoding) {
  const auto tiff = CraftedTiff(20000, 20000, 3580);
  EXPECT_NEAR(static_cast<double>(tiff.size()), 3.7e3, 100);
  const ImageProbe p = ProbeImage(tiff);
  EXPECT_EQ(p.format, ImageFormat::kTiff);
  EXPECT_EQ(p.width, 0);  // never parsed further
  const std::string why = Refusal(tiff);
  EXPECT_NE(why.find("TIFF"), std::string::npos) << why;
  // Big-endian and BigTIFF are recognised too.
  EXPECT_EQ(ProbeImage(std::vector<uint8_t>{'M', 'M', 0, 42, 0, 0, 0, 8}).format,
            ImageFormat::kTiff);
  EXPECT_EQ(ProbeImage(std::vector<uint8_t>{'I', 'I', 43, 0, 8, 0, 0, 0}).format,
            ImageFormat::kTiff);
}

TEST(ImageIntake, CraftedWebpGifJpeg2000AndHeifHeadersAreRefused) {
  auto check = [](const std::vector<uint8_t>& b, ImageFormat f, const char* name) {
    SCOPED_TRACE(name);
    EXPECT_EQ(ProbeImage(b).format, f);
    const std::string why = Refusal(b);
    EXPECT_NE(why.find(name), std::string::npos) << why;
  };
  check(CraftedWebp(16384, 16384), ImageFormat::kWebp, "WebP");
  // GIF89a, logical screen 20000 × 20000.
  std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 0x20, 0x4E, 0x20, 0x4E, 0, 0, 0};
  check(gif, ImageFormat::kGif, "GIF");
  // JPEG 2000: the JP2 signature box, and a bare codestream (SOC + SIZ).
  check({0, 0, 0, 12, 'j', 'P', ' ', ' ', '\r', '\n', 0x87, '\n', 0, 0, 0, 20},
        ImageFormat::kJpeg2000, "JPEG 2000");
  check({0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0, 0, 0, 0x4E, 0x20}, ImageFormat::kJpeg2000,
        "JPEG 2000");
  check({0, 0, 0, 24, 'f', 't', 'y', 'p', 'a', 'v', 'i', 'f', 0, 0, 0, 0}, ImageFormat::kHeif,
        "HEIF");
  check({'8', 'B', 'P', 'S', 0, 1}, ImageFormat::kPsd, "PSD");
  check({0x76, 0x2F, 0x31, 0x01, 2, 0, 0, 0}, ImageFormat::kOpenExr, "OpenEXR");
  const std::string text = "{\"image\": \"not one\"}";
  check(std::vector<uint8_t>(text.begin(), text.end()), ImageFormat::kUnknown, "unknown");
}

TEST(ImageIntake, JpegClaiming60000SquareIsRefusedFromItsHeader) {
  std::vector<uint8_t> jpg = Encode(TestPattern(64, 64), ".jpg");
  size_t sof = 0;
  for (size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      sof = i;
      break;
    }
  ASSERT_GT(sof, 0u);
  jpg[sof + 5] = jpg[sof + 7] = 60000 >> 8;
  jpg[sof + 6] = jpg[sof + 8] = 60000 & 0xFF;
  const ImageProbe p = ProbeImage(jpg);
  EXPECT_EQ(p.width, 60000);
  EXPECT_EQ(p.height, 60000);
  const std::string why = Refusal(jpg);
  EXPECT_NE(why.find("60000x60000"), std::string::npos) << why;
  EXPECT_NE(why.find("图像尺寸超出限制"), std::string::npos) << why;
  // The pixel limit is the caller's: the same header passes a raised side limit but not
  // the pixel count, and 64×64 is refused below 4,096 pixels.
  EXPECT_NE(Refusal(jpg, {.max_side = 70000}).find("too large"), std::string::npos);
  const auto small = Encode(TestPattern(64, 64), ".jpg");
  EXPECT_NE(Refusal(small, {.max_pixels = 4095}).find("64x64"), std::string::npos);
  EXPECT_EQ(DecodeImage(small, {.max_pixels = 4096}).cols, 64);
}

TEST(ImageIntake, PngAndBmpHeadersOverTheLimitAreRefused) {
  const cv::Mat img = TestPattern(32, 32);
  auto png = Encode(img, ".png");
  for (int i = 0; i < 4; ++i) png[16 + i] = png[20 + i] = (i == 2 ? 0x75 : i == 3 ? 0x30 : 0);
  EXPECT_EQ(ProbeImage(png).width, 30000);
  EXPECT_NE(Refusal(png).find("30000x30000"), std::string::npos);
  // A PNG whose first chunk is not IHDR has no trustworthy size.
  auto noihdr = Encode(img, ".png");
  std::memcpy(&noihdr[12], "IDAT", 4);
  EXPECT_NE(Refusal(noihdr).find("IHDR"), std::string::npos);
  // OS/2 1.x BMP (12-byte header, 16-bit sizes) and a top-down BMP.
  auto bmp = Encode(img, ".bmp");
  std::vector<uint8_t> os2(bmp.begin(), bmp.begin() + 26);
  os2[14] = 12, os2[15] = os2[16] = os2[17] = 0;
  os2[18] = 0xFF, os2[19] = 0xFF, os2[20] = 0xFF, os2[21] = 0xFF;
  EXPECT_EQ(ProbeImage(os2).width, 65535);
  EXPECT_NE(Refusal(os2).find("65535x65535"), std::string::npos);
  const int32_t down = -32;
  std::memcpy(&bmp[22], &down, 4);
  EXPECT_EQ(ProbeImage(bmp).height, 32);
  EXPECT_EQ(DecodeImage(bmp).rows, 32);
  std::memcpy(&bmp[14], "\x07\0\0\0", 4);  // an unknown header size
  EXPECT_NE(Refusal(bmp).find("BMP header of unknown size"), std::string::npos);
}

TEST(ImageIntake, TruncatedHeadersAreRefusedWithAReason) {
  const cv::Mat img = TestPattern(64, 64);
  const auto jpg = Encode(img, ".jpg"), png = Encode(img, ".png"), bmp = Encode(img, ".bmp");
  for (size_t keep : {size_t{3}, size_t{10}, size_t{25}, size_t{200}, jpg.size() - 2}) {
    SCOPED_TRACE(keep);
    const std::string why = Refusal(std::span(jpg).first(keep));
    EXPECT_TRUE(why.find("JPEG") != std::string::npos) << why;
  }
  EXPECT_NE(Refusal(std::span(png).first(20)).find("PNG header truncated"), std::string::npos);
  EXPECT_NE(Refusal(std::span(bmp).first(20)).find("BMP header truncated"), std::string::npos);
}

// Data appended after the end marker (phones append a video or metadata) is not a
// truncated JPEG: the end marker is found by walking the segments, not near the file end.
TEST(ImageIntake, JpegWithTrailingDataAfterItsEndDecodes) {
  auto jpg = Encode(TestPattern(64, 64), ".jpg");
  jpg.resize(jpg.size() + 20000, 0x42);
  EXPECT_EQ(DecodeImage(jpg).cols, 64);
}

TEST(ImageIntake, JpegWithThousandsOfScansIsRefused) {
  const auto jpg = Encode(TestPattern(64, 64), ".jpg");
  // Repeat the scan (SOS segment + its entropy-coded data) before the end marker.
  size_t sos = 0;
  for (size_t i = 2; i + 1 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xDA) {
      sos = i;
      break;
    }
  ASSERT_GT(sos, 0u);
  const std::vector<uint8_t> scan(jpg.begin() + static_cast<long>(sos), jpg.end() - 2);
  std::vector<uint8_t> many(jpg.begin(), jpg.end() - 2);
  for (int i = 0; i < 2000; ++i) many.insert(many.end(), scan.begin(), scan.end());
  many.push_back(0xFF);
  many.push_back(0xD9);
  EXPECT_EQ(ProbeImage(many).jpeg_scans, 2001);
  EXPECT_NE(Refusal(many).find("2001 scans"), std::string::npos);
}

// asian/ names a BMP, a PNG and a GIF ".jpg": JPEG, PNG and BMP still decode by content,
// the GIF is refused by name (the evaluators count it as unreadable and go on).
TEST(ImageIntake, DataSetFilesWithLyingExtensionsDecodeByContentAndGifIsRefused) {
  ANJU_REQUIRE_DATA(asian, "asian/people");
  int decoded = 0, gifs = 0;
  std::map<ImageFormat, int> formats;
  for (const auto& e : std::filesystem::recursive_directory_iterator(asian)) {
    if (!e.is_regular_file()) continue;
    const auto bytes = ReadBytes(e.path());
    const ImageProbe p = ProbeImage(bytes);
    ++formats[p.format];
    if (p.format == ImageFormat::kGif) {
      ++gifs;
      EXPECT_NE(Refusal(bytes).find("GIF"), std::string::npos);
      continue;
    }
    ASSERT_TRUE(IsAcceptedFormat(p.format)) << e.path();
    EXPECT_NO_THROW(LoadImage(e.path())) << e.path();
    ++decoded;
  }
  EXPECT_GE(decoded, 110);
  EXPECT_GE(formats[ImageFormat::kBmp], 1);
  EXPECT_EQ(gifs, 1);
}

}  // namespace
}  // namespace anju::vision
