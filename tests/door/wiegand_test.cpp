// Wiegand 26 / 34 frames checked against bit strings derived by hand (see the comments),
// every single-bit error detected, and the D0/D1 transmitter timing measured.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "core/error.h"
#include "door/wiegand.h"
#include "testing.h"

namespace anju::door {
namespace {

struct Example {
  WiegandCard card;
  const char* bits;
};

// Hand derivations. W26 = P_even | FC(8) | card(16) | P_odd; the even parity bit covers
// the first 12 data bits, the odd one the last 12. W34 = P_even | FC(16) | card(16) |
// P_odd with 16-bit halves.
const Example kExamples[] = {
    // FC 1 = 00000001, card 1 = 0000000000000001.
    // First 12 data bits 000000010000 hold one 1 -> even parity bit 1.
    // Last 12 data bits 000000000001 hold one 1 (odd already) -> odd parity bit 0.
    {{WiegandFormat::kW26, 1, 1},
     "1"
     "00000001"
     "0000000000000001"
     "0"},
    // FC 255, card 65535: 24 ones; each half has 12 ones (even) -> P_even 0, P_odd 1.
    {{WiegandFormat::kW26, 255, 65535},
     "0"
     "11111111"
     "1111111111111111"
     "1"},
    // FC 0, card 0: all zero halves -> P_even 0, P_odd 1 (odd needs one 1).
    {{WiegandFormat::kW26, 0, 0},
     "0"
     "00000000"
     "0000000000000000"
     "1"},
    // FC 123 = 0x7B = 01111011, card 4567 = 0x11D7 = 0001000111010111.
    // First 12: 01111011 0001 -> 6 + 1 = 7 ones (odd) -> P_even 1.
    // Last 12: 0001 1101 0111 -> 1 + 3 + 3 = 7 ones (odd) -> P_odd 0.
    {{WiegandFormat::kW26, 123, 4567},
     "1"
     "01111011"
     "0001000111010111"
     "0"},
    // W34, FC 1, card 1: each 16-bit half holds one 1 -> P_even 1, P_odd 0.
    {{WiegandFormat::kW34, 1, 1},
     "1"
     "0000000000000001"
     "0000000000000001"
     "0"},
    // W34, FC 0x1234 = 0001 0010 0011 0100 (1+1+2+1 = 5 ones, odd) -> P_even 1;
    // card 0xABCD = 1010 1011 1100 1101 (2+3+2+3 = 10 ones, even) -> P_odd 1.
    {{WiegandFormat::kW34, 0x1234, 0xABCD},
     "1"
     "0001001000110100"
     "1010101111001101"
     "1"},
};

TEST(Wiegand, EncodesPublishedExamples) {
  for (const auto& ex : kExamples) {
    SCOPED_TRACE(ex.bits);
    EXPECT_EQ(EncodeWiegand(ex.card), ex.bits);
    EXPECT_TRUE(WiegandParityOk(ex.bits));
    EXPECT_EQ(DecodeWiegand(ex.bits), ex.card);
  }
}

TEST(Wiegand, EverySingleBitErrorIsDetected) {
  for (const auto& ex : kExamples) {
    std::string bits = ex.bits;
    for (size_t i = 0; i < bits.size(); ++i) {
      std::string bad = bits;
      bad[i] = bad[i] == '1' ? '0' : '1';
      EXPECT_FALSE(WiegandParityOk(bad)) << bad;
      try {
        DecodeWiegand(bad);
        ADD_FAILURE() << "parity error not detected in " << bad;
      } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::kCorrupt);
      }
    }
  }
}

TEST(Wiegand, RejectsBadFramesAndValues) {
  for (const char* bad : {"", "101", "1000000010000000000000001", "100000001000000000000000100",
                          "10000000100000000000000x10"}) {
    try {
      DecodeWiegand(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << bad;
    }
  }
  EXPECT_THROW(EncodeWiegand({WiegandFormat::kW26, 256, 1}), Error);
  EXPECT_THROW(EncodeWiegand({WiegandFormat::kW26, 1, 65536}), Error);
  EXPECT_THROW(EncodeWiegand({WiegandFormat::kW34, 65536, 1}), Error);
  EXPECT_NO_THROW(EncodeWiegand({WiegandFormat::kW34, 65535, 65535}));
}

TEST(Wiegand, RandomRoundTrip) {
  std::mt19937 rng(26034);
  for (int i = 0; i < 2000; ++i) {
    WiegandFormat f = (i % 2) ? WiegandFormat::kW26 : WiegandFormat::kW34;
    WiegandCard c{f, static_cast<uint32_t>(rng() % (f == WiegandFormat::kW26 ? 256 : 65536)),
                  static_cast<uint32_t>(rng() % 65536)};
    auto bits = EncodeWiegand(c);
    ASSERT_EQ(bits.size(), f == WiegandFormat::kW26 ? 26u : 34u);
    ASSERT_EQ(DecodeWiegand(bits), c);
  }
}

TEST(Wiegand, VirtualCardIsDeterministic) {
  auto a = VirtualCard("person-0001", WiegandFormat::kW26, 200);
  EXPECT_EQ(a, VirtualCard("person-0001", WiegandFormat::kW26, 200));
  EXPECT_EQ(a.facility, 200u);
  // Pinned: SHA-256("anju-virtual-card/v1\0person-0001\0" "0"), first 8 bytes
  // big-endian h, card = 1 + h % 65534 (cross-checked with Python hashlib).
  EXPECT_EQ(a.card, 31587u);
  EXPECT_NE(a.card, VirtualCard("person-0001", WiegandFormat::kW26, 200, 1).card);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto c = VirtualCard("p" + std::to_string(i), WiegandFormat::kW34, 4000);
    EXPECT_GE(c.card, 1u);
    EXPECT_LE(c.card, 65534u);
    seen.insert(c.card);
  }
  EXPECT_GT(seen.size(), 980u);  // 1000 draws from 65534: ~8 clashes expected
  EXPECT_THROW(VirtualCard("x", WiegandFormat::kW26, 300), Error);
}

TEST(Wiegand, LineTransmitterTiming) {
  WiegandRecorder rec;
  WiegandLineOutput out(rec);
  const WiegandCard card{WiegandFormat::kW26, 123, 4567};
  auto t0 = std::chrono::steady_clock::now();
  out.Send(card);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(rec.bits(), EncodeWiegand(card));
  EXPECT_EQ(DecodeWiegand(rec.bits()), card);
  auto widths = rec.pulse_widths();
  auto gaps = rec.intervals();
  ASSERT_EQ(widths.size(), 26u);
  ASSERT_EQ(gaps.size(), 25u);
  auto sum = [](const auto& v) {
    return std::accumulate(v.begin(), v.end(), std::chrono::microseconds(0));
  };
  const auto mean_width = sum(widths) / static_cast<long>(widths.size());
  const auto mean_gap = sum(gaps) / static_cast<long>(gaps.size());
  std::printf(
      "Wiegand 26: mean pulse %lld us, mean interval %lld us, frame %lld ms\n",
      static_cast<long long>(mean_width.count()), static_cast<long long>(mean_gap.count()),
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  // Bits start on a fixed schedule (start + i × interval) and pulses last at least their
  // width, which the lower bounds check. The upper bounds use the median: on a loaded
  // machine a few wake-ups come milliseconds late, which says nothing about the code (the
  // bounds on the means failed once in a whole ctest run with two builds beside it).
  auto median = [](auto v) {
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  for (auto w : widths) EXPECT_GE(w.count(), 50);
  EXPECT_GE(mean_gap.count(), 1900);
  EXPECT_LT(median(widths).count(), 400);
  EXPECT_LT(median(gaps).count(), 2600);
}

TEST(Wiegand, FileAndPipeOutput) {
  auto dir = anju::testing::TempDir("wiegand");
  {
    WiegandFileOutput out((dir / "frames.txt").string());
    out.Send({WiegandFormat::kW26, 1, 1});
    out.Send({WiegandFormat::kW34, 0x1234, 0xABCD});
  }
  std::ifstream in(dir / "frames.txt");
  std::string l1, l2;
  std::getline(in, l1);
  std::getline(in, l2);
  EXPECT_EQ(l1, kExamples[0].bits);
  EXPECT_EQ(l2, kExamples[5].bits);

  const auto fifo = dir / "wiegand.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] {
    std::ifstream f(fifo);
    std::getline(f, got);
  });
  {
    WiegandFileOutput out(fifo.string());  // blocks until the reader opens the pipe
    out.Send({WiegandFormat::kW26, 123, 4567});
  }
  reader.join();
  EXPECT_EQ(got, kExamples[3].bits);
  EXPECT_EQ(DecodeWiegand(got), (WiegandCard{WiegandFormat::kW26, 123, 4567}));
}

}  // namespace
}  // namespace anju::door
