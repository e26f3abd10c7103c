#include "vision/model_set.h"

#include <nlohmann/json.hpp>

#include <fstream>

#include "core/error.h"
#include "core/sha256.h"

namespace anju::vision {
namespace {

const char* kFix = " — 运行 scripts/setup --models 修复 / run scripts/setup --models to fix";
const char* kRequiredRoles[] = {"detector", "landmarks", "embedder", "liveness"};

}  // namespace

std::shared_ptr<const ModelSet> ModelSet::Load(const std::filesystem::path& dir, bool verify) {
  auto set = std::make_shared<ModelSet>();
  set->dir_ = dir;
  auto manifest_path = dir / "manifest.json";
  std::ifstream in(manifest_path);
  if (!in)
    throw Error(ErrorCode::kModel, "model manifest not found: " + manifest_path.string() + kFix);
  nlohmann::json m;
  try {
    m = nlohmann::json::parse(in);
    set->name_ = m.at("name").get<std::string>() + "-" + m.at("version").get<std::string>();
    for (auto& [role, entry] : m.at("files").items()) {
      ModelFile f;
      f.path = dir / entry.at("file").get<std::string>();
      f.sha256 = entry.at("sha256").get<std::string>();
      set->files_[role] = std::move(f);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorCode::kModel,
                "model manifest " + manifest_path.string() + " is malformed: " + e.what());
  }
  for (const char* role : kRequiredRoles)
    if (!set->has(role))
      throw Error(ErrorCode::kModel, std::string("model manifest has no '") + role + "' entry");
  for (auto& [role, f] : set->files_) {
    std::ifstream file(f.path, std::ios::binary);
    if (!file) throw Error(ErrorCode::kModel, "model file missing: " + f.path.string() + kFix);
    f.bytes.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    if (verify) {
      // Hash the bytes the networks will be built from, not a second read of the file.
      std::string got = Sha256Hex(f.bytes.data(), f.bytes.size());
      if (got != f.sha256)
        throw Error(ErrorCode::kModel, "model file corrupt: " + f.path.string() + " has SHA-256 " +
                                           got + ", manifest says " + f.sha256 + kFix);
    }
  }
  const auto& emb = set->files_.at("embedder");
  set->feature_version_ =
      set->name_ + "/" + emb.path.filename().string() + "@" + emb.sha256.substr(0, 8);
  return set;
}

const ModelFile& ModelSet::file(const std::string& role) const {
  auto it = files_.find(role);
  if (it == files_.end()) throw Error(ErrorCode::kModel, "no model for role '" + role + "'");
  return it->second;
}

}  // namespace anju::vision
