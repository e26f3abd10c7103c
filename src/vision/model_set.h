// The model files an engine runs, as named by a manifest (models/manifest.json, copied
// next to the weights by scripts/setup). An operator plugs in other models by writing
// another manifest with the same roles; the version strings make features from
// different models incomparable.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace anju::vision {

struct ModelFile {
  std::filesystem::path path;
  std::string sha256;
  std::vector<unsigned char> bytes;  // read once, shared by every engine in a pool
};

class ModelSet {
 public:
  // Loads DIR/manifest.json and every file it names. With verify, each file's SHA-256
  // must match the manifest; otherwise Error(kModel) says which file and how to fix it.
  static std::shared_ptr<const ModelSet> Load(const std::filesystem::path& dir, bool verify = true);

  const ModelFile& file(const std::string& role) const;
  bool has(const std::string& role) const { return files_.count(role) != 0; }
  // e.g. "faceplugin-0.0.1/fr_feature.onnx@87aacdfe" — stored with every feature code.
  const std::string& feature_version() const { return feature_version_; }
  const std::string& name() const { return name_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  std::string name_;
  std::string feature_version_;
  std::map<std::string, ModelFile> files_;
};

}  // namespace anju::vision
