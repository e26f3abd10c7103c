// Whole-process fault tests (docs/reliability.md): the real programs — anju-server,
// anju-terminal, anju-capture, anju-converter — started by the test as child processes on
// temporary data directories and loopback (or a network namespace), killed with SIGKILL at
// random moments and restarted, their durable files read back to check that nothing
// acknowledged was lost or doubled.
//
// What "acknowledged" means here: a record committed to the terminal's outbox (outbox.db) or
// a capture committed to the capture program's buffer (capture.db). The test watches both
// files read-only while the programs run and collects every item it sees; at the end every
// one of them must be on the server exactly once, in outbox order.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace anju::faults {

namespace fs = std::filesystem;
using nlohmann::json;
using Ms = std::chrono::milliseconds;

// build/bin (where the test binary itself lives).
fs::path BinDir();
// A TCP port free on 127.0.0.1 right now.
int FreePort();
bool IsRoot();
// Polls PRED every 20 ms until true or TIMEOUT; returns its last value.
bool WaitFor(const std::function<bool()>& pred, Ms timeout);
std::string ReadText(const fs::path& file);
void WriteText(const fs::path& file, const std::string& text);
// Uniform in [lo, hi].
int Random(int lo, int hi);

// One child process: argv[0] is run directly, or through `ip netns exec NS` when NETNS is
// set; stdout and stderr are appended to LOG. Extra environment variables in ENV.
class Child {
 public:
  Child(std::string name, std::vector<std::string> argv, fs::path log,
        std::vector<std::string> env = {}, std::string netns = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void Start();
  // Sends SIG and reaps the process (SIGKILL after WAIT if it does not exit).
  // Returns the wait status.
  int Stop(int sig = 15, Ms wait = Ms(15'000));
  bool Running();  // reaps it when it has exited
  // Waits for the process to exit by itself; the exit code, or -1 on timeout / signal.
  int WaitExit(Ms timeout);
  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const fs::path& log() const { return log_; }
  std::vector<std::string>& argv() { return argv_; }

 private:
  std::string name_;
  std::vector<std::string> argv_;
  fs::path log_;
  std::vector<std::string> env_;
  std::string netns_;
  pid_t pid_ = -1;
  int status_ = 0;
};

// HTTPS (or HTTP) JSON calls with an optional bearer token; CA = the peer's self-signed
// certificate. Returns {status, body}; status 0 when the peer did not answer.
struct HttpReply {
  int status = 0;
  std::string body;
  json Json() const;
};
HttpReply Http(const std::string& base_url, const std::string& ca_file, const std::string& method,
               const std::string& path, const std::string& body = {}, const std::string& token = {},
               Ms timeout = Ms(10'000));

// anju-server on DATA_DIR, listening on HOST:PORT (inside NETNS when given).
class Server {
 public:
  Server(fs::path data_dir, std::string host, int port, std::string netns = {});
  void Start(Ms timeout = Ms(120'000));  // returns once /healthz answers
  void Kill() { child_.Stop(9); }
  void Stop() { child_.Stop(15); }
  bool Running() { return child_.Running(); }
  std::string url() const;
  fs::path ca_file() const { return data_dir_ / "tls" / "server.crt"; }
  const fs::path& data_dir() const { return data_dir_; }
  Child& child() { return child_; }
  // An admin API call with the integration token (data_dir/admin.token); expects 2xx.
  json Api(const std::string& method, const std::string& path, const json& body = nullptr);

  // New terminal device: its enrolment code and id.
  std::pair<std::string, std::string> AddDevice(const std::string& name);
  void AddCamera(const std::string& device_id, const std::string& password);

 private:
  fs::path data_dir_;
  std::string host_;
  int port_;
  Child child_;
};

// anju-converter, simulated I/O, Modbus and HTTPS status on fixed free loopback ports
// (kept across restarts, so the terminal's config stays valid).
class Converter {
 public:
  explicit Converter(fs::path dir, std::string netns = {});
  void Start();
  void Kill() { child_.Stop(9); }
  void Stop() { child_.Stop(15); }
  int modbus_port() const { return modbus_port_; }
  json Status();                   // GET /status (throws when it does not answer)
  bool SetInputs(const json& in);  // POST /inputs; false when it did not answer
  bool Released(int output);       // outputs[i].released; false when not answering
  // Opens or closes the door contact N times, 350 ms apart: each change one door record.
  void FlipDoorContact(int n);
  Child& child() { return child_; }

 private:
  fs::path dir_;
  int modbus_port_, status_port_;
  bool door_contact_ = false;
  Child child_;
};

struct TerminalSetup {
  fs::path dir;       // config and log
  fs::path data_dir;  // default: dir/data
  std::string server_url;
  fs::path server_ca;
  std::string enrolment_code;
  int converter_port = 0;  // 0 = "log" door
  int status_port = 0;     // 0 = no status page
  fs::path frames;         // camera: dir:frames?fps=…&loop=1
  int fps = 2;
  std::string netns;
  std::vector<std::string> env;  // e.g. libfaketime
  json extra = json::object();   // merged into the config
};

// A one-door gate: the terminal in DIR registers with SERVER by CODE, drives CONVERTER's
// door, serves its status page on a free port and watches FRAMES (two faceless frames,
// written here).
TerminalSetup GateSetup(const fs::path& dir, const std::string& server_url,
                        const fs::path& server_ca, const std::string& code, int converter_port,
                        const fs::path& frames);

// anju-terminal with the config written from TerminalSetup.
class Terminal {
 public:
  explicit Terminal(TerminalSetup setup);
  void Start();
  void Kill() { child_.Stop(9); }
  void Stop() { child_.Stop(15); }
  fs::path data_dir() const {
    return setup_.data_dir.empty() ? setup_.dir / "data" : setup_.data_dir;
  }
  fs::path outbox() const { return data_dir() / "outbox.db"; }
  fs::path config() const { return setup_.dir / "terminal.json"; }
  // GET /status.json or /healthz of the plain-HTTP status page.
  HttpReply Get(const std::string& path);
  // /status.json, or an empty object while the status page does not answer.
  json Status();
  bool Registered() const;  // the device key and identity are stored
  Child& child() { return child_; }
  const TerminalSetup& setup() const { return setup_; }

 private:
  TerminalSetup setup_;
  Child child_;
};

// anju-capture with one camera on a looping image directory.
class CaptureProgram {
 public:
  // LOOP false: the source plays once (with --exit-at-end the program then uploads its
  // buffer and exits).
  CaptureProgram(fs::path dir, std::string server_url, fs::path server_ca, std::string device_id,
                 std::string password, fs::path frames, bool loop = true);
  void Start();
  void Kill() { child_.Stop(9); }
  void Stop() { child_.Stop(15); }
  fs::path buffer() const { return dir_ / "buffer" / "capture.db"; }
  Child& child() { return child_; }

 private:
  fs::path dir_;
  Child child_;
};

// Writes COUNT grey frames (PNG) into DIR, and face photos copied between them when given.
void WriteFrames(const fs::path& dir, int blanks_between, const std::vector<fs::path>& faces,
                 int frames_per_face);

// An item seen in an outbox file.
struct SeenItem {
  int64_t seq = 0;
  std::string id;  // outbox id (terminal) or FaceID (capture)
  std::string kind;
  std::string payload;
};

// Reads OUTBOX (read-only) every 20 ms on a thread and remembers every item it ever saw.
// KEY_OF picks the identity of an item (default: the outbox id).
class OutboxWatcher {
 public:
  using KeyOf = std::function<std::string(const SeenItem&)>;
  explicit OutboxWatcher(fs::path outbox, KeyOf key_of = nullptr);
  ~OutboxWatcher();
  void Stop();
  // Every item seen so far, in outbox order.
  std::vector<SeenItem> Seen();
  // Items in the file at the last read (-1 when it could not be read).
  int64_t Current() const { return current_; }
  uint64_t reads() const { return reads_; }

 private:
  void Loop();
  fs::path file_;
  KeyOf key_of_;
  std::mutex mu_;
  std::map<std::string, SeenItem> seen_;
  std::atomic<int64_t> current_{-1};
  std::atomic<uint64_t> reads_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Rows of the server's events.db for DEVICE (seq order): id, kind, payload.
std::vector<SeenItem> ServerEvents(const fs::path& server_dir, const std::string& device);
// FaceIDs of the server's captures.db for the camera DEVICE, with their state.
std::map<std::string, std::string> ServerCaptures(const fs::path& server_dir,
                                                  const std::string& device);
// Quarantined events of DEVICE (events the server refused to store).
int64_t ServerQuarantine(const fs::path& server_dir, const std::string& device);

// Compares what the programs acknowledged with what the server holds.
struct Delivery {
  size_t acknowledged = 0;  // items seen in the outbox
  size_t stored = 0;        // rows on the server for the device
  size_t lost = 0;          // seen, not on the server
  size_t duplicates = 0;    // same logical record stored more than once
  size_t out_of_order = 0;  // server order differs from outbox order
  std::vector<std::string> examples;
  json ToJson() const;
};
// Terminal records: SEEN from the outbox vs the server's events. Logical duplicates are
// events with identical payloads (every payload carries its own millisecond time).
Delivery CheckEvents(const std::vector<SeenItem>& seen, const std::vector<SeenItem>& server);
// Captures: FaceIDs seen in the buffer vs the server's captures.
Delivery CheckCaptures(const std::vector<SeenItem>& seen,
                       const std::map<std::string, std::string>& server);

// A network namespace with a veth pair to the root namespace: root side 10.231.K.1,
// namespace side 10.231.K.2. Removed again on destruction.
class NetNs {
 public:
  // Throws (test skip) when it cannot be made (not root, no netns support).
  explicit NetNs(const std::string& tag);
  ~NetNs();
  const std::string& name() const { return name_; }
  std::string root_ip() const { return prefix_ + ".1"; }
  std::string ns_ip() const { return prefix_ + ".2"; }
  // Cuts the link from inside the namespace: the root side loses its carrier and packets
  // to the namespace go nowhere (no reset, no "unreachable"): a cable pulled out.
  void Cut();
  void Heal();
  static std::string Unavailable();  // why netns tests cannot run here ("" = they can)

 private:
  std::string name_, root_if_, ns_if_, prefix_;
};

}  // namespace anju::faults
