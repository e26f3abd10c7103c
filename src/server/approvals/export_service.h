// Bulk exports with approval (R4.2.1.1, docs/security.md): one user requests an export of
// events or persons (CSV) or enrolment photos (a tar of watermarked JPEGs), another user
// approves it, and only the requester downloads it, once, encrypted with a passphrase and
// watermarked with who took it out. The rows of a download count for the risk warning
// (R4.2.2.1).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/access/account_service.h"
#include "server/access/principal.h"
#include "server/storage/approval_repo.h"

namespace anju::server {

struct ExportDeps {
  db::Db* archive = nullptr;
  AccountService* accounts = nullptr;
  // Writes the CSV of the events FILTER selects, within DEVICES (nullopt = all); returns
  // the rows written.
  std::function<int64_t(const nlohmann::json& filter,
                        const std::optional<std::vector<std::string>>& devices, std::ostream& out)>
      events_csv;
  // The devices in P's sites (nullopt = all).
  std::function<std::optional<std::vector<std::string>>(const Principal& p)> scoped_devices;
  // The JPEG of the enrolment photo file NAME.
  std::function<std::vector<uint8_t>(const std::string& name)> read_photo;
  // Called when a download trips the risk warning for P (P is blocked already).
  std::function<void(const Principal& p)> risk_alarm;
};

class ExportService {
 public:
  explicit ExportService(ExportDeps deps) : d_(std::move(deps)) {}

  // KIND: events | persons | photos; FILTER as docs/server-api.md says.
  nlohmann::json Request(const Principal& who, const std::string& kind,
                         const nlohmann::json& filter, const std::string& reason);
  // {"items", "total"}: every request for an account with export.approve, else its own.
  nlohmann::json List(const Principal& who, int64_t limit, int64_t offset);
  // Not one's own, nor one made with a token one created (AccountService::CheckApprover).
  nlohmann::json Decide(int64_t id, bool approve, const std::string& note,
                        const Principal& who);
  struct File {
    std::string bytes;  // the passphrase-encrypted file (crypto::SealWithPassphrase)
    std::string name;   // anju-export-N.anjx
  };
  // The requester only, once, after approval.
  File Download(int64_t id, const std::string& passphrase, const Principal& who);

  static nlohmann::json ToJson(const storage::ExportRow& r);

 private:
  std::string Render(const std::string& kind, const nlohmann::json& filter, const Principal& who,
                     const std::string& watermark, int64_t* rows);
  std::string RenderPhotos(const nlohmann::json& filter, const Principal& who,
                           const std::string& watermark, int64_t* rows);
  ExportDeps d_;
};

}  // namespace anju::server
