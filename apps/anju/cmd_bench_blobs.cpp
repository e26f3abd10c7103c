// anju bench blobs — put and get throughput of the server's blob stores
// (server/runtime/blob_store.h): FileBlobStore on a fresh directory (parallel fsync, the
// server's default) and storage::PostgresBlobStore on a throwaway PostgreSQL 15 with fsync
// on (or --database URL), with sealed-snapshot-sized random bytes in batches as the event
// ingest writes them (R3.3.2.5). The last line is one JSON object with --json.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "db/local_postgres.h"
#include "server/runtime/embedded.h"
#include "server/storage/postgres_blob_store.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

json Measure(const std::string& name, server::runtime::BlobStore& store, int count, int batch,
             const std::vector<std::vector<uint8_t>>& payloads) {
  // Keys as the event store makes them: one day's directory, an id per snapshot.
  std::vector<std::string> keys;
  for (int i = 0; i < count; ++i)
    keys.push_back("snapshots/2026/12/07/bench-" + std::to_string(::getpid()) + "-" +
                   std::to_string(i) + ".jpg.sealed");
  const double mb = double(payloads[0].size()) * count / (1024.0 * 1024.0);
  auto t0 = Clock::now();
  for (int i = 0; i < count; i += batch) {
    std::vector<std::pair<std::string, std::span<const uint8_t>>> b;
    for (int j = i; j < std::min(count, i + batch); ++j)
      b.emplace_back(keys[size_t(j)], payloads[size_t(j) % payloads.size()]);
    store.PutMany(b);
  }
  const double put_s = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  size_t read = 0;
  for (const auto& k : keys) read += store.Get(k).size();
  const double get_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (read != payloads[0].size() * size_t(count))
    throw Error(ErrorCode::kInternal, "bench: read back " + std::to_string(read) + " bytes");
  json j = {{"store", name},
            {"put_blobs_per_s", count / put_s},
            {"put_mb_per_s", mb / put_s},
            {"get_blobs_per_s", count / get_s},
            {"get_mb_per_s", mb / get_s},
            {"put_s", put_s},
            {"get_s", get_s}};
  std::printf("  %-8s put %7.0f blobs/s %6.1f MB/s   get %7.0f blobs/s %6.1f MB/s\n", name.c_str(),
              count / put_s, mb / put_s, count / get_s, mb / get_s);
  for (const auto& k : keys) store.Remove(k);
  return j;
}

void InstallBenchBlobs(CLI::App& root) {
  static int count = 2000, batch = 10, bytes = 30 * 1024;
  static std::string database, stores = "all", dir;
  static bool as_json = false;
  auto* cmd = Group(root, "bench", "benchmarks")
                  ->add_subcommand("blobs",
                                   "blob store put/get throughput: files vs PostgreSQL "
                                   "(sealed snapshots)");
  cmd->add_option("--count", count, "blobs to put and get")->check(CLI::Range(1, 10000000));
  cmd->add_option("--batch", batch,
                  "blobs per PutMany (an upload of 100 records, 1 in 10 with a "
                  "snapshot: 10)")
      ->check(CLI::Range(1, 10000));
  cmd->add_option("--bytes", bytes, "bytes per blob (a sealed ~30 KiB snapshot)")
      ->check(CLI::Range(1, 64 * 1024 * 1024));
  cmd->add_option("--stores", stores, "files, postgres or all")
      ->check(CLI::IsMember({"files", "postgres", "all"}));
  cmd->add_option("--database", database,
                  "postgresql://… to measure (default: a throwaway PostgreSQL 15, fsync on)");
  cmd->add_option("--dir", dir, "directory for the file store (default: a fresh temporary one)");
  cmd->add_flag("--json", as_json, "print the figures as one JSON line at the end");
  cmd->callback([] {
    // Sealed bytes look random: nothing for the database's compression to win.
    std::mt19937_64 rng(7);
    std::vector<std::vector<uint8_t>> payloads(16, std::vector<uint8_t>(size_t(bytes)));
    for (auto& p : payloads)
      for (auto& b : p) b = uint8_t(rng());
    std::printf("blob stores: %d blobs of %d bytes, batches of %d\n", count, bytes, batch);
    json results = json::array();
    if (stores != "postgres") {
      const fs::path work = dir.empty() ? fs::temp_directory_path() /
                                              ("anju-bench-blobs-" + std::to_string(::getpid()))
                                        : fs::path(dir);
      {
        server::runtime::FileBlobStore files(work);
        results.push_back(Measure("files", files, count, batch, payloads));
      }
      std::error_code ec;
      if (dir.empty()) fs::remove_all(work, ec);
    }
    if (stores != "files") {
      std::unique_ptr<db::LocalPostgres> pg;
      std::string url = database;
      if (url.empty()) {
        if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
          throw Error(ErrorCode::kUnavailable, why);
        db::LocalPostgresOptions o;
        o.durable = true;  // fsync on: as durable as the files' fsync
        o.shared_buffers = "128MB";
        pg = std::make_unique<db::LocalPostgres>(o);
        url = pg->CreateDatabase();
      }
      auto store = server::storage::OpenPostgresBlobStore(url);
      results.push_back(Measure("postgres", *store, count, batch, payloads));
    }
    json out = {{"bench", "blobs"},
                {"count", count},
                {"batch", batch},
                {"bytes", bytes},
                {"stores", results}};
    if (as_json) std::printf("%s\n", out.dump().c_str());
  });
}

ANJU_COMMAND(InstallBenchBlobs);

}  // namespace
}  // namespace anju::cli
