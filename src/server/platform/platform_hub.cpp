#include "server/platform/platform_hub.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "server/common/detailed_error.h"
#include "server/platform/link_seal.h"

namespace anju::server {

using nlohmann::json;
using storage::PlatformCommand;
using storage::PlatformRepo;
using storage::UplinkRecord;

namespace {

constexpr int64_t kMaxRecordsPerPush = 5000;
constexpr int64_t kOnlineMs = 5 * 60 * 1000;  // a node silent longer shows as offline

std::string NodeAad(const std::string& id) {
  return "anju/platform-node/v1/" + id;
}

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

json CommandJson(const PlatformCommand& c) {
  json body = json::parse(c.body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  return {{"id", c.id},
          {"issuer", c.issuer},
          {"issuer_id", c.issuer_id},
          {"target", c.target},
          {"via", c.via},
          {"kind", c.kind},
          {"body", body},
          {"created_by", c.created_by},
          {"state", c.state},
          {"result", c.result},
          {"created_ms", c.created_ms},
          {"updated_ms", c.updated_ms}};
}

json RecordJson(const UplinkRecord& r) {
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded()) body = json::object();
  return {{"origin", r.origin},
          {"stream", r.stream},
          {"seq", r.seq},
          {"community", r.community},
          {"district", r.district},
          {"kind", r.kind},
          {"time_ms", r.time_ms},
          {"device_id", r.device_id},
          {"person", r.person},
          {"alarm_type", r.alarm_type},
          {"body", body}};
}

// One record of a push; Error(kInvalidArgument) when malformed.
UplinkRecord ParseRecord(const json& j) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (!j.is_object()) bad("记录须为对象 / a record must be an object");
  auto text = [&](const char* k, size_t max) {
    if (!j.contains(k)) return std::string();
    if (!j[k].is_string() || j[k].get<std::string>().size() > max)
      bad(std::string("记录字段无效 / invalid record field ") + k);
    return j[k].get<std::string>();
  };
  UplinkRecord r;
  r.origin = text("origin", 64);
  r.stream = text("stream", 16);
  r.community = text("community", 64);
  r.district = text("district", 64);
  r.kind = text("kind", 32);
  r.device_id = text("device_id", 128);
  r.person = text("person", 128);
  r.alarm_type = text("alarm_type", 64);
  if (!ValidId(r.origin)) bad("记录 origin 无效 / invalid record origin");
  if (r.stream != "events" && r.stream != "captures") bad("记录 stream 无效 / invalid stream");
  if (r.kind.empty()) bad("记录缺少 kind / record without kind");
  if (!j.contains("seq") || !j["seq"].is_number_integer() || j["seq"].get<int64_t>() < 1)
    bad("记录 seq 无效 / invalid record seq");
  r.seq = j["seq"].get<int64_t>();
  if (!j.contains("time_ms") || !j["time_ms"].is_number_integer())
    bad("记录 time_ms 无效 / invalid record time_ms");
  r.time_ms = j["time_ms"].get<int64_t>();
  r.body = j.contains("body") && j["body"].is_object() ? j["body"].dump() : "{}";
  return r;
}

}  // namespace

void ValidateCommand(const std::string& kind, const json& body) {
  auto bad = [](const std::string& m) { throw Error(ErrorCode::kInvalidArgument, m); };
  if (!body.is_object()) bad("body 须为对象 / body must be an object");
  if (kind == "policy") {
    for (const auto& [k, v] : body.items()) {
      if (k == "retention_max_months") {
        if (!v.is_object()) bad("retention_max_months 须为对象 / must be an object");
        for (const auto& [what, months] : v.items()) {
          if (what != "snapshots" && what != "events" && what != "video")
            bad("retention_max_months 只含 snapshots、events、video / only snapshots, events, "
                "video");
          if (!months.is_number_integer() || months.get<int64_t>() < 1 ||
              months.get<int64_t>() > 120)
            bad("保留月数须在 1–120 / months must be 1–120");
        }
      } else if (k == "alert_rules") {
        if (!v.is_array()) bad("alert_rules 须为数组 / must be an array");
        for (const auto& r : v)
          if (!r.is_object() || !r.contains("type") || !r["type"].is_string() ||
              (r.contains("params") && !r["params"].is_object()))
            bad("alert_rules 每项须有 type 与 params / each needs type and params");
      } else {
        bad("未知策略项 / unknown policy key " + k);
      }
    }
    if (body.empty()) bad("策略为空 / empty policy");
  } else if (kind == "notice") {
    const auto title = body.value("title", json());
    const auto text = body.value("text", json());
    if (!title.is_string() || title.get<std::string>().empty() ||
        title.get<std::string>().size() > 200)
      bad("通知标题须为 1–200 字节 / title must be 1–200 bytes");
    if (!text.is_string() || text.get<std::string>().empty() ||
        text.get<std::string>().size() > 4000)
      bad("通知内容须为 1–4000 字节 / text must be 1–4000 bytes");
    for (const char* k : {"from_ms", "until_ms"})
      if (body.contains(k) && !body[k].is_number_integer())
        bad(std::string(k) + " 须为整数 / must be an integer");
  } else {
    bad("kind 须为 policy 或 notice / kind must be policy or notice");
  }
}

PlatformHub::PlatformHub(PlatformOptions options, db::Db& events, const crypto::DataKey& key,
                         Audit audit)
    : options_(std::move(options)), db_(events), key_(key), audit_(std::move(audit)) {}

// ---- nodes ----

json PlatformHub::AddNode(const std::string& actor, const std::string& id, const std::string& name,
                          const std::string& level) {
  if (!ValidId(id))
    throw Error(ErrorCode::kInvalidArgument,
                "节点编号须为 1–64 位字母、数字、-_. / id: 1–64 letters, digits, -_.");
  if (id == options_.id)
    throw Error(ErrorCode::kInvalidArgument, "不能注册本级 / this node itself");
  const std::string expected = options_.level == "city" ? "district" : "community";
  if (level != "community" && level != expected)
    throw Error(ErrorCode::kInvalidArgument, "下级只能是 " + expected +
                                                 " 或 community / a node below must be " +
                                                 expected + " or community");
  const crypto::DataKey secret = crypto::DataKey::Generate();
  storage::PlatformNode n;
  n.id = id;
  n.name = name;
  n.level = level;
  n.created_ms = NowMs();
  const std::string aad = NodeAad(id);
  n.key_sealed = crypto::ToBase64(crypto::Seal(key_, secret.bytes(), crypto::AsBytes(aad)));
  {
    auto c = db_.Acquire();
    db::Transaction tx(c);
    if (PlatformRepo::Node(c, id)) throw Error(ErrorCode::kConflict, "节点已存在 / node exists");
    PlatformRepo::AddNode(c, n);
    tx.Commit();
  }
  audit_(actor, "platform.node.add", id, {{"name", name}, {"level", level}});
  return {{"id", id}, {"name", name}, {"level", level}, {"secret", crypto::ToHex(secret.bytes())}};
}

json PlatformHub::Nodes() {
  auto c = db_.AcquireReader();
  json out = json::array();
  const int64_t now = NowMs();
  for (const auto& n : PlatformRepo::Nodes(c))
    out.push_back({{"id", n.id},
                   {"name", n.name},
                   {"level", n.level},
                   {"created_ms", n.created_ms},
                   {"last_seen_ms", n.last_seen_ms},
                   {"online", n.last_seen_ms > 0 && now - n.last_seen_ms < kOnlineMs},
                   {"backlog", n.backlog},
                   {"down_ack", n.down_ack},
                   {"disabled", n.disabled}});
  return {{"items", out}};
}

void PlatformHub::DisableNode(const std::string& actor, const std::string& id) {
  auto c = db_.Acquire();
  if (!PlatformRepo::DisableNode(c, id)) {
    if (!PlatformRepo::Node(c, id)) throw Error(ErrorCode::kNotFound, "无此节点 / no such node");
    return;
  }
  audit_(actor, "platform.node.disable", id, json::object());
}

// ---- the link ----

json PlatformHub::Receive(const json& envelope) {
  if (!envelope.is_object() || !envelope.contains("node") || !envelope["node"].is_string())
    throw Error(ErrorCode::kInvalidArgument, "缺少 node / missing node");
  const std::string node_id = envelope["node"].get<std::string>();
  std::optional<storage::PlatformNode> node;
  {
    auto c = db_.AcquireReader();
    node = PlatformRepo::Node(c, node_id);
  }
  // One answer for an unknown node, a disabled one and a wrong key: nothing to probe.
  const Error refused(ErrorCode::kUnauthenticated, "链路认证失败 / link authentication failed");
  if (!node || node->disabled) throw refused;
  std::optional<crypto::DataKey> link;
  json push;
  try {
    const std::string aad = NodeAad(node_id);
    link = crypto::DataKey::FromBytes(
        crypto::Open(key_, crypto::FromBase64(node->key_sealed), crypto::AsBytes(aad)));
    push = platform::OpenLink(*link, node_id, platform::LinkDirection::kUp, envelope);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw;
    throw refused;
  }
  if (push.value("node", "") != node_id) throw refused;
  const json& list = push.contains("records") ? push["records"] : json::array();
  if (!list.is_array() || int64_t(list.size()) > kMaxRecordsPerPush)
    throw Error(ErrorCode::kInvalidArgument,
                "records 须为至多 5000 项的数组 / at most 5000 records");
  std::vector<UplinkRecord> records;
  records.reserve(list.size());
  for (const auto& j : list) records.push_back(ParseRecord(j));

  const int64_t now = NowMs();
  int64_t accepted = 0, duplicates = 0;
  std::map<std::string, int64_t> kinds;
  const bool relay = !options_.upstream.empty();
  const std::string district = options_.level == "district" ? options_.id : "";
  {
    auto c = db_.Acquire();
    db::Transaction tx(c);
    std::map<std::pair<std::string, std::string>, int64_t> last;  // within this push
    for (UplinkRecord& r : records) {
      // Whose record it is: a community writes only its own; a district its own and its
      // communities' (a community is pinned to the district it first came through).
      if (node->level == "community") {
        if (r.origin != node_id || (!r.community.empty() && r.community != node_id))
          throw Error(ErrorCode::kPermissionDenied,
                      "节点只能上报本节点的记录 / a node sends only its own records");
        r.community = node_id;
        r.district = district;
      } else {
        if (r.origin != node_id) r.community = r.origin;
        if (!r.community.empty()) {
          const auto via = PlatformRepo::CommunityVia(c, r.community);
          if (via && *via != node_id)
            throw Error(ErrorCode::kPermissionDenied,
                        "小区 " + r.community + " 属于另一个区 / belongs to another district");
        }
        r.district = node_id;
      }
      const auto key = std::make_pair(r.origin, r.stream);
      int64_t have = 0;
      bool seen = true;
      if (auto it = last.find(key); it != last.end()) {
        have = it->second;
      } else if (auto o = PlatformRepo::Origin(c, r.origin, r.stream)) {
        have = o->last_seq;
      } else {
        seen = false;  // the first record ever from there: its number starts the count
      }
      if (seen && r.seq <= have) {
        ++duplicates;
        continue;
      }
      if (seen && r.seq != have + 1)
        throw DetailedError(
            ErrorCode::kConflict,
            "记录编号不连续 / records missing before this one: " + r.origin + "/" + r.stream, "gap",
            {{"origin", r.origin}, {"stream", r.stream}, {"expected", have + 1}, {"got", r.seq}});
      last[key] = r.seq;
      PlatformRepo::InsertRecord(c, r, now);
      PlatformRepo::PutOrigin(c, r.origin, r.stream, node_id, r.seq, now);
      if (!r.community.empty()) {
        std::optional<std::string> name, health;
        if (r.kind == "health") {
          health = r.body;
          const json b = json::parse(r.body, nullptr, false);
          if (b.is_object() && b.contains("name") && b["name"].is_string())
            name = b["name"].get<std::string>();
        }
        PlatformRepo::UpsertCommunity(c, r.community, r.district, node_id, now, name, health);
      }
      if (r.kind == "confirm") {
        const json b = json::parse(r.body, nullptr, false);
        if (b.is_object() && b.contains("issuer_id") && b["issuer_id"].is_number_integer())
          PlatformRepo::Confirm(c, b.value("issuer", ""), b["issuer_id"].get<int64_t>(),
                                b.value("target", ""), b.value("state", ""), b.value("result", ""),
                                now);
      }
      if (relay) PlatformRepo::Enqueue(c, r, now);  // keeps origin / stream / seq
      ++accepted;
      ++kinds[r.kind];
    }
    PlatformRepo::SeenNode(c, node_id, now, push.value("backlog", int64_t(0)),
                           push.value("down_ack", int64_t(0)));
    tx.Commit();
  }
  if (accepted > 0)
    audit_("node:" + node_id, "platform.receive", node_id,
           {{"accepted", accepted}, {"duplicates", duplicates}, {"kinds", kinds}});
  json down = json::array();
  {
    auto c = db_.AcquireReader();
    for (const auto& cmd :
         PlatformRepo::CommandsFor(c, node_id, push.value("down_ack", int64_t(0)), 100))
      down.push_back(CommandJson(cmd));
  }
  const json answer = {{"accepted", accepted}, {"duplicates", duplicates}, {"down", down}};
  return platform::SealLink(*link, node_id, platform::LinkDirection::kDown, answer);
}

// ---- commands ----

std::vector<std::string> PlatformHub::Visible(db::Conn& c, const Principal& who, bool* all) {
  const std::vector<std::string> scope = PlatformRepo::Scope(c, who.name);
  *all = scope.empty();
  std::vector<std::string> out;
  if (*all) return out;
  const std::set<std::string> allowed(scope.begin(), scope.end());
  for (const auto& row : PlatformRepo::Communities(c))
    if (allowed.count(row.id) || allowed.count(row.district)) out.push_back(row.id);
  return out;
}

json PlatformHub::Issue(const Principal& who, const std::string& target, const std::string& kind,
                        const json& body) {
  ValidateCommand(kind, body);
  auto c = db_.Acquire();
  db::Transaction tx(c);
  bool all = false;
  const std::vector<std::string> visible = Visible(c, who, &all);
  auto may = [&](const std::string& id) {
    return all || std::find(visible.begin(), visible.end(), id) != visible.end();
  };
  std::vector<storage::CommunityRow> targets;
  for (const auto& row : PlatformRepo::Communities(c))
    if ((target == "*" || row.id == target || row.district == target) && may(row.id))
      targets.push_back(row);
  if (targets.empty())
    throw Error(ErrorCode::kNotFound,
                "没有可下发的小区 / no community of yours matches the target " + target);
  json ids = json::array();
  for (const auto& row : targets) {
    PlatformCommand cmd;
    cmd.issuer = options_.id;
    cmd.target = row.id;
    cmd.via = row.via;
    cmd.kind = kind;
    cmd.body = body.dump();
    cmd.created_by = who.name;
    cmd.created_ms = NowMs();
    PlatformRepo::AddCommand(c, cmd);
    ids.push_back({{"id", cmd.id}, {"target", row.id}, {"via", row.via}});
  }
  tx.Commit();
  audit_(who.name, "platform.command", target, {{"kind", kind}, {"commands", ids}});
  return {{"commands", ids}};
}

json PlatformHub::Commands(const Principal& who, int64_t limit) {
  auto c = db_.AcquireReader();
  bool all = false;
  const std::vector<std::string> visible = Visible(c, who, &all);
  json out = json::array();
  for (const auto& cmd : PlatformRepo::Commands(c, limit))
    if (all || std::find(visible.begin(), visible.end(), cmd.target) != visible.end())
      out.push_back(CommandJson(cmd));
  return {{"items", out}};
}

std::pair<std::string, std::string> PlatformHub::Relay(const PlatformCommand& cmd) {
  auto c = db_.Acquire();
  const auto via = PlatformRepo::CommunityVia(c, cmd.target);
  const auto node = PlatformRepo::Node(c, cmd.target);
  if (!via || !node || node->disabled)
    return {"failed", "本区没有此小区 / no such community in this district: " + cmd.target};
  PlatformCommand relayed = cmd;
  relayed.via = cmd.target;
  relayed.state = "pending";
  PlatformRepo::AddRelayedCommand(c, relayed);  // again after a crash: kept once
  return {"", ""};
}

// ---- views ----

json PlatformHub::Communities(const Principal& who) {
  auto c = db_.AcquireReader();
  bool all = false;
  const std::vector<std::string> visible = Visible(c, who, &all);
  const int64_t now = NowMs();
  json out = json::array();
  for (const auto& row : PlatformRepo::Communities(c)) {
    if (!all && std::find(visible.begin(), visible.end(), row.id) == visible.end()) continue;
    json health = json::parse(row.health, nullptr, false);
    if (health.is_discarded()) health = json::object();
    out.push_back({{"id", row.id},
                   {"name", row.name},
                   {"district", row.district},
                   {"via", row.via},
                   {"last_seen_ms", row.last_seen_ms},
                   {"online", now - row.last_seen_ms < kOnlineMs},
                   {"records", row.records},
                   {"backlog", health.value("backlog", int64_t(0))},
                   {"health", health}});
  }
  return {{"items", out}};
}

json PlatformHub::Stats(const Principal& who, int64_t from_ms, int64_t to_ms,
                        int utc_offset_minutes) {
  auto c = db_.AcquireReader();
  bool all = false;
  const std::vector<std::string> visible = Visible(c, who, &all);
  json rows = json::array();
  for (const auto& s : PlatformRepo::Stats(c, from_ms, to_ms, utc_offset_minutes)) {
    if (!all && std::find(visible.begin(), visible.end(), s.community) == visible.end()) continue;
    rows.push_back(
        {{"community", s.community},
         {"kind", s.kind},
         {"day_start_ms", std::stoll(s.day) * 86400000 - int64_t(utc_offset_minutes) * 60000},
         {"count", s.count}});
  }
  return {{"from_ms", from_ms}, {"to_ms", to_ms}, {"items", rows}};
}

json PlatformHub::Records(const Principal& who, storage::RecordFilter f) {
  std::vector<storage::UplinkRecord> rows;
  int64_t total = 0;
  {
    auto c = db_.AcquireReader();
    bool all = false;
    f.communities = Visible(c, who, &all);
    f.all_communities = all;
    rows = PlatformRepo::Records(c, f, &total);
  }
  // Searching records across communities is a view of personal data (R4.2.2.1).
  audit_(who.name, "platform.records.search", f.community.empty() ? "*" : f.community,
         {{"kind", f.kind},
          {"person", f.person},
          {"alarm_type", f.alarm_type},
          {"from_ms", f.from_ms},
          {"to_ms", f.to_ms},
          {"returned", rows.size()}});
  json items = json::array();
  for (const auto& r : rows) items.push_back(RecordJson(r));
  return {{"items", items}, {"total", total}, {"limit", f.limit}, {"offset", f.offset}};
}

std::vector<std::string> PlatformHub::Scope(const std::string& username) {
  auto c = db_.AcquireReader();
  return PlatformRepo::Scope(c, username);
}

void PlatformHub::PutScope(const std::string& actor, const std::string& username,
                           const std::vector<std::string>& nodes) {
  for (const auto& n : nodes)
    if (!ValidId(n))
      throw Error(ErrorCode::kInvalidArgument, "节点编号无效 / invalid node id " + n);
  {
    auto c = db_.Acquire();
    db::Transaction tx(c);
    PlatformRepo::PutScope(c, username, nodes);
    tx.Commit();
  }
  audit_(actor, "platform.scope", username, {{"nodes", nodes}});
}

}  // namespace anju::server
