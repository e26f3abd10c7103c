// Outbox::OpenOrSalvage (outbox.h): a damaged outbox must not stop a door terminal or a
// capture camera, and what can still be read of it must not be lost (docs/outbox.md,
// "Damaged files").
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "core/clock.h"
#include "core/error.h"
#include "store/outbox.h"

namespace anju::store {
namespace fs = std::filesystem;

namespace {

// Reads the damaged copy row by row in rowid (= FIFO) order and hands every readable
// item to SINK. A damaged page stops a scan; the scan then resumes after the last good
// row with single-row lookups, which only need the path to that row, until rows come
// again or the id range is exhausted.
class Reader {
 public:
  explicit Reader(const fs::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
      return;
    }
    // Lets the schema load although it names pages past the end of a truncated file;
    // nothing is written (the connection is read-only).
    sqlite3_exec(db_, "PRAGMA writable_schema=ON", nullptr, nullptr, nullptr);
  }
  ~Reader() { sqlite3_close(db_); }

  template <class Sink>
  void Each(Sink sink, int64_t* unreadable) {
    if (!db_) {
      ++*unreadable;
      return;
    }
    int64_t seq = 0;
    // With neither counter readable the table's tree is gone: single-row lookups would
    // fail the same way, so there is nothing to probe.
    const int64_t last = LastSeq();
    while (true) {
      const int rc = ScanFrom(seq, sink);  // advances seq past every row it reads
      if (rc == SQLITE_DONE) return;
      ++*unreadable;
      // Skip the damaged stretch one id at a time, then scan again; give up after a long
      // run of misses (a damaged interior page hides its whole subtree from lookups too).
      bool found = false;
      int64_t misses = 0;
      while (!found && seq < last && misses < kMaxMisses) {
        ++seq;
        ++misses;
        const int r = One(seq, sink, &found);
        if (r != SQLITE_ROW && r != SQLITE_DONE) ++*unreadable;
      }
      if (!found) return;
    }
  }

 private:
  static constexpr int64_t kMaxMisses = 100'000;
  static constexpr const char* kColumns =
      "SELECT seq, id, kind, created_ms, payload, attachment, attachment_dropped FROM items";

  int64_t LastSeq() {
    int64_t last = 0;
    for (const char* sql :
         {"SELECT seq FROM sqlite_sequence WHERE name = 'items'", "SELECT max(seq) FROM items"}) {
      sqlite3_stmt* s = nullptr;
      if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK &&
          sqlite3_step(s) == SQLITE_ROW)
        last = std::max<int64_t>(last, sqlite3_column_int64(s, 0));
      sqlite3_finalize(s);
    }
    return last;
  }

  static OutboxItem Row(sqlite3_stmt* s) {
    OutboxItem it;
    it.seq = sqlite3_column_int64(s, 0);
    auto text = [&](int c) {
      const unsigned char* t = sqlite3_column_text(s, c);
      return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
    };
    it.id = text(1);
    it.kind = text(2);
    it.created = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(sqlite3_column_int64(s, 3)));
    it.payload = text(4);
    const auto* blob = static_cast<const uint8_t*>(sqlite3_column_blob(s, 5));
    it.attachment.assign(blob, blob + sqlite3_column_bytes(s, 5));
    it.attachment_dropped = sqlite3_column_int64(s, 6) != 0;
    return it;
  }

  template <class Sink>
  int ScanFrom(int64_t& seq, Sink& sink) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(
        db_, (std::string(kColumns) + " WHERE seq > ? ORDER BY seq").c_str(), -1, &s, nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_bind_int64(s, 1, seq);
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        seq = sqlite3_column_int64(s, 0);
        sink(Row(s));
      }
    }
    sqlite3_finalize(s);
    return rc;
  }

  template <class Sink>
  int One(int64_t seq, Sink& sink, bool* found) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, (std::string(kColumns) + " WHERE seq = ?").c_str(), -1, &s,
                                nullptr);
    if (rc == SQLITE_OK) {
      sqlite3_bind_int64(s, 1, seq);
      rc = sqlite3_step(s);
      if (rc == SQLITE_ROW) {
        sink(Row(s));
        *found = true;
      }
    }
    sqlite3_finalize(s);
    return rc;
  }

  sqlite3* db_ = nullptr;
};

}  // namespace

std::unique_ptr<Outbox> Outbox::OpenOrSalvage(const fs::path& file, OutboxOptions options,
                                              OutboxSalvage* report) {
  OutboxSalvage local;
  OutboxSalvage& r = report ? *report : local;
  r = {};
  try {
    return Open(file, options);
  } catch (const Error& e) {
    if (e.code() != ErrorCode::kCorrupt) throw;
    r.reason = e.what();
  }
  r.happened = true;
  r.moved_to = file;
  r.moved_to += ".damaged-" + std::to_string(NowMs());
  std::error_code ec;
  fs::rename(file, r.moved_to, ec);
  if (ec)
    throw Error(ErrorCode::kIo, "待上传记录库已损坏且无法移走 / damaged outbox " + file.string() +
                                    " cannot be moved aside: " + ec.message());
  for (const char* suffix : {"-wal", "-shm"}) {
    fs::path side = file, to = r.moved_to;
    side += suffix;
    to += suffix;
    if (fs::exists(side, ec)) fs::rename(side, to, ec);
  }
  auto box = Open(file, options);
  Reader(r.moved_to)
      .Each(
          [&](const OutboxItem& item) {
            try {
              box->Restore(item);
              ++r.salvaged;
            } catch (const Error&) {
              ++r.unreadable;  // a row whose content is garbage
            }
          },
          &r.unreadable);
  return box;
}

}  // namespace anju::store
