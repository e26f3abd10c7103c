#include "server/devices/gallery_log.h"

#include <algorithm>
#include <set>

#include "core/clock.h"

#include "db/postgres.h"
#include "protocol/feature_codec.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/storage/device_repo.h"
#include "server/storage/gallery_repo.h"

namespace anju::server {

using nlohmann::json;
using storage::GalleryRepo;

namespace {

std::vector<std::string> Utf8Chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

std::string MaskName(const std::string& name) {
  const auto chars = Utf8Chars(name);
  if (chars.empty()) return "";
  if (chars.size() == 1) return chars[0];
  if (chars.size() == 2) return chars[0] + "*";
  std::string out = chars.front();
  for (size_t i = 1; i + 1 < chars.size(); ++i) out += "*";
  return out + chars.back();
}

int64_t GalleryLog::Latest(db::Conn& conn, const std::string& device_id) {
  return GalleryRepo::Latest(conn, device_id);
}

void GalleryLog::Append(db::Conn& conn, const std::string& device, const std::string& code,
                        const std::string& op, const std::string& reason) {
  // The next number is the last one + 1: SQLite's single writer serialises that, on
  // PostgreSQL two servers could both take it (docs/storage.md, "Transactions and
  // concurrency"). One key for every device, so that a transaction appending to several
  // never waits in a cycle; outside a transaction the key (device_id, seq) refuses the second.
  if (conn.in_transaction()) db::LockInTransaction(conn, db::AdvisoryKey("gallery-log"));
  const int64_t seq = Latest(conn, device) + 1;
  const int64_t now = NowMs();
  GalleryRepo::AppendChange(conn, device, seq, code, op, reason, now);
  if (op == "remove") GalleryRepo::AppendRemoval(conn, device, code, seq, reason, now);
}

void GalleryLog::PersonChanged(db::Conn& conn, int64_t person_id, const std::string& reason) {
  if (on_change_) on_change_(conn);
  // Eligible: an active resident with a standing consent and at least one feature of
  // the model version devices use.
  const auto person = GalleryRepo::Eligibility(conn, person_id, model_version_);
  if (!person) return;
  const auto& [code, eligible] = *person;
  std::set<std::string> targets;
  if (eligible) targets = GalleryRepo::Reaching(conn, person_id);
  const std::set<std::string> holders = GalleryRepo::Holders(conn, code);
  for (const auto& d : targets) {
    Append(conn, d, code, "upsert", reason);
    GalleryRepo::AddHolder(conn, d, code);
  }
  for (const auto& d : holders) {
    if (targets.count(d)) continue;
    Append(conn, d, code, "remove", reason);
    GalleryRepo::RemoveHolder(conn, d, code);
  }
}

void GalleryLog::GroupChanged(db::Conn& conn, int64_t group_id, const std::string& reason) {
  for (int64_t p : GalleryRepo::GroupMembers(conn, group_id)) PersonChanged(conn, p, reason);
}

json GalleryLog::Upsert(db::Conn& conn, int64_t person_id, const std::string& code,
                        const std::string& name, int open_ms, const std::string& device_id,
                        int doors, const crypto::DataKey& device_key) {
  json templates = json::array();
  for (const auto& [id, sealed] : GalleryRepo::Features(conn, person_id, model_version_)) {
    const auto f = OpenFeatureAtRest(key_, code, sealed);
    templates.push_back({{"id", "t-" + std::to_string(id)},
                         {"feature", protocol::SealFeature(device_key, code, f)}});
  }
  // Rules: the union of the person's access groups that reach this device.
  const std::set<int> door_set = GalleryRepo::Doors(conn, person_id, device_id);
  json windows = json::array();
  bool any_time = false;
  std::optional<int64_t> from, until;
  bool unbounded_from = false, unbounded_until = false;
  for (const auto& g : GalleryRepo::Rules(conn, person_id, device_id)) {
    const json w = json::parse(g.windows);
    if (w.empty()) any_time = true;
    for (const auto& x : w) windows.push_back(x);
    if (!g.valid_from_ms)
      unbounded_from = true;
    else
      from = from ? std::min(*from, *g.valid_from_ms) : *g.valid_from_ms;
    if (!g.valid_until_ms)
      unbounded_until = true;
    else
      until = until ? std::max(*until, *g.valid_until_ms) : *g.valid_until_ms;
    open_ms = std::max(open_ms, int(g.open_ms));
  }
  json door_list = json::array();
  if (int(door_set.size()) < doors)
    for (int d : door_set) door_list.push_back(d);
  json rules = {{"valid_from_ms", unbounded_from || !from ? json(nullptr) : json(*from)},
                {"valid_until_ms", unbounded_until || !until ? json(nullptr) : json(*until)},
                {"doors", door_list},
                {"windows", any_time ? json::array() : windows},
                {"open_ms", open_ms}};
  return {{"op", "upsert"},
          {"person", code},
          {"display_name", MaskName(name)},
          {"templates", templates},
          {"rules", rules}};
}

json GalleryLog::Fetch(db::Conn& conn, const std::string& device_id,
                       const crypto::DataKey& device_key, int64_t since, int64_t limit) {
  int64_t latest = Latest(conn, device_id);
  // A device ahead of the server (the archive was restored from a backup) starts over.
  if (since > latest) since = 0;
  {
    db::Transaction tx(conn);
    GalleryRepo::Confirm(conn, device_id, since, NowMs());
    tx.Commit();
  }
  const int doors = int(storage::DeviceRepo::Doors(conn, device_id).value_or(1));
  json changes = json::array();
  int64_t version = since, rows = 0;
  for (const auto& c : GalleryRepo::Changes(conn, device_id, since, limit)) {
    ++rows;
    version = c.seq;
    if (c.held && c.person_id) {
      changes.push_back(Upsert(conn, *c.person_id, c.person_code, c.name, int(c.open_ms), device_id,
                               doors, device_key));
    } else if (since > 0) {  // a full sync (since=0) sends only what the device must hold
      changes.push_back({{"op", "remove"}, {"person", c.person_code}, {"reason", c.reason}});
    }
  }
  if (rows < limit) version = latest;
  return {{"model_version", model_version_},
          {"since", since},
          {"version", version},
          {"latest", latest},
          {"more", version < latest},
          {"changes", changes}};
}

}  // namespace anju::server
