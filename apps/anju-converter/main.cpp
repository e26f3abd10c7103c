// anju-converter: the door signal converter (Modbus TCP server, optional RTU) — see
// docs/door-io.md for the register map and wiring.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "door/signal_converter.h"
#include "core/error.h"

namespace {

anju::door::Converter* g_converter = nullptr;

void OnSignal(int) {
  if (g_converter) g_converter->Stop();
}

std::pair<std::string, std::string> SplitHostPort(const std::string& s, const char* what) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    throw anju::Error(anju::ErrorCode::kInvalidArgument,
                      std::string(what) + " must be HOST:PORT, got '" + s + "'");
  std::string host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, s.substr(colon + 1)};
}

// "17,27" or "5,!6,-,13,19" ('-' = not wired, '!' = this line has the other polarity).
std::vector<std::optional<anju::door::GpioLineSpec>> ParseLines(const std::string& s,
                                                                bool active_low) {
  std::vector<std::optional<anju::door::GpioLineSpec>> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "-" || item.empty()) {
      out.push_back(std::nullopt);
      continue;
    }
    // A leading '!' inverts this one line relative to the common polarity flag.
    const bool invert = item[0] == '!';
    if (invert) item.erase(0, 1);
    out.push_back(
        anju::door::GpioLineSpec{static_cast<unsigned>(std::stoul(item)), active_low != invert});
  }
  return out;
}

std::filesystem::path DefaultTlsDir() {
  if (const char* d = std::getenv("ANJU_CONVERTER_DIR"); d && *d)
    return std::filesystem::path(d) / "tls";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::filesystem::path(x) / "anju" / "converter" / "tls";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : ".") / ".local" / "share" / "anju" /
         "converter" / "tls";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "anju-converter: 门禁信号转换器 / door signal converter. Modbus TCP server (unit id 1) for "
      "two door outputs and five inputs; simulated I/O unless GPIO lines are given. Register map: "
      "docs/door-io.md"};
  std::string listen = "127.0.0.1:1502", status, gpio_chip, gpio_outputs, gpio_inputs, rtu,
              ready_file, log_level = "info";
  std::string tls_dir;
  bool plain_http = false;
  bool simulate = false, outputs_active_low = false, inputs_active_low = false;
  anju::door::Config config;
  int pulse_ms = config.default_pulse_ms, idle_s = 120;
  std::string parity = "N";
  size_t max_clients = config.max_clients;
  app.add_option("--listen", listen, "Modbus TCP address HOST:PORT (PORT 0 = any free port)")
      ->capture_default_str();
  app.add_flag("--simulate", simulate, "simulate the I/O (the default without --gpio-chip)");
  app.add_option("--status", status,
                 "HTTPS status endpoint HOST:PORT: GET /status, POST /inputs (simulated inputs)");
  app.add_option("--tls-dir", tls_dir,
                 "状态端口证书目录 / where the status endpoint's self-signed certificate is kept "
                 "(status.crt, status.key; made at first start). Default $ANJU_CONVERTER_DIR/tls, "
                 "else ~/.local/share/anju/converter/tls");
  app.add_flag("--plain-http", plain_http,
               "状态端口不加密，仅供开发 / status endpoint over plain HTTP (development only)");
  app.add_option("--gpio-chip", gpio_chip, "drive real lines of this GPIO chip (e.g. gpiochip0)");
  app.add_option("--gpio-outputs", gpio_outputs, "line offsets of outputs 0,1 (e.g. 17,27)");
  app.add_option(
      "--gpio-inputs", gpio_inputs,
      "line offsets of contact,exit,tamper,fire,spare ('-' = not wired, '!6' = line 6 inverted)");
  app.add_flag("--gpio-outputs-active-low", outputs_active_low, "outputs are active low");
  app.add_flag("--gpio-inputs-active-low", inputs_active_low,
               "inputs are active low (contacts to ground with pull-ups)");
  app.add_option("--rtu", rtu, "also serve Modbus RTU on this serial device (e.g. /dev/ttyUSB0)");
  app.add_option("--baud", config.rtu_baud, "RTU baud rate")->capture_default_str();
  app.add_option("--parity", parity, "RTU parity N, E or O")
      ->check(CLI::IsMember({"N", "E", "O"}))
      ->capture_default_str();
  app.add_option("--unit-id", config.unit_id, "Modbus unit / slave id")
      ->check(CLI::Range(1, 247))
      ->capture_default_str();
  app.add_option("--pulse-ms", pulse_ms, "initial pulse width of both outputs (0 = latch)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--max-clients", max_clients, "concurrent TCP clients")->capture_default_str();
  app.add_option("--idle-timeout", idle_s, "drop TCP clients silent this many seconds")
      ->capture_default_str();
  app.add_option("--ready-file", ready_file,
                 "write {\"modbus_port\",\"status_port\",\"status_cert\",\"pid\"} JSON here once "
                 "listening");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    spdlog::set_level(spdlog::level::from_str(log_level));
    if (simulate && !gpio_chip.empty())
      throw anju::Error(anju::ErrorCode::kInvalidArgument,
                        "--simulate and --gpio-chip exclude each other");
    std::tie(config.listen_host, config.listen_port) = SplitHostPort(listen, "--listen");
    if (!status.empty()) {
      auto [host, port] = SplitHostPort(status, "--status");
      config.status_host = host;
      config.status_port = std::stoi(port);
      config.status_tls = !plain_http;
      config.tls_dir = tls_dir.empty() ? DefaultTlsDir() : std::filesystem::path(tls_dir);
    }
    config.gpio_chip = gpio_chip;
    if (!gpio_chip.empty()) {
      for (auto& l : ParseLines(gpio_outputs, outputs_active_low))
        if (l) config.gpio_outputs.push_back(*l);
      config.gpio_inputs = ParseLines(gpio_inputs, inputs_active_low);
    }
    config.rtu_device = rtu;
    config.rtu_parity = parity[0];
    config.default_pulse_ms = static_cast<uint16_t>(pulse_ms);
    config.max_clients = max_clients;
    config.idle_timeout = std::chrono::seconds(idle_s);
    config.ready_file = ready_file;

    anju::door::Converter converter(config);
    g_converter = &converter;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    converter.Run();
    g_converter = nullptr;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
  return 0;
}
