// The Modbus register map of the door signal converter (anju-converter), shared by
// the converter itself and the client. Addresses are 0-based PDU addresses (mbpoll -0);
// docs/door-io.md is the human-readable version of this file.
#pragma once

#include <cstdint>

namespace anju::door::regs {

inline constexpr int kUnitId = 1;
inline constexpr int kOutputs = 2;  // two relay / digital outputs
inline constexpr int kInputs = 5;

// Coils: 1 = door released (unlocked), 0 = locked. The coil is the logical state; the
// relay level follows from the output's fail-safe / fail-secure mode.
inline constexpr int kCoilOutput0 = 0;
inline constexpr int kCoilCount = kOutputs;

// Discrete inputs (logical, 1 = active).
inline constexpr int kInputDoorContact = 0;  // 1 = door open
inline constexpr int kInputExitButton = 1;   // 1 = request-to-exit pressed
inline constexpr int kInputTamper = 2;       // 1 = enclosure opened / reader removed
inline constexpr int kInputFireAlarm = 3;    // 1 = fire alarm panel says release
inline constexpr int kInputSpare = 4;        // 1 = spare / wired emergency button
inline constexpr int kDiscreteCount = kInputs;

// Holding registers.
inline constexpr int kHoldPulseMs0 = 0;  // pulse width of output 0 in ms, 0 = latch
inline constexpr int kHoldPulseMs1 = 1;
inline constexpr int kHoldMode0 = 2;  // mode bits of output 0, see kMode*
inline constexpr int kHoldMode1 = 3;
inline constexpr int kHoldingCount = 4;

// Mode register bits. 0 = pulse, fail-secure (the default).
inline constexpr uint16_t kModeLatch = 0x0001;     // ignore the pulse width: stay until written
inline constexpr uint16_t kModeFailSafe = 0x0002;  // relay energized while LOCKED (maglock)
inline constexpr uint16_t kModeMask = kModeLatch | kModeFailSafe;

// Input registers (read only): status and counters. Counters wrap at 65536.
inline constexpr int kInStatus = 0;       // bit field, see kStatus*
inline constexpr int kInPulsesDone0 = 1;  // pulses that ended by themselves, output 0
inline constexpr int kInPulsesDone1 = 2;
inline constexpr int kInConnections = 3;    // TCP connections accepted since start
inline constexpr int kInClientsNow = 4;     // TCP clients connected now
inline constexpr int kInExceptions = 5;     // exception responses sent
inline constexpr int kInMalformed = 6;      // malformed frames / dropped connections
inline constexpr int kInTamperEvents = 7;   // tamper input activations
inline constexpr int kInFireEvents = 8;     // fire alarm activations
inline constexpr int kInRequests = 9;       // requests answered
inline constexpr int kInRemainingMs0 = 10;  // time left of the running pulse, output 0
inline constexpr int kInRemainingMs1 = 11;
inline constexpr int kInUptimeS = 12;  // seconds since start
inline constexpr int kInputRegCount = 13;

inline constexpr uint16_t kStatusReleased0 = 0x0001;  // output 0 released (coil 0)
inline constexpr uint16_t kStatusReleased1 = 0x0002;
inline constexpr uint16_t kStatusFireOverride = 0x0004;  // fire alarm holds outputs released
inline constexpr uint16_t kStatusTamper = 0x0008;
inline constexpr uint16_t kStatusSimulated = 0x0010;  // inputs/outputs are simulated
inline constexpr uint16_t kStatusRtu = 0x0020;        // an RTU port is also served

}  // namespace anju::door::regs
