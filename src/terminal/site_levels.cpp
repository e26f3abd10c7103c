#include "terminal/site_levels.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace anju::terminal {

match::Thresholds MergeSiteLevels(const match::Thresholds& file, const nlohmann::json& site) {
  auto bad = [](const std::string& what) {
    throw Error(ErrorCode::kInvalidArgument, "site levels: " + what);
  };
  if (!site.is_object()) bad("not an object");
  if (!site.contains("model_version") || !site["model_version"].is_string())
    bad("model_version missing");
  if (site["model_version"].get<std::string>() != file.model_version)
    bad("made for model '" + site["model_version"].get<std::string>() + "', this terminal uses '" +
        file.model_version + "'");
  if (!site.contains("levels") || !site["levels"].is_object()) bad("levels missing");
  match::Thresholds out = file;
  for (auto l : match::kAllLevels) {
    const char* name = match::LevelName(l);
    if (!site["levels"].contains(name)) continue;  // a level not sent keeps the file's
    const auto& v = site["levels"][name];
    if (!v.is_object() || !v.contains("threshold") || !v["threshold"].is_number())
      bad(std::string(name) + ".threshold missing");
    const float t = v["threshold"].get<float>();
    const float m = v.contains("margin") && v["margin"].is_number() ? v["margin"].get<float>() : 0;
    if (!std::isfinite(t) || t < -1 || t > 1.5f || !std::isfinite(m) || m < 0 || m > 1)
      bad(std::string(name) + ": out of range");
    out.at(l).threshold = std::max(file.at(l).threshold, t);
    out.at(l).margin = std::max(file.at(l).margin, m);
  }
  if (site.contains("created") && site["created"].is_string())
    out.created = site["created"].get<std::string>();
  out.datasets.push_back("site levels from the server");
  return out;
}

std::filesystem::path SiteLevelsFile(const std::filesystem::path& data_dir) {
  return data_dir / "site-levels.json";
}

}  // namespace anju::terminal
