// The snapshot service's outboxes in captures.db (docs/viid.md): alarms for the webhook
// (webhook_outbox) and captures / alarms for an upper platform (forward_outbox), each sent
// in order and retried with back-off; and the service's own settings table (the webhook
// URL, the forwarding config, the sealed forwarding password, the alarm cursors). Rows in,
// rows out, on the caller's connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

enum class Outbox { kWebhook, kForward };

struct OutboxItem {
  int64_t seq = 0;
  std::string kind;  // forward_outbox only
  std::string body;  // JSON text
};

struct OutboxState {
  int64_t pending = 0, max_attempts = 0, oldest_ms = 0;
  std::string last_error;  // of the oldest failing item, "" = none
};

class ForwardRepo {
 public:
  // ---- settings (captures.db) ----
  static std::optional<std::string> Setting(db::Conn& c, const std::string& key);
  // The settings among KEYS that are set.
  static std::map<std::string, std::string> Settings(db::Conn& c,
                                                     const std::vector<std::string>& keys);
  static void PutSetting(db::Conn& c, const std::string& key, const std::string& value);
  // Sets KEY only when it is not set yet.
  static void AddSetting(db::Conn& c, const std::string& key, const std::string& value);
  // Changes KEY only when it is set.
  static void UpdateSetting(db::Conn& c, const std::string& key, const std::string& value);

  // ---- outboxes ----
  static void EnqueueWebhook(db::Conn& c, const std::string& body, int64_t now_ms);
  static void EnqueueForward(db::Conn& c, const std::string& kind, const std::string& body,
                             int64_t now_ms);
  // Items due at NOW_MS, in order, at most LIMIT.
  static std::vector<OutboxItem> Due(db::Conn& c, Outbox box, int64_t now_ms, int limit);
  static void Sent(db::Conn& c, Outbox box, int64_t seq);
  // One more failed attempt: retried after 2^attempts s (at most 5 min).
  static void Failed(db::Conn& c, Outbox box, int64_t seq, int64_t now_ms,
                     const std::string& error);
  static OutboxState State(db::Conn& c, Outbox box);
};

}  // namespace anju::server::storage
