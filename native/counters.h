// Layout of a group's counters file (<runtime dir>/mpbus_counters), mirrored from
// src/runtime/counters-layout.ts (the TypeScript side is the reference: change both together).
// A slot per lcore ID, a row per actor / mailbox / ask target, every value a float64. Read by
// the telemetry thread (telemetry.cc); written by JavaScript through the mapping of counters.cc.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace mpbus {
namespace counters {

constexpr uint32_t kSlots = 128;
constexpr uint32_t kRows = 512;
constexpr size_t kRowBytes = 1024;
constexpr size_t kRowFields = kRowBytes / 8;
constexpr size_t kSlotBytes = kRows * kRowBytes;
constexpr size_t kFileBytes = kSlots * kSlotBytes;
constexpr const char* kFileName = "mpbus_counters";
constexpr double kLayoutMagic = 0x4d504301;
constexpr size_t kNameOffset = 128;
constexpr size_t kNameMaxBytes = 63;

// Row 0: the process.
enum ProcField : size_t {
  kMagic = 0,
  kPid = 1,
  kState = 2,
  kRole = 3,
  kLcore = 4,
  kStartedAt = 5,
  kSampledAt = 6,
  kCpuUserUs = 7,
  kCpuSystemUs = 8,
  kRssBytes = 9,
  kHeapUsedBytes = 10,
  kRowsHigh = 11,
  kDeadLetters = 12,
  kRowsDropped = 13,
  kProcStart = 14,
};
constexpr double kStateAlive = 1;

// Rows 1..: an actor, a mailbox or an ask target.
enum RowField : size_t {
  kGeneration = 0,
  kKind = 1,
  kReceived = 2,
  kProcessed = 3,
  kFailed = 4,
  kDeadLettered = 5,
  kRestarts = 6,
  kDepth = 7,
  kCapacity = 8,
  kAsks = 9,
  kAskLatencySumMs = 10,
  kAskFailed = 11,
  kAskTimeouts = 12,
  kHistogram = 24,
};
enum RowKind : int { kKindActor = 1, kKindMailbox = 2, kKindAsks = 3 };
constexpr size_t kBuckets = kRowFields - kHistogram;

}  // namespace counters
}  // namespace mpbus
