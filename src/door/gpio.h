// Local GPIO through libgpiod 1.6 (character device /dev/gpiochipN). Optional: when
// anju is built without libgpiod these classes still exist, GpioAvailable() is false
// and their constructors throw Error(kUnavailable).
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "door/controller.h"
#include "door/monitor.h"
#include "door/wiegand.h"

namespace anju::door {

bool GpioAvailable();

struct GpioLineSpec {
  unsigned offset = 0;
  bool active_low = false;  // logical 1 = electrical 0
};

// Lines of one chip requested together, all as outputs or all as inputs. Values are
// logical (after active_low).
class GpioLines {
 public:
  GpioLines(const std::string& chip, const std::vector<GpioLineSpec>& lines, bool output,
            const std::string& consumer = "anju", bool open_drain = false);
  ~GpioLines();
  GpioLines(const GpioLines&) = delete;
  GpioLines& operator=(const GpioLines&) = delete;
  size_t size() const;
  void Set(size_t index, bool value);
  bool Get(size_t index) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct GpioDoorOptions {
  std::string chip = "gpiochip0";
  // One relay output per door (logical 1 = door released). Fail-safe locks (maglocks)
  // that must be powered to stay locked: wire them so that the relay's released state is
  // the de-energized one, or set active_low.
  std::vector<GpioLineSpec> outputs;
  // Inputs of door 0 in the converter's order: contact, exit, tamper, fire, spare.
  // std::nullopt = not wired (reads as inactive).
  std::vector<std::optional<GpioLineSpec>> inputs;
  MonitorOptions monitor;
};

// A DoorController on local relays / inputs. Pulses are timed by a thread of this
// process (unlike the converter, they do not survive a crash of this process).
class GpioDoorController : public DoorController {
 public:
  explicit GpioDoorController(GpioDoorOptions options);
  ~GpioDoorController() override;

  std::string name() const override { return "gpio " + options_.chip; }
  int door_count() const override { return static_cast<int>(options_.outputs.size()); }
  void Open(int door, std::chrono::milliseconds duration) override;
  void HoldOpen(int door) override;
  void Lock(int door) override;
  std::vector<DoorEvent> Poll() override;

 private:
  void Apply();  // with mutex_ held: drive the outputs from the state
  GpioDoorOptions options_;
  std::unique_ptr<GpioLines> out_, in_;
  std::vector<int> input_index_;  // converter input -> index in in_, -1 = not wired
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::chrono::steady_clock::time_point> pulse_until_;
  std::vector<bool> latched_;
  bool fire_ = false;
  bool stop_ = false;
  DoorMonitor monitor_;
  std::thread timer_;
};

// D0/D1 on two GPIO lines (open drain, idle high) for WiegandLineOutput.
class GpioWiegandLines : public WiegandLineDriver {
 public:
  GpioWiegandLines(const std::string& chip, unsigned d0, unsigned d1);
  void SetLow(int line, bool low) override;

 private:
  GpioLines lines_;
};

}  // namespace anju::door
