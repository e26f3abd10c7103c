// The door signal converter's Modbus TCP server (door/signal_converter.h, docs/door-io.md) and the
// Wiegand decoder. The first byte picks:
//   0  the rest goes, as one TCP stream, to a real simulated converter running in this
//      process (its own select() loop, MBAP framing, PDU prechecks, libmodbus replies). Every
//      answer must be a well-formed MBAP frame echoing a transaction id that was sent, and the
//      converter must still answer a valid read on a separate connection afterwards;
//   1  Wiegand bits ('0' / '1' text): DecodeWiegand refuses with anju::Error or decodes a card
//      that encodes back to the same bits.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "door/signal_converter.h"
#include "door/wiegand.h"

using namespace anju;

namespace {

int g_port = 0;

// A failed check of the harness: says which one (and errno) before the trap, so that a
// finding tells a converter bug from a harness or machine limit.
[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_modbus: %s (errno %d: %s)\n", what, errno, std::strerror(errno));
  __builtin_trap();
}

void StartConverter() {
  static bool started = false;
  if (started) return;
  started = true;
  spdlog::set_level(spdlog::level::off);
  door::Config c;
  c.listen_host = "127.0.0.1";
  c.listen_port = "0";
  c.max_clients = 64;
  c.partial_frame_timeout = std::chrono::milliseconds(200);
  static door::Converter* conv = new door::Converter(c);  // lives for the process
  g_port = conv->modbus_port();
  std::thread([] { conv->Run(); }).detach();
}

int Connect() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(g_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) Fail("socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    // Interrupted by libFuzzer's SIGALRM, the connection goes on: wait for it to finish.
    if (errno != EINTR) Fail("connect");
    pollfd p{fd, POLLOUT, 0};
    while (poll(&p, 1, 5000) < 0)
      if (errno != EINTR) Fail("connect: poll");
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      errno = err;
      Fail("connect (after an interrupted wait)");
    }
  }
  return fd;
}

// Reads until the peer closes or TIMEOUT_MS passes without data.
std::vector<uint8_t> ReadAll(int fd, int timeout_ms) {
  std::vector<uint8_t> out;
  uint8_t buf[4096];
  for (;;) {
    // libFuzzer's -timeout arms SIGALRM: an interrupted wait is no end of the answer.
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

void Converse(const uint8_t* data, size_t size) {
  std::set<uint16_t> sent;
  for (size_t i = 0; i + 7 <= size;) {  // transaction ids of the frames as the server cuts them
    sent.insert(static_cast<uint16_t>(data[i] << 8 | data[i + 1]));
    const size_t len = static_cast<size_t>(data[i + 4] << 8 | data[i + 5]);
    if (len < 2) break;
    i += 6 + len;
  }
  const int fd = Connect();
  size_t off = 0;
  while (off < size) {
    const ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the converter closed a malformed stream
    off += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  const std::vector<uint8_t> in = ReadAll(fd, 2000);
  close(fd);
  for (size_t i = 0; i < in.size();) {
    if (in.size() - i < 8) Fail("truncated answer");
    const uint16_t tid = static_cast<uint16_t>(in[i] << 8 | in[i + 1]);
    const size_t len = static_cast<size_t>(in[i + 4] << 8 | in[i + 5]);
    if (in[i + 2] != 0 || in[i + 3] != 0 || len < 2) Fail("malformed MBAP header");
    if (!sent.count(tid)) Fail("answer to a transaction id never sent");
    i += 6 + len;
    if (i > in.size()) Fail("answer shorter than its MBAP length");
  }
  // Still serving: read input register 0 (status bits) on a fresh connection.
  const uint8_t probe[] = {0x12, 0x34, 0, 0, 0, 6, 1, 4, 0, 0, 0, 1};
  const int c = Connect();
  if (send(c, probe, sizeof probe, MSG_NOSIGNAL) != sizeof probe) Fail("probe not sent");
  shutdown(c, SHUT_WR);
  const std::vector<uint8_t> r = ReadAll(c, 5000);
  close(c);
  if (r.size() != 11 || r[0] != 0x12 || r[1] != 0x34 || r[7] != 4 || r[8] != 2)
    Fail(r.empty() ? "probe: no answer" : "probe: wrong answer");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  if (data[0] % 2 == 0) {
    StartConverter();
    Converse(data + 1, size - 1);
    return 0;
  }
  const std::string_view bits(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const door::WiegandCard card = door::DecodeWiegand(bits);
    if (!door::WiegandParityOk(bits) || door::EncodeWiegand(card) != bits) __builtin_trap();
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kInvalidArgument && e.code() != ErrorCode::kCorrupt)
      __builtin_trap();
  }
  return 0;
}
