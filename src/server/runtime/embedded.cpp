#include "server/runtime/embedded.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "core/file_io.h"

namespace anju::server::runtime {

namespace fs = std::filesystem;

// ---- EventBus --------------------------------------------------------------------------

std::string EventBus::Sse(const BusMessage& m) {
  return "id: " + std::to_string(m.seq) + "\nevent: " + m.event +
         "\ndata: " + m.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
}

uint64_t InProcessBus::Publish(std::string event, nlohmann::json data) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = ++seq_;
    ring_.push_back({seq, std::move(event), std::move(data)});
    while (ring_.size() > capacity_) ring_.pop_front();
  }
  cv_.notify_all();
  return seq;
}

std::vector<BusMessage> InProcessBus::Read(uint64_t after, std::chrono::milliseconds timeout,
                                           size_t max) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || seq_ > after; });
  std::vector<BusMessage> out;
  for (const auto& m : ring_) {
    if (m.seq <= after) continue;
    out.push_back(m);
    if (out.size() >= max) break;
  }
  return out;
}

uint64_t InProcessBus::last_seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

void InProcessBus::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

// ---- WorkQueue -------------------------------------------------------------------------

void InProcessQueue::Push(WorkItem item) {
  {
    std::lock_guard lock(mu_);
    if (closed_ || !ids_.insert(item.id).second) return;
    if (item.enqueued_ms == 0) item.enqueued_ms = NowMs();
    item.deliveries = 0;
    items_.push_back(std::move(item));
  }
  cv_.notify_one();
}

std::optional<WorkItem> InProcessQueue::Pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Naked items whose delay is over join the queue.
    const int64_t now = NowMs();
    while (!delayed_.empty() && delayed_.begin()->first <= now) {
      items_.push_back(std::move(delayed_.begin()->second));
      delayed_.erase(delayed_.begin());
    }
    if (!items_.empty()) break;
    if (closed_) return std::nullopt;
    auto until = deadline;
    if (!delayed_.empty())
      until = std::min(until, std::chrono::steady_clock::now() +
                                  std::chrono::milliseconds(delayed_.begin()->first - now));
    if (cv_.wait_until(lock, until) == std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline && items_.empty() &&
        (delayed_.empty() || delayed_.begin()->first > NowMs()))
      return std::nullopt;
  }
  WorkItem item = std::move(items_.front());
  items_.pop_front();
  ++item.deliveries;
  item.token = ++next_token_;
  ++delivered_;
  return item;
}

void InProcessQueue::Ack(const WorkItem& item) {
  std::lock_guard lock(mu_);
  if (ids_.erase(item.id) && delivered_ > 0) --delivered_;
}

void InProcessQueue::Nak(const WorkItem& item, std::chrono::milliseconds delay) {
  {
    std::lock_guard lock(mu_);
    if (delivered_ > 0) --delivered_;
    if (closed_) return;
    delayed_.emplace(NowMs() + delay.count(), item);
  }
  cv_.notify_one();
}

size_t InProcessQueue::size() const {
  std::lock_guard lock(mu_);
  return items_.size() + delayed_.size() + delivered_;
}

void InProcessQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

// ---- Notifier --------------------------------------------------------------------------

class LocalNotifier::Sub final : public Notifier::Subscription {
 public:
  Sub(LocalNotifier& n, uint64_t id) : n_(n), id_(id) {}
  ~Sub() override {
    std::lock_guard lock(n_.mu_);
    n_.subs_.erase(id_);
  }

 private:
  LocalNotifier& n_;
  uint64_t id_;
};

void LocalNotifier::Publish(const std::string& topic, const nlohmann::json& message) {
  std::vector<Handler> handlers;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, sub] : subs_)
      if (sub.first == topic) handlers.push_back(sub.second);
  }
  for (const auto& h : handlers) h(message);
}

std::unique_ptr<Notifier::Subscription> LocalNotifier::Subscribe(const std::string& topic,
                                                                 Handler handler) {
  std::lock_guard lock(mu_);
  const uint64_t id = ++next_;
  subs_[id] = {topic, std::move(handler)};
  return std::make_unique<Sub>(*this, id);
}

// ---- BlobStore -------------------------------------------------------------------------

FileBlobStore::FileBlobStore(fs::path root, BlobSync sync) : root_(std::move(root)), sync_(sync) {
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw Error(ErrorCode::kIo, "cannot create " + root_.string() + ": " + ec.message());
}

fs::path FileBlobStore::PathOf(const std::string& key) const {
  const fs::path rel = fs::path(key).lexically_normal();
  if (key.empty() || rel.is_absolute() || (!rel.empty() && *rel.begin() == ".."))
    throw Error(ErrorCode::kInvalidArgument, "blob key leaves the store: " + key);
  return root_ / rel;
}

namespace {

[[noreturn]] void FailWith(const std::string& what, const fs::path& p, int err) {
  throw Error(IsDiskFull(err) ? ErrorCode::kStorageFull : ErrorCode::kIo,
              what + " " + p.string() + ": " + std::strerror(err));
}

// An open file (FD >= 0) or a directory (FD < 0, opened here) to fsync.
struct ToSync {
  int fd;
  fs::path path;
};

// fsyncs every item at once, one thread each (up to 32): the file system commits
// concurrent fsyncs in one journal transaction, so a batch of ten files and their
// directory costs about one fsync instead of eleven.
void SyncConcurrently(const std::vector<ToSync>& items) {
  const size_t threads = std::min<size_t>(items.size(), 32);
  std::vector<int> errors(items.size(), 0);
  auto work = [&](size_t first) {
    for (size_t i = first; i < items.size(); i += threads) {
      int fd = items[i].fd;
      if (fd < 0) fd = ::open(items[i].path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || ::fsync(fd) != 0) errors[i] = errno ? errno : EIO;
      if (fd >= 0 && items[i].fd < 0) ::close(fd);
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  if (threads) work(0);
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < items.size(); ++i)
    if (errors[i]) FailWith("fsync", items[i].path, errors[i]);
}

}  // namespace

void FileBlobStore::PutMany(
    const std::vector<std::pair<std::string, std::span<const uint8_t>>>& blobs) {
  // Write every file, then make files and new directories durable together (sync_): one
  // journal commit for the batch instead of one per file.
  std::vector<ToSync> files;
  std::set<fs::path> dirs;
  auto close_all = [&] {
    for (const auto& f : files) ::close(f.fd);
    files.clear();
  };
  try {
    for (const auto& [key, bytes] : blobs) {
      const fs::path p = PathOf(key);
      const fs::path dir = p.parent_path();
      if (!fs::exists(dir)) {
        // Each directory created here must reach the disk too (and its parent's entry).
        for (fs::path d = dir; !d.empty() && d != root_.parent_path() && !fs::exists(d);
             d = d.parent_path())
          dirs.insert(d.parent_path());
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) FailWith("cannot create", dir, ec.value());
      }
      dirs.insert(dir);
      const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) FailWith("cannot create", p, errno);
      files.push_back({fd, p});
      size_t done = 0;
      while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) FailWith("cannot write", p, errno);
        done += size_t(n);
      }
      if (sync_ == BlobSync::kPerFile) SyncFile(fd, p);
    }
    if (!files.empty()) {
      switch (sync_) {
        case BlobSync::kPerFile:
          for (const auto& d : dirs) SyncDir(d);
          break;
        case BlobSync::kSyncfs:
          SyncFileSystem(root_);
          break;
        case BlobSync::kParallel: {
          std::vector<ToSync> all = files;
          for (const auto& d : dirs) all.push_back({-1, d});
          SyncConcurrently(all);
          break;
        }
      }
    }
    close_all();
  } catch (...) {
    close_all();
    throw;
  }
}

std::vector<uint8_t> FileBlobStore::Get(const std::string& key) const {
  return ReadFileBytes(PathOf(key));
}

bool FileBlobStore::Exists(const std::string& key) const {
  std::error_code ec;
  return fs::is_regular_file(PathOf(key), ec);
}

std::optional<int64_t> FileBlobStore::Size(const std::string& key) const {
  std::error_code ec;
  const auto n = fs::file_size(PathOf(key), ec);
  if (ec) return std::nullopt;
  return int64_t(n);
}

bool FileBlobStore::Remove(const std::string& key) {
  std::error_code ec;
  return fs::remove(PathOf(key), ec);
}

void FileBlobStore::List(const std::string& prefix,
                         const std::function<bool(const std::string& key)>& fn) const {
  const fs::path start = prefix.empty() ? root_ : PathOf(prefix);
  std::error_code ec;
  if (!fs::exists(start, ec)) return;
  for (fs::recursive_directory_iterator it(start, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    if (!fn(it->path().lexically_relative(root_).generic_string())) return;
  }
}

void FileBlobStore::Prune(const std::string& prefix) {
  const fs::path start = prefix.empty() ? root_ : PathOf(prefix);
  std::error_code ec;
  if (!fs::is_directory(start, ec)) return;
  std::vector<fs::path> dirs;
  for (fs::recursive_directory_iterator it(start, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  // Deepest first: a parent is empty only once its emptied children are gone.
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return std::distance(a.begin(), a.end()) > std::distance(b.begin(), b.end());
  });
  for (const auto& d : dirs)
    if (fs::is_empty(d, ec) && !ec) fs::remove(d, ec);
}

// ---- SharedState -----------------------------------------------------------------------

void MemorySharedState::Sweep(int64_t now) {
  if (now < next_sweep_ms_) return;
  next_sweep_ms_ = now + 60'000;
  std::erase_if(entries_, [&](const auto& e) { return e.second.expires_ms <= now; });
}

int64_t MemorySharedState::Add(const std::string& key, int64_t delta,
                               std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  const int64_t now = NowMs();
  Sweep(now);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.expires_ms <= now)
    it = entries_.insert_or_assign(key, Entry{"0", now + ttl.count()}).first;
  const int64_t v = std::stoll(it->second.value) + delta;
  it->second.value = std::to_string(v);
  return v;
}

void MemorySharedState::Put(const std::string& key, std::string value,
                            std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  const int64_t now = NowMs();
  Sweep(now);
  entries_[key] = Entry{std::move(value), now + ttl.count()};
}

bool MemorySharedState::PutIfAbsent(const std::string& key, std::string value,
                                    std::chrono::milliseconds ttl) {
  std::lock_guard lock(mu_);
  const int64_t now = NowMs();
  Sweep(now);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.expires_ms > now) return false;
  entries_[key] = Entry{std::move(value), now + ttl.count()};
  return true;
}

std::optional<std::string> MemorySharedState::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.expires_ms <= NowMs()) return std::nullopt;
  return it->second.value;
}

void MemorySharedState::Remove(const std::string& key) {
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

}  // namespace anju::server::runtime
