#include "vision_test_support.h"

#include <fstream>
#include <iomanip>
#include <sstream>

#include "core/paths.h"

namespace anju::vision::test {

std::shared_ptr<const ModelSet> Models() {
  static const std::shared_ptr<const ModelSet> models = ModelSet::Load(DefaultModelDir());
  return models;
}

FaceEngine& Engine() {
  static const std::unique_ptr<FaceEngine> engine = std::make_unique<FaceEngine>(Models());
  return *engine;
}

std::filesystem::path LfwFile(const std::filesystem::path& lfw, const std::string& name, int n) {
  std::ostringstream file;
  file << name << "_" << std::setw(4) << std::setfill('0') << n << ".jpg";
  return lfw / "lfw" / name / file.str();
}

std::vector<uint8_t> ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteBytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

Feature EmbedLargest(FaceEngine& engine, const cv::Mat& bgr) {
  auto face = engine.DetectLargest(bgr);
  if (!face) {
    ADD_FAILURE() << "no face found in a " << bgr.cols << "x" << bgr.rows << " image";
    return {};
  }
  return engine.Embed(*face);
}

std::vector<std::filesystem::path> NuaaFrames(const std::filesystem::path& nuaa, bool live, int n,
                                              int step) {
  std::ifstream list(nuaa / (live ? "client_train_subset.txt" : "imposter_train_subset.txt"));
  std::vector<std::filesystem::path> out;
  std::string line;
  for (int i = 0; std::getline(list, line) && static_cast<int>(out.size()) < n; ++i) {
    if (line.empty() || i % step != 0) continue;
    out.push_back(nuaa / (live ? "ClientRaw" : "ImposterRaw") / line);
  }
  return out;
}

}  // namespace anju::vision::test
