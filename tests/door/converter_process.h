// A real anju-converter child process for the tests: started on 127.0.0.1 with free
// ports (it reports them through --ready-file), stopped with SIGTERM or SIGKILL.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace anju::door::testing {

class ConverterProcess {
 public:
  explicit ConverterProcess(std::vector<std::string> extra_args = {});
  ~ConverterProcess();

  // Starts the converter; reuses the previous ports after a Stop (restart test).
  void Start();
  // Sends `signal` and waits; returns the raw waitpid status.
  int Stop(int signal = 15 /* SIGTERM */);
  bool running() const { return pid_ > 0; }

  int port() const { return port_; }
  int status_port() const { return status_port_; }
  // The HTTPS status endpoint's self-signed certificate (kept in the process's directory
  // across restarts) and its fingerprint.
  const std::filesystem::path& status_cert() const { return status_cert_; }
  const std::string& status_fingerprint() const { return status_fingerprint_; }
  std::string log() const;

  nlohmann::json Status() const;
  nlohmann::json SetInputs(const nlohmann::json& inputs) const;

 private:
  std::vector<std::string> extra_args_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int status_port_ = 0;
  std::filesystem::path status_cert_;
  std::string status_fingerprint_;
  int starts_ = 0;
};

// Polls `pred` every 5 ms until it is true or `timeout` passes; returns its last value.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    struct timespec ts {
      0, 5'000'000
    };
    nanosleep(&ts, nullptr);
  }
  return pred();
}

}  // namespace anju::door::testing
