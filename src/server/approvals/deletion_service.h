// Bulk deletion with approval (R4.2.1.1, docs/security.md): one user asks to delete the face
// data or the whole archive of many persons at once, another user approves, and only then
// does the server delete. The request keeps the exact list of persons it was made for, so
// the approver approves that list. Deleting one person at a time stays as it is (move-out,
// consent withdrawal, photo deletion), each audited.
//
//   biometrics  photos (files removed) and feature codes; removal queued to every device.
//               The person stays in the archive and may be enrolled again.
//   archives    as move-out, and the personal fields are erased: name, phone, ID number,
//               history, a guardian's name on consents. The identity code stays as a
//               pseudonym, so event counts still add up.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/access/account_service.h"
#include "server/access/principal.h"
#include "server/storage/approval_repo.h"

namespace anju::server {

// What deleting a person means, from the archive and the devices (the composition root
// wires it to their services).
struct PersonDeletion {
  // The person's row id, nullopt when there is no such person.
  std::function<std::optional<int64_t>(db::Conn&, const std::string& code)> person_id;
  // In the caller's transaction: the person's photos and feature codes go; returns the
  // photo blobs (keys) to remove once it commits.
  std::function<std::vector<std::string>(db::Conn&, int64_t person_id)> delete_biometrics;
  // In the caller's transaction: moved out, personal fields erased (kind "archives").
  std::function<void(db::Conn&, int64_t person_id)> erase_archive;
  // In the caller's transaction: every device that holds the person is told (REASON).
  std::function<void(db::Conn&, int64_t person_id, const std::string& reason)> person_changed;
  // After the commit: remove the photo blobs, drop the person from the face index.
  std::function<void(const std::string& code, const std::vector<std::string>& photos)> finish;
};

class DeletionService {
 public:
  DeletionService(db::Db& archive, AccountService& accounts, PersonDeletion person)
      : archive_(archive), accounts_(accounts), person_(std::move(person)) {}

  // The persons are PERSONS (each must exist within WHO's sites: 404 otherwise) or those a
  // FILTER selects ({"status", "moved_out_before_ms"}), at most 10,000.
  nlohmann::json Request(const Principal& who, const std::string& kind,
                         const std::optional<std::vector<std::string>>& persons,
                         const std::optional<nlohmann::json>& filter, const std::string& reason);
  // {"items", "total"}: every request for an account with export.approve, else its own.
  nlohmann::json List(const Principal& who, int64_t limit, int64_t offset);
  // One request with every code it names (its requester or an approver; 404 otherwise).
  nlohmann::json Get(int64_t id, const Principal& who);
  nlohmann::json Reject(int64_t id, const std::string& note, const Principal& who);
  // Approves (not one's own) and deletes at once; returns the request with its counts.
  nlohmann::json Approve(int64_t id, const std::string& note, const Principal& who);
  // Finishes deletions approved before a stop (at start, by the leader).
  void ResumeUnfinished();

  static constexpr const char* kErasedName = "（已销毁）/ (erased)";

 private:
  void Run(int64_t id, const std::string& actor, const std::string& source);
  db::Db& archive_;
  AccountService& accounts_;
  PersonDeletion person_;
};

}  // namespace anju::server
