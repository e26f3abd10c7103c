// The three-level platform's tables (docs/platform.md): the uplink outbox every level keeps
// (in events.db and in captures.db, fed in the transaction that stores what goes up), and at
// an upper level (district, city) the links of the level below, the records received from
// them, the commands sent down and the account scopes. Rows in, rows out, on the caller's
// connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

// The uplink outbox's DDL for DIALECT (one table; both the events and the captures
// database have one).
std::string UplinkOutboxSql(db::Dialect dialect);
// The upper level's tables (events database).
std::string PlatformTablesSql(db::Dialect dialect);

// A record on its way up. ORIGIN / STREAM / SEQ name it at every level: the node that
// produced it, which of its outboxes, and its number there (idempotency key, R3.3.2.4).
struct UplinkRecord {
  int64_t link_seq = 0;  // this node's number (read only)
  std::string origin, stream;
  int64_t seq = 0;
  std::string community, district;  // where it happened ("" = not known yet)
  std::string kind;                 // access | alarm | capture | health | confirm
  int64_t time_ms = 0;
  std::string device_id, person, alarm_type;
  std::string body;  // JSON text
};

struct PlatformNode {
  std::string id, name, level, key_sealed;
  int64_t created_ms = 0, last_seen_ms = 0, backlog = 0, down_ack = 0;
  bool disabled = false;
};

struct PlatformCommand {
  int64_t id = 0;
  std::string issuer;
  int64_t issuer_id = 0;
  std::string target, via, kind, body, created_by, state, result;
  int64_t created_ms = 0, updated_ms = 0;
};

struct CommunityRow {
  std::string id, district, name, via, health;
  int64_t last_seen_ms = 0, records = 0;
};

struct RecordFilter {
  std::vector<std::string> communities;  // empty = all
  bool all_communities = true;           // false with an empty list = none
  std::string kind, person, alarm_type, community;
  int64_t from_ms = 0, to_ms = 0;
  int64_t limit = 100, offset = 0;
};

class PlatformRepo {
 public:
  // ---- the outbox (either database) ----
  // Own records: ORIGIN and STREAM empty, numbered when they are sent; relayed ones keep
  // theirs.
  static void Enqueue(db::Conn& c, const UplinkRecord& r, int64_t now_ms);
  // Gives the next link numbers to rows still without one, in id order, and own records
  // their SEQ (numbers of their own, without gaps); returns how many.
  static int64_t Number(db::Conn& c, int64_t limit);
  static std::vector<UplinkRecord> Numbered(db::Conn& c, int64_t limit);
  static void Acked(db::Conn& c, int64_t up_to_link_seq);
  static int64_t Backlog(db::Conn& c);
  static int64_t OldestMs(db::Conn& c);

  // ---- small key / value state (events database) ----
  static std::optional<std::string> State(db::Conn& c, const std::string& key);
  static void PutState(db::Conn& c, const std::string& key, const std::string& value);

  // ---- the level below ----
  static void AddNode(db::Conn& c, const PlatformNode& n);
  static std::optional<PlatformNode> Node(db::Conn& c, const std::string& id);
  static std::vector<PlatformNode> Nodes(db::Conn& c);
  static void SeenNode(db::Conn& c, const std::string& id, int64_t now_ms, int64_t backlog,
                       int64_t down_ack);
  static bool DisableNode(db::Conn& c, const std::string& id);

  // The last number received from ORIGIN's STREAM and the node it comes through (nullopt:
  // never seen).
  struct OriginState {
    int64_t last_seq = 0;
    std::string via;
  };
  static std::optional<OriginState> Origin(db::Conn& c, const std::string& origin,
                                           const std::string& stream);
  static void PutOrigin(db::Conn& c, const std::string& origin, const std::string& stream,
                        const std::string& via, int64_t last_seq, int64_t now_ms);
  static void InsertRecord(db::Conn& c, const UplinkRecord& r, int64_t received_ms);
  static void UpsertCommunity(db::Conn& c, const std::string& id, const std::string& district,
                              const std::string& via, int64_t now_ms,
                              const std::optional<std::string>& name,
                              const std::optional<std::string>& health);
  static std::optional<CommunityRow> Community(db::Conn& c, const std::string& id);
  // The node a community's records come through (nullopt: never seen); one key lookup, for
  // every record received.
  static std::optional<std::string> CommunityVia(db::Conn& c, const std::string& id);
  static std::vector<CommunityRow> Communities(db::Conn& c);
  static std::vector<UplinkRecord> Records(db::Conn& c, const RecordFilter& f, int64_t* total);
  // Records per community and kind (and access decision for access records), FROM..TO.
  struct Stat {
    std::string community, kind, day;
    int64_t count = 0;
  };
  static std::vector<Stat> Stats(db::Conn& c, int64_t from_ms, int64_t to_ms,
                                 int utc_offset_minutes);

  // ---- commands down ----
  // Own commands get issuer_id = id. Relayed ones are kept once per (issuer, issuer_id,
  // target): false when already there.
  static int64_t AddCommand(db::Conn& c, PlatformCommand& cmd);
  static bool AddRelayedCommand(db::Conn& c, const PlatformCommand& cmd);
  static std::vector<PlatformCommand> CommandsFor(db::Conn& c, const std::string& via,
                                                  int64_t after_id, int64_t limit);
  static std::vector<PlatformCommand> Commands(db::Conn& c, int64_t limit);
  static bool Confirm(db::Conn& c, const std::string& issuer, int64_t issuer_id,
                      const std::string& target, const std::string& state,
                      const std::string& result, int64_t now_ms);

  // ---- notices from above, for the terminals' screens ----
  struct Notice {
    std::string id, title, text;
    int64_t from_ms = 0, until_ms = 0, created_ms = 0;
  };
  static void PutNotice(db::Conn& c, const Notice& n);
  // Notices current at NOW_MS (every one with NOW_MS = 0), newest first.
  static std::vector<Notice> Notices(db::Conn& c, int64_t now_ms);

  // ---- account scopes at this level ----
  static std::vector<std::string> Scope(db::Conn& c, const std::string& username);
  static void PutScope(db::Conn& c, const std::string& username,
                       const std::vector<std::string>& nodes);
};

}  // namespace anju::server::storage
