// The upper end of the platform links (docs/platform.md): a district or city platform's
// view of the level below. It registers the nodes below and issues their link secrets,
// receives their sealed pushes (idempotent per record, in order per origin, a node writing
// only its own records and, for a district, its own communities' — R3.3.2.4, R3.4.2.1),
// relays them up when this level has an upstream, hands down commands (policies, notices)
// and takes their confirmations, and answers the views across communities for accounts
// limited to some of them (R3.1.4.4, R3.4.2.2, R4.2.1.1).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "server/access/principal.h"
#include "server/platform/platform_options.h"
#include "server/storage/platform_repo.h"

namespace anju::server {

class PlatformHub {
 public:
  using Audit = std::function<void(const std::string& actor, const std::string& action,
                                   const std::string& object, const nlohmann::json& detail)>;

  // KEY seals the link secrets at rest.
  PlatformHub(PlatformOptions options, db::Db& events, const crypto::DataKey& key, Audit audit);

  const PlatformOptions& options() const { return options_; }

  // ---- the nodes below ----
  // A new node and its link secret (shown once): {"id","name","level","secret"}.
  nlohmann::json AddNode(const std::string& actor, const std::string& id, const std::string& name,
                         const std::string& level);
  nlohmann::json Nodes();
  void DisableNode(const std::string& actor, const std::string& id);

  // ---- the link: a sealed push in, the sealed answer out (Error kUnauthenticated /
  // kPermissionDenied / kConflict "gap" / kInvalidArgument) ----
  nlohmann::json Receive(const nlohmann::json& envelope);

  // ---- commands down ----
  nlohmann::json Issue(const Principal& who, const std::string& target, const std::string& kind,
                       const nlohmann::json& body);
  nlohmann::json Commands(const Principal& who, int64_t limit);
  // A command from the level above reaching this district: relayed to its community
  // (nothing to confirm from here), or refused.
  std::pair<std::string, std::string> Relay(const storage::PlatformCommand& cmd);

  // ---- views across communities, within WHO's scope ----
  nlohmann::json Communities(const Principal& who);
  nlohmann::json Stats(const Principal& who, int64_t from_ms, int64_t to_ms,
                       int utc_offset_minutes);
  nlohmann::json Records(const Principal& who, storage::RecordFilter filter);
  std::vector<std::string> Scope(const std::string& username);
  void PutScope(const std::string& actor, const std::string& username,
                const std::vector<std::string>& nodes);

 private:
  // The communities WHO may see (all = unscoped).
  std::vector<std::string> Visible(db::Conn& c, const Principal& who, bool* all);

  PlatformOptions options_;
  db::Db& db_;
  const crypto::DataKey& key_;
  Audit audit_;
};

// Checks a command's kind and body ("policy", "notice"); Error(kInvalidArgument) otherwise.
void ValidateCommand(const std::string& kind, const nlohmann::json& body);

}  // namespace anju::server
