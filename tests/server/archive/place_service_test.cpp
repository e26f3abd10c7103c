// The place service on a real archive database, without HTTP: the tree of places and its
// references, accounts limited to sites (R4.2.1.1), household members, access groups whose
// doors and members reach the devices' gallery log (docs/device-protocol.md, "Gallery sync").
#include <gtest/gtest.h>

#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "server/access/account_support.h"
#include "server/archive/place_service.h"
#include "server/devices/device_service.h"
#include "server/storage/archive_schema.h"
#include "server/storage/person_repo.h"
#include "server/storage/site_scope.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::testing::CodeOf;
using nlohmann::json;

class PlaceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("place-service");
    clock_.Set(1'800'000'000'000);
    SetProcessClock(&clock_);
    db_ = OpenArchiveDb(dir_ / "archive.db");
    gallery_ = std::make_unique<GalleryLog>(crypto::DataKey::Generate(), "model-1");
    places_ = std::make_unique<PlaceService>(
        *db_, *gallery_,
        [](db::Conn& conn, const Scope& scope, const std::string& code) {
          const auto id = storage::PersonRepo::IdByCode(conn, code);
          if (!id || !SiteScope(scope).PersonVisible(conn, *id)) NotFound("person " + code);
          return *id;
        },
        [this] { ++gallery_changes_; });
    devices_ = std::make_unique<DeviceService>(
        DeviceDeps{db_.get(), gallery_.get(), crypto::DataKey::Generate(), "", "", 3600000, {}});
  }
  void TearDown() override {
    devices_.reset();
    places_.reset();
    gallery_.reset();
    db_.reset();
    SetProcessClock(nullptr);
    fs::remove_all(dir_);
  }
  // A person row (persons are another service's; these tests need only the row).
  void AddPerson(const std::string& code) {
    auto conn = db_->Acquire();
    db::Stmt s(conn, "INSERT INTO persons(code, name, created_ms, updated_ms) VALUES(?,?,0,0)");
    s.Bind(1, code).Bind(2, "住户" + code).Run();
  }
  int64_t Create(const std::string& kind, const json& fields, const Scope& scope = {}) {
    return places_->Create(kind, fields, "admin", scope)["id"].get<int64_t>();
  }
  // A site with one building, unit, room and household; returns {site, household}.
  std::pair<int64_t, int64_t> Tree(const std::string& name) {
    const int64_t site = Create("sites", {{"name", name}});
    const int64_t b = Create("buildings", {{"site_id", site}, {"name", "1号楼"}});
    const int64_t u = Create("units", {{"building_id", b}, {"name", "1单元"}});
    const int64_t r = Create("rooms", {{"unit_id", u}, {"name", "101"}});
    return {site, Create("households", {{"room_id", r}, {"name", "张家"}})};
  }

  fs::path dir_;
  ManualClock clock_;
  std::unique_ptr<db::Db> db_;
  std::unique_ptr<GalleryLog> gallery_;
  std::unique_ptr<PlaceService> places_;
  std::unique_ptr<DeviceService> devices_;
  int gallery_changes_ = 0;
};

TEST_F(PlaceServiceTest, TheTreeKeepsItsReferences) {
  const auto [site, household] = Tree("东区");
  const json s = places_->Get("sites", site, {});
  EXPECT_EQ(s["name"], "东区");
  EXPECT_EQ(s["address"], "");  // defaults to empty
  EXPECT_EQ(places_->Get("households", household, {})["name"], "张家");
  // A parent that does not exist; a site that still has buildings; a required field nulled.
  EXPECT_EQ(CodeOf([&] {
              Create("buildings", {{"site_id", 999}, {"name", "x"}});
            }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] { places_->Delete("sites", site, "admin", {}); }), ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] {
              places_->Update("sites", site, {{"name", nullptr}}, "admin", {});
            }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(places_->Update("sites", site, {{"address", "东路 1 号"}}, "admin", {})["address"],
            "东路 1 号");
  // The parent filter of a list.
  const int64_t other = Create("sites", {{"name", "西区"}});
  Create("buildings", {{"site_id", other}, {"name", "9号楼"}});
  EXPECT_EQ(places_->List("buildings", 0, {}, 50, 0)["total"], 2);
  const json mine = places_->List("buildings", site, {}, 50, 0);
  ASSERT_EQ(mine["total"], 1);
  EXPECT_EQ(mine["items"][0]["name"], "1号楼");
  EXPECT_EQ(CodeOf([&] { places_->Get("buildings", 999, {}); }), ErrorCode::kNotFound);
}

TEST_F(PlaceServiceTest, AccountsLimitedToSitesStayInside) {
  const auto [east, east_household] = Tree("东区");
  const auto [west, west_household] = Tree("西区");
  const Scope scoped{{east}};
  EXPECT_EQ(CodeOf([&] {
              Create("sites", {{"name", "北区"}}, scoped);
            }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(CodeOf([&] {
              Create("access-groups", {{"name", "g"}}, scoped);
            }),
            ErrorCode::kPermissionDenied);
  EXPECT_EQ(places_->List("sites", 0, scoped, 50, 0)["total"], 1);
  EXPECT_EQ(places_->List("households", 0, scoped, 50, 0)["items"][0]["id"], east_household);
  EXPECT_EQ(CodeOf([&] { places_->Get("households", west_household, scoped); }),
            ErrorCode::kNotFound);
  // A building under the other site is refused as if that site did not exist.
  EXPECT_EQ(CodeOf([&] {
              Create("buildings", {{"site_id", west}, {"name", "x"}}, scoped);
            }),
            ErrorCode::kNotFound);
  EXPECT_EQ(places_->List("buildings", 0, {}, 50, 0)["total"], 2);  // rolled back
  // Moving its building to the other site: the same.
  const int64_t b = places_->List("buildings", east, {}, 50, 0)["items"][0]["id"].get<int64_t>();
  EXPECT_EQ(CodeOf([&] {
              places_->Update("buildings", b, {{"site_id", west}}, "op", scoped);
            }),
            ErrorCode::kNotFound);
  EXPECT_EQ(places_->Get("buildings", b, {})["site_id"], east);
}

TEST_F(PlaceServiceTest, HouseholdMembersAreAddedOnceAndCounted) {
  const auto [site, household] = Tree("东区");
  AddPerson("P1");
  places_->AddMember(household, "P1", "tenant", "admin", {});
  places_->AddMember(household, "P1", "family", "admin", {});  // a new role, not a new row
  const json m = places_->Members(household);
  ASSERT_EQ(m["total"], 1);
  EXPECT_EQ(m["items"][0]["role"], "family");
  EXPECT_EQ(gallery_changes_, 2);
  EXPECT_EQ(CodeOf([&] { places_->AddMember(household, "P9", "tenant", "admin", {}); }),
            ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { places_->AddMember(999, "P1", "tenant", "admin", {}); }),
            ErrorCode::kNotFound);
  places_->RemoveMember(household, "P1", "admin");
  EXPECT_EQ(CodeOf([&] { places_->RemoveMember(household, "P1", "admin"); }), ErrorCode::kNotFound);
  EXPECT_EQ(places_->Members(household)["total"], 0);
}

TEST_F(PlaceServiceTest, AccessGroupsCheckWindowsDoorsAndMembers) {
  const auto [site, household] = Tree("东区");
  AddPerson("P1");
  AddPerson("P2");
  EXPECT_EQ(CodeOf([&] {
              Create("access-groups",
                     {{"name", "g"},
                      {"windows", {{{"days", {1}}, {"start", "08:00"}, {"end", "25:00"}}}}});
            }),
            ErrorCode::kInvalidArgument);
  const int64_t g = Create("access-groups", {{"name", "住户"}});
  EXPECT_EQ(places_->Get("access-groups", g, {})["windows"], json::array());
  const NewDevice dev = devices_->Create("大门", 2, "admin", site);
  EXPECT_EQ(CodeOf([&] {
              places_->SetGroupDoors(g, {{{"device_id", dev.device_id}, {"door", 2}}}, "admin", {});
            }),
            ErrorCode::kInvalidArgument);  // the device has doors 0 and 1
  EXPECT_EQ(CodeOf([&] {
              places_->SetGroupDoors(g, {{{"device_id", "dev-none"}}}, "admin", {});
            }),
            ErrorCode::kNotFound);
  places_->SetGroupDoors(g, {{{"device_id", dev.device_id}, {"door", 1}}}, "admin", {});
  EXPECT_EQ(places_->GroupDoors(g),
            json::parse(R"([{"device_id":")" + dev.device_id + R"(","door":1}])"));
  // A scoped account may not leave the group without doors (it would leave its sites).
  EXPECT_EQ(CodeOf([&] { places_->SetGroupDoors(g, json::array(), "op", Scope{{site}}); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(places_->GroupDoors(g).size(), 1u);

  const json changed = places_->ChangeGroupMembers(g, {{"add", {"P1", "P2", "P1"}}}, "admin", {});
  EXPECT_EQ(changed["changed"], 2);
  EXPECT_EQ(changed["members"], 2);
  EXPECT_EQ(places_->ChangeGroupMembers(g, {{"remove", {"P2"}}}, "admin", {})["members"], 1);
  EXPECT_EQ(places_->GroupMembers(g, {}, 50, 0)["items"], json::array({"P1"}));
  // Deleting the group takes its members and doors with it.
  places_->Delete("access-groups", g, "admin", {});
  EXPECT_EQ(places_->GroupMembers(g, {}, 50, 0)["total"], 0);
  EXPECT_EQ(CodeOf([&] { places_->Get("access-groups", g, {}); }), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace anju::server
