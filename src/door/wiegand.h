// Wiegand 26 and 34 output (R3.1.2.8): frames for a facility code + card number with
// the standard parity bits, a decoder that checks them, and transmitters that drive
// D0/D1 lines with the standard timing or write bit strings to a file or pipe.
//
//   W26: P(even over bits 1..12) | FC 8 bits | card 16 bits | P(odd over bits 13..24)
//   W34: P(even over bits 1..16) | FC 16 bits | card 16 bits | P(odd over bits 17..32)
// Bits are written as '0'/'1' strings in transmission order (MSB first).
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace anju::door {

enum class WiegandFormat { kW26 = 26, kW34 = 34 };

struct WiegandCard {
  WiegandFormat format = WiegandFormat::kW26;
  uint32_t facility = 0;  // W26: 0..255, W34: 0..65535
  uint32_t card = 0;      // 0..65535 in both formats
  bool operator==(const WiegandCard&) const = default;
};

// Throws Error(kInvalidArgument) when facility or card do not fit the format.
std::string EncodeWiegand(const WiegandCard& card);
// Throws Error(kInvalidArgument) for a bad length or characters other than 0/1, and
// Error(kCorrupt) when a parity bit is wrong.
WiegandCard DecodeWiegand(std::string_view bits);
// True when the length is 26 or 34 and both parity bits are right.
bool WiegandParityOk(std::string_view bits);

// The card number of a person who has no physical card. Deterministic: the first 8
// bytes of SHA-256("anju-virtual-card/v1" NUL person_id NUL attempt) as a big-endian
// integer h, card = 1 + h % 65534 (so never 0 or 65535, which some controllers treat
// as "no card"), under the facility code the site reserves for virtual cards. With
// only 16 bits a clash is possible; whoever allocates cards must check uniqueness and
// on a clash store the result of attempt + 1.
WiegandCard VirtualCard(std::string_view person_id, WiegandFormat format, uint32_t facility,
                        uint32_t attempt = 0);

struct WiegandTiming {
  std::chrono::microseconds pulse{50};       // a data line is held low this long per bit
  std::chrono::microseconds interval{2000};  // from the start of one bit to the next
};

// Two open-collector lines, D0 and D1, idle high. A '0' bit pulls D0 low, a '1' D1.
class WiegandLineDriver {
 public:
  virtual ~WiegandLineDriver() = default;
  // line 0 = D0, 1 = D1; low = pulled to 0 V (the active state).
  virtual void SetLow(int line, bool low) = 0;
};

// Drives `bits` onto the lines with the given timing (blocks for bits × interval).
void TransmitWiegand(WiegandLineDriver& lines, std::string_view bits, WiegandTiming timing = {});

// A line driver that only records what it is asked to do: a loopback receiver used to
// check the transmitter (and a decoder for tests).
class WiegandRecorder : public WiegandLineDriver {
 public:
  void SetLow(int line, bool low) override;
  // Bits received so far ('0' for a D0 pulse, '1' for D1); '?' for both low at once.
  std::string bits() const;
  // Measured widths of each low pulse and the start-to-start intervals.
  std::vector<std::chrono::microseconds> pulse_widths() const;
  std::vector<std::chrono::microseconds> intervals() const;
  void Clear();

 private:
  struct Pulse {
    char bit;
    std::chrono::steady_clock::time_point start, end;
  };
  mutable std::mutex mutex_;
  bool low_[2] = {false, false};
  std::chrono::steady_clock::time_point start_[2];
  std::vector<Pulse> pulses_;
};

class WiegandOutput {
 public:
  virtual ~WiegandOutput() = default;
  virtual void Send(const WiegandCard& card) = 0;
};

// Sends frames on D0/D1 lines.
class WiegandLineOutput : public WiegandOutput {
 public:
  explicit WiegandLineOutput(WiegandLineDriver& lines, WiegandTiming timing = {})
      : lines_(lines), timing_(timing) {}
  void Send(const WiegandCard& card) override;

 private:
  std::mutex mutex_;
  WiegandLineDriver& lines_;
  WiegandTiming timing_;
};

// Without hardware: appends one line per frame, the bit string, to a file or named pipe.
class WiegandFileOutput : public WiegandOutput {
 public:
  explicit WiegandFileOutput(const std::string& path);
  void Send(const WiegandCard& card) override;

 private:
  std::mutex mutex_;
  std::string path_;
  std::ofstream out_;
};

}  // namespace anju::door
