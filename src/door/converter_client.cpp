#include "door/converter_client.h"

#include <modbus.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "door/register_map.h"

namespace anju::door {

using Clock = std::chrono::steady_clock;

namespace {

ErrorCode CodeForException(int code) {
  switch (code) {
    case MODBUS_EXCEPTION_ILLEGAL_FUNCTION:
    case MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS:
    case MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE:
      return ErrorCode::kInvalidArgument;
    default:
      return ErrorCode::kUnavailable;
  }
}

}  // namespace

ModbusException::ModbusException(int exception_code, const std::string& what)
    : Error(CodeForException(exception_code), what), exception_code_(exception_code) {}

ConverterClient::ConverterClient(ConverterOptions options)
    : options_(std::move(options)),
      monitor_(0, "converter " + options_.host + ":" + std::to_string(options_.port),
               options_.monitor) {
  if (options_.port <= 0 || options_.port > 65535)
    throw Error(ErrorCode::kInvalidArgument, "bad converter port");
  const std::string port = std::to_string(options_.port);
  ctx_ = modbus_new_tcp_pi(options_.host.c_str(), port.c_str());
  if (!ctx_) throw Error(ErrorCode::kInvalidArgument, "cannot create Modbus context for " + name());
  modbus_set_slave(ctx_, options_.unit_id);
  const auto ms = options_.timeout.count();
  modbus_set_response_timeout(ctx_, static_cast<uint32_t>(ms / 1000),
                              static_cast<uint32_t>((ms % 1000) * 1000));
  modbus_set_byte_timeout(ctx_, static_cast<uint32_t>(ms / 1000),
                          static_cast<uint32_t>((ms % 1000) * 1000));
}

ConverterClient::~ConverterClient() {
  std::lock_guard lock(mutex_);
  DisconnectLocked();
  modbus_free(ctx_);
}

std::string ConverterClient::name() const {
  return "converter " + options_.host + ":" + std::to_string(options_.port);
}

int ConverterClient::door_count() const {
  return regs::kOutputs;
}

bool ConverterClient::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

int ConverterClient::connects() const {
  std::lock_guard lock(mutex_);
  return connects_;
}

void ConverterClient::ConnectLocked() {
  if (connected_) return;
  if (modbus_connect(ctx_) != 0) {
    std::string msg =
        "门禁转换器连接失败 / cannot connect to " + name() + ": " + modbus_strerror(errno);
    if (auto e = monitor_.OnFault(msg)) pending_.push_back(*e);
    throw Error(ErrorCode::kUnavailable, msg);
  }
  connected_ = true;
  ++connects_;
  spdlog::debug("connected to {}", name());
}

void ConverterClient::DisconnectLocked() {
  if (connected_) modbus_close(ctx_);
  connected_ = false;
}

void ConverterClient::Call(const char* what, const std::function<int(_modbus*)>& op) {
  std::lock_guard lock(mutex_);
  std::string last_error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    ConnectLocked();
    if (op(ctx_) != -1) {
      if (auto e = monitor_.OnHealthy()) pending_.push_back(*e);
      return;
    }
    const int err = errno;
    if (err > MODBUS_ENOBASE && err <= EMBXGTAR) {
      // The converter is fine; it refused this request.
      if (auto e = monitor_.OnHealthy()) pending_.push_back(*e);
      throw ModbusException(err - MODBUS_ENOBASE, std::string("Modbus 异常 / exception in ") +
                                                      what + ": " + modbus_strerror(err));
    }
    // Timeout, reset, bad or mismatched frame: the connection state is unknown, so drop
    // it and try once more on a fresh one.
    last_error = modbus_strerror(err);
    DisconnectLocked();
  }
  std::string msg = "门禁转换器无响应 / " + name() + " failed in " + what + ": " + last_error;
  if (auto e = monitor_.OnFault(msg)) pending_.push_back(*e);
  throw Error(ErrorCode::kUnavailable, msg);
}

std::vector<bool> ConverterClient::ReadCoils(int addr, int count) {
  std::vector<uint8_t> bits(std::max(count, 0));
  Call("read coils", [&](_modbus* c) { return modbus_read_bits(c, addr, count, bits.data()); });
  return {bits.begin(), bits.end()};
}

std::vector<bool> ConverterClient::ReadDiscreteInputs(int addr, int count) {
  std::vector<uint8_t> bits(std::max(count, 0));
  Call("read discrete inputs",
       [&](_modbus* c) { return modbus_read_input_bits(c, addr, count, bits.data()); });
  return {bits.begin(), bits.end()};
}

std::vector<uint16_t> ConverterClient::ReadHoldingRegisters(int addr, int count) {
  std::vector<uint16_t> regs(std::max(count, 0));
  Call("read holding registers",
       [&](_modbus* c) { return modbus_read_registers(c, addr, count, regs.data()); });
  return regs;
}

std::vector<uint16_t> ConverterClient::ReadInputRegisters(int addr, int count) {
  std::vector<uint16_t> regs(std::max(count, 0));
  Call("read input registers",
       [&](_modbus* c) { return modbus_read_input_registers(c, addr, count, regs.data()); });
  return regs;
}

void ConverterClient::WriteCoil(int addr, bool on) {
  Call("write coil", [&](_modbus* c) { return modbus_write_bit(c, addr, on ? 1 : 0); });
}

void ConverterClient::WriteHoldingRegister(int addr, uint16_t value) {
  Call("write holding register", [&](_modbus* c) { return modbus_write_register(c, addr, value); });
}

void ConverterClient::Open(int door, std::chrono::milliseconds duration) {
  CheckDoor(door);
  if (duration.count() < 1 || duration.count() > 65535)
    throw Error(ErrorCode::kInvalidArgument,
                "pulse must be 1..65535 ms (use HoldOpen for longer), got " +
                    std::to_string(duration.count()));
  WriteHoldingRegister(regs::kHoldPulseMs0 + door, static_cast<uint16_t>(duration.count()));
  WriteCoil(regs::kCoilOutput0 + door, true);
  std::lock_guard lock(mutex_);
  if (door == 0) monitor_.OnGrant(Clock::now(), duration);
}

void ConverterClient::HoldOpen(int door) {
  CheckDoor(door);
  WriteHoldingRegister(regs::kHoldPulseMs0 + door, 0);
  WriteCoil(regs::kCoilOutput0 + door, true);
  std::lock_guard lock(mutex_);
  if (door == 0) monitor_.OnHoldOpen(Clock::now());
}

void ConverterClient::Lock(int door) {
  CheckDoor(door);
  WriteCoil(regs::kCoilOutput0 + door, false);
  std::lock_guard lock(mutex_);
  if (door == 0) monitor_.OnLock(Clock::now());
}

std::vector<DoorEvent> ConverterClient::Poll() {
  std::vector<bool> in;
  try {
    in = ReadDiscreteInputs(0, regs::kDiscreteCount);
  } catch (const Error&) {
    // The fault is already queued as an event by Call.
  }
  std::vector<DoorEvent> events;
  {
    std::lock_guard lock(mutex_);
    events.swap(pending_);
    if (in.size() == static_cast<size_t>(regs::kDiscreteCount)) {
      InputState s;
      s.door_open = in[regs::kInputDoorContact];
      s.exit_button = in[regs::kInputExitButton];
      s.tamper = in[regs::kInputTamper];
      s.fire_alarm = in[regs::kInputFireAlarm];
      s.emergency = in[regs::kInputSpare];
      for (auto& e : monitor_.OnInputs(s, Clock::now())) events.push_back(std::move(e));
    } else {
      for (auto& e : monitor_.Tick(Clock::now())) events.push_back(std::move(e));
    }
  }
  return Deliver(std::move(events));
}

}  // namespace anju::door
