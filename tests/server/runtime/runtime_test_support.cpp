#include "runtime_test_support.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "core/error.h"
#include "core/uuid.h"

namespace anju::server::runtime::testing {

namespace {
std::mutex g_mu;
std::unique_ptr<LocalNatsServer> g_server;
std::string g_skip;
bool g_tried = false;
}  // namespace

LocalNatsServer* SharedNats() {
  std::lock_guard lock(g_mu);
  if (!g_tried) {
    g_tried = true;
    try {
      g_server = std::make_unique<LocalNatsServer>();
    } catch (const Error& e) {
      g_skip = std::string("no nats-server for the NATS runtime tests: ") + e.what();
    }
  }
  return g_server.get();
}

std::string SkipReason() {
  std::lock_guard lock(g_mu);
  return g_skip;
}

std::string UniquePrefix() {
  std::string id = NewUuid();
  id.erase(std::remove(id.begin(), id.end(), '-'), id.end());
  return "t" + id.substr(0, 8);
}

std::shared_ptr<NatsConnection> Connect(const LocalNatsServer& server, const std::string& prefix) {
  NatsOptions o;
  o.url = server.url();
  o.prefix = prefix;
  o.name = "anju-test";
  o.retry_for = std::chrono::milliseconds(15'000);
  o.request_timeout = std::chrono::milliseconds(3000);
  o.reconnect_wait = std::chrono::milliseconds(100);
  return NatsConnection::Connect(o);
}

Peer::Peer(const std::vector<std::string>& args) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(ErrorCode::kInternal, "pipe");
  std::vector<std::string> all = {ANJU_RUNTIME_PEER};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0) throw Error(ErrorCode::kInternal, "fork");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(fds[1], 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  out_ = fds[0];
}

Peer::~Peer() {
  Kill();
  if (out_ >= 0) ::close(out_);
}

std::optional<std::string> Peer::ReadLine(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{out_, POLLIN, 0};
    if (::poll(&p, 1, int(left.count())) != 1) return std::nullopt;
    char buf[512];
    const ssize_t n = ::read(out_, buf, sizeof(buf));
    if (n <= 0) return std::nullopt;
    buffer_.append(buf, size_t(n));
  }
}

void Peer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace anju::server::runtime::testing
