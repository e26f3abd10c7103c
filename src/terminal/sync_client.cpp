#include "terminal/sync_client.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "protocol/feature_codec.h"

namespace anju::terminal {

namespace {

// A server answer that is not shaped as the protocol says.
[[noreturn]] void Malformed(const std::string& what, const std::exception& e) {
  throw Error(ErrorCode::kCorrupt,
              "服务器应答格式错误 / malformed " + what + " answer from the server: " + e.what());
}

}  // namespace

nlohmann::json SyncStats::ToJson() const {
  return {{"gallery_version", gallery_version},
          {"latest_version", latest_version},
          {"pages", pages},
          {"changes", changes},
          {"commands", commands},
          {"heartbeats", heartbeats},
          {"failures", failures},
          {"link", LinkStateName(link)},
          {"last_error", last_error},
          {"last_success_ms", last_success_ms}};
}

SyncClient::SyncClient(LocalState& state, protocol::DeviceClient& client,
                       crypto::DataKey device_data_key, CommandRunner& commands,
                       SyncOptions options, HeartbeatFields fields)
    : state_(state),
      client_(client),
      data_key_(std::move(device_data_key)),
      commands_(commands),
      options_(std::move(options)),
      fields_(std::move(fields)) {}

SyncClient::~SyncClient() {
  Stop();
}

size_t SyncClient::SyncGallery() {
  size_t applied = 0;
  int64_t since = state_.gallery_version();
  // A server restored from an older backup answers a `since` beyond its latest as since=0:
  // the whole gallery comes again and replaces what this terminal holds. Its pages are
  // collected and applied as one batch, so a half-received resync changes nothing.
  bool resync = false;
  std::vector<GalleryChange> full;
  for (;;) {
    const std::string path = "/api/v1/device/gallery?since=" + std::to_string(since) +
                             "&limit=" + std::to_string(options_.page_limit);
    const nlohmann::json page = client_.CallJson("GET", path);
    // The site's levels come with every answer (docs/device-protocol.md); a bad value is the
    // terminal's to refuse, it does not stop the gallery.
    if (options_.thresholds && page.is_object()) {
      try {
        options_.thresholds(page.contains("thresholds") ? page["thresholds"] : nlohmann::json());
      } catch (const std::exception& e) {
        spdlog::warn("服务器下发的阈值无效 / the server's site levels were refused: {}", e.what());
      }
    }
    std::vector<GalleryChange> changes;
    int64_t version = 0, answered_since = since;
    bool more = false;
    try {
      const std::string model = page.at("model_version").get<std::string>();
      if (model != state_.model_version())
        throw Error(ErrorCode::kInvalidArgument,
                    "服务器人脸库模型版本不符 / the server's gallery uses model '" + model +
                        "', this terminal '" + state_.model_version() + "'");
      version = page.at("version").get<int64_t>();
      answered_since = page.value("since", since);
      more = page.value("more", false);
      latest_ = page.value("latest", version);
      for (const auto& c : page.at("changes")) {
        GalleryChange g;
        g.person = c.at("person").get<std::string>();
        const std::string op = c.at("op").get<std::string>();
        if (op == "remove") {
          g.op = GalleryChange::Op::kRemove;
          g.reason = c.value("reason", "");
        } else if (op == "upsert") {
          g.display_name = c.value("display_name", "");
          if (c.contains("rules") && !c.at("rules").is_null()) g.rules = c.at("rules");
          for (const auto& t : c.at("templates"))
            g.templates.push_back(protocol::OpenFeature(
                data_key_, g.person, t.at("feature").get<std::string>(), state_.dim()));
        } else {
          throw Error(ErrorCode::kCorrupt, "unknown gallery op '" + op + "'");
        }
        changes.push_back(std::move(g));
      }
    } catch (const nlohmann::json::exception& e) {
      Malformed("gallery", e);
    }
    if (answered_since == 0 && since > 0 && !resync) {
      spdlog::warn(
          "服务器人脸库版本回退，完整重新同步 / the server's gallery went back (asked since {}), "
          "taking the whole gallery again",
          since);
      resync = true;
    }
    if (resync) {
      for (auto& c : changes)
        if (c.op == GalleryChange::Op::kUpsert) full.push_back(std::move(c));
      if (more) {
        since = version;
        continue;
      }
      state_.ReplaceAll(full, version);
      applied += full.size();
      changes_ += full.size();
      ++pages_;
      spdlog::info("人脸库已完整同步 / gallery replaced at version {} ({} persons)", version,
                   full.size());
      return applied;
    }
    if (version < since)
      throw Error(ErrorCode::kCorrupt, "gallery version went back from " + std::to_string(since) +
                                           " to " + std::to_string(version));
    if (version == since && changes.empty()) return applied;
    state_.ApplyBatch(changes, version);
    applied += changes.size();
    changes_ += changes.size();
    ++pages_;
    if (!changes.empty())
      spdlog::info("人脸库已同步 / gallery synced to version {} ({} changes)", version,
                   changes.size());
    if (!more) return applied;
    since = version;
  }
}

size_t SyncClient::PollCommands() {
  const nlohmann::json answer = client_.CallJson("GET", "/api/v1/device/commands");
  nlohmann::json ids = nlohmann::json::array();
  size_t run = 0;
  try {
    for (const auto& c : answer.at("commands")) {
      if (commands_.Execute(c)) ++run;
      ids.push_back(c.at("id"));
    }
  } catch (const nlohmann::json::exception& e) {
    Malformed("commands", e);
  }
  if (!ids.empty()) {
    const nlohmann::json body = {{"ids", ids}};
    client_.CallJson("POST", "/api/v1/device/commands/ack", &body);
    commands_run_ += ids.size();
  }
  return run;
}

void SyncClient::Heartbeat() {
  nlohmann::json body = {{"software_version", options_.software_version},
                         {"gallery_version", state_.gallery_version()}};
  if (fields_) body.update(fields_());
  const nlohmann::json answer = client_.CallJson("POST", "/api/v1/device/heartbeat", &body);
  if (answer.contains("latest_gallery_version") && answer["latest_gallery_version"].is_number())
    latest_ = answer["latest_gallery_version"].get<int64_t>();
  ++heartbeats_;
}

bool SyncClient::RunOnce() {
  try {
    SyncGallery();
    PollCommands();
    // Due at start and every heartbeat_interval; a refused heartbeat waits for the next
    // interval rather than failing every round (the gallery must keep flowing).
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_heartbeat_) {
      next_heartbeat_ = now + options_.heartbeat_interval;
      Heartbeat();
    }
    link_.Success();
    return true;
  } catch (...) {
    ++failures_;
    link_.Failure(std::current_exception());
    return false;
  }
}

void SyncClient::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void SyncClient::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SyncClient::RequestSync() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void SyncClient::Loop() {
  Backoff backoff{options_.backoff_initial, options_.backoff_max};
  for (;;) {
    const bool ok = RunOnce();
    const auto delay = ok ? (backoff.Reset(), options_.poll_interval) : backoff.Fail();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, delay, [&] { return stop_ || wake_; });
    if (stop_) return;
    wake_ = false;
  }
}

SyncStats SyncClient::stats() const {
  SyncStats s;
  s.gallery_version = state_.gallery_version();
  s.latest_version = latest_;
  s.pages = pages_;
  s.changes = changes_;
  s.commands = commands_run_;
  s.heartbeats = heartbeats_;
  s.failures = failures_;
  s.link = link_.state();
  s.last_error = link_.last_error();
  s.last_success_ms = link_.last_success_ms();
  return s;
}

}  // namespace anju::terminal
