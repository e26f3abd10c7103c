// ConverterClient: DoorController for the door signal converter (anju-converter or any
// device with the same register map, see register_map.h) over Modbus TCP.
// Pulses are timed by the converter, so a door locks again even if this process dies
// mid-pulse. The connection is opened lazily and re-opened after any transport error;
// every call has a timeout. Device exception responses become ModbusException.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "door/controller.h"
#include "door/monitor.h"

struct _modbus;

namespace anju::door {

struct ConverterOptions {
  std::string host = "127.0.0.1";
  int port = 502;
  int unit_id = 1;
  std::chrono::milliseconds timeout{500};  // connect and per-response timeout
  MonitorOptions monitor;                  // forced / held-open timing for door 0
};

// The converter answered with a Modbus exception (e.g. 2 = illegal data address).
class ModbusException : public Error {
 public:
  ModbusException(int exception_code, const std::string& what);
  int exception_code() const { return exception_code_; }

 private:
  int exception_code_;
};

class ConverterClient : public DoorController {
 public:
  explicit ConverterClient(ConverterOptions options);
  ~ConverterClient() override;
  ConverterClient(const ConverterClient&) = delete;
  ConverterClient& operator=(const ConverterClient&) = delete;

  std::string name() const override;
  int door_count() const override;
  // duration 1..65535 ms (the width of the converter's pulse register).
  void Open(int door, std::chrono::milliseconds duration) override;
  void HoldOpen(int door) override;
  void Lock(int door) override;
  // Reads the discrete inputs; the door contact and exit button belong to door 0.
  std::vector<DoorEvent> Poll() override;

  // Raw register access with the same reconnect / timeout / fault handling.
  std::vector<bool> ReadCoils(int addr, int count);
  std::vector<bool> ReadDiscreteInputs(int addr, int count);
  std::vector<uint16_t> ReadHoldingRegisters(int addr, int count);
  std::vector<uint16_t> ReadInputRegisters(int addr, int count);
  void WriteCoil(int addr, bool on);
  void WriteHoldingRegister(int addr, uint16_t value);

  bool connected() const;
  // How many times a connection was (re)established.
  int connects() const;

 private:
  // Runs op on a connected context; reconnects and retries once after transport errors.
  void Call(const char* what, const std::function<int(_modbus*)>& op);
  void ConnectLocked();
  void DisconnectLocked();

  ConverterOptions options_;
  mutable std::mutex mutex_;
  _modbus* ctx_ = nullptr;
  bool connected_ = false;
  int connects_ = 0;
  DoorMonitor monitor_;
  std::vector<DoorEvent> pending_;
};

}  // namespace anju::door
