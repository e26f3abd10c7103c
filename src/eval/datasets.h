// Readers for the evaluation sets' protocol files (layouts in shared/data/README.md).
// They only list files; decoding and scoring happen in the evaluators.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace anju::eval {

namespace fs = std::filesystem;

struct ImagePair {
  fs::path a, b;
  bool same = false;
  int fold = 0;
};

// LFW pairs.txt ("10 300" header, then per fold N same + N different lines).
// Images are DIR/lfw/<name>/<name>_<NNNN>.jpg; with `ext` other layouts such as MFR2
// (DIR/<name>/<name>_000i.png) use the same format.
std::vector<ImagePair> ReadLfwPairs(const fs::path& pairs_file, const fs::path& image_root,
                                    const std::string& ext = ".jpg", int digits = 4);

// CFP, protocol "FP" or "FF", every fold directory present under Protocol/Split/<P>/.
std::vector<ImagePair> ReadCfpPairs(const fs::path& cfp_dir, const std::string& protocol);

struct YaleImage {
  fs::path path;
  std::string subject;
  int azimuth = 0, elevation = 0;
  bool ambient = false;
};
std::vector<YaleImage> ListYaleB(const fs::path& dir);
// Lighting bucket by the larger of |azimuth| and |elevation|:
// "0-25", "26-50", "51-70", "71-90", ">90"; "ambient" for the unlit image.
std::string YaleBucket(const YaleImage& img);

// NUAA: (path, is_live). Uses the lists when given, else every image under
// ClientRaw/ and ImposterRaw/.
struct LabelledImage {
  fs::path path;
  bool live = false;
};
std::vector<LabelledImage> ListNuaa(const fs::path& dir, const fs::path& live_list = {},
                                    const fs::path& attack_list = {});

// DIR/<identity>/<images>: identity → image paths, both sorted by name.
std::map<std::string, std::vector<fs::path>> ListIdentityFolders(const fs::path& dir);

}  // namespace anju::eval
