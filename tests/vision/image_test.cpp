// Image input: every format from file and memory, greyscale expansion, and broken,
// truncated or oversized data failing with Error(kBadImage), never a crash.
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <random>

#include "vision/image.h"
#include "vision_test_support.h"

namespace anju::vision {
namespace {

using test::LfwFile;
using test::ReadBytes;
using test::WriteBytes;

// A colour frame (NUAA, 640×480) when present, else nothing.
cv::Mat ColourFrame(const std::filesystem::path& nuaa) {
  return LoadImage(nuaa / "ClientRaw" / "0001" / "0001_00_00_01_127.jpg");
}

bool SameImage(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

TEST(ImageTest, JpegFromFileAndMemoryAgree) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  const auto path = LfwFile(lfw, "Aaron_Peirsol", 1);
  cv::Mat from_file = LoadImage(path);
  ASSERT_EQ(from_file.size(), cv::Size(250, 250));
  EXPECT_EQ(from_file.type(), CV_8UC3);
  cv::Mat from_memory = DecodeImage(ReadBytes(path));
  EXPECT_TRUE(SameImage(from_file, from_memory));
}

TEST(ImageTest, ColourJpegDecodes) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  cv::Mat img = ColourFrame(nuaa);
  EXPECT_EQ(img.size(), cv::Size(640, 480));
  EXPECT_EQ(img.type(), CV_8UC3);
}

TEST(ImageTest, PngAndBmpRoundTripFromFileAndMemory) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const cv::Mat original = ColourFrame(nuaa);
  const test::ScopedTempDir tmp("image-roundtrip");
  const auto& dir = tmp.path();
  for (const char* ext : {".png", ".bmp"}) {
    SCOPED_TRACE(ext);
    std::vector<uint8_t> encoded;
    ASSERT_TRUE(cv::imencode(ext, original, encoded));
    EXPECT_TRUE(SameImage(DecodeImage(encoded), original));
    WriteBytes(dir / (std::string("frame") + ext), encoded);
    EXPECT_TRUE(SameImage(LoadImage(dir / (std::string("frame") + ext)), original));
    // Decoded by content, not by name (some data sets' extensions lie).
    WriteBytes(dir / (std::string("lying") + ext + ".jpg"), encoded);
    EXPECT_TRUE(SameImage(LoadImage(dir / (std::string("lying") + ext + ".jpg")), original));
  }
}

TEST(ImageTest, GreyscaleIsExpandedToThreeChannels) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  cv::Mat grey;
  cv::cvtColor(ColourFrame(nuaa), grey, cv::COLOR_BGR2GRAY);
  for (const char* ext : {".png", ".bmp", ".jpg"}) {
    SCOPED_TRACE(ext);
    std::vector<uint8_t> encoded;
    ASSERT_TRUE(cv::imencode(ext, grey, encoded));
    cv::Mat img = DecodeImage(encoded);
    ASSERT_EQ(img.type(), CV_8UC3);
    ASSERT_EQ(img.size(), grey.size());
    std::vector<cv::Mat> ch;
    cv::split(img, ch);
    EXPECT_EQ(cv::norm(ch[0], ch[1], cv::NORM_INF), 0);
    EXPECT_EQ(cv::norm(ch[0], ch[2], cv::NORM_INF), 0);
    if (std::string(ext) != ".jpg") {
      EXPECT_EQ(cv::norm(ch[0], grey, cv::NORM_INF), 0);
    }
  }
}

TEST(ImageTest, EmptyDataIsBadImage) {
  EXPECT_ANJU_ERROR(DecodeImage({}), ErrorCode::kBadImage);
  const test::ScopedTempDir tmp("image-empty");
  const auto& dir = tmp.path();
  WriteBytes(dir / "empty.jpg", {});
  EXPECT_ANJU_ERROR(LoadImage(dir / "empty.jpg"), ErrorCode::kBadImage);
}

TEST(ImageTest, RandomBytesAreBadImage) {
  std::mt19937 rng(42);
  for (size_t size : {1u, 7u, 100u, 4096u, 100000u}) {
    std::vector<uint8_t> bytes(size);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    EXPECT_ANJU_ERROR(DecodeImage(bytes), ErrorCode::kBadImage) << size;
    // Random bytes behind a real signature reach the decoders themselves.
    for (std::vector<uint8_t> magic :
         {std::vector<uint8_t>{0xFF, 0xD8, 0xFF, 0xE0},
          std::vector<uint8_t>{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A},
          std::vector<uint8_t>{'B', 'M'}}) {
      std::vector<uint8_t> b = bytes;
      b.insert(b.begin(), magic.begin(), magic.end());
      EXPECT_ANJU_ERROR(DecodeImage(b), ErrorCode::kBadImage) << size << " " << int{magic[0]};
    }
  }
}

TEST(ImageTest, TruncatedJpegIsBadImage) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  auto bytes = ReadBytes(LfwFile(lfw, "Aaron_Peirsol", 1));
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t keep : {bytes.size() / 2, bytes.size() - 10, size_t{20}, size_t{2}}) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<long>(keep));
    EXPECT_ANJU_ERROR(DecodeImage(cut), ErrorCode::kBadImage) << "kept " << keep;
  }
  const test::ScopedTempDir tmp("image-truncated-jpeg");
  const auto& dir = tmp.path();
  WriteBytes(dir / "half.jpg",
             {bytes.begin(), bytes.begin() + static_cast<long>(bytes.size() / 2)});
  EXPECT_ANJU_ERROR(LoadImage(dir / "half.jpg"), ErrorCode::kBadImage);
}

TEST(ImageTest, TruncatedPngAndBmpAreBadImage) {
  ANJU_REQUIRE_DATA(nuaa, "nuaa");
  const cv::Mat frame = ColourFrame(nuaa);
  for (const char* ext : {".png", ".bmp"}) {
    std::vector<uint8_t> encoded;
    ASSERT_TRUE(cv::imencode(ext, frame, encoded));
    for (size_t keep : {encoded.size() / 2, encoded.size() - 16, size_t{30}}) {
      std::vector<uint8_t> cut(encoded.begin(), encoded.begin() + static_cast<long>(keep));
      EXPECT_ANJU_ERROR(DecodeImage(cut), ErrorCode::kBadImage) << ext << " kept " << keep;
    }
  }
}

// Patches the size fields in an encoded header, leaving the pixel data alone.
void PutBe32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}

TEST(ImageTest, HugeHeaderIsRefusedBeforeDecoding) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  const cv::Mat face = LoadImage(LfwFile(lfw, "Aaron_Peirsol", 1));
  // PNG: IHDR width/height at bytes 16..23.
  std::vector<uint8_t> png;
  ASSERT_TRUE(cv::imencode(".png", face, png));
  PutBe32(png, 16, 100000);
  PutBe32(png, 20, 100000);
  EXPECT_ANJU_ERROR(DecodeImage(png), ErrorCode::kBadImage);
  // Within max_side but beyond max_pixels.
  PutBe32(png, 16, 10000);
  PutBe32(png, 20, 10000);
  EXPECT_ANJU_ERROR(DecodeImage(png), ErrorCode::kBadImage);
  // A zero size.
  PutBe32(png, 16, 0);
  EXPECT_ANJU_ERROR(DecodeImage(png), ErrorCode::kBadImage);
  // BMP: little-endian int32 width/height at 18 and 22 (negative height = top-down).
  std::vector<uint8_t> bmp;
  ASSERT_TRUE(cv::imencode(".bmp", face, bmp));
  const int32_t big = 100000, neg = -100000;
  std::memcpy(&bmp[18], &big, 4);
  std::memcpy(&bmp[22], &neg, 4);
  EXPECT_ANJU_ERROR(DecodeImage(bmp), ErrorCode::kBadImage);
  // JPEG: the SOF0 marker's height/width.
  std::vector<uint8_t> jpg;
  ASSERT_TRUE(cv::imencode(".jpg", face, jpg));
  bool patched = false;
  for (size_t i = 2; i + 9 < jpg.size(); ++i)
    if (jpg[i] == 0xFF && jpg[i + 1] == 0xC0) {
      jpg[i + 5] = jpg[i + 6] = jpg[i + 7] = jpg[i + 8] = 0xFF;  // 65535 × 65535
      patched = true;
      break;
    }
  ASSERT_TRUE(patched);
  EXPECT_ANJU_ERROR(DecodeImage(jpg), ErrorCode::kBadImage);
}

TEST(ImageTest, LimitsAreConfigurable) {
  ANJU_REQUIRE_DATA(lfw, "lfw");
  const auto bytes = ReadBytes(LfwFile(lfw, "Aaron_Peirsol", 1));
  EXPECT_ANJU_ERROR(DecodeImage(bytes, {.max_side = 200}), ErrorCode::kBadImage);
  EXPECT_ANJU_ERROR(DecodeImage(bytes, {.max_bytes = bytes.size() - 1}), ErrorCode::kBadImage);
  EXPECT_EQ(DecodeImage(bytes, {.max_side = 250}).cols, 250);
}

TEST(ImageTest, TinyImageIsBadImage) {
  cv::Mat tiny(8, 8, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<uint8_t> png;
  ASSERT_TRUE(cv::imencode(".png", tiny, png));
  EXPECT_ANJU_ERROR(DecodeImage(png), ErrorCode::kBadImage);
}

TEST(ImageTest, MissingFileIsNotFound) {
  const test::ScopedTempDir tmp("image-missing");
  const auto& dir = tmp.path();
  EXPECT_ANJU_ERROR(LoadImage(dir / "no-such-image.jpg"), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace anju::vision
