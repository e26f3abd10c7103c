// The alert engine (docs/viid.md, "Alert rules"): the rules, evaluated on each recognised
// capture and periodically, and the alarms they raise through the event store,
// de-duplicated per key (R3.2.1.1, R3.4.2.2).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "server/viid/context.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class AlertEngine {
 public:
  explicit AlertEngine(ViidContext& ctx) : ctx_(ctx) {}

  std::vector<AlertRule> Rules();
  // Both check the rule (ValidateRule): Error(kInvalidArgument) when invalid.
  AlertRule AddRule(AlertRule rule);
  // PATCH: "name", "enabled", "params"; Error(kNotFound) for an unknown rule.
  AlertRule UpdateRule(int64_t id, const nlohmann::json& patch);
  bool RemoveRule(int64_t id);

  // A stranger (visitor cluster CLUSTER) captured by DEVICE (CAMERA: its record, if known).
  void OnStranger(const std::string& capture_id, const std::string& device,
                  const std::optional<ViidDevice>& camera, int64_t time_ms, int64_t cluster,
                  const std::vector<uint8_t>& crop);
  // An enrolled person recognised.
  void OnPerson(const std::string& capture_id, const std::string& device, int64_t time_ms,
                const std::string& person, const std::vector<uint8_t>& crop);
  // Runs the periodic rules (tenant_absent, elderly_not_seen) as of NOW_MS; returns the
  // alarms raised.
  int EvaluatePeriodic(int64_t now_ms);

  // Raises an alarm through the event store (kind "alarm") with EVIDENCE and SNAPSHOT;
  // not again for KEY within DEDUP_MS. Returns true when raised.
  bool RaiseAlarm(const std::string& key, int64_t dedup_ms, const std::string& device,
                  const std::string& type, const std::string& severity,
                  const std::string& description, const std::string& person, int64_t time_ms,
                  nlohmann::json evidence, const std::vector<uint8_t>& snapshot);

 private:
  // When PERSON was last seen: the latest of SINCE_MS (move-in), their latest access record
  // and their latest recognised capture.
  int64_t LastSeen(const std::string& person, int64_t since_ms);

  ViidContext& ctx_;
};

}  // namespace anju::server
