// One approach replayed through the terminal's own AccessPipeline, to measure the
// per-approach liveness rule on recorded frames (`anju eval liveness --sequences`,
// tests/terminal). The 1:N search always accepts (one enrolled person, every level's
// threshold below any score), so the outcome is the pipeline's liveness decision alone:
// tracking, quality gate, frame fusion, early decision, IR pairing and calibration as
// configured — nothing re-implemented.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "terminal/access_pipeline.h"

namespace anju::terminal {

struct ApproachResult {
  // "open" when any track of the approach was admitted (accepted as live), else "spoof"
  // when one was refused as not live, else "" (no decision: no track with a usable
  // frame, e.g. no face, faces too small or too poor).
  std::string decision;
  std::string reason;   // the deciding record's reason ("ir_no_face", …)
  float liveness = 0;   // the fused live probability of the deciding record
  int tracks = 0;       // access records (one per decided track)
  int frames_used = 0;  // the deciding record's fused frames
};

// Plays FRAMES in order at FPS (capture times 1/FPS apart, from a fixed origin), then
// ends the track. IR_FRAMES, when given, must be as many: frame i of the IR camera is
// handed over with the same capture time just before colour frame i. OPTIONS are used
// as given except that the motion gate, tailgating and repeat suppression are off.
ApproachResult ReplayApproach(vision::FaceEngine& engine, const std::vector<cv::Mat>& frames,
                              PipelineOptions options, double fps = 10,
                              const std::vector<cv::Mat>& ir_frames = {});

}  // namespace anju::terminal
