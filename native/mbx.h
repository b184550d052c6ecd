// What the mailbox files (native/mbx_*.cc) share: this process's attachment to the group (its
// slot, inbox, mailbox table, peer cache and doorbell thread), the constants of the drain
// output, send statuses and descriptor refusals, and the functions one file offers the others.
// The shared-memory layout itself is native/mailbox.h. Everything here is hidden from the
// addon's exports, so calls between the files are direct calls, as they were inside one file.
#pragma once
#include <linux/futex.h>
#include <napi.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cpu_mask.h"
#include "mailbox.h"

// Hidden: these names are the addon's own, not exported from mpbus.node (calls between the
// files are then direct, not through the PLT).
#pragma GCC visibility push(hidden)
namespace mpbus {
namespace mbx {

constexpr const char* kControlName = "mpbus_mbx_ctl";
constexpr const char* kPoolName = "mpbus_mbx_pool";
constexpr const char* kPoolMemName = "mpbus_mbx_poolmem";
constexpr uint32_t kBurst = 256;

// One drained descriptor in the JS output array (mbxDrain): kOutWords words, [mailbox id,
// payload offset (or index in mbxTakeLarge()), length, flags]; the flags word packs the codec,
// kRowLarge, the BadDescriptor reason (refused: then words 1-2 are the descriptor) and the
// sender's slot. Exported to TypeScript as `constants.mailbox.row` (mbx_drain.cc).
constexpr uint32_t kOutWords = 4;
constexpr uint32_t kRowCodecMask = kCodecMask;
constexpr uint32_t kRowLarge = 1u << 4;
constexpr uint32_t kRowBadShift = 8;
constexpr uint32_t kRowSenderShift = 16;
constexpr uint32_t kRowByteMask = 0xff;  // of the reason and the sender slot, once shifted down

// Send results: exported to TypeScript as `constants.mailbox.send` (mbx_send.cc). The order
// matters: below kSendPeerGone the target lacks room now; kSendPeerGone and kSendMailboxClosed:
// the target is gone; kSendHeapShort: no block can be had for this message (TakeLargeBlock).
enum SendStatus : int {
  kSendOk = 0,
  kSendMailboxFull = 1,
  kSendInboxFull = 2,
  kSendNoBuffers = 3,
  kSendPeerGone = 4,
  kSendMailboxClosed = 5,
  kSendHeapShort = 6,
};

// Reasons a received descriptor was refused: exported to TypeScript as `constants.mailbox.bad`
// (mbx_drain.cc).
enum BadDescriptor : uint32_t {
  kBadNone = 0,
  kBadOutOfRange = 1,
  kBadMisaligned = 2,
  kBadNotInFlight = 3,
  kBadMagic = 4,
  kBadVersion = 5,
  kBadLength = 6,
  kBadCodec = 7,
};

inline uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

inline uint64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

inline long Futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* timeout = nullptr) {
  // Shared (not FUTEX_PRIVATE): the word lives in memory mapped by several processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, timeout, nullptr, 0);
}

// Rings a process's doorbell when it sleeps on it; costs nothing (no syscall) when it does not.
inline void WakeIfParked(ProcSlot& s) {
  if (s.parked.load(std::memory_order_relaxed) != 0 && s.parked.exchange(0) != 0) {
    s.doorbell.fetch_add(1);
    Futex(&s.doorbell, FUTEX_WAKE, 1);
  }
}

// ---- per-process state (one attachment per process: mbx_attach.cc) ----------------------
struct PeerCache {
  uint32_t generation = 0;
  rte_ring* inbox = nullptr;
  MailboxEntry* table = nullptr;
};

struct Attachment {
  Control* ctl = nullptr;
  rte_mempool* pool = nullptr;
  const rte_memzone* poolMz = nullptr;
  uint32_t slot = 0;
  uint32_t generation = 0;
  rte_ring* inbox = nullptr;
  MailboxEntry* table = nullptr;
  uint32_t* out = nullptr;  // JS Uint32Array, kBurst * kOutWords
  bool crowded = false;
  // More of the group's awake processes may run on this process's CPUs than it has: the ones a
  // waiting receiver waits for may need its CPU (computed with `crowded`).
  bool peersCrowd = false;
  uint64_t crowdedAtUs = 0;  // when `crowded` and `peersCrowd` were last computed
  uint32_t cpus = 1;         // CPUs of this process's (JS thread's) affinity mask
  CpuMask cpuMask = {};      // the same CPUs as bits, as published in our slot (0: unknown)
  uint32_t onlineCpus = 1;   // CPUs of the machine (what /proc/loadavg's runnable count competes for)
  int loadavgFd = -1;        // /proc/loadavg, kept open: one pread per check
  Napi::Reference<Napi::Uint32Array> outRef;
  Napi::Reference<Napi::Array> large;  // Buffers of large messages of the last drain
  std::vector<uint32_t> freeIndexes;
  uint32_t nextIndex = 0;
  uint16_t sequence = 1;
  PeerCache peers[kMaxSlots];
  // doorbell thread
  std::thread waker;
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;
  bool quit = false;
  uint32_t armedSeen = 0;
  Napi::ThreadSafeFunction wake;
};

// What the mailbox functions keep per Node environment (mbx_attach.cc), handed to each of them as
// its data: the attachment, once this environment attached (only the thread with the process's
// lcore id can: one attachment per process in practice).
struct MailboxEnv {
  Attachment* att = nullptr;
};

// ---- offered by one file to the others ----------------------------------------------------
// mbx_attach.cc: this environment's MailboxEnv, made on first use and freed with the environment.
MailboxEnv* MailboxEnvOf(Napi::Env env);
// mbx_attach.cc: exports[name] = fn, with this environment's MailboxEnv as its data.
void SetMailboxFunction(Napi::Env env, Napi::Object exports, const char* name,
                        Napi::Value (*fn)(const Napi::CallbackInfo&));
// mbx_attach.cc: the attachment of the calling environment, or ENOTATTACHED.
Attachment& RequireAttached(const Napi::CallbackInfo& info);

// mbx_proc.cc: the DPDK name of a slot's object ("mpbus_ib_" + slot: its inbox ring).
std::string SlotName(const char* base, uint32_t slot);
// mbx_proc.cc: a live peer's inbox and mailbox table, or nullptr when the slot's process is gone.
PeerCache* Peer(Attachment& a, uint32_t slot, uint32_t generation);

// mbx_check.cc: a received descriptor, checked and its buffer claimed.
struct Checked {
  uint32_t bad = kBadNone;
  BufferHeader* header = nullptr;
  bool large = false;
  uint32_t largeIndex = 0;
  uint32_t receiverSlot = 0;
  bool ownsBuffer = false;  // true when the buffer was claimed and is now ours to free
  uint32_t length = 0;      // the header's length and flags as read once and checked
  uint32_t flags = 0;
};
Checked Check(Control* c, uint64_t descriptor, uint32_t receiverSlot);
void FreeChecked(Control* c, rte_mempool* pool, const Checked& k);

// mbx_copies.cc: a buffer of JavaScript's holding a copy of a large message's bytes.
Napi::Buffer<uint8_t> CopyOutLarge(Napi::Env env, const uint8_t* bytes, uint32_t length);

// mbx_large.cc: the group's large blocks, kept with their table entries for reuse.
// Claims an entry (LargeWritingBy(senderSlot), a new generation in *generation) and a block of at least
// `bytes`, header included: its index; kLargeWait when none can be had now (blocks in use, 256 in
// flight: wait for them); kLargeHeapShort when DPDK's heap refused the block and no heap block of
// the group is in use to come back.
constexpr int32_t kLargeWait = -1;
constexpr int32_t kLargeHeapShort = -2;
int32_t TakeLargeBlock(Control* c, uint64_t bytes, uint32_t senderSlot, uint32_t receiverSlot, uint32_t* generation);
// Ends the use of large block `index` if its entry is still in `state` (the CAS makes a second
// free of one block, by a receiver and a reaper or a repeated descriptor, a no-op); the block
// stays with the entry for the next message that fits.
bool FreeLargeBlock(Control* c, uint32_t index, uint32_t state);
// rte_malloc and rte_free calls this process made for large blocks; blocks kept idle now.
uint64_t LargeHeapCalls();
uint32_t LargeBlocksKept(const Control* c);
// Bytes of the group's large-block arena carved into blocks so far.
uint64_t LargeArenaUsed(const Control* c);

// mbx_drain.cc: releases the burst JS decoded since the last drain.
void ReleaseHeld(Attachment& a);

// mbx_reap.cc: cleaning up after a process that left or died.
void DrainAndFree(Control* c, rte_mempool* pool, rte_ring* ring, uint32_t slot);
void ReapSlot(Control* c, rte_mempool* pool, uint32_t slot, uint32_t reason);
bool TryReap(Control* c, rte_mempool* pool, uint32_t slot);

// mbx_room.cc: waking senders that wait for room; whether this machine is crowded.
void WakeRoomWaiters(Control* c, ProcSlot& self, bool fenced);
bool Crowded(Attachment& a);
void RefreshCpus(Attachment& a);

// mbx_doorbell.cc: the thread a parked receiver's doorbell wakes.
// 0, or the errno of a thread that could not be started (TryStartThread).
int StartWaker(Attachment* a);
void StopWaker(Attachment* a);

// mbx_group.cc: the group's control block and buffer pool, created by the first process.
Control* AttachControl(Napi::Env env, uint32_t count, uint32_t eltSize, uint32_t inboxSize);

}  // namespace mbx
}  // namespace mpbus
#pragma GCC visibility pop
