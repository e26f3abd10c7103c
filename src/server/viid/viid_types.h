// The records of the snapshot-camera side (docs/viid.md): what its parts take and return.
// Each has the JSON form that the API, the live stream and the forwarder send.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace anju::server {

// ---- cameras ---------------------------------------------------------------------------

struct ViidDevice {
  std::string id;
  std::string name;
  std::string place;  // free text ("3号楼2单元门口")
  std::optional<int64_t> building_id, unit_id;
  std::string linked_device;  // the access terminal at the same door ("" = none)
  std::string status = "active";
  bool registered = false;
  int64_t last_seen_ms = 0;
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};

// What a GA/T 1400 request is answered: the standard's ResponseStatusObject (or list) in
// BODY, how the request fared (the HTTP front, http/viid_handlers.cpp, makes it a status)
// and a Digest challenge (WWW-Authenticate) when the camera is to log in.
struct ViidAnswer {
  enum class Outcome { kOk, kMalformed, kUnauthenticated, kRefused, kTooLarge };
  Outcome outcome = Outcome::kOk;
  nlohmann::json body;
  std::string challenge;  // "" = none
};

// The latest live-preview frame of a camera (never written to disk: privacy).
struct LiveFrame {
  std::shared_ptr<const std::string> jpeg;
  int64_t time_ms = 0;  // arrival
  uint64_t seq = 0;     // per server, increasing
};

// ---- captures --------------------------------------------------------------------------

struct CaptureQuery {
  int64_t from_ms = 0, to_ms = 0;
  std::string device, person, outcome, state;
  int64_t stranger = 0;
  int64_t limit = 50, offset = 0;
  // Only cameras in these buildings (an account's sites, server/site_scope.h); none = all.
  std::optional<std::vector<int64_t>> buildings;
};

// A capture as the lists show it, with its camera's place and the recognition result.
struct CaptureRecord {
  std::string id, device_id, face_id;
  int64_t time_ms = 0, received_ms = 0;
  nlohmann::json box;  // [left, top, right, bottom] as the camera sent it
  int64_t images = 0;
  std::string state;    // queued | done | rejected | no_face | failed | unrecognised
  std::string outcome;  // accept | uncertain | stranger ("" until done)
  std::string person;   // identity code ("" = none)
  std::optional<double> score, second_score;
  std::optional<int64_t> stranger_id;
  nlohmann::json quality, reasons;
  bool dark = false;
  int64_t recognised_ms = 0;
  std::optional<std::string> place;
  std::optional<int64_t> building_id, unit_id;
  std::optional<int64_t> face_image;  // the face image's number (type 11), for thumbnails
};

struct CaptureImageInfo {
  int64_t n = 0;
  std::string type;  // GA/T 1400 image type ("11" face, "14" scene …)
  int64_t bytes = 0, width = 0, height = 0;
};

// One capture with the list of its images and the length of its clip.
struct CaptureDetail {
  CaptureRecord capture;
  std::vector<CaptureImageInfo> image_list;
  int64_t clip_frames = 0;
};

struct CapturePage {
  std::vector<CaptureRecord> items;
  int64_t total = 0, limit = 0, offset = 0;
};

struct ClipFrameInfo {
  int64_t n = 0, offset_ms = 0;  // offset from the best frame
  int64_t bytes = 0, width = 0, height = 0;
};

// The frames around a capture's best face.
struct CaptureClip {
  std::string capture_id;
  std::vector<ClipFrameInfo> frames;
};

nlohmann::json ToJson(const CaptureRecord& c);
nlohmann::json ToJson(const CaptureDetail& c);
nlohmann::json ToJson(const CapturePage& p);
nlohmann::json ToJson(const CaptureClip& c);

// ---- strangers -------------------------------------------------------------------------

struct StrangerQuery {
  int64_t from_ms = 0, to_ms = 0;  // 0 = open
  std::string device;              // only sightings by this camera ("" = any)
  int64_t min_count = 1;
  int64_t limit = 50, offset = 0;
  // Only sightings by cameras in these buildings (an account's sites); none = all.
  std::optional<std::vector<int64_t>> buildings;
};

// Where a stranger was seen in the period, per camera.
struct StrangerPlace {
  std::string device_id, place;
  std::optional<int64_t> building_id, unit_id;
  int64_t count = 0, last_ms = 0;
};

// A visitor identity (a cluster of unknown faces) and its sightings in the period.
struct StrangerSummary {
  int64_t id = 0, count = 0, first_ms = 0, last_ms = 0, devices = 0;
  std::vector<StrangerPlace> places;
  std::optional<std::string> latest_capture;  // of the last place listed
};

struct StrangerPage {
  std::vector<StrangerSummary> items;
  int64_t total = 0, limit = 0, offset = 0;
};

// One visitor identity over all time.
struct StrangerDetail {
  int64_t id = 0, count = 0, first_ms = 0, last_ms = 0;
  std::string first_capture, last_capture, last_device;
};

nlohmann::json ToJson(const StrangerSummary& s);
nlohmann::json ToJson(const StrangerPage& p);
nlohmann::json ToJson(const StrangerDetail& s);

// ---- alert rules -----------------------------------------------------------------------

struct AlertRule {
  int64_t id = 0;
  std::string type;  // repeated_stranger | stranger_at_night | tenant_absent |
                     // elderly_not_seen | shared_authorisation | blacklist
  std::string name;
  bool enabled = true;
  nlohmann::json params = nlohmann::json::object();
  int64_t created_ms = 0;
  nlohmann::json ToJson() const;
};
// Checks TYPE and PARAMS (fills defaults); throws Error(kInvalidArgument) when invalid.
AlertRule ValidateRule(AlertRule rule);

// ---- outboxes --------------------------------------------------------------------------

// The state of a durable outbox (the webhook's or the forwarder's).
struct OutboxStatus {
  int64_t pending = 0, max_attempts = 0, oldest_ms = 0;
  std::string last_error;  // of the oldest failing item, "" = none
};

struct WebhookStatus {
  std::string url;  // "" = off
  OutboxStatus outbox;
};

// Where recognised captures (and, for http, alarms) go upward (docs/viid.md, "Forwarding").
struct ForwardTarget {
  std::string kind;  // "" (off) | http | gat1400
  std::string url;
  std::string username;  // gat1400: the digest username, also our DeviceID there
  bool captures = true, alarms = true;
  int keepalive_s = 30;  // gat1400: seconds between keepalives (kMin… kMaxKeepaliveS)
  static constexpr int kMinKeepaliveS = 1, kMaxKeepaliveS = 3600;
};

// The GA/T 1400 cascade session with the upper platform (gat1400 only): registered or not,
// when it last registered and kept alive, how many registrations succeeded, and why the
// last registration or keepalive failed ("" = it did not).
struct ForwardSession {
  bool registered = false;
  int64_t last_register_ms = 0, last_keepalive_ms = 0, registrations = 0;
  std::string last_error;
};

struct ForwardStatus {
  ForwardTarget target;
  OutboxStatus outbox;
  ForwardSession session;
};

nlohmann::json ToJson(const WebhookStatus& w);
nlohmann::json ToJson(const ForwardTarget& t);
nlohmann::json ToJson(const ForwardStatus& f);

// ---- counters --------------------------------------------------------------------------

struct ViidCounters {
  int64_t received = 0, recognised = 0, accepted = 0, strangers = 0, rejected = 0, no_face = 0,
          failed = 0, alarms = 0;
  int64_t queued = 0, busy = 0;
  double latency_mean_ms = 0;  // upload → recognised
  int64_t latency_max_ms = 0;
  int64_t clusters = 0;
};

nlohmann::json ToJson(const ViidCounters& c);

}  // namespace anju::server
