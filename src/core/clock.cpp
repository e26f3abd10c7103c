#include "core/clock.h"

#include <chrono>

namespace anju {

namespace {
const SystemClock kSystem;
std::atomic<const Clock*> g_clock{&kSystem};
}  // namespace

int64_t SystemClock::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const Clock& ProcessClock() { return *g_clock.load(std::memory_order_acquire); }

void SetProcessClock(const Clock* clock) {
  g_clock.store(clock ? clock : &kSystem, std::memory_order_release);
}

int64_t NowMs() { return ProcessClock().NowMs(); }

}  // namespace anju
