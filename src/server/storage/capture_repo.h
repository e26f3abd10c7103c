// Capture records, their sealed images and clip frames in captures.db (docs/viid.md): the
// capture row is the durable queue entry of recognition. Rows in, rows out; the files
// themselves are written and read by the snapshot service. Every function runs on the
// caller's connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/storage/partitions.h"

namespace anju::server::storage {

// A capture as the lists show it, with its camera's place.
struct CaptureRow {
  std::string id, device_id, face_id;
  int64_t time_ms = 0, received_ms = 0;
  std::string box;  // JSON text
  int64_t images = 0;
  std::string state, outcome, person;
  std::optional<double> score, second_score;
  std::optional<int64_t> stranger_id;
  std::string quality, reasons;  // JSON text
  bool dark = false;
  int64_t recognised_ms = 0;
  std::optional<std::string> place;
  std::optional<int64_t> building_id, unit_id;
  std::optional<int64_t> face_image;  // the first image of type 11 (the face)
};

struct CaptureFilter {
  int64_t from_ms = 0, to_ms = 0;  // 0 = open
  std::string device, person, outcome, state;
  int64_t stranger = 0;
  // Only cameras in these buildings; none = all.
  std::optional<std::vector<int64_t>> buildings;
};

// A new capture, queued for recognition.
struct NewCapture {
  std::string id, device_id, face_id;
  int64_t time_ms = 0, received_ms = 0;
  std::string box;  // JSON text
  int64_t images = 0;
};

// An image or clip frame of a capture; FILE is relative to the data directory.
struct CaptureFileRow {
  int64_t n = 0;
  std::string type;       // images only
  int64_t offset_ms = 0;  // clip frames only
  std::string file;
  int64_t bytes = 0, width = 0, height = 0;
};

// What recognition found.
struct CaptureResult {
  std::string state, outcome, person;
  std::optional<double> score, second_score;
  std::optional<int64_t> stranger_id;
  std::string quality, reasons;  // JSON text
  bool dark = false;
  std::vector<uint8_t> feature_sealed;  // empty = none
  int64_t recognised_ms = 0;
};

struct CaptureHead {
  std::string device_id;
  int64_t time_ms = 0;
  std::string state;
};

// Every capture's state at once (`anju bench cluster` checks a run with it).
struct CaptureTally {
  int64_t total = 0, queued = 0;
  // Final captures per outcome of a recognised one ("accept", "stranger", …) or per
  // state of the others ("no_face", "failed", …).
  std::map<std::string, int64_t> outcomes;
  std::vector<int64_t> latency_ms;  // arrival → final, per final capture
};

class CaptureRepo {
 public:
  // ---- intake ----
  // The capture DEVICE already sent as FACE_ID, if any.
  static bool HasFace(db::Conn& c, const std::string& device, const std::string& face_id);
  // False when the (device, face id) pair is stored already.
  static bool Insert(db::Conn& c, const NewCapture& capture);
  static void InsertImage(db::Conn& c, const std::string& capture_id, const CaptureFileRow& image);
  static void InsertClipFrame(db::Conn& c, const std::string& capture_id,
                              const CaptureFileRow& frame);

  // ---- recognition ----
  // Captures still queued, oldest arrival first.
  static std::vector<std::string> Queued(db::Conn& c);
  static CaptureTally Tally(db::Conn& c);
  // At most MAX captures still queued that arrived before BEFORE_MS, oldest first.
  static std::vector<std::string> QueuedBefore(db::Conn& c, int64_t before_ms, int64_t max);
  static std::optional<CaptureHead> Head(db::Conn& c, const std::string& id);
  // The face image (type 11) or else the first image: its number and file.
  static std::optional<CaptureFileRow> BestImage(db::Conn& c, const std::string& id);
  // Both finish a capture only while it is queued (a redelivered work item is finished
  // once); false when it was not queued any more.
  static bool SaveResult(db::Conn& c, const std::string& id, const CaptureResult& r);
  // REASONS: JSON text.
  static bool MarkFailed(db::Conn& c, const std::string& id, const std::string& reasons,
                         int64_t now_ms);
  // When PERSON was last captured; nullopt = never.
  static std::optional<int64_t> LastSeen(db::Conn& c, const std::string& person);

  // ---- queries ----
  static int64_t Count(db::Conn& c, const CaptureFilter& f);
  // Newest first.
  static std::vector<CaptureRow> List(db::Conn& c, const CaptureFilter& f, int64_t limit,
                                      int64_t offset);
  static std::optional<CaptureRow> Get(db::Conn& c, const std::string& id);
  static bool Exists(db::Conn& c, const std::string& id);
  // The latest capture of each camera, by camera id.
  static std::vector<CaptureRow> Latest(db::Conn& c);
  static std::vector<CaptureFileRow> Images(db::Conn& c, const std::string& id);
  static std::optional<std::string> ImageFile(db::Conn& c, const std::string& id, int64_t n);
  static int64_t ClipFrameCount(db::Conn& c, const std::string& id);
  static std::vector<CaptureFileRow> ClipFrames(db::Conn& c, const std::string& id);
  static std::optional<std::string> ClipFile(db::Conn& c, const std::string& id, int64_t n);
  // Captures per (bucket start, camera): buckets of SIZE_MS at UTC+OFFSET_MS.
  struct BucketCount {
    int64_t bucket_ms = 0;
    std::string device_id;
    int64_t count = 0;
  };
  static std::vector<BucketCount> CountByBucket(db::Conn& c, int64_t offset_ms, int64_t size_ms,
                                                int64_t from_ms, int64_t to_ms);

  // ---- retention ----
  // At most MAX captures older than BEFORE_MS, oldest first.
  static std::vector<std::string> OlderThan(db::Conn& c, int64_t before_ms, int64_t max);
  // Deletes the capture, its images and clip frames; returns their files.
  static std::vector<std::string> Delete(db::Conn& c, const std::string& id);

  // ---- monthly partitions (PostgreSQL, R3.3.2.5; storage/partitions.h) ----
  // The tables partitioned by capture month.
  static const std::vector<std::string>& PartitionedTables();
  // Partitions from NOW_MS's month to storage::kMonthsAhead later (own transactions).
  static void EnsurePartitions(db::Conn& c, int64_t now_ms);
  struct DroppedMonth {
    Month month;
    std::vector<std::string> ids;    // the captures that went
    std::vector<std::string> files;  // their images' and clip frames' blob keys
  };
  // In the caller's transaction: drops the oldest month of captures (with its images,
  // clip frames and camera face claims) that ended at or before BEFORE_MS; nullopt when
  // there is none (always on SQLite). Rows older than every month are left to Delete.
  static std::optional<DroppedMonth> DropMonthBefore(db::Conn& c, int64_t before_ms);
};

}  // namespace anju::server::storage
