// Paths named over the API stay inside the folders meant for them (docs/reliability.md,
// "Paths"): backups are written and verified only inside backup_dir, imports read photos
// only inside import_dir. Before, `POST /admin/backup/verify` with any absolute path told
// whether that file existed, backups could be written anywhere, and an import's photo list
// could name any image on the server.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "crypto/bytes.h"
#include "crypto/keyfile.h"
#include "server/backup/backup.h"
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

// ServerOptions::blobs_dir: enrolment photos and event snapshots go to the blob store's
// directory (a shared path in a multi-server installation), never into the data directory;
// they are served from there, a deleted photo leaves it, and a backup takes them along
// (restored where a data directory without a blob directory keeps them).
class BlobDirTest : public ServerTest {
 protected:
  fs::path Blobs() const { return dir_.parent_path() / (dir_.filename().string() + "-blobs"); }
  void Configure(ServerOptions& o) override { o.blobs_dir = Blobs(); }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(Blobs(), ec);
    fs::remove_all(dir_.string() + "-backups", ec);
    fs::remove_all(dir_.string() + "-restored", ec);
    ServerTest::TearDown();
  }
};

int64_t FilesUnder(const fs::path& dir) {
  int64_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    n += it->is_regular_file(ec);
  return n;
}

TEST_F(BlobDirTest, PhotosAndSnapshotsLiveInTheBlobDirectory) {
  ANJU_REQUIRE_DATA(lfw, "lfw/lfw");
  // An access record with a snapshot, uploaded through the device protocol.
  auto dev = RegisterDevice("1号楼门");
  const std::string jpeg = ReadFile(PhotosOf(lfw, "Serena_Williams")[0]);
  const std::string event_id = "6f1d2c3b-4a59-4e8d-9c7b-2a1f0e3d4c5b";
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const json events = {
      {"events",
       json::array(
           {{{"id", event_id},
             {"kind", "access"},
             {"created_ms", now},
             {"payload", {{"time_ms", now}, {"door", 0}, {"decision", "stranger"}}},
             {"snapshot", crypto::ToBase64(std::vector<uint8_t>(jpeg.begin(), jpeg.end()))}}})}};
  const auto up = dev.client->CallJson("POST", "/api/v1/device/events", &events);
  ASSERT_EQ(up["stored"].size(), 1u) << up;
  auto snap = Raw("GET", "/api/v1/events/" + event_id + "/snapshot", "", AdminHeaders());
  ASSERT_EQ(snap->status, 200);
  EXPECT_EQ(snap->body, jpeg);
  EXPECT_EQ(FilesUnder(Blobs() / "snapshots"), 1);
  EXPECT_EQ(FilesUnder(dir_ / "snapshots"), 0) << "a snapshot was written into the data directory";

  // An enrolment photo (with the face models installed).
  std::string photo_id;
  if (!server_->model_version().empty()) {
    CreatePerson("B1", "Colin_Powell");
    GiveConsent("B1");
    std::string accepted;
    for (const auto& p : PhotosOf(lfw, "Colin_Powell")) {
      const std::string bytes = ReadFile(p);
      const auto r = Api("POST", "/api/v1/persons/B1/photos", ImageBody(bytes));
      if (r.status != 201) continue;
      photo_id = std::to_string(r.body["photo_id"].get<int64_t>());
      accepted = bytes;
      break;
    }
    ASSERT_FALSE(photo_id.empty()) << "no photo of Colin_Powell accepted";
    EXPECT_EQ(FilesUnder(Blobs() / "photos"), 1);
    EXPECT_EQ(FilesUnder(dir_ / "photos"), 0) << "a photo was written into the data directory";
    auto img = Raw("GET", "/api/v1/persons/B1/photos/" + photo_id, "", AdminHeaders());
    ASSERT_EQ(img->status, 200);
    EXPECT_EQ(img->body, accepted);
  }

  // The backup takes the blobs along; restored, they are where a data directory keeps them.
  const fs::path backups = dir_.string() + "-backups";
  fs::create_directories(backups);
  const fs::path archive = backups / "with-blobs.bak";
  const auto made = SysApi("POST", "/api/v1/admin/backup", {{"file", archive.string()}});
  ASSERT_EQ(made.status, 201) << made.body;
  const fs::path restored = dir_.string() + "-restored";
  RestoreBackup(archive, restored, crypto::LoadRawKeyFile(dir_ / "backup.key"));
  EXPECT_EQ(FilesUnder(restored / "snapshots"), 1);
  EXPECT_EQ(FilesUnder(restored / "photos"), photo_id.empty() ? 0 : 1);

  // A deleted photo leaves the blob directory.
  if (!photo_id.empty()) {
    EXPECT_EQ(Api("DELETE", "/api/v1/persons/B1/photos/" + photo_id).status / 100, 2);
    EXPECT_EQ(FilesUnder(Blobs() / "photos"), 0);
  }
}

}  // namespace
}  // namespace anju::server::testing
