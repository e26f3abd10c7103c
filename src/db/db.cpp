#include "db/db.h"

#include "core/error.h"

namespace anju::db {

Conn::Conn(ConnBackend* backend, std::function<void()> release, Db* owner)
    : b_(backend), release_(std::move(release)), owner_(owner) {}

Conn::Conn(Conn&& o) noexcept
    : b_(o.b_),
      release_(std::move(o.release_)),
      owner_(o.owner_),
      depth_(o.depth_),
      before_commit_(std::move(o.before_commit_)),
      after_commit_(std::move(o.after_commit_)) {
  o.release_ = nullptr;
  o.depth_ = 0;
}

Conn::~Conn() {
  if (depth_ > 0) b_->Rollback();
  if (release_) release_();
}

void Conn::Exec(std::string_view sql) { b_->Exec(sql); }

void Conn::BeforeCommit(std::function<void()> fn) {
  if (depth_ > 0)
    before_commit_.push_back(std::move(fn));
  else
    fn();
}

void Conn::AfterCommit(std::function<void()> fn) {
  if (depth_ > 0)
    after_commit_.push_back(std::move(fn));
  else
    fn();
}

Stmt::Stmt(Conn& c, std::string_view sql) : b_(c.backend().Prepare(sql)) {}

Stmt::~Stmt() = default;

void Stmt::Run() {
  while (Step()) {
  }
}

std::optional<int64_t> Stmt::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

std::optional<std::string> Stmt::OptText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

ReadSnapshot::ReadSnapshot(Conn& c) : c_(c) {
  c_.Exec(c_.dialect() == Dialect::kPostgres ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                             : "BEGIN");
}

ReadSnapshot::~ReadSnapshot() {
  try {
    c_.Exec("ROLLBACK");  // nothing was written: ending it either way is the same
  } catch (...) {
  }
}

Transaction::Transaction(Conn& c) : c_(c) {
  if (c_.depth_ == 0) {
    c_.b_->Begin();
    outer_ = true;
  }
  ++c_.depth_;
}

Transaction::~Transaction() {
  if (done_) return;
  --c_.depth_;
  if (outer_) {
    c_.b_->Rollback();
    c_.before_commit_.clear();
    c_.after_commit_.clear();
  }
}

void Transaction::Commit() {
  if (done_) throw Error(ErrorCode::kInternal, "transaction committed twice");
  if (!outer_) {
    --c_.depth_;
    done_ = true;
    return;
  }
  auto before = std::move(c_.before_commit_);
  c_.before_commit_.clear();
  for (auto& h : before) h();  // throws: the destructor rolls back
  c_.b_->Commit();             // throws: the destructor rolls back
  --c_.depth_;
  done_ = true;
  auto hooks = std::move(c_.after_commit_);
  c_.after_commit_.clear();
  for (auto& h : hooks) h();
}

std::string ToDollarParams(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 0;
  for (size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (c == '\'' || c == '"') {  // literal or quoted identifier: copy to its end
      const size_t end = sql.find(c, i + 1);
      const size_t stop = end == std::string_view::npos ? sql.size() : end + 1;
      out.append(sql.substr(i, stop - i));
      i = stop - 1;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      const size_t end = sql.find('\n', i);
      const size_t stop = end == std::string_view::npos ? sql.size() : end;
      out.append(sql.substr(i, stop - i));
      i = stop - 1;
    } else if (c == '?') {
      size_t j = i + 1;
      while (j < sql.size() && sql[j] >= '0' && sql[j] <= '9') ++j;
      if (j > i + 1) {
        const int n = std::stoi(std::string(sql.substr(i + 1, j - i - 1)));
        next = std::max(next, n);
        out += '$';
        out.append(sql.substr(i + 1, j - i - 1));
        i = j - 1;
      } else {
        out += '$' + std::to_string(++next);
      }
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace anju::db
