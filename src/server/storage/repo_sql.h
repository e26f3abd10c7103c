// Small helpers the archive repositories share to keep their SQL in the subset SQLite and
// PostgreSQL both speak (docs/storage.md, "The portable subset").
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "db/db.h"

namespace anju::server::storage {

// Runs an `INSERT … RETURNING id` to its end and returns the id: the new row's key on both
// backends, where LastInsertId() on PostgreSQL depends on which sequence was drawn last.
inline int64_t InsertReturningId(db::Stmt& s) {
  if (!s.Step()) throw Error(ErrorCode::kInternal, "INSERT … RETURNING id returned no row");
  const int64_t id = s.Int(0);
  while (s.Step()) {
  }
  return id;
}

// A row id given as text (a path segment): PostgreSQL refuses to compare text that is not a
// number with a BIGINT key (an error, where SQLite finds no row), so such a text names no row
// on either backend.
inline std::optional<int64_t> RowIdOf(std::string_view text) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// TEXT for a LIKE pattern written with ESCAPE '\': its backslashes match themselves on both
// backends (PostgreSQL's default escape character is the backslash, SQLite has none); `%`
// and `_` stay wildcards, as they always were in SQLite.
inline std::string LikeText(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if (c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace anju::server::storage
