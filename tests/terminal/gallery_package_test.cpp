// Gallery packages for offline terminals ("Offline / removable-storage
// operation"): signed, SM4-encrypted, refused when the signature, the key or the file is
// wrong; import applies atomically.
#include "terminal/gallery_package.h"

#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "testing.h"

namespace anju::terminal {
namespace {

using anju::testing::CodeOf;
using anju::testing::RandomUnitFeature;
using anju::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kModel = "test-model/v1";

GalleryChange Person(const std::string& id, uint32_t seed, int open_ms) {
  GalleryChange c;
  c.person = id;
  c.display_name = "王*" + id.substr(id.size() - 1);
  c.templates = {RandomUnitFeature(seed), RandomUnitFeature(seed + 500)};
  c.rules = {{"open_ms", open_ms}, {"doors", {0}}};
  return c;
}

std::string ReadAll(const fs::path& f) {
  std::ifstream in(f, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteAll(const fs::path& f, const std::string& s) {
  std::ofstream(f, std::ios::binary) << s;
}

struct Rig {
  fs::path dir = TempDir("package");
  crypto::DataKey key = crypto::DataKey::Generate();
  crypto::Sm2Key signer = crypto::Sm2Key::Generate();
  fs::path pkg = dir / "gallery.anjupkg";
  Rig() {
    auto src = LocalState::Open(dir / "source", {kModel});
    src->ApplyBatch({Person("P1", 1, 5000), Person("P2", 2, 9000), Person("P3", 3, 0)}, 42);
    const auto info = ExportPackage(*src, pkg, key, signer);
    EXPECT_EQ(info.persons, 3u);
    EXPECT_EQ(info.templates, 6u);
    EXPECT_EQ(info.gallery_version, 42);
  }
  ~Rig() { fs::remove_all(dir); }
};

TEST(GalleryPackage, RoundTripReplacesTheTargetGallery) {
  Rig rig;
  // No feature or display name is readable in the file.
  const std::string bytes = ReadAll(rig.pkg);
  EXPECT_EQ(bytes.rfind("ANJU-GALLERY-PACKAGE/1\n", 0), 0u);
  EXPECT_EQ(bytes.find("王*"), std::string::npos);
  EXPECT_EQ(bytes.find("open_ms"), std::string::npos);

  auto dst = LocalState::Open(rig.dir / "target", {kModel});
  GalleryChange old = Person("P9", 9, 0);
  dst->ApplyBatch({old, Person("P1", 77, 0)}, 5);
  const auto info = ImportPackage(*dst, rig.pkg, rig.key, rig.signer.PublicOnly());
  EXPECT_EQ(info.signer, rig.signer.Fingerprint());
  EXPECT_EQ(dst->persons(), 3u);
  EXPECT_FALSE(dst->index().Contains("P9"));  // not in the package: removed
  EXPECT_FALSE(dst->Rules("P9"));
  EXPECT_EQ(dst->Rules("P2")->open_ms, 9000);
  EXPECT_EQ(dst->Rules("P2")->display_name, "王*2");
  EXPECT_EQ(dst->gallery_version(), 5);  // the sync version is this terminal's own
  const auto hit = dst->index().Search(RandomUnitFeature(501), kModel, {1});
  ASSERT_FALSE(hit.empty());
  EXPECT_EQ(hit[0].person, "P1");  // P1's templates replaced by the package's
  EXPECT_GT(hit[0].score, 0.99f);
  // Survives a restart.
  dst.reset();
  dst = LocalState::Open(rig.dir / "target", {kModel});
  EXPECT_EQ(dst->persons(), 3u);
  EXPECT_EQ(dst->index().size(), 6u);
}

TEST(GalleryPackage, WrongKeyWrongSignerAndTamperingAreRefused) {
  Rig rig;
  auto dst = LocalState::Open(rig.dir / "target", {kModel});
  dst->ApplyBatch({Person("P9", 9, 0)}, 1);
  const auto trusted = rig.signer.PublicOnly();
  // Wrong package key.
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, crypto::DataKey::Generate(), trusted); }),
            ErrorCode::kCrypto);
  // Signed by someone else (or the wrong key is trusted).
  EXPECT_EQ(CodeOf([&] {
              ImportPackage(*dst, rig.pkg, rig.key, crypto::Sm2Key::Generate().PublicOnly());
            }),
            ErrorCode::kCrypto);
  const std::string good = ReadAll(rig.pkg);
  // One payload byte flipped.
  std::string bad = good;
  bad[bad.size() - 40] ^= 0x01;
  WriteAll(rig.pkg, bad);
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, rig.key, trusted); }), ErrorCode::kCrypto);
  // The header edited (claims more persons).
  bad = good;
  const auto at = bad.find("\"persons\":3");
  ASSERT_NE(at, std::string::npos);
  bad[at + 10] = '4';
  WriteAll(rig.pkg, bad);
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, rig.key, trusted); }), ErrorCode::kCrypto);
  // Truncated, another version, not a package at all.
  WriteAll(rig.pkg, good.substr(0, good.size() / 2));
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, rig.key, trusted); }), ErrorCode::kCrypto);
  WriteAll(rig.pkg, "ANJU-GALLERY-PACKAGE/2\n{}\n\n");
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, rig.key, trusted); }),
            ErrorCode::kInvalidArgument);
  WriteAll(rig.pkg, "PK\x03\x04 a zip file");
  EXPECT_EQ(CodeOf([&] { ImportPackage(*dst, rig.pkg, rig.key, trusted); }),
            ErrorCode::kInvalidArgument);
  // Nothing was applied by any refused import.
  EXPECT_EQ(dst->persons(), 1u);
  EXPECT_TRUE(dst->index().Contains("P9"));
  // Another model's terminal refuses a genuine package.
  WriteAll(rig.pkg, good);
  auto other = LocalState::Open(rig.dir / "other", {"other-model/v2"});
  EXPECT_EQ(CodeOf([&] { ImportPackage(*other, rig.pkg, rig.key, trusted); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(PeekPackage(rig.pkg).model_version, kModel);
}

// PeekPackage reads the header before any signature is checked: a number that does not fit
// its field (1e300 as dim, a negative or fractional count) is refused, not converted
// (converting 1e300 to size_t was undefined behaviour; docs/fuzzing.md).
TEST(GalleryPackage, HeaderNumbersOutOfRangeAreRefusedBeforeTheSignature) {
  Rig rig;
  const std::string good = ReadAll(rig.pkg);
  const size_t h_begin = good.find('\n') + 1;
  const size_t h_end = good.find('\n', h_begin);
  const nlohmann::json header = nlohmann::json::parse(good.substr(h_begin, h_end - h_begin));
  const std::vector<std::pair<std::string, nlohmann::json>> bad_fields = {
      {"dim", 1e300},
      {"dim", -1},
      {"dim", 0},
      {"created_ms", 1e300},
      {"persons", -3},
      {"templates", 2.5},
      {"gallery_version", std::numeric_limits<uint64_t>::max()}};
  for (const auto& field : bad_fields) {
    nlohmann::json h = header;
    h[field.first] = field.second;
    WriteAll(rig.pkg, good.substr(0, h_begin) + h.dump() + good.substr(h_end));
    EXPECT_EQ(CodeOf([&] { PeekPackage(rig.pkg); }), ErrorCode::kInvalidArgument)
        << field.first << " = " << field.second;
  }
  WriteAll(rig.pkg, good);
  EXPECT_EQ(PeekPackage(rig.pkg).dim, header["dim"].get<size_t>());
}

}  // namespace
}  // namespace anju::terminal
