// anju-server [--data-dir DIR] [--listen HOST:PORT] [--camera-listen HOST:PORT] [--config FILE]
//             [--plain-http] [--bus nats://…] [--blobs DIR] [--database postgresql://…]
//             [--role all|api|worker] [--recognition-workers N] [--index-precision int8|fp32]
//   serves the archive, enrolment, device protocol and events API (docs/server-api.md); the
//   camera listener serves only GA/T 1400 (/VIID/..., docs/viid.md)
// anju-server reset-password --user NAME [--data-dir DIR]   new one-time password (offline)
// anju-server backup --out FILE [--data-dir DIR]       online backup (server may run)
// anju-server restore --in FILE --target DIR --backup-key FILE   restore into an empty dir
#include <signal.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <csignal>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "match/index.h"
#include "server/backup/backup.h"
#include "server/runtime/embedded.h"
#include "server/server.h"
#include "server/storage/databases.h"

namespace {

namespace fs = std::filesystem;
using anju::server::ServerOptions;

void ParseListen(const std::string& listen, ServerOptions& o) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos)
    throw anju::Error(anju::ErrorCode::kInvalidArgument, "--listen needs HOST:PORT: " + listen);
  o.host = listen.substr(0, colon);
  try {
    o.port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    throw anju::Error(anju::ErrorCode::kInvalidArgument, "--listen: bad port in " + listen);
  }
  if (o.port < 0 || o.port > 65535)
    throw anju::Error(anju::ErrorCode::kInvalidArgument, "--listen: port out of range");
}

int Serve(ServerOptions options) {
  // Block the signals before any thread starts, then wait for them here.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // OpenSSL writes with write(2): a peer that dies holding a kept-alive connection would
  // otherwise kill this process with SIGPIPE instead of failing one request.
  std::signal(SIGPIPE, SIG_IGN);

  const anju::server::ServerRole role = options.role;
  // Every role started before its nats-server waits for it (R3.4.2.1): no supervisor has
  // to start it again; SIGTERM / SIGINT still stop it at once.
  bool stop_asked = false;
  options.wait_for_bus = true;
  options.stop_waiting = [&set, &stop_asked] {
    timespec now{0, 0};
    if (sigtimedwait(&set, nullptr, &now) > 0) stop_asked = true;
    return stop_asked;
  };
  std::unique_ptr<anju::server::Server> started;
  try {
    started = std::make_unique<anju::server::Server>(std::move(options));
  } catch (const anju::Error&) {
    if (!stop_asked) throw;
    std::printf("等待总线时收到停止信号 / asked to stop while waiting for the bus\n");
    return 0;
  }
  anju::server::Server& server = *started;
  server.Start();
  std::printf("anju-server 已启动 / started (%s)\n", anju::server::ServerRoleName(role));
  if (role == anju::server::ServerRole::kWorker) {
    std::printf("  识别工作进程，无监听 / recognition worker: no listener\n");
    std::fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    server.Stop();
    return 0;
  }
  std::printf("  数据目录 / data directory: %s%s\n", server.data_dir().c_str(),
              server.first_start() ? "  (首次启动，已生成密钥 / first start: keys created)" : "");
  std::printf("  地址 / URL:                %s  (API %s/api/v1, OpenAPI %s/api/openapi.json)\n",
              server.url().c_str(), server.url().c_str(), server.url().c_str());
  if (!server.tls_fingerprint().empty())
    std::printf("  TLS 证书 / certificate:    %s%s\n    SHA-256 指纹 / fingerprint: %s\n",
                server.tls_cert_file().c_str(),
                server.tls_cert_created() ? "  (自签名，首次生成 / self-signed, just created)" : "",
                server.tls_fingerprint().c_str());
  else
    std::printf("  注意 / note: 未启用 HTTPS（--plain-http）/ plain HTTP: development only\n");
  if (server.camera_port())
    std::printf("  摄像机接入 / camera listener: %s  (仅 GA/T 1400 /VIID/... only)\n",
                server.camera_url().c_str());
  for (const auto& [user, password] : server.initial_passwords())
    std::printf("  初始管理员 / initial administrator: %-10s 一次性口令 / one-time password: %s\n",
                user.c_str(), password.c_str());
  if (!server.initial_passwords().empty())
    std::printf(
        "    首次登录须修改口令并绑定动态口令 / change it at first login, then enrol TOTP\n");
  std::printf("  接口令牌 / integration API token: %s (Authorization: Bearer …)\n",
              server.admin_token_file().c_str());
  std::printf("  备份密钥 / backup key:     %s  (请离机保存一份 / keep a copy off this machine)\n",
              (server.data_dir() / "backup.key").c_str());
  if (server.model_version().empty())
    std::printf("  注意 / note: 未安装人脸模型，无法采集 / no face models: enrolment disabled\n");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("收到信号 %d，正在停止 / signal %d: stopping\n", sig, sig);
  std::fflush(stdout);
  server.Stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "anju-server 安居服务器 — 档案、采集、设备、事件 / archive, enrolment, devices, events"};
  std::string data_dir, listen = "127.0.0.1:8640", config;
  app.add_option("--data-dir", data_dir,
                 "数据目录 / data directory (default $ANJU_SERVER_DIR, else "
                 "~/.local/share/anju/server)");
  app.add_option("--listen", listen, "HOST:PORT (default 127.0.0.1:8640; port 0 = any)");
  app.add_option("--config", config, "JSON config file (see docs/server-api.md)");
  std::string camera_listen;
  app.add_option("--camera-listen", camera_listen,
                 "摄像机接入地址 / camera listener HOST:PORT (GA/T 1400 only; plain HTTP unless "
                 "\"camera_tls\" in the config says otherwise)");
  std::string bus;
  app.add_option("--bus", bus,
                 "共享运行时 / the runtime shared by several server processes: "
                 "nats://HOST:PORT (NATS JetStream; default: embedded, one process; "
                 "docs/distributed.md)");
  std::string blobs_dir;
  app.add_option("--blobs", blobs_dir,
                 "加密文件目录 / where sealed photos, event snapshots and capture images go "
                 "(default: the data directory; a shared path when several server processes "
                 "serve one installation; \"database\": in the PostgreSQL --database)");
  std::string database, role;
  app.add_option("--database", database,
                 "数据库 / where the databases are: postgresql://… (PostgreSQL, shared by "
                 "every server and worker; default: SQLite files in the data directory)");
  app.add_option("--role", role,
                 "角色 / what this process does: all (default), api (HTTP only, recognition "
                 "elsewhere) or worker (recognition only, no listener); api and worker need "
                 "--bus");
  int recognition_workers = -1;
  app.add_option("--recognition-workers", recognition_workers,
                 "识别线程数 / snapshot recognition threads (default 1)");
  std::string index_precision;
  app.add_option("--index-precision", index_precision,
                 "1:N 索引精度 / precision of the in-memory 1:N index: int8 (default) or fp32");
  bool plain_http = false;
  app.add_flag("--plain-http", plain_http,
               "不加密的 HTTP，仅供开发 / plain HTTP instead of HTTPS (development only)");
  auto* reset = app.add_subcommand(
      "reset-password", "重置账号口令（离线）/ set a new one-time password for an account");
  std::string reset_user;
  reset->add_option("--user", reset_user, "username")->required();
  auto* backup = app.add_subcommand("backup", "在线备份 / online backup into an encrypted archive");
  std::string out;
  backup->add_option("--out", out, "archive file to create (outside the data directory)")
      ->required();
  auto* restore =
      app.add_subcommand("restore", "从备份恢复 / restore an archive into an empty dir");
  std::string in, target, key_file;
  restore->add_option("--in", in, "archive file")->required();
  restore->add_option("--target", target, "empty or missing directory")->required();
  restore->add_option("--backup-key", key_file, "backup.key kept from the original server")
      ->required();
  CLI11_PARSE(app, argc, argv);
  try {
    ServerOptions options;
    // The console built by `make build` sits beside bin/: build/console.
    if (std::error_code ec; true) {
      const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
      if (!ec) options.console_dir = exe.parent_path().parent_path() / "console";
    }
    if (const char* d = std::getenv("ANJU_CONSOLE_DIR"); d && *d) options.console_dir = d;
    if (!config.empty()) {
      std::ifstream f(config);
      if (!f) throw anju::Error(anju::ErrorCode::kNotFound, "config file not found: " + config);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(f);
      } catch (const nlohmann::json::exception& e) {
        throw anju::Error(anju::ErrorCode::kInvalidArgument,
                          "config " + config + ": malformed JSON: " + e.what());
      }
      options.ApplyConfig(j);
    }
    if (app.get_option("--listen")->count() || config.empty()) ParseListen(listen, options);
    options.data_dir = data_dir.empty() ? anju::server::DefaultServerDataDir() : fs::path(data_dir);
    if (plain_http) options.tls = false;
    if (!camera_listen.empty()) options.camera_listen = camera_listen;
    if (!bus.empty()) options.bus = bus;
    if (!blobs_dir.empty()) options.blobs_dir = blobs_dir;
    if (!database.empty()) {
      anju::server::storage::CheckDatabaseLocation(database);
      options.database = database;
    }
    if (!role.empty()) options.role = anju::server::ParseServerRole(role);
    if (recognition_workers >= 0) options.recognition_workers = recognition_workers;
    if (!index_precision.empty()) {
      anju::match::ParsePrecision(index_precision);
      options.index_precision = index_precision;
    }
    if (*reset) {
      // Opens the archive without listening (the running server may stay up: SQLite).
      anju::server::Server server(options);
      const std::string pw = server.ResetPassword(reset_user);
      std::printf("%s 的一次性口令 / one-time password for %s: %s\n", reset_user.c_str(),
                  reset_user.c_str(), pw.c_str());
      return 0;
    }
    if (*backup) {
      const auto key = anju::crypto::LoadRawKeyFile(options.data_dir / "backup.key");
      // Blobs kept in another directory (--blobs DIR) go into the archive too; blobs in the
      // database (--blobs database) as a dump of their schema, with the other databases.
      std::unique_ptr<anju::server::runtime::BlobStore> blobs;
      anju::db::Db* blobs_db = nullptr;
      if (anju::server::BlobsElsewhere(options) || anju::server::BlobsInDatabase(options))
        blobs = anju::server::MakeBlobStore(options, &blobs_db);
      // Databases on PostgreSQL go in as dumps (pg_dump) of their schemas.
      std::vector<std::unique_ptr<anju::db::Db>> open;
      std::vector<anju::db::Db*> postgres;
      if (!options.database.empty()) {
        namespace storage = anju::server::storage;
        open.push_back(storage::OpenArchiveAt(options.database, options.data_dir));
        open.push_back(storage::OpenEventsAt(options.database, options.data_dir));
        open.push_back(storage::OpenCapturesAt(options.database, options.data_dir));
        for (auto& d : open) postgres.push_back(d.get());
      }
      if (blobs_db) postgres.push_back(blobs_db);
      const auto info = anju::server::CreateBackup(options.data_dir, out, key,
                                                   blobs_db ? nullptr : blobs.get(), postgres);
      std::cout << anju::server::ToJson(info).dump(2) << "\n";
      return 0;
    }
    if (*restore) {
      const auto key = anju::crypto::LoadRawKeyFile(key_file);
      const auto info = anju::server::RestoreBackup(in, target, key);
      std::cout << anju::server::ToJson(info).dump(2) << "\n";
      return 0;
    }
    return Serve(std::move(options));
  } catch (const anju::Error& e) {
    std::fprintf(stderr, "错误 / error [%s]: %s\n", anju::ErrorCodeName(e.code()), e.what());
    return 1;
  }
}
