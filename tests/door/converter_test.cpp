// anju-converter against independent Modbus clients: libmodbus's own client calls, the
// mbpoll tool, and raw sockets sending malformed frames and connection floods.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "converter_process.h"
#include "door/register_map.h"

namespace anju::door {
namespace {

using namespace std::chrono_literals;
using testing::ConverterProcess;
using testing::WaitFor;

struct Modbus {
  explicit Modbus(int port) {
    ctx = modbus_new_tcp("127.0.0.1", port);
    modbus_set_slave(ctx, 1);
    modbus_set_response_timeout(ctx, 1, 0);
    ok = modbus_connect(ctx) == 0;
  }
  ~Modbus() {
    modbus_close(ctx);
    modbus_free(ctx);
  }
  modbus_t* ctx;
  bool ok;
};

int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads whatever arrives within `timeout` (until the peer closes or goes quiet).
std::vector<uint8_t> ReadSome(int fd, std::chrono::milliseconds timeout) {
  std::vector<uint8_t> out;
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, static_cast<int>(timeout.count())) > 0) {
    uint8_t buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
    timeout = 50ms;
  }
  return out;
}

// Reads one Modbus TCP response (MBAP header + PDU); empty on timeout or close.
std::vector<uint8_t> RecvFrame(int fd, std::chrono::milliseconds timeout) {
  std::vector<uint8_t> out;
  size_t want = 6;
  pollfd p{fd, POLLIN, 0};
  while (out.size() < want) {
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return {};
    uint8_t buf[300];
    ssize_t n = recv(fd, buf, want - out.size(), 0);
    if (n <= 0) return {};
    out.insert(out.end(), buf, buf + n);
    if (out.size() == 6) want = 6 + ((out[4] << 8) | out[5]);
  }
  return out;
}

// The converter still answers a normal client correctly and quickly.
void ExpectAlive(int port) {
  Modbus mb(port);
  ASSERT_TRUE(mb.ok) << "converter no longer accepts connections";
  uint16_t r[2];
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(modbus_read_registers(mb.ctx, 0, 2, r), 2) << modbus_strerror(errno);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
}

class ConverterTest : public ::testing::Test {
 protected:
  void SetUp() override { conv_.Start(); }
  ConverterProcess conv_;
};

TEST_F(ConverterTest, RegisterMapWithLibmodbusClient) {
  Modbus mb(conv_.port());
  ASSERT_TRUE(mb.ok);
  uint8_t bits[8] = {};
  uint16_t regs[16] = {};
  ASSERT_EQ(modbus_read_input_bits(mb.ctx, 0, 5, bits), 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bits[i], 0);
  conv_.SetInputs({{"door_contact", true}, {"fire_alarm", false}, {"tamper", true}});
  ASSERT_EQ(modbus_read_input_bits(mb.ctx, 0, 5, bits), 5);
  EXPECT_EQ(bits[regs::kInputDoorContact], 1);
  EXPECT_EQ(bits[regs::kInputExitButton], 0);
  EXPECT_EQ(bits[regs::kInputTamper], 1);
  EXPECT_EQ(bits[regs::kInputFireAlarm], 0);

  ASSERT_EQ(modbus_read_registers(mb.ctx, 0, 4, regs), 4);
  EXPECT_EQ(regs[0], 3000);  // default pulse width
  EXPECT_EQ(regs[2], 0);     // pulse, fail-secure
  const uint16_t widths[2] = {250, 0};
  ASSERT_EQ(modbus_write_registers(mb.ctx, 0, 2, widths), 2);
  const uint8_t on[2] = {1, 1};
  ASSERT_EQ(modbus_write_bits(mb.ctx, 0, 2, on), 2);  // FC 15 on both outputs
  ASSERT_EQ(modbus_read_bits(mb.ctx, 0, 2, bits), 2);
  EXPECT_EQ(bits[0], 1);
  EXPECT_EQ(bits[1], 1);
  std::this_thread::sleep_for(400ms);
  ASSERT_EQ(modbus_read_bits(mb.ctx, 0, 2, bits), 2);
  EXPECT_EQ(bits[0], 0);  // pulsed 250 ms
  EXPECT_EQ(bits[1], 1);  // width 0 = latch
  ASSERT_EQ(modbus_write_bit(mb.ctx, 1, 0), 1);

  ASSERT_EQ(modbus_read_input_registers(mb.ctx, 0, regs::kInputRegCount, regs),
            regs::kInputRegCount);
  EXPECT_EQ(regs[regs::kInStatus] & (regs::kStatusTamper | regs::kStatusSimulated),
            regs::kStatusTamper | regs::kStatusSimulated);
  EXPECT_EQ(regs[regs::kInPulsesDone0], 1);
  EXPECT_EQ(regs[regs::kInTamperEvents], 1);
  EXPECT_GE(regs[regs::kInConnections], 1);
  EXPECT_GE(regs[regs::kInClientsNow], 1);

  // Illegal addresses and values come back as Modbus exceptions.
  EXPECT_EQ(modbus_read_input_registers(mb.ctx, 0, regs::kInputRegCount + 1, regs), -1);
  EXPECT_EQ(errno, EMBXILADD);
  EXPECT_EQ(modbus_read_input_bits(mb.ctx, 5, 1, bits), -1);
  EXPECT_EQ(errno, EMBXILADD);
  EXPECT_EQ(modbus_write_bit(mb.ctx, 2, 1), -1);
  EXPECT_EQ(errno, EMBXILADD);
  EXPECT_EQ(modbus_write_register(mb.ctx, regs::kHoldMode0, 7), -1);
  EXPECT_EQ(errno, EMBXILVAL);
  EXPECT_EQ(modbus_write_register(mb.ctx, regs::kHoldMode0, regs::kModeLatch), 1);
  // Mask write and write-and-read (FC 22 / FC 23) also work on the map.
  EXPECT_EQ(modbus_mask_write_register(mb.ctx, regs::kHoldMode0, 0, regs::kModeFailSafe), 1);
  uint16_t w = 1234;
  ASSERT_EQ(modbus_write_and_read_registers(mb.ctx, 1, 1, &w, 0, 4, regs), 4);
  EXPECT_EQ(regs[1], 1234);
  EXPECT_EQ(regs[2], regs::kModeFailSafe);
  // Unit id 1 is this device; others are refused with "gateway target failed".
  modbus_set_slave(mb.ctx, 9);
  EXPECT_EQ(modbus_read_registers(mb.ctx, 0, 1, regs), -1);
  EXPECT_EQ(errno, EMBXGTAR);
}

std::string Shell(const std::string& cmd, int* exit_code = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int st = pclose(p);
  if (exit_code) *exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

TEST_F(ConverterTest, MbpollSeesTheStandardMap) {
  if (Shell("command -v mbpoll").empty())
    GTEST_SKIP() << "mbpoll not installed (apt-get install mbpoll; scripts/debian-packages.txt)";
  // -0: PDU (0-based) addresses; -1: one poll; -t 0 coils, 1 inputs, 3 input regs, 4 holding.
  const std::string mb = "mbpoll -m tcp -a 1 -0 -1 -o 1 -p " + std::to_string(conv_.port()) + " ";
  int rc = -1;
  Shell(mb + "-t 4 -r 0 127.0.0.1 300", &rc);
  EXPECT_EQ(rc, 0);
  Shell(mb + "-t 0 -r 0 127.0.0.1 1", &rc);
  EXPECT_EQ(rc, 0);
  EXPECT_NE(Shell(mb + "-t 0 -r 0 -c 2 127.0.0.1").find("[0]: \t1"), std::string::npos);
  std::this_thread::sleep_for(450ms);
  auto coils = Shell(mb + "-t 0 -r 0 -c 2 127.0.0.1");
  EXPECT_NE(coils.find("[0]: \t0"), std::string::npos) << coils;
  conv_.SetInputs({{"fire_alarm", true}});
  auto inputs = Shell(mb + "-t 1 -r 0 -c 5 127.0.0.1");
  EXPECT_NE(inputs.find("[3]: \t1"), std::string::npos) << inputs;
  EXPECT_NE(inputs.find("[0]: \t0"), std::string::npos) << inputs;
  coils = Shell(mb + "-t 0 -r 0 -c 2 127.0.0.1");  // fire alarm releases both outputs
  EXPECT_NE(coils.find("[0]: \t1"), std::string::npos) << coils;
  EXPECT_NE(coils.find("[1]: \t1"), std::string::npos) << coils;
  auto ir = Shell(mb + "-t 3 -r 1 -c 1 127.0.0.1");  // pulses done, output 0
  EXPECT_NE(ir.find("[1]: \t1"), std::string::npos) << ir;
  auto bad = Shell(mb + "-t 3 -r 40 -c 1 127.0.0.1");
  EXPECT_NE(bad.find("Illegal data address"), std::string::npos) << bad;
}

TEST_F(ConverterTest, MalformedFramesDoNotCrashOrWedge) {
  const int port = conv_.port();
  // 1. Random garbage on many connections.
  std::mt19937 rng(5);
  for (int i = 0; i < 60; ++i) {
    int fd = Connect(port);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> junk(1 + rng() % 300);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    if (i % 2) ReadSome(fd, 20ms);
    close(fd);
  }
  ExpectAlive(port);

  // 1b. Well-framed requests (right MBAP length) with random PDUs: every one gets exactly
  //     one answer, a normal reply or an exception, with its transaction id.
  {
    const uint8_t fcs[] = {1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 22, 23, 0x2B, 0x80, 0};
    int fd = Connect(port);
    ASSERT_GE(fd, 0);
    int answered = 0;
    const int kFrames = 1500;
    for (int i = 0; i < kFrames; ++i) {
      const size_t pdu = 1 + rng() % (i % 3 == 0 ? 252 : 12);
      std::vector<uint8_t> f(7 + pdu);
      f[0] = static_cast<uint8_t>(i >> 8);
      f[1] = static_cast<uint8_t>(i);
      f[4] = static_cast<uint8_t>((pdu + 1) >> 8);
      f[5] = static_cast<uint8_t>(pdu + 1);
      f[6] = 1;
      for (size_t k = 7; k < f.size(); ++k) f[k] = static_cast<uint8_t>(rng() % (k < 11 ? 4 : 256));
      f[7] = fcs[rng() % std::size(fcs)];
      if (f[7] == 0) f[7] = static_cast<uint8_t>(rng());
      ASSERT_EQ(send(fd, f.data(), f.size(), MSG_NOSIGNAL), static_cast<ssize_t>(f.size()));
      auto r = RecvFrame(fd, 1000ms);
      ASSERT_GE(r.size(), 9u) << "no answer to frame " << i << " function " << int(f[7]);
      EXPECT_EQ(r[0], f[0]);
      EXPECT_EQ(r[1], f[1]);
      EXPECT_EQ(r[7] & 0x7F, f[7] & 0x7F);
      ++answered;
    }
    EXPECT_EQ(answered, kFrames);
    close(fd);
  }
  ExpectAlive(port);

  // 2. Bad MBAP headers: protocol id 5, length 0, 1, 255 and 0xFFFF -> connection closed.
  const std::vector<std::vector<uint8_t>> bad_headers = {
      {0, 1, 0, 5, 0, 6, 1, 3, 0, 0, 0, 1},
      {0, 1, 0, 0, 0, 0, 1},
      {0, 1, 0, 0, 0, 1, 1},
      {0, 1, 0, 0, 0, 255, 1, 3, 0, 0, 0, 1},
      {0, 1, 0, 0, 0xFF, 0xFF, 1, 3, 0, 0, 0, 1}};
  for (const auto& frame : bad_headers) {
    int fd = Connect(port);
    send(fd, frame.data(), frame.size(), MSG_NOSIGNAL);
    auto got = ReadSome(fd, 1000ms);
    EXPECT_TRUE(got.empty()) << "answered a bad header";
    uint8_t b;
    EXPECT_LE(recv(fd, &b, 1, MSG_DONTWAIT), 0);  // closed by the converter
    close(fd);
  }

  // 3. Length field consistent but the PDU does not match its function code ->
  //    exception 3 (illegal data value); unknown function -> exception 1.
  struct Case {
    std::vector<uint8_t> frame;
    uint8_t fc, code;
  };
  const std::vector<Case> cases = {
      {{0, 2, 0, 0, 0, 8, 1, 3, 0, 0, 0, 1, 9, 9}, 0x83, 3},        // FC3 + 2 extra bytes
      {{0, 3, 0, 0, 0, 4, 1, 3, 0, 0}, 0x83, 3},                    // FC3 missing quantity
      {{0, 4, 0, 0, 0, 9, 1, 0x10, 0, 0, 0, 2, 4, 0, 1}, 0x90, 3},  // FC16 byte count lies
      {{0, 5, 0, 0, 0, 6, 1, 5, 0, 0, 0x12, 0x34}, 0x85, 3},        // FC5 value not FF00/0
      {{0, 6, 0, 0, 0, 6, 1, 3, 0, 0, 0, 0}, 0x83, 3},              // quantity 0
      {{0, 7, 0, 0, 0, 6, 1, 3, 0, 0, 0x7F, 0xFF}, 0x83, 3},        // quantity too large
      {{0, 8, 0, 0, 0, 2, 1, 0x2B}, 0xAB, 1},                       // unknown function
      {{0, 9, 0, 0, 0, 6, 1, 1, 0xFF, 0xFF, 0, 1}, 0x81, 2},        // address 65535
  };
  int fd = Connect(port);
  for (const auto& c : cases) {
    ASSERT_EQ(send(fd, c.frame.data(), c.frame.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(c.frame.size()));
    auto got = ReadSome(fd, 1000ms);
    ASSERT_EQ(got.size(), 9u) << "function " << int(c.frame[7]);
    EXPECT_EQ(got[0], c.frame[0]);  // transaction id echoed
    EXPECT_EQ(got[1], c.frame[1]);
    EXPECT_EQ(got[7], c.fc);
    EXPECT_EQ(got[8], c.code);
  }
  // Two requests in one segment, and one request split over three segments.
  const std::vector<uint8_t> two = {0, 10, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1,
                                    0, 11, 0, 0, 0, 6, 1, 4, 0, 0, 0, 1};
  send(fd, two.data(), two.size(), MSG_NOSIGNAL);
  auto got = ReadSome(fd, 1000ms);
  EXPECT_EQ(got.size(), 22u);
  const uint8_t split[] = {0, 12, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1};
  send(fd, split, 3, MSG_NOSIGNAL);
  std::this_thread::sleep_for(30ms);
  send(fd, split + 3, 5, MSG_NOSIGNAL);
  std::this_thread::sleep_for(30ms);
  send(fd, split + 8, 4, MSG_NOSIGNAL);
  got = ReadSome(fd, 1000ms);
  ASSERT_EQ(got.size(), 11u);
  EXPECT_EQ(got[1], 12);
  close(fd);

  // 4. Truncated frames: half a request and then silence. The converter drops the
  //    connection after its partial-frame timeout and meanwhile serves everybody else.
  int stuck = Connect(port);
  const uint8_t half[] = {0, 13, 0, 0, 0, 6, 1, 3};
  send(stuck, half, sizeof half, MSG_NOSIGNAL);
  ExpectAlive(port);
  auto t0 = std::chrono::steady_clock::now();
  uint8_t b;
  pollfd p{stuck, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(recv(stuck, &b, 1, 0), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
  close(stuck);

  auto st = conv_.Status();
  EXPECT_GE(st["counters"]["malformed"].get<int>(), 6);
  EXPECT_GE(st["counters"]["exceptions"].get<int>(), 8);
  ExpectAlive(port);
}

TEST_F(ConverterTest, ConnectionAndRequestFlood) {
  const int port = conv_.port();
  // 1. 300 connections at once: beyond --max-clients (32) they are refused, not queued
  //    forever, and nothing breaks.
  std::vector<int> fds;
  for (int i = 0; i < 300; ++i) {
    int fd = Connect(port);
    if (fd >= 0) fds.push_back(fd);
  }
  std::this_thread::sleep_for(200ms);
  for (int fd : fds) close(fd);
  EXPECT_TRUE(WaitFor([&] { return conv_.Status()["counters"]["clients_now"] == 0; }, 2s));
  EXPECT_GT(conv_.Status()["counters"]["refused"].get<int>(), 0);
  ExpectAlive(port);

  // 2. Eight clients hammering requests in parallel; every answer must be right.
  std::atomic<int> ok{0}, bad{0};
  const int kClients = 8, kRequests = 300;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c)
    threads.emplace_back([&, c] {
      Modbus mb(port);
      if (!mb.ok) {
        bad += kRequests;
        return;
      }
      for (int i = 0; i < kRequests; ++i) {
        uint16_t v = static_cast<uint16_t>(c * 1000 + i), r[4];
        if (c == 0 && modbus_write_register(mb.ctx, 1, v) != 1) ++bad;
        if (modbus_read_registers(mb.ctx, 0, 4, r) == 4 &&
            modbus_read_input_registers(mb.ctx, 0, 4, r) == 4)
          ++ok;
        else
          ++bad;
      }
    });
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("request flood: %d clients x %d x 2 reads in %.2f s (%.0f requests/s)\n", kClients,
              kRequests, secs, 2.0 * kClients * kRequests / secs);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRequests);
  ExpectAlive(port);
}

TEST(ConverterProgram, HelpListsOptions) {
  auto out = Shell(std::string(ANJU_CONVERTER_BIN) + " --help");
  for (const char* opt : {"--listen", "--simulate", "--status", "--rtu", "--baud", "--gpio-chip",
                          "--pulse-ms", "--ready-file", "--tls-dir", "--plain-http"})
    EXPECT_NE(out.find(opt), std::string::npos) << opt;
}

// The HTTP status endpoint speaks only HTTPS with a self-signed certificate
// that clients trust as their CA file and that survives a restart.
TEST(ConverterProgram, StatusEndpointIsHttpsWithAKeptCertificate) {
  ConverterProcess conv;
  conv.Start();
  ASSERT_TRUE(std::filesystem::exists(conv.status_cert())) << conv.log();
  EXPECT_EQ(conv.Status()["io"], "simulate");  // SSLClient with the certificate as CA
  EXPECT_EQ(conv.SetInputs({{"tamper", true}})["inputs"]["tamper"], true);
  EXPECT_NE(conv.log().find(conv.status_fingerprint()), std::string::npos);
  // Plain HTTP on the same port gets no valid HTTP answer.
  httplib::Client plain("127.0.0.1", conv.status_port());
  plain.set_read_timeout(3, 0);
  auto bad = plain.Get("/status");
  EXPECT_TRUE(!bad || bad->status != 200);
  // A client that does not trust the certificate refuses the connection.
  httplib::SSLClient untrusting("127.0.0.1", conv.status_port());
  untrusting.enable_server_certificate_verification(true);
  EXPECT_FALSE(untrusting.Get("/status"));
  // Restart: the same certificate.
  const std::string fp = conv.status_fingerprint();
  ASSERT_FALSE(fp.empty());
  conv.Stop();
  conv.Start();
  EXPECT_EQ(conv.status_fingerprint(), fp);
  EXPECT_EQ(conv.Status()["inputs"]["tamper"], false);
}

TEST(ConverterProgram, SigintShutsDownCleanly) {
  ConverterProcess conv;
  conv.Start();
  ExpectAlive(conv.port());
  Modbus idle(conv.port());  // a connected client must not keep it from exiting
  ASSERT_TRUE(idle.ok);
  const auto t0 = std::chrono::steady_clock::now();
  const int status = conv.Stop(SIGINT);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << conv.log();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_NE(conv.log().find("shutting down"), std::string::npos);
}

}  // namespace
}  // namespace anju::door

namespace anju::door {
namespace {

uint16_t Crc16(const uint8_t* p, size_t n) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc & 1) ? (crc >> 1) ^ 0xA001 : crc >> 1;
  }
  return crc;
}

std::vector<uint8_t> RtuFrame(std::vector<uint8_t> body) {
  const uint16_t crc = Crc16(body.data(), body.size());
  body.push_back(static_cast<uint8_t>(crc & 0xFF));  // CRC is sent low byte first
  body.push_back(static_cast<uint8_t>(crc >> 8));
  return body;
}

std::vector<uint8_t> ReadRtu(int fd, size_t want, int timeout_ms = 1500) {
  std::vector<uint8_t> out;
  pollfd p{fd, POLLIN, 0};
  while (out.size() < want && poll(&p, 1, timeout_ms) > 0) {
    uint8_t buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

// Modbus RTU on a pseudo terminal stands in for the RS485 port: the same map, CRCs
// checked, frames for other slaves ignored.
TEST(ConverterRtu, SameMapOverSerial) {
  int master = -1, slave = -1;
  char name[128] = {};
  ASSERT_EQ(openpty(&master, &slave, name, nullptr, nullptr), 0);
  termios t{};
  tcgetattr(master, &t);
  cfmakeraw(&t);
  tcsetattr(master, TCSANOW, &t);
  testing::ConverterProcess conv({"--rtu", name, "--baud", "9600"});
  conv.Start();
  // Read holding registers 0..1 of slave 1: 3000 ms default pulse widths.
  auto req = RtuFrame({1, 3, 0, 0, 0, 2});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  auto rsp = ReadRtu(master, 9);
  ASSERT_EQ(rsp.size(), 9u);
  EXPECT_EQ(rsp, RtuFrame({1, 3, 4, 0x0B, 0xB8, 0x0B, 0xB8}));
  // Write coil 0 on (pulse 3000 ms), then read the status register: bit 0x01 and 0x20.
  req = RtuFrame({1, 5, 0, 0, 0xFF, 0});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  EXPECT_EQ(ReadRtu(master, 8), req);  // FC 5 echoes the request
  req = RtuFrame({1, 4, 0, 0, 0, 1});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  rsp = ReadRtu(master, 7);
  ASSERT_EQ(rsp.size(), 7u);
  EXPECT_EQ(rsp[4] & (regs::kStatusReleased0 | regs::kStatusRtu),
            regs::kStatusReleased0 | regs::kStatusRtu);
  // Illegal address -> exception 2; a bad CRC and another slave's frame -> no answer.
  req = RtuFrame({1, 2, 0, 9, 0, 1});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  EXPECT_EQ(ReadRtu(master, 5), RtuFrame({1, 0x82, 2}));
  std::vector<uint8_t> bad = RtuFrame({1, 3, 0, 0, 0, 1});
  bad.back() ^= 0x55;
  ASSERT_EQ(write(master, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  EXPECT_TRUE(ReadRtu(master, 1, 300).empty());
  req = RtuFrame({7, 3, 0, 0, 0, 1});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  EXPECT_TRUE(ReadRtu(master, 1, 300).empty());
  // On a real bus slave 7 answers next; libmodbus skips that answer as not its business.
  req = RtuFrame({7, 3, 2, 0, 0});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(100ms);
  // Still serving afterwards.
  req = RtuFrame({1, 1, 0, 0, 0, 2});
  ASSERT_EQ(write(master, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  rsp = ReadRtu(master, 6);
  ASSERT_EQ(rsp.size(), 6u) << conv.log();
  EXPECT_EQ(rsp, RtuFrame({1, 1, 1, rsp[3]}));  // coil 0 on or already pulsed off
  conv.Stop();
  close(master);
  close(slave);
}

}  // namespace
}  // namespace anju::door
