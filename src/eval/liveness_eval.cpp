#include "eval/liveness_eval.h"

#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>

#include "core/error.h"
#include "core/paths.h"
#include "eval/feature_batch.h"
#include "vision/image.h"
#include "vision/texture_cue.h"

namespace anju::eval {
namespace {

bool IsImageFile(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp";
}

bool PathLess(const fs::path& a, const fs::path& b) {
  return NaturalLess(a.string(), b.string());
}

void RequireDir(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw Error(ErrorCode::kNotFound, "不是目录 / not a directory: " + dir.string());
}

std::string SplitKey(const fs::path& item, const fs::path& root) {
  const fs::path parent = item.parent_path();
  std::error_code ec;
  if (fs::equivalent(parent, root, ec)) return item.filename().string();
  return fs::relative(parent, root, ec).string();
}

}  // namespace

bool NaturalLess(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i]));
    const bool db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      // Compare the runs as numbers: without leading zeros, a longer run is larger.
      std::string_view x = a.substr(i, ie - i), y = b.substr(j, je - j);
      while (x.size() > 1 && x[0] == '0') x.remove_prefix(1);
      while (y.size() > 1 && y[0] == '0') y.remove_prefix(1);
      if (x.size() != y.size()) return x.size() < y.size();
      if (x != y) return x < y;
      if (ie - i != je - j) return ie - i < je - j;  // "01" after "1": a stable order
      i = ie, j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i, ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

std::vector<fs::path> ListImagesRecursive(const fs::path& dir) {
  RequireDir(dir);
  std::vector<fs::path> out;
  for (const auto& e :
       fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && IsImageFile(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end(), PathLess);
  return out;
}

std::vector<ApproachDir> ListApproaches(const fs::path& dir) {
  std::map<fs::path, std::vector<fs::path>> by_dir;
  for (auto& f : ListImagesRecursive(dir)) by_dir[f.parent_path()].push_back(f);
  std::vector<ApproachDir> out;
  for (auto& [d, frames] : by_dir) out.push_back({d, std::move(frames)});
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return PathLess(a.dir, b.dir); });
  return out;
}

std::vector<bool> InSplit(const std::vector<fs::path>& items, const fs::path& root, Split split) {
  std::vector<bool> in(items.size(), true);
  if (split == Split::kAll) return in;
  std::vector<std::string> keys;
  for (const auto& p : items) keys.push_back(SplitKey(p, root));
  std::vector<std::string> distinct(keys.begin(), keys.end());
  std::sort(distinct.begin(), distinct.end(),
            [](const std::string& a, const std::string& b) { return NaturalLess(a, b); });
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::map<std::string, size_t> rank;
  for (size_t i = 0; i < distinct.size(); ++i) rank[distinct[i]] = i;
  for (size_t i = 0; i < items.size(); ++i) {
    const bool held_out = rank[keys[i]] % 2 == 1;
    in[i] = (split == Split::kHeldOut) == held_out;
  }
  return in;
}

float ThresholdAtApcer(std::vector<float> attack, double target) {
  if (attack.empty()) return 0.f;
  std::sort(attack.begin(), attack.end(), std::greater<>());
  // At most k attacks may reach the threshold: put it just above the (k+1)-th highest.
  const size_t k = static_cast<size_t>(std::floor(target * double(attack.size()) + 1e-9));
  if (k >= attack.size()) return 0.f;
  return std::nextafter(attack[k], 2.f);
}

float ThresholdAtBpcer(std::vector<float> live, double target) {
  if (live.empty()) return 1.f;
  std::sort(live.begin(), live.end());
  const size_t k = static_cast<size_t>(std::floor(target * double(live.size()) + 1e-9));
  if (k >= live.size()) return 1.f;
  return live[k];  // the k lowest scores fall below it
}

float MidpointThreshold(float t_apcer, float t_bpcer) {
  if (!(t_bpcer > t_apcer)) return t_apcer;
  auto logit = [](double p) {
    p = std::clamp(p, 1e-9, 1 - 1e-9);
    return std::log(p / (1 - p));
  };
  const double m = (logit(t_apcer) + logit(t_bpcer)) / 2;
  return static_cast<float>(1 / (1 + std::exp(-m)));
}

LogisticLine FitLogisticLine(const std::vector<float>& live, const std::vector<float>& attack) {
  if (live.empty() || attack.empty()) return {};
  // Newton's method on (a, b) for logit = a·x + b, live = 1; x centred for conditioning.
  double mean = 0;
  for (float x : live) mean += x / (2.0 * double(live.size()));
  for (float x : attack) mean += x / (2.0 * double(attack.size()));
  const double wl = 1.0 / double(live.size()), wa = 1.0 / double(attack.size()), ridge = 1e-3;
  double a = 0, b = 0;
  for (int iter = 0; iter < 100; ++iter) {
    double ga = -ridge * a, gb = 0, haa = ridge, hab = 0, hbb = 0;
    auto add = [&](float xf, double y, double w) {
      const double x = double(xf) - mean;
      const double p = 1 / (1 + std::exp(-(a * x + b)));
      ga += w * (y - p) * x;
      gb += w * (y - p);
      const double h = w * p * (1 - p);
      haa += h * x * x, hab += h * x, hbb += h;
    };
    for (float x : live) add(x, 1, wl);
    for (float x : attack) add(x, 0, wa);
    const double det = haa * hbb - hab * hab;
    if (!(det > 1e-12)) break;
    const double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
    a += da, b += db;
    if (std::abs(da) + std::abs(db) < 1e-9) break;
  }
  if (a == 0) return {};
  return {a, mean - b / a};
}

namespace {

std::string CacheKey(const std::string& version, const vision::EngineOptions& o) {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "|rev=%d|det=%.3f|tiles=%d|min=%d|fb=%d|refine=%d|scale=%.3f|flip=%d|rgb=%d"
                "|tex=%.3f,%d,%.4f,%.4f",
                vision::kEngineRevision, o.detector.score_threshold, o.detector.tiles,
                o.detector.min_face_size, o.fallbacks, o.refine_landmarks, o.liveness.context_scale,
                o.liveness.flip_tta, o.liveness.rgb_input, o.liveness.texture.context_scale,
                o.liveness.texture.side, o.liveness.texture.low_cut, o.liveness.texture.high_from);
  return "anju-liveness-scores/2|" + version + buf;
}

}  // namespace

std::vector<LiveScore> ScoreLiveness(const std::vector<fs::path>& files, const fs::path& model_dir,
                                     const vision::EngineOptions& engine_options,
                                     const LiveScoreOptions& options) {
  using nlohmann::json;
  auto models = vision::ModelSet::Load(model_dir.empty() ? DefaultModelDir() : model_dir);
  const std::string key = CacheKey(models->feature_version(), engine_options);
  // The cache is an optimisation: one that does not parse or has other settings is ignored.
  json cache = json::object();
  if (!options.cache.empty()) {
    try {
      std::ifstream in(options.cache);
      if (in) {
        json j = json::parse(in);
        if (j.value("key", "") == key && j.contains("entries") && j["entries"].is_object())
          cache = std::move(j["entries"]);
      }
    } catch (const std::exception&) {
      cache = json::object();
    }
  }
  std::vector<LiveScore> out(files.size());
  std::vector<size_t> todo;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto it = cache.find(files[i].string());
    bool hit = false;
    if (it != cache.end() && it->is_array() && it->size() == 6) {
      const FileStamp s = Stamp(files[i]);
      const json& e = *it;
      if (e[0].get<uint64_t>() == s.size && e[1].get<int64_t>() == s.mtime) {
        out[i] = {e[2].get<bool>(), e[3].get<float>(), e[4].get<float>()};
        // JSON has no NaN: a cue with nothing measurable is stored as null.
        out[i].texture = e[5].is_number() ? e[5].get<float>() : std::nanf("");
        hit = true;
      }
    }
    if (!hit) todo.push_back(i);
  }
  if (todo.empty()) return out;

  // The network alone: the cue is measured beside it (see the header).
  vision::EngineOptions net_options = engine_options;
  net_options.liveness.texture_weight = 0;
  ForEachImage(
      models, net_options, files, todo, options.threads, options.progress ? "liveness" : "",
      [&](vision::FaceEngine& engine, size_t i) {
        LiveScore r;
        const cv::Mat img = vision::LoadImage(files[i]);
        if (auto face = engine.DetectLargest(img)) {
          r.found = true;
          const int64 t0 = cv::getTickCount();
          r.score = engine.Liveness(img, *face);
          const int64 t1 = cv::getTickCount();
          r.texture =
              vision::TextureHighFrequencyLog(img, face->det.box, engine_options.liveness.texture);
          const int64 t2 = cv::getTickCount();
          r.net_ms = float(double(t1 - t0) * 1e3 / cv::getTickFrequency());
          r.texture_ms = float(double(t2 - t1) * 1e3 / cv::getTickFrequency());
          r.face_px = face->det.box.height;
        }
        out[i] = r;
      },
      [&](size_t i) { out[i] = LiveScore{}; });

  if (!options.cache.empty()) {
    for (size_t i : todo) {
      const FileStamp s = Stamp(files[i]);
      const json texture = std::isnan(out[i].texture) ? json(nullptr) : json(out[i].texture);
      cache[files[i].string()] = {s.size,       s.mtime,        out[i].found,
                                  out[i].score, out[i].face_px, texture};
    }
    std::error_code ec;
    fs::create_directories(options.cache.parent_path(), ec);
    fs::path tmp = options.cache;
    tmp += ".tmp";
    {
      std::ofstream o(tmp, std::ios::trunc);
      o << json{{"key", key}, {"entries", cache}}.dump();
      if (!o) return out;  // not writing a cache is not an error
    }
    fs::rename(tmp, options.cache, ec);
  }
  return out;
}

}  // namespace anju::eval
