// Wall-clock time in Unix milliseconds, injectable. Everything that stamps or compares
// times (sessions, tokens, retention, event times) reads NowMs(), so a test or a fault
// scenario can move time for a whole process with SetProcessClock (a ManualClock), and a
// service can be given its own Clock.
#pragma once

#include <atomic>
#include <cstdint>

namespace anju {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() const = 0;  // Unix milliseconds
};

// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  int64_t NowMs() const override;
};

// A clock that moves only when told (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 0) : now_(now_ms) {}
  int64_t NowMs() const override { return now_.load(); }
  void Set(int64_t now_ms) { now_.store(now_ms); }
  void Advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// A clock that runs OFFSET_MS ahead of (negative: behind) another one.
class OffsetClock final : public Clock {
 public:
  OffsetClock(const Clock& base, int64_t offset_ms) : base_(base), offset_(offset_ms) {}
  int64_t NowMs() const override { return base_.NowMs() + offset_.load(); }
  void SetOffset(int64_t offset_ms) { offset_.store(offset_ms); }

 private:
  const Clock& base_;
  std::atomic<int64_t> offset_;
};

// The process's clock: the system clock unless SetProcessClock installed another.
const Clock& ProcessClock();
// Installs CLOCK for the whole process (nullptr = the system clock again). CLOCK must
// outlive its use.
void SetProcessClock(const Clock* clock);
// ProcessClock().NowMs().
int64_t NowMs();

}  // namespace anju
