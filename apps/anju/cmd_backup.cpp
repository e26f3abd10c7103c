// anju backup create | restore | verify — encrypted online backup of a server data
// directory (R3.3.2.5; format in docs/events-and-retention.md). The key is a raw key file
// as written by `anju keygen master FILE` (64 hex digits, mode 0600).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "crypto/keyfile.h"
#include "server/backup/backup.h"

namespace anju::cli {
namespace {

void PrintInfo(const char* what, const server::BackupInfo& info, const std::string& file,
               bool as_json) {
  std::printf(
      "%s %s: %lld 个数据库 / databases, %lld 个文件 / files, %.1f MB 数据 / data, "
      "%.1f MB 备份 / archive (key %s, archive %s)\n",
      what, file.c_str(), (long long)info.databases(), (long long)info.files(),
      double(info.bytes) / 1e6, double(info.archive_bytes) / 1e6, info.key_id.c_str(),
      info.archive_id.c_str());
  if (as_json) {
    nlohmann::json j = server::ToJson(info);
    j.erase("entries");
    j["file"] = file;
    std::printf("%s\n", j.dump().c_str());
  }
}

void InstallBackupCommands(CLI::App& root) {
  static std::string data_dir, file, key_file;
  static bool as_json = false, list = false;
  auto* backup = Group(root, "backup", "encrypted backup of the server data / 数据备份与恢复");

  auto* create = backup->add_subcommand(
      "create", "online backup of every database and file in the data directory");
  create->add_option("--data-dir", data_dir, "server data directory")->required();
  create->add_option("--out", file, "archive to write (must not exist)")->required();
  create->add_option("--key", key_file, "backup key file (anju keygen master FILE)")->required();
  create->add_flag("--json", as_json, "also print the result as one JSON line");
  create->callback([] {
    const crypto::DataKey key = crypto::LoadRawKeyFile(key_file);
    PrintInfo("备份完成 / backup written", server::CreateBackup(data_dir, file, key), file,
              as_json);
  });

  auto* restore =
      backup->add_subcommand("restore", "restore an archive into an empty (or new) data directory");
  restore->add_option("--in", file, "archive to read")->required();
  restore->add_option("--data-dir", data_dir, "empty target directory")->required();
  restore->add_option("--key", key_file, "backup key file")->required();
  restore->add_flag("--json", as_json, "also print the result as one JSON line");
  restore->callback([] {
    const crypto::DataKey key = crypto::LoadRawKeyFile(key_file);
    PrintInfo("恢复完成 / restored", server::RestoreBackup(file, data_dir, key), file, as_json);
  });

  auto* verify = backup->add_subcommand(
      "verify", "read and authenticate a whole archive without writing anything");
  verify->add_option("--in", file, "archive to check")->required();
  verify->add_option("--key", key_file, "backup key file")->required();
  verify->add_flag("--list", list, "list the entries");
  verify->add_flag("--json", as_json, "also print the result as one JSON line");
  verify->callback([] {
    const crypto::DataKey key = crypto::LoadRawKeyFile(key_file);
    const server::BackupInfo info = server::VerifyBackup(file, key);
    if (list)
      for (auto& e : info.entries)
        std::printf("%-6s %04o %12lld  %s  %s\n", e.kind.c_str(), e.mode, (long long)e.size,
                    e.sm3.substr(0, 16).c_str(), e.path.c_str());
    PrintInfo("校验通过 / verified", info, file, as_json);
  });
}

ANJU_COMMAND(InstallBackupCommands);

}  // namespace
}  // namespace anju::cli
