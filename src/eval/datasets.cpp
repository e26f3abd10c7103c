#include "eval/datasets.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/error.h"

namespace anju::eval {
namespace {

std::ifstream Open(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw Error(ErrorCode::kNotFound, "cannot open " + p.string());
  return in;
}

bool IsImage(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".jpg" || e == ".jpeg" || e == ".png" || e == ".bmp" || e == ".pgm";
}

}  // namespace

std::vector<ImagePair> ReadLfwPairs(const fs::path& pairs_file, const fs::path& root,
                                    const std::string& ext, int digits) {
  auto in = Open(pairs_file);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(in, line)) {
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream ss(line);
    std::vector<std::string> tok;
    for (std::string t; ss >> t;) tok.push_back(t);
    if (!tok.empty()) rows.push_back(tok);
  }
  if (rows.empty())
    throw Error(ErrorCode::kInvalidArgument, "empty pairs file " + pairs_file.string());
  // Header "folds n" is optional (MFR2's pairs.txt has none).
  int folds = 1, per_fold = 0;
  size_t start = 0;
  if (rows[0].size() == 2 && std::all_of(rows[0][0].begin(), rows[0][0].end(), ::isdigit)) {
    folds = std::stoi(rows[0][0]);
    per_fold = std::stoi(rows[0][1]);
    start = 1;
  }
  auto image = [&](const std::string& name, const std::string& idx) {
    char num[16];
    std::snprintf(num, sizeof num, "%0*d", digits, std::stoi(idx));
    return root / name / (name + "_" + num + ext);
  };
  std::vector<ImagePair> out;
  for (size_t i = start; i < rows.size(); ++i) {
    const auto& t = rows[i];
    ImagePair p;
    if (t.size() == 3) {
      p = {image(t[0], t[1]), image(t[0], t[2]), true, 0};
    } else if (t.size() == 4) {
      p = {image(t[0], t[1]), image(t[2], t[3]), false, 0};
    } else {
      throw Error(ErrorCode::kInvalidArgument, "pairs file " + pairs_file.string() + " line " +
                                                   std::to_string(i + 1) + " is malformed");
    }
    p.fold =
        per_fold > 0 ? std::min<int>(static_cast<int>((i - start) / (2 * per_fold)), folds - 1) : 0;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<ImagePair> ReadCfpPairs(const fs::path& dir, const std::string& protocol) {
  if (protocol != "FP" && protocol != "FF")
    throw Error(ErrorCode::kInvalidArgument, "CFP protocol must be FP or FF");
  auto read_list = [&](const std::string& name) {
    std::map<int, fs::path> m;
    auto in = Open(dir / "Protocol" / name);
    int idx;
    std::string rel;
    while (in >> idx >> rel) m[idx] = (dir / "Protocol" / rel).lexically_normal();
    return m;
  };
  auto frontal = read_list("Pair_list_F.txt");
  auto profile = read_list("Pair_list_P.txt");
  const auto& second = protocol == "FP" ? profile : frontal;
  std::vector<ImagePair> out;
  fs::path split = dir / "Protocol" / "Split" / protocol;
  std::vector<fs::path> fold_dirs;
  for (auto& e : fs::directory_iterator(split))
    if (e.is_directory()) fold_dirs.push_back(e.path());
  std::sort(fold_dirs.begin(), fold_dirs.end());
  for (size_t f = 0; f < fold_dirs.size(); ++f) {
    for (const char* kind : {"same", "diff"}) {
      auto in = Open(fold_dirs[f] / (std::string(kind) + ".txt"));
      std::string line;
      while (std::getline(in, line)) {
        int a, b;
        if (std::sscanf(line.c_str(), "%d,%d", &a, &b) != 2) continue;
        if (!frontal.count(a) || !second.count(b))
          throw Error(ErrorCode::kInvalidArgument, "CFP pair " + line + " names an unknown image");
        out.push_back({frontal[a], second.at(b), std::string(kind) == "same", static_cast<int>(f)});
      }
    }
  }
  return out;
}

std::vector<YaleImage> ListYaleB(const fs::path& dir) {
  static const std::regex re(R"((yaleB\d+)_P\d+A([+-]\d+)E([+-]\d+)\.\w+)");
  static const std::regex ambient(R"((yaleB\d+)_P\d+_Ambient\.\w+)");
  std::vector<YaleImage> out;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || !IsImage(e.path())) continue;
    std::string name = e.path().filename().string();
    std::smatch m;
    YaleImage img;
    img.path = e.path();
    if (std::regex_match(name, m, re)) {
      img.subject = m[1];
      img.azimuth = std::stoi(m[2]);
      img.elevation = std::stoi(m[3]);
    } else if (std::regex_match(name, m, ambient)) {
      img.subject = m[1];
      img.ambient = true;
    } else {
      continue;
    }
    out.push_back(img);
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.path < b.path; });
  return out;
}

std::string YaleBucket(const YaleImage& img) {
  if (img.ambient) return "ambient";
  int m = std::max(std::abs(img.azimuth), std::abs(img.elevation));
  if (m <= 25) return "0-25";
  if (m <= 50) return "26-50";
  if (m <= 70) return "51-70";
  if (m <= 90) return "71-90";
  return ">90";
}

std::vector<LabelledImage> ListNuaa(const fs::path& dir, const fs::path& live_list,
                                    const fs::path& attack_list) {
  std::vector<LabelledImage> out;
  auto from_list = [&](const fs::path& list, const char* sub, bool live) {
    auto in = Open(list);
    std::string rel;
    while (in >> rel) {
      std::replace(rel.begin(), rel.end(), '\\', '/');
      out.push_back({dir / sub / rel, live});
    }
  };
  auto from_dir = [&](const char* sub, bool live) {
    if (!fs::is_directory(dir / sub))
      throw Error(ErrorCode::kNotFound, "no " + (dir / sub).string());
    std::vector<fs::path> files;
    for (auto& e : fs::recursive_directory_iterator(dir / sub))
      if (e.is_regular_file() && IsImage(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (auto& f : files) out.push_back({f, live});
  };
  if (!live_list.empty())
    from_list(live_list, "ClientRaw", true);
  else
    from_dir("ClientRaw", true);
  if (!attack_list.empty())
    from_list(attack_list, "ImposterRaw", false);
  else
    from_dir("ImposterRaw", false);
  return out;
}

std::map<std::string, std::vector<fs::path>> ListIdentityFolders(const fs::path& dir) {
  std::map<std::string, std::vector<fs::path>> out;
  for (auto& person : fs::directory_iterator(dir)) {
    if (!person.is_directory()) continue;
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(person.path()))
      if (e.is_regular_file() && IsImage(e.path())) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (!files.empty()) out[person.path().filename().string()] = std::move(files);
  }
  return out;
}

}  // namespace anju::eval
