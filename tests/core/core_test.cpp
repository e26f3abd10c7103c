#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "core/clock.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/paths.h"
#include "core/uuid.h"
#include "testing.h"

namespace anju {
namespace {

namespace fs = std::filesystem;

TEST(Uuid, Version4AndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string u = NewUuid();
    ASSERT_TRUE(IsUuid(u)) << u;
    EXPECT_EQ(u[14], '4') << u;
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos) << u;
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_FALSE(IsUuid("not-a-uuid"));
  EXPECT_FALSE(IsUuid("0123456789abcdef0123456789abcdef0123"));
}

TEST(Clock, ProcessClockCanBeMovedAndRestored) {
  const int64_t before = NowMs();
  ManualClock manual(1'700'000'000'000);
  SetProcessClock(&manual);
  EXPECT_EQ(NowMs(), 1'700'000'000'000);
  manual.Advance(1500);
  EXPECT_EQ(NowMs(), 1'700'000'001'500);
  // A clock set back an hour (a terminal whose clock was wrong).
  OffsetClock behind(manual, -3'600'000);
  SetProcessClock(&behind);
  EXPECT_EQ(NowMs(), 1'700'000'001'500 - 3'600'000);
  behind.SetOffset(0);
  EXPECT_EQ(NowMs(), 1'700'000'001'500);
  SetProcessClock(nullptr);
  EXPECT_GE(NowMs(), before);
}

TEST(FileIo, DurableWriteReplacesWholeFileAndReportsErrors) {
  const fs::path dir = testing::TempDir("core-file-io");
  const fs::path f = dir / "x.bin";
  WriteFileDurably(f, std::string("first"));
  EXPECT_EQ(ReadFileText(f), "first");
  WriteFileDurably(f, std::string("second, longer"));
  EXPECT_EQ(ReadFileText(f), "second, longer");
  EXPECT_EQ((fs::status(f).permissions() & fs::perms::group_read), fs::perms::none);
  // No temporary files left behind.
  int files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  EXPECT_EQ(testing::CodeOf([&] { ReadFileBytes(dir / "missing"); }), ErrorCode::kNotFound);
  EXPECT_EQ(testing::CodeOf([&] { SyncDir(dir / "missing"); }), ErrorCode::kIo);
  EXPECT_EQ(testing::CodeOf([&] { WriteFileDurably(dir / "no" / "such" / "dir", std::string("x")); }),
            ErrorCode::kIo);
  fs::remove_all(dir);
}

TEST(FolderInside, APathMustBeAbsoluteAndStayInsideTheRootThroughLinks) {
  namespace fs = std::filesystem;
  const fs::path root = anju::testing::TempDir("folder_inside");
  const fs::path outside = anju::testing::TempDir("folder_inside_out");
  fs::create_directories(root / "photos");
  fs::create_symlink(outside, root / "escape");
  EXPECT_EQ(FolderInside(root, (root / "photos").string(), "photo_dir"),
            fs::canonical(root / "photos"));
  EXPECT_EQ(FolderInside(root, (root / "not-yet" / "b.tar").string(), "file"),
            fs::weakly_canonical(root / "not-yet" / "b.tar"));
  using anju::testing::CodeOf;
  EXPECT_EQ(CodeOf([&] { FolderInside(root, "photos", "photo_dir"); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { FolderInside(root, (root / ".." / "x").string(), "file"); }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeOf([&] { FolderInside(root, (root / "escape").string(), "photo_dir"); }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeOf([&] { FolderInside(root, root.string(), "photo_dir"); }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeOf([&] { FolderInside(root, "/etc/passwd", "file"); }),
            ErrorCode::kPermissionDenied);
  fs::remove_all(root);
  fs::remove_all(outside);
}

}  // namespace
}  // namespace anju
