// The door signal converter: one Modbus server (TCP, optionally also RTU) over the
// register map in door/register_map.h, in front of two outputs and five inputs that
// are either simulated or GPIO lines. Single-threaded select() loop for Modbus; the
// optional HTTP status endpoint (HTTPS unless plain HTTP is asked for) runs on its own
// thread and shares state under a mutex.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "door/gpio.h"

struct _modbus;
struct _modbus_mapping_t;

namespace anju::door {

struct Config {
  std::string listen_host = "127.0.0.1";
  std::string listen_port = "1502";  // "0" = any free port (see ready_file)
  std::string status_host;           // empty = no HTTP status endpoint
  int status_port = 0;
  // The status endpoint speaks HTTPS with a self-signed certificate kept in TLS_DIR
  // (status.crt / status.key, made at first start); status_tls false = plain HTTP.
  bool status_tls = true;
  std::filesystem::path tls_dir;
  std::string gpio_chip;  // empty = simulated I/O
  std::vector<door::GpioLineSpec> gpio_outputs;
  std::vector<std::optional<door::GpioLineSpec>> gpio_inputs;
  std::string rtu_device;  // empty = no RTU
  int rtu_baud = 9600;
  char rtu_parity = 'N';
  int unit_id = 1;
  uint16_t default_pulse_ms = 3000;
  size_t max_clients = 32;
  std::chrono::seconds idle_timeout{120};
  std::chrono::milliseconds partial_frame_timeout{2000};
  std::string ready_file;  // written as JSON once listening
};

class Converter {
 public:
  explicit Converter(Config config);
  ~Converter();
  Converter(const Converter&) = delete;
  Converter& operator=(const Converter&) = delete;

  // Serves until Stop() (async-signal-safe) is called.
  void Run();
  void Stop();

  int modbus_port() const { return modbus_port_; }
  int status_port() const { return status_port_; }
  // The status endpoint's certificate (clients' CA file) and fingerprint; empty without TLS.
  const std::filesystem::path& status_cert() const { return status_cert_; }
  const std::string& status_fingerprint() const { return status_fingerprint_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Conn {
    int fd;
    std::string peer;
    std::vector<uint8_t> buf;
    Clock::time_point last_activity;
    Clock::time_point partial_since;
  };

  void Accept();
  bool ReadConn(Conn& c);  // false = close it
  void HandleRequest(_modbus* ctx, const uint8_t* req, int len, int offset, bool tcp);
  int PrecheckLocked(const uint8_t* req, int len, int offset, bool tcp);
  void AfterWriteLocked(const uint8_t* req, int offset);
  void CoilWrittenLocked(int i);
  void ApplyLocked(int i);
  void TickLocked();
  void SetInputsLocked(const std::vector<bool>& values, const char* source);
  void UpdateRegistersLocked();
  void ServeRtu();
  nlohmann::json StatusLocked() const;
  void StartHttp();
  void WriteReadyFile();

  Config config_;
  bool simulate_;
  std::unique_ptr<door::GpioLines> gpio_out_, gpio_in_;
  std::vector<int> gpio_input_index_;

  mutable std::mutex mutex_;
  _modbus_mapping_t* map_ = nullptr;
  bool requested_[2] = {false, false};
  std::optional<Clock::time_point> deadline_[2];
  bool relay_[2] = {false, false};
  bool initialized_outputs_ = false;
  Clock::time_point started_ = Clock::now();
  struct Counters {
    uint64_t pulses_done[2] = {0, 0};
    uint64_t connections = 0, clients_now = 0, exceptions = 0, malformed = 0, refused = 0,
             tamper_events = 0, fire_events = 0, requests = 0;
  } counters_;

  _modbus* tcp_ = nullptr;
  _modbus* rtu_ = nullptr;
  int listen_fd_ = -1;
  int modbus_port_ = 0;
  int status_port_ = 0;
  std::filesystem::path status_cert_;
  std::string status_fingerprint_;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stop_{false};
  std::vector<Conn> conns_;

  struct Http;
  std::unique_ptr<Http> http_;
};

}  // namespace anju::door
