#include "converter_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "testing.h"

namespace anju::door::testing {

namespace {
int g_counter = 0;
}

ConverterProcess::ConverterProcess(std::vector<std::string> extra_args)
    : extra_args_(std::move(extra_args)) {
  dir_ = anju::testing::TempDir("converter-" + std::to_string(++g_counter));
}

ConverterProcess::~ConverterProcess() {
  if (pid_ > 0) Stop(SIGKILL);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void ConverterProcess::Start() {
  const auto ready = dir_ / "ready.json";
  std::filesystem::remove(ready);
  std::vector<std::string> args = {
      ANJU_CONVERTER_BIN,     "--listen",     "127.0.0.1:" + std::to_string(port_),
      "--simulate",           "--status",     "127.0.0.1:" + std::to_string(status_port_),
      "--ready-file",         ready.string(), "--tls-dir",
      (dir_ / "tls").string()};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  const std::string log = (dir_ / "converter.log").string();
  ++starts_;
  pid_ = fork();
  if (pid_ < 0) throw Error(ErrorCode::kInternal, "fork failed");
  if (pid_ == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const bool ok =
      WaitFor([&] { return std::filesystem::exists(ready); }, std::chrono::milliseconds(10000));
  if (!ok) {
    Stop(SIGKILL);
    throw Error(ErrorCode::kUnavailable, "anju-converter did not start; log:\n" + this->log());
  }
  std::ifstream in(ready);
  auto j = nlohmann::json::parse(in);
  port_ = j["modbus_port"];
  status_port_ = j["status_port"];
  status_cert_ = j.value("status_cert", std::string());
  status_fingerprint_ = j.value("status_fingerprint", std::string());
}

int ConverterProcess::Stop(int signal) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, signal);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return status;
}

std::string ConverterProcess::log() const {
  std::ifstream in(dir_ / "converter.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {
// The status endpoint is HTTPS; the client trusts the converter's own certificate.
std::unique_ptr<httplib::SSLClient> StatusClient(int port, const std::filesystem::path& cert) {
  auto cli = std::make_unique<httplib::SSLClient>("127.0.0.1", port);
  cli->set_ca_cert_path(cert.c_str());
  cli->enable_server_certificate_verification(true);
  return cli;
}
}  // namespace

nlohmann::json ConverterProcess::Status() const {
  auto cli_ptr = StatusClient(status_port_, status_cert_);
  auto& cli = *cli_ptr;
  cli.set_connection_timeout(2);
  auto res = cli.Get("/status");
  if (!res || res->status != 200) throw Error(ErrorCode::kUnavailable, "GET /status failed");
  return nlohmann::json::parse(res->body);
}

nlohmann::json ConverterProcess::SetInputs(const nlohmann::json& inputs) const {
  auto cli_ptr = StatusClient(status_port_, status_cert_);
  auto& cli = *cli_ptr;
  cli.set_connection_timeout(2);
  auto res = cli.Post("/inputs", inputs.dump(), "application/json");
  if (!res) throw Error(ErrorCode::kUnavailable, "POST /inputs failed");
  if (res->status != 200) throw Error(ErrorCode::kInvalidArgument, "POST /inputs: " + res->body);
  return nlohmann::json::parse(res->body);
}

}  // namespace anju::door::testing
