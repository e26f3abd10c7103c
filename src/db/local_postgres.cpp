#include "db/local_postgres.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "db/process.h"

namespace anju::db {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const fs::path kDefaultBin = "/usr/lib/postgresql/15/bin";

fs::path BinDir(const LocalPostgresOptions& o) {
  return o.bin_dir.empty() ? kDefaultBin : o.bin_dir;
}

bool Executable(const fs::path& p) {
  return access(p.c_str(), X_OK) == 0;
}

bool IsRoot() {
  return geteuid() == 0;
}

std::string Runuser() {
  for (const char* p : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"})
    if (Executable(p)) return p;
  return {};
}

[[noreturn]] void Fail(const std::string& what) {
  throw Error(ErrorCode::kUnavailable, "local PostgreSQL: " + what);
}

// Alive and not a zombie (a dead server whose parent has not reaped it yet is gone).
bool Alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return false;
  const size_t p = stat.rfind(')');
  if (p == std::string::npos || p + 2 >= stat.size()) return false;
  const char state = stat[p + 2];
  return state != 'Z' && state != 'X';
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const pid_t pid = pid_t(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    if (!std::getline(f, stat)) continue;
    const size_t p = stat.rfind(')');
    if (p == std::string::npos) continue;
    std::istringstream rest(stat.substr(p + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(pid);
  }
  closedir(d);
  return out;
}

bool WaitGone(const std::vector<pid_t>& pids, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    bool any = false;
    for (pid_t p : pids) any = any || Alive(p);
    if (!any) return true;
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

int FreePort() {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) Fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(s);
    Fail(std::string("no free port: ") + std::strerror(errno));
  }
  close(s);
  return ntohs(a.sin_port);
}

// Hands TREE to the postgres user (we are root; the server refuses to run as root).
void ChownTree(const fs::path& tree) {
  const passwd* pw = getpwnam("postgres");
  if (!pw) Fail("no user 'postgres'");
  auto one = [&](const fs::path& p) {
    if (lchown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      Fail("chown " + p.string() + ": " + std::strerror(errno));
  };
  one(tree);
  if (fs::is_directory(tree))
    for (const auto& e : fs::recursive_directory_iterator(tree)) one(e.path());
}

fs::path MakeTempDir(const std::string& prefix) {
  std::string tmpl = (fs::temp_directory_path() / (prefix + "XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) Fail("mkdtemp: " + std::string(std::strerror(errno)));
  return tmpl;
}

std::string MajorVersion(const fs::path& bin) {
  static std::mutex mu;
  static std::string cached;
  static fs::path cached_for;
  std::lock_guard lock(mu);
  if (cached_for == bin && !cached.empty()) return cached;
  const auto r = detail::RunProcess({(bin / "postgres").string(), "--version"});
  // "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"
  const size_t p = r.output.find(") ");
  if (r.exit_code != 0 || p == std::string::npos) Fail("postgres --version: " + r.output);
  std::string v = r.output.substr(p + 2);
  v = v.substr(0, v.find_first_of(". \n"));
  cached = v;
  cached_for = bin;
  return v;
}

fs::path TemplateDir(const LocalPostgresOptions& o, const fs::path& bin) {
  if (!o.template_dir.empty()) return o.template_dir;
  const char* home = std::getenv("HOME");
  const fs::path base = home && *home ? fs::path(home) / ".cache" : fs::temp_directory_path();
  return base / "anju" / "pg-template" / MajorVersion(bin);
}

// The initialised cluster to copy, made once (initdb) and kept. Several processes may
// ask at once: a lock file beside it lets one do the work.
void EnsureTemplate(
    const fs::path& tpl, const fs::path& bin,
    const std::function<std::vector<std::string>(std::vector<std::string>)>& as_postgres) {
  if (fs::exists(tpl / "PG_VERSION")) return;
  fs::create_directories(tpl.parent_path());
  const fs::path lock_path = tpl.string() + ".lock";
  const int lock = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock < 0) Fail("lock " + lock_path.string() + ": " + std::strerror(errno));
  flock(lock, LOCK_EX);
  struct Unlock {
    int fd;
    ~Unlock() { close(fd); }
  } unlock{lock};
  if (fs::exists(tpl / "PG_VERSION")) return;
  const fs::path work = MakeTempDir("anju-pg-init-");
  if (IsRoot()) ChownTree(work);
  const auto r =
      detail::RunProcess(as_postgres({(bin / "initdb").string(), "-D", (work / "data").string(),
                                      "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C",
                                      "--no-sync", "--wal-segsize=1", "--no-instructions"}),
                         {}, work.string());
  if (r.exit_code != 0) {
    fs::remove_all(work);
    Fail("initdb: " + r.output);
  }
  const fs::path staged = tpl.string() + ".tmp" + std::to_string(getpid());
  fs::remove_all(staged);
  fs::copy(work / "data", staged, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  fs::remove_all(work);
  fs::rename(staged, tpl);
}

std::string ReadTail(const fs::path& file, size_t bytes) {
  std::ifstream f(file, std::ios::binary);
  if (!f) return {};
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

std::atomic<int> g_databases{0};

// "<pid> <start time>" of a process: who owns a server directory (a pid alone can be reused).
std::string ProcessIdentity(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(f, stat)) return {};
  const size_t p = stat.rfind(')');
  if (p == std::string::npos) return {};
  std::istringstream rest(stat.substr(p + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
  }
  return std::to_string(pid) + " " + field;  // field 22: start time since boot
}

void KillServer(pid_t postmaster, bool wait) {
  kill(postmaster, SIGSTOP);  // frozen, so that it forks nothing while listed
  std::vector<pid_t> all = ChildrenOf(postmaster);
  kill(postmaster, SIGKILL);
  for (pid_t c : all) kill(c, SIGKILL);
  all.push_back(postmaster);
  // The next server cannot start while old processes keep the shared memory.
  if (wait && !WaitGone(all, std::chrono::seconds(30))) Fail("processes survived SIGKILL");
}

// Servers left behind by a process that died without stopping them (a test killed on a
// timeout, a crashed bench): stopped, their directories removed.
void SweepOrphans() {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("anju-pg-", 0) != 0) continue;
    std::ifstream owner_file(e.path() / "owner");
    std::string owner;
    if (!std::getline(owner_file, owner)) continue;
    const pid_t owner_pid = pid_t(std::atol(owner.c_str()));
    if (owner_pid > 0 && Alive(owner_pid) && ProcessIdentity(owner_pid) == owner)
      continue;  // still in use
    std::ifstream pid_file(e.path() / "data" / "postmaster.pid");
    long server = 0;
    if (pid_file >> server && server > 0 && Alive(pid_t(server))) {
      std::ifstream comm("/proc/" + std::to_string(server) + "/comm");
      std::string what;
      if (std::getline(comm, what) && what == "postgres") KillServer(pid_t(server), true);
    }
    fs::remove_all(e.path(), ec);
  }
}

}  // namespace

std::string LocalPostgres::Unavailable(const LocalPostgresOptions& o) {
  const fs::path bin = BinDir(o);
  for (const char* p : {"postgres", "initdb", "pg_ctl"})
    if (!Executable(bin / p))
      return "未安装 PostgreSQL / PostgreSQL is not installed (no " + (bin / p).string() +
             "; apt-get install postgresql-15)";
  if (IsRoot()) {
    if (!getpwnam("postgres")) return "no user 'postgres' to run PostgreSQL as (we are root)";
    if (Runuser().empty()) return "no runuser to run PostgreSQL as 'postgres' (we are root)";
  }
  return {};
}

std::vector<std::string> LocalPostgres::AsPostgres(std::vector<std::string> argv) const {
  if (!IsRoot()) return argv;
  std::vector<std::string> out{Runuser(), "-u", "postgres", "--"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

LocalPostgres::LocalPostgres(LocalPostgresOptions options) : o_(std::move(options)) {
  if (auto why = Unavailable(o_); !why.empty()) Fail(why);
  bin_ = BinDir(o_);
  EnsureTemplate(TemplateDir(o_, bin_), bin_,
                 [this](std::vector<std::string> a) { return AsPostgres(std::move(a)); });
  if (o_.dir.empty()) {
    SweepOrphans();
    dir_ = MakeTempDir("anju-pg-");
    own_dir_ = true;
    std::ofstream(dir_ / "owner") << ProcessIdentity(getpid()) << "\n";
  } else {
    dir_ = o_.dir;
    fs::create_directories(dir_);
  }
  try {
    fs::copy(TemplateDir(o_, bin_), dir_ / "data",
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    fs::permissions(dir_ / "data", fs::perms::owner_all, fs::perm_options::replace);
    if (IsRoot()) ChownTree(dir_);
    // A port another program took between our probe and the server's bind: try another.
    for (int attempt = 0;; ++attempt) {
      port_ = FreePort();
      try {
        StartOnce();
        break;
      } catch (const Error&) {
        if (attempt >= 3 || LogTail().find("Address already in use") == std::string::npos) throw;
      }
    }
  } catch (...) {
    if (own_dir_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
    throw;
  }
}

LocalPostgres::~LocalPostgres() {
  try {
    Stop();
  } catch (...) {
    try {
      Kill();
    } catch (...) {
    }
  }
  if (own_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::string LocalPostgres::Url(std::string_view database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + std::string(database);
}

void LocalPostgres::Start() {
  if (running()) return;
  StartOnce();
}

void LocalPostgres::StartOnce() {
  const fs::path data = dir_ / "data";
  // Ours and dead (Stop / Kill waited): a stale pid file would name the old process.
  std::error_code ec;
  fs::remove(data / "postmaster.pid", ec);
  const char* on = o_.durable ? "on" : "off";
  const std::string opts =
      "-p " + std::to_string(port_) +
      " -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=" +
      std::to_string(o_.max_connections) + " -c shared_buffers=" + o_.shared_buffers +
      " -c fsync=" + on + " -c full_page_writes=" + on +
      " -c timezone=UTC -c log_min_messages=warning";
  const auto r = detail::RunProcess(
      AsPostgres({(bin_ / "pg_ctl").string(), "-D", data.string(), "-l",
                  (dir_ / "server.log").string(), "-W", "-s", "-o", opts, "start"}),
      {}, dir_.string());
  if (r.exit_code != 0) Fail("pg_ctl start: " + r.output + LogTail());
  const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                           " dbname=postgres user=postgres connect_timeout=2";
  // A loaded machine can take a while; a server that died says so in its log at once.
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  pid_t pid = 0;
  for (;;) {
    if (PQping(ping.c_str()) == PQPING_OK) break;
    if (pid == 0) {
      std::ifstream f(data / "postmaster.pid");
      long v = 0;
      if (f >> v) pid = pid_t(v);
    }
    const bool died = pid > 0 && !Alive(pid);
    if (died || Clock::now() > deadline) {
      if (!died && pid > 0) kill(pid, SIGKILL);
      Fail(std::string(died ? "the server stopped while starting" : "no answer in 60 s") + ": " +
           LogTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (pid == 0) {
    std::ifstream f(data / "postmaster.pid");
    long v = 0;
    f >> v;
    pid = pid_t(v);
  }
  pid_ = pid;
}

void LocalPostgres::Stop() {
  if (!running()) return;
  kill(pid_, SIGINT);  // fast shutdown: sessions end, a checkpoint, then exit
  if (!WaitGone({pid_}, std::chrono::seconds(60))) return Kill();
  pid_ = 0;
}

void LocalPostgres::Kill() {
  if (!running()) return;
  KillServer(pid_, true);
  pid_ = 0;
}

std::string LocalPostgres::CreateDatabase(std::string name) {
  if (name.empty()) name = "anju_" + std::to_string(++g_databases);
  PGconn* c = PQconnectdb((Url("postgres") + "?connect_timeout=10").c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    const std::string m = PQerrorMessage(c);
    PQfinish(c);
    Fail("connect: " + m);
  }
  // template0 (never connected to) copies without waiting for other sessions; the cluster
  // was made with the C locale, so text sorts by code point as in SQLite.
  PGresult* r = PQexec(c, ("CREATE DATABASE \"" + name + "\" TEMPLATE template0").c_str());
  const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  const std::string m = PQresultErrorMessage(r);
  PQclear(r);
  PQfinish(c);
  if (!ok) Fail("create database " + name + ": " + m);
  ++databases_;
  return Url(name);
}

std::string LocalPostgres::LogTail(size_t bytes) const {
  return ReadTail(dir_ / "server.log", bytes);
}

}  // namespace anju::db
