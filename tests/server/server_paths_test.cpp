// Paths named over the API stay inside the folders meant for them (docs/reliability.md,
// "Paths"): backups are written and verified only inside backup_dir, imports read photos
// only inside import_dir. Before, `POST /admin/backup/verify` with any absolute path told
// whether that file existed, backups could be written anywhere, and an import's photo list
// could name any image on the server.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using ServerPathsTest = ServerTest;

void Write(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary) << text;
}

TEST_F(ServerPathsTest, BackupsAreWrittenAndVerifiedOnlyInsideTheBackupFolder) {
  const fs::path backups = dir_.string() + "-backups";
  const fs::path outside = dir_.string() + "-outside";
  fs::create_directories(backups);
  fs::create_directories(outside);
  Write(outside / "secret.txt", "not for the API");
  fs::create_symlink(outside / "secret.txt", backups / "link.bak");
  fs::create_directory_symlink(outside, backups / "out");

  // Verify: every path outside answers the same 403, whether or not the file exists.
  for (const std::string& file :
       {(outside / "secret.txt").string(), (outside / "missing.bak").string(),
        std::string("/etc/passwd"), (backups / ".." / "outside-x").string(),
        (backups / "link.bak").string(), (backups / "out" / "secret.txt").string(),
        (dir_ / "archive.db").string(), backups.string()}) {
    const auto r = SysApi("POST", "/api/v1/admin/backup/verify", {{"file", file}});
    EXPECT_EQ(r.status, 403) << file << ": " << r.body;
    EXPECT_EQ(r.body["error"]["code"], "forbidden") << file;
  }
  EXPECT_EQ(SysApi("POST", "/api/v1/admin/backup/verify", {{"file", "relative.bak"}}).status, 400);

  // Create: nowhere outside the folder, not through a link, not into the data directory.
  for (const std::string& file :
       {(outside / "new.bak").string(), std::string("/tmp/anju-escape.bak"),
        (backups / "out" / "new.bak").string(), (backups / ".." / "escape.bak").string(),
        (dir_ / "inside-data.bak").string()}) {
    const auto r = SysApi("POST", "/api/v1/admin/backup", {{"file", file}});
    EXPECT_EQ(r.status, 403) << file << ": " << r.body;
  }
  EXPECT_FALSE(fs::exists(outside / "new.bak"));
  EXPECT_FALSE(fs::exists("/tmp/anju-escape.bak"));
  EXPECT_FALSE(fs::exists(dir_.parent_path() / "escape.bak"));

  // Inside the folder both work.
  const fs::path good = backups / "nightly.bak";
  const auto made = SysApi("POST", "/api/v1/admin/backup", {{"file", good.string()}});
  ASSERT_EQ(made.status, 201) << made.body;
  const auto verified = SysApi("POST", "/api/v1/admin/backup/verify", {{"file", good.string()}});
  EXPECT_EQ(verified.status, 200) << verified.body;
  // A missing file inside the folder is a plain 404 / 400, never a 500.
  const auto missing =
      SysApi("POST", "/api/v1/admin/backup/verify", {{"file", (backups / "none.bak").string()}});
  EXPECT_GE(missing.status, 400);
  EXPECT_LT(missing.status, 500) << missing.body;

  std::error_code ec;
  fs::remove_all(backups, ec);
  fs::remove_all(outside, ec);
}

TEST_F(ServerPathsTest, ImportReadsPhotosOnlyInsideItsPhotoFolder) {
  const fs::path folder = dir_.string() + "-imports/batch";
  const fs::path outside = dir_.string() + "-outside";
  fs::create_directories(folder);
  fs::create_directories(outside);
  Write(outside / "face.jpg", "bytes outside the import folder");
  Write(folder / "inside.jpg", "bytes inside the import folder");
  fs::create_symlink(outside / "face.jpg", folder / "link.jpg");

  // The folder itself must lie inside import_dir (main's check, kept).
  EXPECT_EQ(
      Api("POST", "/api/v1/imports", {{"csv", "name\nx\n"}, {"photo_dir", "/usr/share"}}).status,
      403);
  const std::string csv = "code,name,photos\nX1,甲," + (outside / "face.jpg").string() +
                          "\nX2,乙,link.jpg\nX3,丙,../../" + outside.filename().string() +
                          "/face.jpg\nX4,丁,inside.jpg\n";
  const auto started =
      Api("POST", "/api/v1/imports", {{"csv", csv}, {"photo_dir", folder.string()}});
  ASSERT_EQ(started.status, 202) << started.body;
  json status;
  for (int i = 0; i < 600; ++i) {
    status =
        Api("GET", "/api/v1/imports/" + std::to_string(started.body["id"].get<int64_t>())).body;
    if (status["state"] != "running") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(status["state"], "done") << status;
  const auto& rows = status["results"];
  ASSERT_EQ(rows.size(), 4u) << status;
  // An absolute name, a link leading out and ".." are not read: "photo not found".
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(rows[i]["photos"].size(), 1u) << rows[i];
    EXPECT_EQ(rows[i]["photos"][0]["status"], 404) << rows[i];
  }
  // The file inside was read (and refused as an image, which it is not).
  ASSERT_EQ(rows[3]["photos"].size(), 1u) << rows[3];
  EXPECT_NE(rows[3]["photos"][0]["status"], 404) << rows[3];
  EXPECT_NE(rows[3]["photos"][0]["status"], 201) << rows[3];

  std::error_code ec;
  fs::remove_all(folder.parent_path(), ec);
  fs::remove_all(outside, ec);
}

}  // namespace
}  // namespace anju::server::testing
