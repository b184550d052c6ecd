// The group's process table as this process reads it: whether a member lives and is the process
// that claimed its slot (/proc/<pid>/stat, start time), the robust lock built on that, where a
// live member's inbox and mailbox table are (Peer), and mbxScan (members, exits, the dead it
// reaps through mbx_reap.cc).
#include <fcntl.h>
#include <rte_pause.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

bool ReadStat(int32_t pid, char* state, uint64_t* startTime) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = 0;
  // The command name (field 2) may contain spaces and parentheses: fields resume after the last ')'.
  char* p = strrchr(buf, ')');
  if (p == nullptr) return false;
  p += 2;
  *state = *p;
  // field 3 is the state; field 22 the start time: skip 19 more fields.
  for (int field = 3; field < 22 && p != nullptr; field++) {
    p = strchr(p, ' ');
    if (p != nullptr) p++;
  }
  if (p == nullptr) return false;
  *startTime = strtoull(p, nullptr, 10);
  return true;
}

// Reaps slots whose process is dead (SIGKILL included): the first process to notice does it.
Napi::Value MbxScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  Control* c = a.ctl;
  Napi::Array alive = Napi::Array::New(env);
  Napi::Array reaped = Napi::Array::New(env);
  Napi::Array exits = Napi::Array::New(env);
  uint32_t na = 0, nr = 0, nx = 0;
  c->slots[a.slot].heartbeatMs.store(NowMs());
  for (uint32_t i = 0; i < kMaxSlots; i++) {
    ProcSlot& s = c->slots[i];
    uint32_t st = s.state.load(std::memory_order_acquire);
    if (st == kSlotFree) {
      uint32_t exitGen = s.exitGeneration.load();
      if (exitGen != 0) {
        Napi::Object x = Napi::Object::New(env);
        x.Set("slot", i);
        x.Set("generation", exitGen);
        x.Set("reason", s.exitReason == kExitLeft ? "left" : "died");
        exits.Set(nx++, x);
      }
      continue;
    }
    int32_t pid = s.pid;
    uint32_t gen = s.generation.load();
    bool dead = i != a.slot && (st == kSlotAlive || st == kSlotReaping) && !ProcessAlive(pid, s.startTime);
    if (st == kSlotReaping && !dead) {
      int32_t reaper = s.reaperPid.load();
      dead = reaper != 0 && !ProcessAlive(reaper, 0);  // a reaper that died mid-way
    }
    if (dead) {
      if (TryReap(c, a.pool, i)) {
        Napi::Object r = Napi::Object::New(env);
        r.Set("slot", i);
        r.Set("pid", pid);
        r.Set("generation", gen);
        reaped.Set(nr++, r);
      }
      continue;
    }
    // A live process releasing its own slot (kSlotReaping, pid alive) is still a member until
    // the slot is free with its exit reason: reporting it gone now would say 'died' for a
    // process that is leaving (seen once under load: a watched actor reported process-exited).
    if (st != kSlotAlive && st != kSlotReaping) continue;
    Napi::Object p = Napi::Object::New(env);
    p.Set("slot", i);
    p.Set("pid", pid);
    p.Set("generation", gen);
    p.Set("role", s.role == 0 ? "primary" : "secondary");
    p.Set("startTime", static_cast<double>(s.startTime));
    p.Set("heartbeatMs", static_cast<double>(s.heartbeatMs.load()));
    alive.Set(na++, p);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("alive", alive);
  r.Set("reaped", reaped);
  r.Set("exits", exits);
  return r;
}

// mbxInboxName(slot): the DPDK name of a process's inbox ring (tests write garbage into it).
Napi::Value MbxInboxName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), SlotName("mpbus_ib_", ArgUint32(info, 0, "the slot")));
}

void InitProcessTable(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxScan", MbxScan);
  SetMailboxFunction(env, exports, "mbxInboxName", MbxInboxName);
}

}  // namespace

std::string SlotName(const char* base, uint32_t slot) { return std::string(base) + std::to_string(slot); }

// Resolves a peer's inbox and mailbox table through DPDK's own lookups (never through pointers
// another process wrote), cached per generation of the slot.
PeerCache* Peer(Attachment& a, uint32_t slot, uint32_t generation) {
  if (slot >= kMaxSlots) return nullptr;
  ProcSlot& s = a.ctl->slots[slot];
  if (s.state.load(std::memory_order_acquire) != kSlotAlive || ((s.generation.load() ^ generation) & 0xffffff) != 0)
    return nullptr;
  PeerCache& pc = a.peers[slot];
  if (pc.inbox == nullptr || pc.generation != (generation & 0xffffff)) {
    rte_ring* r = rte_ring_lookup(SlotName("mpbus_ib_", slot).c_str());
    const rte_memzone* mz = rte_memzone_lookup(SlotName("mpbus_mt_", slot).c_str());
    if (r == nullptr || mz == nullptr || mz->len < sizeof(MailboxEntry) * kMaxMailboxesPerProcess) return nullptr;
    pc.inbox = r;
    pc.table = static_cast<MailboxEntry*>(mz->addr);
    pc.generation = generation & 0xffffff;
  }
  return &pc;
}
MPBUS_FACILITY(InitProcessTable);
}  // namespace mbx

uint64_t ProcessStartTime(int32_t pid) {
  char state;
  uint64_t start = 0;
  return mbx::ReadStat(pid, &state, &start) ? start : 0;
}

bool ProcessAlive(int32_t pid, uint64_t startTime) {
  if (pid <= 0) return false;
  char state;
  uint64_t start = 0;
  if (!mbx::ReadStat(pid, &state, &start)) return false;
  if (state == 'Z' || state == 'X' || state == 'x') return false;  // killed, not yet waited for
  return startTime == 0 || start == startTime;
}

void RobustLock(std::atomic<int32_t>& word) {
  const int32_t me = getpid();
  for (unsigned spins = 0;; spins++) {
    int32_t cur = 0;
    if (word.compare_exchange_strong(cur, me)) return;
    if (cur == me) return;  // re-entry from this process (the JS thread is the only writer)
    if ((spins & 63) == 63 && !ProcessAlive(cur, 0)) {
      if (word.compare_exchange_strong(cur, me)) return;  // its owner died holding it
    }
    if (spins < 256)
      rte_pause();
    else
      sched_yield();
  }
}

void RobustUnlock(std::atomic<int32_t>& word) {
  int32_t me = getpid();
  word.compare_exchange_strong(me, 0);
}

}  // namespace mpbus
