// Shared-memory layout of mpbus mailboxes, shared by the mailbox files (native/mbx_*.cc: process
// table, inboxes, buffers) and hash.cc (the name registry). Every process of a group maps these
// structures at the same virtual address; every field another process wrote is checked before use.
#pragma once
#include <rte_lcore.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <atomic>

#include "cpu_mask.h"

namespace mpbus {

constexpr uint32_t kControlMagic = 0x4d504243;  // "MPBC"
constexpr uint32_t kLayoutVersion = 4;
constexpr uint32_t kMaxSlots = RTE_MAX_LCORE;  // one slot per lcore id: lcore ids are unique
static_assert(kMaxSlots % 64 == 0, "room-wanted bitmaps use whole 64-bit words");
constexpr uint32_t kMaxLargeBlocks = 256;  // large messages in flight (blocks of DPDK's heap, mbx_large.cc)
constexpr uint32_t kMaxMailboxesPerProcess = 65536;
constexpr uint32_t kHeldMax = 256;  // = the drain burst

// Buffer header at the start of every message buffer (pool element or rte_malloc'd block).
constexpr uint32_t kBufferMagic = 0x4d50424d;  // "MPBM"
constexpr uint16_t kBufferVersion = 2;

// Ownership of a buffer: one 32-bit word in its header, `generation << 16 | holder << 8 | slot`,
// changed only by compare-and-swap (docs/mailboxes.md, "Ownership"). The generation (16 bits)
// is bumped by every take and travels with the descriptor, so a descriptor names one use of a
// buffer: a stale or repeated one no longer matches.
enum BufferHolder : uint32_t {
  kHolderFree = 0x00,      // in the pool (slot 0)
  kHolderWriting = 0x57,   // taken by the sender in `slot`, being written
  kHolderInFlight = 0x46,  // published to the receiver in `slot`
  kHolderReceived = 0x52,  // claimed by the receiver in `slot`, being read
};
constexpr uint32_t OwnerWord(uint32_t generation, uint32_t holder, uint32_t slot) {
  return ((generation & 0xffff) << 16) | (holder << 8) | (slot & 0xff);
}
constexpr uint32_t OwnerGeneration(uint32_t word) { return word >> 16; }
constexpr uint32_t OwnerHolder(uint32_t word) { return (word >> 8) & 0xff; }
constexpr uint32_t OwnerSlot(uint32_t word) { return word & 0xff; }

// An inbox ring element: the buffer's address in the low 48 bits (user-space addresses on
// x86-64 and arm64 fit), the generation of this use of it in the high 16.
constexpr unsigned kDescriptorGenerationShift = 48;
constexpr uint64_t kDescriptorAddressMask = (uint64_t{1} << kDescriptorGenerationShift) - 1;
constexpr uint64_t MakeDescriptor(uint64_t address, uint32_t generation) {
  return address | (static_cast<uint64_t>(generation & 0xffff) << kDescriptorGenerationShift);
}

struct BufferHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t flags;      // kFlagRaw / kFlagMsgpack, kFlagLarge
  uint32_t length;     // payload bytes after the header
  uint32_t mailboxId;  // receiver-local id: (sequence << 16) | index
  uint32_t senderSlot;
  uint32_t largeIndex;          // index in Control::large for large messages
  std::atomic<uint32_t> owner;  // OwnerWord: who holds the buffer, for which generation
  uint32_t reserved;
};
static_assert(sizeof(BufferHeader) == 32, "buffer header is 32 bytes");

constexpr uint16_t kFlagRaw = 0;
constexpr uint16_t kFlagMsgpack = 1;
constexpr uint16_t kCodecMask = 0x0f;
constexpr uint16_t kFlagLarge = 0x10;

enum SlotState : uint32_t { kSlotFree = 0, kSlotClaiming = 1, kSlotAlive = 2, kSlotReaping = 3 };
enum ExitReason : uint32_t { kExitNone = 0, kExitLeft = 1, kExitDied = 2 };

struct alignas(64) ProcSlot {
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> generation;  // incremented by every claim
  int32_t pid;
  uint32_t role;       // 0 primary, 1 secondary
  uint64_t startTime;  // /proc/<pid>/stat field 22: tells a reused pid from the original
  std::atomic<int32_t> reaperPid;
  uint32_t pad0;
  void* inbox;         // rte_ring* of this process's inbox
  void* mailboxTable;  // MailboxEntry[kMaxMailboxesPerProcess]
  std::atomic<uint64_t> heartbeatMs;
  std::atomic<uint32_t> exitGeneration;        // generation of the last process that held the slot
  uint32_t exitReason;                         // how it ended: kExitLeft or kExitDied
  alignas(64) std::atomic<uint32_t> doorbell;  // futex word: senders bump it to wake a parked receiver
  std::atomic<uint32_t> parked;                // 1 while the receiver sleeps on the doorbell
  // Bit i: the process in slot i found one of this process's mailboxes (or its inbox) full and
  // sleeps until this process drains; the drain rings slot i's doorbell and clears the bit.
  std::atomic<uint64_t> roomWanted[kMaxSlots / 64];
  // The CPUs this process's JS thread may run on (bit i: CPU i), written by the process itself
  // and refreshed when its affinity changes (placement moves a launcher after it attached). The
  // mask is valid only while cpuMaskGeneration equals `generation`: a process of an older build,
  // or a C peer, never writes it, so what it finds there (zeros, or the mask of the slot's
  // previous holder) is read as "every CPU". An all-zero mask (a CPU above 255) means the same.
  // These fields sit in what was padding before the doorbell line's end: the layout is unchanged.
  std::atomic<uint64_t> cpuMask[kCpuMaskWords];
  std::atomic<uint32_t> cpuMaskGeneration;
  // Pool buffers the receiver drained and JS is decoding, released together at the next drain
  // (a reaper finds them by their owner words, which say received by this slot).
  alignas(64) std::atomic<uint32_t> heldCount;
  uint64_t held[kHeldMax];
  // Room a send of this process reserved in a receiver's pending count and has not yet either
  // put on the receiver's ring or given back: (count << 8) | receiver slot, 0 when none, and the
  // mailbox id it counts in. A process killed inside a send (copying a large message, say) took
  // that room for good; its reaper gives it back (mbx_reap.cc). Written at every send, so on a
  // line only this process writes (the end of `held`), not one other processes read or write
  // when they send to it; in what was the struct's tail padding: the layout is unchanged.
  std::atomic<uint32_t> reservation;
  std::atomic<uint32_t> reservedMailbox;
};

// The CPU mask fits in what was the doorbell line's padding: older builds of the same layout
// version see the same offsets.
static_assert(kMaxSlots > 128 || offsetof(ProcSlot, heldCount) == 128, "ProcSlot layout changed");
static_assert(kMaxSlots > 128 || sizeof(ProcSlot) == 2240, "ProcSlot layout changed");
static_assert(kMaxSlots <= 256, "ProcSlot::reservation keeps a slot in 8 bits");

struct MailboxEntry {
  std::atomic<uint32_t> id;       // current mailbox id at this index, 0 when closed
  std::atomic<uint32_t> pending;  // messages sent and not yet drained by the receiver
  std::atomic<uint32_t> capacity;
  std::atomic<uint32_t> hold;  // 1: the receiver keeps drained messages itself (no subscriber), they stay pending
};

enum LargeState : uint32_t { kLargeFree = 0, kLargeWriting = 1, kLargeEnqueued = 2, kLargeFreeing = 3 };
// The state of an entry `slot` claimed and is writing: the claim's CAS names the writer, so a
// reaper finds what a process killed right after its claim held.
constexpr uint32_t LargeWritingBy(uint32_t slot) { return kLargeWriting | ((slot + 1) << 8); }
struct LargeEntry {
  std::atomic<uint32_t> state;
  uint32_t unused;  // the sender's slot until layout 4; the claim's state word names it now
  uint32_t receiverSlot;
  uint32_t generation;        // of the block's current use (16 bits), bumped by the sender that takes the entry
  std::atomic<uint64_t> ptr;  // the block, kept while the entry is free (0: none)
  uint64_t bytes;             // its allocated size, header included
};

struct Control {
  std::atomic<uint32_t> magic;  // kControlMagic once the creator finished
  uint32_t version;
  std::atomic<int32_t> registryLock;  // pid of the process writing the registry, 0 when free
  std::atomic<uint32_t> registryEpoch;
  uint64_t poolBase;  // address of the pool memzone (the ArrayBuffer JS sees)
  uint64_t poolBytes;
  uint64_t firstObject;  // address of the first pool element
  uint32_t stride;       // distance between elements
  uint32_t eltSize;      // usable bytes of an element (header included)
  uint32_t count;        // elements in the pool
  uint32_t inboxSize;
  ProcSlot slots[kMaxSlots];
  LargeEntry large[kMaxLargeBlocks];
  // Ownership conflicts seen by any process (docs/mailboxes.md, "Ownership"): a buffer the pool
  // handed out while someone held it (dropped, not used), and a buffer that was not ours when
  // we came to free it (not freed). Both mean a member bypassed the protocol.
  alignas(64) std::atomic<uint64_t> takeConflicts;
  std::atomic<uint64_t> freeConflicts;
  // The large blocks' arena (mbx_large.cc): one heap allocation, made by the first sender that
  // needs a large block, carved into blocks that stay with their entries. kArenaNone, then
  // kArenaReserving, then its address (or kArenaFailed).
  alignas(64) std::atomic<uint64_t> arenaBase;
  uint64_t arenaBytes;
  std::atomic<uint64_t> arenaUsed;  // bytes carved so far (past arenaBytes: none left)
};
constexpr uint64_t kArenaNone = 0, kArenaReserving = 1, kArenaFailed = 2;

// The control block of the group this process attached to, or nullptr.
Control* AttachedControl();
// True when process `pid` lives and (when startTime != 0) is the process that started then.
bool ProcessAlive(int32_t pid, uint64_t startTime);
// Start time (clock ticks after boot) of a process, 0 when it does not exist.
uint64_t ProcessStartTime(int32_t pid);
// Registry hook: removes every name owned by (slot, generation); returns how many.
int RegistryRemoveOwnedBy(uint32_t slot, uint32_t generation);
// Robust lock in shared memory: a word holding the owner's pid; a dead owner's lock is taken over.
void RobustLock(std::atomic<int32_t>& word);
void RobustUnlock(std::atomic<int32_t>& word);

}  // namespace mpbus
