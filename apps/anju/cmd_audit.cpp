// anju audit verify | export — the tamper-evident audit log of a server data directory
// (R4.2.2.1, docs/audit-and-keys.md). Both open archive.db read-only, so they are safe
// while anju-server runs.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "command.h"
#include "core/error.h"
#include "server/audit/audit_log.h"
#include "server/audit/server_keys.h"

namespace anju::cli {
namespace {

namespace fs = std::filesystem;

// Milliseconds, or an ISO 8601 UTC date "2026-11-01" / "2026-11-01T08:30:00[Z]".
int64_t ParseTime(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  std::tm tm{};
  int n = std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
  if (n != 3 && n < 5)
    throw Error(ErrorCode::kInvalidArgument,
                "时间格式错误 / bad time \"" + s + "\" (milliseconds or 2026-11-01[T08:30:00])");
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return int64_t(timegm(&tm)) * 1000;
}

void InstallAuditCommands(CLI::App& root) {
  static std::string data_dir, format = "csv", out, from, to, actor, action, object;
  static bool as_json = false, no_key = false;
  auto* audit = Group(root, "audit", "the tamper-evident audit log / 审计日志");

  auto* verify = audit->add_subcommand(
      "verify", "check the SM3 hash chain, the HMAC-SM3 checkpoints and the head file");
  verify->add_option("--data-dir", data_dir, "server data directory")->required();
  verify->add_flag("--json", as_json, "also print the result as one JSON line");
  verify->add_flag("--no-key", no_key, "check the hash chain only (no audit.key needed)");
  verify->callback([] {
    const fs::path dir = data_dir;
    std::optional<crypto::DataKey> key;
    if (!no_key) {
      if (!fs::exists(dir / server::kAuditKeyFile))
        std::fprintf(stderr,
                     "警告 / warning: %s 不存在 / is missing (the server has not run with the "
                     "audit chain yet): checking the hash chain only\n",
                     (dir / server::kAuditKeyFile).c_str());
      else
        key = server::LoadClassKey(dir, server::kAuditKeyFile);
    }
    const server::AuditVerifyResult r = server::VerifyAuditFile(dir / "archive.db", key);
    if (as_json) std::printf("%s\n", r.ToJson().dump().c_str());
    if (!r.ok)
      throw Error(ErrorCode::kCorrupt, "审计日志被篡改 / audit log tampered: first bad record " +
                                           std::to_string(*r.first_bad) + ": " + r.problem);
    if (r.keyed && r.checkpoints == 0 && r.checked > 0)
      std::fprintf(stderr,
                   "警告 / warning: 还没有检查点 / no checkpoint yet: the server has not run with "
                   "the audit key, so only the hash chain was checked\n");
    std::printf(
        "审计日志完好 / audit log intact: %lld 条记录 / records checked, %lld 个检查点 / "
        "checkpoints verified%s\n",
        (long long)r.checked, (long long)r.checkpoints,
        r.keyed ? "" : " (无密钥，仅哈希链 / no key: hash chain only, which proves little)");
  });

  auto* exp = audit->add_subcommand("export", "write audit records as CSV or JSON lines");
  exp->add_option("--data-dir", data_dir, "server data directory")->required();
  exp->add_option("--format", format, "csv (default) or json (one object per line)");
  exp->add_option("--out", out, "output file (default: standard output)");
  exp->add_option("--from", from, "from this time (ms or 2026-11-01[T08:30:00], UTC)");
  exp->add_option("--to", to, "before this time");
  exp->add_option("--actor", actor, "only this actor");
  exp->add_option("--action", action, "only this action");
  exp->add_option("--object", object, "only objects starting with this");
  exp->callback([] {
    server::AuditQuery q;
    if (!from.empty()) q.from_ms = ParseTime(from);
    if (!to.empty()) q.to_ms = ParseTime(to);
    q.actor = actor;
    q.action = action;
    q.object_prefix = object;
    const fs::path db = fs::path(data_dir) / "archive.db";
    size_t n = 0;
    if (out.empty()) {
      n = server::ExportAuditFile(db, q, format, std::cout);
      std::cout.flush();
    } else {
      if (fs::exists(out))
        throw Error(ErrorCode::kInvalidArgument, "文件已存在 / " + out + " already exists");
      std::ofstream f(out, std::ios::binary);
      if (!f) throw Error(ErrorCode::kIo, "cannot create " + out);
      n = server::ExportAuditFile(db, q, format, f);
      f.close();
      if (!f) throw Error(ErrorCode::kIo, "cannot write " + out);
    }
    std::fprintf(stderr, "已导出 / exported %zu 条审计记录 / audit records\n", n);
  });
}

ANJU_COMMAND(InstallAuditCommands);

}  // namespace
}  // namespace anju::cli
