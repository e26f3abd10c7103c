// Keys at rest (R3.3.3.2, R4.2.4.1): per-class data keys under the master key, the
// migration of single-key data directories, master-key rotation while the server runs, and
// rotations interrupted at every step.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "server/audit/audit_log.h"
#include "server/audit/server_keys.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::server::testing::ReadFile;
using anju::testing::CodeOf;
using nlohmann::json;

std::vector<std::string> Leftovers(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".new") out.push_back(e.path().filename().string());
  return out;
}

// The class key ids of DIR, read-only.
std::vector<std::string> ClassIds(const fs::path& dir) {
  std::vector<std::string> ids;
  for (const auto& f : ClassKeyFiles()) ids.push_back(LoadClassKey(dir, f).id());
  return ids;
}

class KeysServerTest : public testing::ServerTest {};

TEST_F(KeysServerTest, RotationWhileRunningKeepsEverySealedValueReadable) {
  const std::string id_number = "110101199003071234";
  auto r =
      Api("POST", "/api/v1/persons", {{"code", "K1"}, {"name", "张三"}, {"id_number", id_number}});
  ASSERT_EQ(r.status, 201) << r.body;
  GiveConsent("K1");
  ImportFeature("K1", 11);
  // A real enrolment photo when the models and LFW are here (sealed photo + feature).
  std::string photo;
  int64_t photo_id = 0;
  const fs::path lfw = anju::testing::DataPath("lfw/lfw");
  if (!server_->model_version().empty() && !lfw.empty()) {
    for (const auto& e : fs::directory_iterator(lfw / "Colin_Powell")) {
      const std::string bytes = ReadFile(e.path());
      const auto p = Api("POST", "/api/v1/persons/K1/photos",
                         {{"image", crypto::ToBase64(crypto::AsBytes(bytes))}});
      if (p.status == 201) {
        photo = bytes;
        break;
      }
    }
  }
  testing::TestDevice dev = RegisterDevice("gate");
  const int64_t group = CreateGroupOn(dev.id);
  AddToGroup(group, {"K1"});
  const std::vector<std::string> before = ClassIds(dir_);
  const std::string old_master = crypto::LoadRawKeyFile(dir_ / "master.key").id();

  // Rotate while the server runs, twice; it keeps serving with the keys it unwrapped.
  const RotateResult rot = RotateMasterKey(dir_);
  EXPECT_EQ(rot.old_master_id, old_master);
  EXPECT_NE(rot.new_master_id, old_master);
  EXPECT_EQ(rot.rewrapped, ClassKeyFiles());
  EXPECT_FALSE(rot.recovered);
  r = Api("POST", "/api/v1/persons", {{"code", "K2"}, {"name", "李四"}, {"id_number", id_number}});
  ASSERT_EQ(r.status, 201) << r.body;
  GiveConsent("K2");
  ImportFeature("K2", 12);
  const RotateResult rot2 = RotateMasterKey(dir_);
  EXPECT_EQ(rot2.old_master_id, rot.new_master_id);
  const std::string new_master = crypto::LoadRawKeyFile(dir_ / "master.key").id();
  EXPECT_EQ(new_master, rot2.new_master_id);
  for (const auto& f : ClassKeyFiles())
    EXPECT_EQ(crypto::ReadKeyFileInfo(dir_ / f).master_id, new_master) << f;
  EXPECT_EQ(ClassIds(dir_), before) << "rotation re-wraps, the class keys stay";
  EXPECT_TRUE(Leftovers(dir_).empty());

  // Reopened: every sealed value opens (features are opened by the index load at start).
  StartServer();
  for (const char* code : {"K1", "K2"}) {
    const auto p = Api("GET", std::string("/api/v1/persons/") + code + "?reveal=true");
    ASSERT_EQ(p.status, 200) << p.body;
    EXPECT_EQ(p.body["id_number"], id_number);
  }
  if (!photo.empty()) {
    const auto person = Api("GET", "/api/v1/persons/K1");
    for (const auto& ph : person.body["photos"])
      if (ph.contains("id") && ph["id"].is_number()) photo_id = ph["id"];
    ASSERT_GT(photo_id, 0);
    auto got =
        Raw("GET", "/api/v1/persons/K1/photos/" + std::to_string(photo_id), "", AdminHeaders());
    ASSERT_TRUE(got);
    EXPECT_EQ(got->status, 200);
    EXPECT_EQ(got->body, photo);
  } else {
    std::printf("    (models or LFW missing: no enrolment photo in this run)\n");
  }
  // The device's data key (sealed in the archive) still opens: its gallery sync works.
  std::vector<json> changes;
  protocol::DeviceClient client(server_->url(), dev.id, dev.key, dev.reg->server_public_key,
                                ClientOpts());
  testing::SyncAll(client, 0, 100, &changes);
  EXPECT_FALSE(changes.empty());
  // The audit chain is intact and verifies with the audit class key.
  StopServer();
  const auto v = VerifyAuditFile(dir_ / "archive.db", LoadClassKey(dir_, kAuditKeyFile));
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GT(v.checked, 5);
}

TEST_F(KeysServerTest, WrongOrMissingMasterKeyIsAClearError) {
  // One request first: a server stopped before its listener thread runs can hang in Stop().
  EXPECT_EQ(Api("GET", "/healthz").status, 200);
  StopServer();
  const fs::path master = dir_ / "master.key";
  const std::string original = crypto::ReadSecretFile(master);
  ServerOptions o;
  o.data_dir = dir_;
  o.port = 0;
  crypto::WriteRawKeyFile(master, crypto::DataKey::Generate());
  try {
    Server s(o);
    ADD_FAILURE() << "opened with a wrong master key";
  } catch (const Error& e) {
    std::printf("    refused: %s\n", e.what());
    EXPECT_EQ(e.code(), ErrorCode::kCrypto);
    EXPECT_NE(std::string(e.what()).find("wrong master key"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("data.key"), std::string::npos);
  }
  EXPECT_EQ(CodeOf([&] { LoadClassKey(dir_, kAuditKeyFile); }), ErrorCode::kCrypto);
  EXPECT_EQ(CodeOf([&] { RotateMasterKey(dir_); }), ErrorCode::kCrypto);
  fs::remove(master);
  EXPECT_EQ(CodeOf([&] { Server s(o); }), ErrorCode::kCrypto);
  EXPECT_EQ(CodeOf([&] { LoadClassKey(dir_, kArchiveKeyFile); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { RotateMasterKey(dir_); }), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(master)) << "a missing master key is never silently recreated";
  crypto::WriteSecretFile(master, original);
  EXPECT_EQ(LoadClassKey(dir_, kArchiveKeyFile).id(),
            crypto::ReadKeyFileInfo(dir_ / "data.key").key_id);
}

class KeysDirTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = anju::testing::TempDir("keys"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A rotation stopped after STEP of: 0 master.key.new written, 1 + data.key.new,
// 2 every *.new written, 3 data.key renamed, 4 every class key renamed (master.key.new left).
void InterruptRotation(const fs::path& dir, int step) {
  const crypto::DataKey next = crypto::DataKey::Generate();
  crypto::WriteRawKeyFile(dir / "master.key.new", next);
  const auto& files = ClassKeyFiles();
  for (size_t i = 0; i < files.size(); ++i) {
    if (step < 1 || (step == 1 && i > 0)) break;
    crypto::WriteKeyFile(dir / (files[i] + ".new"), LoadClassKey(dir, files[i]), next);
  }
  if (step >= 3) fs::rename(dir / "data.key.new", dir / "data.key");
  if (step >= 4)
    for (size_t i = 1; i < files.size(); ++i) fs::rename(dir / (files[i] + ".new"), dir / files[i]);
}

TEST_F(KeysDirTest, InterruptedRotationStillLoadsAtEveryStep) {
  const ServerKeys first = ServerKeys::LoadOrCreate(dir_);
  EXPECT_TRUE(first.created);
  const std::vector<std::string> ids = {first.data_key.id(), first.events_key.id(),
                                        first.audit_key.id()};
  EXPECT_NE(ids[0], ids[1]);
  EXPECT_NE(ids[0], ids[2]);
  // A temp file of a crashed WriteSecretFile is ignored as well.
  std::ofstream(dir_ / ".data.key.tmp.12345.1") << "garbage";
  for (int step = 0; step <= 4; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    const std::string master_before = crypto::LoadRawKeyFile(dir_ / "master.key").id();
    InterruptRotation(dir_, step);
    const std::string next = crypto::LoadRawKeyFile(dir_ / "master.key.new").id();
    EXPECT_EQ(ClassIds(dir_), ids) << "read-only load during the interrupted state";
    const ServerKeys k = ServerKeys::LoadOrCreate(dir_);
    EXPECT_EQ(k.data_key.id(), ids[0]);
    EXPECT_EQ(k.events_key.id(), ids[1]);
    EXPECT_EQ(k.audit_key.id(), ids[2]);
    EXPECT_TRUE(k.migrated.empty());
    EXPECT_TRUE(Leftovers(dir_).empty());
    const std::string master_after = crypto::LoadRawKeyFile(dir_ / "master.key").id();
    // Until every *.new file is written the old set is kept; from then on it rolls forward.
    EXPECT_EQ(master_after, step >= 2 ? next : master_before);
    for (const auto& f : ClassKeyFiles())
      EXPECT_EQ(crypto::ReadKeyFileInfo(dir_ / f).master_id, master_after) << f;
  }
  // An interrupted rotation is finished by the next rotation too.
  InterruptRotation(dir_, 3);
  const RotateResult r = RotateMasterKey(dir_);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(ClassIds(dir_), ids);
  EXPECT_TRUE(Leftovers(dir_).empty());
}

TEST_F(KeysDirTest, SingleKeyDirectoryIsMigrated) {
  // The layout before per-class keys: master.key and data.key only.
  const crypto::DataKey master = crypto::DataKey::Generate();
  const crypto::DataKey data = crypto::DataKey::Generate();
  crypto::WriteRawKeyFile(dir_ / "master.key", master);
  crypto::WriteKeyFile(dir_ / "data.key", data, master);
  std::ofstream(dir_ / "events.db") << "";  // it has events: snapshots sealed with data.key
  const ServerKeys k = ServerKeys::LoadOrCreate(dir_);
  EXPECT_FALSE(k.created);
  EXPECT_EQ(k.data_key.id(), data.id());
  EXPECT_EQ(k.events_key.id(), data.id()) << "old snapshots must still open";
  EXPECT_NE(k.audit_key.id(), data.id());
  EXPECT_EQ(k.migrated, (std::vector<std::string>{kEventsKeyFile, kAuditKeyFile}));
  const ServerKeys again = ServerKeys::LoadOrCreate(dir_);
  EXPECT_TRUE(again.migrated.empty());
  EXPECT_EQ(again.audit_key.id(), k.audit_key.id());
  EXPECT_EQ(again.master_id, master.id());

  // Without events yet, the events class gets a key of its own.
  const fs::path other = dir_ / "other";
  fs::create_directories(other);
  crypto::WriteRawKeyFile(other / "master.key", master);
  crypto::WriteKeyFile(other / "data.key", data, master);
  const ServerKeys fresh = ServerKeys::LoadOrCreate(other);
  EXPECT_NE(fresh.events_key.id(), data.id());
}

}  // namespace
}  // namespace anju::server
