#include "server/runtime/nats_kv.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "core/clock.h"
#include "core/error.h"
#include "core/uuid.h"

namespace anju::server::runtime {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr const char* kOperationHeader = "KV-Operation";  // as JetStream's own KV clients

}  // namespace

// ---- NatsKvBucket ----------------------------------------------------------------------

std::string NatsKvBucket::EncodeKey(const std::string& key) {
  if (key.empty()) return "=";
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : key) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '/') {
      out += char(c);
    } else {
      out += '=';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

NatsKvBucket::NatsKvBucket(std::shared_ptr<NatsConnection> conn, Options options)
    : conn_(std::move(conn)), options_(std::move(options)) {
  bucket_ = conn_->BucketName(options_.name);
  stream_ = "KV_" + bucket_;
  subject_prefix_ = "$KV." + bucket_ + ".";
  // The stream a JetStream key-value bucket is (so that `nats kv` tools read it too):
  // one message per key, direct gets, deletes as marker messages.
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const std::string all = subject_prefix_ + ">";
  const char* subjects[] = {all.c_str()};
  sc.Name = stream_.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_LimitsPolicy;
  sc.Storage = options_.memory ? js_MemoryStorage : js_FileStorage;
  sc.MaxMsgsPerSubject = 1;
  sc.Discard = js_DiscardNew;  // a full bucket refuses writes rather than losing keys
  sc.MaxAge = options_.ttl.count() * kNsPerMs;
  sc.MaxBytes = options_.max_bytes;
  sc.MaxMsgSize = options_.max_value_bytes + 1024;  // the value and its headers
  sc.Duplicates =
      (options_.ttl.count() > 0 ? std::min<int64_t>(options_.ttl.count(), 120'000) : 120'000) *
      kNsPerMs;
  sc.AllowRollup = true;
  sc.DenyDelete = true;
  sc.AllowDirect = true;
  sc.Replicas = conn_->options().replicas;
  conn_->EnsureStream(sc);
}

std::optional<NatsKvBucket::Entry> NatsKvBucket::Get(const std::string& key) const {
  const std::string subject = subject_prefix_ + EncodeKey(key);
  std::optional<Entry> out;
  jsOptions jo;
  jsOptions_Init(&jo);
  if (options_.patience.count() > 0) jo.Wait = options_.patience.count();
  conn_->Retry(
      "read " + bucket_ + " " + key,
      [&](jsErrCode* jerr) {
        natsMsg* m = nullptr;
        const natsStatus s =
            js_GetLastMsg(&m, conn_->js(), stream_.c_str(), subject.c_str(), &jo, jerr);
        if (s == NATS_NOT_FOUND || (s == NATS_ERR && *jerr == JSNoMessageFoundErr)) {
          out.reset();
          return NATS_OK;
        }
        if (s != NATS_OK) return s;
        Entry e;
        e.revision = natsMsg_GetSequence(m);
        e.value.assign(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
        const char* op = nullptr;
        if (natsMsgHeader_Get(m, kOperationHeader, &op) == NATS_OK && op != nullptr)
          e.deleted = std::string_view(op) == "DEL" || std::string_view(op) == "PURGE";
        natsMsg_Destroy(m);
        out = std::move(e);
        return NATS_OK;
      },
      options_.patience);
  return out;
}

std::optional<uint64_t> NatsKvBucket::Publish(const std::string& key, std::string_view value,
                                              bool del, std::optional<uint64_t> last) {
  if (value.size() > size_t(options_.max_value_bytes))
    throw Error(ErrorCode::kTooLarge, "value of " + key + " in " + bucket_ + " is " +
                                          std::to_string(value.size()) + " bytes, over " +
                                          std::to_string(options_.max_value_bytes));
  const std::string subject = subject_prefix_ + EncodeKey(key);
  natsMsg* m = nullptr;
  natsStatus s = natsMsg_Create(&m, subject.c_str(), nullptr, value.data(), int(value.size()));
  if (s != NATS_OK) ThrowNats("write " + bucket_ + " " + key, s);
  if (del) natsMsgHeader_Set(m, kOperationHeader, "DEL");
  // One id per write: a retry after a lost answer is recognised by the server as the same
  // write, not judged as a second one that lost the race against the first.
  const std::string id = NewUuid();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = id.c_str();
  po.ExpectStream = stream_.c_str();
  if (options_.patience.count() > 0) po.MaxWait = options_.patience.count();
  if (last) {
    if (*last == 0)
      po.ExpectNoMessage = true;
    else
      po.ExpectLastSubjectSeq = *last;
  }
  bool lost = false;
  uint64_t revision = 0;
  try {
    conn_->Retry(
        "write " + bucket_ + " " + key,
        [&](jsErrCode* jerr) {
          jsPubAck* ack = nullptr;
          const natsStatus st = js_PublishMsg(&ack, conn_->js(), m, &po, jerr);
          if (st == NATS_OK) revision = ack->Sequence;
          jsPubAck_Destroy(ack);
          if (st == NATS_ERR && *jerr == JSStreamWrongLastSequenceErr) {
            lost = true;
            return NATS_OK;
          }
          return st;
        },
        options_.patience);
  } catch (...) {
    natsMsg_Destroy(m);
    throw;
  }
  natsMsg_Destroy(m);
  if (lost) return std::nullopt;
  return revision;
}

uint64_t NatsKvBucket::Put(const std::string& key, std::string_view value) {
  return *Publish(key, value, false, std::nullopt);
}

std::optional<uint64_t> NatsKvBucket::Update(const std::string& key, std::string_view value,
                                             uint64_t last) {
  return Publish(key, value, false, last);
}

bool NatsKvBucket::Delete(const std::string& key, std::optional<uint64_t> last) {
  return Publish(key, {}, true, last).has_value();
}

// ---- NatsSharedState -------------------------------------------------------------------

namespace {

// A value as stored: "<expires_ms>\n<bytes>".
struct Stored {
  int64_t expires_ms = 0;
  std::string value;
};

std::optional<Stored> Unwrap(const std::optional<NatsKvBucket::Entry>& e) {
  if (!e || e->deleted) return std::nullopt;
  const size_t nl = e->value.find('\n');
  if (nl == std::string::npos) return std::nullopt;
  Stored s;
  const auto r = std::from_chars(e->value.data(), e->value.data() + nl, s.expires_ms);
  if (r.ec != std::errc() || r.ptr != e->value.data() + nl) return std::nullopt;
  s.value = e->value.substr(nl + 1);
  return s;
}

}  // namespace

NatsSharedState::NatsSharedState(std::shared_ptr<NatsConnection> conn,
                                 NatsSharedStateOptions options)
    : options_(std::move(options)),
      kv_(std::move(conn), NatsKvBucket::Options{options_.bucket,
                                                 options_.max_ttl,
                                                 options_.max_value_bytes + 32,
                                                 options_.max_bytes,
                                                 {},
                                                 options_.memory}) {}

std::string NatsSharedState::Wrap(int64_t expires_ms, std::string_view value) const {
  std::string out = std::to_string(expires_ms);
  out += '\n';
  out += value;
  return out;
}

void NatsSharedState::CheckSize(const std::string& key, std::string_view value) const {
  if (value.size() > size_t(options_.max_value_bytes))
    throw Error(ErrorCode::kTooLarge, "shared state " + key + ": value of " +
                                          std::to_string(value.size()) + " bytes is over " +
                                          std::to_string(options_.max_value_bytes));
}

void NatsSharedState::CheckTtl(std::chrono::milliseconds ttl) const {
  if (ttl > options_.max_ttl)
    throw Error(ErrorCode::kInvalidArgument, "shared state TTL " + std::to_string(ttl.count()) +
                                                 " ms is over the bucket's " +
                                                 std::to_string(options_.max_ttl.count()) +
                                                 " ms (NatsSharedStateOptions::max_ttl)");
}

int64_t NatsSharedState::Add(const std::string& key, int64_t delta, std::chrono::milliseconds ttl) {
  CheckTtl(ttl);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto entry = kv_.Get(key);
    const auto stored = Unwrap(entry);
    const int64_t now = NowMs();
    int64_t value = delta;
    int64_t expires = now + ttl.count();
    if (stored && stored->expires_ms > now) {  // a live counter keeps its expiry
      int64_t old = 0;
      const auto& v = stored->value;
      const auto r = std::from_chars(v.data(), v.data() + v.size(), old);
      if (r.ec != std::errc() || r.ptr != v.data() + v.size())
        throw Error(ErrorCode::kInvalidArgument, "shared state " + key + " is not a counter");
      value = old + delta;
      expires = stored->expires_ms;
    }
    if (kv_.Update(key, Wrap(expires, std::to_string(value)), entry ? entry->revision : 0))
      return value;
    // Another process wrote first: read again and add to what it wrote.
  }
  throw Error(ErrorCode::kConflict, "shared counter " + key + " kept changing; not added");
}

void NatsSharedState::Put(const std::string& key, std::string value,
                          std::chrono::milliseconds ttl) {
  CheckTtl(ttl);
  CheckSize(key, value);
  kv_.Put(key, Wrap(NowMs() + ttl.count(), value));
}

bool NatsSharedState::PutIfAbsent(const std::string& key, std::string value,
                                  std::chrono::milliseconds ttl) {
  CheckTtl(ttl);
  CheckSize(key, value);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto entry = kv_.Get(key);
    const auto stored = Unwrap(entry);
    const int64_t now = NowMs();
    if (stored && stored->expires_ms > now) return false;
    if (kv_.Update(key, Wrap(now + ttl.count(), value), entry ? entry->revision : 0)) return true;
    // Someone wrote meanwhile: whatever they wrote is live now, unless it was a delete.
  }
  throw Error(ErrorCode::kConflict, "shared state " + key + " kept changing; not set");
}

std::optional<std::string> NatsSharedState::Get(const std::string& key) const {
  auto stored = Unwrap(kv_.Get(key));
  if (!stored || stored->expires_ms <= NowMs()) return std::nullopt;
  return std::move(stored->value);
}

void NatsSharedState::Remove(const std::string& key) {
  kv_.Delete(key);
}

// ---- NatsLeader ------------------------------------------------------------------------

namespace {

std::string DefaultHolder() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + NewUuid().substr(0, 8);
}

}  // namespace

NatsLeader::NatsLeader(std::shared_ptr<NatsConnection> conn, NatsLeaderOptions options)
    : options_(std::move(options)),
      kv_(std::move(conn),
          NatsKvBucket::Options{options_.bucket, options_.lease, 1024, -1,
                                // IsLeader must stay cheap while the server is away.
                                std::max(options_.lease / 5, std::chrono::milliseconds(200))}) {
  if (options_.holder.empty()) options_.holder = DefaultHolder();
  thread_ = std::thread([this] { Run(); });
}

NatsLeader::~NatsLeader() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  std::lock_guard lock(mu_);
  for (auto& [job, lease] : leases_) {
    if (!lease.held) continue;
    try {
      kv_.Delete(job, lease.revision);  // only if still ours
    } catch (const Error& e) {
      spdlog::warn("lease {}: not released ({}); it runs out by itself", job, e.what());
    }
  }
}

bool NatsLeader::Valid(const Lease& lease, std::chrono::steady_clock::time_point now) const {
  return lease.held && now < lease.written + options_.lease - options_.lease / 5;
}

void NatsLeader::Refresh(const std::string& job, Lease& lease) {
  const auto sent = std::chrono::steady_clock::now();
  try {
    if (lease.held) {
      if (auto rev = kv_.Update(job, options_.holder, lease.revision)) {
        lease.revision = *rev;
        lease.written = sent;
        return;
      }
      lease.held = false;  // it ran out and someone else wrote
    }
    const auto e = kv_.Get(job);
    if (e && !e->deleted && e->value != options_.holder) return;  // another holder's
    // Free (never written, run out, released) or ours from before: take it on its revision.
    if (auto rev = kv_.Update(job, options_.holder, e ? e->revision : 0)) {
      lease.held = true;
      lease.revision = *rev;
      lease.written = sent;
    }
  } catch (const Error& err) {
    // The server is away: a lease is ours only as long as it surely has not run out.
    if (!Valid(lease, std::chrono::steady_clock::now())) lease.held = false;
    spdlog::warn("lease {}: {}", job, err.what());
  }
}

bool NatsLeader::IsLeader(const std::string& job) {
  std::lock_guard lock(mu_);
  Lease& lease = leases_[job];
  const auto now = std::chrono::steady_clock::now();
  if (lease.held && now < lease.written + options_.lease / 3) return true;
  Refresh(job, lease);
  return Valid(lease, std::chrono::steady_clock::now());
}

void NatsLeader::Release(const std::string& job) {
  std::lock_guard lock(mu_);
  auto it = leases_.find(job);
  if (it == leases_.end()) return;
  if (it->second.held) {
    try {
      kv_.Delete(job, it->second.revision);
    } catch (const Error& e) {
      spdlog::warn("lease {}: not released ({}); it runs out by itself", job, e.what());
    }
  }
  leases_.erase(it);
}

void NatsLeader::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, options_.lease / 3, [&] { return stop_; });
    if (stop_) break;
    for (auto& [job, lease] : leases_)
      if (lease.held) Refresh(job, lease);
  }
}

}  // namespace anju::server::runtime
