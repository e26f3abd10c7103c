// The three-level platform end to end (docs/platform.md): community servers, district
// platforms and a city platform as real anju-servers on loopback, linked over TLS with
// sealed pushes (R3.3.2.4, R3.4.2.1, R3.1.4.4, R3.4.2.2, R4.2.1.1).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/clock.h"
#include "testing.h"
#include "core/uuid.h"
#include "crypto/envelope.h"
#include "server/platform/link_seal.h"
#include "server_test_support.h"

namespace anju::server::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// One anju-server of the platform; the fixture's helpers, for a server of its own.
class Node : public ServerTest {
 public:
  Node(const std::string& name, PlatformOptions p) : platform_(std::move(p)) {
    dir_ = anju::testing::TempDir("platform-" + name);
  }
  ~Node() override { Down(); }
  void TestBody() override {}

  void Up() {
    StartServer();
    port_ = server_->port();
  }
  void Down() { StopServer(); }
  void Wipe() {
    Down();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string Url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  fs::path Cert() const { return dir_ / "tls" / "server.crt"; }
  const fs::path& Dir() const { return dir_; }
  Server& server() { return *server_; }

  ApiResult Sys(const std::string& method, const std::string& path, const json& body = nullptr) {
    return As(Ready("admin").token, method, path, body);
  }
  ApiResult Sec(const std::string& method, const std::string& path, const json& body = nullptr) {
    return As(Ready("secadmin").token, method, path, body);
  }
  using ServerTest::As;
  using ServerTest::RegisterDevice;
  using ServerTest::UserWithRoles;
  using ServerTest::Ready;
  using ServerTest::Api;  // the integration token: operator (events.read, reports.read)

  // Registers NODE below this one; writes its link secret to a file in DIR.
  fs::path AddNode(const std::string& node, const std::string& level, const fs::path& dir) {
    const auto made = Sys("POST", "/api/v1/platform/nodes",
                          {{"id", node}, {"name", node + " 名称"}, {"level", level}});
    EXPECT_EQ(made.status, 201) << made.body;
    fs::create_directories(dir);
    const fs::path file = dir / (node + ".secret");
    std::ofstream(file) << made.body.value("secret", "");
    return file;
  }

 protected:
  void Configure(ServerOptions& o) override {
    o.platform = platform_;
    if (port_) o.port = port_;  // the level below keeps its upstream URL across restarts
  }

 private:
  PlatformOptions platform_;
  int port_ = 0;
};

PlatformOptions Level(const std::string& level, const std::string& id) {
  PlatformOptions p;
  p.level = level;
  p.id = id;
  p.name = id + " 名称";
  p.heartbeat_ms = 200;
  p.health_interval_s = 1;
  p.batch = 50;
  return p;
}

PlatformOptions Below(const std::string& level, const std::string& id, Node& above,
                      const fs::path& secret) {
  PlatformOptions p = Level(level, id);
  p.upstream = above.Url();
  p.upstream_secret_file = secret;
  p.upstream_ca_file = above.Cert();
  return p;
}

// N access records from DEV (every fourth one a stranger, each with its alarm).
int Upload(TestDevice& dev, int n) {
  const int64_t now = NowMs();
  json events = json::array();
  int records = 0;
  for (int i = 0; i < n; ++i) {
    const bool stranger = i % 4 == 3;
    events.push_back({{"id", NewUuid()},
                      {"kind", "access"},
                      {"created_ms", now - 1000 + i},
                      {"payload",
                       {{"time_ms", now - 1000 + i},
                        {"door", 0},
                        {"decision", stranger ? "stranger" : "open"},
                        {"reason", "matched"},
                        {"person", stranger ? json(nullptr) : json("P" + std::to_string(i % 3))},
                        {"score", 0.8}}}});
    ++records;
    if (stranger) {
      events.push_back({{"id", NewUuid()},
                        {"kind", "alarm"},
                        {"created_ms", now - 1000 + i},
                        {"payload",
                         {{"time_ms", now - 1000 + i},
                          {"door", 0},
                          {"alarm_type", "stranger"},
                          {"severity", "minor"}}}});
      ++records;
    }
  }
  const json body = {{"events", events}};
  const json up = dev.client->CallJson("POST", "/api/v1/device/events", &body);
  EXPECT_EQ(int(up["stored"].size()), records) << up;
  return records;
}

// Records of KIND (access + alarm = "") at NODE, counted through the search.
int64_t Count(Node& node, const std::string& query) {
  const auto r = node.Api("GET", "/api/v1/platform/records?limit=1&" + query);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.body.value("total", int64_t(-1));
}

bool WaitFor(const std::function<bool()>& done, int seconds = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return done();
}

// A city, two districts, one community under each.
class PlatformTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_ = anju::testing::TempDir("platform-keys");
    city_ = std::make_unique<Node>("city", Level("city", "city"));
    city_->Up();
    const fs::path d1 = city_->AddNode("d1", "district", keys_);
    const fs::path d2 = city_->AddNode("d2", "district", keys_);
    d1_ = std::make_unique<Node>("d1", Below("district", "d1", *city_, d1));
    d2_ = std::make_unique<Node>("d2", Below("district", "d2", *city_, d2));
    d1_->Up();
    d2_->Up();
    c1_secret_ = d1_->AddNode("c1", "community", keys_);
    c2_secret_ = d2_->AddNode("c2", "community", keys_);
    c1_ = std::make_unique<Node>("c1", Below("community", "c1", *d1_, c1_secret_));
    c2_ = std::make_unique<Node>("c2", Below("community", "c2", *d2_, c2_secret_));
    c1_->Up();
    c2_->Up();
  }
  void TearDown() override {
    for (auto* n : {c1_.get(), c2_.get(), d1_.get(), d2_.get(), city_.get()})
      if (n) n->Wipe();
    std::error_code ec;
    fs::remove_all(keys_, ec);
  }

  fs::path keys_, c1_secret_, c2_secret_;
  std::unique_ptr<Node> city_, d1_, d2_, c1_, c2_;
};

TEST_F(PlatformTest, RecordsGoUpOnceInOrderAndEachLevelSeesItsOwn) {
  TestDevice g1 = c1_->RegisterDevice("gate-1");
  TestDevice g2 = c2_->RegisterDevice("gate-2");
  const int sent1 = Upload(g1, 20);  // 20 access + 5 alarms
  const int sent2 = Upload(g2, 8);   // 8 access + 2 alarms
  ASSERT_TRUE(WaitFor([&] {
    return Count(*city_, "kind=access") == 28 && Count(*city_, "kind=alarm") == 7;
  })) << Count(*city_, "kind=access") << c1_->Sys("GET", "/api/v1/platform/uplink").body
      << d1_->Sys("GET", "/api/v1/platform/uplink").body << Count(*d1_, "kind=access");
  EXPECT_EQ(sent1 + sent2, 35);
  // The district holds its own community only; the city both, each under its district.
  EXPECT_EQ(Count(*d1_, "kind=access"), 20);
  EXPECT_EQ(Count(*d1_, "community=c2"), 0);
  EXPECT_EQ(Count(*d2_, "kind=access"), 8);
  const auto communities = city_->Sys("GET", "/api/v1/platform/communities");
  ASSERT_EQ(communities.status, 200) << communities.body;
  std::map<std::string, std::string> district;
  for (const auto& c : communities.body["items"]) district[c["id"]] = c["district"];
  EXPECT_EQ(district, (std::map<std::string, std::string>{{"c1", "d1"}, {"c2", "d2"}}));
  // Health reached the city too: the community's name, its devices and its backlog.
  ASSERT_TRUE(WaitFor([&] { return Count(*city_, "kind=health&community=c1") > 0; }));
  // Minimal by default: identity codes and decisions, no photo.
  const auto one = city_->Api("GET", "/api/v1/platform/records?community=c1&kind=access&limit=1");
  ASSERT_EQ(one.body["items"].size(), 1u);
  EXPECT_FALSE(one.body["items"][0]["body"].contains("crop_jpeg"));
  EXPECT_EQ(one.body["items"][0]["district"], "d1");

  // Numbers run without a gap per community and stream (in order, none lost).
  const auto all = d1_->Api("GET", "/api/v1/platform/records?community=c1&limit=1000");
  std::set<int64_t> seqs;
  for (const auto& r : all.body["items"])
    if (r["stream"] == "events") seqs.insert(r["seq"].get<int64_t>());
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(*seqs.rbegin() - *seqs.begin() + 1, int64_t(seqs.size()));

  // Pushes keep coming (heartbeats, health): nothing doubled above.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(Count(*city_, "kind=access"), 28);
  const auto uplink = c1_->Sys("GET", "/api/v1/platform/uplink");
  EXPECT_EQ(uplink.body["last_error"], "") << uplink.body;
  EXPECT_TRUE(uplink.body["configured"].get<bool>());

  // A district user at the city sees its own district's communities only (R4.2.1.1).
  const Session viewer = city_->UserWithRoles("d1-viewer", {"viewer"});
  ASSERT_EQ(city_->Sec("PUT", "/api/v1/platform/scopes/d1-viewer", {{"nodes", {"d1"}}}).status,
            200);
  const auto mine = city_->As(viewer.token, "GET", "/api/v1/platform/communities");
  ASSERT_EQ(mine.status, 200) << mine.body;
  ASSERT_EQ(mine.body["items"].size(), 1u);
  EXPECT_EQ(mine.body["items"][0]["id"], "c1");
  const auto theirs =
      city_->As(viewer.token, "GET", "/api/v1/platform/records?community=c2&limit=10");
  EXPECT_EQ(theirs.body["total"], 0);
  const auto stats = city_->As(viewer.token, "GET", "/api/v1/platform/stats");
  for (const auto& s : stats.body["items"]) EXPECT_EQ(s["community"], "c1");
  // The search across communities is audited.
  const auto audit = city_->As(city_->Ready("auditadmin").token, "GET",
                               "/api/v1/audit?action=platform.records.search&limit=5");
  EXPECT_EQ(audit.status, 200) << audit.body;
  EXPECT_FALSE(audit.body["items"].empty()) << audit.body;
}

TEST_F(PlatformTest, CommandsGoDownAndTheirConfirmationsComeBackUp) {
  // Nothing to target before the communities have reported.
  ASSERT_TRUE(WaitFor(
      [&] { return city_->Sys("GET", "/api/v1/platform/communities").body["items"].size() == 2; }));
  // A notice from the city to every community; a retention limit from one district.
  const auto notice = city_->Sys(
      "POST", "/api/v1/platform/commands",
      {{"target", "*"},
       {"kind", "notice"},
       {"body", {{"title", "停水通知"}, {"text", "明日 9:00–12:00 停水 / no water 9–12"}}}});
  ASSERT_EQ(notice.status, 201) << notice.body;
  EXPECT_EQ(notice.body["commands"].size(), 2u);
  const auto policy = d1_->Sys("POST", "/api/v1/platform/commands",
                               {{"target", "c1"},
                                {"kind", "policy"},
                                {"body", {{"retention_max_months", {{"events", 13}}}}}});
  ASSERT_EQ(policy.status, 201) << policy.body;
  // A bad command is refused where it is issued.
  EXPECT_EQ(d1_->Sys("POST", "/api/v1/platform/commands",
                     {{"target", "c1"}, {"kind", "policy"}, {"body", {{"retention", 1}}}})
                .status,
            400);
  EXPECT_EQ(
      d1_->Sys("POST", "/api/v1/platform/commands",
               {{"target", "c2"}, {"kind", "notice"}, {"body", {{"title", "x"}, {"text", "y"}}}})
          .status,
      404);  // not a community of this district

  auto states = [](Node& n) {
    std::map<std::string, std::string> out;
    const auto list = n.Sys("GET", "/api/v1/platform/commands");
    EXPECT_EQ(list.status, 200) << list.body;
    for (const auto& c : list.body["items"])
      out[c["target"].get<std::string>() + "/" + c["kind"].get<std::string>()] = c["state"];
    return out;
  };
  ASSERT_TRUE(WaitFor([&] {
    const auto city = states(*city_);
    const auto d1 = states(*d1_);
    return city.size() == 2 && city.at("c1/notice") == "applied" &&
           city.at("c2/notice") == "applied" && d1.count("c1/policy") &&
           d1.at("c1/policy") == "applied";
  })) << json(states(*city_))
      << json(states(*d1_));
  // The notice reached each community's terminals; the limit shortened c1's event period.
  for (Node* c : {c1_.get(), c2_.get()}) {
    const auto n = c->Api("GET", "/api/v1/notices");
    ASSERT_EQ(n.status, 200) << n.body;
    ASSERT_EQ(n.body["items"].size(), 1u) << n.body;
    EXPECT_EQ(n.body["items"][0]["title"], "停水通知");
  }
  const auto retention = c1_->Sys("GET", "/api/v1/admin/retention");
  EXPECT_EQ(retention.body.value("event_months", 0), 13) << retention.body;
  EXPECT_EQ(c2_->Sys("GET", "/api/v1/admin/retention").body.value("event_months", 0), 24);
}

TEST_F(PlatformTest, ALinkCutForAWhileLosesNothingThroughRestartsOnBothSides) {
  TestDevice g1 = c1_->RegisterDevice("gate-1");
  int sent = Upload(g1, 8);
  ASSERT_TRUE(WaitFor([&] { return Count(*city_, "community=c1&kind=access") == 8; }));
  // The district goes away: the community keeps recording and buffers (R3.3.2.4).
  d1_->Down();
  sent += Upload(g1, 40);
  ASSERT_TRUE(WaitFor([&] {
    const auto up = c1_->Sys("GET", "/api/v1/platform/uplink");
    return up.body.value("backlog", 0) >= 50 && !up.body.value("last_error", "").empty();
  })) << c1_->Sys("GET", "/api/v1/platform/uplink").body;
  // The community restarts during the cut: its outbox is on disk.
  c1_->Down();
  c1_->Up();
  sent += Upload(g1, 12);
  // The district comes back, and is restarted once more while catching up.
  d1_->Up();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  d1_->Down();
  d1_->Up();
  ASSERT_TRUE(WaitFor([&] { return Count(*city_, "community=c1&kind=access") == 60; }, 90))
      << Count(*city_, "community=c1&kind=access");
  EXPECT_EQ(Count(*city_, "community=c1&kind=access") + Count(*city_, "community=c1&kind=alarm"),
            sent);
  EXPECT_EQ(Count(*d1_, "community=c1&kind=access"), 60);
  ASSERT_TRUE(WaitFor(
      [&] { return c1_->Sys("GET", "/api/v1/platform/uplink").body.value("backlog", -1) <= 1; }));
}

TEST_F(PlatformTest, ANodeWritesOnlyItsOwnRecords) {
  auto push = [&](Node& above, const std::string& node, const fs::path& secret_file,
                  const json& records) {
    std::ifstream in(secret_file);
    std::string hex;
    in >> hex;
    const auto key = crypto::DataKey::FromHex(hex);
    const json envelope = platform::SealLink(key, node, platform::LinkDirection::kUp,
                                             {{"node", node}, {"records", records}});
    return above.As("", "POST", "/api/v1/platform/uplink", envelope);
  };
  auto record = [](const std::string& origin, int64_t seq) {
    return json{{"origin", origin},      {"stream", "events"}, {"seq", seq},
                {"kind", "access"},      {"time_ms", NowMs()}, {"person", "P1"},
                {"body", json::object()}};
  };
  // c2's key naming c1: refused, as an unknown node or a tampered push is.
  EXPECT_EQ(push(*d1_, "c1", c2_secret_, json::array({record("c1", 1)})).status, 401);
  EXPECT_EQ(push(*d1_, "c9", c2_secret_, json::array({record("c9", 1)})).status, 401);
  // c1 writing into c2's stream: refused, and nothing of the push is kept.
  c1_->Down();  // its own sender stays out of the way
  const auto foreign = push(*d1_, "c1", c1_secret_, json::array({record("c2", 1)}));
  EXPECT_EQ(foreign.status, 403) << foreign.body;
  EXPECT_EQ(Count(*d1_, "community=c2"), 0);
  // A district cannot write another district's community at the city.
  ASSERT_TRUE(WaitFor([&] { return Count(*city_, "community=c2") > 0; }));
  const auto other = push(*city_, "d1", keys_ / "d1.secret", json::array({record("c2", 999999)}));
  EXPECT_EQ(other.status, 403) << other.body;
  // A gap in a stream already seen is refused with where it stands.
  const auto gap = push(*d1_, "c1", c1_secret_, json::array({record("c1", 1000000)}));
  EXPECT_EQ(gap.status, 409) << gap.body;
  // A disabled node is refused from then on.
  ASSERT_EQ(d1_->Sys("DELETE", "/api/v1/platform/nodes/c1").status, 200);
  EXPECT_EQ(push(*d1_, "c1", c1_secret_, json::array()).status, 401);
}

}  // namespace
}  // namespace anju::server::testing
