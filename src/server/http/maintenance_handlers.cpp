// Maintenance on demand: the retention job (R3.3.2.6; retention.h) and the online backup
// with its check (R3.3.2.5; backup.h). The schedule runs in the composition root.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "protocol/api_error.h"
#include "server/backup.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/retention.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// PATH (absolute) made canonical, or 403 forbidden when it lies outside ROOT (checked
// before anything touches the file, so a refusal says nothing about what exists there).
fs::path InsideFolder(const fs::path& root, const std::string& path, const std::string& what) {
  const fs::path p(path);
  if (!p.is_absolute())
    throw protocol::ApiError(400, "bad_request",
                             what + " 需为绝对路径 / " + what + ": absolute path");
  std::error_code ec;
  const fs::path r = fs::weakly_canonical(fs::absolute(root), ec);
  const fs::path c = fs::weakly_canonical(p, ec);
  const auto rel = c.lexically_relative(r);
  if (ec || rel.empty() || *rel.begin() == ".." || rel == ".")
    throw protocol::ApiError(403, "forbidden",
                             what + " 须位于 " + root.string() + " 之内 / " + what +
                                 " must lie inside " + root.string());
  return c;
}

}  // namespace

void RegisterMaintenanceHandlers(Router& router, MaintenanceDeps deps) {
  router.Add("POST", "/api/v1/admin/retention/run", "maintenance", Auth::kAdmin, "maintenance",
             "Run the retention job now (snapshots 12 months, video references 3 months, ...)",
             [deps](Request& r) {
               const RetentionPolicy policy = deps.retention();
               const std::string actor = r.actor;
               const auto report = RunRetention(
                   *deps.events, policy, std::chrono::system_clock::now(),
                   [&deps, actor](std::string a, json d) { deps.audit(actor, a, "events", d); });
               return Reply::Json(ToJson(report));
             });

  router
      .Add("POST", "/api/v1/admin/backup", "maintenance", Auth::kAdmin, "maintenance",
           "Online backup of the data directory into an SM4-encrypted archive on the server "
           "(key: backup.key in the data directory)",
           [deps](Request& r) {
             const fs::path out =
                 InsideFolder(deps.backup_dir, r.body["file"].get<std::string>(), "file");
             std::error_code ec;
             fs::create_directories(deps.backup_dir, ec);
             const BackupInfo info = CreateBackup(deps.data_dir, out, *deps.backup_key);
             deps.audit(r.actor, "backup", out.string(),
                        {{"bytes", info.bytes}, {"files", info.files()}});
             return Reply::Json(ToJson(info), 201);
           })
      .Body(Obj({Req("file", Str("absolute path of the new archive inside the backup folder "
                                 "(backup_dir)"))}));

  router
      .Add("POST", "/api/v1/admin/backup/verify", "maintenance", Auth::kAdmin, "maintenance",
           "Read and authenticate a backup archive without restoring it",
           [deps](Request& r) {
             return Reply::Json(ToJson(VerifyBackup(
                 InsideFolder(deps.backup_dir, r.body["file"].get<std::string>(), "file"),
                 *deps.backup_key)));
           })
      .Body(Obj({Req("file", Str("archive path inside the backup folder (backup_dir)"))}));
}

}  // namespace anju::server
