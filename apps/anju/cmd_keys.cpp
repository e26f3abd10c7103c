// anju keys info | rotate — the server's key set (R3.3.3.2, R4.2.4.1, docs/audit-and-keys.md).
#include <cstdio>
#include <filesystem>
#include <string>

#include "command.h"
#include "core/error.h"
#include "crypto/keyfile.h"
#include "server/audit/server_keys.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;

void InstallKeyCommands(CLI::App& root) {
  static std::string data_dir;
  auto* keys = Group(root, "keys", "the server's master and class keys / 密钥管理");

  auto* info = keys->add_subcommand("info", "list the class key files (ids only, no secrets)");
  info->add_option("--data-dir", data_dir, "server data directory")->required();
  info->callback([] {
    const fs::path dir = data_dir;
    if (fs::exists(dir / "master.key"))
      std::printf("%-12s %s\n", "master.key",
                  crypto::LoadRawKeyFile(dir / "master.key").id().c_str());
    else
      std::printf("%-12s 缺失 / missing\n", "master.key");
    for (const auto& name : server::ClassKeyFiles()) {
      if (!fs::exists(dir / name)) {
        std::printf("%-12s 缺失 / missing\n", name.c_str());
        continue;
      }
      const crypto::KeyFileInfo i = crypto::ReadKeyFileInfo(dir / name);
      std::printf("%-12s key %s  wrapped by master %s  (%s)\n", name.c_str(), i.key_id.c_str(),
                  i.master_id.c_str(), i.created.c_str());
    }
  });

  auto* rotate = keys->add_subcommand(
      "rotate", "new master key; re-wrap every class key under it (the server may keep running)");
  rotate->add_option("--data-dir", data_dir, "server data directory")->required();
  rotate->callback([] {
    const server::RotateResult r = server::RotateMasterKey(data_dir);
    if (r.recovered) std::printf("已完成上次中断的轮换 / finished an interrupted rotation first\n");
    std::printf("主密钥已轮换 / master key rotated: %s -> %s\n", r.old_master_id.c_str(),
                r.new_master_id.c_str());
    for (const auto& f : r.rewrapped) std::printf("  重新封装 / re-wrapped %s\n", f.c_str());
    std::printf(
        "请将新的 master.key 离机保存，并销毁旧主密钥的副本 / keep a copy of the new "
        "%s off this machine and destroy copies of the old one\n",
        (fs::path(data_dir) / "master.key").c_str());
  });
}

ANJU_COMMAND(InstallKeyCommands);

}  // namespace
}  // namespace anju::cli
