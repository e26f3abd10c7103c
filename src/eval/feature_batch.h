// Embeds many image files on several threads (one FaceEngine each) with an on-disk
// cache, so that evaluators and calibration that revisit the same data set pay for
// the network only once per model version and engine setting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vision/engine.h"

namespace anju::eval {

struct FaceRecord {
  bool found = false;                  // a face was detected
  std::vector<float> feature;          // L2-normalised, empty when !found
  float yaw = 0, pitch = 0, roll = 0;  // pose network if with_pose, else landmarks
  float liveness = 0;
  float quality = 0;     // vision::Quality::score, as the terminal computes it (landmark pose)
  float face_px = 0;     // larger side of the face box, pixels (the terminal's min_face_px)
  std::string found_by;  // FaceEngine's detection pass, or kUnreadable
};

// found_by of a file that could not be decoded (refused format, broken or truncated).
inline constexpr const char* kUnreadable = "unreadable";

struct BatchOptions {
  int threads = 2;
  // Cache file; empty = no cache. Entries are keyed by path, file size and mtime, and
  // the cache is discarded when the model version or engine settings differ.
  std::filesystem::path cache;
  bool with_liveness = false;
  bool with_pose = true;
  // Which face of an image is the labelled one: the largest (photos of one person,
  // camera frames) or the most central (LFW centres the named person).
  bool central_face = false;  // yaw/pitch/roll from the pose network (≈40 ms per image)
  bool progress = true;       // progress line on stderr
  // Try FaceEngine::LocateInTightCrop first, as the snapshot service does.
  bool tight_crop = false;
};

// Default cache location for a data set: ~/.cache/anju/features/<tag>.bin
std::filesystem::path DefaultCachePath(const std::string& tag);

// What a cache entry remembers of its file: a changed file is measured again.
struct FileStamp {
  uint64_t size = 0;
  int64_t mtime = 0;
  bool operator==(const FileStamp&) const = default;
};
FileStamp Stamp(const std::filesystem::path& p);  // {} when the file cannot be read

// Runs WORK(engine, i) for every index i in TODO on up to THREADS workers, each with its
// own FaceEngine (OpenCV's own thread pool is off meanwhile: the workers are the
// parallelism). An anju::Error from WORK is reported on stderr as "skipped FILES[i]" and
// handed to ON_ERROR(i). A non-empty PROGRESS names a progress line on stderr.
void ForEachImage(const std::shared_ptr<const vision::ModelSet>& models,
                  const vision::EngineOptions& engine_options,
                  const std::vector<std::filesystem::path>& files, const std::vector<size_t>& todo,
                  int threads, const std::string& progress,
                  const std::function<void(vision::FaceEngine& engine, size_t i)>& work,
                  const std::function<void(size_t i)>& on_error);

// Returns one record per input path, in order. Images that fail to decode count as
// not found with found_by = kUnreadable (each is reported on stderr, and their number at
// the end), never abort the run.
std::vector<FaceRecord> EmbedFiles(const std::vector<std::filesystem::path>& files,
                                   const std::filesystem::path& model_dir,
                                   const vision::EngineOptions& engine_options,
                                   const BatchOptions& options);

}  // namespace anju::eval
