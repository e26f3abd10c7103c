// Least privilege per site: an account limited to site A sees A's persons,
// devices, events and alarms, gets 404 for site B's (their existence is not revealed) and
// cannot change them; an unscoped account sees both.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <set>
#include <thread>

#include "server_test_support.h"

namespace anju::server::testing {
namespace {

using nlohmann::json;

class SiteScopeTest : public ServerTest {
 protected:
  struct Site {
    int64_t id = 0;
    int64_t household = 0;
    int64_t building = 0;
    std::string person;
    std::string device;
    std::string event;
  };

  int64_t Create(const std::string& path, const json& body) {
    const auto r = Api("POST", path, body);
    EXPECT_EQ(r.status, 201) << path << ": " << r.body;
    return r.body.value("id", int64_t{0});
  }

  // A site with one building, unit, room and household, a person in it, and a registered
  // device placed at the site that uploaded one access event and one alarm.
  Site MakeSite(const std::string& tag, int n) {
    Site s;
    s.id = Create("/api/v1/sites", {{"name", "小区" + tag}});
    s.building = Create("/api/v1/buildings", {{"site_id", s.id}, {"name", "1号楼"}});
    const int64_t u = Create("/api/v1/units", {{"building_id", s.building}, {"name", "1单元"}});
    const int64_t r = Create("/api/v1/rooms", {{"unit_id", u}, {"name", "101"}});
    s.household = Create("/api/v1/households", {{"room_id", r}, {"name", "住户" + tag}});
    s.person = "P" + tag;
    EXPECT_EQ(Api("POST", "/api/v1/persons",
                  {{"code", s.person}, {"name", "住户" + tag}, {"household_id", s.household}})
                  .status,
              201);
    auto dev = RegisterDevice("门" + tag);
    s.device = dev.id;
    const auto placed = Api("PATCH", "/api/v1/devices/" + s.device, {{"site_id", s.id}});
    EXPECT_EQ(placed.status, 200) << placed.body;
    EXPECT_EQ(placed.body["site_id"], s.id);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count() -
                        60'000 + n;
    s.event = "00000000-0000-4000-8000-00000000000" + std::to_string(n);
    const json body = {
        {"events",
         {{{"id", s.event},
           {"kind", "access"},
           {"created_ms", now},
           {"payload",
            {{"time_ms", now}, {"door", 0}, {"decision", "open"}, {"person", s.person}}}},
          {{"id", "00000000-0000-4000-8000-00000000010" + std::to_string(n)},
           {"kind", "alarm"},
           {"created_ms", now},
           {"payload",
            {{"time_ms", now}, {"door", 0}, {"alarm_type", "stranger"}, {"severity", "minor"}}}},
          // Refused (no such decision): kept in the device quarantine.
          {{"id", "00000000-0000-4000-8000-00000000020" + std::to_string(n)},
           {"kind", "access"},
           {"created_ms", now},
           {"payload",
            {{"time_ms", now}, {"door", 0}, {"decision", "maybe"}, {"person", s.person}}}}}}};
    const json stored = dev.client->CallJson("POST", "/api/v1/device/events", &body);
    EXPECT_EQ(stored["stored"].size(), 2u) << stored;
    return s;
  }

  // A ready user with ROLES limited to SITES.
  Session ScopedUser(const std::string& username, const std::vector<std::string>& roles,
                     const std::vector<int64_t>& sites) {
    UserWithRoles(username, roles);
    const auto sec = Ready("secadmin");
    const auto granted = As(sec.token, "PUT", "/api/v1/users/" + username + "/roles",
                            {{"roles", roles}, {"sites", sites}});
    EXPECT_EQ(granted.status, 200) << granted.body;
    return Ready(username);
  }

  static std::set<std::string> Codes(const json& page, const char* key) {
    std::set<std::string> out;
    for (const auto& i : page["items"]) out.insert(i[key].get<std::string>());
    return out;
  }
};

TEST_F(SiteScopeTest, AnOperatorOfSiteASeesOnlySiteA) {
  const Site a = MakeSite("A", 1);
  const Site b = MakeSite("B", 2);
  // A person in no household belongs to no site.
  ASSERT_EQ(Api("POST", "/api/v1/persons", {{"code", "PN"}, {"name", "无户"}}).status, 201);

  const auto op = ScopedUser("op-a", {"operator"}, {a.id});
  const auto all = UserWithRoles("op-all", {"operator"});
  auto as_a = [&](const std::string& m, const std::string& p, const json& body = nullptr) {
    return As(op.token, m, p, body);
  };

  // Persons: list and search, detail, sub-resources.
  EXPECT_EQ(Codes(as_a("GET", "/api/v1/persons").body, "code"), std::set<std::string>{"PA"});
  EXPECT_EQ(as_a("GET", "/api/v1/persons").body["total"], 1);
  EXPECT_EQ(as_a("GET", "/api/v1/persons?q=P").body["total"], 1);
  EXPECT_EQ(as_a("GET", "/api/v1/persons/PA").status, 200);
  for (const char* p : {"/api/v1/persons/PB", "/api/v1/persons/PN", "/api/v1/persons/PB/history",
                        "/api/v1/persons/PB/removals", "/api/v1/persons/nobody"}) {
    const auto r = as_a("GET", p);
    EXPECT_EQ(r.status, 404) << p;
    EXPECT_EQ(r.body["error"]["code"], "not_found") << p;
  }
  // The archive hierarchy: sites, buildings, units, rooms, households.
  auto ids = [](const json& page) {
    std::set<int64_t> out;
    for (const auto& i : page["items"]) out.insert(i["id"].get<int64_t>());
    return out;
  };
  EXPECT_EQ(ids(as_a("GET", "/api/v1/sites").body), std::set<int64_t>{a.id});
  EXPECT_EQ(ids(as_a("GET", "/api/v1/households").body), std::set<int64_t>{a.household});
  EXPECT_EQ(as_a("GET", "/api/v1/buildings").body["total"], 1);
  EXPECT_EQ(as_a("GET", "/api/v1/sites/" + std::to_string(b.id)).status, 404);
  EXPECT_EQ(as_a("GET", "/api/v1/households/" + std::to_string(b.household)).status, 404);
  EXPECT_EQ(as_a("GET", "/api/v1/households/" + std::to_string(b.household) + "/members").status,
            404);
  EXPECT_EQ(as_a("POST", "/api/v1/buildings", {{"site_id", b.id}, {"name", "2号楼"}}).status, 404);
  EXPECT_EQ(as_a("POST", "/api/v1/buildings", {{"site_id", a.id}, {"name", "2号楼"}}).status, 201);
  EXPECT_EQ(as_a("POST", "/api/v1/sites", {{"name", "新小区"}}).status, 403);
  EXPECT_EQ(as_a("PATCH", "/api/v1/sites/" + std::to_string(b.id), {{"name", "x"}}).status, 404);

  // Devices.
  EXPECT_EQ(Codes(as_a("GET", "/api/v1/devices").body, "device_id"),
            std::set<std::string>{a.device});
  EXPECT_EQ(as_a("GET", "/api/v1/devices/" + a.device).status, 200);
  EXPECT_EQ(as_a("GET", "/api/v1/devices/" + b.device).status, 404);
  EXPECT_EQ(as_a("GET", "/api/v1/devices/" + b.device + "/commands").status, 404);

  // Events and alarms by the device's site.
  const auto events = as_a("GET", "/api/v1/events");
  ASSERT_EQ(events.status, 200) << events.body;
  EXPECT_EQ(events.body["total"], 2);
  for (const auto& e : events.body["items"]) EXPECT_EQ(e["device_id"], a.device);
  EXPECT_EQ(as_a("GET", "/api/v1/events/" + a.event).status, 200);
  EXPECT_EQ(as_a("GET", "/api/v1/events/" + b.event).status, 404);
  EXPECT_EQ(as_a("GET", "/api/v1/events/" + b.event + "/snapshot").status, 404);
  const auto alarms = as_a("GET", "/api/v1/alarms");
  ASSERT_EQ(alarms.body["total"], 1);
  EXPECT_EQ(alarms.body["items"][0]["device_id"], a.device);

  // Snapshot cameras by the site of their building.
  for (const Site* site : {&a, &b})
    ASSERT_EQ(Api("POST", "/api/v1/viid/devices",
                  {{"id", "3101000000119000000" + std::to_string(site->id)},
                   {"password", "cam-pass-123"},
                   {"building_id", site->building}})
                  .status,
              201);
  const auto cams = as_a("GET", "/api/v1/viid/devices");
  ASSERT_EQ(cams.body["total"], 1) << cams.body;
  EXPECT_EQ(cams.body["items"][0]["id"], "3101000000119000000" + std::to_string(a.id));
  EXPECT_EQ(Api("GET", "/api/v1/viid/devices").body["total"], 2);
  auto preview = [&](const Site& site) {
    return as_a("GET",
                "/api/v1/viid/devices/3101000000119000000" + std::to_string(site.id) + "/preview")
        .body["error"]["message"]
        .get<std::string>();
  };
  EXPECT_NE(preview(a).find("capture of camera"), std::string::npos);  // in scope, no capture
  EXPECT_NE(preview(b).find("viid device"), std::string::npos);        // as if missing
  EXPECT_EQ(as_a("GET", "/api/v1/captures").status, 200);
  // Reports by device.
  const auto report = as_a("GET", "/api/v1/reports/alerts");
  ASSERT_EQ(report.body["items"].size(), 1u) << report.body;
  EXPECT_EQ(report.body["items"][0]["device_id"], a.device);
  EXPECT_EQ(Api("GET", "/api/v1/reports/alerts").body["items"].size(), 2u);
  const auto traffic = as_a("GET", "/api/v1/reports/traffic");
  EXPECT_EQ(traffic.status, 200);
  for (const auto& row : traffic.body["items"]) EXPECT_EQ(row["device_id"], a.device);

  // Writes to site B are refused as if B's objects did not exist.
  EXPECT_EQ(as_a("PATCH", "/api/v1/persons/PB", {{"name", "改名"}}).status, 404);
  EXPECT_EQ(Api("GET", "/api/v1/persons/PB").body["name"], "住户B");
  EXPECT_EQ(as_a("POST", "/api/v1/persons/PB/move-out", json::object()).status, 404);
  EXPECT_EQ(as_a("POST", "/api/v1/persons",
                 {{"code", "PX"}, {"name", "新人"}, {"household_id", b.household}})
                .status,
            404);
  EXPECT_EQ(as_a("POST", "/api/v1/persons", {{"code", "PX"}, {"name", "新人"}}).status, 400);
  EXPECT_EQ(as_a("POST", "/api/v1/households/" + std::to_string(b.household) + "/members",
                 {{"person", "PA"}, {"role", "family"}})
                .status,
            404);
  EXPECT_EQ(as_a("POST", "/api/v1/households/" + std::to_string(a.household) + "/members",
                 {{"person", "PB"}, {"role", "family"}})
                .status,
            404);
  int64_t alarm_b = 0;
  const auto all_alarms = Api("GET", "/api/v1/alarms");
  for (const auto& al : all_alarms.body["items"])
    if (al["device_id"] == b.device) alarm_b = al["id"];
  ASSERT_NE(alarm_b, 0) << all_alarms.body;
  EXPECT_EQ(as_a("POST", "/api/v1/alarms/" + std::to_string(alarm_b) + "/state",
                 {{"state", "acknowledged"}})
                .status,
            404);
  // Writes inside site A work.
  EXPECT_EQ(as_a("PATCH", "/api/v1/persons/PA", {{"phone", "13800000000"}}).status, 200);
  EXPECT_EQ(as_a("POST", "/api/v1/persons",
                 {{"code", "PA2"}, {"name", "新人"}, {"household_id", a.household}})
                .status,
            201);

  // The unscoped operator sees both sites and the person without a household.
  const auto everyone = As(all.token, "GET", "/api/v1/persons");
  EXPECT_EQ(Codes(everyone.body, "code"), (std::set<std::string>{"PA", "PA2", "PB", "PN"}));
  EXPECT_EQ(As(all.token, "GET", "/api/v1/persons/PN").status, 200);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/events").body["total"], 4);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/events/" + b.event).status, 200);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/devices").body["total"], 2);
  // A viewer limited to site B sees B only.
  const auto viewer = ScopedUser("view-b", {"viewer"}, {b.id});
  EXPECT_EQ(Codes(As(viewer.token, "GET", "/api/v1/persons").body, "code"),
            std::set<std::string>{"PB"});
  EXPECT_EQ(As(viewer.token, "GET", "/api/v1/events/" + a.event).status, 404);
}

TEST_F(SiteScopeTest, GroupsStrangersQuarantineAndImportsKeepToTheSite) {
  const Site a = MakeSite("A", 1);
  const Site b = MakeSite("B", 2);
  const auto op = ScopedUser("op-a", {"operator"}, {a.id});
  const auto all = UserWithRoles("op-all", {"operator"});
  auto as_a = [&](const std::string& m, const std::string& p, const json& body = nullptr) {
    return As(op.token, m, p, body);
  };
  auto group_path = [](int64_t g, const std::string& rest = "") {
    return "/api/v1/access-groups/" + std::to_string(g) + rest;
  };

  // Access groups: visible when every door is a device of the account's sites.
  const int64_t ga = CreateGroupOn(a.device, "A门");
  const int64_t gb = CreateGroupOn(b.device, "B门");
  const int64_t gab = CreateGroupOn(a.device, "AB门");
  ASSERT_EQ(Api("PUT", group_path(gab, "/doors"),
                {{"doors", json::array({{{"device_id", a.device}}, {{"device_id", b.device}}})}})
                .status,
            200);
  const auto empty = Api("POST", "/api/v1/access-groups", {{"name", "空"}});
  ASSERT_EQ(empty.status, 201);
  const int64_t g0 = empty.body["id"];
  const auto groups = as_a("GET", "/api/v1/access-groups");
  ASSERT_EQ(groups.status, 200) << groups.body;
  EXPECT_EQ(groups.body["total"], 1);
  EXPECT_EQ(groups.body["items"][0]["id"], ga);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/access-groups").body["total"], 4);
  EXPECT_EQ(as_a("GET", group_path(ga)).status, 200);
  // The batch has no household per person: refused to a scoped account, open to others.
  const json batch = {{"persons", json::array({{{"code", "BATCH1"}, {"name", "批量"}}})}};
  EXPECT_EQ(as_a("POST", "/api/v1/persons/batch", batch).status, 403);
  EXPECT_EQ(As(all.token, "POST", "/api/v1/persons/batch", batch).status, 200);
  for (const int64_t g : {gb, gab, g0}) {
    EXPECT_EQ(as_a("GET", group_path(g)).status, 404) << g;
    EXPECT_EQ(as_a("GET", group_path(g, "/doors")).status, 404) << g;
    EXPECT_EQ(as_a("GET", group_path(g, "/members")).status, 404) << g;
    EXPECT_EQ(as_a("PATCH", group_path(g), {{"name", "x"}}).status, 404) << g;
    EXPECT_EQ(as_a("POST", group_path(g, "/members"), {{"add", json::array({"PA"})}}).status, 404)
        << g;
    EXPECT_EQ(as_a("DELETE", group_path(g)).status, 404) << g;
    EXPECT_EQ(As(all.token, "GET", group_path(g)).status, 200) << g;
  }
  // Refused writes: a door of site B, no door at all, a person of site B, a new group.
  EXPECT_EQ(
      as_a("PUT", group_path(ga, "/doors"), {{"doors", json::array({{{"device_id", b.device}}})}})
          .status,
      404);
  EXPECT_EQ(as_a("PUT", group_path(ga, "/doors"), {{"doors", json::array()}}).status, 400);
  EXPECT_EQ(as_a("GET", group_path(ga, "/doors")).body["doors"].size(), 1u);  // unchanged
  EXPECT_EQ(as_a("POST", group_path(ga, "/members"), {{"add", json::array({"PB"})}}).status, 404);
  EXPECT_EQ(as_a("POST", "/api/v1/access-groups", {{"name", "新"}}).status, 403);
  // Allowed inside site A.
  EXPECT_EQ(as_a("POST", group_path(ga, "/members"), {{"add", json::array({"PA"})}}).status, 200);
  EXPECT_EQ(as_a("PATCH", group_path(ga), {{"name", "A门2"}}).status, 200);
  // The person's groups leave out those the account does not see.
  AddToGroup(gab, {"PA"});
  EXPECT_EQ(Api("GET", "/api/v1/persons/PA").body["access_groups"].size(), 2u);
  EXPECT_EQ(as_a("GET", "/api/v1/persons/PA").body["access_groups"].size(), 1u);

  // The device quarantine: each device uploaded one refused event.
  const auto quarantine = as_a("GET", "/api/v1/events/quarantine");
  ASSERT_EQ(quarantine.status, 200) << quarantine.body;
  EXPECT_EQ(quarantine.body["total"], 1);
  ASSERT_EQ(quarantine.body["items"].size(), 1u);
  EXPECT_EQ(quarantine.body["items"][0]["device_id"], a.device);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/events/quarantine").body["total"], 2);

  // Strangers: one camera per site; stranger 1 was seen by both, stranger 2 by B's only.
  // The clusters are written to the capture database directly (recognition needs models
  // and real faces; viid_server_test covers it), as the recogniser stores them.
  const std::string cam_a = "31010000001190000001", cam_b = "31010000001190000002";
  for (const auto& [cam, site] : {std::pair{cam_a, &a}, std::pair{cam_b, &b}})
    ASSERT_EQ(Api("POST", "/api/v1/viid/devices",
                  {{"id", cam}, {"password", "cam-pass-123"}, {"building_id", site->building}})
                  .status,
              201);
  {
    const int64_t t = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() -
                      3'600'000;
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "captures.db").string().c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10'000);
    std::string sql = "BEGIN;";
    auto capture = [&](const std::string& id, const std::string& cam, int stranger, int dt) {
      sql +=
          "INSERT INTO captures(id, device_id, face_id, time_ms, received_ms, box, images, "
          "state, outcome, stranger_id) VALUES('" +
          id + "','" + cam + "','" + id + "'," + std::to_string(t + dt) + "," +
          std::to_string(t + dt) + ",'{}',1,'done','stranger'," + std::to_string(stranger) + ");";
    };
    capture("CA1", cam_a, 1, 0);
    capture("CB1", cam_b, 1, 1000);
    capture("CB2", cam_b, 2, 2000);
    sql +=
        "INSERT INTO strangers(id, centroid_sealed, members, first_ms, last_ms, first_capture, "
        "last_capture, last_device) VALUES(1, x'00', 2, " +
        std::to_string(t) + ", " + std::to_string(t + 1000) + ", 'CA1', 'CB1', '" + cam_b +
        "'), (2, x'00', 1, " + std::to_string(t + 2000) + ", " + std::to_string(t + 2000) +
        ", 'CB2', 'CB2', '" + cam_b + "');COMMIT;";
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }
  const auto strangers = as_a("GET", "/api/v1/strangers");
  ASSERT_EQ(strangers.status, 200) << strangers.body;
  ASSERT_EQ(strangers.body["total"], 1) << strangers.body;
  EXPECT_EQ(strangers.body["items"][0]["id"], 1);
  EXPECT_EQ(strangers.body["items"][0]["count"], 1);  // B's sighting left out
  ASSERT_EQ(strangers.body["items"][0]["places"].size(), 1u);
  EXPECT_EQ(strangers.body["items"][0]["places"][0]["device_id"], cam_a);
  EXPECT_EQ(strangers.body["items"][0]["latest_capture"], "CA1");
  EXPECT_EQ(As(all.token, "GET", "/api/v1/strangers").body["total"], 2);
  const auto one = as_a("GET", "/api/v1/strangers/1");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.body["count"], 1);
  EXPECT_EQ(one.body["last_device"], cam_a);
  ASSERT_EQ(one.body["captures"].size(), 1u);
  EXPECT_EQ(one.body["captures"][0]["id"], "CA1");
  EXPECT_EQ(As(all.token, "GET", "/api/v1/strangers/1").body["count"], 2);
  EXPECT_EQ(as_a("GET", "/api/v1/strangers/2").status, 404);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/strangers/2").status, 200);
  auto report_sum = [](const json& rep, const char* key) {
    int64_t n = 0;
    for (const auto& row : rep["items"]) n += row[key].get<int64_t>();
    return n;
  };
  const auto report = as_a("GET", "/api/v1/reports/strangers");
  ASSERT_EQ(report.status, 200) << report.body;
  EXPECT_EQ(report_sum(report.body, "captures"), 1);
  EXPECT_EQ(report_sum(report.body, "new_strangers"), 1);
  const auto report_all = As(all.token, "GET", "/api/v1/reports/strangers");
  EXPECT_EQ(report_sum(report_all.body, "captures"), 3);
  EXPECT_EQ(report_sum(report_all.body, "new_strangers"), 2);

  // Imports: rows outside the account's sites fail one by one.
  auto run_import = [&](const std::string& token, const std::string& csv) {
    const auto r = As(token, "POST", "/api/v1/imports", {{"csv", csv}});
    EXPECT_EQ(r.status, 202) << r.body;
    const std::string path = "/api/v1/imports/" + r.body["id"].dump();
    json status;
    for (int i = 0; i < 2000; ++i) {  // a bound, not a timing assertion
      status = As(token, "GET", path).body;
      if (status["state"] != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(status["state"], "done") << status;
    return std::pair{r.body["id"].get<int64_t>(), status};
  };
  const std::string ha = std::to_string(a.household), hb = std::to_string(b.household);
  const auto [mine, done] =
      run_import(op.token, "code,name,household_id\nPI1,甲," + ha + "\nPI2,乙," + hb +
                               "\nPI3,丙,\nPB,改," + ha + "\n");
  ASSERT_EQ(done["results"].size(), 4u) << done;
  EXPECT_EQ(done["results"][0]["result"], "ok") << done;
  EXPECT_EQ(done["results"][1]["error"]["code"], "not_found") << done;
  EXPECT_EQ(done["results"][2]["error"]["code"], "bad_request") << done;
  EXPECT_EQ(done["results"][3]["error"]["code"], "not_found") << done;
  EXPECT_EQ(as_a("GET", "/api/v1/persons/PI1").status, 200);
  EXPECT_EQ(Api("GET", "/api/v1/persons/PI2").status, 404);
  EXPECT_EQ(Api("GET", "/api/v1/persons/PB").body["households"].size(), 1u);
  // Imports of others are not shown to a scoped account; the unscoped sees every import.
  const auto [theirs, theirs_done] =
      run_import(all.token, "code,name,household_id\nPI4,丁," + hb + "\n");
  EXPECT_EQ(theirs_done["results"][0]["result"], "ok") << theirs_done;
  EXPECT_EQ(as_a("GET", "/api/v1/imports/" + std::to_string(theirs)).status, 404);
  EXPECT_EQ(As(all.token, "GET", "/api/v1/imports/" + std::to_string(mine)).status, 200);
}

TEST_F(SiteScopeTest, DeviceSiteMustExist) {
  const int64_t site = Create("/api/v1/sites", {{"name", "小区"}});
  const auto bad = Api("POST", "/api/v1/devices", {{"name", "门"}, {"site_id", site + 100}});
  EXPECT_EQ(bad.status, 400) << bad.body;
  const auto made = Api("POST", "/api/v1/devices", {{"name", "门"}, {"site_id", site}});
  ASSERT_EQ(made.status, 201) << made.body;
  const std::string id = made.body["device_id"];
  EXPECT_EQ(Api("GET", "/api/v1/devices/" + id).body["site_id"], site);
  EXPECT_EQ(Api("PATCH", "/api/v1/devices/" + id, {{"site_id", site + 100}}).status, 400);
  const auto cleared = Api("PATCH", "/api/v1/devices/" + id, {{"site_id", nullptr}});
  EXPECT_EQ(cleared.status, 200);
  EXPECT_TRUE(cleared.body["site_id"].is_null());
  EXPECT_EQ(Api("PATCH", "/api/v1/devices/dev-none", {{"name", "x"}}).status, 404);
}

}  // namespace
}  // namespace anju::server::testing
