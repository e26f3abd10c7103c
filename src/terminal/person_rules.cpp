#include "terminal/person_rules.h"

#include <ctime>
#include <string_view>

#include "core/error.h"

namespace anju::terminal {
namespace {

[[noreturn]] void Bad(const std::string& person, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument,
              "规则无效 / bad access rules for '" + person + "': " + what);
}

// "HH:MM", 00:00 … 24:00 → minutes.
int ParseClock(const std::string& person, const std::string& field, const nlohmann::json& v) {
  if (!v.is_string()) Bad(person, field + " must be a string \"HH:MM\"");
  const std::string s = v.get<std::string>();
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (s.size() != 5 || !digit(s[0]) || !digit(s[1]) || s[2] != ':' || !digit(s[3]) || !digit(s[4]))
    Bad(person, field + " '" + s + "' is not \"HH:MM\"");
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0))
    Bad(person, field + " '" + s + "' is not a time of day (00:00 … 24:00)");
  return h * 60 + m;
}

std::string FormatClock(int minutes) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02d:%02d", minutes / 60, minutes % 60);
  return buf;
}

std::optional<int64_t> OptionalMs(const std::string& person, const nlohmann::json& rules,
                                  const char* key) {
  auto it = rules.find(key);
  if (it == rules.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    Bad(person, std::string(key) + " must be an integer (Unix ms) or null");
  return it->get<int64_t>();
}

bool DayIn(uint8_t days, int weekday) {
  return (days >> ((weekday % 7 + 7) % 7)) & 1;
}

}  // namespace

PersonRules ParseRules(std::string person, std::string display_name, const nlohmann::json& rules) {
  PersonRules r;
  r.person = std::move(person);
  r.display_name = std::move(display_name);
  const std::string& who = r.person;
  if (rules.is_null()) return r;
  if (!rules.is_object()) Bad(who, "rules must be a JSON object");
  r.valid_from_ms = OptionalMs(who, rules, "valid_from_ms");
  r.valid_until_ms = OptionalMs(who, rules, "valid_until_ms");
  if (r.valid_from_ms && r.valid_until_ms && *r.valid_until_ms <= *r.valid_from_ms)
    Bad(who, "valid_until_ms must be after valid_from_ms");
  if (auto it = rules.find("doors"); it != rules.end() && !it->is_null()) {
    if (!it->is_array()) Bad(who, "doors must be a list of door numbers");
    for (const auto& d : *it) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > 255)
        Bad(who, "doors: " + d.dump() + " is not a door number 0..255");
      r.doors.push_back(d.get<int>());
    }
  }
  if (auto it = rules.find("windows"); it != rules.end() && !it->is_null()) {
    if (!it->is_array()) Bad(who, "windows must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& w = (*it)[i];
      const std::string at = "windows[" + std::to_string(i) + "]";
      if (!w.is_object()) Bad(who, at + " must be an object {days, start, end}");
      TimeWindow tw;
      if (auto d = w.find("days"); d != w.end() && !d->is_null()) {
        if (!d->is_array() || d->empty()) Bad(who, at + ".days must be a non-empty list of 1..7");
        tw.days = 0;
        for (const auto& day : *d) {
          if (!day.is_number_integer() || day.get<int64_t>() < 1 || day.get<int64_t>() > 7)
            Bad(who, at + ".days: " + day.dump() + " is not a weekday 1 (Monday) … 7 (Sunday)");
          tw.days |= static_cast<uint8_t>(1u << (day.get<int>() - 1));
        }
      }
      tw.start_min = w.contains("start") ? ParseClock(who, at + ".start", w["start"]) : 0;
      tw.end_min = w.contains("end") ? ParseClock(who, at + ".end", w["end"]) : 1440;
      if (tw.start_min == 1440) Bad(who, at + ".start cannot be 24:00");
      if (tw.end_min == 0) tw.end_min = 1440;  // "00:00" as an end means midnight
      if (tw.start_min == tw.end_min) Bad(who, at + " is empty (start = end)");
      r.windows.push_back(tw);
    }
  }
  if (auto it = rules.find("recognise_only"); it != rules.end() && !it->is_null()) {
    if (!it->is_boolean()) Bad(who, "recognise_only must be true or false");
    r.recognise_only = it->get<bool>();
  }
  if (auto it = rules.find("open_ms"); it != rules.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 600'000)
      Bad(who, "open_ms must be an integer 0 … 600000");
    r.open_ms = it->get<int>();
  }
  return r;
}

nlohmann::json RulesToJson(const PersonRules& r) {
  nlohmann::json j = nlohmann::json::object();
  j["valid_from_ms"] = r.valid_from_ms ? nlohmann::json(*r.valid_from_ms) : nlohmann::json();
  j["valid_until_ms"] = r.valid_until_ms ? nlohmann::json(*r.valid_until_ms) : nlohmann::json();
  j["doors"] = r.doors;
  j["windows"] = nlohmann::json::array();
  for (const auto& w : r.windows) {
    nlohmann::json days = nlohmann::json::array();
    for (int d = 0; d < 7; ++d)
      if (DayIn(w.days, d)) days.push_back(d + 1);
    j["windows"].push_back(
        {{"days", days}, {"start", FormatClock(w.start_min)}, {"end", FormatClock(w.end_min)}});
  }
  j["open_ms"] = r.open_ms;
  j["recognise_only"] = r.recognise_only;
  return j;
}

const char* AuthorisationName(Authorisation a) {
  switch (a) {
    case Authorisation::kAllowed:
      return "allowed";
    case Authorisation::kNotYetValid:
      return "not_yet_valid";
    case Authorisation::kExpired:
      return "expired";
    case Authorisation::kWrongDoor:
      return "wrong_door";
    case Authorisation::kOutsideHours:
      return "outside_hours";
  }
  return "unknown";
}

const char* AuthorisationMessageZh(Authorisation a) {
  switch (a) {
    case Authorisation::kAllowed:
      return "请通行";
    case Authorisation::kNotYetValid:
      return "通行权限尚未生效";
    case Authorisation::kExpired:
      return "通行权限已过期";
    case Authorisation::kWrongDoor:
      return "无权通行此门";
    case Authorisation::kOutsideHours:
      return "不在通行时段";
  }
  return "";
}

const char* AuthorisationMessageEn(Authorisation a) {
  switch (a) {
    case Authorisation::kAllowed:
      return "Please pass";
    case Authorisation::kNotYetValid:
      return "Access not yet valid";
    case Authorisation::kExpired:
      return "Access expired";
    case Authorisation::kWrongDoor:
      return "No access to this door";
    case Authorisation::kOutsideHours:
      return "Outside permitted hours";
  }
  return "";
}

Authorisation Authorise(const PersonRules& r, int door, int64_t now_ms, int weekday, int minute) {
  if (r.recognise_only) return Authorisation::kWrongDoor;
  if (r.valid_from_ms && now_ms < *r.valid_from_ms) return Authorisation::kNotYetValid;
  if (r.valid_until_ms && now_ms >= *r.valid_until_ms) return Authorisation::kExpired;
  if (!r.doors.empty()) {
    bool found = false;
    for (int d : r.doors) found = found || d == door;
    if (!found) return Authorisation::kWrongDoor;
  }
  if (r.windows.empty()) return Authorisation::kAllowed;
  for (const auto& w : r.windows) {
    if (w.start_min < w.end_min) {
      if (DayIn(w.days, weekday) && minute >= w.start_min && minute < w.end_min)
        return Authorisation::kAllowed;
    } else {  // overnight: the evening part on its day, the morning part on the next
      if (DayIn(w.days, weekday) && minute >= w.start_min) return Authorisation::kAllowed;
      if (DayIn(w.days, weekday - 1) && minute < w.end_min) return Authorisation::kAllowed;
    }
  }
  return Authorisation::kOutsideHours;
}

Authorisation Authorise(const PersonRules& r, int door, std::chrono::system_clock::time_point now) {
  const int64_t ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  const int weekday = (local.tm_wday + 6) % 7;  // tm: 0 = Sunday → 0 = Monday
  return Authorise(r, door, ms, weekday, local.tm_hour * 60 + local.tm_min);
}

}  // namespace anju::terminal
