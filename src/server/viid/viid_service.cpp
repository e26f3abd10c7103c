#include "server/viid/viid_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "match/thresholds.h"
#include "server/runtime/runtime.h"
#include "server/viid/common.h"

namespace anju::server {

using cameras::NowMs;

namespace {

ViidService::Levels LoadLevels(const ViidDeps& deps, const ViidOptions& options) {
  ViidService::Levels l;
  if (!deps.model_version.empty() && !deps.thresholds_file.empty()) {
    try {
      const auto t = match::Thresholds::Load(deps.thresholds_file, deps.model_version);
      l.recognition = t.at(options.level);
      l.cluster = t.at(match::SecurityLevel::kLow).threshold;
    } catch (const Error& e) {
      spdlog::warn("viid: default recognition thresholds: {}", e.what());
    }
  }
  if (options.cluster_threshold > 0) l.cluster = options.cluster_threshold;
  return l;
}

}  // namespace

ViidService::ViidService(ViidDeps deps, const crypto::DataKey& key, ViidOptions options)
    : levels_(LoadLevels(deps, options)),
      ctx_(std::move(deps), key, std::move(options)),
      strangers_(ctx_, levels_.cluster),
      alerts_(ctx_),
      cameras_(ctx_),
      captures_(ctx_, strangers_),
      live_(ctx_),
      forwarders_(ctx_),
      reports_(ctx_, cameras_),
      endpoint_(ctx_, cameras_, captures_, live_, alerts_),
      workers_(ctx_, cameras_, captures_, strangers_, alerts_, forwarders_, levels_.recognition) {}

ViidService::~ViidService() {
  Stop();
}

void ViidService::Start() {
  if (started_) return;
  started_ = true;
  // Captures that were stored but not recognised before a restart (a shared queue drops
  // the ones it still holds: the capture id is the item's id).
  if (ctx_.leader().IsLeader(runtime::kJobRequeue))
    for (auto& id : captures_.Queued()) ctx_.queue().Push({std::move(id), {}, NowMs()});
  for (int i = 0; i < ctx_.options().workers; ++i)
    threads_.emplace_back([this] { workers_.Run(); });
  threads_.emplace_back([this] { forwarders_.RunTail(); });
  threads_.emplace_back([this] { RunPeriodic(); });
  threads_.emplace_back([this] { RunSweeper(); });
  threads_.emplace_back([this] { forwarders_.RunWebhookSender(); });
  threads_.emplace_back([this] { forwarders_.RunForwardSender(); });
}

void ViidService::Stop() {
  ctx_.Stop();
  live_.WakeAll();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

void ViidService::RunPeriodic() {
  while (!ctx_.Stopping()) {
    try {
      if (ctx_.leader().IsLeader(runtime::kJobSnapshotRules)) alerts_.EvaluatePeriodic(NowMs());
    } catch (const std::exception& e) {
      spdlog::error("viid: periodic rules failed: {}", e.what());
    }
    ctx_.WaitFor(std::chrono::milliseconds(ctx_.options().periodic_interval_ms));
  }
}

int ViidService::SweepOnce() {
  if (!ctx_.leader().IsLeader(runtime::kJobRequeue)) return 0;
  int pushed = 0;
  for (auto& id : captures_.QueuedBefore(NowMs() - ctx_.options().sweep_after_ms, 1000)) {
    spdlog::warn("viid: capture {} still queued after {} s: pushed again", id,
                 ctx_.options().sweep_after_ms / 1000);
    ctx_.queue().Push({std::move(id), {}, NowMs()});
    ++pushed;
  }
  return pushed;
}

void ViidService::RunSweeper() {
  while (!ctx_.Stopping()) {
    ctx_.WaitFor(std::chrono::milliseconds(ctx_.options().sweep_interval_ms));
    if (ctx_.Stopping()) break;
    try {
      SweepOnce();
    } catch (const std::exception& e) {
      spdlog::warn("viid: sweeper: {}", e.what());
    }
  }
}

ViidCounters ViidService::Counters() {
  const ViidStats& s = ctx_.stats();
  ViidCounters c;
  c.received = s.received;
  c.recognised = s.recognised;
  c.accepted = s.accepted;
  c.strangers = s.strangers;
  c.rejected = s.rejected;
  c.no_face = s.no_face;
  c.failed = s.failed;
  c.alarms = s.alarms;
  c.queued = int64_t(ctx_.queue().size());
  c.busy = workers_.busy();
  c.latency_mean_ms = c.recognised ? double(s.latency_sum_ms) / double(c.recognised) : 0.0;
  c.latency_max_ms = s.latency_max_ms;
  c.clusters = int64_t(strangers_.size());
  return c;
}

}  // namespace anju::server
