#include "server/runtime/nats_event_bus.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "core/error.h"
#include "core/uuid.h"

namespace anju::server::runtime {

namespace {

constexpr int64_t kNsPerMs = 1'000'000;

bool IsToken(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

}  // namespace

// One push consumer's subscription and what its callback reaches. The callback holds MU
// while it runs, so the bus, once it has cleared BUS under MU, is never called again; the
// library frees this with its last callback (on completion).
//
// The consumer is a plain ephemeral one, not the library's "ordered" consumer: libnats
// 3.4 recreates an ordered consumer on a thread of its own that frees the consumer's name
// while natsSubscription_Unsubscribe may still be formatting it (a use-after-free that
// AddressSanitizer caught after a server restart). The ordering is kept here instead: a
// gap in the consumer's sequence marks the tail broken and the bus follows again.
struct NatsEventBus::Tail {
  std::mutex mu;
  NatsEventBus* bus = nullptr;
  natsSubscription* sub = nullptr;
  uint64_t next_delivery = 1;  // the consumer sequence the next message must carry
  bool broken = false;
};

NatsEventBus::NatsEventBus(std::shared_ptr<NatsConnection> conn, NatsEventBusOptions options)
    : conn_(std::move(conn)), options_(std::move(options)) {
  if (options_.cache < 1) options_.cache = 1;
  stream_ = conn_->StreamName(options_.name);
  subject_prefix_ = conn_->Subject(options_.name) + ".";
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const std::string all = subject_prefix_ + ">";
  const char* subjects[] = {all.c_str()};
  sc.Name = stream_.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_LimitsPolicy;
  sc.Storage = js_FileStorage;
  sc.Discard = js_DiscardOld;  // a live stream: the oldest go first
  sc.MaxMsgs = options_.max_msgs;
  sc.MaxBytes = options_.max_bytes;
  sc.MaxAge = options_.max_age.count() * kNsPerMs;
  sc.Duplicates = 60'000 * kNsPerMs;  // a publish retried after a lost answer counts once
  sc.Replicas = conn_->options().replicas;
  conn_->EnsureStream(sc);

  uint64_t last = 0;
  conn_->Retry("stream info " + stream_, [&](jsErrCode* jerr) {
    jsStreamInfo* si = nullptr;
    const natsStatus s = js_GetStreamInfo(&si, conn_->js(), stream_.c_str(), nullptr, jerr);
    if (s == NATS_OK) last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return s;
  });
  last_seq_ = last;
  Follow(last >= options_.cache ? last - options_.cache + 1 : 1);
  // After a reconnection the server may have restarted and lost the consumer (it lives
  // in memory): the next reader follows the stream again from the cache's end.
  reconnect_listener_ = conn_->AddReconnectListener([this] { stale_ = true; });
}

NatsEventBus::~NatsEventBus() {
  conn_->RemoveReconnectListener(reconnect_listener_);
  Close();
  std::lock_guard follow(follow_mu_);
  std::shared_ptr<Tail> tail;
  {
    std::lock_guard lock(mu_);
    tail.swap(tail_);
  }
  if (tail) {
    natsSubscription* sub;
    {
      std::lock_guard lock(tail->mu);
      tail->bus = nullptr;
      sub = tail->sub;
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
}

void NatsEventBus::Follow(uint64_t from) {
  std::lock_guard follow(follow_mu_);
  auto tail = std::make_shared<Tail>();
  tail->bus = this;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Config.AckPolicy = js_AckNone;  // a live view: nothing is redelivered, gaps are refetched
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = std::max<uint64_t>(from, 1);
  so.Config.MemoryStorage = true;  // lost with a server restart, which a reconnection handles
  so.Config.InactiveThreshold = 30'000 * kNsPerMs;  // a vanished process leaves none behind
  const std::string all = subject_prefix_ + ">";
  auto* ref = new std::shared_ptr<Tail>(tail);
  natsSubscription* sub = nullptr;
  try {
    conn_->Retry("follow stream " + stream_, [&](jsErrCode* jerr) {
      return js_Subscribe(
          &sub, conn_->js(), all.c_str(),
          [](natsConnection*, natsSubscription*, natsMsg* m, void* p) {
            auto& t = **static_cast<std::shared_ptr<Tail>*>(p);
            std::lock_guard lock(t.mu);
            if (t.bus && !t.broken) t.bus->OnMessage(t, m);
            natsMsg_Destroy(m);
          },
          ref, nullptr, &so, jerr);
    });
  } catch (...) {
    delete ref;
    throw;
  }
  natsSubscription_SetOnCompleteCB(
      sub, [](void* p) { delete static_cast<std::shared_ptr<Tail>*>(p); }, ref);
  tail->sub = sub;
  std::shared_ptr<Tail> old;
  {
    std::lock_guard lock(mu_);
    old.swap(tail_);
    tail_ = tail;
  }
  if (old) {
    natsSubscription* old_sub;
    {
      std::lock_guard lock(old->mu);
      old->bus = nullptr;
      old_sub = old->sub;
    }
    natsSubscription_Unsubscribe(old_sub);
    natsSubscription_Destroy(old_sub);
  }
}

std::optional<BusMessage> NatsEventBus::Decode(natsMsg* m, uint64_t seq) const {
  const std::string subject = natsMsg_GetSubject(m);
  if (subject.rfind(subject_prefix_, 0) != 0) return std::nullopt;
  BusMessage out;
  out.seq = seq;
  out.event = subject.substr(subject_prefix_.size());
  const std::string_view body(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
  out.data = nlohmann::json::parse(body, nullptr, false);
  if (out.data.is_discarded()) out.data = std::string(body);  // not ours: passed on as text
  return out;
}

void NatsEventBus::OnMessage(Tail& tail, natsMsg* m) {
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m) != NATS_OK) return;
  const uint64_t seq = meta->Sequence.Stream;
  const uint64_t delivery = meta->Sequence.Consumer;
  jsMsgMetaData_Destroy(meta);
  if (delivery != tail.next_delivery) {
    // Messages were lost on the way (a slow reader's overflow): follow again after the
    // last one cached, at the next read.
    tail.broken = true;
    spdlog::warn("event bus {}: delivery {} where {} was due; following again", stream_, delivery,
                 tail.next_delivery);
    {
      std::lock_guard lock(mu_);
      stale_ = true;
    }
    cv_.notify_all();
    return;
  }
  ++tail.next_delivery;
  auto msg = Decode(m, seq);
  if (!msg) return;
  {
    std::lock_guard lock(mu_);
    if (!cache_.empty() && seq <= cache_.back().seq) return;  // seen (a restarted consumer)
    cache_.push_back(std::move(*msg));
    while (cache_.size() > options_.cache) cache_.pop_front();
    last_seq_ = std::max(last_seq_, seq);
  }
  cv_.notify_all();
}

uint64_t NatsEventBus::Publish(std::string event, nlohmann::json data) {
  if (!IsToken(event))
    throw Error(ErrorCode::kInvalidArgument, "bus event name must be a subject token: " + event);
  const std::string subject = subject_prefix_ + event;
  const std::string body = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string id = NewUuid();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = id.c_str();
  po.ExpectStream = stream_.c_str();
  uint64_t seq = 0;
  conn_->Retry("publish to " + stream_, [&](jsErrCode* jerr) {
    jsPubAck* ack = nullptr;
    const natsStatus s =
        js_Publish(&ack, conn_->js(), subject.c_str(), body.data(), int(body.size()), &po, jerr);
    if (s == NATS_OK) seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return s;
  });
  {
    std::lock_guard lock(mu_);
    last_seq_ = std::max(last_seq_, seq);
    published_ = std::max(published_, seq);
  }
  return seq;
}

std::vector<BusMessage> NatsEventBus::FromStream(uint64_t after, uint64_t before, size_t max) {
  std::vector<BusMessage> out;
  uint64_t first = 0;
  try {
    conn_->Retry("stream info " + stream_, [&](jsErrCode* jerr) {
      jsStreamInfo* si = nullptr;
      const natsStatus s = js_GetStreamInfo(&si, conn_->js(), stream_.c_str(), nullptr, jerr);
      if (s == NATS_OK) first = si->State.FirstSeq;
      jsStreamInfo_Destroy(si);
      return s;
    });
  } catch (const Error& e) {
    spdlog::warn("event bus {}: {}", stream_, e.what());
    return out;
  }
  for (uint64_t seq = std::max(after + 1, first); seq < before && out.size() < max; ++seq) {
    natsMsg* m = nullptr;
    jsErrCode jerr = jsErrCode(0);
    const natsStatus s = js_GetMsg(&m, conn_->js(), stream_.c_str(), seq, nullptr, &jerr);
    if (s == NATS_OK) {
      if (auto msg = Decode(m, seq)) out.push_back(std::move(*msg));
      natsMsg_Destroy(m);
    } else if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
      continue;  // dropped by the stream's limits
    } else {
      spdlog::warn("event bus {}: message {}: {}", stream_, seq, natsStatus_GetText(s));
      break;
    }
  }
  return out;
}

std::vector<BusMessage> NatsEventBus::Read(uint64_t after, std::chrono::milliseconds timeout,
                                           size_t max) {
  if (stale_.exchange(false)) {
    uint64_t resume = 1;
    {
      std::lock_guard lock(mu_);
      resume = cache_.empty() ? (last_seq_ >= options_.cache ? last_seq_ - options_.cache + 1 : 1)
                              : cache_.back().seq + 1;
    }
    try {
      Follow(resume);
    } catch (const Error& e) {
      stale_ = true;
      spdlog::warn("event bus {}: {}", stream_, e.what());
    }
  }
  std::vector<BusMessage> out;
  uint64_t gap_before = 0;
  {
    std::unique_lock lock(mu_);
    // Until there is something new, and (read-your-writes) the cache has caught up with
    // what this process published.
    cv_.wait_for(lock, timeout, [&] {
      return closed_ || stale_ ||
             (!cache_.empty() && cache_.back().seq > after && cache_.back().seq >= published_);
    });
    if (cache_.empty() || max == 0) return out;
    if (after + 1 >= cache_.front().seq) {
      for (const auto& m : cache_) {
        if (m.seq <= after) continue;
        out.push_back(m);
        if (out.size() >= max) break;
      }
      return out;
    }
    gap_before = cache_.front().seq;
  }
  // Further behind than the cache: the older part straight from the stream.
  out = FromStream(after, gap_before, max);
  std::lock_guard lock(mu_);
  const uint64_t from = out.empty() ? after : out.back().seq;
  for (const auto& m : cache_) {
    if (out.size() >= max) break;
    if (m.seq > from) out.push_back(m);
  }
  return out;
}

uint64_t NatsEventBus::last_seq() const {
  std::lock_guard lock(mu_);
  return last_seq_;
}

void NatsEventBus::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace anju::server::runtime
