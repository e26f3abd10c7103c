// GA/T 1400 (公安视频图像信息应用系统, "视图库" / VIID) as far as snapshot cameras need it:
// the JSON objects of device registration, keepalive and face upload (GA/T 1400.4), the
// ResponseStatus answers, and HTTP Digest authentication (RFC 7616 / RFC 2617, MD5,
// qop=auth) that GA/T 1400.3 prescribes for registration. Both ends use this file: the
// server's intake (src/server/http/viid_handlers.cpp) and anju-capture's uploader.
//
// Parsing is strict about what it needs and lenient about the rest, because cameras of
// other vendors send many optional attributes: unknown fields are ignored, integers may
// come as JSON numbers or decimal strings (both occur in the field). Every malformed input
// throws Error(kInvalidArgument) with a "中文 / English" message naming the field; nothing
// aborts, and the input sizes are bounded (a fuzzer runs over these parsers).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anju::protocol::viid {

// ---- paths and limits ------------------------------------------------------------------

inline constexpr const char* kPathRegister = "/VIID/System/Register";
inline constexpr const char* kPathUnRegister = "/VIID/System/UnRegister";
inline constexpr const char* kPathKeepalive = "/VIID/System/Keepalive";
inline constexpr const char* kPathTime = "/VIID/System/Time";
inline constexpr const char* kPathFaces = "/VIID/Faces";
// anju extension (not in GA/T 1400): a live preview frame, the raw JPEG as the body
// (image/jpeg), same digest / User-Identify authentication as the standard paths.
inline constexpr const char* kPathLiveFrame = "/VIID/Anju/LiveFrame";

inline constexpr size_t kMaxFacesPerList = 100;
inline constexpr size_t kMaxSubImagesPerFace = 8;
inline constexpr size_t kMaxClipFrames = 64;
inline constexpr size_t kMaxImageBytes = 4 * 1024 * 1024;  // decoded JPEG
inline constexpr size_t kMaxJsonDepth = 32;

// ---- times -----------------------------------------------------------------------------

// "YYYYMMDDhhmmss" in local time UTC+OFFSET minutes (GA/T 1400 uses Beijing time, 480).
std::string FormatTime(int64_t unix_ms, int utc_offset_minutes = 480);
// The inverse (also accepts "YYYYMMDDhhmmssSSS" with milliseconds). Throws
// Error(kInvalidArgument) for anything else or an impossible date.
int64_t ParseTime(std::string_view text, int utc_offset_minutes = 480);

// ---- identifiers -----------------------------------------------------------------------

// A DeviceID / FaceID / ImageID as this implementation accepts it: 1–64 of
// [A-Za-z0-9_.-] (the standard's ids are 20 / 41 / 48 digits; other vendors vary).
bool ValidId(std::string_view id);

// The image intake's checks on a JPEG (given as Data or fetched from a StoragePath): not
// empty, at most kMaxImageBytes, JPEG magic. Throws Error(kInvalidArgument) naming WHAT.
void CheckJpeg(std::span<const uint8_t> bytes, std::string_view what = "image");

// ---- objects ---------------------------------------------------------------------------

// SubImageInfo.Type (GA/T 1400.3 ImageType): "11" face crop, "14" scene / full frame.
inline constexpr const char* kImageTypeFace = "11";
inline constexpr const char* kImageTypeScene = "14";

struct SubImageInfo {
  std::string image_id;               // ImageID (optional on input)
  std::string event_sort;             // EventSort (optional)
  std::string device_id;              // DeviceID (optional; defaults to the face's)
  std::string type = kImageTypeFace;  // Type
  std::string file_format = "Jpeg";   // FileFormat
  std::string shot_time;              // ShotTime "YYYYMMDDhhmmss" (optional)
  int width = 0;                      // Width, Height (0 = not given)
  int height = 0;
  std::vector<uint8_t> data;  // Data, base64 on the wire; must be a JPEG (FF D8 FF)
  // StoragePath: the image's URL on the camera, kept only when Data is absent (then DATA is
  // empty until the server fetches it, server/viid/image_fetch.h).
  std::string storage_path;
};

struct FaceObject {
  std::string face_id;    // FaceID (required)
  int info_kind = 1;      // InfoKind: 1 automatic, 2 manual
  std::string source_id;  // SourceID (optional)
  std::string device_id;  // DeviceID (required)
  // Face box in the scene image (LeftTopX … RightBtmY; 0 when not given).
  int left_top_x = 0, left_top_y = 0, right_btm_x = 0, right_btm_y = 0;
  std::string location_mark_time;    // LocationMarkTime (optional)
  std::string face_appear_time;      // FaceAppearTime (optional)
  std::string face_disappear_time;   // FaceDisAppearTime (optional)
  std::vector<SubImageInfo> images;  // SubImageList.SubImageInfoObject
  // anju extension "AnjuClip": {"Frames": [{"OffsetMs", "Width", "Height", "Data"}]}, the
  // frames around the best one (docs/viid.md); empty when absent.
  struct ClipFrame {
    int offset_ms = 0;
    int width = 0, height = 0;
    std::vector<uint8_t> data;  // JPEG
  };
  std::vector<ClipFrame> clip;

  // The first image of the given type, or nullptr.
  const SubImageInfo* Image(std::string_view type) const;
};

struct FaceList {
  std::vector<FaceObject> faces;
};

// A face that failed validation inside an otherwise well-formed list: the list is kept,
// that face is answered with StatusCode 8 (invalid JSON content).
struct FaceError {
  size_t index = 0;
  std::string face_id;  // as sent ("" when it had none)
  std::string message;
};

struct ParsedFaceList {
  FaceList list;  // the valid faces, in order
  std::vector<FaceError> errors;
};

// {"FaceListObject": {"FaceObject": [...]}}. Throws Error(kInvalidArgument) when the text
// is not JSON, not that shape, too deep, or has more than kMaxFacesPerList faces; a single
// face that is invalid (missing ids, bad base64, not a JPEG, too large, too many images)
// is reported in `errors` and left out. Keys are matched ignoring case when the standard's
// spelling is absent ("Faceobject", "SubimageList"). An image without Data but with a
// StoragePath is kept with empty `data` and its `storage_path`: the caller fetches it.
ParsedFaceList ParseFaceList(std::string_view json_text);
nlohmann::json ToJson(const FaceList& list);
nlohmann::json ToJson(const FaceObject& face);

// {"RegisterObject": {"DeviceID": ...}}, {"UnRegisterObject": ...}, {"KeepaliveObject": ...}:
// returns the DeviceID. Throws Error(kInvalidArgument) on anything else.
enum class SystemObject { kRegister, kUnRegister, kKeepalive };
const char* SystemObjectName(SystemObject kind);  // "RegisterObject", ...
std::string ParseSystemObject(std::string_view json_text, SystemObject kind);
nlohmann::json MakeSystemObject(SystemObject kind, std::string_view device_id);

// ResponseStatus (GA/T 1400.3 C.25): StatusCode 0 OK, 1 other error, 2 device busy,
// 3 device error, 4 invalid operation, 7 invalid JSON format, 8 invalid JSON content,
// 9 reboot.
enum StatusCode : int {
  kOk = 0,
  kOtherError = 1,
  kDeviceBusy = 2,
  kDeviceError = 3,
  kInvalidOperation = 4,
  kInvalidJsonFormat = 7,
  kInvalidJsonContent = 8,
  kReboot = 9,
};

struct ResponseStatus {
  std::string request_url;  // RequestURL
  int status_code = kOk;    // StatusCode (a decimal string on the wire)
  std::string status_string;
  std::string id;          // Id: the object concerned (DeviceID, FaceID)
  std::string local_time;  // LocalTime "YYYYMMDDhhmmss" (filled with now when empty)
};

// {"ResponseStatusObject": {...}}
nlohmann::json ToJson(const ResponseStatus& status);
// {"ResponseStatusListObject": {"ResponseStatusObject": [...]}}
nlohmann::json ToJson(const std::vector<ResponseStatus>& statuses);
// Accepts either shape; always returns a list (one element for ResponseStatusObject).
// Throws Error(kInvalidArgument) on anything else.
std::vector<ResponseStatus> ParseResponseStatus(std::string_view json_text);

// ---- HTTP Digest (RFC 7616 with MD5, RFC 2617 compatible) ------------------------------

// Lower-case hex MD5 (OpenSSL EVP).
std::string Md5Hex(std::string_view data);

// What the server sends in WWW-Authenticate.
struct DigestChallenge {
  std::string realm;
  std::string nonce;
  std::string opaque;  // optional
  std::string algorithm = "MD5";
  std::string qop = "auth";  // the server offers only auth
  bool stale = false;        // nonce expired, credentials were right: retry silently
};
// `Digest realm="…", qop="auth", nonce="…", opaque="…", algorithm=MD5[, stale=true]`
std::string FormatChallenge(const DigestChallenge& challenge);
// Parses a WWW-Authenticate value (client side). Throws Error(kInvalidArgument) when it is
// not a Digest challenge with realm and nonce, or uses an algorithm other than MD5.
DigestChallenge ParseChallenge(std::string_view header);

// What the client sends in Authorization.
struct DigestCredentials {
  std::string username;
  std::string realm;
  std::string nonce;
  std::string uri;
  std::string response;   // 32 hex digits
  std::string algorithm;  // "" or MD5
  std::string qop;        // "auth" (required by VerifyDigest)
  std::string nc;         // 8 hex digits
  std::string cnonce;
  std::string opaque;
};
// Parses an Authorization value `Digest k=v, k="v", …` (quoted strings with \ escapes).
// Throws Error(kInvalidArgument) when it is not Digest, a parameter is malformed or a
// required one (username, realm, nonce, uri, response) is missing; fields are ≤ 512 bytes.
DigestCredentials ParseAuthorization(std::string_view header);
std::string FormatAuthorization(const DigestCredentials& credentials);

// HA1 = MD5(username:realm:password). The server may store HA1 instead of the password.
std::string DigestHa1(std::string_view username, std::string_view realm, std::string_view password);
// response = MD5(HA1:nonce:nc:cnonce:qop:MD5(method:uri)) (qop=auth), or
// MD5(HA1:nonce:MD5(method:uri)) when qop is empty (RFC 2069).
std::string DigestResponse(std::string_view ha1, std::string_view nonce, std::string_view nc,
                           std::string_view cnonce, std::string_view qop, std::string_view method,
                           std::string_view uri);
// Server side: true when CREDENTIALS carry qop=auth, algorithm MD5 (or none), and the
// response matches HA1 for METHOD (compared in constant time). The caller checks the
// realm, that the nonce is one it issued and still fresh, that nc grows, and that uri is
// the request's target.
bool VerifyDigest(const DigestCredentials& credentials, std::string_view ha1,
                  std::string_view method);
// Client side: credentials answering CHALLENGE for METHOD URI (nc as given, cnonce random
// when empty).
DigestCredentials AnswerChallenge(const DigestChallenge& challenge, std::string_view username,
                                  std::string_view password, std::string_view method,
                                  std::string_view uri, uint32_t nc = 1, std::string cnonce = "");

}  // namespace anju::protocol::viid
