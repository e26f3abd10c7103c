#include "door/gpio.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

#ifdef ANJU_HAVE_GPIOD
#include <gpiod.h>
#endif

namespace anju::door {

using Clock = std::chrono::steady_clock;

#ifdef ANJU_HAVE_GPIOD

bool GpioAvailable() {
  return true;
}

struct GpioLines::Impl {
  gpiod_chip* chip = nullptr;
  std::vector<gpiod_line*> lines;
  ~Impl() {
    for (auto* l : lines) gpiod_line_release(l);
    if (chip) gpiod_chip_close(chip);
  }
};

GpioLines::GpioLines(const std::string& chip, const std::vector<GpioLineSpec>& lines, bool output,
                     const std::string& consumer, bool open_drain)
    : impl_(std::make_unique<Impl>()) {
  impl_->chip = gpiod_chip_open_lookup(chip.c_str());
  if (!impl_->chip)
    throw Error(ErrorCode::kUnavailable,
                "cannot open GPIO chip " + chip + ": " + std::strerror(errno));
  for (const auto& spec : lines) {
    gpiod_line* line = gpiod_chip_get_line(impl_->chip, spec.offset);
    if (!line)
      throw Error(ErrorCode::kInvalidArgument,
                  "no GPIO line " + std::to_string(spec.offset) + " on " + chip);
    int flags = spec.active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0;
    if (open_drain) flags |= GPIOD_LINE_REQUEST_FLAG_OPEN_DRAIN;
    int rc = output ? gpiod_line_request_output_flags(line, consumer.c_str(), flags, 0)
                    : gpiod_line_request_input_flags(line, consumer.c_str(), flags);
    if (rc != 0)
      throw Error(
          ErrorCode::kUnavailable,
          "cannot request GPIO line " + std::to_string(spec.offset) + ": " + std::strerror(errno));
    impl_->lines.push_back(line);
  }
}

GpioLines::~GpioLines() = default;

size_t GpioLines::size() const {
  return impl_->lines.size();
}

void GpioLines::Set(size_t index, bool value) {
  if (gpiod_line_set_value(impl_->lines.at(index), value ? 1 : 0) != 0)
    throw Error(ErrorCode::kIo, std::string("GPIO write failed: ") + std::strerror(errno));
}

bool GpioLines::Get(size_t index) const {
  int v = gpiod_line_get_value(impl_->lines.at(index));
  if (v < 0) throw Error(ErrorCode::kIo, std::string("GPIO read failed: ") + std::strerror(errno));
  return v != 0;
}

#else  // !ANJU_HAVE_GPIOD

bool GpioAvailable() {
  return false;
}

struct GpioLines::Impl {};

GpioLines::GpioLines(const std::string&, const std::vector<GpioLineSpec>&, bool, const std::string&,
                     bool) {
  throw Error(ErrorCode::kUnavailable, "anju 编译时未带 libgpiod / built without libgpiod");
}
GpioLines::~GpioLines() = default;
size_t GpioLines::size() const {
  return 0;
}
void GpioLines::Set(size_t, bool) {}
bool GpioLines::Get(size_t) const {
  return false;
}

#endif

GpioDoorController::GpioDoorController(GpioDoorOptions options)
    : options_(std::move(options)), monitor_(0, "gpio " + options_.chip, options_.monitor) {
  if (options_.outputs.empty())
    throw Error(ErrorCode::kInvalidArgument, "GPIO door controller needs at least one output");
  out_ = std::make_unique<GpioLines>(options_.chip, options_.outputs, true, "anju-door");
  std::vector<GpioLineSpec> wired;
  for (const auto& in : options_.inputs) {
    input_index_.push_back(in ? static_cast<int>(wired.size()) : -1);
    if (in) wired.push_back(*in);
  }
  input_index_.resize(5, -1);
  if (!wired.empty()) in_ = std::make_unique<GpioLines>(options_.chip, wired, false, "anju-door");
  pulse_until_.assign(options_.outputs.size(), Clock::time_point{});
  latched_.assign(options_.outputs.size(), false);
  timer_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      Apply();
      auto next = Clock::now() + std::chrono::milliseconds(200);
      for (auto t : pulse_until_)
        if (t > Clock::now() && t < next) next = t;
      cv_.wait_until(lock, next);
    }
  });
}

GpioDoorController::~GpioDoorController() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

void GpioDoorController::Apply() {
  auto now = Clock::now();
  for (size_t i = 0; i < pulse_until_.size(); ++i) {
    try {
      out_->Set(i, fire_ || latched_[i] || now < pulse_until_[i]);
    } catch (const Error& e) {
      spdlog::error("gpio output {}: {}", i, e.what());
    }
  }
}

void GpioDoorController::Open(int door, std::chrono::milliseconds duration) {
  CheckDoor(door);
  if (duration.count() <= 0)
    throw Error(ErrorCode::kInvalidArgument, "open duration must be positive");
  {
    std::lock_guard lock(mutex_);
    pulse_until_[door] = Clock::now() + duration;
    if (door == 0) monitor_.OnGrant(Clock::now(), duration);
    Apply();
  }
  cv_.notify_all();
}

void GpioDoorController::HoldOpen(int door) {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  latched_[door] = true;
  if (door == 0) monitor_.OnHoldOpen(Clock::now());
  Apply();
}

void GpioDoorController::Lock(int door) {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  latched_[door] = false;
  pulse_until_[door] = Clock::time_point{};
  if (door == 0) monitor_.OnLock(Clock::now());
  Apply();
}

std::vector<DoorEvent> GpioDoorController::Poll() {
  std::vector<DoorEvent> events;
  {
    std::lock_guard lock(mutex_);
    auto read = [&](int which) {
      int idx = input_index_[which];
      return idx >= 0 && in_ && in_->Get(static_cast<size_t>(idx));
    };
    try {
      InputState s{read(0), read(1), read(2), read(3), read(4)};
      fire_ = s.fire_alarm;  // R3.2.3.1: a fire alarm releases every output
      Apply();
      events = monitor_.OnInputs(s, Clock::now());
      if (auto e = monitor_.OnHealthy()) events.push_back(*e);
    } catch (const Error& e) {
      if (auto f = monitor_.OnFault(e.what())) events.push_back(*f);
    }
  }
  return Deliver(std::move(events));
}

GpioWiegandLines::GpioWiegandLines(const std::string& chip, unsigned d0, unsigned d1)
    : lines_(chip, {{d0, true}, {d1, true}}, true, "anju-wiegand", /*open_drain=*/true) {}

void GpioWiegandLines::SetLow(int line, bool low) {
  if (line < 0 || line > 1) throw Error(ErrorCode::kInvalidArgument, "Wiegand line must be 0 or 1");
  lines_.Set(static_cast<size_t>(line), low);
}

}  // namespace anju::door
