// Maintenance on demand: the retention job (R3.3.2.6; retention.h) and the online backup
// with its check (R3.3.2.5; backup.h). The schedule runs in the composition root.
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/paths.h"
#include "server/backup/backup.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/retention/retention.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

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
                 FolderInside(deps.backup_dir, r.body["file"].get<std::string>(), "file");
             std::error_code ec;
             fs::create_directories(deps.backup_dir, ec);
             const BackupInfo info =
                 CreateBackup(deps.data_dir, out, *deps.backup_key, deps.blobs, deps.postgres);
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
                 FolderInside(deps.backup_dir, r.body["file"].get<std::string>(), "file"),
                 *deps.backup_key)));
           })
      .Body(Obj({Req("file", Str("archive path inside the backup folder (backup_dir)"))}));
}

}  // namespace anju::server
