// Intake limits on device JSON and reports that survive any stored row (docs/reliability.md,
// "Hostile input"; docs/device-protocol.md, "Limits"): one door event nested 2,001 levels deep
// used to be stored, and from then on GET /reports/traffic answered 500 for everyone.
#include <sqlite3.h>

#include <string>

#include "protocol/device_auth.h"
#include "server_test_support.h"
#include "testing.h"

namespace anju::server::testing {
namespace {

using nlohmann::json;

using IntakeLimitsTest = ServerTest;

// A door-event upload whose payload carries a value nested DEPTH arrays deep, as text (the
// JSON library would refuse to build it no more than the server should store it).
std::string DeepDoorEvent(const std::string& id, int64_t now, int depth) {
  return R"({"events":[{"id":")" + id + R"(","kind":"door_event","created_ms":)" +
         std::to_string(now) + R"(,"payload":{"time_ms":)" + std::to_string(now) +
         R"(,"door":0,"event":"exit_button","x":)" + std::string(size_t(depth), '[') +
         std::string(size_t(depth), ']') + "}}]}";
}

int64_t Exits(const json& report) {
  int64_t n = 0;
  for (const auto& row : report["items"]) n += row.value("exits", int64_t(0));
  return n;
}

TEST_F(IntakeLimitsTest, EventNested2001LevelsIsRefusedAndTrafficReportSurvivesAnyRow) {
  auto dev = RegisterDevice("gate");
  const int64_t now = protocol::NowMs();

  // Refused at intake with a clear 400, nothing stored.
  const auto deep =
      dev.client->Call("POST", "/api/v1/device/events",
                       DeepDoorEvent("00000000-0000-4000-8000-000000000001", now, 2001));
  EXPECT_EQ(deep.status, 400) << deep.body;
  EXPECT_NE(deep.body.find("nested deeper than"), std::string::npos) << deep.body;
  auto events = Api("GET", "/api/v1/events?kind=door_event");
  ASSERT_EQ(events.status, 200) << events.body;
  EXPECT_EQ(events.body["total"], 0);

  // An ordinary exit-button event is stored and counted.
  const json ok = {{"events",
                    {{{"id", "00000000-0000-4000-8000-000000000002"},
                      {"kind", "door_event"},
                      {"created_ms", now},
                      {"payload", {{"time_ms", now}, {"door", 0}, {"event", "exit_button"}}}},
                     {{"id", "00000000-0000-4000-8000-000000000003"},
                      {"kind", "door_event"},
                      {"created_ms", now},
                      {"payload", {{"time_ms", now}, {"door", 0}, {"event", "exit_button"}}}}}}};
  EXPECT_EQ(dev.client->CallJson("POST", "/api/v1/device/events", &ok)["stored"].size(), 2u);
  auto report = Api("GET", "/api/v1/reports/traffic?bucket=day");
  ASSERT_EQ(report.status, 200) << report.body;
  EXPECT_EQ(Exits(report.body), 2);

  // A row that got in before the limits (written into events.db directly, as an older
  // server stored it): the report still answers and counts the readable rows.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "events.db").c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    const std::string payload = R"({"time_ms":)" + std::to_string(now) +
                                R"(,"door":0,"event":"exit_button","x":)" + std::string(2001, '[') +
                                std::string(2001, ']') + "}";
    sqlite3_stmt* s = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db,
                                 "UPDATE events SET payload = ? WHERE id = (SELECT id FROM events "
                                 "WHERE kind = 'door_event' ORDER BY id LIMIT 1)",
                                 -1, &s, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_bind_text(s, 1, payload.c_str(), int(payload.size()), SQLITE_TRANSIENT);
    EXPECT_EQ(sqlite3_step(s), SQLITE_DONE) << sqlite3_errmsg(db);
    EXPECT_EQ(sqlite3_changes(db), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
  }
  report = Api("GET", "/api/v1/reports/traffic?bucket=day");
  ASSERT_EQ(report.status, 200) << report.body;
  EXPECT_EQ(Exits(report.body), 1);
  EXPECT_EQ(Api("GET", "/api/v1/reports/traffic?format=csv").status, 200);
  events = Api("GET", "/api/v1/events?kind=door_event");
  ASSERT_EQ(events.status, 200) << events.body;
  EXPECT_EQ(events.body["total"], 2);
}

// People's clients get the same depth limit; a body just inside it still parses.
TEST_F(IntakeLimitsTest, AdminBodiesAreDepthLimitedToo) {
  const std::string deep =
      R"({"name":"x","extra":)" + std::string(2001, '[') + std::string(2001, ']') + "}";
  auto r = Raw("POST", "/api/v1/sites", deep, AdminHeaders());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("nested deeper than"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace anju::server::testing
