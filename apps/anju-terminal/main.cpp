// anju-terminal — the gate / unit-door face terminal. Only the command line
// lives here; the terminal is anju::terminal::Terminal (src/terminal/terminal.h).
//
//   anju-terminal --config FILE [--plain-http]       run (SIGINT / SIGTERM stop it cleanly)
//   anju-terminal register --server URL --code CODE --data-dir D
//   anju-terminal export --data-dir D --out PKG --key KEYFILE --sign-key SM2PEM
//   anju-terminal import PKG --data-dir D --key KEYFILE --trust PUBPEM
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <csignal>

#include <CLI/CLI.hpp>
#include <atomic>
#include <fstream>
#include <iostream>
#include <opencv2/core/utils/logger.hpp>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "terminal/gallery_package.h"
#include "terminal/terminal.h"

namespace {

using namespace anju;
using namespace anju::terminal;
namespace fs = std::filesystem;

int Run(const std::string& config_file, bool exit_at_end, bool plain_http) {
  // Signals are taken by sigwait below, never by a handler on a random thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // OpenSSL writes with write(2): a peer that dies holding a kept-alive connection would
  // otherwise kill this process with SIGPIPE instead of failing one request.
  std::signal(SIGPIPE, SIG_IGN);

  TerminalConfig config = TerminalConfig::Load(config_file);
  if (plain_http) config.status_tls = false;
  Terminal terminal(std::move(config));
  terminal.Start();
  if (terminal.status_port()) {
    std::cerr << "状态页 / status page: " << terminal.status_url() << "/\n";
    if (!terminal.status_fingerprint().empty())
      std::cerr << "  TLS 证书 / certificate: " << terminal.status_cert_file().string()
                << "\n  SHA-256 指纹 / fingerprint: " << terminal.status_fingerprint() << "\n";
    else
      std::cerr << "  注意 / note: 未启用 HTTPS / plain HTTP: development only\n";
  }
  std::atomic<bool> stopping{false};
  std::thread end_watch;
  if (exit_at_end)
    end_watch = std::thread([&] {
      while (!stopping) {
        if (terminal.WaitCameraEnded(std::chrono::milliseconds(200))) {
          kill(getpid(), SIGTERM);
          return;
        }
      }
    });
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("收到信号 {}，正在停止 / signal {}, stopping", sig, sig);
  stopping = true;
  if (end_watch.joinable()) end_watch.join();
  terminal.Stop();
  const auto s = terminal.Status();
  std::cout << s.dump() << "\n";
  return 0;
}

std::string ModelVersionFor(const fs::path& data_dir, const std::string& model_dir) {
  if (fs::exists(data_dir / "gallery.db")) return LocalState::Open(data_dir)->model_version();
  return vision::FaceEngine::Open(model_dir)->model_version();
}

}  // namespace

int main(int argc, char** argv) {
  cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_ERROR);
  spdlog::set_default_logger(spdlog::stderr_color_mt("anju-terminal"));
  CLI::App app{"anju-terminal 安居门禁终端 — face recognition gate / unit-door terminal"};
  std::string config_file, log_level = "info";
  bool exit_at_end = false, plain_http = false;
  app.add_option("--config", config_file, "terminal config file (JSON, see docs/terminal.md)")
      ->check(CLI::ExistingFile);
  app.add_flag("--exit-at-end", exit_at_end,
               "stop when a finite camera source (file, image directory) has played out");
  app.add_flag("--plain-http", plain_http,
               "状态页不加密，仅供开发 / status page over plain HTTP (development only; same as "
               "\"status_tls\": false)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));

  std::string server, code, data_dir, name = "anju-terminal", model_dir, ca_file;
  int doors = 1;
  auto* reg = app.add_subcommand("register", "register this terminal with anju-server");
  reg->add_option("--server", server, "server base URL, e.g. https://10.0.0.1:8640")->required();
  reg->add_option("--ca-file", ca_file,
                  "服务器证书 / the server's certificate to trust (its tls/server.crt)");
  reg->add_option("--code", code, "one-time enrolment code from the administrator")->required();
  reg->add_option("--data-dir", data_dir, "the terminal's data directory")->required();
  reg->add_option("--name", name, "name shown on the server (e.g. 3号楼1单元)");
  reg->add_option("--doors", doors, "doors this terminal controls")->check(CLI::Range(1, 16));
  reg->add_option("--models", model_dir, "model directory (for the feature model version)")
      ->envname("ANJU_MODEL_DIR");

  std::string out, key_file, sign_key, trust, package;
  auto* exp = app.add_subcommand("export", "write the gallery to a signed, encrypted package");
  exp->add_option("--data-dir", data_dir, "the terminal's data directory")->required();
  exp->add_option("--out", out, "package file to write")->required();
  exp->add_option("--key", key_file, "package key: raw key file (`anju keygen master`)")
      ->required();
  exp->add_option("--sign-key", sign_key, "SM2 private key PEM of the issuer (`anju keygen sm2`)")
      ->required();
  auto* imp = app.add_subcommand("import", "replace the gallery with a package's (offline)");
  imp->add_option("package", package, "package file")->required();
  imp->add_option("--data-dir", data_dir, "the terminal's data directory")->required();
  imp->add_option("--key", key_file, "package key: raw key file")->required();
  imp->add_option("--trust", trust, "SM2 public key PEM of the trusted issuer")->required();

  try {
    app.parse(argc, argv);
    spdlog::set_level(spdlog::level::from_str(log_level));
    if (*reg) {
      auto state = LocalState::Open(data_dir, {ModelVersionFor(data_dir, model_dir)});
      protocol::ClientOptions co;
      co.ca_file = ca_file;
      const auto id = RegisterDevice(*state, server, code, name, doors, co);
      std::cout << "已注册 / registered: device " << id.device_id << " at " << server << "\n";
      return 0;
    }
    if (*exp) {
      auto state = LocalState::Open(data_dir);
      const auto signer = crypto::Sm2Key::FromPrivatePem(crypto::ReadSecretFile(sign_key));
      const auto info = ExportPackage(*state, out, crypto::LoadRawKeyFile(key_file), signer);
      std::cout << "已导出 / exported " << info.persons << " persons (" << info.templates
                << " templates) to " << out << ", signed by " << info.signer << "\n";
      return 0;
    }
    if (*imp) {
      const auto peek = PeekPackage(package);
      auto state = LocalState::Open(data_dir, {peek.model_version});
      std::ifstream in(trust);
      if (!in) throw Error(ErrorCode::kNotFound, "cannot read trusted key " + trust);
      std::stringstream pem;
      pem << in.rdbuf();
      const auto info = ImportPackage(*state, package, crypto::LoadRawKeyFile(key_file),
                                      crypto::Sm2Key::FromPublicPem(pem.str()));
      std::cout << "已导入 / imported " << info.persons << " persons (" << info.templates
                << " templates) from " << package << " signed by " << info.signer << "\n";
      return 0;
    }
    if (config_file.empty()) {
      std::cerr << app.help();
      std::cerr << "错误 / error: --config FILE is required to run the terminal\n";
      return 2;
    }
    return Run(config_file, exit_at_end, plain_http);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const anju::Error& e) {
    std::cerr << "错误 / error [" << anju::ErrorCodeName(e.code()) << "]: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "错误 / error: " << e.what() << "\n";
    return 1;
  }
}
