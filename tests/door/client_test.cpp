// ConverterClient (the terminal side) against a real anju-converter process on 127.0.0.1.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "converter_process.h"
#include "door/converter_client.h"
#include "door/register_map.h"

namespace anju::door {
namespace {

using namespace std::chrono_literals;
using testing::ConverterProcess;
using testing::WaitFor;

std::vector<DoorEventKind> Kinds(const std::vector<DoorEvent>& events) {
  std::vector<DoorEventKind> k;
  for (const auto& e : events) k.push_back(e.kind);
  return k;
}

bool Has(const std::vector<DoorEvent>& events, DoorEventKind kind) {
  for (const auto& e : events)
    if (e.kind == kind) return true;
  return false;
}

class ConverterClientTest : public ::testing::Test {
 protected:
  void SetUp() override { conv_.Start(); }
  ConverterOptions Options() const {
    ConverterOptions o;
    o.port = conv_.port();
    o.timeout = 300ms;
    return o;
  }
  bool Coil(ConverterClient& c, int i) { return c.ReadCoils(i, 1)[0]; }
  ConverterProcess conv_;
};

TEST_F(ConverterClientTest, PulseEndsByItself) {
  ConverterClient client(Options());
  EXPECT_EQ(client.door_count(), 2);
  const auto t0 = std::chrono::steady_clock::now();
  client.Open(0, 300ms);
  EXPECT_TRUE(Coil(client, 0));
  EXPECT_FALSE(Coil(client, 1));
  EXPECT_EQ(client.ReadHoldingRegisters(regs::kHoldPulseMs0, 1)[0], 300);
  EXPECT_TRUE(conv_.Status()["outputs"][0]["released"].get<bool>());
  ASSERT_TRUE(WaitFor([&] { return !Coil(client, 0); }, 2s));
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::printf("300 ms pulse observed as %lld ms (client round trips included)\n",
              static_cast<long long>(ms));
  EXPECT_GE(ms, 290);
  EXPECT_LT(ms, 600);
  EXPECT_EQ(client.ReadInputRegisters(regs::kInPulsesDone0, 1)[0], 1);
  EXPECT_THROW(client.Open(0, 70000ms), Error);
  EXPECT_THROW(client.Open(2, 100ms), Error);
}

TEST_F(ConverterClientTest, LatchHoldsUntilLock) {
  ConverterClient client(Options());
  client.HoldOpen(1);
  std::this_thread::sleep_for(400ms);
  EXPECT_TRUE(Coil(client, 1));
  EXPECT_EQ(conv_.Status()["outputs"][1]["relay_energized"], true);
  client.Lock(1);
  EXPECT_FALSE(Coil(client, 1));
  // Fail-safe mode (maglock): same logical state, inverted relay.
  client.WriteHoldingRegister(regs::kHoldMode1, regs::kModeFailSafe);
  auto st = conv_.Status()["outputs"][1];
  EXPECT_EQ(st["released"], false);
  EXPECT_EQ(st["relay_energized"], true);
  EXPECT_EQ(st["fail_safe"], true);
}

TEST_F(ConverterClientTest, InputsBecomeEvents) {
  auto opts = Options();
  opts.monitor.held_open_limit = 300ms;
  opts.monitor.grant_grace = 100ms;
  ConverterClient client(opts);
  std::vector<DoorEvent> via_callback;
  client.SetEventCallback([&](const DoorEvent& e) { via_callback.push_back(e); });
  EXPECT_TRUE(client.Poll().empty());

  conv_.SetInputs({{"door_contact", true}});
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kForcedOpen});
  conv_.SetInputs({{"door_contact", false}});
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kDoorClosed});

  client.Open(0, 1000ms);
  conv_.SetInputs({{"door_contact", true}});
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kDoorOpened});
  std::this_thread::sleep_for(350ms);
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kHeldOpen});
  conv_.SetInputs({{"door_contact", false}, {"tamper", true}, {"spare", true}});
  auto ev = client.Poll();
  EXPECT_TRUE(Has(ev, DoorEventKind::kDoorClosed));
  EXPECT_TRUE(Has(ev, DoorEventKind::kTamper));
  EXPECT_TRUE(Has(ev, DoorEventKind::kEmergency));
  EXPECT_EQ(client.ReadInputRegisters(regs::kInTamperEvents, 1)[0], 1);
  EXPECT_TRUE(client.ReadInputRegisters(regs::kInStatus, 1)[0] & regs::kStatusTamper);

  conv_.SetInputs({{"exit_button", true}, {"tamper", false}});
  ev = client.Poll();
  EXPECT_TRUE(Has(ev, DoorEventKind::kExitButton));
  EXPECT_TRUE(Has(ev, DoorEventKind::kTamperCleared));
  conv_.SetInputs({{"door_contact", true}});  // exit button granted passage
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kDoorOpened});
  EXPECT_EQ(via_callback.size(), 10u);
  for (const auto& e : via_callback) EXPECT_EQ(e.source, client.name());
}

TEST_F(ConverterClientTest, FireAlarmOverridesLock) {
  ConverterClient client(Options());
  client.Poll();
  client.HoldOpen(1);
  conv_.SetInputs({{"fire_alarm", true}});
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kFireAlarm});
  EXPECT_TRUE(Coil(client, 0));  // released although nobody asked
  client.Lock(0);
  client.Lock(1);
  client.WriteCoil(0, false);
  std::this_thread::sleep_for(150ms);
  EXPECT_TRUE(Coil(client, 0));
  EXPECT_TRUE(Coil(client, 1));
  auto st = conv_.Status();
  EXPECT_TRUE(st["fire_override"].get<bool>());
  EXPECT_FALSE(st["outputs"][0]["requested"].get<bool>());
  EXPECT_TRUE(client.ReadInputRegisters(regs::kInStatus, 1)[0] & regs::kStatusFireOverride);
  // A pulse written during the alarm does not end the release either.
  client.Open(0, 100ms);
  std::this_thread::sleep_for(250ms);
  EXPECT_TRUE(Coil(client, 0));

  conv_.SetInputs({{"fire_alarm", false}});
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kFireAlarmCleared});
  EXPECT_FALSE(Coil(client, 0));  // back to what the clients asked for last: locked
  EXPECT_FALSE(Coil(client, 1));
}

TEST_F(ConverterClientTest, ClientDisappearingMidPulse) {
  // A child process opens the door for 400 ms and dies by SIGKILL straight after.
  const int port = conv_.port();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ConverterOptions o;
    o.port = port;
    ConverterClient c(o);
    c.Open(0, 400ms);
    raise(SIGKILL);
    _exit(1);
  }
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ConverterClient observer(Options());
  EXPECT_TRUE(Coil(observer, 0));
  ASSERT_TRUE(WaitFor([&] { return !Coil(observer, 0); }, 2s));
  EXPECT_EQ(observer.ReadInputRegisters(regs::kInPulsesDone0, 1)[0], 1);

  // Same with a raw socket reset (RST) right after the write request.
  observer.WriteHoldingRegister(regs::kHoldPulseMs1, 400);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // Write single coil 1 = ON (FC 5, value FF00), unit 1, transaction 7.
  const uint8_t req[] = {0, 7, 0, 0, 0, 6, 1, 0x05, 0, 1, 0xFF, 0};
  ASSERT_EQ(send(fd, req, sizeof req, 0), static_cast<ssize_t>(sizeof req));
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  ASSERT_TRUE(WaitFor([&] { return Coil(observer, 1); }, 1s));
  ASSERT_TRUE(WaitFor([&] { return !Coil(observer, 1); }, 2s));
}

TEST_F(ConverterClientTest, ReconnectsAfterConverterRestart) {
  ConverterClient client(Options());
  client.Poll();
  client.Open(0, 100ms);
  EXPECT_EQ(client.connects(), 1);
  const int status = conv_.Stop();  // SIGTERM: clean shutdown
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << conv_.log();
  EXPECT_NE(conv_.log().find("shutting down"), std::string::npos);

  try {
    client.Open(0, 100ms);
    ADD_FAILURE() << "Open succeeded with the converter down";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
  }
  auto ev = client.Poll();
  EXPECT_EQ(Kinds(ev), std::vector{DoorEventKind::kFault});
  EXPECT_TRUE(client.Poll().empty());  // one fault event per outage

  conv_.Start();  // same port
  client.Open(0, 100ms);
  EXPECT_EQ(client.connects(), 2);
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kFaultCleared});
  EXPECT_TRUE(client.connected());
}

TEST_F(ConverterClientTest, IllegalAddressIsAModbusException) {
  ConverterClient client(Options());
  try {
    client.ReadCoils(5, 1);
    ADD_FAILURE() << "no exception";
  } catch (const ModbusException& e) {
    EXPECT_EQ(e.exception_code(), 2);  // ILLEGAL DATA ADDRESS
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
  }
  try {
    client.WriteHoldingRegister(regs::kHoldMode0, 0x40);  // undefined mode bit
    ADD_FAILURE() << "no exception";
  } catch (const ModbusException& e) {
    EXPECT_EQ(e.exception_code(), 3);  // ILLEGAL DATA VALUE
  }
  EXPECT_THROW(client.ReadInputRegisters(regs::kInputRegCount, 1), ModbusException);
  EXPECT_THROW(client.WriteCoil(2, true), ModbusException);
  // The connection stays up and healthy: no fault event, no reconnect.
  EXPECT_TRUE(client.Poll().empty());
  EXPECT_EQ(client.connects(), 1);
  EXPECT_GE(client.ReadInputRegisters(regs::kInExceptions, 1)[0], 4);
}

TEST(ConverterClientTimeout, SilentPeerTimesOut) {
  // A TCP peer that accepts and never answers.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len);
  ConverterOptions o;
  o.port = ntohs(addr.sin_port);
  o.timeout = 200ms;
  ConverterClient client(o);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(client.Lock(0), Error);
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1500ms);  // two attempts of 200 ms, not a hang
  EXPECT_EQ(Kinds(client.Poll()), std::vector{DoorEventKind::kFault});
  close(lfd);
}

}  // namespace
}  // namespace anju::door
