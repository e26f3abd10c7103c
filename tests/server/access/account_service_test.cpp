// The account service on a real archive database, without HTTP: lockouts, API tokens and
// their expiry, co-signed changes to a security administrator, the risk counters
// (R4.2.1.1, R4.2.2.1, docs/security.md).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/totp.h"
#include "server/access/account_service.h"
#include "server/common/detailed_error.h"
#include "server/runtime/embedded.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

class AccountServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("account-service");
    clock_.Set(1'800'000'000'000);
    SetProcessClock(&clock_);
    db_ = OpenArchiveDb(dir_ / "archive.db");
    SecurityPolicy policy;
    policy.views_per_hour_alarm = 5;
    accounts_ = std::make_unique<AccountService>(*db_, crypto::DataKey::Generate(), policy, state_);
    for (const auto& [user, pw] : accounts_->Bootstrap()) passwords_[user] = pw;
  }
  void TearDown() override {
    accounts_.reset();
    db_.reset();
    SetProcessClock(nullptr);
    fs::remove_all(dir_);
  }
  // A principal of USER's fresh session (password changed; TOTP not needed here).
  Principal Session(const std::string& user) {
    const auto r = accounts_->Login(user, passwords_.at(user), "", "10.0.0.1");
    return accounts_->Authenticate(r.token, "10.0.0.1");
  }
  ErrorCode CodeOf(const std::function<void()>& f) { return anju::testing::CodeOf(f); }

  fs::path dir_;
  ManualClock clock_;
  runtime::MemorySharedState state_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<AccountService> accounts_;
  std::map<std::string, std::string> passwords_;
};

TEST_F(AccountServiceTest, BootstrapOnceAndOneTimePasswordsMustChange) {
  ASSERT_EQ(passwords_.size(), 3u);
  EXPECT_TRUE(accounts_->Bootstrap().empty());
  const auto p = Session("admin");
  EXPECT_EQ(p.roles, std::vector<std::string>{"sysadmin"});
  EXPECT_EQ(p.restriction, "password_change_required");
}

TEST_F(AccountServiceTest, FailuresLockAccountsUnknownNamesAndAddresses) {
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(CodeOf([&] { accounts_->Login("admin", "Wrong-Pass-1", "", "10.0.0.2"); }),
              ErrorCode::kUnauthenticated);
  try {
    accounts_->Login("admin", passwords_["admin"], "", "10.0.0.2");
    FAIL() << "a locked account logged in";
  } catch (const DetailedError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kLocked);
    EXPECT_EQ(e.extra()["until_ms"], clock_.NowMs() + 30 * 60 * 1000);
  }
  // An unknown name answers exactly like an account: 401 five times, then 423.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(CodeOf([&] { accounts_->Login("nobody", "Wrong-Pass-1", "", "10.0.0.3"); }),
              ErrorCode::kUnauthenticated);
  EXPECT_EQ(CodeOf([&] { accounts_->Login("nobody", "Wrong-Pass-1", "", "10.0.0.3"); }),
            ErrorCode::kLocked);
  // The lockout ends with its time.
  clock_.Advance(31 * 60 * 1000);
  EXPECT_NO_THROW(accounts_->Login("admin", passwords_["admin"], "", "10.0.0.2"));
  // Twenty failures from one address lock the address, whatever the names; a success in
  // between does not reset the count.
  auto ghost = [&](int i) {
    return CodeOf(
        [&] { accounts_->Login("ghost" + std::to_string(i), "x-Passw0rd", "", "10.0.0.4"); });
  };
  for (int i = 0; i < 10; ++i) EXPECT_EQ(ghost(i), ErrorCode::kUnauthenticated) << i;
  EXPECT_NO_THROW(accounts_->Login("admin", passwords_["admin"], "", "10.0.0.4"));
  for (int i = 10; i < 20; ++i) EXPECT_EQ(ghost(i), ErrorCode::kUnauthenticated) << i;
  EXPECT_EQ(CodeOf([&] { accounts_->Login("admin", passwords_["admin"], "", "10.0.0.4"); }),
            ErrorCode::kLocked);
}

TEST_F(AccountServiceTest, TokensAreIntegrationOnlyAndExpire) {
  // The security administrator's session (its one-time password is enough to mint here:
  // the restriction is enforced by the router, not by the service).
  const auto sec = Session("secadmin");
  EXPECT_EQ(CodeOf([&] { accounts_->CreateToken("x", {"sysadmin"}, {}, 30, sec); }),
            ErrorCode::kInvalidArgument);
  const json made = accounts_->CreateToken("pms", {"operator"}, {}, 30, sec);
  const auto p = accounts_->Authenticate(made["token"], "10.0.0.9");
  EXPECT_EQ(p.kind, "token");
  EXPECT_EQ(p.creator, "secadmin");
  EXPECT_TRUE(p.Can("archive.read"));
  EXPECT_FALSE(p.Can("export.approve"));
  // A token cannot make another one, nor manage accounts.
  EXPECT_EQ(CodeOf([&] { accounts_->CreateToken("y", {"viewer"}, {}, 30, p); }),
            ErrorCode::kPermissionDenied);
  clock_.Advance(int64_t(31) * 24 * 3600 * 1000);
  try {
    accounts_->Authenticate(made["token"], "10.0.0.9");
    FAIL() << "an expired token was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated);
    EXPECT_EQ(e.reason(), "token_expired");
  }
}

TEST_F(AccountServiceTest, ASecurityAdministratorsPasswordNeedsASecondPerson) {
  const auto sec = Session("secadmin");
  accounts_->CreateUser("sec2", "", "Fi-1stPass-9", Session("admin"));
  const json grant = accounts_->SetRoles("sec2", {"secadmin"}, {}, sec);
  ASSERT_TRUE(grant.contains("request"));
  const int64_t gid = grant["request"]["id"];
  // Neither the requester nor the account changed decides it.
  EXPECT_EQ(CodeOf([&] { accounts_->DecideAdminChange(gid, true, "", sec); }),
            ErrorCode::kPermissionDenied);
  const json done = accounts_->DecideAdminChange(gid, true, "ok", Session("auditadmin"));
  EXPECT_EQ(done["state"], "approved");
  EXPECT_EQ(CodeOf([&] { accounts_->DecideAdminChange(gid, true, "", Session("admin")); }),
            ErrorCode::kConflict);
  // The system administrator cannot touch an administrator's credentials at all.
  EXPECT_EQ(CodeOf([&] {
              accounts_->UpdateUser("sec2", {{"password", "Taken-0ver-Pass"}}, Session("admin"));
            }),
            ErrorCode::kPermissionDenied);
  // The security administrator's reset of another one waits, its password kept as a hash.
  const json pending = accounts_->UpdateUser("sec2", {{"password", "Reset-by-Sec-1"}}, sec);
  ASSERT_TRUE(pending.contains("request"));
  EXPECT_EQ(pending["request"]["change"]["password"], "***");
  EXPECT_EQ(CodeOf([&] { accounts_->Login("sec2", "Reset-by-Sec-1", "", "10.0.0.5"); }),
            ErrorCode::kUnauthenticated);
  accounts_->DecideAdminChange(pending["request"]["id"], true, "", Session("admin"));
  const auto r = accounts_->Login("sec2", "Reset-by-Sec-1", "", "10.0.0.5");
  EXPECT_TRUE(r.user["must_change_password"].get<bool>());
}

TEST_F(AccountServiceTest, RiskCountersCountDistinctItemsAndTokensOfOneCreatorTogether) {
  const auto sec = Session("secadmin");
  const std::string ta = accounts_->CreateToken("a", {"operator"}, {}, 30, sec)["token"];
  const std::string tb = accounts_->CreateToken("b", {"operator"}, {}, 30, sec)["token"];
  const auto a = accounts_->Authenticate(ta, "10.0.0.6");
  const auto b = accounts_->Authenticate(tb, "10.0.0.6");
  EXPECT_FALSE(accounts_->CountViews(a, 3));
  EXPECT_TRUE(accounts_->CountViews(b, 2));  // 5 between them: both tokens blocked
  for (const auto& t : {ta, tb}) {
    try {
      accounts_->Authenticate(t, "10.0.0.6");
      FAIL() << "a blocked token was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kLocked);
      EXPECT_EQ(e.reason(), "blocked_for_review");
    }
  }
  // The creator's own account is not blocked.
  EXPECT_NO_THROW(Session("secadmin"));
  // A list shown again is not counted again; new items are.
  const auto op = Session("auditadmin");
  EXPECT_FALSE(accounts_->CountDistinct(op, "person", {"P1", "P2", "P3"}));
  EXPECT_FALSE(accounts_->CountDistinct(op, "person", {"P1", "P2", "P3"}));
  EXPECT_FALSE(accounts_->CountDistinct(op, "thumb", {"/photos/1"}));
  EXPECT_TRUE(accounts_->CountDistinct(op, "person", {"P3", "P4"}));  // the 5th distinct read
}

}  // namespace
}  // namespace anju::server
