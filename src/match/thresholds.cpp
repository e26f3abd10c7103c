#include "match/thresholds.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace anju::match {

using nlohmann::json;
namespace fs = std::filesystem;

const char* LevelName(SecurityLevel level) {
  switch (level) {
    case SecurityLevel::kHigh:
      return "high";
    case SecurityLevel::kNormal:
      return "normal";
    case SecurityLevel::kLow:
      return "low";
  }
  return "?";
}

SecurityLevel ParseLevel(std::string_view s) {
  for (auto l : kAllLevels)
    if (s == LevelName(l)) return l;
  throw Error(ErrorCode::kInvalidArgument,
              "unknown security level '" + std::string(s) + "' (high|normal|low)");
}

double TargetFmr(SecurityLevel level) {
  switch (level) {
    case SecurityLevel::kHigh:
      return 1e-6;
    case SecurityLevel::kNormal:
      return 1e-5;
    case SecurityLevel::kLow:
      return 1e-4;
  }
  return 0;
}

float DefaultMargin(SecurityLevel level) {
  switch (level) {
    case SecurityLevel::kHigh:
      return 0.06f;
    case SecurityLevel::kNormal:
      return 0.04f;
    case SecurityLevel::kLow:
      return 0.03f;
  }
  return 0;
}

std::string Thresholds::ToJson() const {
  json levels_json = json::object();
  for (auto l : kAllLevels)
    levels_json[LevelName(l)] = {
        {"threshold", at(l).threshold}, {"margin", at(l).margin}, {"target_fmr", at(l).target_fmr}};
  json j = {{"format", format},
            {"kind", "anju-thresholds"},
            {"model_version", model_version},
            {"fusion", FusionName(fusion)},
            {"levels", levels_json},
            {"datasets", datasets},
            {"created", created},
            {"report", json::parse(report_json.empty() ? "{}" : report_json)}};
  return j.dump(2) + "\n";
}

void Thresholds::Save(const fs::path& file) const {
  const std::string text = ToJson();
  if (file.has_parent_path()) fs::create_directories(file.parent_path());
  const fs::path tmp = file.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw Error(ErrorCode::kIo, "cannot write " + tmp.string());
  }
  fs::rename(tmp, file);
}

Thresholds Thresholds::Parse(std::string_view text, std::string_view expected,
                             const std::string& origin) {
  Thresholds t;
  try {
    json j = json::parse(text);
    if (j.value("kind", "") != "anju-thresholds")
      throw Error(ErrorCode::kInvalidArgument, origin + " is not an anju thresholds file");
    t.format = j.at("format").get<int>();
    if (t.format != 1)
      throw Error(ErrorCode::kInvalidArgument,
                  origin + ": unsupported format " + std::to_string(t.format));
    t.model_version = j.at("model_version").get<std::string>();
    t.fusion = ParseFusion(j.at("fusion").get<std::string>());
    for (auto l : kAllLevels) {
      const json& lj = j.at("levels").at(LevelName(l));
      LevelSetting& s = t.at(l);
      s.threshold = lj.at("threshold").get<float>();
      s.margin = lj.at("margin").get<float>();
      s.target_fmr = lj.value("target_fmr", TargetFmr(l));
      if (!std::isfinite(s.threshold) || s.threshold < -1.f || s.threshold > 1.5f ||
          !(s.margin >= 0.f) || s.margin > 1.f)
        throw Error(ErrorCode::kInvalidArgument,
                    origin + ": level '" + LevelName(l) + "' is out of range");
    }
    if (!(t.at(SecurityLevel::kHigh).threshold >= t.at(SecurityLevel::kNormal).threshold &&
          t.at(SecurityLevel::kNormal).threshold >= t.at(SecurityLevel::kLow).threshold))
      throw Error(ErrorCode::kInvalidArgument,
                  origin + ": thresholds must satisfy high ≥ normal ≥ low");
    t.datasets = j.value("datasets", std::vector<std::string>{});
    t.created = j.value("created", "");
    t.report_json = j.contains("report") ? j["report"].dump() : "{}";
  } catch (const json::exception& e) {
    throw Error(ErrorCode::kInvalidArgument, origin + ": malformed thresholds file: " + e.what());
  }
  if (!expected.empty() && t.model_version != expected)
    throw Error(ErrorCode::kInvalidArgument, "阈值文件与模型版本不符 / " + origin +
                                                 " was calibrated for model '" + t.model_version +
                                                 "', the engine runs '" + std::string(expected) +
                                                 "': recalibrate (anju calibrate)");
  return t;
}

Thresholds Thresholds::Load(const fs::path& file, std::string_view expected) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, "thresholds file not found: " + file.string());
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), expected, file.string());
}

fs::path RepoModelsDir() {
#ifdef ANJU_SOURCE_DIR
  return fs::path(ANJU_SOURCE_DIR) / "models";
#else
  return {};
#endif
}

fs::path DefaultThresholdsPath(const fs::path& model_dir) {
  std::error_code ec;
  if (const char* env = std::getenv("ANJU_THRESHOLDS"); env && *env) return env;
#ifdef ANJU_SOURCE_DIR
  if (fs::path p = fs::path(ANJU_SOURCE_DIR) / "models" / "thresholds.json"; fs::exists(p, ec))
    return p;
#endif
  if (!model_dir.empty())
    if (fs::path p = model_dir / "thresholds.json"; fs::exists(p, ec)) return p;
  return {};
}

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAccept:
      return "accept";
    case Outcome::kStranger:
      return "stranger";
    case Outcome::kUncertain:
      return "uncertain";
  }
  return "?";
}

Decision Decide(std::span<const Candidate> ranked, const LevelSetting& level) {
  Decision d;
  if (ranked.empty()) {
    d.score = -1.f;
    return d;
  }
  d.person = ranked[0].person;
  d.score = ranked[0].score;
  d.second_score = ranked.size() > 1 ? ranked[1].score : -1.f;
  if (d.score < level.threshold)
    d.outcome = Outcome::kStranger;
  else if (ranked.size() > 1 && d.score - d.second_score < level.margin)
    d.outcome = Outcome::kUncertain;
  else
    d.outcome = Outcome::kAccept;
  return d;
}

std::vector<Candidate> FindDuplicates(const FeatureIndex& index, std::span<const float> feature,
                                      std::string_view model_version, float high_threshold,
                                      std::string_view exclude_person) {
  std::vector<Candidate> out;
  for (auto& c : index.Search(feature, model_version, {.k = 10}))
    if (c.best_template_score >= high_threshold && c.person != exclude_person) out.push_back(c);
  return out;
}

FmrPoint ThresholdAtFmr(std::vector<float>& s, double target, float unresolved_margin) {
  FmrPoint r;
  r.impostors = s.size();
  r.expected_false = target * double(s.size());
  if (s.empty()) return r;
  const size_t allowed = static_cast<size_t>(std::floor(r.expected_false));
  if (allowed == 0) {
    r.threshold = *std::max_element(s.begin(), s.end()) + unresolved_margin;
    r.resolved = false;
    r.fmr = 0;
    return r;
  }
  const size_t a = std::min(allowed, s.size() - 1);
  std::nth_element(s.begin(), s.begin() + a, s.end(), std::greater<float>());
  r.threshold = std::nextafter(s[a], 2.f);
  r.resolved = true;
  r.fmr = RateAtOrAbove(s, r.threshold);
  return r;
}

double RateAtOrAbove(std::span<const float> scores, float t) {
  if (scores.empty()) return 0;
  size_t n = 0;
  for (float x : scores) n += x >= t;
  return double(n) / double(scores.size());
}

double RateBelow(std::span<const float> scores, float t) {
  if (scores.empty()) return 0;
  size_t n = 0;
  for (float x : scores) n += x < t;
  return double(n) / double(scores.size());
}

float UpperQuantile(std::vector<float>& s, double q) {
  if (s.empty()) return 0;
  size_t a = std::min(s.size() - 1, static_cast<size_t>(std::floor(q * double(s.size()))));
  std::nth_element(s.begin(), s.begin() + a, s.end(), std::greater<float>());
  return s[a];
}

}  // namespace anju::match
