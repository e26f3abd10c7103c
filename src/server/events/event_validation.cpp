#include "server/events/event_validation.h"

#include <set>

#include "core/error.h"
#include "crypto/bytes.h"

namespace anju::server {

using nlohmann::json;

namespace {

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Canonical UUID text (8-4-4-4-12 hex digits), lower-cased so "ABC…" and "abc…" are one id.
std::optional<std::string> NormaliseUuidText(const std::string& s) {
  if (s.size() != 36) return std::nullopt;
  std::string out = s;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
    } else if (!IsHex(s[i])) {
      return std::nullopt;
    } else if (s[i] >= 'A' && s[i] <= 'F') {
      out[i] = char(s[i] - 'A' + 'a');
    }
  }
  return out;
}

bool IsIdentityCode(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '.' || c == '-'))
      return false;
  return true;
}

bool IsSnakeName(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string Text(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct Reject {
  std::string code, message;
};

const std::set<std::string>& Decisions() {
  static const std::set<std::string> s{"open", "deny", "stranger", "spoof", "uncertain"};
  return s;
}

// Validates one event of an upload; fills P or throws Reject.
void Validate(const json& ev, const EventStoreOptions& opt, int64_t now_ms, UploadedEvent& p) {
  if (!ev.is_object()) throw Reject{"bad_request", "事件必须是对象 / event must be a JSON object"};
  for (auto it = ev.begin(); it != ev.end(); ++it) {
    const std::string& k = it.key();
    if (k != "id" && k != "kind" && k != "created_ms" && k != "payload" && k != "snapshot")
      throw Reject{"unknown_field", "未知字段 / unknown field: " + k};
  }
  auto id = ev.find("id");
  if (id == ev.end() || !id->is_string())
    throw Reject{"bad_request", "缺少事件ID / id must be a UUID string"};
  p.sent_id = id->get<std::string>();
  auto norm = NormaliseUuidText(p.sent_id);
  if (!norm) throw Reject{"bad_request", "事件ID格式错误 / id is not a UUID: " + p.sent_id};
  p.id = *norm;

  p.kind = Text(ev, "kind");
  if (p.kind != "access" && p.kind != "alarm" && p.kind != "door_event")
    throw Reject{"bad_request", "未知事件类型 / kind must be access, alarm or door_event"};

  auto created = ev.find("created_ms");
  if (created == ev.end() || !created->is_number_integer())
    throw Reject{"bad_request", "缺少时间 / created_ms must be an integer (Unix ms)"};
  p.created_ms = created->get<int64_t>();
  auto check_time = [&](int64_t t, const char* name) {
    if (t < opt.min_time_ms || t > now_ms + opt.max_future_ms)
      throw Reject{"bad_request",
                   std::string("时间不合理（终端时钟错误？） / ") + name +
                       " out of range (terminal clock wrong?): " + std::to_string(t)};
  };
  check_time(p.created_ms, "created_ms");

  auto payload = ev.find("payload");
  if (payload == ev.end() || !payload->is_object())
    throw Reject{"bad_request", "payload 必须是对象 / payload must be a JSON object"};
  p.payload_text = payload->dump();
  if (p.payload_text.size() > kMaxPayloadBytes)
    throw Reject{"too_large", "payload 过大 / payload larger than " +
                                  std::to_string(kMaxPayloadBytes) + " bytes"};
  const json& pl = *payload;

  p.time_ms = p.created_ms;
  if (auto t = pl.find("time_ms"); t != pl.end() && !t->is_null()) {
    if (!t->is_number_integer())
      throw Reject{"bad_request", "payload.time_ms must be an integer (Unix ms)"};
    p.time_ms = t->get<int64_t>();
    check_time(p.time_ms, "payload.time_ms");
  }
  if (auto d = pl.find("door"); d != pl.end() && !d->is_null()) {
    if (d->is_number_integer() && d->get<int64_t>() >= 0)
      p.door = std::to_string(d->get<int64_t>());
    else if (d->is_string() && !d->get<std::string>().empty() && d->get<std::string>().size() <= 64)
      p.door = d->get<std::string>();
    else
      throw Reject{"bad_request", "门编号错误 / payload.door must be a door number or name"};
  }
  if (auto who = pl.find("person"); who != pl.end() && !who->is_null()) {
    if (!who->is_string() || !IsIdentityCode(who->get<std::string>()))
      throw Reject{"bad_request",
                   "人员编码错误 / payload.person must be 1-64 characters of [A-Za-z0-9_.-]"};
    p.person = who->get<std::string>();
  }
  p.description = Text(pl, "description");
  if (p.description.empty()) p.description = Text(pl, "description_zh");

  if (p.kind == "access") {
    p.decision = Text(pl, "decision");
    if (!Decisions().count(p.decision))
      throw Reject{"bad_request",
                   "识别结果错误 / payload.decision must be open, deny, stranger, spoof or "
                   "uncertain"};
    // The alarm itself comes as an alarm record (docs/device-protocol.md): anju-terminal
    // sends one with the whole frame for every stranger and spoof, so an access record
    // raising one too would double every alarm. The type is kept for queries.
    if (p.decision == "stranger" || p.decision == "spoof") p.alarm_type = p.decision;
  } else if (p.kind == "alarm") {
    p.alarm_type = Text(pl, "alarm_type");
    if (!IsSnakeName(p.alarm_type))
      throw Reject{"bad_request", "告警类型错误 / payload.alarm_type must be 1-32 of [a-z0-9_]"};
    p.severity = Text(pl, "severity");
    if (p.severity.empty()) p.severity = "major";
    if (p.severity != "critical" && p.severity != "major" && p.severity != "minor")
      throw Reject{"bad_request",
                   "告警级别错误 / payload.severity must be critical, major or minor"};
    p.creates_alarm = true;
  }

  if (auto snap = ev.find("snapshot"); snap != ev.end() && !snap->is_null()) {
    if (!snap->is_string())
      throw Reject{"bad_request", "抓拍图必须是 base64 / snapshot must be a base64 string"};
    const std::string& b64 = snap->get_ref<const std::string&>();
    if (b64.size() / 4 * 3 > kMaxSnapshotBytes + 3)
      throw Reject{"too_large", "抓拍图过大 / snapshot larger than " +
                                    std::to_string(kMaxSnapshotBytes) + " bytes"};
    try {
      p.jpeg = crypto::FromBase64(b64);
    } catch (const Error&) {
      throw Reject{"bad_request", "抓拍图不是合法 base64 / snapshot is not valid base64"};
    }
    if (p.jpeg.size() < 4 || p.jpeg[0] != 0xFF || p.jpeg[1] != 0xD8 || p.jpeg[2] != 0xFF)
      throw Reject{"bad_request", "抓拍图不是 JPEG / snapshot is not a JPEG image"};
  }
  p.ok = true;
}

}  // namespace

std::optional<std::string> NormaliseEventId(const std::string& id) {
  return NormaliseUuidText(id);
}

UploadedEvent ParseUploadedEvent(const json& ev, const EventStoreOptions& options, int64_t now_ms) {
  UploadedEvent p;
  try {
    Validate(ev, options, now_ms, p);
  } catch (const Reject& r) {
    p.ok = false;
    p.code = r.code;
    p.message = r.message;
    if (p.sent_id.empty() && ev.is_object())
      if (auto id = ev.find("id"); id != ev.end() && id->is_string()) p.sent_id = *id;
    p.raw = ev.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  return p;
}

}  // namespace anju::server
