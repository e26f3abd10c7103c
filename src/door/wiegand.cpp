#include "door/wiegand.h"

#include <openssl/evp.h>

#include <thread>

#include "core/error.h"

namespace anju::door {

using Clock = std::chrono::steady_clock;

namespace {

struct Layout {
  int bits;     // total frame length
  int fc_bits;  // facility code width
  int half;     // data bits covered by each parity bit
};

Layout LayoutOf(WiegandFormat f) {
  return f == WiegandFormat::kW26 ? Layout{26, 8, 12} : Layout{34, 16, 16};
}

int Ones(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '1';
  return n;
}

void AppendBits(std::string& out, uint32_t value, int width) {
  for (int i = width - 1; i >= 0; --i) out.push_back(((value >> i) & 1u) ? '1' : '0');
}

uint32_t ReadBits(std::string_view s) {
  uint32_t v = 0;
  for (char c : s) v = (v << 1) | (c == '1' ? 1u : 0u);
  return v;
}

}  // namespace

std::string EncodeWiegand(const WiegandCard& card) {
  const Layout l = LayoutOf(card.format);
  if (card.facility >= (1u << l.fc_bits))
    throw Error(ErrorCode::kInvalidArgument, "facility code " + std::to_string(card.facility) +
                                                 " does not fit W" + std::to_string(l.bits));
  if (card.card > 0xFFFFu)
    throw Error(ErrorCode::kInvalidArgument,
                "card number " + std::to_string(card.card) + " does not fit 16 bits");
  std::string data;
  AppendBits(data, card.facility, l.fc_bits);
  AppendBits(data, card.card, 16);
  std::string_view first = std::string_view(data).substr(0, l.half);
  std::string_view second = std::string_view(data).substr(l.half);
  const char even = (Ones(first) % 2) ? '1' : '0';  // makes the first half + P even
  const char odd = (Ones(second) % 2) ? '0' : '1';  // makes the second half + P odd
  return even + data + odd;
}

bool WiegandParityOk(std::string_view bits) {
  if (bits.size() != 26 && bits.size() != 34) return false;
  for (char c : bits)
    if (c != '0' && c != '1') return false;
  const int half = (static_cast<int>(bits.size()) - 2) / 2;
  return Ones(bits.substr(0, 1 + half)) % 2 == 0 && Ones(bits.substr(1 + half)) % 2 == 1;
}

WiegandCard DecodeWiegand(std::string_view bits) {
  WiegandFormat format;
  if (bits.size() == 26)
    format = WiegandFormat::kW26;
  else if (bits.size() == 34)
    format = WiegandFormat::kW34;
  else
    throw Error(ErrorCode::kInvalidArgument,
                "Wiegand frame must be 26 or 34 bits, got " + std::to_string(bits.size()));
  for (char c : bits)
    if (c != '0' && c != '1')
      throw Error(ErrorCode::kInvalidArgument, "Wiegand frame must contain only 0 and 1");
  if (!WiegandParityOk(bits))
    throw Error(ErrorCode::kCorrupt, "Wiegand 校验位错误 / parity error in " + std::string(bits));
  const Layout l = LayoutOf(format);
  WiegandCard c;
  c.format = format;
  c.facility = ReadBits(bits.substr(1, l.fc_bits));
  c.card = ReadBits(bits.substr(1 + l.fc_bits, 16));
  return c;
}

WiegandCard VirtualCard(std::string_view person_id, WiegandFormat format, uint32_t facility,
                        uint32_t attempt) {
  std::string msg = "anju-virtual-card/v1";
  msg.push_back('\0');
  msg.append(person_id);
  msg.push_back('\0');
  msg += std::to_string(attempt);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(msg.data(), msg.size(), digest, &len, EVP_sha256(), nullptr) != 1 || len < 8)
    throw Error(ErrorCode::kCrypto, "SHA-256 failed");
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | digest[i];
  WiegandCard c{format, facility, static_cast<uint32_t>(1 + h % 65534)};
  EncodeWiegand(c);  // validates the facility code for the format
  return c;
}

namespace {

// Sleep most of the way, then spin: sleep_for alone overshoots 50 µs pulses badly.
void WaitUntil(Clock::time_point t) {
  auto now = Clock::now();
  if (t - now > std::chrono::microseconds(300))
    std::this_thread::sleep_for(t - now - std::chrono::microseconds(200));
  while (Clock::now() < t) {
  }
}

}  // namespace

void TransmitWiegand(WiegandLineDriver& lines, std::string_view bits, WiegandTiming timing) {
  for (char c : bits)
    if (c != '0' && c != '1')
      throw Error(ErrorCode::kInvalidArgument, "Wiegand frame must contain only 0 and 1");
  auto start = Clock::now();
  for (size_t i = 0; i < bits.size(); ++i) {
    const auto bit_start = start + static_cast<int64_t>(i) * timing.interval;
    WaitUntil(bit_start);
    const int line = bits[i] == '1' ? 1 : 0;
    lines.SetLow(line, true);
    WaitUntil(Clock::now() + timing.pulse);
    lines.SetLow(line, false);
  }
  // Leave the lines idle for one interval so that back-to-back frames stay apart.
  WaitUntil(start + static_cast<int64_t>(bits.size()) * timing.interval);
}

void WiegandRecorder::SetLow(int line, bool low) {
  if (line < 0 || line > 1) throw Error(ErrorCode::kInvalidArgument, "Wiegand line must be 0 or 1");
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  if (low && !low_[line]) {
    start_[line] = now;
  } else if (!low && low_[line]) {
    char bit = low_[1 - line] ? '?' : (line == 1 ? '1' : '0');
    pulses_.push_back(Pulse{bit, start_[line], now});
  }
  low_[line] = low;
}

std::string WiegandRecorder::bits() const {
  std::lock_guard lock(mutex_);
  std::string s;
  for (const auto& p : pulses_) s.push_back(p.bit);
  return s;
}

std::vector<std::chrono::microseconds> WiegandRecorder::pulse_widths() const {
  std::lock_guard lock(mutex_);
  std::vector<std::chrono::microseconds> out;
  for (const auto& p : pulses_)
    out.push_back(std::chrono::duration_cast<std::chrono::microseconds>(p.end - p.start));
  return out;
}

std::vector<std::chrono::microseconds> WiegandRecorder::intervals() const {
  std::lock_guard lock(mutex_);
  std::vector<std::chrono::microseconds> out;
  for (size_t i = 1; i < pulses_.size(); ++i)
    out.push_back(std::chrono::duration_cast<std::chrono::microseconds>(pulses_[i].start -
                                                                        pulses_[i - 1].start));
  return out;
}

void WiegandRecorder::Clear() {
  std::lock_guard lock(mutex_);
  pulses_.clear();
}

void WiegandLineOutput::Send(const WiegandCard& card) {
  const std::string bits = EncodeWiegand(card);
  std::lock_guard lock(mutex_);
  TransmitWiegand(lines_, bits, timing_);
}

WiegandFileOutput::WiegandFileOutput(const std::string& path) : path_(path) {
  out_.open(path, std::ios::out | std::ios::app);
  if (!out_) throw Error(ErrorCode::kIo, "cannot open Wiegand output " + path);
}

void WiegandFileOutput::Send(const WiegandCard& card) {
  const std::string bits = EncodeWiegand(card);
  std::lock_guard lock(mutex_);
  out_ << bits << '\n';
  out_.flush();
  if (!out_) throw Error(ErrorCode::kIo, "write to Wiegand output " + path_ + " failed");
}

}  // namespace anju::door
