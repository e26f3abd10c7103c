// anju bench event-store — ingestion throughput of server::EventStore::Ingest itself
// (no HTTP): batches of access records as a terminal uploads them, a fraction with a JPEG
// snapshot, on a fresh data directory. The last line is one JSON object.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "core/paths.h"
#include "crypto/bytes.h"
#include "server/events/event_store.h"
#include "server/runtime/embedded.h"
#include "store/outbox.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// A real JPEG of about BYTES: an LFW face when the data is present (else a drawn card),
// re-encoded, then padded after the end marker (decoders ignore trailing bytes).
std::vector<uint8_t> SnapshotJpeg(size_t bytes) {
  cv::Mat img;
  const fs::path data = DefaultDataDir();
  if (!data.empty())
    img = cv::imread((data / "lfw/lfw/Aaron_Eckhart/Aaron_Eckhart_0001.jpg").string());
  if (img.empty()) {
    img = cv::Mat(250, 250, CV_8UC3, cv::Scalar(90, 120, 160));
    cv::circle(img, {125, 125}, 80, cv::Scalar(180, 190, 220), -1);
  }
  std::vector<uint8_t> jpeg;
  cv::imencode(".jpg", img, jpeg, {cv::IMWRITE_JPEG_QUALITY, 90});
  if (jpeg.size() < bytes) jpeg.resize(bytes, 0);
  return jpeg;
}

int64_t DirBytes(const fs::path& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file(ec)) total += int64_t(it->file_size(ec));
  return total;
}

json RunOnce(const fs::path& dir, server::runtime::BlobSync sync, int records, int batch_size,
             int snapshot_every, const std::string& snapshot_b64) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The snapshots go through the blob store, as in the server; SYNC is how its files
  // reach the disk.
  server::runtime::FileBlobStore blobs(dir, sync);
  server::EventStore store(dir, crypto::DataKey::Generate(), blobs);
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  // Built before the clock starts: the HTTP layer hands Ingest parsed JSON too.
  std::vector<json> batches;
  int n = 0, with_snapshot = 0;
  while (n < records) {
    json events = json::array();
    for (int i = 0; i < batch_size && n < records; ++i, ++n) {
      const int64_t t = now_ms - (records - n) * 10;
      json ev = {{"id", store::NewOutboxId()},
                 {"kind", "access"},
                 {"created_ms", t},
                 {"payload",
                  {{"time_ms", t},
                   {"door", n % 4},
                   {"decision", n % 50 == 0 ? "stranger" : "open"},
                   {"reason", "matched"},
                   {"person", n % 50 == 0 ? json() : json("P" + std::to_string(n % 2000))},
                   {"score", 0.81},
                   {"second_score", 0.42},
                   {"liveness", 0.97},
                   {"quality", 0.88},
                   {"frames", 3},
                   {"mask", false},
                   {"latency_ms", 180},
                   {"terminal", "T-01"}}}};
      if (snapshot_every > 0 && n % snapshot_every == 0) {
        ev["snapshot"] = snapshot_b64;
        ++with_snapshot;
      }
      events.push_back(std::move(ev));
    }
    batches.push_back({{"events", std::move(events)}});
  }
  std::vector<double> batch_ms;
  size_t stored = 0;
  const auto start = Clock::now();
  for (auto& b : batches) {
    const auto t0 = Clock::now();
    stored += store.Ingest("bench-device", b).stored.size();
    batch_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (stored != size_t(records))
    throw Error(ErrorCode::kInternal, "bench: only " + std::to_string(stored) + " stored");
  std::sort(batch_ms.begin(), batch_ms.end());
  auto pct = [&](double p) { return batch_ms[size_t(p * double(batch_ms.size() - 1))]; };
  const char* name = sync == server::runtime::BlobSync::kParallel  ? "parallel"
                     : sync == server::runtime::BlobSync::kPerFile ? "per_file"
                                                                   : "syncfs";
  json j = {{"sync", name},
            {"records", records},
            {"batch", batch_size},
            {"snapshots", with_snapshot},
            {"seconds", seconds},
            {"records_per_s", double(records) / seconds},
            {"batch_ms_p50", pct(0.5)},
            {"batch_ms_p95", pct(0.95)},
            {"batch_ms_max", batch_ms.back()},
            {"events_db_bytes", store.DatabaseBytes()},
            {"snapshot_dir_bytes", DirBytes(store.snapshot_dir())}};
  std::printf("  %-8s %6d records in %.2f s = %7.0f records/s; batch p50 %.1f ms, p95 %.1f ms\n",
              j["sync"].get<std::string>().c_str(), records, seconds, double(records) / seconds,
              pct(0.5), pct(0.95));
  return j;
}

void InstallBenchEventStore(CLI::App& root) {
  static int records = 20000, batch = 100, snapshot_every = 10, snapshot_bytes = 20000;
  static std::string sync = "all", dir;
  static bool as_json = false, keep = false;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("event-store",
                                   "server event ingestion throughput (EventStore::Ingest, no "
                                   "HTTP)");
  cmd->add_option("--records", records, "access records to ingest")->check(CLI::Range(1, 10000000));
  cmd->add_option("--batch", batch, "records per upload (terminal batch)")
      ->check(CLI::Range(1, int(server::kMaxEventsPerBatch)));
  cmd->add_option("--snapshot-every", snapshot_every, "every Nth record has a snapshot (0 = none)")
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--snapshot-bytes", snapshot_bytes, "snapshot JPEG size")
      ->check(CLI::Range(100, int(server::kMaxSnapshotBytes)));
  cmd->add_option("--sync", sync,
                  "snapshot durability: parallel (default), per-file, syncfs or all")
      ->check(CLI::IsMember({"parallel", "per-file", "syncfs", "all"}));
  cmd->add_option("--dir", dir, "data directory to use (default: a fresh temporary one)");
  cmd->add_flag("--keep", keep, "keep the data directory");
  cmd->add_flag("--json", as_json, "print the figures as one JSON line at the end");
  cmd->callback([] {
    const fs::path work = dir.empty() ? fs::temp_directory_path() /
                                            ("anju-bench-events-" + std::to_string(::getpid()))
                                      : fs::path(dir);
    const std::vector<uint8_t> jpeg = SnapshotJpeg(size_t(snapshot_bytes));
    const std::string b64 = crypto::ToBase64(jpeg);
    std::printf(
        "event store ingestion: %d records, batches of %d, every %d with a %zu-byte "
        "snapshot, in %s\n",
        records, batch, snapshot_every, jpeg.size(), work.c_str());
    json modes = json::object();
    if (sync == "all" || sync == "parallel")
      modes["parallel"] =
          RunOnce(work, server::runtime::BlobSync::kParallel, records, batch, snapshot_every, b64);
    if (sync == "all" || sync == "per-file")
      modes["per_file"] =
          RunOnce(work, server::runtime::BlobSync::kPerFile, records, batch, snapshot_every, b64);
    if (sync == "all" || sync == "syncfs")
      modes["syncfs"] =
          RunOnce(work, server::runtime::BlobSync::kSyncfs, records, batch, snapshot_every, b64);
    if (!keep) fs::remove_all(work);
    // The headline figure is the store's default mode (parallel fsync) when it ran.
    const json& head = modes.contains("parallel") ? modes["parallel"] : modes.begin().value();
    json out = {{"bench", "event-store"},
                {"records", records},
                {"batch", batch},
                {"snapshot_every", snapshot_every},
                {"snapshot_bytes", jpeg.size()},
                {"records_per_s", head["records_per_s"]},
                {"modes", modes}};
    if (as_json) std::printf("%s\n", out.dump().c_str());
  });
}

ANJU_COMMAND(InstallBenchEventStore);

}  // namespace
}  // namespace anju::cli
