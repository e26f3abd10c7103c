// Validation of one uploaded event (docs/device-protocol.md, "Uploading records";
// R3.2.1.1): its id, kind, times, door, person, access decision or alarm type and severity,
// payload size and snapshot. A refused event is kept verbatim in quarantine, never lost.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/events/event_store.h"

namespace anju::server {

// One uploaded event after validation.
struct UploadedEvent {
  bool ok = false;
  std::string sent_id;  // id as sent (for the rejected list)
  std::string id;       // normalised
  std::string kind;
  int64_t created_ms = 0;
  int64_t time_ms = 0;
  std::string door, person, decision, alarm_type, severity, description;
  std::string payload_text;
  std::vector<uint8_t> jpeg;
  std::string code, message;  // when !ok: bad_request | unknown_field | too_large
  std::string raw;            // when !ok: the event as parsed, JSON text (quarantine)
  bool creates_alarm = false;
};

// EV checked against OPTIONS' time window around NOW_MS; never throws for a bad event.
UploadedEvent ParseUploadedEvent(const nlohmann::json& ev, const EventStoreOptions& options,
                                 int64_t now_ms);

// Canonical UUID text (8-4-4-4-12 hex digits), lower-cased; nullopt when ID is not a UUID.
std::optional<std::string> NormaliseEventId(const std::string& id);

}  // namespace anju::server
