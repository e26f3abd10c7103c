// anju bench cluster — the distributed mode end to end (docs/distributed.md): a throwaway
// PostgreSQL 15 and nats-server -js, two API servers and N recognition workers, each a
// separate anju-server process on loopback (plain HTTP: this machine only), and M captures
// uploaded over GA/T 1400 alternately to both API servers. With --kill-worker the first
// worker is killed (SIGKILL) a third of the way through and started again 2 s later;
// --restart-nats and --restart-postgres stop those servers half and two thirds of the way
// through for 2 s (uploads the servers could not take are sent again, as a camera would). It
// waits until no capture is queued, then checks the captures in the database and the live
// stream: every capture final, and finished (published) once. The cluster forwards its
// recognised captures (R3.3.2.4) to an upper platform the bench runs itself (a GA/T 1400
// receiver with Digest on loopback, configured through PUT /api/v1/viid/forward as an
// operator does; --restart-platform stops it for 2 s five sixths of the way through); once
// the forward outbox is empty every `done` capture must have reached it, and none twice.
// The last line is one JSON object; a run that lost, doubled or failed to forward a capture
// exits non-zero.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "command.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/paths.h"
#include "crypto/totp.h"
#include "db/db.h"
#include "db/local_postgres.h"
#include "protocol/viid.h"
#include "server/runtime/local_nats.h"
#include "server/runtime/nats_connection.h"
#include "server/runtime/nats_event_bus.h"
#include "server/storage/capture_repo.h"
#include "server/storage/databases.h"
#include "server/storage/forward_repo.h"

extern char** environ;

namespace anju::cli {
namespace {

namespace fs = std::filesystem;
namespace viid = protocol::viid;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

// One anju-server process; stdout and stderr go to LOG. Stopped (SIGTERM) when destroyed.
// Thread-safe: the fault injector and the supervisor act on the same process.
class ServerProcess {
 public:
  ServerProcess(std::vector<std::string> argv, fs::path log)
      : argv_(std::move(argv)), log_(std::move(log)) {
    Start();
  }
  ~ServerProcess() { Stop(SIGTERM); }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  void Start() {
    std::lock_guard lock(mu_);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv_[0].c_str(), &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      pid_ = 0;
      throw Error(ErrorCode::kUnavailable, "cannot start " + argv_[0] + ": " + std::strerror(rc));
    }
  }
  // Sends SIG and waits for the process to end.
  void Stop(int sig) {
    std::lock_guard lock(mu_);
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  bool Running() {
    std::lock_guard lock(mu_);
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == 0) return true;
    pid_ = 0;  // exited (and reaped)
    return false;
  }
  std::string Log() const {
    std::ifstream in(log_);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

 private:
  std::vector<std::string> argv_;
  fs::path log_;
  std::mutex mu_;
  pid_t pid_ = 0;
};

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw Error(ErrorCode::kIo, "no free loopback port");
  ::close(fd);
  return ntohs(a.sin_port);
}

// Waits until P's log says it started (a worker has no listener to ask).
void WaitStarted(ServerProcess& p, const std::string& what) {
  for (int i = 0; i < 1200; ++i) {
    if (p.Log().find("started (") != std::string::npos) return;
    if (!p.Running())
      throw Error(ErrorCode::kUnavailable, what + " exited:\n" + p.Log().substr(0, 4000));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw Error(ErrorCode::kUnavailable, what + " did not start in 60 s:\n" + p.Log());
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// A GA/T 1400 camera of the bench on one API server's camera listener (HTTP digest).
struct CameraClient {
  std::string id, password;
  httplib::Client http;
  viid::DigestChallenge challenge;
  bool have_challenge = false;
  uint32_t nc = 0;

  CameraClient(std::string i, std::string pw, int port)
      : id(std::move(i)), password(std::move(pw)), http("127.0.0.1", port) {
    http.set_read_timeout(60, 0);
  }

  httplib::Result Send(const std::string& path, const std::string& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      httplib::Headers h;
      if (have_challenge)
        h.emplace("Authorization", viid::FormatAuthorization(viid::AnswerChallenge(
                                       challenge, id, password, "POST", path, ++nc)));
      auto res = http.Post(path, h, body, "application/json;charset=UTF-8");
      if (!res || res->status != 401) return res;
      challenge = viid::ParseChallenge(res->get_header_value("WWW-Authenticate"));
      have_challenge = true;
      nc = 0;
    }
    return http.Post(path, body, "application/json");
  }
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

// Face photos to upload: the JPEG files under DIR (LFW's tree), at most N.
std::vector<std::string> LoadPhotos(const fs::path& dir, size_t n) {
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator();
       ++it)
    if (it->is_regular_file() && it->path().extension() == ".jpg") {
      files.push_back(it->path());
      if (files.size() >= n) break;
    }
  std::sort(files.begin(), files.end());
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(ReadAll(f));
  if (out.empty()) throw Error(ErrorCode::kNotFound, "no .jpg under " + dir.string());
  return out;
}

// The upper platform the cluster forwards to (docs/viid.md "Forwarding"): Register,
// Keepalive, UnRegister and POST /VIID/Faces behind HTTP Digest, answered with a
// ResponseStatus(List) as a GA/T 1400 platform does. It stores a face once by its FaceID
// and answers a FaceID it has already as a duplicate (StatusCode 0, as anju's own camera
// listener does), so a face sent again is harmless; it counts every delivery, so one sent
// again is still seen.
class UpperPlatform {
 public:
  UpperPlatform(std::string user, std::string password)
      : user_(std::move(user)), password_(std::move(password)), port_(FreePort()) {
    Start();
  }
  ~UpperPlatform() { Stop(); }
  UpperPlatform(const UpperPlatform&) = delete;
  UpperPlatform& operator=(const UpperPlatform&) = delete;

  int port() const { return port_; }
  void Start() {
    std::lock_guard lock(run_mu_);
    if (server_) return;
    auto server = std::make_unique<httplib::Server>();
    server->Post(viid::kPathFaces,
                 [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); });
    // The forwarder registers and keeps alive as a lower platform (GA/T 1400.4).
    for (const char* path : {viid::kPathRegister, viid::kPathKeepalive, viid::kPathUnRegister})
      server->Post(path, [this, path](const httplib::Request& req, httplib::Response& res) {
        if (!Authorised(req, res)) return;
        res.set_content(viid::ToJson(viid::ResponseStatus{path, viid::kOk, "OK", user_, ""}).dump(),
                        "application/json;charset=UTF-8");
      });
    // The port may linger a moment after a stop.
    for (int i = 0; !server->bind_to_port("127.0.0.1", port_); ++i) {
      if (i == 100) throw Error(ErrorCode::kIo, "upper platform: port taken");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    server_ = std::move(server);
    thread_ = std::thread([s = server_.get()] { s->listen_after_bind(); });
    // stop() does nothing to a server not listening yet.
    while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  void Stop() {
    std::lock_guard lock(run_mu_);
    if (!server_) return;
    server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }
  // FaceID → how many times it was delivered.
  std::map<std::string, int> Received() {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  // True when REQ carries a valid Digest answer; else RES is the 401 with a challenge.
  bool Authorised(const httplib::Request& req, httplib::Response& res) {
    const std::string realm = "anju-bench-platform";
    bool authorised = false;
    try {
      const auto cred = viid::ParseAuthorization(req.get_header_value("Authorization"));
      std::lock_guard lock(mu_);
      authorised = cred.realm == realm && cred.username == user_ && nonces_.count(cred.nonce) &&
                   viid::VerifyDigest(cred, viid::DigestHa1(user_, realm, password_), "POST");
    } catch (const Error&) {
    }
    if (!authorised) {
      std::lock_guard lock(mu_);
      const std::string nonce = "n" + std::to_string(nonces_.size() + 1);
      nonces_.insert(nonce);
      res.status = 401;
      res.set_header("WWW-Authenticate",
                     viid::FormatChallenge({realm, nonce, "", "MD5", "auth", false}));
    }
    return authorised;
  }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    if (!Authorised(req, res)) return;
    std::vector<viid::ResponseStatus> out;
    try {
      const auto parsed = viid::ParseFaceList(req.body);
      std::lock_guard lock(mu_);
      for (const auto& f : parsed.list.faces) {
        const bool again = received_[f.face_id]++ > 0;
        out.push_back(
            {viid::kPathFaces, viid::kOk, again ? "重复 / duplicate" : "OK", f.face_id, ""});
      }
    } catch (const Error& e) {
      out.push_back({viid::kPathFaces, viid::kInvalidJsonFormat, e.what(), "", ""});
    }
    res.set_content(viid::ToJson(out).dump(), "application/json;charset=UTF-8");
  }

  const std::string user_, password_;
  const int port_;
  std::mutex run_mu_, mu_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::set<std::string> nonces_;
  std::map<std::string, int> received_;
};

// An administrator's session on an API server, as an operator opens it on the first
// start: the one-time password from the server's output, a new password, TOTP enrolled.
std::string AdminSession(int port, const std::string& server_log) {
  const std::string mark = "initial administrator: admin ";
  const size_t at = server_log.find(mark);
  const std::string pw_mark = "one-time password: ";
  const size_t pw_at = at == std::string::npos ? at : server_log.find(pw_mark, at);
  if (pw_at == std::string::npos)
    throw Error(ErrorCode::kNotFound, "API server 0 printed no initial administrator");
  const size_t pw_end = server_log.find('\n', pw_at);
  std::string password = server_log.substr(pw_at + pw_mark.size(), pw_end - pw_at - pw_mark.size());
  while (!password.empty() && std::isspace(static_cast<unsigned char>(password.back())))
    password.pop_back();
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(30, 0);
  auto call = [&](const std::string& path, const std::string& token, const json& body) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    auto r = http.Post(path, h, body.dump(), "application/json");
    if (!r || r->status != 200)
      throw Error(ErrorCode::kUnavailable, path + ": " +
                                               (r ? std::to_string(r->status) + " " + r->body
                                                  : httplib::to_string(r.error())));
    return json::parse(r->body);
  };
  const json login =
      call("/api/v1/auth/login", "", {{"username", "admin"}, {"password", password}});
  const std::string token = login.value("token", "");
  const json user = login.value("user", json::object());
  if (user.value("must_change_password", false))
    call("/api/v1/auth/password", token,
         {{"old_password", password}, {"new_password", "Cluster-Bench-Pa55-" + password}});
  if (user.value("totp_required", false) && !user.value("totp_enabled", false)) {
    const json setup = call("/api/v1/auth/totp/setup", token, json::object());
    const auto secret = crypto::FromBase32(setup.value("secret", ""));
    call("/api/v1/auth/totp/confirm", token,
         {{"code", crypto::Hotp(secret, uint64_t(std::time(nullptr) / 30))}});
  }
  return token;
}

struct Faults {
  bool kill_worker = false, restart_nats = false, restart_postgres = false,
       restart_platform = false;
  double rate = 0;  // captures/s over both uploaders; 0 = as fast as they are taken
};

json Run(int workers, int captures, const Faults& faults_wanted, const fs::path& photos_dir,
         const std::string& model_dir) {
  if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
    throw Error(ErrorCode::kUnavailable, why);
  const fs::path exe = fs::read_symlink("/proc/self/exe").parent_path() / "anju-server";
  if (!fs::exists(exe)) throw Error(ErrorCode::kNotFound, "anju-server not found beside anju");
  const auto photos = LoadPhotos(photos_dir, 200);
  const fs::path root = fs::temp_directory_path() / ("anju-cluster-" + std::to_string(::getpid()));
  fs::create_directories(root);
  struct Cleanup {
    fs::path dir;
    bool keep = false;  // a run that lost or doubled captures keeps its logs
    ~Cleanup() {
      std::error_code ec;
      if (keep)
        std::fprintf(stderr, "the processes' logs are kept in %s\n", dir.c_str());
      else
        fs::remove_all(dir, ec);
    }
  } cleanup{root};

  server::runtime::LocalNatsServer nats;
  db::LocalPostgres pg;
  const std::string database = pg.CreateDatabase();
  const fs::path blobs = root / "blobs";
  auto args = [&](const std::string& name, const std::string& role, int port, int camera_port) {
    std::vector<std::string> a = {exe.string(),
                                  "--data-dir",
                                  (root / name).string(),
                                  "--listen",
                                  "127.0.0.1:" + std::to_string(port),
                                  "--plain-http",
                                  "--bus",
                                  nats.url(),
                                  "--database",
                                  database,
                                  "--blobs",
                                  blobs.string(),
                                  "--role",
                                  role};
    if (camera_port) {
      a.push_back("--camera-listen");
      a.push_back("127.0.0.1:" + std::to_string(camera_port));
    }
    if (role == "worker") {
      a.push_back("--recognition-workers");
      a.push_back("1");
    }
    if (!model_dir.empty()) {
      fs::create_directories(root / name);
      std::ofstream(root / (name + ".json")) << json{{"model_dir", model_dir}}.dump();
      a.push_back("--config");
      a.push_back((root / (name + ".json")).string());
    }
    return a;
  };
  // The first API server creates the keys; every other process gets a copy.
  const int api_port[2] = {FreePort(), FreePort()}, cam_port[2] = {FreePort(), FreePort()};
  std::vector<std::unique_ptr<ServerProcess>> api, work;
  api.push_back(std::make_unique<ServerProcess>(args("api-0", "api", api_port[0], cam_port[0]),
                                                root / "api-0.log"));
  WaitStarted(*api[0], "API server 0");
  auto copy_keys = [&](const std::string& name) {
    fs::create_directories(root / name);
    for (const char* f : {"master.key", "data.key", "events.key", "audit.key", "server_sm2.pem",
                          "backup.key", "admin.token"})
      if (fs::exists(root / "api-0" / f))
        fs::copy_file(root / "api-0" / f, root / name / f, fs::copy_options::overwrite_existing);
  };
  copy_keys("api-1");
  api.push_back(std::make_unique<ServerProcess>(args("api-1", "api", api_port[1], cam_port[1]),
                                                root / "api-1.log"));
  for (int w = 0; w < workers; ++w) {
    const std::string name = "worker-" + std::to_string(w);
    copy_keys(name);
    work.push_back(std::make_unique<ServerProcess>(args(name, "worker", FreePort(), 0),
                                                   root / (name + ".log")));
  }
  WaitStarted(*api[1], "API server 1");
  for (int w = 0; w < workers; ++w) WaitStarted(*work[size_t(w)], "worker " + std::to_string(w));

  // One camera, registered through API server 0, uploading to both.
  const std::string token = ReadAll(root / "api-0" / "admin.token");
  const std::string cam_id = "31000000001190009001", cam_pw = "cluster-bench-pw";
  {
    httplib::Client admin("127.0.0.1", api_port[0]);
    auto r = admin.Post("/api/v1/viid/devices", {{"Authorization", "Bearer " + token}},
                        json{{"id", cam_id}, {"password", cam_pw}}.dump(), "application/json");
    if (!r || r->status != 201)
      throw Error(ErrorCode::kUnavailable,
                  "camera not created: " + (r ? r->body : httplib::to_string(r.error())));
  }
  // The upper platform, set as an operator sets it (R3.3.2.4).
  const std::string platform_user = "anju-cluster", platform_pw = "platform-bench-pw";
  UpperPlatform platform(platform_user, platform_pw);
  {
    const std::string session = AdminSession(api_port[0], api[0]->Log());
    httplib::Client admin("127.0.0.1", api_port[0]);
    auto r = admin.Put("/api/v1/viid/forward", {{"Authorization", "Bearer " + session}},
                       json{{"kind", "gat1400"},
                            {"url", "http://127.0.0.1:" + std::to_string(platform.port())},
                            {"username", platform_user},
                            {"password", platform_pw}}
                           .dump(),
                       "application/json");
    if (!r || r->status != 200)
      throw Error(ErrorCode::kUnavailable,
                  "forwarding not set: " + (r ? r->body : httplib::to_string(r.error())));
  }
  std::atomic<int> uploaded{0}, refused{0}, retried{0};
  std::mutex error_mu;
  std::string first_error;  // the first refusal, for the report
  auto note_error = [&](const std::string& e) {
    std::lock_guard lock(error_mu);
    if (first_error.empty()) first_error = e.substr(0, 300);
  };
  std::atomic<bool> killed{false};
  auto t0 = Clock::now();
  auto uploader = [&](int k) {
    CameraClient cam(cam_id, cam_pw, cam_port[k]);
    auto reg = cam.Send(viid::kPathRegister,
                        viid::MakeSystemObject(viid::SystemObject::kRegister, cam_id).dump());
    if (!reg || reg->status != 200) {
      note_error(
          "register on API server " + std::to_string(k) + ": " +
          (reg ? std::to_string(reg->status) + " " + reg->body : httplib::to_string(reg.error())));
      refused += (captures + 1 - k) / 2;
      return;
    }
    for (int i = k; i < captures; i += 2) {
      if (faults_wanted.rate > 0)  // capture i is due at i / rate
        std::this_thread::sleep_until(
            t0 + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(double(i) / faults_wanted.rate)));
      viid::FaceList list;
      viid::FaceObject f;
      f.face_id = "F-CLUSTER-" + std::to_string(i);
      f.device_id = cam_id;
      f.face_appear_time = viid::FormatTime(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
      viid::SubImageInfo img;
      img.type = viid::kImageTypeFace;
      const std::string& jpeg = photos[size_t(i) % photos.size()];
      img.data.assign(jpeg.begin(), jpeg.end());
      f.images.push_back(img);
      list.faces.push_back(f);
      // As a camera's outbox does: an upload the server could not take (the database or
      // the bus away, a restart) is sent again, for up to 60 s.
      const std::string body = viid::ToJson(list).dump();
      std::string last_error;
      bool ok = false;
      for (const auto until = Clock::now() + std::chrono::seconds(60);;) {
        auto r = cam.Send(viid::kPathFaces, body);
        ok = r && r->status == 200 && !viid::ParseResponseStatus(r->body).empty() &&
             viid::ParseResponseStatus(r->body)[0].status_code == 0;
        if (!ok)
          last_error =
              r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error());
        if (ok || Clock::now() > until) break;
        ++retried;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
      }
      if (ok) {
        ++uploaded;
      } else {
        ++refused;
        note_error("upload to API server " + std::to_string(k) + ": " + last_error);
      }
    }
  };
  t0 = Clock::now();
  // The faults, each once, at a share of the uploads: a worker killed at 1/3, nats-server
  // stopped at 1/2, PostgreSQL stopped at 2/3; each comes back 2 s later.
  std::atomic<bool> nats_restarted{false}, postgres_restarted{false}, platform_restarted{false};
  std::thread faults([&] {
    auto at = [&](int share_of_six) {
      while (uploaded + refused < captures * share_of_six / 6 && uploaded + refused < captures)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    };
    const auto pause = std::chrono::seconds(2);
    if (faults_wanted.kill_worker && workers > 0) {
      at(2);
      work[0]->Stop(SIGKILL);  // the supervisor starts it again
      killed = true;
      std::this_thread::sleep_for(pause);
    }
    if (faults_wanted.restart_nats) {
      at(3);
      nats.Stop();
      std::this_thread::sleep_for(pause);
      nats.Start();
      nats_restarted = true;
    }
    if (faults_wanted.restart_postgres) {
      at(4);
      pg.Stop();
      std::this_thread::sleep_for(pause);
      pg.Start();
      postgres_restarted = true;
    }
    if (faults_wanted.restart_platform) {
      at(5);
      platform.Stop();
      std::this_thread::sleep_for(pause);
      platform.Start();
      platform_restarted = true;
    }
  });
  // A supervisor, as systemd would be: the worker killed above is started again 2 s later
  // (one that starts while nats-server is away waits for it: it does not exit).
  std::atomic<bool> supervising{true};
  std::atomic<int> worker_starts{0};
  std::thread supervisor([&] {
    std::vector<Clock::time_point> down(work.size(), Clock::time_point::max());
    while (supervising) {
      for (size_t w = 0; w < work.size(); ++w) {
        if (work[w]->Running()) {
          down[w] = Clock::time_point::max();
        } else if (down[w] == Clock::time_point::max()) {
          down[w] = Clock::now();
        } else if (Clock::now() - down[w] >= std::chrono::seconds(2)) {
          work[w]->Start();
          ++worker_starts;
          down[w] = Clock::time_point::max();
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  struct StopSupervisor {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~StopSupervisor() {
      flag = false;
      if (thread.joinable()) thread.join();
    }
  } stop_supervisor{supervising, supervisor};
  std::thread up0(uploader, 0), up1(uploader, 1);
  up0.join();
  up1.join();
  faults.join();
  const double upload_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (refused > 0)
    for (size_t k = 0; k < api.size(); ++k) {
      const std::string log = api[k]->Log();
      std::fprintf(stderr, "---- API server %zu (end of its log)\n%s\n", k,
                   log.substr(log.size() > 3000 ? log.size() - 3000 : 0).c_str());
    }

  // Drained when every stored capture is final (a killed worker's item comes back after
  // the queue's ack wait).
  auto captures_db = server::storage::OpenCapturesAt(database, root / "api-0");
  server::storage::CaptureTally tally;
  for (int i = 0; i < 6000; ++i) {
    {
      auto c = captures_db->AcquireReader();
      tally = server::storage::CaptureRepo::Tally(c);
    }
    if (tally.total >= uploaded && tally.queued == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - t0).count();
  supervising = false;
  if (supervisor.joinable()) supervisor.join();

  // Forwarded once (R3.3.2.4): the forward outbox emptied (a failed send waits its
  // back-off), then every `done` capture at the platform, none delivered twice.
  int64_t forward_pending = -1;
  for (int i = 0; i < 1800; ++i) {
    {
      auto c = captures_db->AcquireReader();
      forward_pending =
          server::storage::ForwardRepo::State(c, server::storage::Outbox::kForward).pending;
    }
    if (forward_pending == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::set<std::string> done_faces;
  {
    auto c = captures_db->AcquireReader();
    db::Stmt q(c, "SELECT face_id FROM captures WHERE state = 'done'");
    while (q.Step()) done_faces.insert(q.Text(0));
  }
  const auto received = platform.Received();
  int forwarded_twice = 0, forward_missing = 0, forward_unexpected = 0, deliveries = 0;
  for (const auto& [face, n] : received) {
    deliveries += n;
    forwarded_twice += n > 1 ? 1 : 0;
    forward_unexpected += done_faces.count(face) ? 0 : 1;
  }
  for (const auto& face : done_faces) forward_missing += received.count(face) ? 0 : 1;

  // Finished once: each finished capture is published once on the live stream.
  server::runtime::NatsOptions no;
  no.url = nats.url();
  no.prefix = "anju";  // anju-server's default bus_prefix
  std::map<std::string, int> published;
  {
    server::runtime::NatsEventBus bus(server::runtime::NatsConnection::Connect(no));
    uint64_t after = 0;
    for (int idle = 0; idle < 3;) {
      const auto batch = bus.Read(after, std::chrono::milliseconds(300), 500);
      if (batch.empty()) {
        ++idle;
        continue;
      }
      for (const auto& m : batch) {
        after = std::max(after, m.seq);
        if (m.event == "capture") ++published[m.data.value("id", std::string())];
      }
    }
  }
  int duplicated = 0;
  for (const auto& [id, n] : published) duplicated += n > 1 ? 1 : 0;
  cleanup.keep = duplicated > 0 || tally.total - tally.queued < uploaded || forwarded_twice > 0 ||
                 forward_missing > 0 || forward_unexpected > 0;
  std::vector<double> lat(tally.latency_ms.begin(), tally.latency_ms.end());
  const int64_t final_count = tally.total - tally.queued;
  return {{"servers", 2},
          {"workers", workers},
          {"captures", captures},
          {"uploaded", uploaded.load()},
          {"refused", refused.load()},
          {"first_error", first_error},
          {"stored", tally.total},
          {"final", final_count},
          {"lost", int64_t(uploaded.load()) - final_count},
          {"published", published.size()},
          {"duplicated", duplicated},
          {"killed", killed ? 1 : 0},
          {"nats_restarted", nats_restarted ? 1 : 0},
          {"postgres_restarted", postgres_restarted ? 1 : 0},
          {"platform_restarted", platform_restarted ? 1 : 0},
          {"forwarded", received.size()},
          {"forwarded_twice", forwarded_twice},
          {"forward_missing", forward_missing},
          {"forward_unexpected", forward_unexpected},
          {"forward_deliveries", deliveries},
          {"forward_pending", forward_pending},
          {"retried_uploads", retried.load()},
          {"worker_restarts", worker_starts.load()},
          {"outcomes", tally.outcomes},
          {"upload_s", upload_s},
          {"elapsed_s", elapsed_s},
          {"snapshots_per_s", elapsed_s > 0 ? double(final_count) / elapsed_s : 0.0},
          {"p50_ms", Pct(lat, 0.5)},
          {"p95_ms", Pct(lat, 0.95)}};
}

void InstallBenchCluster(CLI::App& root) {
  static int workers = 1, captures = 200;
  static Faults faults;
  static bool as_json = false;
  static std::string photos, models;
  auto* cmd =
      Group(root, "bench", "benchmarks")
          ->add_subcommand("cluster",
                           "分布式：两台接口服务器 + N 个识别进程 / two API servers and N "
                           "recognition workers on PostgreSQL and NATS (docs/distributed.md)");
  cmd->add_option("--workers", workers, "recognition worker processes (default 1)")
      ->check(CLI::Range(1, 16));
  cmd->add_option("--captures", captures, "captures to upload (default 200)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--kill-worker", faults.kill_worker,
                "kill the first worker (SIGKILL) a third of the way through, restart it 2 s later");
  cmd->add_flag("--restart-nats", faults.restart_nats,
                "stop nats-server half way through, start it again 2 s later");
  cmd->add_flag("--restart-postgres", faults.restart_postgres,
                "stop PostgreSQL two thirds of the way through, start it again 2 s later");
  cmd->add_flag("--restart-platform", faults.restart_platform,
                "stop the upper platform five sixths of the way through, start it again 2 s "
                "later");
  cmd->add_option("--rate", faults.rate,
                  "captures per second (default: as fast as the servers take them), so that "
                  "the faults fall amid the uploads");
  cmd->add_option("--photos", photos,
                  "directory of face JPEGs to upload (default: LFW under the data directory)");
  cmd->add_option("--models", models, "model directory of every process (default: theirs)");
  cmd->add_flag("--json", as_json, "only the JSON line");
  cmd->callback([] {
    const fs::path dir = photos.empty() ? DefaultDataDir() / "lfw" / "lfw" : fs::path(photos);
    const json r = Run(workers, captures, faults, dir, models);
    if (!as_json) {
      std::printf("%-18s %s\n", "servers / workers",
                  (std::to_string(2) + " / " + std::to_string(workers)).c_str());
      for (const char* k :
           {"captures", "uploaded", "final", "lost", "duplicated", "forwarded", "forwarded_twice",
            "forward_missing", "forward_deliveries", "killed", "nats_restarted",
            "postgres_restarted", "platform_restarted", "retried_uploads", "worker_restarts",
            "snapshots_per_s", "p50_ms", "p95_ms", "elapsed_s"})
        std::printf("%-18s %s\n", k, r[k].dump().c_str());
    }
    std::cout << r.dump() << "\n";
    std::cout.flush();
    // Lost, doubled or not forwarded once: the run fails (R3.3.2.4, R3.4.2.1).
    for (const char* k :
         {"lost", "duplicated", "forwarded_twice", "forward_missing", "forward_unexpected"})
      if (r[k].get<int64_t>() != 0)
        throw Error(ErrorCode::kInternal, std::string("bench cluster: ") + k + " = " + r[k].dump());
  });
}

ANJU_COMMAND(InstallBenchCluster);

}  // namespace
}  // namespace anju::cli
