#include "server/runtime/nats_connection.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"

namespace anju::server::runtime {

struct NatsConnection::Hooks {
  std::string url;
  std::atomic<uint64_t> reconnects{0};
  std::mutex mu;
  uint64_t next = 0;
  std::map<uint64_t, std::function<void()>> listeners;
};

namespace {

// The closure the library's callbacks get: a reference to the hooks, freed by the closed
// callback (the last one the library makes for a connection).
using HookRef = std::shared_ptr<NatsConnection::Hooks>;

}  // namespace

bool IsTransient(natsStatus s, jsErrCode jerr) {
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_IO_ERROR:
    case NATS_NO_SERVER:
    case NATS_STALE_CONNECTION:
      return true;
    case NATS_ERR:
      // JetStream answering while it is still recovering its streams after a start.
      return jerr == JSClusterNotAvailErr || jerr == JSClusterNotLeaderErr ||
             jerr == JSClusterNotAssignedErr;
    default:
      return false;
  }
}

std::string NatsLastError(natsStatus s) {
  natsStatus last = NATS_OK;
  const char* text = nats_GetLastError(&last);
  if (text == nullptr || last != s) return {};
  return text;
}

void ThrowNats(const std::string& what, natsStatus s, jsErrCode jerr) {
  std::string msg = "NATS: " + what + ": " + natsStatus_GetText(s);
  const std::string detail = NatsLastError(s);
  if (!detail.empty() && detail != natsStatus_GetText(s)) msg += " (" + detail + ")";
  if (jerr != 0) msg += " [JetStream error " + std::to_string(int(jerr)) + "]";
  ErrorCode code = ErrorCode::kInternal;
  if (IsTransient(s, jerr))
    code = ErrorCode::kUnavailable;
  else if (jerr == JSStreamWrongLastSequenceErr || jerr == JSStreamNameExistErr)
    code = ErrorCode::kConflict;
  else if (s == NATS_MAX_PAYLOAD || jerr == JSStreamMessageExceedsMaximumErr)
    code = ErrorCode::kTooLarge;
  else if (jerr == JSStorageResourcesExceededErr || jerr == JSStreamStoreFailedErr ||
           jerr == JSInsufficientResourcesErr || jerr == JSAccountResourcesExceededErr)
    code = ErrorCode::kStorageFull;
  else if (s == NATS_CONNECTION_CLOSED)
    code = ErrorCode::kUnavailable;
  else if (s == NATS_INVALID_ARG || s == NATS_INVALID_SUBJECT || s == NATS_ADDRESS_MISSING)
    code = ErrorCode::kInvalidArgument;
  throw Error(code, msg);
}

NatsConnection::NatsConnection(NatsOptions options)
    : options_(std::move(options)), hooks_(std::make_shared<Hooks>()) {
  hooks_->url = options_.url;
}

uint64_t NatsConnection::reconnects() const {
  return hooks_->reconnects.load();
}

std::shared_ptr<NatsConnection> NatsConnection::Connect(NatsOptions options) {
  if (options.prefix.empty() ||
      !std::all_of(options.prefix.begin(), options.prefix.end(),
                   [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }))
    throw Error(ErrorCode::kInvalidArgument,
                "NATS prefix must be letters, digits or '_': '" + options.prefix + "'");
  std::shared_ptr<NatsConnection> c(new NatsConnection(std::move(options)));
  const NatsOptions& o = c->options_;
  auto check = [&](natsStatus s, const char* what) {
    if (s != NATS_OK) ThrowNats(std::string("connection options: ") + what, s);
  };
  check(natsOptions_Create(&c->opts_), "create");
  check(natsOptions_SetURL(c->opts_, o.url.c_str()), "url");
  check(natsOptions_SetName(c->opts_, o.name.c_str()), "name");
  check(natsOptions_SetTimeout(c->opts_, o.connect_timeout.count()), "timeout");
  // Reconnect forever: a server that restarts is waited for, never given up on; what is
  // published meanwhile waits in the reconnect buffer.
  check(natsOptions_SetMaxReconnect(c->opts_, -1), "max reconnect");
  check(natsOptions_SetReconnectWait(c->opts_, o.reconnect_wait.count()), "reconnect wait");
  check(natsOptions_SetReconnectBufSize(c->opts_, 16 * 1024 * 1024), "reconnect buffer");
  // A peer that stops answering without closing (a cut cable) is noticed in ~15 s.
  check(natsOptions_SetPingInterval(c->opts_, 5000), "ping interval");
  check(natsOptions_SetMaxPingsOut(c->opts_, 3), "max pings out");
  auto* ref = new HookRef(c->hooks_);
  check(natsOptions_SetReconnectedCB(c->opts_, &NatsConnection::OnReconnected, ref),
        "reconnected callback");
  check(natsOptions_SetDisconnectedCB(c->opts_, &NatsConnection::OnDisconnected, ref),
        "disconnected callback");
  check(natsOptions_SetErrorHandler(c->opts_, &NatsConnection::OnAsyncError, ref), "error handler");
  check(natsOptions_SetClosedCB(
            c->opts_, [](natsConnection*, void* p) { delete static_cast<HookRef*>(p); }, ref),
        "closed callback");

  natsStatus s = natsConnection_Connect(&c->nc_, c->opts_);
  if (s != NATS_OK) {
    delete ref;  // no connection, so no closed callback
    c->nc_ = nullptr;
    const std::string detail = NatsLastError(s);
    throw Error(s == NATS_INVALID_ARG || s == NATS_ADDRESS_MISSING ? ErrorCode::kInvalidArgument
                                                                   : ErrorCode::kUnavailable,
                "NATS 服务器无法连接 / cannot reach the NATS server at " + o.url + ": " +
                    natsStatus_GetText(s) + (detail.empty() ? "" : " (" + detail + ")"));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.request_timeout.count();
  s = natsConnection_JetStream(&c->js_, c->nc_, &jo);
  if (s != NATS_OK) ThrowNats("JetStream context", s);
  jsAccountInfo* ai = nullptr;
  jsErrCode jerr = jsErrCode(0);
  s = js_GetAccountInfo(&ai, c->js_, nullptr, &jerr);
  if (s != NATS_OK)
    throw Error(ErrorCode::kUnavailable,
                "NATS 服务器未启用 JetStream / the NATS server at " + o.url +
                    " has no JetStream (start it with -js): " + natsStatus_GetText(s) +
                    (jerr ? " [JetStream error " + std::to_string(int(jerr)) + "]" : ""));
  jsAccountInfo_Destroy(ai);
  return c;
}

std::shared_ptr<NatsConnection> NatsConnection::ConnectWaiting(NatsOptions options,
                                                               const std::function<bool()>& stop,
                                                               std::chrono::milliseconds first,
                                                               std::chrono::milliseconds most) {
  auto wait = first;
  for (int attempt = 1;; ++attempt) {
    try {
      auto c = Connect(options);
      if (attempt > 1)
        spdlog::info(
            "NATS 服务器已连接（第 {} 次尝试）/ connected to the NATS server at {} "
            "(attempt {})",
            attempt, options.url, attempt);
      return c;
    } catch (const Error& e) {
      if (e.code() != ErrorCode::kUnavailable) throw;  // a malformed URL will not heal
      spdlog::warn(
          "NATS 服务器暂不可达，{:.1f} 秒后重试（第 {} 次）/ the NATS server is not reachable "
          "yet, retrying in {:.1f} s (attempt {}): {}",
          wait.count() / 1000.0, attempt, wait.count() / 1000.0, attempt, e.what());
    }
    // Slept in short steps so that SIGTERM stops a waiting process at once.
    const auto until = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < until) {
      if (stop && stop())
        throw Error(
            ErrorCode::kUnavailable,
            "等待 NATS 服务器时停止 / stopped while waiting for the NATS server at " + options.url);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    wait = std::min(most, wait * 2);
  }
}

NatsConnection::~NatsConnection() {
  if (js_) jsCtx_Destroy(js_);
  if (nc_) natsConnection_Destroy(nc_);
  if (opts_) natsOptions_Destroy(opts_);
}

void NatsConnection::Close() {
  if (nc_) natsConnection_Close(nc_);
}

bool NatsConnection::connected() const {
  return nc_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

void NatsConnection::OnReconnected(natsConnection*, void* p) {
  auto& hooks = **static_cast<HookRef*>(p);
  ++hooks.reconnects;
  spdlog::info("NATS: reconnected to {}", hooks.url);
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(hooks.mu);
    for (const auto& [id, fn] : hooks.listeners) fns.push_back(fn);
  }
  for (const auto& fn : fns) fn();
}

void NatsConnection::OnDisconnected(natsConnection* nc, void* p) {
  auto& hooks = **static_cast<HookRef*>(p);
  if (!natsConnection_IsClosed(nc))
    spdlog::warn("NATS: disconnected from {}; reconnecting", hooks.url);
}

void NatsConnection::OnAsyncError(natsConnection*, natsSubscription*, natsStatus s, void* p) {
  auto& hooks = **static_cast<HookRef*>(p);
  spdlog::warn("NATS ({}): {}", hooks.url, natsStatus_GetText(s));
}

uint64_t NatsConnection::AddReconnectListener(std::function<void()> fn) {
  std::lock_guard lock(hooks_->mu);
  const uint64_t id = ++hooks_->next;
  hooks_->listeners[id] = std::move(fn);
  return id;
}

void NatsConnection::RemoveReconnectListener(uint64_t id) {
  std::lock_guard lock(hooks_->mu);
  hooks_->listeners.erase(id);
}

std::string NatsConnection::Subject(std::string_view name) const {
  return options_.prefix + "." + std::string(name);
}

std::string NatsConnection::StreamName(std::string_view name) const {
  std::string out = options_.prefix + "_" + std::string(name);
  for (char& c : out) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      c = char(std::toupper(static_cast<unsigned char>(c)));
    else if (c != '-')
      c = '_';
  }
  return out;
}

std::string NatsConnection::BucketName(std::string_view name) const {
  std::string out = options_.prefix + "_" + std::string(name);
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  return out;
}

void NatsConnection::Retry(const std::string& what, const std::function<natsStatus(jsErrCode*)>& op,
                           std::chrono::milliseconds retry_for) const {
  const auto deadline =
      std::chrono::steady_clock::now() + (retry_for.count() > 0 ? retry_for : options_.retry_for);
  auto pause = std::chrono::milliseconds(50);
  for (;;) {
    jsErrCode jerr = jsErrCode(0);
    const natsStatus s = op(&jerr);
    if (s == NATS_OK) return;
    if (!IsTransient(s, jerr) || std::chrono::steady_clock::now() + pause >= deadline)
      ThrowNats(what, s, jerr);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(1000));
  }
}

void NatsConnection::EnsureStream(jsStreamConfig& cfg) const {
  const std::string name = cfg.Name;
  bool exists = false;
  Retry("create stream " + name, [&](jsErrCode* jerr) {
    const natsStatus s = js_AddStream(nullptr, js_, &cfg, nullptr, jerr);
    if (s == NATS_ERR && *jerr == JSStreamNameExistErr) {
      exists = true;  // with another configuration: brought to this one below
      return NATS_OK;
    }
    return s;
  });
  if (!exists) return;
  try {
    Retry("update stream " + name,
          [&](jsErrCode* jerr) { return js_UpdateStream(nullptr, js_, &cfg, nullptr, jerr); });
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) throw;
    throw Error(ErrorCode::kConflict,
                std::string(e.what()) + " (the stream exists with a setting that cannot change)");
  }
}

}  // namespace anju::server::runtime
