// PersonRules: the "rules" object of a gallery upsert (docs/device-protocol.md) and the
// door-time check (R3.2.1: validity dates, doors, weekly windows; R2.1.4.1 open time).
#include <gtest/gtest.h>

#include "terminal/person_rules.h"
#include "testing.h"

namespace anju::terminal {
namespace {

using nlohmann::json;

constexpr int kMon = 0, kTue = 1, kSat = 5, kSun = 6;

TEST(PersonRulesTest, ParsesTheProtocolExample) {
  const auto r = ParseRules("P000123", "张*明", json::parse(R"({
      "valid_from_ms": 1764000000000, "valid_until_ms": null, "doors": [],
      "windows": [{"days": [1,2,3,4,5], "start": "06:00", "end": "23:30"}], "open_ms": 8000})"));
  EXPECT_EQ(r.person, "P000123");
  EXPECT_EQ(r.display_name, "张*明");
  EXPECT_EQ(r.valid_from_ms, 1764000000000);
  EXPECT_FALSE(r.valid_until_ms);
  EXPECT_TRUE(r.doors.empty());
  ASSERT_EQ(r.windows.size(), 1u);
  EXPECT_EQ(r.windows[0].days, 0x1f);  // Monday … Friday
  EXPECT_EQ(r.windows[0].start_min, 6 * 60);
  EXPECT_EQ(r.windows[0].end_min, 23 * 60 + 30);
  EXPECT_EQ(r.open_ms, 8000);
  // Round trip through the protocol form.
  EXPECT_EQ(ParseRules("P000123", "张*明", RulesToJson(r)), r);
}

TEST(PersonRulesTest, NullOrEmptyMeansNoRestriction) {
  for (const json& j : {json(), json::object()}) {
    const auto r = ParseRules("P1", "", j);
    EXPECT_EQ(Authorise(r, 3, 0, kSun, 0), Authorisation::kAllowed);
    EXPECT_EQ(r.open_ms, 0);
  }
  // Unknown fields are ignored, as the protocol asks of clients reading responses.
  EXPECT_NO_THROW(ParseRules("P1", "", json{{"future_field", 1}}));
}

TEST(PersonRulesTest, BadRulesAreRefusedWithTheField) {
  const std::vector<std::string> bad = {
      R"([1,2])",
      R"({"valid_from_ms": "yesterday"})",
      R"({"valid_from_ms": 2000, "valid_until_ms": 1000})",
      R"({"doors": 0})",
      R"({"doors": [-1]})",
      R"({"doors": ["front"]})",
      R"({"windows": {"days": [1]}})",
      R"({"windows": [{"days": [0], "start": "06:00", "end": "07:00"}]})",
      R"({"windows": [{"days": [8], "start": "06:00", "end": "07:00"}]})",
      R"({"windows": [{"days": [], "start": "06:00", "end": "07:00"}]})",
      R"({"windows": [{"start": "6:00", "end": "07:00"}]})",
      R"({"windows": [{"start": "06:60", "end": "07:00"}]})",
      R"({"windows": [{"start": "24:01", "end": "07:00"}]})",
      R"({"windows": [{"start": "24:00", "end": "07:00"}]})",
      R"({"windows": [{"start": "25:00"}]})",
      R"({"windows": [{"start": 600, "end": "07:00"}]})",
      R"({"windows": [{"start": "07:00", "end": "07:00"}]})",
      R"({"open_ms": -5})",
      R"({"open_ms": 1.5})",
      R"({"open_ms": 99999999})",
  };
  for (const auto& text : bad) {
    SCOPED_TRACE(text);
    EXPECT_EQ(testing::CodeOf([&] { ParseRules("P9", "", json::parse(text)); }),
              ErrorCode::kInvalidArgument);
  }
  try {
    ParseRules("P9", "", json::parse(R"({"windows": [{"start": "6:00"}]})"));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("P9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("windows[0].start"), std::string::npos);
  }
}

TEST(PersonRulesTest, ValidityBoundaries) {
  PersonRules r;
  r.valid_from_ms = 1000;
  r.valid_until_ms = 2000;  // exclusive
  EXPECT_EQ(Authorise(r, 0, 999, kMon, 600), Authorisation::kNotYetValid);
  EXPECT_EQ(Authorise(r, 0, 1000, kMon, 600), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 0, 1999, kMon, 600), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 0, 2000, kMon, 600), Authorisation::kExpired);
  EXPECT_STREQ(AuthorisationName(Authorisation::kExpired), "expired");
  EXPECT_STREQ(AuthorisationName(Authorisation::kNotYetValid), "not_yet_valid");
}

TEST(PersonRulesTest, Doors) {
  auto r = ParseRules("P1", "", json{{"doors", {0, 2}}});
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 0), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 2, 0, kMon, 0), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 1, 0, kMon, 0), Authorisation::kWrongDoor);
  EXPECT_STREQ(AuthorisationName(Authorisation::kWrongDoor), "wrong_door");
}

// A resident of another unit held at a unit door to be recognised (docs/matching.md, "Unit
// doors") is refused at every door and time, with the door reason.
TEST(PersonRulesTest, RecogniseOnlyNeverOpens) {
  auto r = ParseRules("P7", "李*", json{{"recognise_only", true}});
  EXPECT_TRUE(r.recognise_only);
  for (int door : {0, 1, 2}) EXPECT_EQ(Authorise(r, door, 0, kMon, 600), Authorisation::kWrongDoor);
  EXPECT_EQ(ParseRules("P7", "李*", RulesToJson(r)), r);
  EXPECT_FALSE(ParseRules("P7", "", json{{"recognise_only", false}}).recognise_only);
  EXPECT_FALSE(ParseRules("P7", "", json::object()).recognise_only);
  EXPECT_EQ(testing::CodeOf([&] {
              ParseRules("P7", "", json{{"recognise_only", "yes"}});
            }),
            ErrorCode::kInvalidArgument);
}

TEST(PersonRulesTest, WindowEdgesAnd2400) {
  auto r = ParseRules(
      "P1", "", json::parse(R"({"windows": [{"days": [1], "start": "06:00", "end": "24:00"}]})"));
  EXPECT_EQ(r.windows[0].end_min, 1440);
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 6 * 60 - 1), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 6 * 60), Authorisation::kAllowed);  // start inclusive
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 1439), Authorisation::kAllowed);    // 23:59 until 24:00
  EXPECT_EQ(Authorise(r, 0, 0, kTue, 0), Authorisation::kOutsideHours);  // Tuesday 00:00
  EXPECT_EQ(Authorise(r, 0, 0, kSun, 600), Authorisation::kOutsideHours);
  auto r2 = ParseRules(
      "P1", "", json::parse(R"({"windows": [{"days": [7], "start": "00:00", "end": "08:00"}]})"));
  EXPECT_EQ(Authorise(r2, 0, 0, kSun, 0), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r2, 0, 0, kSun, 479), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r2, 0, 0, kSun, 480), Authorisation::kOutsideHours);  // end exclusive
  EXPECT_EQ(Authorise(r2, 0, 0, kSat, 100), Authorisation::kOutsideHours);
  EXPECT_EQ(RulesToJson(r)["windows"][0]["end"], "24:00");
}

TEST(PersonRulesTest, OvernightWindowBelongsToTheDayItStarts) {
  // Sunday 22:00 → Monday 06:00 (days 7 = Sunday); Monday evening is not included.
  auto r = ParseRules(
      "P1", "", json::parse(R"({"windows": [{"days": [7], "start": "22:00", "end": "06:00"}]})"));
  EXPECT_EQ(Authorise(r, 0, 0, kSun, 22 * 60), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 0, 0, kSun, 21 * 60 + 59), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 5 * 60 + 59), Authorisation::kAllowed);  // week wraps
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 6 * 60), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 0, 0, kMon, 23 * 60), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 0, 0, kSat, 23 * 60), Authorisation::kOutsideHours);
}

TEST(PersonRulesTest, SeveralWindowsAnyOneAllows) {
  auto r = ParseRules("P1", "", json::parse(R"({"windows": [
      {"days": [1,2,3,4,5], "start": "07:00", "end": "09:00"},
      {"days": [6,7], "start": "10:00", "end": "12:00"}]})"));
  EXPECT_EQ(Authorise(r, 0, 0, kTue, 8 * 60), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 0, 0, kTue, 11 * 60), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 0, 0, kSat, 11 * 60), Authorisation::kAllowed);
  EXPECT_EQ(Authorise(r, 0, 0, kSat, 8 * 60), Authorisation::kOutsideHours);
}

TEST(PersonRulesTest, ValidityIsCheckedBeforeDoorAndTime) {
  PersonRules r;
  r.valid_until_ms = 10;
  r.doors = {1};
  r.windows = {TimeWindow{0x01, 0, 60}};
  EXPECT_EQ(Authorise(r, 0, 50, kSun, 600), Authorisation::kExpired);
  r.valid_until_ms.reset();
  EXPECT_EQ(Authorise(r, 0, 50, kSun, 600), Authorisation::kWrongDoor);
  EXPECT_EQ(Authorise(r, 1, 50, kSun, 600), Authorisation::kOutsideHours);
  EXPECT_EQ(Authorise(r, 1, 50, kMon, 30), Authorisation::kAllowed);
}

TEST(PersonRulesTest, WallClockOverloadUsesLocalTime) {
  // A window covering the whole week allows any instant; one excluding every day but a
  // day other than today refuses now.
  PersonRules all;
  all.windows = {TimeWindow{0x7f, 0, 1440}};
  EXPECT_EQ(Authorise(all, 0, std::chrono::system_clock::now()), Authorisation::kAllowed);
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  const int today = (local.tm_wday + 6) % 7;
  PersonRules other_day;
  other_day.windows = {TimeWindow{static_cast<uint8_t>(1u << ((today + 3) % 7)), 0, 1440}};
  EXPECT_EQ(Authorise(other_day, 0, std::chrono::system_clock::now()),
            Authorisation::kOutsideHours);
}

}  // namespace
}  // namespace anju::terminal
