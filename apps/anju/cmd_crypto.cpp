// anju sm3 FILE... | anju keygen master|data|sm2 — national-cryptography utilities.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "command.h"
#include "core/error.h"
#include "crypto/keyfile.h"
#include "crypto/sm2.h"
#include "crypto/sm3.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;

void RefuseOverwrite(const fs::path& path, bool force) {
  if (!force && fs::exists(path))
    throw Error(ErrorCode::kInvalidArgument,
                path.string() + " already exists (use --force to replace it)");
}

void InstallCryptoCommands(CLI::App& root) {
  static std::vector<std::string> files;
  static std::string out, master;
  static bool force = false;

  auto* sm3 = root.add_subcommand("sm3", "print the SM3 digest of files (like sha256sum)");
  sm3->add_option("files", files, "files to hash")->required();
  sm3->callback([] {
    for (auto& f : files) std::printf("%s  %s\n", crypto::Sm3File(f).c_str(), f.c_str());
  });

  auto* keygen = Group(root, "keygen", "generate keys (written with mode 0600)");

  auto* gen_master = keygen->add_subcommand("master", "random 32-byte master key (hex file)");
  gen_master->add_option("out", out, "output file")->required();
  gen_master->add_flag("--force", force, "replace an existing file");
  gen_master->callback([] {
    RefuseOverwrite(out, force);
    crypto::DataKey key = crypto::DataKey::Generate();
    crypto::WriteRawKeyFile(out, key);
    std::printf("master key %s → %s\n", key.id().c_str(), out.c_str());
  });

  auto* gen_data = keygen->add_subcommand("data", "random data key wrapped by a master key");
  gen_data->add_option("out", out, "output key file")->required();
  gen_data->add_option("--master", master, "master key file (from `anju keygen master`)")
      ->required();
  gen_data->add_flag("--force", force, "replace an existing file");
  gen_data->callback([] {
    RefuseOverwrite(out, force);
    crypto::DataKey m = crypto::LoadRawKeyFile(master);
    crypto::DataKey key = crypto::DataKey::Generate();
    crypto::WriteKeyFile(out, key, m);
    std::printf("data key %s wrapped by master %s → %s\n", key.id().c_str(), m.id().c_str(),
                out.c_str());
  });

  auto* gen_sm2 = keygen->add_subcommand("sm2", "SM2 key pair: PREFIX.key (private), PREFIX.pub");
  gen_sm2->add_option("prefix", out, "output path prefix")->required();
  gen_sm2->add_flag("--force", force, "replace existing files");
  gen_sm2->callback([] {
    fs::path priv = out + ".key", pub = out + ".pub";
    RefuseOverwrite(priv, force);
    RefuseOverwrite(pub, force);
    crypto::Sm2Key key = crypto::Sm2Key::Generate();
    crypto::WriteSecretFile(priv, key.PrivatePem());
    crypto::WriteSecretFile(pub, key.PublicPem());
    fs::permissions(pub, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                             fs::perms::others_read);
    std::printf("SM2 key %s → %s, %s\n", key.Fingerprint().c_str(), priv.c_str(), pub.c_str());
  });
}

ANJU_COMMAND(InstallCryptoCommands);

}  // namespace
}  // namespace anju::cli
