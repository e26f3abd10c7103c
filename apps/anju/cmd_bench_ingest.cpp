// anju bench ingest — event ingestion rate of anju-server (target: ≥ 2,000 access
// records/s on SQLite, 2 cores, batched, with snapshots): a real server in-process on a
// temporary directory and an ephemeral port, devices registered through the real
// protocol (protocol::DeviceClient), batches of access records signed and posted as a
// terminal's outbox would send them.
// anju bench enrol — server-side enrolment time of one photo (target ≤ 200 ms) over the
// admin API with LFW photos: quality gate, liveness, embedding, duplicate check, sealed
// photo file and rows.
#include <nlohmann/json.hpp>

#include "command.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <thread>

#include <httplib.h>

#include "core/error.h"
#include "core/paths.h"
#include "crypto/bytes.h"
#include "db/local_postgres.h"
#include "protocol/device_auth.h"
#include "protocol/device_client.h"
#include "server/server.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A small camera-like JPEG (grey face-sized blob on noise), different per index.
std::vector<uint8_t> Snapshot(int i, int side) {
  cv::Mat m(side, side, CV_8UC3);
  cv::randu(m, cv::Scalar::all(60), cv::Scalar::all(200));
  cv::circle(m, {side / 2, side / 2}, side / 3, cv::Scalar(150 + i % 50, 170, 200), -1);
  std::vector<uint8_t> out;
  cv::imencode(".jpg", m, out, {cv::IMWRITE_JPEG_QUALITY, 80});
  return out;
}

std::string Uuid(std::mt19937_64& rng) {
  const uint64_t a = rng(), b = rng();
  char s[40];
  std::snprintf(s, sizeof s, "%08x-%04x-4%03x-%04x-%012llx", unsigned(a >> 32),
                unsigned((a >> 16) & 0xffff), unsigned(a & 0xfff),
                unsigned(0x8000 | ((b >> 48) & 0x3fff)),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return s;
}

void InstallBenchIngest(CLI::App& root) {
  static int records = 20000, batch = 500, devices = 2, snapshot_every = 10, snapshot_side = 160;
  static bool as_json = false, postgres = false;
  static std::string dir_flag;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("ingest", "anju-server event ingestion rate (records/s)");
  cmd->add_option("--records", records, "access records in total (default 20000)");
  cmd->add_option("--batch", batch, "records per upload, ≤ 500 (default 500)");
  cmd->add_option("--devices", devices, "devices uploading at the same time (default 2)");
  cmd->add_option("--snapshot-every", snapshot_every,
                  "one record in N carries a JPEG snapshot (default 10; 0 = none)");
  cmd->add_option("--snapshot-side", snapshot_side, "snapshot size in pixels (default 160)");
  cmd->add_option("--dir", dir_flag, "data directory (default: a fresh temporary one, removed)");
  cmd->add_flag("--postgres", postgres,
                "the databases on a throwaway local PostgreSQL 15 with durable commits "
                "(--database, docs/distributed.md) instead of SQLite files");
  cmd->add_flag("--json", as_json, "print one JSON object as the last line");
  cmd->callback([] {
    batch = std::clamp(batch, 1, 500);
    std::unique_ptr<db::LocalPostgres> pg;
    if (postgres) {
      db::LocalPostgresOptions po;
      po.durable = true;  // fsync on, as SQLite's synchronous=FULL
      pg = std::make_unique<db::LocalPostgres>(po);
    }
    devices = std::max(devices, 1);
    const bool temp = dir_flag.empty();
    const fs::path dir =
        temp ? fs::temp_directory_path() / ("anju-bench-ingest-" + std::to_string(::getpid()))
             : fs::path(dir_flag);
    if (temp) fs::remove_all(dir);
    server::ServerOptions o;
    o.data_dir = dir;
    o.port = 0;
    o.retention_interval_s = 0;
    if (pg) o.database = pg->CreateDatabase();
    auto srv = std::make_unique<server::Server>(o);
    srv->Start();

    struct Dev {
      std::string id;
      std::unique_ptr<protocol::DeviceClient> client;
    };
    std::vector<Dev> devs;
    for (int d = 0; d < devices; ++d) {
      const auto created = srv->CreateDevice("bench-" + std::to_string(d), 1, "bench");
      const auto key = crypto::Sm2Key::Generate();
      protocol::RegisterRequest req;
      req.enrolment_code = created.enrolment_code;
      req.name = "bench-" + std::to_string(d);
      req.software_version = "bench";
      req.model_version = srv->model_version();
      protocol::ClientOptions co;  // HTTPS, trusting the server's self-signed certificate
      co.ca_file = srv->tls_cert_file().string();
      const auto reg = protocol::DeviceClient::Register(srv->url(), key, req, co);
      devs.push_back(
          {reg.device_id, std::make_unique<protocol::DeviceClient>(srv->url(), reg.device_id, key,
                                                                   reg.server_public_key, co)});
    }

    // Bodies are prepared before the clock starts: the figure is the server's.
    std::vector<std::string> snapshots;
    for (int i = 0; i < 16; ++i) {
      const auto jpeg = Snapshot(i, snapshot_side);
      snapshots.push_back(crypto::ToBase64(jpeg));
    }
    const int per_device = (records + devices - 1) / devices;
    std::vector<std::vector<std::string>> bodies(static_cast<size_t>(devices));
    size_t snapshot_count = 0, snapshot_bytes = 0;
    const int64_t now = protocol::NowMs();
    std::mt19937_64 rng(7);
    for (int d = 0; d < devices; ++d) {
      for (int start = 0; start < per_device; start += batch) {
        json events = json::array();
        for (int i = start; i < std::min(per_device, start + batch); ++i) {
          const int64_t t = now - int64_t(per_device - i) * 50;
          json ev = {{"id", Uuid(rng)},
                     {"kind", "access"},
                     {"created_ms", t},
                     {"payload",
                      {{"time_ms", t},
                       {"door", 0},
                       {"decision", i % 20 ? "open" : "stranger"},
                       {"reason", i % 20 ? "matched" : "no_match"},
                       {"person", i % 20 ? json("P" + std::to_string(i % 2000)) : json(nullptr)},
                       {"score", 0.82},
                       {"second_score", 0.31},
                       {"liveness", 0.97},
                       {"quality", 0.8},
                       {"frames", 3},
                       {"mask", false},
                       {"latency_ms", 180},
                       {"terminal", devs[size_t(d)].id}}}};
          if (snapshot_every > 0 && i % snapshot_every == 0) {
            const auto& s = snapshots[size_t(i) % snapshots.size()];
            ev["snapshot"] = s;
            ++snapshot_count;
            snapshot_bytes += s.size() * 3 / 4;
          }
          events.push_back(std::move(ev));
        }
        bodies[size_t(d)].push_back(json{{"events", std::move(events)}}.dump());
      }
    }

    std::vector<std::vector<double>> latencies(static_cast<size_t>(devices));
    std::vector<size_t> stored(static_cast<size_t>(devices), 0),
        failed(static_cast<size_t>(devices), 0);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int d = 0; d < devices; ++d)
      threads.emplace_back([&, d] {
        for (const auto& body : bodies[size_t(d)]) {
          const auto b0 = std::chrono::steady_clock::now();
          const auto r = devs[size_t(d)].client->Call("POST", "/api/v1/device/events", body);
          latencies[size_t(d)].push_back(
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - b0)
                  .count());
          if (r.status != 200) {
            ++failed[size_t(d)];
            continue;
          }
          stored[size_t(d)] += json::parse(r.body)["stored"].size();
        }
      });
    for (auto& t : threads) t.join();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> all;
    size_t total_stored = 0, total_failed = 0;
    for (int d = 0; d < devices; ++d) {
      all.insert(all.end(), latencies[size_t(d)].begin(), latencies[size_t(d)].end());
      total_stored += stored[size_t(d)];
      total_failed += failed[size_t(d)];
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) {
      return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(q * double(all.size())))];
    };
    const double rate = double(total_stored) / secs;
    srv->Stop();
    std::error_code ec;
    // events.db (SQLite); on PostgreSQL there is no file: 0.
    const auto file_bytes = fs::file_size(dir / "events.db", ec);
    const uint64_t db_bytes = ec ? 0 : file_bytes;
    std::printf("%-28s %12s\n", "", "value");
    std::printf("%-28s %12zu\n", "records stored", total_stored);
    std::printf("%-28s %12zu\n", "requests", all.size());
    std::printf("%-28s %12zu\n", "failed requests", total_failed);
    std::printf("%-28s %12d\n", "devices (concurrent)", devices);
    std::printf("%-28s %12d\n", "records per request", batch);
    std::printf("%-28s %12zu\n", "snapshots", snapshot_count);
    std::printf("%-28s %12.1f\n", "snapshot KiB (mean)",
                snapshot_count ? double(snapshot_bytes) / double(snapshot_count) / 1024 : 0.0);
    std::printf("%-28s %12.2f\n", "seconds", secs);
    std::printf("%-28s %12.0f\n", "records/s", rate);
    std::printf("%-28s %12.1f\n", "request p50 ms", pct(0.5));
    std::printf("%-28s %12.1f\n", "request p95 ms", pct(0.95));
    std::fflush(stdout);
    if (temp) fs::remove_all(dir, ec);
    if (as_json)
      std::cout << json{{"database", pg ? "postgresql" : "sqlite"},
                        {"records", total_stored},
                        {"requests", all.size()},
                        {"failed_requests", total_failed},
                        {"devices", devices},
                        {"batch", batch},
                        {"snapshots", snapshot_count},
                        {"snapshot_bytes", snapshot_bytes},
                        {"seconds", secs},
                        {"records_per_s", rate},
                        {"request_p50_ms", pct(0.5)},
                        {"request_p95_ms", pct(0.95)},
                        {"events_db_bytes", db_bytes},
                        {"hardware_threads", std::thread::hardware_concurrency()}}
                       .dump()
                << "\n";
    if (total_failed) throw Error(ErrorCode::kUnavailable, "some uploads failed");
  });
}

void InstallBenchEnrol(CLI::App& root) {
  static int people = 30;
  static bool as_json = false;
  static std::string lfw_flag;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("enrol", "anju-server enrolment time per photo (LFW)");
  cmd->add_option("--people", people, "persons enrolled, one photo each (default 30)");
  cmd->add_option("--lfw", lfw_flag, "LFW image folder (default <data>/lfw/lfw)");
  cmd->add_flag("--json", as_json, "print one JSON object as the last line");
  cmd->callback([] {
    const fs::path lfw = lfw_flag.empty() ? DefaultDataDir() / "lfw" / "lfw" : fs::path(lfw_flag);
    if (!fs::is_directory(lfw)) throw Error(ErrorCode::kNotFound, "LFW not found: " + lfw.string());
    std::vector<fs::path> photos;
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(lfw))
      if (e.is_directory()) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      std::vector<fs::path> files;
      for (const auto& f : fs::directory_iterator(d)) files.push_back(f.path());
      std::sort(files.begin(), files.end());
      if (!files.empty()) photos.push_back(files.front());
      if (int(photos.size()) > people) break;
    }
    const fs::path dir =
        fs::temp_directory_path() / ("anju-bench-enrol-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    server::ServerOptions o;
    o.data_dir = dir;
    o.port = 0;
    o.retention_interval_s = 0;
    auto srv = std::make_unique<server::Server>(o);
    srv->Start();
    httplib::Client c(srv->url());
    c.set_ca_cert_path(srv->tls_cert_file().c_str());
    c.enable_server_certificate_verification(true);
    c.set_read_timeout(60, 0);
    const httplib::Headers auth = {{"Authorization", "Bearer " + srv->admin_token()}};
    std::vector<double> server_ms, gate_ms, http_ms;
    std::map<std::string, int> refused;
    for (size_t i = 0; i < photos.size(); ++i) {
      const std::string code = "B" + std::to_string(i);
      c.Post("/api/v1/persons", auth, json{{"code", code}, {"name", "bench"}}.dump(),
             "application/json");
      c.Post("/api/v1/persons/" + code + "/consents", auth,
             json{{"notice_version", "bench"}, {"purpose", "bench"}}.dump(), "application/json");
      std::ifstream in(photos[i], std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      const std::string body = json{
          {"image", crypto::ToBase64(crypto::AsBytes(bytes))},
          {"accept_duplicate",
           true}}.dump();
      const auto t0 = std::chrono::steady_clock::now();
      auto r = c.Post("/api/v1/persons/" + code + "/photos", auth, body, "application/json");
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!r) throw Error(ErrorCode::kUnavailable, "server did not answer");
      const json j = json::parse(r->body);
      if (i == 0) continue;  // the first one opens the face engine
      if (r->status == 201) {
        server_ms.push_back(j["elapsed_ms"].get<double>());
        gate_ms.push_back(j["gate_ms"].get<double>());
        http_ms.push_back(ms);
      } else {
        for (const auto& reason : j["error"].value("reasons", json::array({j["error"]["code"]})))
          ++refused[reason.get<std::string>()];
      }
    }
    srv->Stop();
    std::error_code ec;
    fs::remove_all(dir, ec);
    auto pct = [](std::vector<double> v, double q) {
      if (v.empty()) return 0.0;
      std::sort(v.begin(), v.end());
      return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
    };
    std::printf("%-32s %10s\n", "", "value");
    std::printf("%-32s %10zu\n", "photos enrolled", server_ms.size());
    std::printf("%-32s %10zu\n", "photos refused by the gate",
                photos.size() - 1 - server_ms.size());
    std::printf("%-32s %10.1f\n", "server-side ms, median", pct(server_ms, 0.5));
    std::printf("%-32s %10.1f\n", "server-side ms, p95", pct(server_ms, 0.95));
    std::printf("%-32s %10.1f\n", "  of which quality gate+embed", pct(gate_ms, 0.5));
    std::printf("%-32s %10.1f\n", "HTTP round trip ms, median", pct(http_ms, 0.5));
    for (const auto& [reason, n] : refused)
      std::printf("  refused: %-22s %10d\n", reason.c_str(), n);
    std::fflush(stdout);
    if (as_json)
      std::cout << json{{"enrolled", server_ms.size()},
                        {"refused", refused},
                        {"server_ms_median", pct(server_ms, 0.5)},
                        {"server_ms_p95", pct(server_ms, 0.95)},
                        {"gate_ms_median", pct(gate_ms, 0.5)},
                        {"http_ms_median", pct(http_ms, 0.5)}}
                       .dump()
                << "\n";
  });
}

}  // namespace
}  // namespace anju::cli

ANJU_COMMAND(anju::cli::InstallBenchIngest);
ANJU_COMMAND(anju::cli::InstallBenchEnrol);
