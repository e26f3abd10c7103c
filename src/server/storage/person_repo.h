// Persons in archive.db (schema: archive_schema.cpp). Rows in, rows out; every function runs
// on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "db/db.h"

namespace anju::server::storage {

class PersonRepo {
 public:
  // The row id of identity code CODE; nullopt when there is no such person.
  static std::optional<int64_t> IdByCode(db::Conn& c, const std::string& code);
};

}  // namespace anju::server::storage
