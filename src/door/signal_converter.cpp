#include "door/signal_converter.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <modbus.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "crypto/tls_cert.h"
#include "door/register_map.h"

namespace anju::door {

using nlohmann::json;

namespace {

const char* const kInputNames[regs::kInputs] = {"door_contact", "exit_button", "tamper",
                                                "fire_alarm", "spare"};
const char* const kInputLabels[regs::kInputs] = {"门磁 / door contact", "出门按钮 / exit button",
                                                 "防拆 / tamper", "消防 / fire alarm",
                                                 "备用(紧急) / spare (emergency)"};

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

std::string PeerName(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

int LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

// A mode register may only hold the documented bits.
bool ModeValueOk(int addr, uint16_t value) {
  return (addr != regs::kHoldMode0 && addr != regs::kHoldMode1) || (value & ~regs::kModeMask) == 0;
}

}  // namespace

struct Converter::Http {
  std::unique_ptr<httplib::Server> server;  // an httplib::SSLServer unless plain HTTP
  std::thread thread;
};

Converter::Converter(Config config) : config_(std::move(config)) {
  simulate_ = config_.gpio_chip.empty();
  map_ = modbus_mapping_new_start_address(0, regs::kCoilCount, 0, regs::kDiscreteCount, 0,
                                          regs::kHoldingCount, 0, regs::kInputRegCount);
  if (!map_) throw Error(ErrorCode::kInternal, "modbus_mapping_new failed");
  map_->tab_registers[regs::kHoldPulseMs0] = config_.default_pulse_ms;
  map_->tab_registers[regs::kHoldPulseMs1] = config_.default_pulse_ms;

  if (!simulate_) {
    if (config_.gpio_outputs.size() != regs::kOutputs)
      throw Error(ErrorCode::kInvalidArgument, "--gpio-outputs needs exactly 2 line offsets");
    gpio_out_ = std::make_unique<door::GpioLines>(config_.gpio_chip, config_.gpio_outputs, true,
                                                  "anju-converter");
    std::vector<door::GpioLineSpec> wired;
    for (const auto& in : config_.gpio_inputs) {
      gpio_input_index_.push_back(in ? static_cast<int>(wired.size()) : -1);
      if (in) wired.push_back(*in);
    }
    gpio_input_index_.resize(regs::kInputs, -1);
    if (!wired.empty())
      gpio_in_ =
          std::make_unique<door::GpioLines>(config_.gpio_chip, wired, false, "anju-converter");
  }

  if (pipe2(wake_, O_NONBLOCK | O_CLOEXEC) != 0)
    throw Error(ErrorCode::kInternal, std::string("pipe: ") + std::strerror(errno));

  tcp_ = modbus_new_tcp_pi(config_.listen_host.c_str(), config_.listen_port.c_str());
  if (!tcp_) throw Error(ErrorCode::kInvalidArgument, "bad --listen address");
  listen_fd_ = modbus_tcp_pi_listen(tcp_, 64);
  if (listen_fd_ < 0)
    throw Error(ErrorCode::kUnavailable, "无法监听 / cannot listen on " + config_.listen_host +
                                             ":" + config_.listen_port + ": " +
                                             modbus_strerror(errno));
  fcntl(listen_fd_, F_SETFL, fcntl(listen_fd_, F_GETFL) | O_NONBLOCK);
  fcntl(listen_fd_, F_SETFD, FD_CLOEXEC);
  modbus_port_ = LocalPort(listen_fd_);

  if (!config_.rtu_device.empty()) {
    rtu_ = modbus_new_rtu(config_.rtu_device.c_str(), config_.rtu_baud, config_.rtu_parity, 8, 1);
    if (!rtu_) throw Error(ErrorCode::kInvalidArgument, "bad RTU settings");
    modbus_set_slave(rtu_, config_.unit_id);
    modbus_set_byte_timeout(rtu_, 0, 50000);
    if (modbus_connect(rtu_) != 0)
      throw Error(ErrorCode::kUnavailable,
                  "cannot open " + config_.rtu_device + ": " + modbus_strerror(errno));
  }

  std::lock_guard lock(mutex_);
  for (int i = 0; i < regs::kOutputs; ++i) ApplyLocked(i);
  initialized_outputs_ = true;
  UpdateRegistersLocked();
}

Converter::~Converter() {
  if (http_) {
    http_->server->stop();
    if (http_->thread.joinable()) http_->thread.join();
  }
  for (auto& c : conns_) close(c.fd);
  if (listen_fd_ >= 0) close(listen_fd_);
  if (tcp_) {
    modbus_set_socket(tcp_, -1);
    modbus_free(tcp_);
  }
  if (rtu_) {
    modbus_close(rtu_);
    modbus_free(rtu_);
  }
  if (map_) modbus_mapping_free(map_);
  for (int fd : wake_)
    if (fd >= 0) close(fd);
}

void Converter::Stop() {
  stop_ = true;
  if (wake_[1] >= 0) {
    char c = 1;
    [[maybe_unused]] auto n = write(wake_[1], &c, 1);
  }
}

// ---- outputs and inputs ------------------------------------------------------------

void Converter::ApplyLocked(int i) {
  const bool fire = map_->tab_input_bits[regs::kInputFireAlarm] != 0;
  const bool released = requested_[i] || fire;  // R3.2.3.1: fire alarm wins over any client
  map_->tab_bits[i] = released ? 1 : 0;
  const bool fail_safe = (map_->tab_registers[regs::kHoldMode0 + i] & regs::kModeFailSafe) != 0;
  // Fail-secure (strike): energize to release. Fail-safe (maglock): energize to lock.
  const bool relay = released != fail_safe;
  if (initialized_outputs_ && relay == relay_[i]) return;
  relay_[i] = relay;
  if (gpio_out_) {
    try {
      gpio_out_->Set(static_cast<size_t>(i), relay);
    } catch (const std::exception& e) {
      spdlog::error("输出 {} 写入失败 / output {} write failed: {}", i, i, e.what());
    }
  }
  spdlog::info("输出 {} {} / output {} {} (relay {}{}{})", i, released ? "释放" : "锁定", i,
               released ? "released" : "locked", relay ? "energized" : "de-energized",
               fail_safe ? ", fail-safe" : ", fail-secure",
               fire && !requested_[i] ? ", fire override" : "");
}

void Converter::CoilWrittenLocked(int i) {
  const bool fire = map_->tab_input_bits[regs::kInputFireAlarm] != 0;
  const bool on = map_->tab_bits[i] != 0;
  requested_[i] = on;
  const uint16_t width = map_->tab_registers[regs::kHoldPulseMs0 + i];
  const bool latch = (map_->tab_registers[regs::kHoldMode0 + i] & regs::kModeLatch) != 0;
  if (on && width > 0 && !latch) {
    // The converter, not the client, ends the pulse: it ends even if the client is gone.
    deadline_[i] = Clock::now() + std::chrono::milliseconds(width);
    spdlog::info("输出 {} 脉冲 {} ms / output {} pulse {} ms", i, width, i, width);
  } else {
    deadline_[i].reset();
  }
  if (!on && fire)
    spdlog::warn("消防报警中，输出 {} 保持释放 / fire alarm active: output {} stays released", i,
                 i);
  ApplyLocked(i);
}

void Converter::SetInputsLocked(const std::vector<bool>& values, const char* source) {
  bool fire_changed = false;
  for (int k = 0; k < regs::kInputs && k < static_cast<int>(values.size()); ++k) {
    const uint8_t v = values[k] ? 1 : 0;
    if (map_->tab_input_bits[k] == v) continue;
    map_->tab_input_bits[k] = v;
    if (k == regs::kInputTamper && v) {
      ++counters_.tamper_events;
      spdlog::warn("防拆报警 / TAMPER input active ({})", source);
    } else if (k == regs::kInputFireAlarm) {
      fire_changed = true;
      if (v) {
        ++counters_.fire_events;
        spdlog::warn("消防报警：全部输出释放 / FIRE ALARM: all outputs released ({})", source);
      } else {
        spdlog::warn("消防报警解除 / fire alarm cleared ({})", source);
      }
    } else {
      spdlog::info("输入 {} = {} / input {} = {} ({})", kInputLabels[k], v, kInputNames[k], v,
                   source);
    }
  }
  if (fire_changed)
    for (int i = 0; i < regs::kOutputs; ++i) ApplyLocked(i);
}

void Converter::TickLocked() {
  const auto now = Clock::now();
  for (int i = 0; i < regs::kOutputs; ++i) {
    if (deadline_[i] && now >= *deadline_[i]) {
      deadline_[i].reset();
      requested_[i] = false;
      ++counters_.pulses_done[i];
      spdlog::info("输出 {} 脉冲结束 / output {} pulse ended", i, i);
      ApplyLocked(i);
    }
  }
  if (gpio_in_) {
    std::vector<bool> values(regs::kInputs, false);
    try {
      for (int k = 0; k < regs::kInputs; ++k)
        if (gpio_input_index_[k] >= 0) values[k] = gpio_in_->Get(gpio_input_index_[k]);
      SetInputsLocked(values, "gpio");
    } catch (const std::exception& e) {
      spdlog::error("GPIO 输入读取失败 / GPIO input read failed: {}", e.what());
    }
  }
  UpdateRegistersLocked();
}

void Converter::UpdateRegistersLocked() {
  uint16_t* ir = map_->tab_input_registers;
  uint16_t status = 0;
  if (map_->tab_bits[0]) status |= regs::kStatusReleased0;
  if (map_->tab_bits[1]) status |= regs::kStatusReleased1;
  if (map_->tab_input_bits[regs::kInputFireAlarm]) status |= regs::kStatusFireOverride;
  if (map_->tab_input_bits[regs::kInputTamper]) status |= regs::kStatusTamper;
  if (simulate_) status |= regs::kStatusSimulated;
  if (rtu_) status |= regs::kStatusRtu;
  ir[regs::kInStatus] = status;
  ir[regs::kInPulsesDone0] = static_cast<uint16_t>(counters_.pulses_done[0]);
  ir[regs::kInPulsesDone1] = static_cast<uint16_t>(counters_.pulses_done[1]);
  ir[regs::kInConnections] = static_cast<uint16_t>(counters_.connections);
  ir[regs::kInClientsNow] = static_cast<uint16_t>(counters_.clients_now);
  ir[regs::kInExceptions] = static_cast<uint16_t>(counters_.exceptions);
  ir[regs::kInMalformed] = static_cast<uint16_t>(counters_.malformed);
  ir[regs::kInTamperEvents] = static_cast<uint16_t>(counters_.tamper_events);
  ir[regs::kInFireEvents] = static_cast<uint16_t>(counters_.fire_events);
  ir[regs::kInRequests] = static_cast<uint16_t>(counters_.requests);
  const auto now = Clock::now();
  for (int i = 0; i < regs::kOutputs; ++i) {
    int64_t left = 0;
    if (deadline_[i])
      left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_[i] - now).count();
    ir[regs::kInRemainingMs0 + i] = static_cast<uint16_t>(std::clamp<int64_t>(left, 0, 65535));
  }
  ir[regs::kInUptimeS] = static_cast<uint16_t>(
      std::chrono::duration_cast<std::chrono::seconds>(now - started_).count());
}

// ---- Modbus requests ---------------------------------------------------------------

// Returns 0 when libmodbus may answer the request, else the Modbus exception code to
// send. The PDU length is checked against the function code so that modbus_reply never
// reads past the received bytes.
int Converter::PrecheckLocked(const uint8_t* req, int len, int offset, bool tcp) {
  const uint8_t* pdu = req + offset;
  const int pdu_len = len - offset - (tcp ? 0 : 2);  // RTU frames end in a CRC
  if (pdu_len < 1) return MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
  if (tcp) {
    const int unit = req[offset - 1];
    if (unit != config_.unit_id && unit != 0 && unit != 255) return MODBUS_EXCEPTION_GATEWAY_TARGET;
  }
  const int fc = pdu[0];
  auto range = [](int addr, int qty, int size) {
    return addr + qty <= size ? 0 : MODBUS_EXCEPTION_ILLEGAL_DATA_ADDRESS;
  };
  const int value_error = MODBUS_EXCEPTION_ILLEGAL_DATA_VALUE;
  switch (fc) {
    case MODBUS_FC_READ_COILS:
    case MODBUS_FC_READ_DISCRETE_INPUTS:
    case MODBUS_FC_READ_HOLDING_REGISTERS:
    case MODBUS_FC_READ_INPUT_REGISTERS: {
      if (pdu_len != 5) return value_error;
      const int addr = Be16(pdu + 1), qty = Be16(pdu + 3);
      const bool bits = fc <= MODBUS_FC_READ_DISCRETE_INPUTS;
      if (qty < 1 || qty > (bits ? MODBUS_MAX_READ_BITS : MODBUS_MAX_READ_REGISTERS))
        return value_error;
      const int size = fc == MODBUS_FC_READ_COILS               ? regs::kCoilCount
                       : fc == MODBUS_FC_READ_DISCRETE_INPUTS   ? regs::kDiscreteCount
                       : fc == MODBUS_FC_READ_HOLDING_REGISTERS ? regs::kHoldingCount
                                                                : regs::kInputRegCount;
      return range(addr, qty, size);
    }
    case MODBUS_FC_WRITE_SINGLE_COIL: {
      if (pdu_len != 5) return value_error;
      const int value = Be16(pdu + 3);
      if (value != 0xFF00 && value != 0x0000) return value_error;
      return range(Be16(pdu + 1), 1, regs::kCoilCount);
    }
    case MODBUS_FC_WRITE_SINGLE_REGISTER: {
      if (pdu_len != 5) return value_error;
      const int addr = Be16(pdu + 1);
      if (int e = range(addr, 1, regs::kHoldingCount)) return e;
      return ModeValueOk(addr, Be16(pdu + 3)) ? 0 : value_error;
    }
    case MODBUS_FC_WRITE_MULTIPLE_COILS: {
      if (pdu_len < 6) return value_error;
      const int addr = Be16(pdu + 1), qty = Be16(pdu + 3), bytes = pdu[5];
      if (pdu_len != 6 + bytes || qty < 1 || qty > MODBUS_MAX_WRITE_BITS || bytes != (qty + 7) / 8)
        return value_error;
      return range(addr, qty, regs::kCoilCount);
    }
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
      if (pdu_len < 6) return value_error;
      const int addr = Be16(pdu + 1), qty = Be16(pdu + 3), bytes = pdu[5];
      if (pdu_len != 6 + bytes || qty < 1 || qty > MODBUS_MAX_WRITE_REGISTERS || bytes != 2 * qty)
        return value_error;
      if (int e = range(addr, qty, regs::kHoldingCount)) return e;
      for (int k = 0; k < qty; ++k)
        if (!ModeValueOk(addr + k, Be16(pdu + 6 + 2 * k))) return value_error;
      return 0;
    }
    case MODBUS_FC_MASK_WRITE_REGISTER: {
      if (pdu_len != 7) return value_error;
      const int addr = Be16(pdu + 1);
      if (int e = range(addr, 1, regs::kHoldingCount)) return e;
      const uint16_t and_mask = Be16(pdu + 3), or_mask = Be16(pdu + 5);
      const uint16_t v = (map_->tab_registers[addr] & and_mask) | (or_mask & ~and_mask);
      return ModeValueOk(addr, v) ? 0 : value_error;
    }
    case MODBUS_FC_WRITE_AND_READ_REGISTERS: {
      if (pdu_len < 10) return value_error;
      const int raddr = Be16(pdu + 1), rqty = Be16(pdu + 3);
      const int waddr = Be16(pdu + 5), wqty = Be16(pdu + 7), bytes = pdu[9];
      if (pdu_len != 10 + bytes || rqty < 1 || rqty > MODBUS_MAX_WR_READ_REGISTERS || wqty < 1 ||
          wqty > MODBUS_MAX_WR_WRITE_REGISTERS || bytes != 2 * wqty)
        return value_error;
      if (int e = range(raddr, rqty, regs::kHoldingCount)) return e;
      if (int e = range(waddr, wqty, regs::kHoldingCount)) return e;
      for (int k = 0; k < wqty; ++k)
        if (!ModeValueOk(waddr + k, Be16(pdu + 10 + 2 * k))) return value_error;
      return 0;
    }
    case MODBUS_FC_REPORT_SLAVE_ID:
      return pdu_len == 1 ? 0 : value_error;
    default:
      return MODBUS_EXCEPTION_ILLEGAL_FUNCTION;
  }
}

void Converter::AfterWriteLocked(const uint8_t* req, int offset) {
  const uint8_t* pdu = req + offset;
  switch (pdu[0]) {
    case MODBUS_FC_WRITE_SINGLE_COIL:
      CoilWrittenLocked(Be16(pdu + 1));
      break;
    case MODBUS_FC_WRITE_MULTIPLE_COILS: {
      const int addr = Be16(pdu + 1), qty = Be16(pdu + 3);
      for (int i = addr; i < addr + qty && i < regs::kOutputs; ++i) CoilWrittenLocked(i);
      break;
    }
    case MODBUS_FC_WRITE_SINGLE_REGISTER:
    case MODBUS_FC_WRITE_MULTIPLE_REGISTERS:
    case MODBUS_FC_MASK_WRITE_REGISTER:
    case MODBUS_FC_WRITE_AND_READ_REGISTERS:
      // A fail-safe / fail-secure change flips the relay level of the same state.
      for (int i = 0; i < regs::kOutputs; ++i) ApplyLocked(i);
      break;
    default:
      break;
  }
}

void Converter::HandleRequest(_modbus* ctx, const uint8_t* req, int len, int offset, bool tcp) {
  std::lock_guard lock(mutex_);
  TickLocked();  // expire pulses and refresh the input registers before answering
  ++counters_.requests;
  int rc;
  if (int exception = PrecheckLocked(req, len, offset, tcp)) {
    ++counters_.exceptions;
    spdlog::debug("exception {} for function 0x{:02x}", exception, req[offset]);
    rc = modbus_reply_exception(ctx, req, static_cast<unsigned>(exception));
  } else {
    rc = modbus_reply(ctx, req, len, map_);
    AfterWriteLocked(req, offset);
  }
  UpdateRegistersLocked();
  if (rc < 0) spdlog::debug("reply failed: {}", modbus_strerror(errno));
}

// ---- TCP connections ---------------------------------------------------------------

void Converter::Accept() {
  for (;;) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd =
        accept4(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or the peer already went away
    std::lock_guard lock(mutex_);
    if (fd >= FD_SETSIZE || conns_.size() >= config_.max_clients) {
      ++counters_.refused;
      spdlog::warn("连接过多，拒绝 / too many clients, refusing {}", PeerName(ss));
      close(fd);
      continue;
    }
    ++counters_.connections;
    const auto now = Clock::now();
    conns_.push_back(Conn{fd, PeerName(ss), {}, now, now});
    counters_.clients_now = conns_.size();
    spdlog::info("客户端连接 / client connected: {} ({} now)", conns_.back().peer, conns_.size());
  }
}

bool Converter::ReadConn(Conn& c) {
  uint8_t chunk[1024];
  const ssize_t n = read(c.fd, chunk, sizeof chunk);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  const auto now = Clock::now();
  if (c.buf.empty()) c.partial_since = now;
  c.buf.insert(c.buf.end(), chunk, chunk + n);
  c.last_activity = now;
  // MBAP header: transaction id (2), protocol id (2, must be 0), length (2, counts the
  // unit id and the PDU), unit id (1).
  while (c.buf.size() >= 7) {
    const int protocol = Be16(&c.buf[2]);
    const int length = Be16(&c.buf[4]);
    if (protocol != 0 || length < 2 || length > MODBUS_TCP_MAX_ADU_LENGTH - 6) {
      std::lock_guard lock(mutex_);
      ++counters_.malformed;
      UpdateRegistersLocked();
      spdlog::warn("畸形报文，断开 / malformed MBAP header from {} (protocol {}, length {})",
                   c.peer, protocol, length);
      return false;  // no way to find the next frame boundary
    }
    const size_t frame = 6 + static_cast<size_t>(length);
    if (c.buf.size() < frame) break;
    modbus_set_socket(tcp_, c.fd);
    HandleRequest(tcp_, c.buf.data(), static_cast<int>(frame), 7, true);
    modbus_set_socket(tcp_, -1);
    c.buf.erase(c.buf.begin(), c.buf.begin() + static_cast<long>(frame));
    c.partial_since = now;
  }
  return true;
}

void Converter::ServeRtu() {
  uint8_t req[MODBUS_RTU_MAX_ADU_LENGTH];
  const int rc = modbus_receive(rtu_, req);
  if (rc > 0) {
    HandleRequest(rtu_, req, rc, modbus_get_header_length(rtu_), false);
  } else if (rc < 0) {
    std::lock_guard lock(mutex_);
    ++counters_.malformed;
    spdlog::warn("RTU 报文错误 / bad RTU frame: {}", modbus_strerror(errno));
    modbus_flush(rtu_);
  }
}

// ---- HTTP status endpoint ----------------------------------------------------------

json Converter::StatusLocked() const {
  json outputs = json::array();
  const auto now = Clock::now();
  for (int i = 0; i < regs::kOutputs; ++i) {
    const uint16_t mode = map_->tab_registers[regs::kHoldMode0 + i];
    int64_t left = 0;
    if (deadline_[i])
      left = std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_[i] - now).count());
    outputs.push_back({{"index", i},
                       {"released", map_->tab_bits[i] != 0},
                       {"requested", requested_[i]},
                       {"relay_energized", relay_[i]},
                       {"pulse_ms", map_->tab_registers[regs::kHoldPulseMs0 + i]},
                       {"mode", (mode & regs::kModeLatch) ? "latch" : "pulse"},
                       {"fail_safe", (mode & regs::kModeFailSafe) != 0},
                       {"remaining_ms", left}});
  }
  json inputs = json::object();
  for (int k = 0; k < regs::kInputs; ++k) inputs[kInputNames[k]] = map_->tab_input_bits[k] != 0;
  const auto& c = counters_;
  return {{"io", simulate_ ? "simulate" : "gpio"},
          {"unit_id", config_.unit_id},
          {"modbus_port", modbus_port_},
          {"rtu", config_.rtu_device},
          {"outputs", outputs},
          {"inputs", inputs},
          {"fire_override", map_->tab_input_bits[regs::kInputFireAlarm] != 0},
          {"counters",
           {{"pulses_done", {c.pulses_done[0], c.pulses_done[1]}},
            {"connections", c.connections},
            {"clients_now", c.clients_now},
            {"exceptions", c.exceptions},
            {"malformed", c.malformed},
            {"refused", c.refused},
            {"tamper_events", c.tamper_events},
            {"fire_events", c.fire_events},
            {"requests", c.requests}}},
          {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(now - started_).count()}};
}

void Converter::StartHttp() {
  if (config_.status_host.empty()) return;
  http_ = std::make_unique<Http>();
  if (config_.status_tls) {
    if (config_.tls_dir.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "状态端口需要证书目录 / the status endpoint needs "
                  "a TLS directory (--tls-dir) or --plain-http");
    // 0.0.0.0 / :: are no names a client could check; loopback names are always in.
    std::vector<std::string> hosts;
    if (config_.status_host != "0.0.0.0" && config_.status_host != "::")
      hosts.push_back(config_.status_host);
    const auto tls = crypto::EnsureSelfSignedCert(
        config_.tls_dir / "status.crt", config_.tls_dir / "status.key", "anju-converter", hosts);
    auto ssl = std::make_unique<httplib::SSLServer>(tls.cert.c_str(), tls.key.c_str());
    if (!ssl->is_valid())
      throw Error(ErrorCode::kInvalidArgument,
                  "状态端口证书不可用 / status certificate or key unusable: " + tls.cert.string());
    // TLS 1.3 only, as anju-server (docs/security.md).
    SSL_CTX_set_min_proto_version(ssl->ssl_context(), TLS1_3_VERSION);
    http_->server = std::move(ssl);
    status_cert_ = tls.cert;
    status_fingerprint_ = tls.fingerprint;
    spdlog::info("状态端口证书 / status certificate: {}{} SHA-256 {}", tls.cert.string(),
                 tls.created ? " (自签名，首次生成 / self-signed, just created)" : "",
                 tls.fingerprint);
  } else {
    http_->server = std::make_unique<httplib::Server>();
    spdlog::warn("状态端口未加密 / status endpoint on plain HTTP (development only)");
  }
  auto& svr = *http_->server;
  svr.Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mutex_);
    res.set_content(StatusLocked().dump(2) + "\n", "application/json");
  });
  svr.Post("/inputs", [this](const httplib::Request& req, httplib::Response& res) {
    auto error = [&](int status, const std::string& msg) {
      res.status = status;
      res.set_content(json{{"error", msg}}.dump() + "\n", "application/json");
    };
    if (!simulate_) return error(409, "inputs are GPIO lines, not simulated");
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
      return error(400, "body must be a JSON object like {\"fire_alarm\": true}");
    std::lock_guard lock(mutex_);
    std::vector<bool> values(regs::kInputs);
    for (int k = 0; k < regs::kInputs; ++k) values[k] = map_->tab_input_bits[k] != 0;
    for (auto it = body.begin(); it != body.end(); ++it) {
      int k = 0;
      while (k < regs::kInputs && it.key() != kInputNames[k]) ++k;
      if (k == regs::kInputs) return error(400, "unknown input: " + it.key());
      if (it->is_boolean())
        values[k] = it->get<bool>();
      else if (it->is_number_integer() && (*it == 0 || *it == 1))
        values[k] = *it == 1;
      else
        return error(400, "input values must be true/false or 0/1");
    }
    SetInputsLocked(values, "http");
    UpdateRegistersLocked();
    res.set_content(StatusLocked().dump(2) + "\n", "application/json");
  });
  const int port = config_.status_port == 0
                       ? svr.bind_to_any_port(config_.status_host.c_str())
                       : (svr.bind_to_port(config_.status_host.c_str(), config_.status_port)
                              ? config_.status_port
                              : -1);
  if (port <= 0)
    throw Error(ErrorCode::kUnavailable, "无法监听状态端口 / cannot bind status endpoint " +
                                             config_.status_host + ":" +
                                             std::to_string(config_.status_port));
  status_port_ = port;
  http_->thread = std::thread([&svr] { svr.listen_after_bind(); });
  // httplib's stop() does nothing until the listening thread has marked itself
  // running; a SIGTERM that arrived before that (a loaded machine) would leave the
  // destructor joining a thread blocked in accept() forever. So wait for it here.
  for (int i = 0; i < 5000 && !svr.is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!svr.is_running())
    throw Error(ErrorCode::kUnavailable, "状态端口未能启动 / status endpoint did not start");
}

void Converter::WriteReadyFile() {
  if (config_.ready_file.empty()) return;
  const std::string tmp = config_.ready_file + ".tmp";
  {
    std::ofstream out(tmp);
    out << json{{"modbus_port", modbus_port_},
                {"status_port", status_port_},
                {"status_cert", status_cert_.string()},
                {"status_fingerprint", status_fingerprint_},
                {"pid", getpid()}}
               .dump()
        << "\n";
  }
  std::filesystem::rename(tmp, config_.ready_file);
}

// ---- main loop -----------------------------------------------------------------------

void Converter::Run() {
  StartHttp();
  spdlog::info("门禁信号转换器启动 / door signal converter: Modbus TCP {}:{} unit {}, I/O {}{}{}",
               config_.listen_host, modbus_port_, config_.unit_id,
               simulate_ ? "simulated" : "gpio " + config_.gpio_chip,
               status_port_
                   ? std::string(", status ") + (config_.status_tls ? "https://" : "http://") +
                         config_.status_host + ":" + std::to_string(status_port_) + "/status"
                   : "",
               rtu_ ? ", RTU " + config_.rtu_device : "");
  WriteReadyFile();

  while (!stop_) {
    fd_set rd;
    FD_ZERO(&rd);
    int maxfd = std::max(listen_fd_, wake_[0]);
    FD_SET(listen_fd_, &rd);
    FD_SET(wake_[0], &rd);
    for (const auto& c : conns_) {
      FD_SET(c.fd, &rd);
      maxfd = std::max(maxfd, c.fd);
    }
    int rtu_fd = rtu_ ? modbus_get_socket(rtu_) : -1;
    if (rtu_fd >= 0 && rtu_fd < FD_SETSIZE) {
      FD_SET(rtu_fd, &rd);
      maxfd = std::max(maxfd, rtu_fd);
    }
    // Wake for the next pulse end; poll GPIO inputs every 10 ms; housekeeping otherwise.
    auto wait = std::chrono::milliseconds(gpio_in_ ? 10 : 100);
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      for (const auto& d : deadline_)
        if (d)
          wait = std::min(wait, std::max(std::chrono::milliseconds(0),
                                         std::chrono::duration_cast<std::chrono::milliseconds>(
                                             *d - now + std::chrono::microseconds(999))));
    }
    timeval tv{static_cast<time_t>(wait.count() / 1000),
               static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    const int n = select(maxfd + 1, &rd, nullptr, nullptr, &tv);
    if (n < 0 && errno != EINTR) {
      spdlog::error("select: {}", std::strerror(errno));
      break;
    }
    if (n > 0) {
      if (FD_ISSET(wake_[0], &rd)) {
        char buf[64];
        while (read(wake_[0], buf, sizeof buf) > 0) {
        }
      }
      if (FD_ISSET(listen_fd_, &rd)) Accept();
      for (auto& c : conns_) {
        if (!FD_ISSET(c.fd, &rd)) continue;
        if (!ReadConn(c)) {
          close(c.fd);
          c.fd = -1;
        }
      }
      if (rtu_fd >= 0 && FD_ISSET(rtu_fd, &rd)) ServeRtu();
    }
    // Drop idle clients and ones stuck half-way through a frame (truncated frames).
    const auto now = Clock::now();
    for (auto& c : conns_) {
      if (c.fd < 0) continue;
      const bool idle = now - c.last_activity > config_.idle_timeout;
      const bool stuck = !c.buf.empty() && now - c.partial_since > config_.partial_frame_timeout;
      if (idle || stuck) {
        spdlog::warn("断开 / dropping {} ({})", c.peer, idle ? "idle" : "truncated frame");
        if (stuck) {
          std::lock_guard lock(mutex_);
          ++counters_.malformed;
        }
        close(c.fd);
        c.fd = -1;
      }
    }
    {
      std::lock_guard lock(mutex_);
      const size_t before = conns_.size();
      std::erase_if(conns_, [](const Conn& c) { return c.fd < 0; });
      if (conns_.size() != before)
        spdlog::info("客户端断开 / {} client(s) gone ({} now)", before - conns_.size(),
                     conns_.size());
      counters_.clients_now = conns_.size();
      TickLocked();
    }
  }
  spdlog::info("门禁信号转换器退出 / converter shutting down");
  // Leave the outputs in their resting state: nobody times pulses once we are gone.
  std::lock_guard lock(mutex_);
  for (int i = 0; i < regs::kOutputs; ++i) {
    if (deadline_[i]) {
      deadline_[i].reset();
      requested_[i] = false;
      ApplyLocked(i);
    }
  }
}

}  // namespace anju::door
