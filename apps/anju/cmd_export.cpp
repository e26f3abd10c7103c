// anju export open --in FILE --passphrase P [--out FILE] — opens an approved export
// (docs/security.md): checks it is intact, prints who requested and approved it. Events and
// persons open as CSV, photos as a tar (watermarked JPEGs, manifest.csv, WATERMARK.txt).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "command.h"
#include "core/error.h"
#include "crypto/password.h"

namespace anju::cli {
namespace {

void InstallExportCommands(CLI::App& root) {
  static std::string in, out, passphrase;
  auto* exp = Group(root, "export", "approved bulk exports / 审批后的批量导出");
  auto* open = exp->add_subcommand("open", "decrypt an export file / 解密导出文件");
  open->add_option("--in", in, "the .anjx file downloaded from the server")->required();
  open->add_option("--passphrase", passphrase, "the passphrase given at download")->required();
  open->add_option("--out", out, "write the CSV (photos: the tar) here (default: standard output)");
  open->callback([] {
    std::ifstream f(in, std::ios::binary);
    if (!f) throw Error(ErrorCode::kNotFound, "cannot read " + in);
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::string header;
    crypto::Bytes plain;
    try {
      plain = crypto::OpenWithPassphrase(passphrase, crypto::AsBytes(bytes), &header);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCrypto)
        throw Error(ErrorCode::kCrypto, "口令错误或文件被改动 / wrong passphrase or altered file");
      throw;
    }
    const auto h = nlohmann::json::parse(header);
    std::fprintf(stderr, "导出 / export #%lld (%s): %lld rows, requested by %s, approved by %s\n",
                 static_cast<long long>(h.value("export", 0)), h.value("kind", "").c_str(),
                 static_cast<long long>(h.value("rows", 0)), h.value("requester", "").c_str(),
                 h.value("approver", "").c_str());
    if (out.empty()) {
      std::cout.write(reinterpret_cast<const char*>(plain.data()), std::streamsize(plain.size()));
      return;
    }
    std::ofstream o(out, std::ios::binary);
    o.write(reinterpret_cast<const char*>(plain.data()), std::streamsize(plain.size()));
    if (!o) throw Error(ErrorCode::kIo, "cannot write " + out);
  });
}

ANJU_COMMAND(InstallExportCommands);

}  // namespace
}  // namespace anju::cli
