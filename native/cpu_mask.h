// CPU masks as the process table publishes them (ProcSlot::cpuMask, native/mailbox.h): which
// CPUs a process's JS thread may run on, for the crowded check (native/mbx_room.cc) to count
// only the awake processes that compete for this process's CPUs. No DPDK or Node here: a unit
// test compiles this header alone (test/unit/cpu-mask.test.ts).
#pragma once
#include <sched.h>
#include <stdint.h>

namespace mpbus {

constexpr uint32_t kCpuMaskWords = 4;  // CPUs 0-255
// Bit i: CPU i. All zero: unknown (not published, from an older build or a C peer, or a CPU
// above 255), which stands for every CPU.
using CpuMask = uint64_t[kCpuMaskWords];

// True when two masks share a CPU; an unknown (all-zero) mask shares every CPU.
inline bool CpuMasksOverlap(const CpuMask& a, const CpuMask& b) {
  uint64_t anyA = 0, anyB = 0, both = 0;
  for (uint32_t w = 0; w < kCpuMaskWords; w++) {
    anyA |= a[w];
    anyB |= b[w];
    both |= a[w] & b[w];
  }
  return anyA == 0 || anyB == 0 || both != 0;
}

// The CPUs of `set` as a mask; unknown (all zero) when one of them is above what a mask holds.
inline void CpuMaskFromSet(const cpu_set_t& set, CpuMask& mask) {
  for (uint32_t w = 0; w < kCpuMaskWords; w++) mask[w] = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (!CPU_ISSET(cpu, &set)) continue;
    if (static_cast<uint32_t>(cpu) >= kCpuMaskWords * 64) {
      for (uint32_t w = 0; w < kCpuMaskWords; w++) mask[w] = 0;
      return;
    }
    mask[cpu / 64] |= uint64_t{1} << (cpu % 64);
  }
}

}  // namespace mpbus
