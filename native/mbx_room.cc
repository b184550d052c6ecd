// Waiting for room and for the CPU: a sender that finds a mailbox, an inbox or the pool full
// marks its bit in the receiver's slot (mbxWantRoom) and parks; the receiver's drain rings the
// marked doorbells (WakeRoomWaiters). And the crowded-CPU heuristic (Crowded, mbxCrowded) that
// tells a waiting process to sleep on its doorbell instead of spinning or yielding.
#include <rte_mempool.h>
#include <rte_ring.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// Tasks runnable on the whole machine now (the first number of /proc/loadavg's 4th field,
// "runnable/total"; it counts the caller itself), or 0 when it cannot be read.
uint32_t RunnableTasks(int fd) {
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  const char* p = buf;
  for (int spaces = 0; spaces < 3 && *p != 0; p++) spaces += *p == ' ';
  uint32_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<uint32_t>(*p++ - '0');
  return v;
}

// The CPUs the process in `s` published (ProcSlot::cpuMask) into `mask`; all zero (every CPU)
// when it published none for its current claim.
void PublishedCpus(const ProcSlot& s, CpuMask& mask) {
  uint32_t generation = s.generation.load(std::memory_order_relaxed);
  bool valid = s.cpuMaskGeneration.load(std::memory_order_acquire) == generation;
  for (uint32_t w = 0; w < kCpuMaskWords; w++) mask[w] = valid ? s.cpuMask[w].load(std::memory_order_relaxed) : 0;
}

// Processes of the group whose receiver is not parked (they spin or work) and that may run on
// one of the CPUs in `mine` (this process counts itself). A process whose CPUs are unknown
// counts as running on every CPU, as does every process when `mine` is unknown.
uint32_t AwakeCompetitors(Control* c, const CpuMask& mine) {
  uint32_t n = 0;
  CpuMask theirs;
  for (uint32_t i = 0; i < kMaxSlots; i++) {
    ProcSlot& s = c->slots[i];
    if (s.state.load(std::memory_order_relaxed) != kSlotAlive || s.parked.load(std::memory_order_relaxed) != 0)
      continue;
    PublishedCpus(s, theirs);
    n += CpuMasksOverlap(mine, theirs);
  }
  return n;
}

// mbxWantRoom(slot, generation, mailboxId) -> true when there is room already (send again now),
// false when the process in `slot` will ring this process's doorbell when it next makes room
// (drains its inbox or consumes held messages); then park. The mark is set before the check, so
// room made in between is never missed (Dekker with WakeRoomWaiters).
Napi::Value MbxWantRoom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  uint32_t slot = ArgUint32(info, 0, "the slot");
  PeerCache* peer = Peer(a, slot, ArgUint32(info, 1, "the generation"));
  uint32_t id = ArgUint32(info, 2, "the mailbox id");
  if (peer == nullptr) return Napi::Boolean::New(env, true);  // gone: the next send reports it
  a.ctl->slots[slot].roomWanted[a.slot / 64].fetch_or(uint64_t{1} << (a.slot % 64));
  MailboxEntry& e = peer->table[id & 0xffff];
  bool room = e.id.load() != id || e.pending.load() < e.capacity.load(std::memory_order_relaxed);
  room = room && rte_ring_free_count(peer->inbox) > 0 && rte_mempool_avail_count(a.pool) > 0;
  return Napi::Boolean::New(env, room);
}

// mbxCrowded() -> true when more of the group's processes are awake (not parked) on this
// process's CPUs than it has CPUs, or the machine is busy (Crowded): then waiting should sleep on
// a doorbell rather than spin or yield.
Napi::Value MbxCrowded(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info);
  return Napi::Boolean::New(info.Env(), Crowded(a));
}

void InitRoom(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxWantRoom", MbxWantRoom);
  SetMailboxFunction(env, exports, "mbxCrowded", MbxCrowded);
}

}  // namespace

// Wakes the senders that wait for room in this process's mailboxes: they set their bit in our
// slot, then try again (Dekker with our release of room, which happens before this call).
void WakeRoomWaiters(Control* c, ProcSlot& self, bool fenced) {
  // A seq_cst read-modify-write of a pending count already orders our release before the loads
  // below; room made in the inbox ring alone (a plain store of its tail) needs the fence.
  if (!fenced) std::atomic_thread_fence(std::memory_order_seq_cst);
  for (uint32_t w = 0; w < kMaxSlots / 64; w++) {
    if (self.roomWanted[w].load(std::memory_order_relaxed) == 0) continue;
    uint64_t bits = self.roomWanted[w].exchange(0);
    while (bits != 0) {
      uint32_t i = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
      bits &= bits - 1;
      WakeIfParked(c->slots[i]);
    }
  }
}

// Whether waiting should sleep on a doorbell rather than spin or yield: more of the group's
// processes are awake on this process's CPUs than it has CPUs (processes placed on other CPUs
// do not compete: a launcher alone on its CPU spins while its workers share the other), or more
// tasks of any program are runnable than the machine has CPUs (other programs' busy processes
// count too: a worker spinning on a machine busy with other work took 53-55% of its CPU samples
// in the drain and slowed its own caller). The first reason alone is also kept (peersCrowd):
// the drain's wait yields when the group's processes crowd this process's CPUs, not when only
// other programs crowd the machine (a yield there lost a whole time slice; mbx_drain.cc).
// Recomputed at most every millisecond (this thread's affinity, republished when it changed, a
// scan of the process table and one pread).
bool Crowded(Attachment& a) {
  uint64_t now = NowUs();
  if (now - a.crowdedAtUs >= 1000) {
    RefreshCpus(a);
    a.peersCrowd = AwakeCompetitors(a.ctl, a.cpuMask) > a.cpus;
    a.crowded = a.peersCrowd || RunnableTasks(a.loadavgFd) > a.onlineCpus;
    a.crowdedAtUs = now;
  }
  return a.crowded;
}

// Reads this thread's affinity into a.cpus and a.cpuMask and publishes the mask in our slot
// when it changed. Called on the JS thread (the one placement moves) at attach and from Crowded.
void RefreshCpus(Attachment& a) {
  cpu_set_t set;
  CpuMask mask = {};
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    a.cpus = std::max(1, CPU_COUNT(&set));
    CpuMaskFromSet(set, mask);
  } else {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    a.cpus = online > 0 ? static_cast<uint32_t>(online) : 1;
  }
  ProcSlot& s = a.ctl->slots[a.slot];
  uint32_t generation = s.generation.load(std::memory_order_relaxed);
  bool same = s.cpuMaskGeneration.load(std::memory_order_relaxed) == generation;
  for (uint32_t w = 0; w < kCpuMaskWords; w++) same = same && mask[w] == a.cpuMask[w];
  if (same) return;
  for (uint32_t w = 0; w < kCpuMaskWords; w++) {
    a.cpuMask[w] = mask[w];
    s.cpuMask[w].store(mask[w], std::memory_order_relaxed);
  }
  s.cpuMaskGeneration.store(generation, std::memory_order_release);
}

MPBUS_FACILITY(InitRoom);
}  // namespace mbx

}  // namespace mpbus
