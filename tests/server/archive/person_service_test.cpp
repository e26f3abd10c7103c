// The person service on a real archive database, without HTTP: identity data with the
// sealed ID number, consent (R1.0.3.1), move-out, credentials with the PIN's hash and its
// migration from salted SM3, accounts limited to sites (R4.2.1.1), the batch with feature
// codes and the duplicate check.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "server/archive/person_service.h"
#include "server/archive/place_service.h"
#include "server/audit/audit_log.h"
#include "server/runtime/embedded.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::testing::CodeOf;
using anju::testing::ReasonOf;
using nlohmann::json;

class PersonServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("person-service");
    clock_.Set(1'800'000'000'000);
    SetProcessClock(&clock_);
    db_ = OpenArchiveDb(dir_ / "archive.db");
    gallery_ = std::make_unique<GalleryLog>(crypto::DataKey::Generate(), "model-1");
    match::IndexOptions io;
    io.model_version = "model-1";
    io.dim = 8;
    index_ = std::make_unique<match::FeatureIndex>(io);
    blobs_ = std::make_unique<runtime::FileBlobStore>(dir_);
    persons_ = std::make_unique<PersonService>(PersonDeps{db_.get(), gallery_.get(),
                                                          crypto::DataKey::Generate(), blobs_.get(),
                                                          index_.get(), "model-1", 0.68f});
    places_ = std::make_unique<PlaceService>(*db_, *gallery_, &PersonService::ScopedId, [] {});
  }
  void TearDown() override {
    places_.reset();
    persons_.reset();
    index_.reset();
    gallery_.reset();
    db_.reset();
    SetProcessClock(nullptr);
    fs::remove_all(dir_);
  }
  // A site with one building, unit, room and household; returns {site, household}.
  std::pair<int64_t, int64_t> Tree(const std::string& name) {
    auto create = [&](const std::string& kind, const json& f) {
      return places_->Create(kind, f, "admin", {})["id"].get<int64_t>();
    };
    const int64_t site = create("sites", {{"name", name}});
    const int64_t b = create("buildings", {{"site_id", site}, {"name", "1号楼"}});
    const int64_t u = create("units", {{"building_id", b}, {"name", "1单元"}});
    const int64_t r = create("rooms", {{"unit_id", u}, {"name", "101"}});
    return {site, create("households", {{"room_id", r}, {"name", "张家"}})};
  }
  // Base64 of a unit feature of dimension 8 along AXIS (plus a little of axis 7).
  static std::string Feature(int axis) {
    std::vector<float> f(8, 0.f);
    f[axis] = 0.8f;
    f[7] += 0.6f;
    std::vector<uint8_t> raw(f.size() * sizeof(float));
    std::memcpy(raw.data(), f.data(), raw.size());
    return crypto::ToBase64(raw);
  }
  int64_t CountAudit(const std::string& action) {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "SELECT COUNT(*) FROM audit WHERE action = ?");
    s.Bind(1, action).Step();
    return s.Int(0);
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<runtime::FileBlobStore> blobs_;
  std::unique_ptr<GalleryLog> gallery_;
  std::unique_ptr<match::FeatureIndex> index_;
  std::unique_ptr<PersonService> persons_;
  std::unique_ptr<PlaceService> places_;
};

TEST_F(PersonServiceTest, IdentityDataIsSealedMaskedAndListed) {
  persons_->Create({{"code", "P1"},
                    {"name", "张三"},
                    {"id_number", "110101199001011234"},
                    {"phone", "138-0013 8000"}},
                   "admin", {});
  const json made = persons_->Create({{"name", "李四"}}, "admin", {});
  EXPECT_EQ(made["code"].get<std::string>().size(), 11u);  // "P" + 10 hex digits
  EXPECT_EQ(CodeOf([&] {
              persons_->Create({{"code", "P1"}, {"name", "x"}}, "admin", {});
            }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] {
              persons_->Create({{"code", "a b"}, {"name", "x"}}, "admin", {});
            }),
            ErrorCode::kInvalidArgument);

  json p = persons_->Get("P1", false, false, "admin", {});
  EXPECT_EQ(p["id_number"], "1101**********1234");
  EXPECT_EQ(p["moved_in_ms"], 1'800'000'000'000);
  EXPECT_EQ(p["consent_active"], false);
  EXPECT_EQ(CodeOf([&] { persons_->Get("P1", true, false, "admin", {}); }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(CountAudit("id_number_reveal"), 0);
  EXPECT_EQ(persons_->Get("P1", true, true, "admin", {})["id_number"], "110101199001011234");
  EXPECT_EQ(CountAudit("id_number_reveal"), 1);
  EXPECT_EQ(CodeOf([&] { persons_->Get("P9", false, false, "admin", {}); }), ErrorCode::kNotFound);

  persons_->Update("P1", {{"name", "张三丰"}, {"id_number", "110101199001019999"}}, "admin");
  EXPECT_EQ(persons_->Get("P1", true, true, "admin", {})["id_number"], "110101199001019999");
  const json history = persons_->History("P1", 50, 0);
  ASSERT_EQ(history["total"], 2);
  EXPECT_EQ(history["items"][1]["detail"]["id_number"], "(changed)");  // never the number

  // The phone's digits end with the query's; fewer than 4 digits is refused.
  const json found = persons_->List({"", "", "8000"}, {}, 50, 0);
  ASSERT_EQ(found["total"], 1);
  EXPECT_EQ(found["items"][0]["name"], "张三丰");
  EXPECT_EQ(found["items"][0]["features"], 0);
  EXPECT_TRUE(found["items"][0]["home"].is_null());
  EXPECT_EQ(CodeOf([&] {
              persons_->List({"", "", "8-0"}, {}, 50, 0);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(persons_->List({"李", "", ""}, {}, 50, 0)["total"], 1);
  EXPECT_EQ(persons_->List({}, {}, 50, 0)["total"], 2);
}

// The optional date of birth (the elderly_not_seen alert rule, R3.4.2.2): a real calendar day
// "YYYY-MM-DD" from 1900 up to today, shown in the whole archive only, never in the list or
// the history.
TEST_F(PersonServiceTest, BirthDateIsCheckedShownAndCleared) {
  // The clock: 2027-01-15 16:00 at UTC+8.
  for (const json& bad :
       {json("1950-02-29"), json("1950-13-01"), json("1950-04-31"), json("1950-1-01"),
        json("1950/01/01"), json("19500101xx"), json("abcd-ef-gh"), json("1899-12-31"),
        json("2027-01-16"), json(19500101), json("")}) {
    EXPECT_EQ(CodeOf([&] {
                persons_->Create({{"code", "B1"}, {"name", "x"}, {"birth_date", bad}}, "admin", {});
              }),
              ErrorCode::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(persons_->List({}, {}, 50, 0)["total"], 0);  // nothing half-created

  persons_->Create({{"code", "B1"}, {"name", "老张"}, {"birth_date", "1952-02-29"}}, "admin", {});
  persons_->Create({{"code", "B2"}, {"name", "小张"}, {"birth_date", "2027-01-15"}}, "admin", {});
  persons_->Create({{"code", "B3"}, {"name", "无"}}, "admin", {});
  EXPECT_EQ(persons_->Get("B1", false, false, "admin", {})["birth_date"], "1952-02-29");
  EXPECT_TRUE(persons_->Get("B3", false, false, "admin", {})["birth_date"].is_null());
  EXPECT_FALSE(persons_->List({}, {}, 50, 0)["items"][0].contains("birth_date"));

  EXPECT_EQ(CodeOf([&] {
              persons_->Update("B3", {{"birth_date", "1950-00-10"}}, "admin");
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_TRUE(persons_->Get("B3", false, false, "admin", {})["birth_date"].is_null());
  persons_->Update("B3", {{"birth_date", "1948-12-31"}}, "admin");
  EXPECT_EQ(persons_->Get("B3", false, false, "admin", {})["birth_date"], "1948-12-31");
  persons_->Update("B3", {{"birth_date", nullptr}}, "admin");
  EXPECT_TRUE(persons_->Get("B3", false, false, "admin", {})["birth_date"].is_null());
  const json history = persons_->History("B3", 50, 0);
  ASSERT_EQ(history["total"], 3);
  EXPECT_EQ(history["items"][1]["detail"]["birth_date"], "(changed)");  // never the date
}

TEST_F(PersonServiceTest, ConsentAndMoveOut) {
  persons_->Create({{"code", "K1"}, {"name", "小明"}, {"minor", true}}, "admin", {});
  const json consent = {{"notice_version", "v1"}, {"purpose", "门禁"}};
  EXPECT_EQ(ReasonOf([&] { persons_->GrantConsent("K1", consent, "admin"); }), "guardian_required");
  json with_guardian = consent;
  with_guardian["guardian_name"] = "王芳";
  with_guardian["guardian_relation"] = "母亲";
  persons_->GrantConsent("K1", with_guardian, "admin");
  json p = persons_->Get("K1", false, false, "admin", {});
  EXPECT_EQ(p["consent_active"], true);
  EXPECT_EQ(p["consents"][0]["operator"], "admin");

  EXPECT_EQ(persons_->WithdrawConsent("K1", json::object(), "admin"), std::make_pair(1, size_t{0}));
  EXPECT_EQ(persons_->WithdrawConsent("K1", json::object(), "admin"), std::make_pair(0, size_t{0}));
  EXPECT_EQ(persons_->Get("K1", false, false, "admin", {})["consents"][0]["withdrawn_by"], "admin");

  persons_->AddCredential("K1", {{"kind", "card"}, {"card_number", "123456"}}, "admin");
  EXPECT_EQ(persons_->MoveOut("K1", {{"note", "退租"}}, "admin"), 0u);
  p = persons_->Get("K1", false, false, "admin", {});
  EXPECT_EQ(p["status"], "moved_out");
  EXPECT_EQ(p["credentials"].size(), 0u);  // credentials go with the move-out
  EXPECT_EQ(CodeOf([&] { persons_->GrantConsent("K1", with_guardian, "admin"); }),
            ErrorCode::kConflict);
  EXPECT_EQ(persons_->Removals("K1")["all_confirmed"], true);  // no device holds the person
  EXPECT_EQ(CountAudit("move_out"), 1);
}

TEST_F(PersonServiceTest, CredentialsAndThePinHash) {
  persons_->Create({{"code", "C1"}, {"name", "赵六"}}, "admin", {});
  persons_->Create({{"code", "C2"}, {"name", "钱七"}}, "admin", {});
  persons_->AddCredential("C1", {{"kind", "card"}, {"card_number", "777"}}, "admin");
  EXPECT_EQ(CodeOf([&] {
              persons_->AddCredential("C2", {{"kind", "card"}, {"card_number", "777"}}, "admin");
            }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] {
              persons_->AddCredential("C2", {{"kind", "card"}}, "admin");
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] {
              persons_->AddCredential("C2", {{"kind", "pin"}, {"pin", "12a4"}}, "admin");
            }),
            ErrorCode::kInvalidArgument);
  const json qr = persons_->AddCredential("C2", {{"kind", "qr"}}, "admin");
  EXPECT_EQ(qr["qr_token"].get<std::string>().size(), 32u);

  const json pin = persons_->AddCredential("C1", {{"kind", "pin"}, {"pin", "2468"}}, "admin");
  {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "SELECT pin_hash FROM credentials WHERE id = ?");
    s.Bind(1, pin["id"].get<int64_t>()).Step();
    EXPECT_TRUE(s.Text(0).starts_with("scrypt$"));
  }
  EXPECT_TRUE(persons_->VerifyPin("C1", "2468"));
  EXPECT_FALSE(persons_->VerifyPin("C1", "2469"));
  EXPECT_FALSE(persons_->VerifyPin("C2", "2468"));

  // A PIN an older server stored as salted SM3 still works once and is rehashed.
  int64_t old = 0;
  {
    auto conn = db_->Acquire();
    db::Stmt s(conn,
               "INSERT INTO credentials(person_id, kind, pin_hash, created_ms) "
               "VALUES((SELECT id FROM persons WHERE code = 'C2'), 'pin', ?, 0)");
    s.Bind(1, "sm3$0011223344556677$" + crypto::Sm3Hex(std::string("0011223344556677") + "1357"))
        .Run();
    old = conn.LastInsertId();
  }
  EXPECT_FALSE(persons_->VerifyPin("C2", "1358"));
  auto stored = [&] {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "SELECT pin_hash FROM credentials WHERE id = ?");
    s.Bind(1, old).Step();
    return s.Text(0);
  };
  EXPECT_TRUE(stored().starts_with("sm3$"));  // a wrong PIN changes nothing
  EXPECT_TRUE(persons_->VerifyPin("C2", "1357"));
  EXPECT_TRUE(stored().starts_with("scrypt$"));
  EXPECT_TRUE(persons_->VerifyPin("C2", "1357"));

  persons_->DeleteCredential("C1", std::to_string(pin["id"].get<int64_t>()), "admin");
  EXPECT_EQ(CodeOf([&] {
              persons_->DeleteCredential("C1", std::to_string(pin["id"].get<int64_t>()), "admin");
            }),
            ErrorCode::kNotFound);
  EXPECT_FALSE(persons_->VerifyPin("C1", "2468"));
}

TEST_F(PersonServiceTest, AccountsLimitedToSitesCreateIntoTheirHouseholds) {
  const auto [east, east_household] = Tree("东区");
  const auto [west, west_household] = Tree("西区");
  const Scope scoped{{east}};
  EXPECT_EQ(CodeOf([&] {
              persons_->Create({{"code", "S1"}, {"name", "x"}}, "op", scoped);
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] {
              persons_->Create({{"code", "S1"}, {"name", "x"}, {"household_id", west_household}},
                               "op", scoped);
            }),
            ErrorCode::kNotFound);
  persons_->Create({{"code", "S1"}, {"name", "x"}, {"household_id", east_household}}, "op", scoped);
  persons_->Create({{"code", "S2"}, {"name", "y"}, {"household_id", west_household}}, "admin", {});
  const json mine = persons_->List({}, scoped, 50, 0);
  ASSERT_EQ(mine["total"], 1);
  EXPECT_EQ(mine["items"][0]["home"]["site"], "东区");
  EXPECT_EQ(CodeOf([&] { persons_->Batch(json::array(), false, "op", scoped); }),
            ErrorCode::kPermissionDenied);
  auto conn = db_->Acquire();
  EXPECT_EQ(CodeOf([&] { PersonService::ScopedId(conn, scoped, "S2"); }), ErrorCode::kNotFound);
  EXPECT_GT(PersonService::ScopedId(conn, scoped, "S1"), 0);
}

TEST_F(PersonServiceTest, TheBatchChecksEveryPersonAndTheDuplicateIndex) {
  const json consent = {{"notice_version", "v1"}, {"purpose", "门禁"}};
  const json batch = json::array({
      {{"code", "B1"},
       {"name", "一"},
       {"consent", consent},
       {"features", json::array({Feature(0)})}},
      {{"code", "B2"},
       {"name", "二"},
       {"consent", consent},
       {"features", json::array({Feature(0)})}},
      {{"code", "B3"}, {"name", "三"}, {"features", json::array({Feature(1)})}},
      {{"code", "B4"}, {"name", "四"}, {"consent", consent}, {"features", json::array({"AAAA"})}},
      {{"code", "B5"}, {"name", "五"}, {"access_groups", json::array({99})}},
      {{"code", "B1"}, {"name", "again"}},
      {{"code", "B6"}, {"name", "六"}},
  });
  const BatchResult r = persons_->Batch(batch, false, "admin", {});
  EXPECT_EQ(r.created, 2);
  ASSERT_EQ(r.items.size(), 7u);
  EXPECT_FALSE(r.items[0].error);
  EXPECT_EQ(r.items[1].error->reason(), "duplicate_face");  // the same face as B1
  EXPECT_EQ(r.items[2].error->reason(), "consent_required");
  EXPECT_EQ(r.items[3].error->code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.items[4].error->code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.items[5].error->code(), ErrorCode::kConflict);
  EXPECT_FALSE(r.items[6].error);
  EXPECT_EQ(persons_->Get("B1", false, false, "admin", {})["features"], 1);
  EXPECT_EQ(CountAudit("person_batch"), 1);

  // Moving out takes the feature code out of the duplicate index.
  persons_->MoveOut("B1", json::object(), "admin");
  const BatchResult again =
      persons_->Batch(json::array({{{"code", "B7"},
                                    {"name", "七"},
                                    {"consent", consent},
                                    {"features", json::array({Feature(0)})}}}),
                      false, "admin", {});
  EXPECT_EQ(again.created, 1);
  EXPECT_FALSE(again.items[0].error);
}

}  // namespace
}  // namespace anju::server
