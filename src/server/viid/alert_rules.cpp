#include "server/viid/alert_rules.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "protocol/viid.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;

namespace cameras {

// Minutes since local midnight at UTC+OFFSET.
int LocalMinute(int64_t ms, int offset_minutes) {
  const int64_t m = (ms / 60000 + offset_minutes) % 1440;
  return int(m < 0 ? m + 1440 : m);
}

int ParseHhMm(const json& v, const char* what) {
  if (!v.is_string()) throw Error(ErrorCode::kInvalidArgument, std::string(what) + ": HH:MM");
  const std::string s = v.get<std::string>();
  int h = 0, m = 0;
  if (s.size() != 5 || s[2] != ':' || std::sscanf(s.c_str(), "%2d:%2d", &h, &m) != 2 || h > 23 ||
      m > 59 || h < 0 || m < 0)
    throw Error(ErrorCode::kInvalidArgument,
                std::string("时间格式 HH:MM / ") + what + " must be HH:MM");
  return h * 60 + m;
}

}  // namespace cameras

using cameras::ParseHhMm;

json AlertRule::ToJson() const {
  return {{"id", id},           {"type", type},     {"name", name},
          {"enabled", enabled}, {"params", params}, {"created_ms", created_ms}};
}

AlertRule ValidateRule(AlertRule r) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (!r.params.is_object()) bad("params 必须是对象 / params must be an object");
  json& p = r.params;
  auto positive = [&](const char* key, int64_t def, int64_t max) {
    if (!p.contains(key)) p[key] = def;
    if (!p[key].is_number_integer() || p[key].get<int64_t>() < 1 || p[key].get<int64_t>() > max)
      bad(std::string("参数超出范围 / params.") + key + " must be an integer in 1.." +
          std::to_string(max));
  };
  auto allowed = [&](std::initializer_list<const char*> keys) {
    for (auto& [k, v] : p.items()) {
      bool ok = false;
      for (const char* a : keys) ok = ok || k == a;
      if (!ok)
        throw Error(ErrorCode::kInvalidArgument, "未知参数 / unknown params." + k, "unknown_field");
    }
  };
  if (r.type == "repeated_stranger") {
    allowed({"count", "window_hours", "scope"});
    positive("count", 5, 100000);
    positive("window_hours", 168, 24 * 366);
    if (!p.contains("scope")) p["scope"] = "device";
    if (p["scope"] != "device" && p["scope"] != "unit")
      bad("params.scope 必须是 device 或 unit / params.scope must be device or unit");
  } else if (r.type == "stranger_at_night") {
    allowed({"start", "end", "utc_offset_minutes"});
    if (!p.contains("start")) p["start"] = "22:00";
    if (!p.contains("end")) p["end"] = "06:00";
    ParseHhMm(p["start"], "params.start");
    ParseHhMm(p["end"], "params.end");
    if (!p.contains("utc_offset_minutes")) p["utc_offset_minutes"] = 480;
    if (!p["utc_offset_minutes"].is_number_integer() ||
        std::abs(p["utc_offset_minutes"].get<int64_t>()) > 14 * 60)
      bad("params.utc_offset_minutes 无效 / invalid");
  } else if (r.type == "tenant_absent") {
    allowed({"days"});
    positive("days", 7, 3650);
  } else if (r.type == "elderly_not_seen") {
    // R3.4.2.2, "an elderly tenant not seen": from min_age years, after hours unseen.
    allowed({"min_age", "hours"});
    if (!p.contains("min_age")) p["min_age"] = 70;
    if (!p["min_age"].is_number_integer() || p["min_age"].get<int64_t>() < 50 ||
        p["min_age"].get<int64_t>() > 120)
      bad("参数超出范围 / params.min_age must be an integer in 50..120 (years)");
    positive("hours", 24, 24 * 30);
  } else if (r.type == "shared_authorisation") {
    allowed({"distinct", "window_hours", "match_seconds"});
    positive("distinct", 3, 1000);
    positive("window_hours", 168, 24 * 366);
    positive("match_seconds", 10, 600);
  } else if (r.type == "blacklist") {
    allowed({"persons", "strangers"});
    if (!p.contains("persons")) p["persons"] = json::array();
    if (!p.contains("strangers")) p["strangers"] = json::array();
    if (!p["persons"].is_array() || !p["strangers"].is_array())
      bad("params.persons / strangers 必须是数组 / must be arrays");
    for (const auto& c : p["persons"])
      if (!c.is_string() || !viid::ValidId(c.get<std::string>()))
        bad("params.persons: 人员编码 / identity codes");
    for (const auto& s : p["strangers"])
      if (!s.is_number_integer()) bad("params.strangers: 陌生人编号 / stranger ids");
  } else {
    bad("未知规则类型 / unknown rule type (repeated_stranger, stranger_at_night, "
        "tenant_absent, elderly_not_seen, shared_authorisation, blacklist)");
  }
  if (r.name.empty()) r.name = r.type;
  return r;
}

}  // namespace anju::server
