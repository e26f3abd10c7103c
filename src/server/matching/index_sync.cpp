#include "server/matching/index_sync.h"

#include <spdlog/spdlog.h>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "server/audit/sealing.h"
#include "server/storage/photo_repo.h"

namespace anju::server {

using storage::PhotoRepo;

namespace {

constexpr const char* kTopic = "gallery";
constexpr int64_t kBatch = 1000;
constexpr int64_t kPruneEveryMs = 3600 * 1000;

}  // namespace

IndexSync::IndexSync(db::Db& archive, match::FeatureIndex& index, const crypto::DataKey& key,
                     runtime::Notifier* notifier, IndexSyncOptions options)
    : archive_(archive), index_(index), key_(key), notifier_(notifier), options_(options) {}

IndexSync::~IndexSync() {
  Stop();
}

void IndexSync::LoadAll() {
  std::lock_guard apply(apply_mu_);
  LoadAllLocked();
}

void IndexSync::LoadAllLocked() {
  const std::string& version = index_.options().model_version;
  auto conn = archive_.AcquireReader();
  const int64_t head = PhotoRepo::FeatureLogBounds(conn).second;
  std::vector<std::pair<std::string, int64_t>> keys;
  std::vector<std::vector<float>> features;
  PhotoRepo::ForEachFeature(
      conn, version, [&](int64_t id, const std::string& code, std::span<const uint8_t> sealed) {
        keys.emplace_back(code, id);
        features.push_back(OpenFeatureAtRest(key_, code, sealed));
      });
  std::vector<match::FeatureIndex::Entry> entries;
  entries.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i)
    entries.push_back({keys[i].first, match::TemplateId(keys[i].second), features[i]});
  index_.Clear();
  index_.PutBatch(entries, version);
  applied_ = head;
}

size_t IndexSync::CatchUp() {
  std::lock_guard apply(apply_mu_);
  const std::string& version = index_.options().model_version;
  size_t persons = 0;
  for (;;) {
    std::vector<PhotoRepo::FeatureChange> changes;
    int64_t first = 0;
    {
      auto conn = archive_.AcquireReader();
      int64_t last = 0;
      std::tie(first, last) = PhotoRepo::FeatureLogBounds(conn);
      if (last <= applied_) return persons;
      if (first <= applied_ + 1 || applied_ == 0)
        changes = PhotoRepo::FeatureChangesAfter(conn, applied_, kBatch);
    }
    if (changes.empty() && first > applied_ + 1) {
      // The rows after ours were pruned: this process was away too long.
      spdlog::warn(
          "gallery index: the change log starts at {}, this process applied {}: "
          "reloading every feature code",
          first, applied_.load());
      LoadAllLocked();
      return persons + index_.persons();
    }
    if (changes.empty()) return persons;
    std::set<int64_t> ids;
    for (const auto& c : changes) ids.insert(c.person_id);
    for (int64_t id : ids) {
      std::optional<PhotoRepo::PersonFeatures> p;
      {
        auto conn = archive_.AcquireReader();
        p = PhotoRepo::FeaturesOf(conn, id, version);
      }
      if (!p) continue;  // never stored (its transaction was rolled back) or removed
      if (p->features.empty()) {
        index_.RemovePerson(p->code);
      } else {
        std::vector<std::vector<float>> opened;
        std::vector<match::TemplateInput> templates;
        for (const auto& [fid, sealed] : p->features)
          opened.push_back(OpenFeatureAtRest(key_, p->code, sealed));
        for (size_t i = 0; i < opened.size(); ++i)
          templates.push_back({opened[i], match::TemplateId(p->features[i].first)});
        index_.ReplacePerson(p->code, templates, version);
      }
      ++persons;
    }
    applied_ = changes.back().seq;
  }
}

void IndexSync::Announce(db::Conn& conn) {
  // Sent by the background thread, once for any number of changes (a batch import calls
  // this per person).
  conn.AfterCommit([this] {
    {
      std::lock_guard lock(mu_);
      announce_ = wake_ = true;
    }
    cv_.notify_all();
  });
}

void IndexSync::Start() {
  if (thread_.joinable()) return;
  if (notifier_)
    subscription_ = notifier_->Subscribe(kTopic, [this](const nlohmann::json&) {
      {
        std::lock_guard lock(mu_);
        wake_ = true;
      }
      cv_.notify_all();
    });
  thread_ = std::thread([this] { Run(); });
}

void IndexSync::Stop() {
  subscription_.reset();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void IndexSync::Run() {
  int64_t last_prune = 0;
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.poll, [this] { return stop_ || wake_; });
    if (stop_) break;
    wake_ = false;
    const bool announce = std::exchange(announce_, false);
    lock.unlock();
    if (announce && notifier_) {
      try {
        notifier_->Publish(kTopic, nlohmann::json::object());
      } catch (const std::exception& e) {
        // The others find the change at their next poll.
        spdlog::warn("gallery index: announcement not sent: {}", e.what());
      }
    }
    try {
      CatchUp();
      if (NowMs() - last_prune > kPruneEveryMs) {
        auto conn = archive_.Acquire();
        PhotoRepo::PruneFeatureLog(conn, NowMs() - options_.keep_ms);
        last_prune = NowMs();
      }
    } catch (const std::exception& e) {
      // The database is away: try again at the next poll.
      spdlog::warn("gallery index: catching up failed: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace anju::server
