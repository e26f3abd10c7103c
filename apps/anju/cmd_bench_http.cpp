// anju bench http-hostile — the server's HTTP front under hostile clients (docs/reliability.md):
// a real anju-server in process (temporary directory, ephemeral port, TLS 1.3, no face
// models) with 1,000 idle TCP connections and 50 TLS clients stalled half-way through their
// request header open, while GET /healthz is timed on fresh TLS connections; then a 64 MiB
// chunked POST (refused? resident memory growth) and 2,000 kept-alive TLS connections each
// served twice. Clients bind loopback source addresses 127.0.0.10–29 so that the per-address
// connection cap (256) does not refuse them.
#include <nlohmann/json.hpp>

#include "command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "server/http/raw_client.h"
#include "server/server.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using server::http::RawClient;
using server::http::RawClientOptions;
using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

// Times N GET /healthz, each on a fresh TLS connection (handshake included); failed ones count.
json TimeHealthz(int port, int n, int* failed) {
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    RawClientOptions o;
    o.port = port;
    auto c = RawClient::Connect(o);
    std::optional<server::http::RawReply> r;
    if (c && c->Send(RawClient::Get("/healthz"))) r = c->Read();
    if (r && r->status == 200)
      ms.push_back(Ms(Clock::now() - t0));
    else
      ++*failed;
  }
  return {{"requests", n},
          {"ok", ms.size()},
          {"p50_ms", Pct(ms, 0.5)},
          {"p99_ms", Pct(ms, 0.99)},
          {"max_ms", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())}};
}

std::string Source(int i, int spread) {
  return "127.0.0." + std::to_string(10 + i % spread);
}

void InstallBenchHttp(CLI::App& root) {
  static int idle = 1000, slow = 50, requests = 200, keepalive = 2000;
  static bool as_json = false;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("http-hostile",
                                   "anju-server's HTTP front under idle, slow and oversized "
                                   "clients (healthz latency, connections held, memory)");
  cmd->add_option("--idle", idle, "idle TCP connections held open (default 1000)");
  cmd->add_option("--slow", slow, "TLS clients stalled in their request header (default 50)");
  cmd->add_option("--requests", requests, "timed GET /healthz (default 200)");
  cmd->add_option("--keepalive", keepalive, "kept-alive TLS connections served (default 2000)");
  cmd->add_flag("--json", as_json, "print one JSON object as the last line");
  cmd->callback([] {
    const fs::path dir =
        fs::temp_directory_path() / ("anju-bench-http-" + std::to_string(::getpid()));
    fs::create_directories(dir / "no-models");
    json out = {{"bench", "http-hostile"}};
    {
      server::ServerOptions o;
      o.data_dir = dir / "data";
      o.model_dir = dir / "no-models";
      o.port = 0;
      o.retention_interval_s = 0;
      // Hostile connections are held for the whole run (the defaults would drop the idle and
      // stalled ones after 10 s, which is the defence, not what is measured here).
      o.http_limits.header_timeout = std::chrono::seconds(600);
      o.http_limits.idle_timeout = std::chrono::seconds(600);
      server::Server srv(o);
      srv.Start();
      const int port = srv.port();
      int failed = 0;
      out["quiet"] = TimeHealthz(port, std::min(requests, 50), &failed);
      const size_t rss0 = server::http::ResidentBytes();

      // Idle TCP connections and stalled TLS headers.
      std::vector<std::unique_ptr<RawClient>> hostile;
      const auto t_open = Clock::now();
      for (int i = 0; i < idle; ++i) {
        RawClientOptions c;
        c.port = port;
        c.handshake = false;
        c.source = Source(i, 8);
        if (auto cl = RawClient::Connect(c)) hostile.push_back(std::move(cl));
      }
      for (int i = 0; i < slow; ++i) {
        RawClientOptions c;
        c.port = port;
        c.source = Source(i, 8);
        auto cl = RawClient::Connect(c);
        if (cl && cl->Send("GET /healthz HTTP/1.1\r\nHost: an")) hostile.push_back(std::move(cl));
      }
      for (int i = 0; i < 500 && srv.http_stats().open < hostile.size(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      const double open_ms = Ms(Clock::now() - t_open);
      failed = 0;
      json hostile_j = TimeHealthz(port, requests, &failed);
      hostile_j["failed"] = failed;
      hostile_j["idle_tcp"] = idle;
      hostile_j["slow_tls"] = slow;
      hostile_j["connections_held"] = srv.http_stats().open;
      hostile_j["open_ms"] = open_ms;
      hostile_j["rss_growth_mib"] =
          (double(server::http::ResidentBytes()) - double(rss0)) / (1 << 20);
      out["hostile"] = hostile_j;
      hostile.clear();

      // A 64 MiB chunked POST to the login route (no authentication needed to send it).
      {
        const size_t before = server::http::ResidentBytes();
        size_t peak = before, sent = 0;
        RawClientOptions c;
        c.port = port;
        auto cl = RawClient::Connect(c);
        std::string outcome = "no connection";
        if (cl) {
          bool broken = !cl->Send(
              "POST /api/v1/auth/login HTTP/1.1\r\nHost: anju\r\nContent-Type: "
              "application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
          const std::string chunk = "10000\r\n" + std::string(1 << 16, 'a') + "\r\n";
          for (int i = 0; i < 1024 && !broken; ++i) {
            broken = !cl->Send(chunk);
            if (!broken) sent += 1 << 16;
            if (i % 16 == 0) peak = std::max(peak, server::http::ResidentBytes());
          }
          if (!broken) cl->Send("0\r\n\r\n");
          const auto r = cl->Read();
          outcome = r ? "HTTP " + std::to_string(r->status) : "connection closed";
        }
        peak = std::max(peak, server::http::ResidentBytes());
        out["chunked_64mib"] = {{"outcome", outcome},
                                {"sent_mib", double(sent) / (1 << 20)},
                                {"rss_growth_mib", double(peak - before) / (1 << 20)}};
      }

      // Kept-alive TLS connections, every one served twice on the same connection.
      {
        std::vector<std::unique_ptr<RawClient>> conns;
        const size_t before = server::http::ResidentBytes();
        const auto t0 = Clock::now();
        for (int i = 0; i < keepalive; ++i) {
          RawClientOptions c;
          c.port = port;
          c.source = Source(i, 20);
          if (auto cl = RawClient::Connect(c)) conns.push_back(std::move(cl));
        }
        const double connect_ms = Ms(Clock::now() - t0);
        json rounds = json::array();
        for (int round = 0; round < 2; ++round) {
          const auto r0 = Clock::now();
          for (auto& cl : conns) cl->Send(RawClient::Get("/healthz"));
          int ok = 0;
          for (auto& cl : conns) {
            const auto r = cl->Read();
            ok += r && r->status == 200;
          }
          rounds.push_back({{"served", ok}, {"ms", Ms(Clock::now() - r0)}});
        }
        out["keepalive"] = {{"connections", conns.size()},
                            {"connect_ms", connect_ms},
                            {"rounds", rounds},
                            {"held", srv.http_stats().open},
                            {"rss_growth_mib",
                             (double(server::http::ResidentBytes()) - double(before)) / (1 << 20)}};
      }
      const auto st = srv.http_stats();
      out["server"] = {{"accepted", st.accepted},
                       {"refused_per_address", st.refused_per_address},
                       {"refused_capacity", st.refused_capacity},
                       {"timed_out", st.timed_out},
                       {"refused_body", st.refused_body}};
    }
    std::error_code ec;
    fs::remove_all(dir, ec);

    const auto& h = out["hostile"];
    std::printf("HTTP front under hostile clients (TLS 1.3, in process, 2-core machine)\n");
    std::printf("  GET /healthz, quiet:           p50 %.1f ms  p99 %.1f ms\n",
                out["quiet"]["p50_ms"].get<double>(), out["quiet"]["p99_ms"].get<double>());
    std::printf(
        "  with %d idle + %d slow-header: p50 %.1f ms  p99 %.1f ms  max %.1f ms  "
        "(%d failed; %zu connections held)\n",
        idle, slow, h["p50_ms"].get<double>(), h["p99_ms"].get<double>(), h["max_ms"].get<double>(),
        h["failed"].get<int>(), h["connections_held"].get<size_t>());
    std::printf("  64 MiB chunked POST:           %s after %.0f MiB sent, RSS +%.1f MiB\n",
                out["chunked_64mib"]["outcome"].get<std::string>().c_str(),
                out["chunked_64mib"]["sent_mib"].get<double>(),
                out["chunked_64mib"]["rss_growth_mib"].get<double>());
    const auto& k = out["keepalive"];
    std::printf(
        "  %zu kept-alive connections:  served %d then %d (%.0f ms, %.0f ms), RSS +%.1f "
        "MiB\n",
        k["connections"].get<size_t>(), k["rounds"][0]["served"].get<int>(),
        k["rounds"][1]["served"].get<int>(), k["rounds"][0]["ms"].get<double>(),
        k["rounds"][1]["ms"].get<double>(), k["rss_growth_mib"].get<double>());
    if (as_json) std::cout << out.dump() << "\n";
  });
}

}  // namespace
}  // namespace anju::cli

ANJU_COMMAND(anju::cli::InstallBenchHttp);
