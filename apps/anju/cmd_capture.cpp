// anju gen capture — annotated synthetic doorway sequences made from real face images
// composited over real backgrounds (no annotated doorway video exists; docs/capture.md).
// anju eval capture — plays annotated sequences through the capture pipeline (no server)
// and measures the capture rate of R3.1.3.1, duplicates, false captures and speed.
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

#include "capture/capturer.h"
#include "capture/config.h"
#include "capture/live_preview.h"
#include "command.h"
#include "core/error.h"
#include "video/frame_source.h"
#include "vision/detector.h"
#include "vision/image.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kFormat = "anju-capture-sequence/1";

bool IsImage(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp";
}

std::vector<fs::path> ImagesUnder(const fs::path& dir) {
  std::vector<fs::path> v;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && IsImage(e.path())) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

bool IsProfile(const fs::path& p) {
  for (const auto& part : p)
    if (part == "profile") return true;
  return false;
}

cv::Mat CropReplicate(const cv::Mat& img, cv::Rect r) {
  const cv::Rect inside = r & cv::Rect(0, 0, img.cols, img.rows);
  cv::Mat out;
  if (inside.area() == 0) return cv::Mat(r.size(), img.type(), cv::Scalar::all(0));
  cv::copyMakeBorder(img(inside), out, inside.y - r.y, r.br().y - inside.br().y, inside.x - r.x,
                     r.br().x - inside.br().x, cv::BORDER_REPLICATE);
  return out;
}

// ---------------------------------------------------------------------------------------
// gen capture

struct FacePatch {
  cv::Mat patch;  // BGR, square, 2 × face box side, face box centred
  cv::Mat mask;   // CV_32F 0..1, soft ellipse over face and forehead
  std::string source;
};

struct Person {
  std::string id;
  FacePatch face;
  bool in_limits = true;
  std::vector<std::string> reasons;
  float yaw = 0, pitch = 0;  // simulated (squeeze), degrees
  float light = 1;           // face light gain
  bool occluded = false;
  int first = 0, frames = 0;
  float s0 = 100, s1 = 100;  // face size at start / end, pixels
  cv::Point2f p0, p1;        // face centre at start / end
  float speed = 0;           // px/s
  json boxes = json::array();
};

struct GenCapture {
  std::string faces_dir, out_dir, backgrounds_dir, models, size = "1920x1080";
  int people = 20, seed = 1, fps = 10, max_per_sequence = 3, jpeg_quality = 88;
  double out_of_limits = 0.2;

  std::unique_ptr<vision::FaceEngine> engine;
  std::mt19937 rng;

  double U(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); }
  int I(int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); }

  std::optional<FacePatch> Patch(const fs::path& file) {
    cv::Mat img;
    try {
      img = vision::LoadImage(file);
    } catch (const Error&) {
      return std::nullopt;
    }
    auto f = engine->DetectCentral(img);
    if (!f || f->det.score < 0.8f) return std::nullopt;
    const cv::Rect2f b = f->det.box;
    const float side = std::max(b.width, b.height);
    const cv::Point2f c(b.x + b.width / 2, b.y + b.height / 2);
    const int ps = cvRound(2 * side);
    FacePatch p;
    p.patch =
        CropReplicate(img, cv::Rect(cvRound(c.x - ps / 2.f), cvRound(c.y - ps / 2.f), ps, ps));
    // Soft ellipse: the face and forehead, a little hair; the rest is the scene.
    p.mask = cv::Mat::zeros(ps, ps, CV_32F);
    cv::ellipse(p.mask, cv::Point(ps / 2, cvRound(ps / 2 - 0.06f * side)),
                cv::Size(cvRound(0.56f * side), cvRound(0.72f * side)), 0, 0, 360, cv::Scalar(1),
                cv::FILLED);
    const int k = std::max(3, cvRound(0.12f * side) | 1);
    cv::GaussianBlur(p.mask, p.mask, cv::Size(k, k), 0);
    p.source = file.string();
    return p;
  }

  // A real background: a face-free crop of a real photo, scaled to the frame.
  cv::Mat Background(const std::vector<fs::path>& pool, cv::Size frame, std::string* source) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      const fs::path& file = pool[size_t(I(0, int(pool.size()) - 1))];
      cv::Mat img;
      try {
        img = vision::LoadImage(file);
      } catch (const Error&) {
        continue;
      }
      std::vector<cv::Rect2f> avoid;
      for (const auto& f : engine->detector().DetectOnce(img, 0.5f)) {
        const cv::Rect2f& b = f.box;
        // The head, and the body below it.
        avoid.push_back(
            {b.x - 0.3f * b.width, b.y - 0.5f * b.height, 1.6f * b.width, float(img.rows)});
      }
      for (int t = 0; t < 40; ++t) {
        const double frac = U(0.12, 0.5);
        int w = cvRound(img.cols * frac), h = cvRound(w * frame.height / double(frame.width));
        if (h > img.rows) h = img.rows, w = cvRound(h * frame.width / double(frame.height));
        if (w < 24 || h < 24) continue;
        const cv::Rect r(I(0, img.cols - w), I(0, img.rows - h), w, h);
        bool clear = true;
        for (const auto& a : avoid)
          if ((cv::Rect2f(r) & a).area() > 0) clear = false;
        if (!clear) continue;
        cv::Mat bg;
        cv::resize(img(r), bg, frame, 0, 0, cv::INTER_CUBIC);
        if (bg.channels() == 1) cv::cvtColor(bg, bg, cv::COLOR_GRAY2BGR);
        cv::GaussianBlur(bg, bg, cv::Size(0, 0), 1.5);
        // Whatever the crop shows, it must not look like a face to the detector (whole
        // frame at a low threshold, and tiled as capture runs).
        if (!engine->detector().DetectOnce(bg, 0.5f).empty() ||
            !engine->detector().Detect(bg).empty())
          continue;
        *source = file.string() + " [" + std::to_string(r.x) + "," + std::to_string(r.y) + "," +
                  std::to_string(r.width) + "," + std::to_string(r.height) + "]";
        return bg;
      }
    }
    throw Error(ErrorCode::kNotFound,
                "找不到无人脸的背景区域 / no face-free background region found in the background "
                "images");
  }

  void Composite(cv::Mat& frame, const Person& p, float s, cv::Point2f c, float blur_px,
                 cv::Rect2f* box) {
    const float fx = std::cos(p.yaw * float(CV_PI) / 180),
                fy = std::cos(p.pitch * float(CV_PI) / 180);
    const int w = std::max(4, cvRound(2 * s * fx)), h = std::max(4, cvRound(2 * s * fy));
    cv::Mat patch, mask;
    cv::resize(p.face.patch, patch, {w, h}, 0, 0, cv::INTER_AREA);
    cv::resize(p.face.mask, mask, {w, h}, 0, 0, cv::INTER_LINEAR);
    if (patch.channels() == 1) cv::cvtColor(patch, patch, cv::COLOR_GRAY2BGR);
    patch.convertTo(patch, CV_32FC3, p.light);
    if (p.occluded) {
      // A scarf / hand / phone over nose and mouth: a flat textured patch over the
      // lower 55% of the face.
      const cv::Rect occ(cvRound(w * 0.22), cvRound(h * 0.5), cvRound(w * 0.56), cvRound(h * 0.3));
      patch(occ).setTo(cv::Scalar(60, 70, 90) * p.light);
      cv::randn(patch(occ), cv::Scalar::all(70 * p.light), cv::Scalar::all(12));
    }
    if (blur_px >= 2) {
      const int k = std::min(31, cvRound(blur_px)) | 1;
      cv::Mat kernel = cv::Mat::zeros(1, k, CV_32F) + 1.f / k;
      cv::filter2D(patch, patch, -1, kernel);
    }
    const cv::Rect dst(cvRound(c.x - w / 2.f), cvRound(c.y - h / 2.f), w, h);
    const cv::Rect clip = dst & cv::Rect(0, 0, frame.cols, frame.rows);
    if (clip.area() <= 0) return;
    const cv::Rect src(clip.x - dst.x, clip.y - dst.y, clip.width, clip.height);
    cv::Mat roi = frame(clip), a;
    cv::Mat pa = patch(src), ma = mask(src);
    std::vector<cv::Mat> m3 = {ma, ma, ma};
    cv::merge(m3, a);
    cv::Mat bgf;
    roi.convertTo(bgf, CV_32FC3);
    cv::Mat out = bgf.mul(cv::Scalar::all(1) - a) + pa.mul(a);
    out.convertTo(roi, CV_8UC3);
    *box = cv::Rect2f(c.x - s * fx / 2, c.y - s * fy / 2, s * fx, s * fy);
  }

  void Run() {
    if (!fs::is_directory(faces_dir))
      throw Error(ErrorCode::kNotFound, "--faces: not a directory: " + faces_dir);
    int fw = 0, fh = 0;
    if (std::sscanf(size.c_str(), "%dx%d", &fw, &fh) != 2 || fw < 320 || fh < 240 || fw > 4096 ||
        fh > 4096)
      throw Error(ErrorCode::kInvalidArgument, "--size: WIDTHxHEIGHT, e.g. 1920x1080");
    if (people < 1) throw Error(ErrorCode::kInvalidArgument, "--people must be >= 1");
    rng.seed(uint32_t(seed));
    cv::setRNGSeed(seed);
    vision::EngineOptions eo;
    engine = vision::FaceEngine::Open(models.empty() ? fs::path() : fs::path(models), eo);

    // People: FACES/<person>/<images> (any depth; images under a "profile" folder are
    // profiles, as in CFP).
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(faces_dir))
      if (e.is_directory()) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    std::shuffle(dirs.begin(), dirs.end(), rng);
    std::vector<fs::path> bg_pool =
        ImagesUnder(backgrounds_dir.empty() ? fs::path(faces_dir) : fs::path(backgrounds_dir));
    if (bg_pool.empty()) throw Error(ErrorCode::kNotFound, "no background images");

    std::vector<Person> all;
    for (const auto& dir : dirs) {
      if (int(all.size()) == people) break;
      std::vector<fs::path> frontal, profile;
      for (const auto& f : ImagesUnder(dir)) (IsProfile(f) ? profile : frontal).push_back(f);
      if (frontal.empty()) continue;
      Person p;
      p.id = "p" + std::to_string(all.size() + 1);
      const bool out = U(0, 1) < out_of_limits;
      int kind = out ? I(0, 2) : -1;  // 0 profile, 1 occluded, 2 pitch
      if (kind == 0 && !profile.empty()) {
        auto fp = Patch(profile[size_t(I(0, int(profile.size()) - 1))]);
        if (!fp)
          kind = I(1, 2);
        else
          p.face = *fp, p.yaw = 0, p.reasons.push_back("profile_image");
      }
      if (p.face.patch.empty()) {
        std::shuffle(frontal.begin(), frontal.end(), rng);
        for (size_t i = 0; i < frontal.size() && i < 5 && p.face.patch.empty(); ++i)
          if (auto fp = Patch(frontal[i])) p.face = *fp;
        if (p.face.patch.empty()) continue;
      }
      p.yaw = float(U(-35, 35));
      p.pitch = float(U(-15, 15));
      if (kind == 0 && p.reasons.empty()) {
        p.yaw = float(U(0, 1) < 0.5 ? -U(62, 72) : U(62, 72));
        p.reasons.push_back("yaw_over_45");
      }
      if (kind == 1) p.occluded = true, p.reasons.push_back("occluded");
      if (kind == 2)
        p.pitch = float(U(0, 1) < 0.5 ? -U(42, 55) : U(42, 55)),
        p.reasons.push_back("pitch_over_20");
      p.in_limits = p.reasons.empty();
      p.light = float(U(0, 1) < 0.2 ? U(0.35, 0.6) : U(0.7, 1.25));
      all.push_back(std::move(p));
    }
    if (all.empty()) throw Error(ErrorCode::kNotFound, "no usable face images under " + faces_dir);
    if (int(all.size()) < people)
      spdlog::warn("only {} people had a detectable face image", all.size());

    fs::create_directories(out_dir);
    int total_frames = 0;
    size_t next = 0;
    for (int sidx = 1; next < all.size(); ++sidx) {
      const int n = std::min<int>(I(1, max_per_sequence), int(all.size() - next));
      char name[32];
      std::snprintf(name, sizeof name, "seq%04d", sidx);
      const fs::path sdir = fs::path(out_dir) / name;
      fs::create_directories(sdir);
      std::string bg_source;
      cv::Mat bg = Background(bg_pool, {fw, fh}, &bg_source);
      // Scene light: steady, or changing during the sequence (a door opens, lights go on).
      const float g0 = float(U(0.6, 1.15)), g1 = U(0, 1) < 0.3 ? float(U(0.6, 1.15)) : g0;

      std::vector<Person*> group;
      int length = 0;
      for (int k = 0; k < n; ++k) {
        Person& p = all[next++];
        p.first = k == 0 ? I(0, 3) : I(0, std::max(1, length - 5));
        // Walking across or towards the camera: sizes 60–250 px, 150–450 px/s.
        for (int attempt = 0;; ++attempt) {
          p.s0 = float(U(60, 160));
          p.s1 = std::min(250.f, p.s0 * float(U(1.0, 2.0)));
          p.speed = float(U(150, 450)) * fw / 1920.f;
          const double dur = U(1.5, 4.5);
          const double ang = U(0, 2 * CV_PI);
          const cv::Point2f dir(float(std::cos(ang)), float(std::sin(ang)) * 0.6f);
          const float margin = 0.7f * p.s1;
          p.p0 = {float(U(margin, fw - margin)), float(U(margin, fh - margin))};
          p.p1 = p.p0 + dir * float(p.speed * dur);
          if (p.p1.x >= margin && p.p1.x <= fw - margin && p.p1.y >= margin &&
              p.p1.y <= fh - margin) {
            p.frames = std::max(8, int(dur * fps));
            break;
          }
          if (attempt > 200) {
            p.p1 = p.p0, p.frames = int(dur * fps);
            break;
          }
        }
        length = std::max(length, p.first + p.frames + 3);
        group.push_back(&p);
      }
      // Farther (smaller) faces are drawn first.
      for (int f = 0; f < length; ++f) {
        cv::Mat frame = bg.clone();
        const float t_scene = length > 1 ? float(f) / float(length - 1) : 0.f;
        std::vector<std::pair<float, Person*>> order;
        for (Person* p : group)
          if (f >= p->first && f < p->first + p->frames) {
            const float t = float(f - p->first) / float(std::max(1, p->frames - 1));
            order.push_back({p->s0 + (p->s1 - p->s0) * t, p});
          }
        std::sort(order.begin(), order.end(), [](auto& a, auto& b) { return a.first < b.first; });
        for (auto& [s, p] : order) {
          const float t = float(f - p->first) / float(std::max(1, p->frames - 1));
          const cv::Point2f c = p->p0 + (p->p1 - p->p0) * t;
          cv::Rect2f box;
          Composite(frame, *p, s, c, 0.4f * p->speed / float(fps), &box);
          p->boxes.push_back({f, std::round(box.x), std::round(box.y), std::round(box.width),
                              std::round(box.height)});
        }
        const float g = g0 + (g1 - g0) * t_scene;
        frame.convertTo(frame, -1, g);
        cv::Mat noise(frame.size(), CV_16SC3);
        cv::randn(noise, 0, 3);
        cv::Mat f16;
        frame.convertTo(f16, CV_16SC3);
        f16 += noise;
        f16.convertTo(frame, CV_8UC3);
        char fname[32];
        std::snprintf(fname, sizeof fname, "%06d.jpg", f);
        cv::imwrite((sdir / fname).string(), frame, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
      }
      total_frames += length;
      json ann = {{"format", kFormat},
                  {"generator", "anju gen capture (synthetic)"},
                  {"fps", fps},
                  {"width", fw},
                  {"height", fh},
                  {"frames", length},
                  {"background", bg_source},
                  {"light", {g0, g1}},
                  {"people", json::array()}};
      for (Person* p : group)
        ann["people"].push_back({{"id", std::string(name) + "-" + p->id},
                                 {"source", fs::relative(p->face.source, faces_dir).string()},
                                 {"in_limits", p->in_limits},
                                 {"reasons", p->reasons},
                                 {"yaw", std::round(p->yaw)},
                                 {"pitch", std::round(p->pitch)},
                                 {"light", std::round(p->light * g0 * 100) / 100},
                                 {"occluded", p->occluded},
                                 {"size", {std::round(p->s0), std::round(p->s1)}},
                                 {"speed_px_s", std::round(p->speed)},
                                 {"first_frame", p->first},
                                 {"last_frame", p->first + p->frames - 1},
                                 {"boxes", p->boxes}});
      std::ofstream(sdir / "annotations.json") << ann.dump(1) << "\n";
      std::fprintf(stderr, "\r%s: %d people, %d frames   ", name, n, length);
    }
    int in = 0;
    for (const auto& p : all) in += p.in_limits;
    std::fprintf(stderr, "\n");
    std::printf("%zu people (%d within the pose limits), %d frames in %s\n", all.size(), in,
                total_frames, out_dir.c_str());
  }
};

// ---------------------------------------------------------------------------------------
// eval capture

struct AnnotatedPerson {
  std::string id;
  bool in_limits = true;
  std::vector<std::string> reasons;
  float yaw = 0, light = 1, size = 1e9f, speed = 0;  // size: smallest face height
  std::map<int, cv::Rect2f> boxes;
  int captures = 0;
};

struct Bucket {
  int people = 0, captured = 0;
};

struct EvalCapture {
  std::string data_dir, config_file, models;
  bool as_json = false, no_refine = false;
  int preview_width = 0;  // also time a live-preview JPEG of every frame (0 = no)
  int threads = 1;

  void Run() {
    cv::setNumThreads(threads);
    spdlog::set_level(spdlog::level::warn);
    std::vector<fs::path> seqs;
    if (fs::exists(fs::path(data_dir) / "annotations.json")) {
      seqs.push_back(data_dir);
    } else if (fs::is_directory(data_dir)) {
      for (const auto& e : fs::directory_iterator(data_dir))
        if (e.is_directory() && fs::exists(e.path() / "annotations.json")) seqs.push_back(e.path());
    } else {
      throw Error(ErrorCode::kNotFound, "--data: not a directory: " + data_dir);
    }
    std::sort(seqs.begin(), seqs.end());
    if (seqs.empty())
      throw Error(ErrorCode::kNotFound,
                  "--data: no annotations.json in " + data_dir + " or its subdirectories");
    capture::CaptureOptions options;
    json cfg = json::object();
    if (!config_file.empty()) {
      std::ifstream in(config_file);
      if (!in) throw Error(ErrorCode::kNotFound, "--config: cannot read " + config_file);
      try {
        cfg = json::parse(in);
      } catch (const json::exception& e) {
        throw Error(ErrorCode::kInvalidArgument, "--config: not JSON: " + std::string(e.what()));
      }
      // An anju-capture config: use its first camera's options.
      if (cfg.contains("cameras") && cfg["cameras"].is_array() && !cfg["cameras"].empty())
        cfg = cfg["cameras"][0];
      options = capture::OptionsFromJson(cfg, "config");
    }
    vision::EngineOptions eo;
    eo.fallbacks = false;  // constant per-frame cost, as anju-capture runs
    eo.refine_landmarks = !no_refine;
    auto engine = vision::FaceEngine::Open(models.empty() ? fs::path() : fs::path(models), eo);

    std::vector<AnnotatedPerson> people;
    int false_captures = 0, captures = 0, extra_frames = 0;
    uint64_t clip_frames = 0, clip_bytes = 0, capture_bytes = 0;
    double preview_s = 0;
    json false_examples = json::array();  // to look at: sequence, frame, box
    uint64_t frames = 0;
    double pipeline_s = 0, wall_s = 0;
    std::map<std::string, int> res_frames;
    for (size_t si = 0; si < seqs.size(); ++si) {
      const fs::path& dir = seqs[si];
      json ann;
      try {
        std::ifstream in(dir / "annotations.json");
        ann = json::parse(in);
        if (ann.value("format", "") != kFormat)
          throw Error(ErrorCode::kInvalidArgument, "format is not " + std::string(kFormat));
      } catch (const std::exception& e) {
        throw Error(ErrorCode::kInvalidArgument,
                    (dir / "annotations.json").string() + ": " + e.what());
      }
      const size_t base = people.size();
      for (const auto& pj : ann.at("people")) {
        AnnotatedPerson p;
        p.id = pj.at("id");
        p.in_limits = pj.at("in_limits");
        p.reasons = pj.value("reasons", std::vector<std::string>{});
        p.yaw = pj.value("yaw", 0.f);
        p.light = pj.value("light", 1.f);
        p.speed = pj.value("speed_px_s", 0.f);
        for (const auto& b : pj.at("boxes")) {
          p.boxes[b.at(0).get<int>()] = cv::Rect2f(b.at(1).get<float>(), b.at(2).get<float>(),
                                                   b.at(3).get<float>(), b.at(4).get<float>());
          p.size = std::min(p.size, b.at(4).get<float>());
        }
        people.push_back(std::move(p));
      }
      auto source = video::FrameSource::Open("dir:" + dir.string() + "?fps=0");
      capture::Capturer capturer(*engine, options, dir.filename().string());
      std::vector<capture::Capture> caps;
      const auto t0 = std::chrono::steady_clock::now();
      while (auto frame = source->Read(std::chrono::seconds(30))) {
        for (auto& c : capturer.Process(*frame)) caps.push_back(std::move(c));
        if (preview_width > 0) {
          // What anju-capture does once per preview interval, timed on every frame.
          const auto p0 = std::chrono::steady_clock::now();
          (void)capture::DownscaledJpeg(frame->image, preview_width, 70);
          preview_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - p0).count();
        }
        ++frames;
      }
      for (auto& c : capturer.Flush()) caps.push_back(std::move(c));
      wall_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      pipeline_s += capturer.stats().total_seconds;
      res_frames[std::to_string(ann.value("width", 0)) + "x" +
                 std::to_string(ann.value("height", 0))] += int(capturer.stats().frames);
      for (const auto& c : caps) {
        capture_bytes += c.face_jpeg.size() + c.frame_jpeg.size();
        for (const auto& f : c.clip) ++clip_frames, clip_bytes += f.jpeg.size();
        if (c.rank > 0) {
          ++extra_frames;
          continue;
        }
        ++captures;
        float best = 0;
        size_t who = 0;
        for (size_t i = base; i < people.size(); ++i) {
          auto it = people[i].boxes.find(int(c.seq));
          if (it == people[i].boxes.end()) continue;
          const float iou = vision::IoU(c.box, it->second);
          if (iou > best) best = iou, who = i;
        }
        if (best >= 0.3f) {
          ++people[who].captures;
        } else {
          ++false_captures;
          if (false_examples.size() < 20)
            false_examples.push_back({{"sequence", dir.filename().string()},
                                      {"frame", c.seq},
                                      {"box",
                                       {cvRound(c.box.x), cvRound(c.box.y), cvRound(c.box.width),
                                        cvRound(c.box.height)}},
                                      {"best_iou", best}});
        }
      }
      std::fprintf(stderr, "\r%zu/%zu sequences, %llu frames", si + 1, seqs.size(),
                   static_cast<unsigned long long>(frames));
    }
    std::fprintf(stderr, "\n");

    // Rates: over people within the guideline's limits (unoccluded, |yaw| ≤ 45°,
    // |pitch| ≤ 20°); the others are reported separately.
    int in = 0, in_captured = 0, in_dups = 0, out = 0, out_captured = 0;
    std::map<std::string, Bucket> by_size, by_light, by_yaw, by_speed, by_reason;
    for (const auto& p : people) {
      const bool got = p.captures > 0;
      if (!p.in_limits) {
        ++out, out_captured += got;
        for (const auto& r : p.reasons) ++by_reason[r].people, by_reason[r].captured += got;
        continue;
      }
      ++in, in_captured += got;
      if (got) in_dups += p.captures - 1;
      auto add = [&](std::map<std::string, Bucket>& m, const std::string& k) {
        ++m[k].people, m[k].captured += got;
      };
      add(by_size, p.size < 100 ? "060-099" : p.size < 160 ? "100-159" : "160-250");
      add(by_light, p.light < 0.5f ? "dark" : p.light < 0.8f ? "dim" : "normal");
      add(by_yaw, std::abs(p.yaw) < 15 ? "00-15" : std::abs(p.yaw) < 30 ? "15-30" : "30-45");
      add(by_speed, p.speed < 250 ? "150-249" : p.speed < 350 ? "250-349" : "350-450");
    }
    auto rate = [](int a, int b) { return b > 0 ? double(a) / b : 0.0; };
    auto table = [&](const char* title, const std::map<std::string, Bucket>& m, json& out_j) {
      std::printf("  %-10s", title);
      for (const auto& [k, b] : m) {
        std::printf("  %s: %d/%d (%.1f%%)", k.c_str(), b.captured, b.people,
                    100 * rate(b.captured, b.people));
        out_j[k] = {
            {"people", b.people}, {"captured", b.captured}, {"rate", rate(b.captured, b.people)}};
      }
      std::printf("\n");
    };
    const double fps = pipeline_s > 0 ? double(frames) / pipeline_s : 0;
    std::printf(
        "anju eval capture — %zu sequences, %llu frames (synthetic unless you gave real "
        "annotated video)\n",
        seqs.size(), static_cast<unsigned long long>(frames));
    std::printf("  people within limits  %d, captured %d: capture rate %.1f%%\n", in, in_captured,
                100 * rate(in_captured, in));
    std::printf("  duplicates per captured person %.3f (%d extra captures)\n",
                rate(in_dups, in_captured), in_dups);
    std::printf("  out-of-limits people  %d, captured %d (%.1f%%)\n", out, out_captured,
                100 * rate(out_captured, out));
    std::printf("  captures %d, false captures %d, extra best frames %d\n", captures,
                false_captures, extra_frames);
    json conditions = {{"size_px", json::object()},
                       {"light", json::object()},
                       {"yaw_deg", json::object()},
                       {"speed_px_s", json::object()},
                       {"out_of_limits", json::object()}};
    table("size", by_size, conditions["size_px"]);
    table("light", by_light, conditions["light"]);
    table("|yaw|", by_yaw, conditions["yaw_deg"]);
    table("speed", by_speed, conditions["speed_px_s"]);
    table("outside", by_reason, conditions["out_of_limits"]);
    std::printf("  pipeline %.1f frames/s per stream (%.1f with decoding), %d OpenCV thread(s)\n",
                fps, wall_s > 0 ? frames / wall_s : 0, threads);
    if (clip_frames > 0)
      std::printf("  clips: %.1f frames, %.0f bytes per capture (crop/frame JPEGs %.0f bytes)\n",
                  captures ? double(clip_frames) / captures : 0.0,
                  captures ? double(clip_bytes) / captures : 0.0,
                  captures ? double(capture_bytes) / captures : 0.0);
    if (preview_width > 0)
      std::printf("  live preview JPEG (width %d): %.2f ms per frame\n", preview_width,
                  frames ? 1000 * preview_s / double(frames) : 0.0);
    if (as_json) {
      json j = {{"sequences", seqs.size()},
                {"clip_frames_per_capture", captures ? double(clip_frames) / captures : 0.0},
                {"clip_bytes_per_capture", captures ? double(clip_bytes) / captures : 0.0},
                {"capture_bytes_per_capture", captures ? double(capture_bytes) / captures : 0.0},
                {"preview_ms_per_frame", frames ? 1000 * preview_s / double(frames) : 0.0},
                {"frames", frames},
                {"people", in},
                {"captured", in_captured},
                {"capture_rate", rate(in_captured, in)},
                {"duplicates", in_dups},
                {"duplicates_per_person", rate(in_dups, in_captured)},
                {"people_out_of_limits", out},
                {"captured_out_of_limits", out_captured},
                {"captures", captures},
                {"false_captures", false_captures},
                {"false_capture_examples", false_examples},
                {"extra_best_frames", extra_frames},
                {"conditions", conditions},
                {"fps", fps},
                {"fps_with_decoding", wall_s > 0 ? frames / wall_s : 0},
                {"threads", threads},
                {"frames_by_resolution", res_frames},
                {"options", cfg}};
      std::cout << j.dump() << std::endl;
    }
  }
};

void Install(CLI::App& root) {
  auto* gen = Group(root, "gen", "生成测试数据 / generate test data");
  auto g = std::make_shared<GenCapture>();
  auto* gc = gen->add_subcommand(
      "capture",
      "合成带标注的门口抓拍序列 / synthetic annotated doorway sequences from real faces");
  gc->add_option("--faces", g->faces_dir, "FACES/<person>/<images> (e.g. LFW, CFP Data/Images)")
      ->required();
  gc->add_option("--out", g->out_dir, "output directory (one sub-directory per sequence)")
      ->required();
  gc->add_option("--people", g->people, "number of people")->capture_default_str();
  gc->add_option("--seed", g->seed, "random seed")->capture_default_str();
  gc->add_option("--backgrounds", g->backgrounds_dir,
                 "real photos to cut face-free backgrounds from (default: the faces)");
  gc->add_option("--size", g->size, "frame size WIDTHxHEIGHT")->capture_default_str();
  gc->add_option("--fps", g->fps, "nominal frame rate (speeds are per second)")
      ->capture_default_str();
  gc->add_option("--out-of-limits", g->out_of_limits,
                 "fraction of people outside the guideline's limits (profile, pitch, occluded)")
      ->capture_default_str();
  gc->add_option("--per-sequence", g->max_per_sequence, "at most this many people per sequence")
      ->capture_default_str();
  gc->add_option("--models", g->models, "model directory")->envname("ANJU_MODEL_DIR");
  gc->callback([g] { g->Run(); });

  auto* ev = Group(root, "eval", "评测 / evaluate");
  auto e = std::make_shared<EvalCapture>();
  auto* ec = ev->add_subcommand("capture", "抓拍率评测 / capture rate on annotated sequences");
  ec->add_option("--data", e->data_dir, "a sequence directory, or a directory of them")->required();
  ec->add_option("--config", e->config_file,
                 "capture options (a camera entry's keys, or an anju-capture config)");
  ec->add_option("--threads", e->threads, "OpenCV threads (1 = one core per stream)")
      ->capture_default_str();
  ec->add_flag("--no-refine", e->no_refine, "one landmark pass per face");
  ec->add_flag("--json", e->as_json, "print one JSON object as the last line");
  ec->add_option("--preview-width", e->preview_width,
                 "also time a live-preview JPEG of this width for every frame (0 = no)");
  ec->add_option("--models", e->models, "model directory")->envname("ANJU_MODEL_DIR");
  ec->callback([e] { e->Run(); });
}

ANJU_COMMAND(Install);

}  // namespace
}  // namespace anju::cli
