#include "server/runtime/local_nats.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "core/error.h"

namespace anju::server::runtime {

namespace fs = std::filesystem;

namespace {

bool Executable(const fs::path& p) {
  return !p.empty() && ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p);
}

// A loopback port nobody listens on right now (the kernel's choice).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw Error(ErrorCode::kUnavailable, std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error(ErrorCode::kUnavailable, std::string("no free port: ") + std::strerror(errno));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// The first line the server sends ("INFO {...}"), or "" when nothing listens yet.
std::string InfoLine(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(port));
  std::string line;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    pollfd p{fd, POLLIN, 0};
    char buf[4096];
    while (line.find('\n') == std::string::npos && ::poll(&p, 1, 1000) == 1) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, size_t(n));
    }
  }
  ::close(fd);
  return line;
}

// Runs fork() on one thread that lives as long as the process. A child's PR_SET_PDEATHSIG
// fires when the *thread* that forked it ends, so a server started from a short-lived
// thread (a test that restarts it from a helper thread) would be killed with it.
pid_t ForkFromKeeper(const std::function<pid_t()>& fork_fn) {
  struct Keeper {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::packaged_task<pid_t()>> jobs;
  };
  static Keeper* keeper = [] {
    auto* k = new Keeper;  // never freed: its thread runs until the process ends
    std::thread([k] {
      for (;;) {
        std::packaged_task<pid_t()> job;
        {
          std::unique_lock lock(k->mu);
          k->cv.wait(lock, [&] { return !k->jobs.empty(); });
          job = std::move(k->jobs.front());
          k->jobs.pop_front();
        }
        job();
      }
    }).detach();
    return k;
  }();
  std::packaged_task<pid_t()> job(fork_fn);
  auto pid = job.get_future();
  {
    std::lock_guard lock(keeper->mu);
    keeper->jobs.push_back(std::move(job));
  }
  keeper->cv.notify_one();
  return pid.get();
}

}  // namespace

std::optional<fs::path> LocalNatsServer::FindBinary(const fs::path& hint) {
  if (!hint.empty()) return Executable(hint) ? std::optional(hint) : std::nullopt;
  if (const char* env = std::getenv("ANJU_NATS_SERVER"); env && *env)
    return Executable(env) ? std::optional(fs::path(env)) : std::nullopt;
  std::vector<fs::path> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');)
      if (!d.empty()) dirs.emplace_back(d);
  }
  for (const char* d : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"})
    dirs.emplace_back(d);
  for (const auto& d : dirs)
    if (Executable(d / "nats-server")) return d / "nats-server";
  return std::nullopt;
}

LocalNatsServer::LocalNatsServer(Options options) : options_(std::move(options)) {
  const auto bin = FindBinary(options_.binary);
  if (!bin)
    throw Error(ErrorCode::kUnavailable,
                "nats-server 未安装 / nats-server is not installed (apt-get install "
                "nats-server, or set ANJU_NATS_SERVER to the program)");
  binary_ = *bin;
  if (options_.dir.empty()) {
    std::string templ = (fs::temp_directory_path() / "anju-nats-XXXXXX").string();
    if (!::mkdtemp(templ.data()))
      throw Error(ErrorCode::kIo, std::string("mkdtemp: ") + std::strerror(errno));
    dir_ = templ;
    own_dir_ = true;
  } else {
    dir_ = options_.dir;
    fs::create_directories(dir_);
  }
  // Another process may take the chosen port before the server binds it: try a few.
  for (int attempt = 0;; ++attempt) {
    port_ = FreePort();
    try {
      Launch();
      Wait();
      return;
    } catch (const Error&) {
      const bool port_taken = log().find("address already in use") != std::string::npos;
      Kill();
      if (!port_taken || attempt >= 4) {
        if (own_dir_) {
          std::error_code ec;
          fs::remove_all(dir_, ec);
        }
        throw;
      }
    }
  }
}

LocalNatsServer::~LocalNatsServer() {
  Kill();
  if (own_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void LocalNatsServer::Launch() {
  const std::string log_file = (dir_ / "nats-server.log").string();
  std::vector<std::string> args = {binary_.string(), "-a", "127.0.0.1", "-p",
                                   std::to_string(port_)};
  if (options_.jetstream) args.insert(args.end(), {"-js", "-sd", (dir_ / "store").string()});
  if (std::getenv("ANJU_NATS_TRACE")) args.push_back("-DV");  // protocol trace in the log
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ForkFromKeeper([&] {
    const pid_t child = ::fork();
    if (child == 0) {
      // Only async-signal-safe calls here. The server dies with the process that started
      // it (a test that crashes or times out leaves no server behind).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return child;
  });
  if (pid < 0) throw Error(ErrorCode::kUnavailable, std::string("fork: ") + std::strerror(errno));
  pid_ = pid;
}

void LocalNatsServer::Wait() {
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw Error(ErrorCode::kUnavailable, "nats-server exited at start (status " +
                                               std::to_string(status) + "); log:\n" + log());
    }
    // Clients are accepted once JetStream has recovered its store; the INFO line says
    // whether it is on.
    const std::string info = InfoLine(port_);
    if (info.rfind("INFO ", 0) == 0) {
      if (!options_.jetstream || info.find("\"jetstream\":true") != std::string::npos) return;
      throw Error(ErrorCode::kUnavailable, "nats-server started without JetStream; log:\n" + log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw Error(ErrorCode::kUnavailable,
              "nats-server did not come up on port " + std::to_string(port_) + "; log:\n" + log());
}

void LocalNatsServer::Start() {
  if (running()) return;
  // The port was ours a moment ago; if another process took it meanwhile, wait for it.
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (;;) {
    Launch();
    try {
      Wait();
      return;
    } catch (const Error&) {
      const bool port_taken = log().find("address already in use") != std::string::npos;
      Kill();
      if (!port_taken || std::chrono::steady_clock::now() > deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void LocalNatsServer::Stop() {
  if (!running()) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill();
}

void LocalNatsServer::Kill() {
  if (!running()) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string LocalNatsServer::log() const {
  std::ifstream in(dir_ / "nats-server.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace anju::server::runtime
