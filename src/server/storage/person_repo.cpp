#include "server/storage/person_repo.h"

namespace anju::server::storage {

std::optional<int64_t> PersonRepo::IdByCode(db::Conn& c, const std::string& code) {
  db::Stmt s(c, "SELECT id FROM persons WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

}  // namespace anju::server::storage
