// Bulk deletion with approval on a real archive database, without HTTP (R4.2.1.1): the list
// is fixed at request time, nobody approves their own request, approval deletes in batches
// and a deletion interrupted by a stop is finished at the next start.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "server/access/account_service.h"
#include "server/approvals/deletion_service.h"
#include "server/runtime/embedded.h"
#include "server/storage/approval_repo.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class DeletionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("deletion-service");
    db_ = OpenArchiveDb(dir_ / "archive.db");
    accounts_ = std::make_unique<AccountService>(*db_, crypto::DataKey::Generate(),
                                                 SecurityPolicy{}, state_);
    auto conn = db_->Acquire();
    for (const char* code : {"D1", "D2", "D3"}) {
      db::Stmt(conn,
               "INSERT INTO persons(code, name, phone, created_ms, updated_ms) VALUES(?, ?, "
               "'13800000000', 0, 0)")
          .Bind(1, code)
          .Bind(2, std::string("名") + code)
          .Run();
    }
    // A photo row per person; the "files" are what the deletion hands back to remove.
    db::Stmt(conn,
             "INSERT INTO photos(person_id, file, bytes, quality, created_ms, operator) SELECT id, "
             "code || '.jpg.sealed', 10, '{}', 0, 'test' FROM persons")
        .Run();
  }
  void TearDown() override {
    service_.reset();
    accounts_.reset();
    db_.reset();
    fs::remove_all(dir_);
  }
  DeletionService& Service() {
    if (!service_)
      service_ = std::make_unique<DeletionService>(
          *db_, *accounts_,
          PersonDeletion{[](db::Conn& c, const std::string& code) -> std::optional<int64_t> {
                           db::Stmt s(c, "SELECT id FROM persons WHERE code = ?");
                           s.Bind(1, code);
                           if (!s.Step()) return std::nullopt;
                           return s.Int(0);
                         },
                         [](db::Conn& c, int64_t pid) {
                           std::vector<std::string> files;
                           db::Stmt s(c, "SELECT file FROM photos WHERE person_id = ?");
                           s.Bind(1, pid);
                           while (s.Step()) files.push_back(s.Text(0));
                           db::Stmt(c, "DELETE FROM photos WHERE person_id = ?").Bind(1, pid).Run();
                           return files;
                         },
                         [](db::Conn& c, int64_t pid) {
                           storage::ErasePersonalData(c, pid, DeletionService::kErasedName,
                                                      NowMs());
                         },
                         [this](db::Conn&, int64_t pid, const std::string& reason) {
                           told_.push_back(std::to_string(pid) + ":" + reason);
                         },
                         [this](const std::string& code, const std::vector<std::string>& files) {
                           finished_[code] = files.size();
                         }});
    return *service_;
  }
  static Principal User(const std::string& name, std::vector<std::string> perms) {
    Principal p;
    p.kind = "user";
    p.name = name;
    p.permissions = {perms.begin(), perms.end()};
    return p;
  }
  std::string NameOf(const std::string& code) {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "SELECT name FROM persons WHERE code = ?");
    s.Bind(1, code).Step();
    return s.Text(0);
  }

  fs::path dir_;
  runtime::MemorySharedState state_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<AccountService> accounts_;
  std::unique_ptr<DeletionService> service_;
  std::vector<std::string> told_;
  std::map<std::string, size_t> finished_;
};

TEST_F(DeletionServiceTest, ApprovedArchivesAreErasedByAnotherPersonOnly) {
  const auto op = User("op", {"archive.write"});
  const auto sec = User("sec", {"export.approve"});
  EXPECT_EQ(anju::testing::CodeOf([&] {
              Service().Request(op, "archives", std::vector<std::string>{"D1", "NOPE"}, {}, "x");
            }),
            ErrorCode::kNotFound);
  const json req =
      Service().Request(op, "archives", std::vector<std::string>{"D3", "D1", "D1"}, {}, "搬离");
  EXPECT_EQ(req["persons"], json::array({"D1", "D3"}));
  const int64_t id = req["id"];
  // Nothing happens before approval, and the requester cannot approve.
  EXPECT_EQ(NameOf("D1"), "名D1");
  EXPECT_EQ(
      anju::testing::CodeOf([&] { Service().Approve(id, "", User("op", {"export.approve"})); }),
      ErrorCode::kPermissionDenied);
  const json done = Service().Approve(id, "同意", sec);
  EXPECT_EQ(done["state"], "done");
  EXPECT_EQ(done["deleted"], 2);
  EXPECT_EQ(done["photos_deleted"], 2);
  EXPECT_EQ(NameOf("D1"), DeletionService::kErasedName);
  EXPECT_EQ(NameOf("D2"), "名D2");
  EXPECT_EQ(finished_.size(), 2u);
  EXPECT_EQ(told_.size(), 2u);
  EXPECT_NE(told_[0].find("moved_out"), std::string::npos);
  EXPECT_EQ(anju::testing::CodeOf([&] { Service().Approve(id, "", sec); }), ErrorCode::kConflict);
  // A viewer-like caller without export.approve sees only its own requests.
  EXPECT_EQ(Service().List(User("other", {}), 50, 0)["total"], 0);
  EXPECT_EQ(Service().List(sec, 50, 0)["total"], 1);
}

TEST_F(DeletionServiceTest, AnInterruptedDeletionIsFinishedAtTheNextStart) {
  const auto op = User("op", {"archive.write"});
  const json req = Service().Request(op, "biometrics", {}, json{{"status", "active"}}, "x");
  ASSERT_EQ(req["count"], 3);
  {
    // Approved, then the server stopped before deleting.
    auto conn = db_->Acquire();
    ASSERT_TRUE(storage::ApprovalRepo::ClaimDeletion(conn, req["id"], "sec", NowMs(), ""));
  }
  Service().ResumeUnfinished();
  {
    // The embedded database has one connection: release it before NameOf acquires it.
    auto conn = db_->Acquire();
    const auto d = storage::ApprovalRepo::Deletion(conn, req["id"]);
    EXPECT_EQ(d->state, "done");
    EXPECT_EQ(d->deleted, 3);
    db::Stmt s(conn, "SELECT COUNT(*) FROM photos");
    s.Step();
    EXPECT_EQ(s.Int(0), 0);
  }
  EXPECT_EQ(NameOf("D2"), "名D2");  // biometrics only: the archive stays
}

}  // namespace
}  // namespace anju::server
