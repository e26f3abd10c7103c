// The archive's repositories (storage/place_repo, person_repo, photo_repo, device_repo,
// gallery_repo, account_repo, audit_repo, approval_repo, settings_repo, site_thresholds_repo,
// alert_repo's tenants, site_scope) on both backends of the database seam: a real SQLite
// file and a real PostgreSQL 15 the test starts itself (db/local_postgres.h), each with its
// dialect's migrations (storage/archive_schema.h). Every statement the repositories run is
// reached at least once, so one outside the portable subset (docs/storage.md) fails here on
// PostgreSQL; the answers must be the same on both.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "backend_test.h"
#include "core/error.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "db/postgres.h"
#include "server/archive/place_service.h"
#include "server/audit/audit_log.h"
#include "server/storage/account_repo.h"
#include "server/storage/alert_repo.h"
#include "server/storage/approval_repo.h"
#include "server/storage/archive_schema.h"
#include "server/storage/audit_repo.h"
#include "server/storage/device_repo.h"
#include "server/storage/gallery_repo.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "server/storage/place_repo.h"
#include "server/storage/settings_repo.h"
#include "server/storage/site_scope.h"
#include "server/storage/site_thresholds_repo.h"
#include "testing.h"

namespace anju::server::storage {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const PlaceTable& Table(size_t i) {
  return PlaceKinds().at(i).table;  // sites, buildings, units, rooms, households, groups
}

// Runs FN and returns the reason of the anju::Error it throws ("" when it throws none).
template <typename F>
std::string ErrorReason(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.reason().empty() ? "error" : e.reason();
  }
  return "";
}

class ArchiveReposTest : public BackendTest {
 protected:
  void SetUp() override {
    Open(
        "archive", [](const fs::path& f) { return OpenArchiveDb(f); },
        [](const std::string& url) { return OpenArchivePostgres(url); });
  }

  // Site → building → unit → room → household; returns the household's id.
  struct Home {
    int64_t site, building, unit, room, household;
  };
  Home MakeHome(db::Conn& c, const std::string& name) {
    Home h{};
    h.site = PlaceRepo::Insert(c, Table(0), {{"name", name}, {"address", "路 1"}}, 100);
    h.building = PlaceRepo::Insert(c, Table(1), {{"site_id", h.site}, {"name", "B1"}}, 101);
    h.unit = PlaceRepo::Insert(c, Table(2), {{"building_id", h.building}, {"name", "U1"}}, 102);
    h.room = PlaceRepo::Insert(c, Table(3), {{"unit_id", h.unit}, {"name", "101"}}, 103);
    h.household = PlaceRepo::Insert(c, Table(4), {{"room_id", h.room}, {"name", "家"}}, 104);
    return h;
  }
  int64_t MakePerson(db::Conn& c, const std::string& code, const std::string& name,
                     const std::string& phone = "") {
    NewPersonRow p;
    p.code = code;
    p.name = name;
    p.phone = phone;
    p.moved_in_ms = 50;
    p.now_ms = 60;
    return PersonRepo::Insert(c, p);
  }
};

TEST_P(ArchiveReposTest, BothDialectsReachTheSameSchemaVersion) {
  EXPECT_EQ(db_->schema_version(), int(ArchiveMigrations().size()));
  EXPECT_EQ(ArchiveSchema().sqlite.size(), ArchiveSchema().postgres.size());
}

TEST_P(ArchiveReposTest, PlacesHouseholdsAndAccessGroups) {
  auto c = db_->Acquire();
  const Home a = MakeHome(c, "甲小区");
  const Home b = MakeHome(c, "乙小区");
  EXPECT_GT(b.site, a.site);
  auto site = PlaceRepo::Get(c, Table(0), a.site);
  ASSERT_TRUE(site);
  EXPECT_EQ((*site)["name"], "甲小区");
  EXPECT_EQ((*site)["created_ms"], 100);
  EXPECT_FALSE(PlaceRepo::Get(c, Table(0), 999));

  const SiteScope all{std::vector<int64_t>{}};
  const SiteScope only_a{std::vector<int64_t>{a.site}};
  // A table without a parent column, then one with it (0 = every parent).
  auto [sites, n_sites] = PlaceRepo::List(c, Table(0), 0, all, 10, 0);
  EXPECT_EQ(n_sites, 2);
  ASSERT_EQ(sites.size(), 2u);
  EXPECT_EQ(sites[1]["id"], b.site);
  EXPECT_EQ(PlaceRepo::List(c, Table(0), 0, only_a, 10, 0).second, 1);
  EXPECT_EQ(PlaceRepo::List(c, Table(0), 0, all, 1, 1).first.at(0)["id"], b.site);
  EXPECT_EQ(PlaceRepo::List(c, Table(1), a.site, all, 10, 0).second, 1);
  EXPECT_EQ(PlaceRepo::List(c, Table(1), 0, all, 10, 0).second, 2);
  EXPECT_EQ(PlaceRepo::List(c, Table(4), 0, only_a, 10, 0).second, 1);

  PlaceRepo::Set(c, Table(0), Table(0).columns.at(0), a.site, "甲");
  EXPECT_EQ((*PlaceRepo::Get(c, Table(0), a.site))["name"], "甲");
  const int64_t spare = PlaceRepo::Insert(c, Table(4), {{"room_id", nullptr}, {"name", "x"}}, 5);
  EXPECT_TRUE((*PlaceRepo::Get(c, Table(4), spare))["room_id"].is_null());
  PlaceRepo::Delete(c, Table(4), spare);
  EXPECT_FALSE(PlaceRepo::HouseholdExists(c, spare));
  EXPECT_TRUE(PlaceRepo::HouseholdExists(c, a.household));

  const int64_t p1 = MakePerson(c, "P1", "张三");
  const int64_t p2 = MakePerson(c, "P2", "李四");
  PlaceRepo::PutHouseholdMember(c, a.household, p1, "family", 200);
  PlaceRepo::PutHouseholdMember(c, a.household, p1, "tenant", 300);  // the role changes
  PlaceRepo::PutHouseholdMember(c, a.household, p2, "family", 300);
  auto members = PlaceRepo::HouseholdMembers(c, a.household);
  ASSERT_EQ(members.size(), 2u);
  EXPECT_EQ(members[0].person, "P1");
  EXPECT_EQ(members[0].role, "tenant");
  EXPECT_EQ(members[0].since_ms, 200);
  EXPECT_TRUE(PlaceRepo::RemoveHouseholdMember(c, a.household, p2));
  EXPECT_FALSE(PlaceRepo::RemoveHouseholdMember(c, a.household, p2));

  // Access groups: a group is in a scope when all its doors are devices of its sites.
  DeviceRepo::Insert(c, "D-A", "gate A", 2, 100, a.site);
  DeviceRepo::Insert(c, "D-B", "gate B", 1, 100, b.site);
  const int64_t g = PlaceRepo::Insert(
      c, Table(5), {{"name", "residents"}, {"windows", json::array()}, {"open_ms", 0}}, 100);
  EXPECT_TRUE(PlaceRepo::GroupExists(c, g));
  EXPECT_FALSE(PlaceRepo::GroupExists(c, g + 1));
  EXPECT_TRUE((*PlaceRepo::Get(c, Table(5), g))["windows"].is_array());
  EXPECT_TRUE(PlaceRepo::AddGroupMember(c, g, p1));
  EXPECT_FALSE(PlaceRepo::AddGroupMember(c, g, p1)) << "already a member";
  EXPECT_TRUE(PlaceRepo::AddGroupMember(c, g, p2));
  EXPECT_EQ(PlaceRepo::CountGroupMembers(c, g), 2);
  EXPECT_EQ(PlaceRepo::GroupMembers(c, g).size(), 2u);
  PlaceRepo::AddGroupDoor(c, g, "D-A", 1);
  PlaceRepo::AddGroupDoor(c, g, "D-A", 1);  // once
  PlaceRepo::AddGroupDoor(c, g, "D-A", 2);
  EXPECT_EQ(PlaceRepo::GroupDoors(c, g),
            (std::vector<std::pair<std::string, int64_t>>{{"D-A", 1}, {"D-A", 2}}));
  // P1 lives at site A, P2 nowhere: a scoped account sees P1 only.
  auto [codes, n_codes] = PlaceRepo::GroupMemberCodes(c, g, only_a, 10, 0);
  EXPECT_EQ(codes, (std::vector<std::string>{"P1"}));
  EXPECT_EQ(n_codes, 1);
  EXPECT_EQ(PlaceRepo::GroupMemberCodes(c, g, all, 10, 0).second, 2);
  EXPECT_EQ(PlaceRepo::List(c, Table(5), 0, only_a, 10, 0).second, 1);
  EXPECT_EQ(PlaceRepo::List(c, Table(5), 0, SiteScope{std::vector<int64_t>{b.site}}, 10, 0).second,
            0);

  // The site scope's checks.
  EXPECT_TRUE(only_a.GroupVisible(c, g));
  EXPECT_TRUE(only_a.PersonVisible(c, p1));
  EXPECT_FALSE(only_a.PersonVisible(c, p2));
  EXPECT_TRUE(only_a.PersonCodeVisible(c, "P1"));
  EXPECT_TRUE(only_a.HouseholdVisible(c, a.household));
  EXPECT_FALSE(only_a.HouseholdVisible(c, b.household));
  EXPECT_TRUE(only_a.RowVisible(c, "units", a.unit));
  EXPECT_FALSE(only_a.RowVisible(c, "rooms", b.room));
  EXPECT_TRUE(only_a.DeviceVisible(c, "D-A"));
  EXPECT_FALSE(only_a.DeviceVisible(c, "D-B"));
  EXPECT_EQ(*only_a.Devices(c), (std::vector<std::string>{"D-A"}));
  EXPECT_EQ(*only_a.Buildings(c), (std::vector<int64_t>{a.building}));
  const int64_t imp = ImportRepo::Insert(c, 100, "alice", 3);
  EXPECT_TRUE(only_a.ImportVisible(c, std::to_string(imp), "alice"));
  EXPECT_FALSE(only_a.ImportVisible(c, std::to_string(imp), "bob"));
  EXPECT_FALSE(only_a.ImportVisible(c, "not-a-number", "alice"));

  EXPECT_TRUE(PlaceRepo::RemoveGroupMember(c, g, p2));
  EXPECT_FALSE(PlaceRepo::RemoveGroupMember(c, g, p2));
  PlaceRepo::ClearGroupDoors(c, g);
  EXPECT_TRUE(PlaceRepo::GroupDoors(c, g).empty());
  // Deleting a group takes its members along (ON DELETE CASCADE on both).
  PlaceRepo::Delete(c, Table(5), g);
  EXPECT_EQ(PlaceRepo::CountGroupMembers(c, g), 0);
  // A foreign key refuses a building of a missing site, the same way on both.
  EXPECT_EQ(ErrorReason([&] {
              PlaceRepo::Insert(c, Table(1), {{"site_id", 999}, {"name", "x"}}, 1);
            }),
            "constraint");
}

TEST_P(ArchiveReposTest, PersonsConsentsCredentialsAndHistory) {
  auto c = db_->Acquire();
  const Home home = MakeHome(c, "甲小区");
  const int64_t p1 = MakePerson(c, "AB-001", "Zhang San", "138-0013 8000");
  const int64_t p2 = MakePerson(c, "CD-002", "李四", "+86 139 0000 1111");
  EXPECT_EQ(p2, p1 + 1);
  EXPECT_EQ(PersonRepo::IdByCode(c, "AB-001"), p1);
  EXPECT_FALSE(PersonRepo::IdByCode(c, "nobody"));
  EXPECT_EQ(PersonRepo::CountAll(c), 2);
  // A duplicate code is refused by the unique constraint on both.
  EXPECT_EQ(ErrorReason([&] { MakePerson(c, "AB-001", "again"); }), "constraint");

  PersonRepo::SetBlob(c, p1, "id_number_sealed", {0, 1, 2, 0}, 70);
  PersonRepo::SetText(c, p1, "phone", "138-0013 8000", 71);
  PersonRepo::SetInt(c, p1, "open_ms", 3000, 72);
  PersonRepo::SetInt(c, p1, "minor", 1, 73);
  auto row = PersonRepo::Get(c, "AB-001");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->id, p1);
  EXPECT_EQ(row->open_ms, 3000);
  EXPECT_TRUE(row->minor);
  EXPECT_EQ(row->moved_in_ms, 50);
  EXPECT_FALSE(row->moved_out_ms);
  EXPECT_EQ(row->updated_ms, 73);
  EXPECT_EQ(row->id_number_sealed, (std::vector<uint8_t>{0, 1, 2, 0}));
  EXPECT_EQ(PersonRepo::GetById(c, p2)->code, "CD-002");
  EXPECT_FALSE(PersonRepo::GetById(c, p2)->id_number_sealed);

  // Search: the text in code or name ignoring ASCII case, the phone by its digits' suffix.
  const SiteScope all{std::vector<int64_t>{}};
  auto count = [&](const std::string& q, const std::string& status, const std::string& phone) {
    return PersonRepo::Count(c, {q, status, phone}, all);
  };
  EXPECT_EQ(count("", "", ""), 2);
  EXPECT_EQ(count("ab-0", "", ""), 1);
  EXPECT_EQ(count("zhang", "", ""), 1);
  EXPECT_EQ(count("李", "", ""), 1);
  EXPECT_EQ(count("0", "active", ""), 2);
  EXPECT_EQ(count("", "moved_out", ""), 0);
  EXPECT_EQ(count("", "", "99138000"), 0);
  EXPECT_EQ(count("", "", "0138000"), 1);
  EXPECT_EQ(count("", "", "1111"), 1);
  EXPECT_EQ(count("a\\b", "", ""), 0);  // a backslash is itself on both
  auto list = PersonRepo::List(c, {"", "active", ""}, all, 1, 1);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].code, "CD-002");

  // Households, groups, the list's faces and homes.
  PersonRepo::AddToHousehold(c, home.household, p1, "tenant", 80, false);
  PersonRepo::AddToHousehold(c, home.household, p1, "family", 90, true);  // kept as it was
  EXPECT_EQ(
      ErrorReason([&] { PersonRepo::AddToHousehold(c, home.household, p1, "family", 90, false); }),
      "constraint");
  auto households = PersonRepo::Households(c, p1);
  ASSERT_EQ(households.size(), 1u);
  EXPECT_EQ(households[0]["role"], "tenant");
  const int64_t g = PlaceRepo::Insert(
      c, Table(5), {{"name", "g"}, {"windows", json::array()}, {"open_ms", 0}}, 1);
  PersonRepo::AddToGroup(c, g, p1);
  PersonRepo::AddToGroup(c, g, p1);
  EXPECT_EQ(PersonRepo::AccessGroups(c, p1, all).size(), 1u);
  const int64_t photo_a = PhotoRepo::InsertPhoto(c, p1, "a.jpg", 10, "{}", 100, "op");
  const int64_t photo_b = PhotoRepo::InsertPhoto(c, p1, "b.jpg", 10, "{}", 101, "op");
  PhotoRepo::InsertFeature(c, p1, photo_a, "m1", std::vector<uint8_t>{1}, 100);
  json items = json::array({json::object(), json::object()});
  PersonRepo::AddFaceAndHome(c, items, {p1, p2});
  EXPECT_EQ(items[0]["features"], 1);
  EXPECT_EQ(items[0]["photos"], 2);
  EXPECT_EQ(items[0]["photo_id"], photo_a) << "a photo with a feature before a newer one without";
  EXPECT_NE(items[0]["photo_id"], photo_b);
  EXPECT_EQ(items[0]["home"]["site"], "甲小区");
  EXPECT_TRUE(items[1]["home"].is_null());
  EXPECT_EQ(items[1]["photos"], 0);

  // Consents.
  EXPECT_FALSE(PersonRepo::EnrolStateOf(c, "AB-001")->consent);
  const int64_t consent =
      PersonRepo::InsertConsent(c, p1, {"v1", "access", 100, "op", "", "guardian", "mother"});
  EXPECT_GT(consent, 0);
  EXPECT_TRUE(PersonRepo::EnrolStateOf(c, "AB-001")->consent);
  EXPECT_FALSE(PersonRepo::EnrolStateOf(c, "nobody"));
  EXPECT_EQ(PersonRepo::WithdrawConsents(c, p1, 200, "op"), 1);
  EXPECT_EQ(PersonRepo::WithdrawConsents(c, p1, 201, "op"), 0);
  auto consents = PersonRepo::Consents(c, p1);
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_EQ(consents[0]["withdrawn_ms"], 200);
  EXPECT_EQ(consents[0]["guardian_relation"], "mother");

  // Credentials: card numbers are unique where they are set.
  CredentialRow card{"card", "0001", std::nullopt, std::nullopt, std::nullopt, std::nullopt, 100};
  const int64_t cred = PersonRepo::InsertCredential(c, p1, card);
  EXPECT_EQ(ErrorReason([&] { PersonRepo::InsertCredential(c, p2, card); }), "constraint");
  CredentialRow pin{"pin", std::nullopt, "h1", std::nullopt, 50, 500, 100};
  const int64_t pin_id = PersonRepo::InsertCredential(c, p1, pin);
  PersonRepo::InsertCredential(c, p2, pin);
  EXPECT_EQ(PersonRepo::PinHashes(c, p1, 100),
            (std::vector<std::pair<int64_t, std::string>>{{pin_id, "h1"}}));
  EXPECT_TRUE(PersonRepo::PinHashes(c, p1, 500).empty()) << "expired";
  PersonRepo::SetPinHash(c, pin_id, "h2");
  EXPECT_EQ(PersonRepo::PinHashes(c, p1, 100).at(0).second, "h2");
  auto creds = PersonRepo::Credentials(c, p1);
  ASSERT_EQ(creds.size(), 2u);
  EXPECT_EQ(creds[0]["card_number"], "0001");
  EXPECT_TRUE(creds[1]["card_number"].is_null());
  EXPECT_EQ(creds[1]["valid_until_ms"], 500);
  EXPECT_FALSE(PersonRepo::DeleteCredential(c, "x1", p1));
  EXPECT_FALSE(PersonRepo::DeleteCredential(c, std::to_string(cred), p2));
  EXPECT_TRUE(PersonRepo::DeleteCredential(c, std::to_string(cred), p1));

  // History and the removals queued to devices.
  AuditRepo::InsertHistory(c, p1, "move_in", R"({"room":"101"})", "op", 100);
  AuditRepo::InsertHistory(c, p1, "edit", "{}", "op", 110);
  EXPECT_EQ(PersonRepo::CountHistory(c, p1), 2);
  auto history = PersonRepo::History(c, p1, 1, 1);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0]["action"], "edit");
  DeviceRepo::Insert(c, "D1", "gate", 1, 100, std::nullopt);
  GalleryRepo::AppendRemoval(c, "D1", "AB-001", 4, "moved_out", 120);
  auto removals = PersonRepo::Removals(c, "AB-001");
  ASSERT_EQ(removals.size(), 1u);
  EXPECT_EQ(removals[0]["device_name"], "gate");
  EXPECT_TRUE(removals[0]["confirmed_ms"].is_null());

  PersonRepo::MoveOut(c, p1, 900);
  EXPECT_EQ(PersonRepo::NameAndStatus(c, "AB-001")->second, "moved_out");
  EXPECT_EQ(PersonRepo::Get(c, "AB-001")->moved_out_ms, 900);
  EXPECT_TRUE(PersonRepo::Credentials(c, p1).empty());
  EXPECT_TRUE(PersonRepo::Households(c, p1).empty());
  EXPECT_TRUE(PersonRepo::AccessGroups(c, p1, all).empty());
  EXPECT_EQ(count("", "moved_out", ""), 1);
}

TEST_P(ArchiveReposTest, PhotosFeaturesAndImports) {
  auto c = db_->Acquire();
  const int64_t p = MakePerson(c, "P1", "张三");
  const int64_t ph =
      PhotoRepo::InsertPhoto(c, p, "photos/1.jpg.sealed", 1234, R"({"q":1})", 10, "op");
  EXPECT_EQ(PhotoRepo::Photo(c, std::to_string(ph), p),
            (std::pair<int64_t, std::string>{ph, "photos/1.jpg.sealed"}));
  EXPECT_FALSE(PhotoRepo::Photo(c, std::to_string(ph), p + 1));
  EXPECT_FALSE(PhotoRepo::Photo(c, "1; DROP", p));
  const std::vector<uint8_t> sealed{0, 255, 7, 0};
  const int64_t f1 = PhotoRepo::InsertFeature(c, p, ph, "m1", sealed, 11);
  const int64_t f2 = PhotoRepo::InsertFeature(c, p, std::nullopt, "m2", sealed, 12);
  EXPECT_EQ(f2, f1 + 1);
  EXPECT_EQ(PhotoRepo::CountFeatures(c, p), 2);
  auto photos = PhotoRepo::Photos(c, p);
  ASSERT_EQ(photos.size(), 1u);
  EXPECT_EQ(photos[0]["template"], "t-" + std::to_string(f1));
  EXPECT_EQ(photos[0]["quality"]["q"], 1);
  EXPECT_EQ(PhotoRepo::PhotoFiles(c, p), (std::vector<std::string>{"photos/1.jpg.sealed"}));
  int seen = 0;
  PhotoRepo::ForEachFeature(c, "m1", [&](int64_t id, const std::string& code, auto bytes) {
    EXPECT_EQ(id, f1);
    EXPECT_EQ(code, "P1");
    EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.end()), sealed);
    ++seen;
  });
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(PhotoRepo::DeletePhoto(c, ph), (std::vector<int64_t>{f1}));
  EXPECT_EQ(PhotoRepo::CountFeatures(c, p), 1);
  PhotoRepo::DeleteBiometrics(c, p);
  EXPECT_EQ(PhotoRepo::CountFeatures(c, p), 0);

  const int64_t imp = ImportRepo::Insert(c, 100, "alice", 3);
  ImportRepo::Save(c, imp, "running", 1, R"([{"row":1}])", std::nullopt);
  auto got = ImportRepo::Get(c, std::to_string(imp));
  ASSERT_TRUE(got);
  EXPECT_EQ((*got)["done"], 1);
  EXPECT_TRUE((*got)["finished_ms"].is_null());
  ImportRepo::Save(c, imp, "done", 3, "[]", 200);
  EXPECT_EQ((*ImportRepo::Get(c, std::to_string(imp)))["finished_ms"], 200);
  EXPECT_FALSE(ImportRepo::Get(c, "abc"));
  EXPECT_FALSE(ImportRepo::Get(c, std::to_string(imp + 1)));
}

TEST_P(ArchiveReposTest, DevicesCommandsAndTheGalleryLog) {
  auto c = db_->Acquire();
  const Home home = MakeHome(c, "甲小区");
  DeviceRepo::Insert(c, "D1", "gate", 2, 100, std::nullopt);
  DeviceRepo::Insert(c, "D2", "side", 1, 101, home.site);
  EXPECT_TRUE(DeviceRepo::Exists(c, "D1"));
  EXPECT_FALSE(DeviceRepo::Exists(c, "D9"));
  EXPECT_EQ(DeviceRepo::Status(c, "D1"), "pending");
  EXPECT_EQ(DeviceRepo::Doors(c, "D1"), 2);
  EXPECT_EQ(DeviceRepo::Get(c, "D2")->site_name, "甲小区");
  EXPECT_FALSE(DeviceRepo::Get(c, "D1")->site_name);
  EXPECT_TRUE(DeviceRepo::SiteExists(c, home.site));
  EXPECT_FALSE(DeviceRepo::SiteExists(c, home.site + 100));
  const SiteScope all{std::vector<int64_t>{}};
  const SiteScope scoped{std::vector<int64_t>{home.site}};
  EXPECT_EQ(DeviceRepo::Count(c, all), 2);
  EXPECT_EQ(DeviceRepo::Count(c, scoped), 1);
  auto listed = DeviceRepo::List(c, all, 1, 1);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, "D2");
  DeviceRepo::SetSite(c, "D1", home.site);
  DeviceRepo::SetName(c, "D1", "front gate");
  EXPECT_EQ(DeviceRepo::List(c, scoped, 10, 0).size(), 2u);

  // Registration keeps the larger door count and, given no name, the old one.
  Registration r{"PEM", {9, 0, 9}, "1.2", "m1", "", 1, 500};
  DeviceRepo::Register(c, "D1", r);
  auto d1 = DeviceRepo::Get(c, "D1");
  EXPECT_EQ(d1->status, "active");
  EXPECT_EQ(d1->doors, 2);
  EXPECT_EQ(d1->name, "front gate");
  EXPECT_EQ(d1->registered_ms, 500);
  r.doors = 4;
  r.name = "north gate";
  DeviceRepo::Register(c, "D1", r);
  EXPECT_EQ(DeviceRepo::Doors(c, "D1"), 4);
  EXPECT_EQ(DeviceRepo::Get(c, "D1")->name, "north gate");
  EXPECT_EQ(DeviceRepo::CountActive(c), 1);
  auto keys = DeviceRepo::Keys(c, "D1");
  ASSERT_TRUE(keys);
  EXPECT_EQ(keys->data_key_sealed, (std::vector<uint8_t>{9, 0, 9}));
  EXPECT_FALSE(DeviceRepo::Keys(c, "D2")) << "not registered";
  DeviceRepo::Touch(c, "D1", 600);
  EXPECT_EQ(DeviceRepo::Get(c, "D1")->last_seen_ms, 600);
  DeviceRepo::Heartbeat(c, "D1", 700, R"({"cpu":1})", std::nullopt);
  EXPECT_EQ(DeviceRepo::Get(c, "D1")->software_version, "1.2");
  DeviceRepo::Heartbeat(c, "D1", 701, "{}", std::string("1.3"));
  EXPECT_EQ(DeviceRepo::Get(c, "D1")->software_version, "1.3");

  DeviceRepo::InsertCode(c, "hash", "D2", 1000);
  EXPECT_FALSE(DeviceRepo::Code(c, "hash")->used_ms);
  DeviceRepo::UseCode(c, "hash", 900);
  EXPECT_EQ(DeviceRepo::Code(c, "hash")->used_ms, 900);
  DeviceRepo::InsertCode(c, "hash2", "D2", 1000);
  DeviceRepo::UseCodesOf(c, "D2", 950);
  EXPECT_EQ(DeviceRepo::Code(c, "hash2")->used_ms, 950);
  EXPECT_FALSE(DeviceRepo::Code(c, "none"));

  const int64_t cmd1 = DeviceRepo::InsertCommand(c, "D1", R"({"op":"open"})", 100, "alice");
  const int64_t cmd2 = DeviceRepo::InsertCommand(c, "D1", R"({"op":"sync"})", 101, "alice");
  EXPECT_EQ(cmd2, cmd1 + 1);
  EXPECT_EQ(DeviceRepo::PendingCommands(c, "D1"), 2);
  EXPECT_EQ(DeviceRepo::Unacked(c, "D1", 1).at(0).id, cmd1);
  EXPECT_FALSE(DeviceRepo::Ack(c, "open", "D1", 200));
  EXPECT_FALSE(DeviceRepo::Ack(c, std::to_string(cmd1), "D2", 200));
  EXPECT_TRUE(DeviceRepo::Ack(c, std::to_string(cmd1), "D1", 200));
  EXPECT_FALSE(DeviceRepo::Ack(c, std::to_string(cmd1), "D1", 201)) << "once";
  EXPECT_EQ(DeviceRepo::CountCommands(c, "D1"), 2);
  auto cmds = DeviceRepo::Commands(c, "D1", 10, 0);
  ASSERT_EQ(cmds.size(), 2u);
  EXPECT_EQ(cmds[0].id, cmd2);
  EXPECT_EQ(cmds[1].acked_ms, 200);

  // The gallery: who reaches which device, the change log and what devices hold.
  const int64_t p1 = MakePerson(c, "P1", "张三");
  const int64_t p2 = MakePerson(c, "P2", "李四");
  PersonRepo::InsertConsent(c, p1, {"v1", "access", 100, "op", "", "", ""});
  PhotoRepo::InsertFeature(c, p1, std::nullopt, "m1", std::vector<uint8_t>{1, 2}, 100);
  EXPECT_EQ(GalleryRepo::Eligibility(c, p1, "m1"), (std::pair<std::string, bool>{"P1", true}));
  EXPECT_EQ(GalleryRepo::Eligibility(c, p1, "m2"), (std::pair<std::string, bool>{"P1", false}));
  EXPECT_EQ(GalleryRepo::Eligibility(c, p2, "m1"), (std::pair<std::string, bool>{"P2", false}));
  EXPECT_FALSE(GalleryRepo::Eligibility(c, p2 + 1, "m1"));
  const int64_t g = PlaceRepo::Insert(c, Table(5),
                                      {{"name", "g"},
                                       {"windows", json::array({"08:00-20:00"})},
                                       {"valid_from_ms", 5},
                                       {"open_ms", 0}},
                                      1);
  PlaceRepo::AddGroupMember(c, g, p1);
  PlaceRepo::AddGroupMember(c, g, p2);
  PlaceRepo::AddGroupDoor(c, g, "D1", 1);
  PlaceRepo::AddGroupDoor(c, g, "D1", 2);
  PlaceRepo::AddGroupDoor(c, g, "D2", 1);
  DeviceRepo::SetRevoked(c, "D2");
  EXPECT_EQ(GalleryRepo::Reaching(c, p1), (std::set<std::string>{"D1"}));
  EXPECT_EQ(GalleryRepo::Doors(c, p1, "D1"), (std::set<int>{1, 2}));
  EXPECT_EQ(GalleryRepo::GroupMembers(c, g).size(), 2u);
  auto rules = GalleryRepo::Rules(c, p1, "D1");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].valid_from_ms, 5);
  EXPECT_FALSE(rules[0].valid_until_ms);
  EXPECT_EQ(GalleryRepo::Features(c, p1, "m1").at(0).second, (std::vector<uint8_t>{1, 2}));

  EXPECT_EQ(GalleryRepo::Latest(c, "D1"), 0);
  GalleryRepo::AppendChange(c, "D1", 1, "P1", "upsert", "enrol", 100);
  GalleryRepo::AppendChange(c, "D1", 2, "P2", "upsert", "enrol", 101);
  GalleryRepo::AppendChange(c, "D1", 3, "P1", "remove", "moved_out", 102);
  GalleryRepo::AppendRemoval(c, "D1", "P1", 3, "moved_out", 102);
  EXPECT_EQ(GalleryRepo::Latest(c, "D1"), 3);
  EXPECT_EQ(ErrorReason([&] { GalleryRepo::AppendChange(c, "D1", 3, "P2", "upsert", "x", 1); }),
            "constraint");
  GalleryRepo::AddHolder(c, "D1", "P1");
  GalleryRepo::AddHolder(c, "D1", "P1");  // once
  GalleryRepo::AddHolder(c, "D2", "P1");
  EXPECT_EQ(GalleryRepo::Holders(c, "P1"), (std::set<std::string>{"D1", "D2"}));
  GalleryRepo::RemoveHolder(c, "D2", "P1");
  auto changes = GalleryRepo::Changes(c, "D1", 0, 10);
  ASSERT_EQ(changes.size(), 2u);  // each person's latest change, in log order
  EXPECT_EQ(changes[0].person_code, "P2");
  EXPECT_EQ(changes[0].seq, 2);
  EXPECT_FALSE(changes[0].held);
  EXPECT_EQ(changes[1].person_code, "P1");
  EXPECT_EQ(changes[1].seq, 3);
  EXPECT_EQ(changes[1].reason, "moved_out");
  EXPECT_TRUE(changes[1].held);
  EXPECT_EQ(changes[1].person_id, p1);
  EXPECT_EQ(GalleryRepo::Changes(c, "D1", 2, 10).size(), 1u);
  EXPECT_EQ(GalleryRepo::Changes(c, "D1", 0, 1).size(), 1u);
  GalleryRepo::Confirm(c, "D1", 3, 800);
  EXPECT_EQ(DeviceRepo::Get(c, "D1")->gallery_version, 3);
  EXPECT_EQ(PersonRepo::Removals(c, "P1").at(0)["confirmed_ms"], 800);
  EXPECT_EQ(ErrorReason([&] { DeviceRepo::Insert(c, "D1", "again", 1, 1, std::nullopt); }),
            "constraint");
}

TEST_P(ArchiveReposTest, AccountsSessionsTokensAndAdminChanges) {
  auto c = db_->Acquire();
  EXPECT_EQ(AccountRepo::CountUsers(c), 0);
  UserRow u;
  u.username = "bob";
  u.password_hash = "scrypt$1";
  u.password_changed_ms = 10;
  u.must_change = true;
  u.roles = {"operator"};
  u.created_ms = 10;
  u.created_by = "system";
  const int64_t bob = AccountRepo::InsertUser(c, u);
  u.username = "alice";
  const int64_t alice = AccountRepo::InsertUser(c, u);
  EXPECT_EQ(alice, bob + 1);
  EXPECT_EQ(AccountRepo::UserIdsByName(c), (std::vector<int64_t>{alice, bob}));
  EXPECT_EQ(ErrorReason([&] { AccountRepo::InsertUser(c, u); }), "constraint");
  auto got = AccountRepo::UserByName(c, "bob");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->must_change);
  EXPECT_EQ(got->roles, (std::vector<std::string>{"operator"}));
  EXPECT_FALSE(got->last_login_ms);

  EXPECT_EQ(AccountRepo::AddFailure(c, bob), 1);
  EXPECT_EQ(AccountRepo::AddFailure(c, bob), 2);
  AccountRepo::Lock(c, bob, 5000);
  EXPECT_EQ(AccountRepo::User(c, bob)->locked_until_ms, 5000);
  EXPECT_EQ(AccountRepo::User(c, bob)->failures, 0);
  AccountRepo::Unlock(c, bob);
  AccountRepo::LoggedIn(c, bob, 6000);
  EXPECT_EQ(AccountRepo::User(c, bob)->last_login_ms, 6000);
  AccountRepo::StartTotp(c, bob, {1, 2, 3});
  AccountRepo::EnableTotp(c, bob, 77);
  AccountRepo::SetTotpLastStep(c, bob, 78);
  got = AccountRepo::User(c, bob);
  EXPECT_TRUE(got->totp_enabled);
  EXPECT_EQ(got->totp_last_step, 78);
  EXPECT_EQ(got->totp_sealed, (std::vector<uint8_t>{1, 2, 3}));
  AccountRepo::ResetTotp(c, bob);
  EXPECT_FALSE(AccountRepo::User(c, bob)->totp_sealed);
  AccountRepo::SetRolesAndSites(c, bob, {"auditor", "operator"}, {3, 4});
  AccountRepo::SetDisabled(c, bob, true);
  AccountRepo::SetBlocked(c, bob, "risk");
  got = AccountRepo::User(c, bob);
  EXPECT_EQ(got->sites, (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(got->disabled);
  EXPECT_EQ(got->blocked_reason, "risk");

  // Password history: newest first, two changes in one millisecond in the order made.
  AccountRepo::SetPassword(c, bob, "h1", 100, false);
  AccountRepo::SetPassword(c, bob, "h2", 200, false);
  AccountRepo::SetPassword(c, bob, "h3", 200, true);
  EXPECT_EQ(AccountRepo::RecentPasswordHashes(c, bob, 2), (std::vector<std::string>{"h3", "h2"}));
  EXPECT_EQ(AccountRepo::User(c, bob)->password_hash, "h3");

  // Sessions.
  AccountRepo::InsertSession(c, "s1", bob, "10.0.0.1", 1000, 9000);
  AccountRepo::InsertSession(c, "s2", bob, "10.0.0.2", 1100, 9000);
  auto session = AccountRepo::SessionByHash(c, "s1");
  ASSERT_TRUE(session);
  EXPECT_EQ(session->second.username, "bob");
  const int64_t s1 = session->first.id;
  AccountRepo::TouchSession(c, s1, 1500);
  EXPECT_EQ(AccountRepo::Session(c, s1)->last_ms, 1500);
  EXPECT_EQ(AccountRepo::OpenSessions(c, bob, 1200).size(), 1u);
  AccountRepo::EndSessionsOf(c, bob, 2000, s1);
  EXPECT_EQ(AccountRepo::OpenSessions(c, bob, 0).size(), 1u);
  EXPECT_TRUE(AccountRepo::EndSession(c, s1, 2100));
  EXPECT_FALSE(AccountRepo::EndSession(c, s1, 2200));
  EXPECT_FALSE(AccountRepo::SessionByHash(c, "none"));

  // API tokens.
  AccountRepo::UpsertToken(c, "bootstrap", "t1", {"integration"}, 100, 1000);
  AccountRepo::UpsertToken(c, "bootstrap", "t2", {"integration", "viewer"}, 200, 2000);
  auto token = AccountRepo::TokenByHash(c, "t2");
  ASSERT_TRUE(token);
  EXPECT_EQ(token->roles.size(), 2u);
  EXPECT_EQ(token->created_ms, 100) << "an upsert keeps the first creation time";
  EXPECT_FALSE(AccountRepo::TokenByHash(c, "t1"));
  TokenRow t;
  t.name = "ci";
  t.roles = {"integration"};
  t.created_by = "bob";
  t.created_ms = 300;
  t.expires_ms = 4000;
  t.sites = {3};
  const int64_t ci = AccountRepo::InsertToken(c, t, "t3");
  EXPECT_TRUE(AccountRepo::TokenNameTaken(c, "ci"));
  EXPECT_FALSE(AccountRepo::TokenNameTaken(c, "cd"));
  AccountRepo::TouchToken(c, ci, 500);
  auto tokens = AccountRepo::Tokens(c);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[1].id, ci);
  EXPECT_EQ(tokens[1].last_used_ms, 500);
  EXPECT_EQ(tokens[1].sites, (std::vector<int64_t>{3}));
  EXPECT_EQ(AccountRepo::TokenCreator(c, "ci"), "bob");
  EXPECT_TRUE(AccountRepo::SetTokenBlocked(c, "ci", "risk"));
  EXPECT_FALSE(AccountRepo::SetTokenBlocked(c, "none", "risk"));
  AccountRepo::BlockTokensOf(c, "bob", "risk 2");
  EXPECT_EQ(AccountRepo::TokenByHash(c, "t3")->blocked_reason, "risk 2");
  EXPECT_TRUE(AccountRepo::RevokeToken(c, ci, 600));
  EXPECT_FALSE(AccountRepo::RevokeToken(c, ci, 700));

  // Changes to an administrator wait for a second one.
  const int64_t ch1 = AccountRepo::InsertChange(c, "bob", "alice", "roles", R"({"r":1})", 10);
  const int64_t ch2 = AccountRepo::InsertChange(c, "bob", "alice", "credentials", "{}", 11);
  EXPECT_EQ(ch2, ch1 + 1);
  EXPECT_EQ(ErrorReason([&] { AccountRepo::InsertChange(c, "bob", "alice", "other", "{}", 12); }),
            "constraint");
  AccountRepo::DecideChange(c, ch1, "approved", "carol", 20, "ok");
  auto change = AccountRepo::Change(c, ch1);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->approver, "carol");
  EXPECT_EQ(change->decided_ms, 20);
  EXPECT_FALSE(AccountRepo::Change(c, ch2)->approver);
  auto changes = AccountRepo::Changes(c, 10);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[0].id, ch2);
}

TEST_P(ArchiveReposTest, TheAuditLogIsAChainThatOnlyGrows) {
  auto c = db_->Acquire();
  // Through the audit log itself (it takes the chain's lock on PostgreSQL), then the repo.
  AuditEntry e;
  e.actor = "alice";
  e.source = "10.0.0.1:1234";
  e.action = "login";
  e.object = "users/alice";
  EXPECT_EQ(Audit(c, e), 1);
  {
    db::Transaction tx(c);
    e.action = "photo_view";
    e.object = "persons/P1/photos/1";
    EXPECT_EQ(Audit(c, e), 2);
    e.actor = "bob";
    e.object = "persons/P2";
    EXPECT_EQ(Audit(c, e), 3);
    tx.Commit();
  }
  auto last = AuditRepo::Last(c);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->first, 3);
  EXPECT_EQ(last->second.size(), 64u);
  const auto verified = VerifyAudit(c, std::nullopt);
  EXPECT_TRUE(verified.ok) << verified.problem;
  EXPECT_EQ(verified.checked, 3);

  AuditQuery q;
  q.object_prefix = "persons/";
  EXPECT_EQ(AuditRepo::Query(c, q, false).size(), 2u);
  q.object_prefix = "persons/P1";
  EXPECT_EQ(AuditRepo::Query(c, q, false).size(), 1u);
  q = {};
  q.actor = "alice";
  q.action = "photo_view";
  q.from_ms = 0;
  q.to_ms = NowMs() + 60'000;
  EXPECT_EQ(AuditRepo::Query(c, q, false).size(), 1u);
  q = {};
  q.newest_first = true;
  q.before_id = 3;
  q.limit = 1;
  auto page = AuditRepo::Query(c, q, false);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_EQ(page[0].id, 2);
  EXPECT_EQ(AuditRepo::Query(c, q, true).size(), 2u);
  EXPECT_EQ(AuditRepo::LatestWithAction(c, "photo_view")->id, 3);
  EXPECT_FALSE(AuditRepo::LatestWithAction(c, "none"));
  auto [rows, total] = AuditRepo::Page(c, "photo_view", "", "", 1, 0);
  EXPECT_EQ(total, 2);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, 3);
  EXPECT_EQ(AuditRepo::Page(c, "", "", "bob", 10, 0).second, 1);
  EXPECT_EQ(AuditRepo::Page(c, "", "users/alice", "", 10, 0).second, 1);
  EXPECT_TRUE(AuditRepo::TimeOf(c, 1));
  EXPECT_FALSE(AuditRepo::HashOf(c, 9));

  // A record written before the chain gets its hash once; a chained one never changes and
  // none is deleted: the triggers refuse, as a constraint, on both.
  AuditRecord legacy;
  legacy.id = 4;
  legacy.time_ms = 5;
  legacy.actor = "system";
  legacy.action = "legacy";
  legacy.object = "x";
  legacy.result = "ok";
  legacy.detail = "{}";
  {
    // The hash column is NULL for such a record: insert it without one.
    db::Stmt s(c,
               "INSERT INTO audit(id, time_ms, actor, source, action, object, result, detail) "
               "VALUES(4, 5, 'system', '', 'legacy', 'x', 'ok', '{}')");
    s.Run();
  }
  EXPECT_EQ(AuditRepo::Last(c)->second, "");
  AuditRepo::SetHash(c, 4, "abcd");
  EXPECT_EQ(AuditRepo::HashOf(c, 4), "abcd");
  EXPECT_EQ(ErrorReason([&] { AuditRepo::SetHash(c, 4, "ef"); }), "") << "no row left to fill";
  EXPECT_EQ(ErrorReason([&] { c.Exec("UPDATE audit SET actor = 'mallory' WHERE id = 1"); }),
            "constraint");
  EXPECT_EQ(ErrorReason([&] { c.Exec("DELETE FROM audit WHERE id = 3"); }), "constraint");
  EXPECT_EQ(ErrorReason([&] { AuditRepo::Insert(c, legacy); }), "constraint") << "same id";
  int n = 0;
  AuditRepo::ForEach(c, [&](const AuditRecord&) { return ++n < 2; });
  EXPECT_EQ(n, 2) << "stops when told";

  EXPECT_FALSE(AuditRepo::LastCheckpoint(c));
  EXPECT_EQ(AuditRepo::NextCheckpointId(c), 1);
  AuditRepo::InsertCheckpoint(c, {1, 3, 1000, "hash3", "records", "k1", "mac"});
  AuditRepo::InsertCheckpoint(c, {AuditRepo::NextCheckpointId(c), 4, 1001, "abcd", "x", "k1", "m"});
  EXPECT_EQ(AuditRepo::LastCheckpoint(c)->id, 2);
  EXPECT_EQ(AuditRepo::Checkpoints(c).at(0).hash, "hash3");
  EXPECT_EQ(ErrorReason([&] { c.Exec("DELETE FROM audit_checkpoints WHERE id = 1"); }),
            "constraint");
  EXPECT_EQ(ErrorReason([&] { c.Exec("UPDATE audit_checkpoints SET mac = 'x'"); }), "constraint");
}

TEST_P(ArchiveReposTest, OnPostgresEachServerKeepsItsOwnAuditHead) {
  const auto key = crypto::DataKey::Generate();
  if (db_->dialect() == db::Dialect::kSqlite) {
    AttachAuditKey(*db_, key, {});  // audit.head beside archive.db
    DetachAuditKey(*db_);
    SUCCEED();
    return;
  }
  // Several servers append to one PostgreSQL log: each must name its own head file.
  try {
    AttachAuditKey(*db_, key, {});
    FAIL() << "attached an audit key to a PostgreSQL archive without a head file";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("head file"), std::string::npos) << e.what();
  }
  auto c = db_->Acquire();
  EXPECT_THROW(VerifyAudit(c, key), Error) << "a keyed verification needs the head file";
  EXPECT_TRUE(VerifyAudit(c, std::nullopt).ok) << "the chain alone is checked on both";

  const fs::path dir = anju::testing::TempDir("audit-heads");
  AuditPolicy server_a, server_b;
  server_a.head_file = dir / "a.head";
  server_b.head_file = dir / "b.head";
  AttachAuditKey(*db_, key, server_a);
  Audit(c, "alice", "enrol", "persons/P1");
  DetachAuditKey(*db_);
  // Server B joins (no head yet: no alarm) and appends after A's record.
  AttachAuditKey(*db_, key, server_b);
  Audit(c, "bob", "enrol", "persons/P2");
  DetachAuditKey(*db_);
  // A starts again: its head is behind the log, which is expected here, not an alarm.
  AttachAuditKey(*db_, key, server_a);
  {
    db::Stmt s(c, "SELECT COUNT(*) FROM audit WHERE action LIKE 'audit_head%'");
    ASSERT_TRUE(s.Step());
    EXPECT_EQ(s.Int(0), 0);
  }
  const auto a = VerifyAudit(c, key, server_a.head_file);
  EXPECT_TRUE(a.ok) << a.ToJson();
  EXPECT_TRUE(a.keyed);
  EXPECT_TRUE(VerifyAudit(c, key, server_b.head_file).ok);
  DetachAuditKey(*db_);
  // B's own last record altered: B's head no longer matches it.
  c.Exec("ALTER TABLE audit DISABLE TRIGGER USER");
  c.Exec("UPDATE audit SET detail = '{\"x\":1}' WHERE actor = 'bob'");
  c.Exec("ALTER TABLE audit ENABLE TRIGGER USER");
  EXPECT_FALSE(VerifyAudit(c, key, server_b.head_file).ok);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST_P(ArchiveReposTest, ApprovalsDeletionsAndExports) {
  auto c = db_->Acquire();
  const Home home = MakeHome(c, "甲小区");
  const int64_t p1 = MakePerson(c, "P1", "张三");
  const int64_t p2 = MakePerson(c, "P2", "李四");
  PersonRepo::AddToHousehold(c, home.household, p1, "tenant", 10, false);
  PhotoRepo::InsertPhoto(c, p1, "p1.jpg", 1, "{}", 10, "op");
  PhotoRepo::InsertPhoto(c, p2, "p2.jpg", 1, "{}", 11, "op");

  const int64_t e1 = ApprovalRepo::InsertExport(c, "bob", "persons", "{}", "audit", 100);
  const int64_t e2 = ApprovalRepo::InsertExport(c, "carol", "photos", "{}", "audit", 101);
  EXPECT_EQ(e2, e1 + 1);
  EXPECT_EQ(ApprovalRepo::Exports(c, true, "", 10, 0).second, 2);
  auto [mine, n_mine] = ApprovalRepo::Exports(c, false, "bob", 10, 0);
  EXPECT_EQ(n_mine, 1);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].id, e1);
  EXPECT_FALSE(ApprovalRepo::MarkDownloaded(c, e1, 200, 5)) << "not approved yet";
  ApprovalRepo::DecideExport(c, e1, "approved", "carol", 150, "ok");
  EXPECT_TRUE(ApprovalRepo::MarkDownloaded(c, e1, 200, 5));
  auto ex = ApprovalRepo::Export(c, e1);
  EXPECT_EQ(ex->state, "downloaded");
  EXPECT_EQ(ex->rows, 5);
  EXPECT_FALSE(ApprovalRepo::Export(c, 99));
  EXPECT_EQ(ErrorReason([&] { ApprovalRepo::DecideExport(c, e2, "maybe", "x", 1, ""); }),
            "constraint");

  const int64_t d1 = ApprovalRepo::InsertDeletion(c, "bob", "archives", {"P2"}, "left", 100);
  const int64_t d2 = ApprovalRepo::InsertDeletion(c, "bob", "biometrics", {"P1"}, "asked", 101);
  EXPECT_EQ(ApprovalRepo::Deletion(c, d1)->persons, (std::vector<std::string>{"P2"}));
  EXPECT_EQ(ApprovalRepo::Deletions(c, false, "carol", 10, 0).second, 0);
  EXPECT_EQ(ApprovalRepo::Deletions(c, true, "carol", 1, 0).first.at(0).id, d2);
  EXPECT_TRUE(ApprovalRepo::ClaimDeletion(c, d1, "carol", 150, ""));
  EXPECT_FALSE(ApprovalRepo::ClaimDeletion(c, d1, "dave", 151, "")) << "claimed once";
  ApprovalRepo::RejectDeletion(c, d2, "carol", 152, "no");
  EXPECT_EQ(ApprovalRepo::Deletion(c, d2)->state, "rejected");
  EXPECT_EQ(ApprovalRepo::UnfinishedDeletions(c),
            (std::vector<std::pair<int64_t, std::string>>{{d1, "carol"}}));
  ApprovalRepo::FinishDeletion(c, d1, 1, 1);
  EXPECT_TRUE(ApprovalRepo::UnfinishedDeletions(c).empty());
  EXPECT_EQ(ApprovalRepo::Deletion(c, d1)->photos_deleted, 1);

  const SiteScope all{std::vector<int64_t>{}};
  const SiteScope scoped{std::vector<int64_t>{home.site}};
  PersonRepo::MoveOut(c, p2, 500);
  EXPECT_EQ(ApprovalRepo::DeletionCandidates(c, all, "", 0, "已删除", 10),
            (std::vector<std::string>{"P1", "P2"}));
  EXPECT_EQ(ApprovalRepo::DeletionCandidates(c, all, "moved_out", 600, "已删除", 10),
            (std::vector<std::string>{"P2"}));
  EXPECT_TRUE(ApprovalRepo::DeletionCandidates(c, all, "moved_out", 400, "已删除", 10).empty());
  EXPECT_EQ(ApprovalRepo::ExportPersons(c, all, "").size(), 2u);
  auto persons = ApprovalRepo::ExportPersons(c, scoped, "active");
  ASSERT_EQ(persons.size(), 1u);
  EXPECT_EQ(persons[0].code, "P1");
  EXPECT_EQ(ApprovalRepo::ExportPhotos(c, all, "", std::nullopt, 10).size(), 2u);
  EXPECT_EQ(ApprovalRepo::ExportPhotos(c, all, "", std::vector<std::string>{"P2"}, 10).size(), 1u);
  EXPECT_TRUE(ApprovalRepo::ExportPhotos(c, all, "", std::vector<std::string>{}, 10).empty());
  EXPECT_EQ(ApprovalRepo::ExportPhotos(c, scoped, "active", std::nullopt, 10).size(), 1u);

  ErasePersonalData(c, p2, "已删除", 700);
  auto erased = PersonRepo::GetById(c, p2);
  EXPECT_EQ(erased->name, "已删除");
  EXPECT_EQ(erased->moved_out_ms, 500) << "the first move-out time stays";
  EXPECT_EQ(ApprovalRepo::DeletionCandidates(c, all, "moved_out", 600, "已删除", 10).size(), 0u);
}

TEST_P(ArchiveReposTest, SettingsSiteThresholdsAndTenants) {
  auto c = db_->Acquire();
  SettingsRepo::Put(c, "retention.events_days", "30", 100, "alice");
  SettingsRepo::Put(c, "retention.events_days", "60", 200, "bob");
  SettingsRepo::Put(c, "Retention.Photos_Days", "90", 150, "carol");
  EXPECT_EQ(SettingsRepo::All(c).at("retention.events_days"), "60");
  EXPECT_EQ(SettingsRepo::All(c).size(), 2u);
  EXPECT_EQ(SettingsRepo::LatestChange(c, "_days"), (std::pair<int64_t, std::string>{200, "bob"}));
  EXPECT_EQ(SettingsRepo::LatestChange(c, "photos_days"),
            (std::pair<int64_t, std::string>{150, "carol"}))
      << "the suffix ignores ASCII case, as SQLite's LIKE does";
  EXPECT_FALSE(SettingsRepo::LatestChange(c, "none"));

  const Home a = MakeHome(c, "甲小区");
  const Home b = MakeHome(c, "乙小区");
  EXPECT_EQ(SiteThresholdsRepo::Sites(c), (std::vector<int64_t>{a.site, b.site}));
  EXPECT_TRUE(SiteThresholdsRepo::SiteExists(c, a.site));
  EXPECT_EQ(SiteThresholdsRepo::SiteOfBuilding(c, b.building), b.site);
  EXPECT_FALSE(SiteThresholdsRepo::SiteOfBuilding(c, 999));
  DeviceRepo::Insert(c, "D1", "gate", 1, 1, a.site);
  DeviceRepo::Insert(c, "D2", "gate", 1, 1, std::nullopt);
  EXPECT_EQ(SiteThresholdsRepo::SiteOfDevice(c, "D1"), a.site);
  EXPECT_FALSE(SiteThresholdsRepo::SiteOfDevice(c, "D2"));

  // Residents with a standing consent and a template of the model, per site.
  const int64_t p1 = MakePerson(c, "P1", "张三");
  const int64_t p2 = MakePerson(c, "P2", "李四");
  const int64_t p3 = MakePerson(c, "P3", "王五");
  for (const int64_t p : {p1, p2, p3})
    PersonRepo::InsertConsent(c, p, {"v1", "access", 1, "op", "", "", ""});
  PersonRepo::AddToHousehold(c, a.household, p1, "tenant", 1000, false);
  PersonRepo::AddToHousehold(c, a.household, p2, "family", 1000, false);
  PersonRepo::AddToHousehold(c, b.household, p3, "tenant", 10, false);
  const int64_t f1 =
      PhotoRepo::InsertFeature(c, p1, std::nullopt, "m1", std::vector<uint8_t>{1}, 1);
  PhotoRepo::InsertFeature(c, p1, std::nullopt, "m1", std::vector<uint8_t>{2}, 1);
  PhotoRepo::InsertFeature(c, p2, std::nullopt, "m1", std::vector<uint8_t>{3}, 1);
  PhotoRepo::InsertFeature(c, p3, std::nullopt, "m2", std::vector<uint8_t>{4}, 1);
  auto gallery = SiteThresholdsRepo::Gallery(c, a.site, "m1");
  ASSERT_EQ(gallery.size(), 3u);
  EXPECT_EQ(gallery[0].person, "P1");
  EXPECT_EQ(gallery[0].feature_id, f1);
  EXPECT_EQ(gallery[0].sealed, (std::vector<uint8_t>{1}));
  auto fps = SiteThresholdsRepo::Fingerprints(c, "m1");
  ASSERT_EQ(fps.size(), 1u);
  EXPECT_EQ(fps.at(a.site).persons, 2);
  EXPECT_EQ(fps.at(a.site).templates, 3);
  EXPECT_EQ(fps.at(a.site).hash.size(), 64u);

  SiteThresholdsRow r{a.site, "m1", R"({"levels":[]})", fps.at(a.site).hash, 2, 3, "", 5, 100};
  SiteThresholdsRepo::Put(c, r);
  r.kept_base = "too few persons";
  r.created_ms = 200;
  SiteThresholdsRepo::Put(c, r);  // replaced
  auto stored = SiteThresholdsRepo::Get(c, a.site);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->kept_base, "too few persons");
  EXPECT_EQ(stored->created_ms, 200);
  EXPECT_EQ(SiteThresholdsRepo::All(c).size(), 1u);
  EXPECT_FALSE(SiteThresholdsRepo::Get(c, b.site));
  r.site_id = 999;
  EXPECT_EQ(ErrorReason([&] { SiteThresholdsRepo::Put(c, r); }), "constraint");

  // Tenants for the alert rules: since the later of moving in and joining the household.
  auto tenants = AlertRepo::ActiveTenants(c);
  ASSERT_EQ(tenants.size(), 2u);
  std::map<std::string, int64_t> since;
  for (const auto& t : tenants) since[t.code] = t.since_ms;
  EXPECT_EQ(since.at("P1"), 1000);
  EXPECT_EQ(since.at("P3"), 50);
}

// Schema step 9: the optional date of birth, and the elderly residents the
// elderly_not_seen rule watches (R3.4.2.2), by the text order of "YYYY-MM-DD".
TEST_P(ArchiveReposTest, BirthDatesAndElderlyResidents) {
  auto c = db_->Acquire();
  const Home a = MakeHome(c, "甲小区");
  NewPersonRow old;
  old.code = "OLD";
  old.name = "老王";
  old.birth_date = "1950-03-01";
  old.moved_in_ms = 50;
  old.now_ms = 60;
  const int64_t p_old = PersonRepo::Insert(c, old);
  const int64_t p_edge = MakePerson(c, "EDGE", "刚满");
  const int64_t p_young = MakePerson(c, "YOUNG", "小李");
  const int64_t p_none = MakePerson(c, "NONE", "无日期");
  const int64_t p_carer = MakePerson(c, "CARER", "护工");
  EXPECT_EQ(PersonRepo::Get(c, "OLD")->birth_date, "1950-03-01");
  EXPECT_FALSE(PersonRepo::Get(c, "NONE")->birth_date);
  PersonRepo::SetBirthDate(c, p_edge, "1956-01-15", 70);
  PersonRepo::SetBirthDate(c, p_young, "1990-01-01", 70);
  PersonRepo::SetBirthDate(c, p_carer, "1940-01-01", 70);
  PersonRepo::SetBirthDate(c, p_none, "1941-01-01", 70);
  PersonRepo::SetBirthDate(c, p_none, std::nullopt, 80);  // cleared
  EXPECT_FALSE(PersonRepo::GetById(c, p_none)->birth_date);
  EXPECT_EQ(PersonRepo::GetById(c, p_none)->updated_ms, 80);
  PersonRepo::AddToHousehold(c, a.household, p_old, "tenant", 1000, false);
  PersonRepo::AddToHousehold(c, a.household, p_edge, "family", 10, false);
  PersonRepo::AddToHousehold(c, a.household, p_young, "family", 10, false);
  PersonRepo::AddToHousehold(c, a.household, p_none, "family", 10, false);
  PersonRepo::AddToHousehold(c, a.household, p_carer, "carer", 10, false);  // not a resident

  auto codes = [&](const std::string& born_by) {
    std::map<std::string, int64_t> out;
    for (const auto& r : AlertRepo::ElderlyResidents(c, born_by)) out[r.code] = r.since_ms;
    return out;
  };
  EXPECT_EQ(codes("1956-01-15"), (std::map<std::string, int64_t>{{"EDGE", 50}, {"OLD", 1000}}));
  EXPECT_EQ(codes("1956-01-14"), (std::map<std::string, int64_t>{{"OLD", 1000}}));
  EXPECT_TRUE(codes("1950-02-28").empty());
  PersonRepo::MoveOut(c, p_old, 2000);
  EXPECT_EQ(codes("2000-01-01").size(), 2u);  // EDGE, YOUNG; OLD moved out
}

INSTANTIATE_TEST_SUITE_P(Backends, ArchiveReposTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace anju::server::storage
