#include "terminal/uploader.h"

#include <spdlog/spdlog.h>

#include <set>

#include "core/error.h"
#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "protocol/json_limits.h"

namespace anju::terminal {

namespace {

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Bytes an item adds to the request body: base64 is 4/3 of the snapshot.
size_t WireSize(const store::OutboxItem& item) {
  return item.payload.size() + (item.attachment.size() + 2) / 3 * 4 + 160;
}

}  // namespace

nlohmann::json UploaderStats::ToJson() const {
  return {{"requests", requests},
          {"acked", acked},
          {"stored", stored},
          {"duplicates", duplicates},
          {"rejected", rejected},
          {"failures", failures},
          {"link", LinkStateName(link)},
          {"last_error", last_error},
          {"last_success_ms", last_success_ms}};
}

Uploader::Uploader(store::Outbox& outbox, protocol::DeviceClient& client, UploaderOptions options)
    : outbox_(outbox), client_(client), options_(options) {}

Uploader::~Uploader() {
  Stop();
}

nlohmann::json Uploader::EventJson(const store::OutboxItem& item, bool with_snapshot) const {
  nlohmann::json e = {{"id", item.id},
                      {"kind", item.kind},
                      {"created_ms", ToMs(item.created)},
                      {"payload", nlohmann::json::parse(item.payload)}};
  if (with_snapshot && !item.attachment.empty()) e["snapshot"] = crypto::ToBase64(item.attachment);
  return e;
}

size_t Uploader::UploadOnce() {
  std::vector<store::OutboxItem> items = outbox_.Peek(options_.max_items);
  if (items.empty()) return 0;
  size_t bytes = 0, n = 0;
  for (; n < items.size(); ++n) {
    bytes += WireSize(items[n]);
    if (n > 0 && bytes > options_.max_bytes) break;
  }
  items.resize(n);

  auto send = [&](bool with_snapshots) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& item : items) events.push_back(EventJson(item, with_snapshots));
    return client_.Call("POST", "/api/v1/device/events",
                        nlohmann::json{{"events", std::move(events)}}.dump());
  };
  protocol::Response r = send(true);
  if (r.status == 413 && items.size() == 1 && !items[0].attachment.empty()) {
    // One record whose snapshot alone is over the server's limit: the record matters
    // more than the picture, so it goes without it rather than blocking the queue.
    spdlog::warn(
        "记录 {} 的快照过大，不带快照上传 / snapshot of {} too large ({} B), sent without it",
        items[0].id, items[0].id, items[0].attachment.size());
    r = send(false);
  }
  if (r.status < 200 || r.status >= 300) {
    try {
      const auto j = protocol::ParseJson(r.body);
      throw protocol::ApiError(r.status, j.at("error").at("code").get<std::string>(),
                               j.at("error").at("message").get<std::string>());
    } catch (const protocol::ApiError&) {
      throw;
    } catch (const std::exception&) {  // not JSON, beyond the limits, or another shape
      throw protocol::ApiError(r.status, "http_" + std::to_string(r.status), r.body.substr(0, 200));
    }
  }
  ++requests_;

  std::set<std::string> sent;
  for (const auto& item : items) sent.insert(item.id);
  std::vector<std::string> ack;
  try {
    const auto j = protocol::ParseJson(r.body);
    auto take = [&](const char* list, std::atomic<uint64_t>& counter) {
      if (!j.contains(list)) return;
      for (const auto& v : j.at(list)) {
        const std::string id = v.is_string() ? v.get<std::string>() : v.at("id").get<std::string>();
        if (!sent.count(id)) continue;  // only what this request carried
        ack.push_back(id);
        ++counter;
      }
    };
    take("stored", stored_);
    take("duplicates", duplicates_);
    take("rejected", rejected_);
    if (j.contains("rejected"))
      for (const auto& v : j.at("rejected"))
        if (v.is_object())
          spdlog::warn("服务器拒收记录 / server quarantined event {}: {} {}", v.value("id", "?"),
                       v.value("code", ""), v.value("message", ""));
  } catch (const std::exception& e) {  // not JSON, beyond the limits, or another shape
    throw Error(ErrorCode::kCorrupt,
                std::string("服务器应答格式错误 / malformed events answer: ") + e.what());
  }
  const size_t removed = outbox_.Ack(ack);
  acked_ += removed;
  return ack.size();
}

size_t Uploader::Drain() {
  size_t total = 0;
  for (;;) {
    if (outbox_.Stats().count == 0) return total;
    const size_t n = UploadOnce();
    if (n == 0)
      throw Error(ErrorCode::kUnavailable,
                  "服务器未确认任何记录 / the server acknowledged none of the events sent");
    total += n;
  }
}

void Uploader::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Uploader::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Uploader::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

void Uploader::Loop() {
  Backoff backoff{options_.backoff_initial, options_.backoff_max};
  for (;;) {
    std::chrono::milliseconds delay = options_.idle_poll;
    try {
      bool more = false;
      if (outbox_.Stats().count > 0) {
        const size_t n = UploadOnce();
        const LinkState before = link_.state();
        link_.Success();
        if ((before == LinkState::kOffline || before == LinkState::kRefused) &&
            options_.on_reconnect)
          options_.on_reconnect();
        backoff.Reset();
        more = n > 0 && outbox_.Stats().count > 0;
        if (n == 0) delay = backoff.Fail();  // answered but nothing acknowledged
      }
      if (more) {
        std::lock_guard lock(mu_);
        if (stop_) return;
        continue;  // the backlog goes out back to back
      }
    } catch (...) {
      ++failures_;
      link_.Failure(std::current_exception());
      delay = backoff.Fail();
    }
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, delay, [&] { return stop_ || (wake_ && backoff.failures == 0); });
    if (stop_) return;
    wake_ = false;
  }
}

UploaderStats Uploader::stats() const {
  UploaderStats s;
  s.requests = requests_;
  s.acked = acked_;
  s.stored = stored_;
  s.duplicates = duplicates_;
  s.rejected = rejected_;
  s.failures = failures_;
  s.link = link_.state();
  s.last_error = link_.last_error();
  s.last_success_ms = link_.last_success_ms();
  return s;
}

}  // namespace anju::terminal
