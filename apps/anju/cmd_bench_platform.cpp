// anju bench platform — the three-level platform on loopback (docs/platform.md): N community
// servers under one district platform under one city platform, each a real anju-server in
// this process (TLS, sealed links), with a simulated terminal per community uploading
// access records and stranger alarms. The district is stopped for --cut-seconds (every
// community's uplink cut) while the terminals go on; then it comes back and the bench waits
// until the city holds every record. Checks that nothing was lost or doubled at either level
// (R3.3.2.4, R3.4.2.1). The last line is one JSON object with --json.
#include <httplib.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "command.h"
#include "core/clock.h"
#include "core/error.h"
#include "core/uuid.h"
#include "crypto/sm2.h"
#include "protocol/device_client.h"
#include "server/server.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// One anju-server of the platform and an administrator's session on it.
struct Level {
  fs::path dir;
  server::ServerOptions options;
  std::unique_ptr<server::Server> srv;
  std::string admin_password, admin_token;

  void Start() {
    srv = std::make_unique<server::Server>(options);
    srv->Start();
    options.port = srv->port();  // the level below keeps its upstream URL across restarts
    for (const auto& [user, pw] : srv->initial_passwords())
      if (user == "admin") admin_password = pw;
    admin_token.clear();
  }
  void Stop() { srv.reset(); }

  json Call(const std::string& method, const std::string& path, const json& body,
            const std::string& token) {
    httplib::Client c(srv->url());
    c.set_ca_cert_path(srv->tls_cert_file().string().c_str());
    c.set_read_timeout(60, 0);
    const httplib::Headers h = {{"Authorization", "Bearer " + token}};
    const auto res = method == "GET"   ? c.Get(path, h)
                     : method == "PUT" ? c.Put(path, h, body.dump(), "application/json")
                                       : c.Post(path, h, body.dump(), "application/json");
    if (!res) throw Error(ErrorCode::kUnavailable, path + ": " + httplib::to_string(res.error()));
    json j = json::parse(res->body, nullptr, false);
    if (res->status >= 300)
      throw Error(ErrorCode::kInternal,
                  method + " " + path + ": HTTP " + std::to_string(res->status) + " " + res->body);
    return j;
  }
  // The built-in system administrator (config.manage: nodes), password changed at first use.
  const std::string& Admin() {
    if (!admin_token.empty()) return admin_token;
    json login = Call("POST", "/api/v1/auth/login",
                      {{"username", "admin"}, {"password", admin_password}}, "");
    admin_token = login.value("token", "");
    if (login["user"].value("must_change_password", false)) {
      const std::string fresh = "Bench-Pa55-" + NewUuid().substr(0, 8);
      Call("POST", "/api/v1/auth/password",
           {{"old_password", admin_password}, {"new_password", fresh}}, admin_token);
      admin_password = fresh;
    }
    return admin_token;
  }
  // The integration token (operator: events.read) for the record counts.
  int64_t Count(const std::string& query) {
    return Call("GET", "/api/v1/platform/records?limit=1&" + query, nullptr, srv->admin_token())
        .value("total", int64_t(-1));
  }
  fs::path AddNode(const std::string& id, const std::string& level, const fs::path& keys) {
    const json made = Call("POST", "/api/v1/platform/nodes",
                           {{"id", id}, {"name", id}, {"level", level}}, Admin());
    const fs::path file = keys / (id + ".secret");
    std::ofstream(file) << made.value("secret", "");
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    return file;
  }
};

server::ServerOptions Options(const fs::path& dir, const std::string& level,
                              const std::string& id) {
  server::ServerOptions o;
  o.data_dir = dir;
  o.port = 0;
  o.retention_interval_s = 0;
  o.security.totp_for_admins = false;  // a bench's administrator has no authenticator
  o.platform.level = level;
  o.platform.id = id;
  o.platform.name = id;
  o.platform.heartbeat_ms = 500;
  o.platform.health_interval_s = 5;
  return o;
}

void Below(server::ServerOptions& o, Level& above, const fs::path& secret) {
  o.platform.upstream = above.srv->url();
  o.platform.upstream_secret_file = secret;
  o.platform.upstream_ca_file = above.srv->tls_cert_file();
}

struct Terminal {
  crypto::Sm2Key key = crypto::Sm2Key::Generate();
  std::unique_ptr<protocol::DeviceClient> client;
};

Terminal Register(Level& c) {
  Terminal t;
  const auto made = c.srv->CreateDevice("gate-1", 1);
  protocol::ClientOptions co;
  co.ca_file = c.srv->tls_cert_file().string();
  protocol::RegisterRequest req;
  req.enrolment_code = made.enrolment_code;
  req.name = "gate-1";
  req.software_version = "bench";
  req.model_version = c.srv->model_version();
  req.doors = 1;
  const auto reg = protocol::DeviceClient::Register(c.srv->url(), t.key, req, co);
  t.client = std::make_unique<protocol::DeviceClient>(c.srv->url(), reg.device_id, t.key,
                                                      reg.server_public_key, co);
  return t;
}

// N access records (1 in 10 a stranger, with its alarm): how many records were stored.
int64_t Upload(Terminal& t, int n) {
  const int64_t now = NowMs();
  json events = json::array();
  for (int i = 0; i < n; ++i) {
    const bool stranger = i % 10 == 9;
    events.push_back({{"id", NewUuid()},
                      {"kind", "access"},
                      {"created_ms", now},
                      {"payload",
                       {{"time_ms", now},
                        {"door", 0},
                        {"decision", stranger ? "stranger" : "open"},
                        {"person", stranger ? json(nullptr) : json("P" + std::to_string(i % 50))},
                        {"score", 0.8}}}});
    if (stranger)
      events.push_back(
          {{"id", NewUuid()},
           {"kind", "alarm"},
           {"created_ms", now},
           {"payload",
            {{"time_ms", now}, {"door", 0}, {"alarm_type", "stranger"}, {"severity", "minor"}}}});
  }
  const json body = {{"events", events}};
  const json up = t.client->CallJson("POST", "/api/v1/device/events", &body);
  return int64_t(up.value("stored", json::array()).size());
}

void InstallBenchPlatform(CLI::App& root) {
  static int communities = 3, records = 300, cut_s = 5, batch = 500, timeout_s = 300;
  static std::string dir;
  static bool as_json = false;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("platform",
                                   "three-level platform: communities → district → city, "
                                   "uplinks cut and healed");
  cmd->add_option("--communities", communities, "community servers")->check(CLI::Range(1, 64));
  cmd->add_option("--records", records, "access records per community, half during the cut")
      ->check(CLI::Range(2, 10000000));
  cmd->add_option("--cut-seconds", cut_s, "how long the uplinks are cut")
      ->check(CLI::Range(0, 86400));
  cmd->add_option("--batch", batch, "records per push")->check(CLI::Range(1, 5000));
  cmd->add_option("--timeout", timeout_s, "give up catching up after this many seconds")
      ->check(CLI::Range(1, 86400));
  cmd->add_option("--dir", dir, "working directory (default: a fresh temporary one, removed)");
  cmd->add_flag("--json", as_json, "print the figures as one JSON line at the end");
  cmd->callback([] {
    // The servers in this process write to peers that a stopped district leaves closed
    // (TLS writes with write(2)): fail that request, not the process, as anju-server does.
    std::signal(SIGPIPE, SIG_IGN);
    const fs::path work = dir.empty() ? fs::temp_directory_path() /
                                            ("anju-bench-platform-" + std::to_string(::getpid()))
                                      : fs::path(dir);
    fs::create_directories(work / "keys");
    Level city{work / "city", Options(work / "city", "city", "city"), {}, {}, {}};
    city.Start();
    Level district{work / "d1", Options(work / "d1", "district", "d1"), {}, {}, {}};
    Below(district.options, city, city.AddNode("d1", "district", work / "keys"));
    district.options.platform.batch = batch;
    district.Start();
    std::vector<std::unique_ptr<Level>> cs;
    std::vector<Terminal> terminals;
    for (int i = 0; i < communities; ++i) {
      const std::string id = "c" + std::to_string(i + 1);
      auto c = std::make_unique<Level>();
      c->dir = work / id;
      c->options = Options(c->dir, "community", id);
      c->options.platform.batch = batch;
      Below(c->options, district, district.AddNode(id, "community", work / "keys"));
      c->Start();
      terminals.push_back(Register(*c));
      cs.push_back(std::move(c));
    }
    std::printf("platform: %d communities → 1 district → city, %d records each, cut %d s\n",
                communities, records, cut_s);
    // Before the cut: half of the records, sent as they come.
    int64_t sent = 0;
    const int chunk = 100;
    auto produce = [&](int n) {
      for (int done = 0; done < n; done += chunk)
        for (auto& t : terminals) sent += Upload(t, std::min(chunk, n - done));
    };
    const auto t_first = Clock::now();
    produce(records / 2);
    // The cut: the district goes away; the terminals keep going.
    district.Stop();
    const auto t_cut = Clock::now();
    produce(records - records / 2);
    int64_t backlog = 0;
    for (auto& c : cs)
      backlog += c->Call("GET", "/api/v1/platform/uplink", nullptr, c->Admin()).value("backlog", 0);
    const double left = cut_s - Since(t_cut);
    if (left > 0) std::this_thread::sleep_for(std::chrono::duration<double>(left));
    // Healed: catch up until the city holds everything.
    district.Start();
    const auto t_heal = Clock::now();
    auto total = [](Level& l) { return l.Count("kind=access") + l.Count("kind=alarm"); };
    int64_t at_city = 0;
    while (Since(t_heal) < timeout_s) {
      at_city = total(city);
      if (at_city >= sent) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    const double catch_up_s = Since(t_heal);
    const bool timed_out = at_city < sent;
    const int64_t at_district = total(district);
    at_city = total(city);
    // Doubled: a record stored twice would count twice (the keys forbid it; counted anyway).
    const int64_t lost = std::max<int64_t>(0, sent - at_city);
    const int64_t duplicated =
        std::max<int64_t>(0, at_city - sent) + std::max<int64_t>(0, at_district - sent);
    const double total_s = Since(t_first);
    std::printf("  sent %lld  at district %lld  at city %lld  lost %lld  doubled %lld\n",
                (long long)sent, (long long)at_district, (long long)at_city, (long long)lost,
                (long long)duplicated);
    std::printf("  backlog at the cut %lld records, catch-up %.1f s (%.0f records/s)\n",
                (long long)backlog, catch_up_s, catch_up_s > 0 ? backlog / catch_up_s : 0.0);
    json out = {{"bench", "platform"},
                {"communities", communities},
                {"cut_seconds", cut_s},
                {"sent", sent},
                {"at_district", at_district},
                {"at_city", at_city},
                {"lost", lost},
                {"timed_out", timed_out},
                {"duplicated", duplicated},
                {"backlog_at_cut", backlog},
                {"catch_up_s", catch_up_s},
                {"catch_up_records_per_s", catch_up_s > 0 ? backlog / catch_up_s : 0.0},
                {"total_s", total_s}};
    for (auto& c : cs) c->Stop();
    district.Stop();
    city.Stop();
    if (dir.empty()) {
      std::error_code ec;
      fs::remove_all(work, ec);
    }
    if (as_json) std::printf("%s\n", out.dump().c_str());
    if (lost || duplicated) throw Error(ErrorCode::kInternal, "platform: records lost or doubled");
  });
}

ANJU_COMMAND(InstallBenchPlatform);

}  // namespace
}  // namespace anju::cli
