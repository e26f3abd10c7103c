#include "eval/feature_batch.h"

#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "core/error.h"
#include "core/paths.h"
#include "vision/image.h"

namespace anju::eval {
namespace fs = std::filesystem;
namespace {

// Format 2 added face_px; a cache of another format is ignored (recomputed).
constexpr char kMagic[8] = {'A', 'N', 'J', 'U', 'F', 'C', '2', '\n'};

struct CacheEntry {
  FileStamp stamp;
  FaceRecord record;
};
using Cache = std::unordered_map<std::string, CacheEntry>;

template <typename T>
void Put(std::ostream& o, const T& v) {
  o.write(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool Get(std::istream& i, T& v) {
  return static_cast<bool>(i.read(reinterpret_cast<char*>(&v), sizeof v));
}
void PutStr(std::ostream& o, const std::string& s) {
  Put(o, static_cast<uint32_t>(s.size()));
  o.write(s.data(), static_cast<std::streamsize>(s.size()));
}
bool GetStr(std::istream& i, std::string& s) {
  uint32_t n;
  if (!Get(i, n) || n > (1u << 20)) return false;
  s.resize(n);
  return static_cast<bool>(i.read(s.data(), n));
}

// A cache that does not parse, or belongs to other settings, is simply ignored.
Cache LoadCache(const fs::path& path, const std::string& key) {
  Cache cache;
  std::ifstream in(path, std::ios::binary);
  char magic[8];
  std::string k;
  if (!in.read(magic, 8) || std::memcmp(magic, kMagic, 8) != 0 || !GetStr(in, k) || k != key)
    return cache;
  uint32_t count;
  if (!Get(in, count)) return cache;
  for (uint32_t n = 0; n < count; ++n) {
    std::string p;
    CacheEntry e;
    uint8_t found;
    uint32_t dim;
    FaceRecord& r = e.record;
    if (!GetStr(in, p) || !Get(in, e.stamp.size) || !Get(in, e.stamp.mtime) || !Get(in, found) ||
        !Get(in, r.yaw) || !Get(in, r.pitch) || !Get(in, r.roll) || !Get(in, r.liveness) ||
        !Get(in, r.quality) || !Get(in, r.face_px) || !GetStr(in, r.found_by) || !Get(in, dim) ||
        dim > 4096)
      return {};
    r.found = found;
    r.feature.resize(dim);
    if (dim && !in.read(reinterpret_cast<char*>(r.feature.data()), dim * sizeof(float))) return {};
    cache[p] = std::move(e);
  }
  return cache;
}

void SaveCache(const fs::path& path, const std::string& key, const Cache& cache) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return;  // a cache is an optimisation; failing to write it is not an error
    out.write(kMagic, 8);
    PutStr(out, key);
    Put(out, static_cast<uint32_t>(cache.size()));
    for (auto& [p, e] : cache) {
      const FaceRecord& r = e.record;
      PutStr(out, p);
      Put(out, e.stamp.size);
      Put(out, e.stamp.mtime);
      Put(out, static_cast<uint8_t>(r.found));
      Put(out, r.yaw), Put(out, r.pitch), Put(out, r.roll), Put(out, r.liveness),
          Put(out, r.quality), Put(out, r.face_px);
      PutStr(out, r.found_by);
      Put(out, static_cast<uint32_t>(r.feature.size()));
      out.write(reinterpret_cast<const char*>(r.feature.data()),
                static_cast<std::streamsize>(r.feature.size() * sizeof(float)));
    }
    if (!out) return;
  }
  fs::rename(tmp, path, ec);
}

std::string SettingsKey(const std::string& version, const vision::EngineOptions& o, bool liveness,
                        bool pose) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "|flip=%d|det=%.3f|tiles=%d|min=%d|fb=%d|refine=%d|dark=%.1f|live=%d",
                o.embedder.flip_tta, o.detector.score_threshold, o.detector.tiles,
                o.detector.min_face_size, o.fallbacks, o.refine_landmarks, o.dark_level, liveness);
  std::string key = version + "|rev=" + std::to_string(vision::kEngineRevision) + buf;
  if (!pose) key += "|pose=landmarks";
  if (liveness)
    key += "|live_flip=" + std::to_string(o.liveness.flip_tta) +
           "|live_scale=" + std::to_string(o.liveness.context_scale) +
           "|live_rgb=" + std::to_string(o.liveness.rgb_input);
  return key;
}

}  // namespace

FileStamp Stamp(const fs::path& p) {
  std::error_code ec;
  FileStamp s;
  s.size = fs::file_size(p, ec);
  if (ec) return {};
  s.mtime = fs::last_write_time(p, ec).time_since_epoch().count();
  return s;
}

void ForEachImage(const std::shared_ptr<const vision::ModelSet>& models,
                  const vision::EngineOptions& engine_options, const std::vector<fs::path>& files,
                  const std::vector<size_t>& todo, int threads, const std::string& progress,
                  const std::function<void(vision::FaceEngine&, size_t)>& work,
                  const std::function<void(size_t)>& on_error) {
  if (todo.empty()) return;
  threads = std::max(1, std::min<int>(threads, static_cast<int>(todo.size())));
  const int saved_threads = cv::getNumThreads();
  if (threads > 1) cv::setNumThreads(1);
  std::atomic<size_t> next{0}, done{0};
  std::mutex log_mu;
  auto worker = [&] {
    vision::FaceEngine engine(models, engine_options);
    for (size_t k; (k = next.fetch_add(1)) < todo.size();) {
      const size_t i = todo[k];
      try {
        work(engine, i);
      } catch (const Error& e) {
        on_error(i);
        std::lock_guard lock(log_mu);
        std::fprintf(stderr, "\nskipped %s: %s\n", files[i].c_str(), e.what());
      }
      const size_t d = ++done;
      if (!progress.empty() && (d % 50 == 0 || d == todo.size())) {
        std::lock_guard lock(log_mu);
        std::fprintf(stderr, "\r  %s %zu/%zu", progress.c_str(), d, todo.size());
        if (d == todo.size()) std::fprintf(stderr, "\n");
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  cv::setNumThreads(saved_threads);
}

fs::path DefaultCachePath(const std::string& tag) {
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".cache" / "anju" / "features" / (tag + ".bin");
}

std::vector<FaceRecord> EmbedFiles(const std::vector<fs::path>& files, const fs::path& model_dir,
                                   const vision::EngineOptions& engine_options,
                                   const BatchOptions& options) {
  auto models = vision::ModelSet::Load(model_dir.empty() ? DefaultModelDir() : model_dir);
  const std::string key = SettingsKey(models->feature_version(), engine_options,
                                      options.with_liveness, options.with_pose) +
                          (options.central_face ? "|central" : "") +
                          (options.tight_crop ? "|tight_crop" : "");
  Cache cache = options.cache.empty() ? Cache{} : LoadCache(options.cache, key);

  std::vector<FaceRecord> out(files.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    auto it = cache.find(files[i].string());
    const FileStamp stamp = it == cache.end() ? FileStamp{} : Stamp(files[i]);
    if (it != cache.end() && it->second.stamp.size == stamp.size &&
        it->second.stamp.mtime == stamp.mtime)
      out[i] = it->second.record;
    else
      todo.push_back(i);
  }
  if (!todo.empty()) {
    ForEachImage(
        models, engine_options, files, todo, options.threads, options.progress ? "embedding" : "",
        [&](vision::FaceEngine& engine, size_t i) {
          FaceRecord r;
          cv::Mat img = vision::LoadImage(files[i]);
          std::optional<vision::DetectedFace> face;
          if (options.tight_crop) face = engine.LocateInTightCrop(img);
          if (!face)
            face = options.central_face ? engine.DetectCentral(img) : engine.DetectLargest(img);
          if (face) {
            r.found = true;
            r.found_by = face->found_by;
            r.feature = engine.Embed(*face).values;
            auto q = engine.AssessQuality(img, *face);
            auto pose = options.with_pose ? engine.Pose(img, *face, /*network=*/true) : q.pose;
            r.yaw = pose.yaw, r.pitch = pose.pitch, r.roll = pose.roll, r.quality = q.score;
            r.face_px = std::max(face->det.box.width, face->det.box.height);
            if (options.with_liveness) r.liveness = engine.Liveness(img, *face);
          }
          out[i] = std::move(r);
        },
        // Counted below; kept in the cache so the next run counts it too (a GIF in asian/
        // named .jpg is refused by DecodeImage: JPEG, PNG and BMP only).
        [&](size_t i) {
          out[i] = FaceRecord{};
          out[i].found_by = kUnreadable;
        });
    if (!options.cache.empty()) {
      for (size_t i : todo) cache[files[i].string()] = {Stamp(files[i]), out[i]};
      SaveCache(options.cache, key, cache);
    }
  }
  const size_t unreadable = static_cast<size_t>(std::count_if(
      out.begin(), out.end(), [](const FaceRecord& r) { return r.found_by == kUnreadable; }));
  if (unreadable > 0)
    std::fprintf(stderr, "跳过 %zu 个无法读取的图像 / %zu unreadable images skipped (of %zu)\n",
                 unreadable, unreadable, out.size());
  return out;
}

}  // namespace anju::eval
