// PersonRules: who may pass which door when — the "rules" object of a gallery upsert
// (docs/device-protocol.md, "Gallery sync"), and the check made at the door after a
// face has been recognised (validity dates, doors, weekly time windows, R3.2.1).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace anju::terminal {

// A weekly window in the terminal's local time. `days`: bit 0 = Monday … bit 6 = Sunday.
// Minutes since local midnight, end exclusive, 0 ≤ start < 1440, 0 < end ≤ 1440 ("24:00").
// start > end is an overnight window (22:00–06:00): it belongs to the day it starts on.
struct TimeWindow {
  uint8_t days = 0x7f;
  int start_min = 0;
  int end_min = 1440;
  bool operator==(const TimeWindow&) const = default;
};

struct PersonRules {
  std::string person;                                    // identity code
  std::string display_name;                              // masked name ("张*明"), may be empty
  std::optional<int64_t> valid_from_ms, valid_until_ms;  // Unix ms; until is exclusive
  std::vector<int> doors;                                // empty = every door
  std::vector<TimeWindow> windows;                       // empty = any time
  int open_ms = 0;  // 0 = the terminal's default (longer for elderly/disabled, R2.1.4.1)
  // In this terminal's gallery to be recognised, never let in: a resident of another unit
  // held at a unit door so that a look-alike is recognised as who they are (and refused as
  // wrong_door, or "uncertain" on a near tie) instead of being taken for a resident of this
  // door (docs/matching.md, "Unit doors").
  bool recognise_only = false;
  bool operator==(const PersonRules&) const = default;
};

// RULES: the protocol object, e.g.
//   {"valid_from_ms": 1764000000000, "valid_until_ms": null, "doors": [0],
//    "windows": [{"days": [1,2,3,4,5], "start": "06:00", "end": "23:30"}], "open_ms": 8000,
//    "recognise_only": false}
// null or {} = no restriction. Every field is optional; unknown fields are ignored (the
// protocol tells clients to ignore unknown response fields). A field of the wrong type or
// out of range throws anju::Error(kInvalidArgument) naming the person and the field.
PersonRules ParseRules(std::string person, std::string display_name, const nlohmann::json& rules);
// The protocol object again (days as a list 1..7, times "HH:MM"); ParseRules round-trips it.
nlohmann::json RulesToJson(const PersonRules& rules);

enum class Authorisation { kAllowed, kNotYetValid, kExpired, kWrongDoor, kOutsideHours };
// "allowed", "not_yet_valid", "expired", "wrong_door", "outside_hours".
const char* AuthorisationName(Authorisation a);
// Chinese / English texts for the display ("有效期已过" / "access expired").
const char* AuthorisationMessageZh(Authorisation a);
const char* AuthorisationMessageEn(Authorisation a);

// Checks in this order: recognise-only (wrong_door), validity dates, door, time window.
// Windows use local time (TZ).
Authorisation Authorise(const PersonRules& rules, int door,
                        std::chrono::system_clock::time_point now);
// The same with the local calendar given explicitly (tests, other time zones):
// WEEKDAY 0 = Monday … 6 = Sunday, MINUTE 0..1439 since local midnight.
Authorisation Authorise(const PersonRules& rules, int door, int64_t now_ms, int weekday,
                        int minute);

}  // namespace anju::terminal
