#include "server/runtime/nats_work_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "core/clock.h"
#include "core/error.h"

namespace anju::server::runtime {

namespace {

constexpr const char* kEnqueuedHeader = "Anju-Enqueued-Ms";
constexpr int64_t kNsPerMs = 1'000'000;

std::string Header(natsMsg* m, const char* key) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, key, &v) != NATS_OK || v == nullptr) return {};
  return v;
}

}  // namespace

NatsWorkQueue::NatsWorkQueue(std::shared_ptr<NatsConnection> conn, NatsWorkQueueOptions options)
    : conn_(std::move(conn)), options_(std::move(options)) {
  if (options_.fetch_batch < 1) options_.fetch_batch = 1;
  stream_ = conn_->StreamName("work_" + options_.name);
  subject_ = conn_->Subject("work." + options_.name);
  consumer_ = "workers";
  Setup();
}

NatsWorkQueue::~NatsWorkQueue() {
  Close();
  std::lock_guard fetch(fetch_mu_);
  std::lock_guard lock(mu_);
  // Not acked: the server hands these out again after their ack wait, as after a crash.
  for (auto& [token, m] : handed_) natsMsg_Destroy(m);
  handed_.clear();
  if (sub_) natsSubscription_Destroy(sub_);
}

void NatsWorkQueue::Setup() {
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {subject_.c_str()};
  sc.Name = stream_.c_str();
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Retention = js_WorkQueuePolicy;  // an acked item leaves the stream
  sc.Storage = js_FileStorage;
  sc.Discard = js_DiscardNew;  // full: refuse new items, never drop waiting ones
  sc.MaxAge = options_.max_age.count() * kNsPerMs;
  sc.MaxBytes = options_.max_bytes;
  sc.Duplicates = options_.dedup_window.count() * kNsPerMs;
  sc.Replicas = conn_->options().replicas;
  conn_->EnsureStream(sc);

  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = consumer_.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = options_.ack_wait.count() * kNsPerMs;
  cc.MaxDeliver = options_.max_deliver;
  cc.MaxAckPending = 20'000;
  cc.FilterSubject = subject_.c_str();
  cc.DeliverPolicy = js_DeliverAll;
  bool exists = false;
  conn_->Retry("create consumer " + stream_ + "/" + consumer_, [&](jsErrCode* jerr) {
    const natsStatus s = js_AddConsumer(nullptr, conn_->js(), stream_.c_str(), &cc, nullptr, jerr);
    if (s == NATS_ERR && (*jerr == JSConsumerNameExistErr || *jerr == JSConsumerExistingActiveErr ||
                          *jerr == JSConsumerCreateErr)) {
      exists = true;  // another ack wait or max deliver: brought to these below
      return NATS_OK;
    }
    return s;
  });
  if (exists)
    conn_->Retry("update consumer " + stream_ + "/" + consumer_, [&](jsErrCode* jerr) {
      return js_UpdateConsumer(nullptr, conn_->js(), stream_.c_str(), &cc, nullptr, jerr);
    });

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Consumer = consumer_.c_str();  // bind: the library must not create nor delete it
  natsSubscription* sub = nullptr;
  conn_->Retry("subscribe to " + stream_ + "/" + consumer_, [&](jsErrCode* jerr) {
    return js_PullSubscribe(&sub, conn_->js(), subject_.c_str(), consumer_.c_str(), nullptr, &so,
                            jerr);
  });
  if (sub_) natsSubscription_Destroy(sub_);
  sub_ = sub;
}

void NatsWorkQueue::Push(WorkItem item) {
  if (item.id.empty()) throw Error(ErrorCode::kInvalidArgument, "work item without an id");
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
  }
  natsMsg* m = nullptr;
  natsStatus s =
      natsMsg_Create(&m, subject_.c_str(), nullptr, item.payload.data(), int(item.payload.size()));
  if (s != NATS_OK) ThrowNats("work item message", s);
  const std::string enqueued = std::to_string(item.enqueued_ms ? item.enqueued_ms : NowMs());
  natsMsgHeader_Set(m, kEnqueuedHeader, enqueued.c_str());
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MsgId = item.id.c_str();  // the server drops a second copy within the duplicate window
  po.ExpectStream = stream_.c_str();
  try {
    // Retrying is safe: the message id makes a publish whose answer was lost count once.
    conn_->Retry("push work item " + item.id + " to " + stream_, [&](jsErrCode* jerr) {
      jsPubAck* ack = nullptr;
      const natsStatus st = js_PublishMsg(&ack, conn_->js(), m, &po, jerr);
      jsPubAck_Destroy(ack);
      return st;
    });
  } catch (...) {
    natsMsg_Destroy(m);
    throw;
  }
  natsMsg_Destroy(m);
}

WorkItem NatsWorkQueue::ToItem(natsMsg* m) {
  WorkItem item;
  item.id = Header(m, "Nats-Msg-Id");
  item.payload.assign(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
  const std::string enqueued = Header(m, kEnqueuedHeader);
  item.enqueued_ms = enqueued.empty() ? 0 : std::stoll(enqueued);
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
    item.deliveries = int(meta->NumDelivered);
    if (item.enqueued_ms == 0) item.enqueued_ms = meta->Timestamp / kNsPerMs;
    jsMsgMetaData_Destroy(meta);
  }
  return item;
}

std::optional<WorkItem> NatsWorkQueue::Pop(std::chrono::milliseconds timeout) {
  using SteadyClock = std::chrono::steady_clock;
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (closed_) return std::nullopt;
      if (!fetched_.empty()) {
        natsMsg* m = fetched_.front();
        fetched_.pop_front();
        WorkItem item = ToItem(m);
        item.token = ++next_token_;
        handed_[item.token] = m;
        return item;
      }
    }
    std::unique_lock fetch(fetch_mu_, std::defer_lock);
    if (!fetch.try_lock_until(deadline)) return std::nullopt;
    {
      std::lock_guard lock(mu_);
      if (!fetched_.empty()) continue;  // another thread fetched meanwhile
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() < 1) return std::nullopt;
    if (!sub_ && NowMs() >= next_setup_ms_) {
      try {
        Setup();
      } catch (const Error& e) {
        next_setup_ms_ = NowMs() + 1000;
        spdlog::warn("work queue {}: {}", stream_, e.what());
      }
    }
    if (!sub_) {
      fetch.unlock();
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(200)));
      continue;
    }
    // Slices of at most 200 ms, so that Close is noticed soon.
    natsMsgList list{nullptr, 0};
    jsErrCode jerr = jsErrCode(0);
    const natsStatus s = natsSubscription_Fetch(&list, sub_, options_.fetch_batch,
                                                std::min<int64_t>(left.count(), 200), &jerr);
    if (s == NATS_OK) {
      std::lock_guard lock(mu_);
      for (int i = 0; i < list.Count; ++i) {
        fetched_.push_back(list.Msgs[i]);
        list.Msgs[i] = nullptr;  // ours now
      }
    }
    natsMsgList_Destroy(&list);
    if (s == NATS_OK || s == NATS_TIMEOUT) continue;
    if (IsTransient(s, jerr)) {
      // The server is away: the connection reconnects by itself; wait a little.
      fetch.unlock();
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
      continue;
    }
    // The consumer or the stream is gone (a server that lost its store): set them up again.
    spdlog::warn("work queue {}: fetch failed: {} [{}]; setting it up again", stream_,
                 natsStatus_GetText(s), int(jerr));
    natsSubscription_Destroy(sub_);
    sub_ = nullptr;
  }
}

natsMsg* NatsWorkQueue::Take(uint64_t token) {
  std::lock_guard lock(mu_);
  auto it = handed_.find(token);
  if (it == handed_.end()) return nullptr;
  natsMsg* m = it->second;
  handed_.erase(it);
  return m;
}

void NatsWorkQueue::Ack(const WorkItem& item) {
  natsMsg* m = Take(item.token);
  if (!m) return;  // acked already, or not a delivery of this queue
  try {
    if (options_.sync_ack) {
      conn_->Retry("ack " + item.id, [&](jsErrCode* jerr) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = conn_->options().request_timeout.count();
        return natsMsg_AckSync(m, &jo, jerr);
      });
    } else {
      const natsStatus s = natsMsg_Ack(m, nullptr);
      if (s != NATS_OK) ThrowNats("ack " + item.id, s);
    }
  } catch (const Error& e) {
    // The work is done; the item may come again after its ack wait (at least once).
    spdlog::warn("work queue {}: {}", stream_, e.what());
  }
  natsMsg_Destroy(m);
}

void NatsWorkQueue::Nak(const WorkItem& item, std::chrono::milliseconds delay) {
  natsMsg* m = Take(item.token);
  if (!m) return;
  const natsStatus s =
      delay.count() > 0 ? natsMsg_NakWithDelay(m, delay.count(), nullptr) : natsMsg_Nak(m, nullptr);
  if (s != NATS_OK)  // lost: the ack wait hands it out again
    spdlog::warn("work queue {}: nak of {}: {}", stream_, item.id, natsStatus_GetText(s));
  natsMsg_Destroy(m);
}

void NatsWorkQueue::InProgress(const WorkItem& item) {
  std::lock_guard lock(mu_);
  auto it = handed_.find(item.token);
  if (it == handed_.end()) return;
  const natsStatus s = natsMsg_InProgress(it->second, nullptr);
  if (s != NATS_OK)
    spdlog::warn("work queue {}: in-progress of {}: {}", stream_, item.id, natsStatus_GetText(s));
}

size_t NatsWorkQueue::size() const {
  size_t n = 0;
  conn_->Retry("stream info " + stream_, [&](jsErrCode* jerr) {
    jsStreamInfo* si = nullptr;
    const natsStatus s = js_GetStreamInfo(&si, conn_->js(), stream_.c_str(), nullptr, jerr);
    if (s == NATS_OK) n = size_t(si->State.Msgs);
    jsStreamInfo_Destroy(si);
    return s;
  });
  return n;
}

void NatsWorkQueue::Close() {
  std::deque<natsMsg*> fetched;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    fetched.swap(fetched_);
  }
  // Fetched but never handed out: give them back to the other workers at once.
  for (natsMsg* m : fetched) {
    natsMsg_Nak(m, nullptr);
    natsMsg_Destroy(m);
  }
}

}  // namespace anju::server::runtime
