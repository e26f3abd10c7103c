#include "protocol/viid.h"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <limits>
#include <map>

#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/json_limits.h"

namespace anju::protocol::viid {

using nlohmann::json;

namespace {

[[noreturn]] void Bad(const std::string& message) {
  throw Error(ErrorCode::kInvalidArgument, message);
}

// ---- civil dates (Howard Hinnant's algorithms; no time zone database involved) ----

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = unsigned(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = int64_t(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// ---- JSON field access -----------------------------------------------------------------

// Camera JSON goes through the limited parser (json_limits.h): depth, size, string and
// array limits are enforced while parsing, so hostile input cannot make any later
// recursive walk deep.
json ParseJson(std::string_view text) {
  JsonLimits limits = JsonLimits::Peer();
  limits.max_depth = static_cast<int>(kMaxJsonDepth);
  try {
    return protocol::ParseJson(text, limits);
  } catch (const Error& e) {
    Bad(e.what());
  }
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

// GA/T 1400 spells its keys in one case, cameras in others ("Faceobject", "faceObject",
// "FacelistObject"): the standard's spelling first, else the first key equal to it ignoring
// case (R3.3.3.3: interoperate with other vendors' devices).
const json* Field(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end())
    for (auto i = obj.begin(); i != obj.end(); ++i)
      if (IEquals(i.key(), key)) {
        it = i;
        break;
      }
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

// "a string", "an array" … for messages that say what was expected and what came.
std::string TypeOf(const json& v) {
  switch (v.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float:
      return "a number";
    default:
      return "null";
  }
}

// The refusal of a key that is missing or of the wrong type: names the key (PATH, e.g.
// "FaceListObject.FaceObject") and what was expected (WANT_ZH / WANT_EN, e.g. "数组" /
// "an array").
[[noreturn]] void BadKey(const std::string& path, const json* got, const char* want_zh,
                         const char* want_en) {
  if (!got)
    Bad("缺少字段 " + path + "（应为" + want_zh + "）/ missing key " + path + " (expected " +
        want_en + ")");
  Bad(path + " 类型错误（应为" + want_zh + "）/ " + path + ": expected " + want_en + ", got " +
      TypeOf(*got));
}

// A string field; numbers are accepted as their decimal text (vendors differ).
std::string Str(const json& obj, const char* key, bool required, size_t max_len = 256) {
  const json* v = Field(obj, key);
  if (!v) {
    if (required) BadKey(key, nullptr, "字符串", "a string");
    return "";
  }
  std::string s;
  if (v->is_string())
    s = v->get<std::string>();
  else if (v->is_number_integer())
    s = std::to_string(v->get<int64_t>());
  else if (v->is_number_unsigned())
    s = std::to_string(v->get<uint64_t>());
  else
    BadKey(key, v, "字符串", "a string");
  if (s.size() > max_len) Bad(std::string("字段过长 / field too long: ") + key);
  if (required && s.empty()) Bad(std::string("字段为空 / field empty: ") + key);
  return s;
}

// An integer field given as a number or a decimal string; FALLBACK when absent.
int Int(const json& obj, const char* key, int fallback, int lo = std::numeric_limits<int>::min(),
        int hi = std::numeric_limits<int>::max()) {
  const json* v = Field(obj, key);
  if (!v) return fallback;
  int64_t n = 0;
  if (v->is_number_integer()) {
    n = v->get<int64_t>();
  } else if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    n = u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max()
                                                          : int64_t(u);
  } else if (v->is_string()) {
    const std::string s = v->get<std::string>();
    if (s.empty()) return fallback;
    size_t i = s[0] == '-' ? 1 : 0;
    if (i == s.size() || s.size() - i > 10 ||
        s.find_first_not_of("0123456789", i) != std::string::npos)
      Bad(std::string("字段不是整数 / field is not an integer: ") + key);
    n = std::stoll(s);
  } else {
    Bad(std::string("字段不是整数 / field is not an integer: ") + key);
  }
  if (n < lo || n > hi) Bad(std::string("字段超出范围 / field out of range: ") + key);
  return int(n);
}

const json& Obj(const json& parent, const char* key) {
  const json* v = Field(parent, key);
  if (!v || !v->is_object()) BadKey(key, v, "对象", "an object");
  return *v;
}

std::vector<uint8_t> DecodeImage(std::string_view b64) {
  // Some cameras wrap base64 lines or send a data URL: both are tolerated.
  if (b64.starts_with("data:")) {
    const size_t comma = b64.find(',');
    if (comma == std::string_view::npos) Bad("Data 格式错误 / Data: malformed data URL");
    b64.remove_prefix(comma + 1);
  }
  if (b64.size() > (kMaxImageBytes / 3 + 1) * 4 + 64 * 1024)
    Bad("图像过大 / image too large (max 4 MiB)");
  std::string clean;
  clean.reserve(b64.size());
  for (char c : b64)
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') clean.push_back(c);
  crypto::Bytes bytes;
  try {
    bytes = crypto::FromBase64(clean);
  } catch (const Error&) {
    Bad("Data 不是 base64 / Data: not base64");
  }
  CheckJpeg(bytes, "Data");
  return bytes;
}

SubImageInfo ParseSubImage(const json& j) {
  if (!j.is_object()) Bad("SubImageInfoObject 必须是对象 / SubImageInfoObject: not an object");
  SubImageInfo s;
  s.image_id = Str(j, "ImageID", false, 64);
  s.event_sort = Str(j, "EventSort", false, 16);
  s.device_id = Str(j, "DeviceID", false, 64);
  if (!s.device_id.empty() && !ValidId(s.device_id))
    Bad("SubImageInfoObject.DeviceID 格式错误 / malformed DeviceID");
  s.type = Str(j, "Type", false, 8);
  if (s.type.empty()) s.type = kImageTypeFace;
  s.file_format = Str(j, "FileFormat", false, 16);
  if (s.file_format.empty()) s.file_format = "Jpeg";
  std::string fmt = s.file_format;
  for (auto& c : fmt) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (fmt != "jpeg" && fmt != "jpg")
    Bad("仅支持 JPEG / only FileFormat Jpeg is supported: " + s.file_format);
  s.shot_time = Str(j, "ShotTime", false, 20);
  if (!s.shot_time.empty()) ParseTime(s.shot_time);  // validates
  s.width = Int(j, "Width", 0, 0, 100000);
  s.height = Int(j, "Height", 0, 0, 100000);
  const json* data = Field(j, "Data");
  if (data && !data->is_string())
    BadKey("SubImageInfoObject.Data", data, "base64 JPEG 字符串", "a base64 JPEG string");
  // Some cameras send only a URL of the image on themselves (StoragePath); the server fetches
  // it (server/viid/image_fetch.h) or refuses the face.
  if (!data) {
    const json* path = Field(j, "StoragePath");
    if (!path || !path->is_string() || path->get_ref<const std::string&>().empty())
      Bad("SubImageInfoObject 缺少 Data（base64 JPEG）或 StoragePath（http 地址）/ "
          "SubImageInfoObject: missing key Data (expected a base64 JPEG string) or StoragePath "
          "(expected an http URL)");
    s.storage_path = Str(j, "StoragePath", true, 1024);
    return s;
  }
  s.data = DecodeImage(data->get_ref<const std::string&>());
  return s;
}

FaceObject ParseFace(const json& j) {
  if (!j.is_object()) Bad("FaceObject 必须是对象 / FaceObject: not an object");
  FaceObject f;
  f.face_id = Str(j, "FaceID", true, 64);
  if (!ValidId(f.face_id)) Bad("FaceID 格式错误 / malformed FaceID");
  f.info_kind = Int(j, "InfoKind", 1, 0, 99);
  f.source_id = Str(j, "SourceID", false, 64);
  f.device_id = Str(j, "DeviceID", true, 64);
  if (!ValidId(f.device_id)) Bad("DeviceID 格式错误 / malformed DeviceID");
  f.left_top_x = Int(j, "LeftTopX", 0, 0, 100000);
  f.left_top_y = Int(j, "LeftTopY", 0, 0, 100000);
  f.right_btm_x = Int(j, "RightBtmX", 0, 0, 100000);
  f.right_btm_y = Int(j, "RightBtmY", 0, 0, 100000);
  f.location_mark_time = Str(j, "LocationMarkTime", false, 20);
  f.face_appear_time = Str(j, "FaceAppearTime", false, 20);
  f.face_disappear_time = Str(j, "FaceDisAppearTime", false, 20);
  for (const auto* t : {&f.location_mark_time, &f.face_appear_time, &f.face_disappear_time})
    if (!t->empty()) ParseTime(*t);
  const json* list = Field(j, "SubImageList");
  if (!list || !list->is_object()) BadKey("SubImageList", list, "对象", "an object");
  const json* items = Field(*list, "SubImageInfoObject");
  if (!items)
    BadKey("SubImageList.SubImageInfoObject", items, "数组或对象", "an array or an object");
  // A single image is sometimes sent as an object instead of a one-element array.
  if (items->is_object()) {
    f.images.push_back(ParseSubImage(*items));
  } else if (items->is_array()) {
    if (items->size() > kMaxSubImagesPerFace)
      Bad("图像过多 / too many images in one FaceObject (max 8)");
    for (const auto& s : *items) f.images.push_back(ParseSubImage(s));
  } else {
    BadKey("SubImageList.SubImageInfoObject", items, "数组或对象", "an array or an object");
  }
  if (f.images.empty()) Bad("FaceObject 没有图像 / FaceObject without images");
  if (const json* clip = Field(j, "AnjuClip"); clip && clip->is_object()) {
    const json* frames = Field(*clip, "Frames");
    if (!frames || !frames->is_array())
      Bad("AnjuClip.Frames 必须是数组 / AnjuClip.Frames: not an array");
    if (frames->size() > kMaxClipFrames) Bad("片段帧过多 / too many clip frames (max 64)");
    for (const auto& fr : *frames) {
      if (!fr.is_object()) Bad("AnjuClip 帧必须是对象 / AnjuClip frame: not an object");
      FaceObject::ClipFrame c;
      c.offset_ms = Int(fr, "OffsetMs", 0, -60000, 60000);
      c.width = Int(fr, "Width", 0, 0, 100000);
      c.height = Int(fr, "Height", 0, 0, 100000);
      const json* data = Field(fr, "Data");
      if (!data || !data->is_string()) Bad("AnjuClip 帧缺少 Data / AnjuClip frame without Data");
      c.data = DecodeImage(data->get_ref<const std::string&>());
      f.clip.push_back(std::move(c));
    }
  }
  for (auto& s : f.images)
    if (s.device_id.empty()) s.device_id = f.device_id;
  return f;
}

json SubImageJson(const SubImageInfo& s) {
  json j = {{"Type", s.type}, {"FileFormat", s.file_format.empty() ? "Jpeg" : s.file_format}};
  if (s.data.empty() && !s.storage_path.empty())
    j["StoragePath"] = s.storage_path;
  else
    j["Data"] = crypto::ToBase64(s.data);
  if (!s.image_id.empty()) j["ImageID"] = s.image_id;
  if (!s.event_sort.empty()) j["EventSort"] = s.event_sort;
  if (!s.device_id.empty()) j["DeviceID"] = s.device_id;
  if (!s.shot_time.empty()) j["ShotTime"] = s.shot_time;
  if (s.width > 0) j["Width"] = s.width;
  if (s.height > 0) j["Height"] = s.height;
  return j;
}

// ---- Digest header syntax --------------------------------------------------------------

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' || c == '*' ||
         c == '+' || c == '^' || c == '`' || c == '|' || c == '~' || c == '/' || c == ':';
}

// "Digest k=v, k=\"v\" ..." → lower-cased keys. Only the Digest challenge / credentials
// are read; anything after another scheme name is ignored (e.g. "…, Basic realm=x").
std::map<std::string, std::string> ParseDigestParams(std::string_view h) {
  if (h.size() > 4096) Bad("Digest 头过长 / Digest header too long");
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  skip_ws();
  if (h.size() - i < 6 || !IEquals(h.substr(i, 6), "Digest") ||
      (h.size() > i + 6 && h[i + 6] != ' ' && h[i + 6] != '\t'))
    Bad("不是 Digest 认证 / not a Digest header");
  i += 6;
  std::map<std::string, std::string> out;
  while (true) {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t' || h[i] == ',')) ++i;
    if (i >= h.size()) break;
    const size_t k0 = i;
    while (i < h.size() && IsTokenChar(h[i]) && h[i] != '/' && h[i] != ':') ++i;
    if (i == k0) Bad("Digest 参数格式错误 / malformed Digest parameter");
    std::string key(h.substr(k0, i - k0));
    for (auto& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
    skip_ws();
    if (i >= h.size() || h[i] != '=') {
      // A bare token after a comma: the start of another scheme; stop there.
      if (!out.empty()) break;
      Bad("Digest 参数缺少值 / Digest parameter without value: " + key);
    }
    ++i;
    skip_ws();
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        char c = h[i++];
        if (c == '\\') {
          if (i >= h.size()) break;
          value.push_back(h[i++]);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
        if (value.size() > 512) Bad("Digest 参数过长 / Digest parameter too long: " + key);
      }
      if (!closed) Bad("Digest 引号未闭合 / unterminated quoted string in Digest header");
    } else {
      const size_t v0 = i;
      while (i < h.size() && IsTokenChar(h[i])) ++i;
      value = std::string(h.substr(v0, i - v0));
      if (value.empty()) Bad("Digest 参数缺少值 / Digest parameter without value: " + key);
      if (value.size() > 512) Bad("Digest 参数过长 / Digest parameter too long: " + key);
    }
    if (out.count(key)) Bad("Digest 参数重复 / repeated Digest parameter: " + key);
    if (out.size() >= 32) Bad("Digest 参数过多 / too many Digest parameters");
    out.emplace(std::move(key), std::move(value));
    skip_ws();
    if (i < h.size() && h[i] != ',') Bad("Digest 参数之间缺少逗号 / Digest parameters need commas");
  }
  return out;
}

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

bool IsHex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

// ---- times -----------------------------------------------------------------------------

std::string FormatTime(int64_t unix_ms, int utc_offset_minutes) {
  const int64_t s = FloorDiv(unix_ms, 1000) + int64_t(utc_offset_minutes) * 60;
  const int64_t days = FloorDiv(s, 86400);
  const int64_t sod = s - days * 86400;
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, y, m, d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld%02u%02u%02lld%02lld%02lld", static_cast<long long>(y), m,
                d, static_cast<long long>(sod / 3600), static_cast<long long>(sod / 60 % 60),
                static_cast<long long>(sod % 60));
  return buf;
}

int64_t ParseTime(std::string_view t, int utc_offset_minutes) {
  if ((t.size() != 14 && t.size() != 17) || t.find_first_not_of("0123456789") != t.npos)
    Bad("时间格式应为 YYYYMMDDhhmmss / time must be YYYYMMDDhhmmss: " +
        std::string(t.substr(0, 32)));
  auto num = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (t[i] - '0');
    return v;
  };
  const int y = num(0, 4), mo = num(4, 2), d = num(6, 2), h = num(8, 2), mi = num(10, 2),
            s = num(12, 2), ms = t.size() == 17 ? num(14, 3) : 0;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] ||
      (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || s > 60)
    Bad("时间无效 / impossible time: " + std::string(t));
  const int64_t days = DaysFromCivil(y, unsigned(mo), unsigned(d));
  return ((days * 86400 + h * 3600 + mi * 60 + s) - int64_t(utc_offset_minutes) * 60) * 1000 + ms;
}

void CheckJpeg(std::span<const uint8_t> bytes, std::string_view what) {
  const std::string w(what);
  if (bytes.empty()) Bad(w + " 为空 / " + w + ": empty image");
  if (bytes.size() > kMaxImageBytes) Bad("图像过大 / image too large (max 4 MiB)");
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 || bytes[2] != 0xFF)
    Bad(w + " 不是 JPEG / " + w + ": not a JPEG");
}

bool ValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

// ---- objects ---------------------------------------------------------------------------

const SubImageInfo* FaceObject::Image(std::string_view type) const {
  for (const auto& s : images)
    if (s.type == type) return &s;
  return nullptr;
}

ParsedFaceList ParseFaceList(std::string_view text) {
  const json j = ParseJson(text);
  if (!j.is_object()) Bad("请求体必须是对象 / body must be a JSON object");
  const json& list = Obj(j, "FaceListObject");
  const json* faces = Field(list, "FaceObject");
  if (!faces || !faces->is_array()) BadKey("FaceListObject.FaceObject", faces, "数组", "an array");
  if (faces->size() > kMaxFacesPerList)
    Bad("人脸过多 / too many faces in one request (max " + std::to_string(kMaxFacesPerList) + ")");
  ParsedFaceList out;
  for (size_t i = 0; i < faces->size(); ++i) {
    const json& f = (*faces)[i];
    try {
      out.list.faces.push_back(ParseFace(f));
    } catch (const Error& e) {
      FaceError err;
      err.index = i;
      if (f.is_object()) {
        const json* id = Field(f, "FaceID");
        if (id && id->is_string() && ValidId(id->get_ref<const std::string&>()))
          err.face_id = id->get<std::string>();
      }
      err.message = e.what();
      out.errors.push_back(std::move(err));
    }
  }
  return out;
}

json ToJson(const FaceObject& f) {
  json images = json::array();
  for (const auto& s : f.images) images.push_back(SubImageJson(s));
  json j = {
      {"FaceID", f.face_id},        {"InfoKind", f.info_kind},
      {"DeviceID", f.device_id},    {"LeftTopX", f.left_top_x},
      {"LeftTopY", f.left_top_y},   {"RightBtmX", f.right_btm_x},
      {"RightBtmY", f.right_btm_y}, {"SubImageList", {{"SubImageInfoObject", std::move(images)}}}};
  j["SourceID"] = f.source_id.empty() ? f.face_id : f.source_id;
  if (!f.location_mark_time.empty()) j["LocationMarkTime"] = f.location_mark_time;
  if (!f.face_appear_time.empty()) j["FaceAppearTime"] = f.face_appear_time;
  if (!f.face_disappear_time.empty()) j["FaceDisAppearTime"] = f.face_disappear_time;
  return j;
}

json ToJson(const FaceList& list) {
  json faces = json::array();
  for (const auto& f : list.faces) faces.push_back(ToJson(f));
  return {{"FaceListObject", {{"FaceObject", std::move(faces)}}}};
}

const char* SystemObjectName(SystemObject kind) {
  switch (kind) {
    case SystemObject::kRegister:
      return "RegisterObject";
    case SystemObject::kUnRegister:
      return "UnRegisterObject";
    case SystemObject::kKeepalive:
      return "KeepaliveObject";
  }
  return "?";
}

std::string ParseSystemObject(std::string_view text, SystemObject kind) {
  const json j = ParseJson(text);
  if (!j.is_object()) Bad("请求体必须是对象 / body must be a JSON object");
  const json& o = Obj(j, SystemObjectName(kind));
  std::string id = Str(o, "DeviceID", true, 64);
  if (!ValidId(id)) Bad("DeviceID 格式错误 / malformed DeviceID");
  return id;
}

json MakeSystemObject(SystemObject kind, std::string_view device_id) {
  return {{SystemObjectName(kind), {{"DeviceID", std::string(device_id)}}}};
}

namespace {
json StatusBody(const ResponseStatus& s) {
  return {{"RequestURL", s.request_url},
          {"StatusCode", std::to_string(s.status_code)},
          {"StatusString", s.status_string},
          {"Id", s.id},
          {"LocalTime", s.local_time.empty()
                            ? FormatTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             std::chrono::system_clock::now().time_since_epoch())
                                             .count())
                            : s.local_time}};
}

ResponseStatus ParseStatusBody(const json& o) {
  if (!o.is_object()) Bad("ResponseStatusObject 必须是对象 / ResponseStatusObject: not an object");
  ResponseStatus s;
  s.request_url = Str(o, "RequestURL", false, 1024);
  s.status_code = Int(o, "StatusCode", -1, 0, 99);
  if (s.status_code < 0) Bad("缺少 StatusCode / missing StatusCode");
  s.status_string = Str(o, "StatusString", false, 1024);
  s.id = Str(o, "Id", false, 256);
  s.local_time = Str(o, "LocalTime", false, 32);
  return s;
}
}  // namespace

json ToJson(const ResponseStatus& status) {
  return {{"ResponseStatusObject", StatusBody(status)}};
}

json ToJson(const std::vector<ResponseStatus>& statuses) {
  json list = json::array();
  for (const auto& s : statuses) list.push_back(StatusBody(s));
  return {{"ResponseStatusListObject", {{"ResponseStatusObject", std::move(list)}}}};
}

std::vector<ResponseStatus> ParseResponseStatus(std::string_view text) {
  const json j = ParseJson(text);
  if (!j.is_object()) Bad("应答必须是对象 / response must be a JSON object");
  std::vector<ResponseStatus> out;
  if (const json* one = Field(j, "ResponseStatusObject")) {
    out.push_back(ParseStatusBody(*one));
    return out;
  }
  const json& list = Obj(j, "ResponseStatusListObject");
  const json* items = Field(list, "ResponseStatusObject");
  if (!items) Bad("缺少 ResponseStatusObject / missing ResponseStatusObject");
  if (items->is_object()) {
    out.push_back(ParseStatusBody(*items));
  } else if (items->is_array()) {
    if (items->size() > 10000) Bad("应答过多 / too many statuses");
    for (const auto& o : *items) out.push_back(ParseStatusBody(o));
  } else {
    Bad("ResponseStatusObject 必须是数组 / ResponseStatusObject: not an array");
  }
  return out;
}

// ---- Digest ----------------------------------------------------------------------------

std::string Md5Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_md5(), nullptr) != 1)
    throw Error(ErrorCode::kCrypto, "MD5 不可用 / MD5 unavailable in OpenSSL");
  return crypto::ToHex(crypto::ByteView(md.data(), len));
}

std::string FormatChallenge(const DigestChallenge& c) {
  std::string h = "Digest realm=" + Quote(c.realm) +
                  ", qop=" + Quote(c.qop.empty() ? "auth" : c.qop) + ", nonce=" + Quote(c.nonce);
  if (!c.opaque.empty()) h += ", opaque=" + Quote(c.opaque);
  h += ", algorithm=" + (c.algorithm.empty() ? std::string("MD5") : c.algorithm);
  if (c.stale) h += ", stale=true";
  return h;
}

DigestChallenge ParseChallenge(std::string_view header) {
  const auto p = ParseDigestParams(header);
  DigestChallenge c;
  auto get = [&](const char* k) {
    auto it = p.find(k);
    return it == p.end() ? std::string() : it->second;
  };
  c.realm = get("realm");
  c.nonce = get("nonce");
  if (c.realm.empty() || c.nonce.empty())
    Bad("Digest 质询缺少 realm 或 nonce / Digest challenge without realm or nonce");
  c.opaque = get("opaque");
  c.algorithm = get("algorithm");
  if (c.algorithm.empty()) c.algorithm = "MD5";
  if (!IEquals(c.algorithm, "MD5"))
    Bad("不支持的 Digest 算法 / unsupported Digest algorithm: " + c.algorithm);
  const std::string qop = get("qop");
  c.qop.clear();
  // qop is a comma list ("auth,auth-int"); only auth is used.
  size_t pos = 0;
  while (pos <= qop.size() && !qop.empty()) {
    size_t end = qop.find(',', pos);
    if (end == std::string::npos) end = qop.size();
    std::string_view item(qop.data() + pos, end - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (IEquals(item, "auth")) c.qop = "auth";
    pos = end + 1;
  }
  if (!qop.empty() && c.qop.empty())
    Bad("Digest 质询未提供 qop=auth / Digest challenge does not offer qop=auth");
  c.stale = IEquals(get("stale"), "true");
  return c;
}

DigestCredentials ParseAuthorization(std::string_view header) {
  const auto p = ParseDigestParams(header);
  auto get = [&](const char* k, bool required) {
    auto it = p.find(k);
    if (it == p.end() || it->second.empty()) {
      if (required) Bad(std::string("Digest 缺少参数 / Digest parameter missing: ") + k);
      return std::string();
    }
    return it->second;
  };
  DigestCredentials c;
  c.username = get("username", true);
  c.realm = get("realm", true);
  c.nonce = get("nonce", true);
  c.uri = get("uri", true);
  c.response = get("response", true);
  c.algorithm = get("algorithm", false);
  c.qop = get("qop", false);
  c.nc = get("nc", false);
  c.cnonce = get("cnonce", false);
  c.opaque = get("opaque", false);
  return c;
}

std::string FormatAuthorization(const DigestCredentials& c) {
  std::string h = "Digest username=" + Quote(c.username) + ", realm=" + Quote(c.realm) +
                  ", nonce=" + Quote(c.nonce) + ", uri=" + Quote(c.uri) +
                  ", algorithm=" + (c.algorithm.empty() ? std::string("MD5") : c.algorithm) +
                  ", response=" + Quote(c.response);
  if (!c.qop.empty()) h += ", qop=" + c.qop + ", nc=" + c.nc + ", cnonce=" + Quote(c.cnonce);
  if (!c.opaque.empty()) h += ", opaque=" + Quote(c.opaque);
  return h;
}

std::string DigestHa1(std::string_view username, std::string_view realm,
                      std::string_view password) {
  std::string s;
  s.reserve(username.size() + realm.size() + password.size() + 2);
  s.append(username).append(":").append(realm).append(":").append(password);
  std::string h = Md5Hex(s);
  crypto::SecureZero(std::span<uint8_t>(reinterpret_cast<uint8_t*>(s.data()), s.size()));
  return h;
}

std::string DigestResponse(std::string_view ha1, std::string_view nonce, std::string_view nc,
                           std::string_view cnonce, std::string_view qop, std::string_view method,
                           std::string_view uri) {
  const std::string ha2 = Md5Hex(std::string(method) + ":" + std::string(uri));
  std::string s(ha1);
  s.append(":").append(nonce).append(":");
  if (!qop.empty()) s.append(nc).append(":").append(cnonce).append(":").append(qop).append(":");
  s.append(ha2);
  return Md5Hex(s);
}

bool VerifyDigest(const DigestCredentials& c, std::string_view ha1, std::string_view method) {
  if (c.qop != "auth") return false;
  if (!c.algorithm.empty() && !IEquals(c.algorithm, "MD5")) return false;
  if (!IsHex(c.nc, 8) || c.cnonce.empty() || !IsHex(c.response, 32) || !IsHex(ha1, 32))
    return false;
  std::string got = c.response;
  for (auto& ch : got) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  std::string h(ha1);
  for (auto& ch : h) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  const std::string want = DigestResponse(h, c.nonce, c.nc, c.cnonce, c.qop, method, c.uri);
  return crypto::ConstantTimeEqual(crypto::AsBytes(want), crypto::AsBytes(got));
}

DigestCredentials AnswerChallenge(const DigestChallenge& ch, std::string_view username,
                                  std::string_view password, std::string_view method,
                                  std::string_view uri, uint32_t nc, std::string cnonce) {
  DigestCredentials c;
  c.username = username;
  c.realm = ch.realm;
  c.nonce = ch.nonce;
  c.uri = uri;
  c.algorithm = "MD5";
  c.opaque = ch.opaque;
  c.qop = ch.qop.empty() ? "" : "auth";
  if (!c.qop.empty()) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", nc);
    c.nc = buf;
    c.cnonce = cnonce.empty() ? crypto::ToHex(crypto::RandomBytes(16)) : std::move(cnonce);
  }
  c.response = DigestResponse(DigestHa1(username, ch.realm, password), c.nonce, c.nc, c.cnonce,
                              c.qop, method, uri);
  return c;
}

}  // namespace anju::protocol::viid
