// Captures (docs/viid.md): a camera's faces stored as rows in captures.db with their sealed
// images and clip frames in the blob store (durable before the rows naming them commit);
// the capture row is the durable entry of the recognition queue. Its lists and images, the
// finishing of a capture, and retention.
//
// Image keys: captures/YYYY/MM/DD/<capture id>-<n>.jpg.sealed = Seal(data key, jpeg,
// aad = "anju-capture/v1/<capture id>/<n>"); clip frames -clip<n> likewise.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocol/viid.h"
#include "server/viid/context.h"
#include "server/viid/strangers.h"
#include "server/viid/viid_types.h"

namespace anju::server {

// One capture to recognise, as a worker takes it from the queue.
struct RecognitionJob {
  std::string capture_id;
  int64_t enqueued_ms = 0;
  std::vector<uint8_t> face_jpeg;  // optional: the crop, saves reading it back
};

// What recognition found, to finish a capture with.
struct RecognitionResult {
  std::string state;    // done | rejected | no_face | failed | unrecognised
  std::string outcome;  // accept | uncertain | stranger (done only)
  std::string person;
  std::optional<double> score, second_score;
  std::optional<int64_t> stranger_id;
  nlohmann::json quality = nlohmann::json::object();
  nlohmann::json reasons = nlohmann::json::array();
  bool dark = false;
  std::vector<uint8_t> feature_sealed;  // empty = none
};

class CaptureStore {
 public:
  CaptureStore(ViidContext& ctx, StrangerDirectory& strangers) : ctx_(ctx), strangers_(strangers) {}

  // ---- intake ----
  struct Stored {
    std::vector<protocol::viid::ResponseStatus> statuses;  // one per face of the upload
    std::vector<RecognitionJob> jobs;                      // the captures stored now
  };
  // Stores the faces of one upload by DEVICE that arrived at NOW_MS: a face the camera
  // sent before is answered as a duplicate, one whose images cannot be stored as busy.
  Stored Store(const std::string& device, const protocol::viid::FaceList& faces, int64_t now_ms);

  // ---- recognition ----
  // Still queued: (camera, capture time); nullopt when finished or unknown.
  struct Pending {
    std::string device_id;
    int64_t time_ms = 0;
  };
  std::optional<Pending> PendingCapture(const std::string& id);
  // The face image (or else the first image), opened; empty when it has none.
  std::vector<uint8_t> FaceCrop(const std::string& id);
  // Finishes a capture still queued (a redelivered work item finishes it once); false when
  // it was not queued any more. ALSO, when given, runs in the same transaction on the
  // finished capture (the forward outbox, R3.3.2.4): both are stored or neither.
  // The finished capture goes to DETAIL when given.
  bool Finish(const std::string& id, const RecognitionResult& r, int64_t now_ms,
              const std::function<void(db::Conn&, const CaptureDetail&)>& also = {},
              CaptureDetail* detail = nullptr);
  bool MarkFailed(const std::string& id, const std::string& reason, int64_t now_ms);
  // Captures still queued, oldest arrival first (queued again at start).
  std::vector<std::string> Queued();
  // At most MAX of them that arrived before BEFORE_MS.
  std::vector<std::string> QueuedBefore(int64_t before_ms, int64_t max);
  // When PERSON was last captured; nullopt = never.
  std::optional<int64_t> LastSeen(const std::string& person);

  // ---- queries ----
  CapturePage List(const CaptureQuery& q);
  // Error(kNotFound) for an unknown capture.
  CaptureDetail Get(const std::string& id);
  // Opened JPEGs; Error(kNotFound) when absent.
  std::vector<uint8_t> Image(const std::string& id, int n);
  CaptureClip Clip(const std::string& id);  // Error(kNotFound) without a clip
  std::vector<uint8_t> ClipFrame(const std::string& id, int n);
  // The latest capture of each camera.
  std::vector<CaptureRecord> Latest();

  // ---- retention (R3.3.2.6) ----
  // Deletes captures (rows and sealed images) older than BEFORE_MS and stranger clusters
  // last seen before it; at most MAX captures per call. Returns the captures deleted.
  int64_t Retain(int64_t before_ms, int64_t max = 1000);
  // PostgreSQL (R3.3.2.5; storage/partitions.h): drops the oldest month of captures that
  // ended at or before BEFORE_MS whole, with what Retain does besides (blobs, stranger
  // sightings); returns its captures, -1 when no such month is left (always on SQLite).
  int64_t RetainMonth(int64_t before_ms);
  // A whole pass at the snapshot retention in force (0 months = keep forever: nothing is
  // deleted): makes the coming months' partitions ready (PostgreSQL), drops the whole
  // months before the cutoff, then Retain until nothing older is left. Returns the captures
  // deleted; *BEFORE_MS = the cutoff used.
  int64_t RetainExpired(int64_t* before_ms = nullptr);

 private:
  CaptureDetail GetOn(db::Conn& conn, const std::string& id);
  // The blob key of capture ID's image NAME ("0", "1", … or "clip0", …) taken at TIME_MS.
  static std::string ImageKey(const std::string& id, const std::string& name, int64_t time_ms);

  ViidContext& ctx_;
  StrangerDirectory& strangers_;
};

}  // namespace anju::server
