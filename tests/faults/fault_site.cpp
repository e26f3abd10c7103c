#include "fault_site.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

namespace anju::faults {

namespace {

std::mt19937& Rng() {
  static std::mt19937 rng(std::random_device{}());
  return rng;
}

void Run(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// A uniform grey 24-bit BMP (the terminal's camera frames; BMP is one of the accepted
// formats and needs no encoder).
std::string GreyBmp(int w, int h, uint8_t grey) {
  const int row = (3 * w + 3) / 4 * 4;
  const uint32_t pixels = uint32_t(row * h), size = 54 + pixels;
  std::string b(size, '\0');
  auto le32 = [&](size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) b[at + i] = char(v >> (8 * i));
  };
  b[0] = 'B', b[1] = 'M';
  le32(2, size), le32(10, 54), le32(14, 40), le32(18, uint32_t(w)), le32(22, uint32_t(h));
  b[26] = 1, b[28] = 24;
  le32(34, pixels);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < 3 * w; ++x) b[54 + size_t(y) * row + x] = char(grey);
  return b;
}

sqlite3* OpenReadOnly(const fs::path& file) {
  sqlite3* db = nullptr;
  if (!fs::exists(file)) return nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 2000);
  return db;
}

}  // namespace

fs::path BinDir() {
  return fs::read_symlink("/proc/self/exe").parent_path();
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool IsRoot() {
  return geteuid() == 0;
}

bool WaitFor(const std::function<bool()>& pred, Ms timeout) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(Ms(20));
  }
  return pred();
}

std::string ReadText(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const fs::path& file, const std::string& text) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

int Random(int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(Rng());
}

// ---- Child -------------------------------------------------------------------------------

Child::Child(std::string name, std::vector<std::string> argv, fs::path log,
             std::vector<std::string> env, std::string netns)
    : name_(std::move(name)),
      argv_(std::move(argv)),
      log_(std::move(log)),
      env_(std::move(env)),
      netns_(std::move(netns)) {}

Child::~Child() {
  if (pid_ > 0) Stop(SIGKILL);
}

void Child::Start() {
  if (Running()) throw std::runtime_error(name_ + " is already running");
  std::vector<std::string> args;
  if (!netns_.empty()) args = {"/usr/sbin/ip", "netns", "exec", netns_};
  args.insert(args.end(), argv_.begin(), argv_.end());
  { std::ofstream(log_, std::ios::app) << "==== start: " << args[0] << " …\n"; }
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    for (const auto& e : env_) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> av;
    for (auto& a : args) av.push_back(a.data());
    av.push_back(nullptr);
    execv(av[0], av.data());
    _exit(127);
  }
}

int Child::Stop(int sig, Ms wait) {
  if (pid_ <= 0) return status_;
  kill(pid_, sig);
  const auto end = std::chrono::steady_clock::now() + wait;
  for (;;) {
    int st = 0;
    const pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      status_ = st;
      pid_ = -1;
      return st;
    }
    if (std::chrono::steady_clock::now() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      status_ = st;
      pid_ = -1;
      ADD_FAILURE() << name_ << " did not stop on signal " << sig << " within " << wait.count()
                    << " ms";
      return st;
    }
    std::this_thread::sleep_for(Ms(10));
  }
}

bool Child::Running() {
  if (pid_ <= 0) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return true;
}

int Child::WaitExit(Ms timeout) {
  if (!WaitFor([&] { return !Running(); }, timeout)) return -1;
  return WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
}

// ---- HTTP --------------------------------------------------------------------------------

json HttpReply::Json() const {
  return json::parse(body, nullptr, false);
}

HttpReply Http(const std::string& base_url, const std::string& ca_file, const std::string& method,
               const std::string& path, const std::string& body, const std::string& token,
               Ms timeout) {
  httplib::Client c(base_url);
  if (base_url.rfind("https://", 0) == 0) {
    c.set_ca_cert_path(ca_file.c_str());
    c.enable_server_certificate_verification(true);
  }
  const auto secs = timeout.count() / 1000, usecs = (timeout.count() % 1000) * 1000;
  c.set_connection_timeout(secs, usecs);
  c.set_read_timeout(secs, usecs);
  c.set_write_timeout(secs, usecs);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  httplib::Result r = method == "GET"     ? c.Get(path, h)
                      : method == "POST"  ? c.Post(path, h, body, "application/json")
                      : method == "PUT"   ? c.Put(path, h, body, "application/json")
                      : method == "PATCH" ? c.Patch(path, h, body, "application/json")
                                          : c.Delete(path, h, body, "application/json");
  if (!r) return {};
  return {r->status, r->body};
}

// ---- Server ------------------------------------------------------------------------------

Server::Server(fs::path data_dir, std::string host, int port, std::string netns)
    : data_dir_(std::move(data_dir)),
      host_(std::move(host)),
      port_(port),
      child_("anju-server",
             {(BinDir() / "anju-server").string(), "--data-dir", data_dir_.string(), "--listen",
              host_ + ":" + std::to_string(port_)},
             data_dir_.parent_path() / "server.log", {}, std::move(netns)) {}

std::string Server::url() const {
  return "https://" + host_ + ":" + std::to_string(port_);
}

void Server::Start(Ms timeout) {
  child_.Start();
  const bool up = WaitFor(
      [&] {
        if (!child_.Running()) return true;
        return fs::exists(ca_file()) &&
               Http(url(), ca_file().string(), "GET", "/healthz", {}, {}, Ms(2000)).status > 0;
      },
      timeout);
  if (!up || !child_.Running())
    throw std::runtime_error("anju-server did not come up; see " + child_.log().string());
}

json Server::Api(const std::string& method, const std::string& path, const json& body) {
  const std::string token = Trim(ReadText(data_dir_ / "admin.token"));
  const HttpReply r = Http(url(), ca_file().string(), method, path,
                           body.is_null() ? std::string() : body.dump(), token, Ms(60'000));
  if (r.status < 200 || r.status >= 300)
    throw std::runtime_error(method + " " + path + ": HTTP " + std::to_string(r.status) + " " +
                             r.body.substr(0, 300));
  return r.body.empty() ? json(nullptr) : r.Json();
}

std::pair<std::string, std::string> Server::AddDevice(const std::string& name) {
  const json d = Api("POST", "/api/v1/devices", {{"name", name}, {"doors", 1}});
  return {d.at("enrolment_code").get<std::string>(), d.at("device_id").get<std::string>()};
}

void Server::AddCamera(const std::string& device_id, const std::string& password) {
  Api("POST", "/api/v1/viid/devices",
      {{"id", device_id}, {"password", password}, {"name", "fault-test camera"}});
}

// ---- Converter ---------------------------------------------------------------------------

Converter::Converter(fs::path dir, std::string netns)
    : dir_(std::move(dir)),
      modbus_port_(FreePort()),
      status_port_(FreePort()),
      child_("anju-converter",
             {(BinDir() / "anju-converter").string(), "--simulate", "--listen",
              "127.0.0.1:" + std::to_string(modbus_port_), "--status",
              "127.0.0.1:" + std::to_string(status_port_), "--tls-dir", (dir_ / "tls").string(),
              "--ready-file", (dir_ / "ready.json").string()},
             dir_ / "converter.log", {}, std::move(netns)) {
  fs::create_directories(dir_);
}

void Converter::Start() {
  fs::remove(dir_ / "ready.json");
  child_.Start();
  if (!WaitFor([&] { return fs::exists(dir_ / "ready.json") || !child_.Running(); }, Ms(20'000)) ||
      !child_.Running())
    throw std::runtime_error("anju-converter did not come up; see " + child_.log().string());
}

json Converter::Status() {
  const HttpReply r = Http("https://127.0.0.1:" + std::to_string(status_port_),
                           (dir_ / "tls" / "status.crt").string(), "GET", "/status");
  if (r.status != 200)
    throw std::runtime_error("converter status: HTTP " + std::to_string(r.status));
  return r.Json();
}

bool Converter::SetInputs(const json& in) {
  return Http("https://127.0.0.1:" + std::to_string(status_port_),
              (dir_ / "tls" / "status.crt").string(), "POST", "/inputs", in.dump(), {}, Ms(2000))
             .status == 200;
}

void Converter::FlipDoorContact(int n) {
  for (int i = 0; i < n; ++i) {
    door_contact_ = !door_contact_;
    SetInputs({{"door_contact", door_contact_}});
    std::this_thread::sleep_for(Ms(350));
  }
}

bool Converter::Released(int output) {
  try {
    return Status().at("outputs").at(output).at("released").get<bool>();
  } catch (const std::exception&) {
    return false;
  }
}

// ---- Terminal ----------------------------------------------------------------------------

TerminalSetup GateSetup(const fs::path& dir, const std::string& server_url,
                        const fs::path& server_ca, const std::string& code, int converter_port,
                        const fs::path& frames) {
  TerminalSetup ts;
  ts.dir = dir;
  ts.server_url = server_url;
  ts.server_ca = server_ca;
  ts.enrolment_code = code;
  ts.converter_port = converter_port;
  ts.status_port = FreePort();
  ts.frames = frames;
  WriteFrames(ts.frames, 2, {}, 0);
  return ts;
}

Terminal::Terminal(TerminalSetup setup)
    : setup_(std::move(setup)),
      child_("anju-terminal",
             {(BinDir() / "anju-terminal").string(), "--config",
              (setup_.dir / "terminal.json").string(), "--plain-http"},
             setup_.dir / "terminal.log", setup_.env, setup_.netns) {
  fs::create_directories(setup_.dir);
  json c = {{"data_dir", data_dir().string()},
            {"camera",
             "dir:" + setup_.frames.string() + "?fps=" + std::to_string(setup_.fps) + "&loop=1"},
            {"name", "fault-gate"},
            {"status_listen", setup_.status_port ? "127.0.0.1:" + std::to_string(setup_.status_port)
                                                 : std::string()},
            {"outbox_quota_mb", 64}};
  if (setup_.converter_port)
    c["door"] = {{"output", "converter"},
                 {"address", "127.0.0.1:" + std::to_string(setup_.converter_port)}};
  if (!setup_.server_url.empty())
    c["server"] = {{"url", setup_.server_url},
                   {"ca_file", setup_.server_ca.string()},
                   {"enrolment_code", setup_.enrolment_code},
                   {"poll_ms", 300},
                   {"heartbeat_ms", 2000}};
  c.merge_patch(setup_.extra);
  WriteText(setup_.dir / "terminal.json", c.dump(2));
}

void Terminal::Start() {
  child_.Start();
}

HttpReply Terminal::Get(const std::string& path) {
  return Http("http://127.0.0.1:" + std::to_string(setup_.status_port), {}, "GET", path, {}, {},
              Ms(3000));
}

json Terminal::Status() {
  const json j = Get("/status.json").Json();
  return j.is_object() ? j : json::object();
}

bool Terminal::Registered() const {
  return fs::exists(data_dir() / "keys" / "server.pub");
}

// ---- Capture -----------------------------------------------------------------------------

CaptureProgram::CaptureProgram(fs::path dir, std::string server_url, fs::path server_ca,
                               std::string device_id, std::string password, fs::path frames,
                               bool loop)
    : dir_(std::move(dir)),
      child_("anju-capture",
             {(BinDir() / "anju-capture").string(), "--config", (dir_ / "capture.json").string()},
             dir_ / "capture.log") {
  fs::create_directories(dir_);
  const json c = {{"server_url", server_url},
                  {"server_ca_file", server_ca.string()},
                  {"device_id", device_id},
                  {"password", password},
                  {"keepalive_s", 5},
                  {"buffer_dir", "buffer"},
                  {"buffer_quota_mb", 64},
                  {"cameras",
                   {{{"id", "gate"},
                     {"source", "dir:" + frames.string() + "?fps=4" + (loop ? "&loop=1" : "")},
                     {"send_full_frame", false}}}}};
  WriteText(dir_ / "capture.json", c.dump(2));
}

void CaptureProgram::Start() {
  child_.Start();
}

void WriteFrames(const fs::path& dir, int blanks_between, const std::vector<fs::path>& faces,
                 int frames_per_face) {
  fs::create_directories(dir);
  int n = 0;
  auto name = [&](const std::string& ext) {
    char b[32];
    std::snprintf(b, sizeof b, "%05d", ++n);
    return dir / (b + ext);
  };
  const std::string blank = GreyBmp(160, 120, 90);
  for (int i = 0; i < blanks_between; ++i) WriteText(name(".bmp"), blank);
  for (const auto& f : faces) {
    for (int i = 0; i < frames_per_face; ++i) fs::copy_file(f, name(f.extension().string()));
    for (int i = 0; i < blanks_between; ++i) WriteText(name(".bmp"), blank);
  }
}

// ---- OutboxWatcher -----------------------------------------------------------------------

OutboxWatcher::OutboxWatcher(fs::path outbox, KeyOf key_of)
    : file_(std::move(outbox)), key_of_(std::move(key_of)) {
  thread_ = std::thread([this] { Loop(); });
}

OutboxWatcher::~OutboxWatcher() {
  Stop();
}

void OutboxWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void OutboxWatcher::Loop() {
  while (!stop_) {
    if (sqlite3* db = OpenReadOnly(file_)) {
      sqlite3_stmt* st = nullptr;
      std::vector<SeenItem> items;
      bool ok = sqlite3_prepare_v2(db, "SELECT seq, id, kind, payload FROM items ORDER BY seq", -1,
                                   &st, nullptr) == SQLITE_OK;
      int rc = SQLITE_ROW;
      while (ok && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        SeenItem it;
        it.seq = sqlite3_column_int64(st, 0);
        it.id = reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
        it.kind = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
        it.payload = reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
        items.push_back(std::move(it));
      }
      sqlite3_finalize(st);
      sqlite3_close(db);
      if (ok && rc == SQLITE_DONE) {
        std::lock_guard lock(mu_);
        for (auto& it : items) {
          const std::string key = key_of_ ? key_of_(it) : it.id;
          seen_.emplace(key, std::move(it));
        }
        current_ = int64_t(items.size());
        ++reads_;
      }
    }
    std::this_thread::sleep_for(Ms(20));
  }
}

std::vector<SeenItem> OutboxWatcher::Seen() {
  std::lock_guard lock(mu_);
  std::vector<SeenItem> out;
  for (const auto& [key, it] : seen_) {
    out.push_back(it);
    out.back().id = key;
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  return out;
}

// ---- the server's files ------------------------------------------------------------------

std::vector<SeenItem> ServerEvents(const fs::path& server_dir, const std::string& device) {
  std::vector<SeenItem> out;
  sqlite3* db = OpenReadOnly(server_dir / "events.db");
  if (!db) return out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT seq, id, kind, payload FROM events WHERE device_id = ? ORDER "
                         "BY seq",
                         -1, &st, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, device.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW)
      out.push_back({sqlite3_column_int64(st, 0),
                     reinterpret_cast<const char*>(sqlite3_column_text(st, 1)),
                     reinterpret_cast<const char*>(sqlite3_column_text(st, 2)),
                     reinterpret_cast<const char*>(sqlite3_column_text(st, 3))});
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::map<std::string, std::string> ServerCaptures(const fs::path& server_dir,
                                                  const std::string& device) {
  std::map<std::string, std::string> out;
  sqlite3* db = OpenReadOnly(server_dir / "captures.db");
  if (!db) return out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT face_id, state FROM captures WHERE device_id = ?", -1, &st,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, device.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(st) == SQLITE_ROW)
      out[reinterpret_cast<const char*>(sqlite3_column_text(st, 0))] =
          reinterpret_cast<const char*>(sqlite3_column_text(st, 1));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

int64_t ServerQuarantine(const fs::path& server_dir, const std::string& device) {
  int64_t n = 0;
  sqlite3* db = OpenReadOnly(server_dir / "events.db");
  if (!db) return 0;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM quarantine WHERE device_id = ?", -1, &st,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, device.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

json Delivery::ToJson() const {
  return {{"acknowledged", acknowledged},
          {"stored", stored},
          {"lost", lost},
          {"duplicates", duplicates},
          {"out_of_order", out_of_order},
          {"examples", examples}};
}

Delivery CheckEvents(const std::vector<SeenItem>& seen, const std::vector<SeenItem>& server) {
  Delivery d;
  d.acknowledged = seen.size();
  d.stored = server.size();
  std::map<std::string, size_t> position;
  std::set<std::string> payloads;
  for (size_t i = 0; i < server.size(); ++i) {
    if (!position.emplace(server[i].id, i).second) ++d.duplicates;
    // Every payload carries its own millisecond time: the same payload twice is the same
    // record stored under two ids.
    if (!payloads.insert(server[i].kind + server[i].payload).second) {
      ++d.duplicates;
      if (d.examples.size() < 5) d.examples.push_back("duplicate payload " + server[i].payload);
    }
  }
  size_t last = 0;
  bool first = true;
  for (const auto& s : seen) {
    const auto it = position.find(s.id);
    if (it == position.end()) {
      ++d.lost;
      if (d.examples.size() < 5) d.examples.push_back("lost " + s.id + " " + s.payload);
      continue;
    }
    if (!first && it->second < last) ++d.out_of_order;
    last = it->second;
    first = false;
  }
  return d;
}

Delivery CheckCaptures(const std::vector<SeenItem>& seen,
                       const std::map<std::string, std::string>& server) {
  Delivery d;
  d.acknowledged = seen.size();
  d.stored = server.size();
  for (const auto& s : seen)
    if (!server.count(s.id)) {
      ++d.lost;
      if (d.examples.size() < 5) d.examples.push_back("lost capture " + s.id);
    }
  return d;
}

// ---- NetNs -------------------------------------------------------------------------------

std::string NetNs::Unavailable() {
  if (!IsRoot()) return "needs root (ip netns, veth)";
  if (access("/usr/sbin/ip", X_OK) != 0) return "no /usr/sbin/ip (iproute2)";
  const std::string probe = "anju-probe-" + std::to_string(getpid());
  if (std::system(("/usr/sbin/ip netns add " + probe + " 2>/dev/null").c_str()) != 0)
    return "cannot create a network namespace here (ip netns add failed)";
  std::system(("/usr/sbin/ip netns del " + probe).c_str());
  return "";
}

NetNs::NetNs(const std::string& tag) {
  const int k = 20 + getpid() % 200;
  name_ = "anju-" + tag + "-" + std::to_string(getpid());
  root_if_ = "aj" + std::to_string(getpid()) + "r";
  ns_if_ = "aj" + std::to_string(getpid()) + "n";
  prefix_ = "10.231." + std::to_string(k);
  const std::string ip = "/usr/sbin/ip ";
  Run(ip + "netns add " + name_);
  Run(ip + "link add " + root_if_ + " type veth peer name " + ns_if_);
  Run(ip + "link set " + ns_if_ + " netns " + name_);
  Run(ip + "addr add " + prefix_ + ".1/24 dev " + root_if_);
  Run(ip + "link set " + root_if_ + " up");
  Run(ip + "-n " + name_ + " addr add " + prefix_ + ".2/24 dev " + ns_if_);
  Run(ip + "-n " + name_ + " link set " + ns_if_ + " up");
  Run(ip + "-n " + name_ + " link set lo up");
}

NetNs::~NetNs() {
  std::system(("/usr/sbin/ip link del " + root_if_ + " 2>/dev/null").c_str());
  std::system(("/usr/sbin/ip netns del " + name_ + " 2>/dev/null").c_str());
}

void NetNs::Cut() {
  Run("/usr/sbin/ip -n " + name_ + " link set " + ns_if_ + " down");
}

void NetNs::Heal() {
  Run("/usr/sbin/ip -n " + name_ + " link set " + ns_if_ + " up");
}

}  // namespace anju::faults
