
// Mailboxes in shared hugepage memory: the group's process table, one inbox ring per process,
// message buffers from one shared mempool (or rte_malloc for large messages), the receive drain
// the JS thread calls itself, and the futex doorbell a parked receiver sleeps on.
//
// Layout and safety rules are in native/mailbox.h and docs/mailboxes.md. Policy (names,
// capacities, retry, timeouts) lives in src/bus/; this file only moves and checks bytes.
#include "mailbox.h"

#include <fcntl.h>
#include <linux/futex.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"

namespace mpbus {
namespace {

constexpr const char* kControlName = "mpbus_mbx_ctl";
constexpr const char* kPoolName = "mpbus_mbx_pool";
constexpr const char* kPoolMemName = "mpbus_mbx_poolmem";
constexpr uint32_t kBurst = 256;
constexpr uint32_t kOutWords = 4;  // words per drained descriptor in the JS output array

// Send results (mirrored in src/native/mailbox.ts).
enum SendStatus : int {
  kSendOk = 0,
  kSendMailboxFull = 1,
  kSendInboxFull = 2,
  kSendNoBuffers = 3,
  kSendPeerGone = 4,
  kSendMailboxClosed = 5,
};

// Reasons a received descriptor was refused (mirrored in src/native/mailbox.ts).
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

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

uint64_t NowUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

long Futex(std::atomic<uint32_t>* addr, int op, uint32_t val, const timespec* timeout = nullptr) {
  // Shared (not FUTEX_PRIVATE): the word lives in memory mapped by several processes.
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), op, val, timeout, nullptr, 0);
}

// Rings a process's doorbell when it sleeps on it; costs nothing (no syscall) when it does not.
void WakeIfParked(ProcSlot& s) {
  if (s.parked.load(std::memory_order_relaxed) != 0 && s.parked.exchange(0) != 0) {
    s.doorbell.fetch_add(1);
    Futex(&s.doorbell, FUTEX_WAKE, 1);
  }
}

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

constexpr const char* kPoolOps = "ring_mt_rts";
// Inboxes: many senders (relaxed tail sync, for the same reason as the pool), one receiver.
// Senders must use the generic rte_ring_enqueue*, which follow the ring's own sync mode.
constexpr unsigned kInboxFlags = RING_F_MP_RTS_ENQ | RING_F_SC_DEQ;

// A parked receiver also looks at its ring this often: producers that do not ring the doorbell
// (a C program using the raw rte_ring API) are then served within this delay.
constexpr timespec kParkedRecheck = {0, 250 * 1000 * 1000};

// ---- per-process state -------------------------------------------------------------------
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
  uint64_t crowdedAtUs = 0;  // when `crowded` was last computed
  uint32_t cpus = 1;         // CPUs of this process's affinity mask
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

Control* gControl = nullptr;  // stays mapped after detach: the group's memory outlives us
Attachment* gAtt = nullptr;

Attachment& RequireAttached(Napi::Env env) {
  RequireEal(env);
  if (gAtt == nullptr)
    ThrowError(env, "ENOTATTACHED", "mailboxes are not attached in this process: open the mailbox system first");
  return *gAtt;
}

// ---- buffers and their ownership ----------------------------------------------------------
// Who holds a buffer is its header's owner word, moved only by compare-and-swap: the pool's
// free@g -> the sender's writing@g+1 (take) -> inFlight@g to one receiver (publish) -> that
// receiver's received@g (claim) -> free@g (release, then back to the pool). The descriptor on
// the ring carries g. Whoever loses a CAS does not hold the buffer and leaves it alone, so a
// repeated, replayed or stale descriptor is refused instead of freeing a buffer twice, and a
// buffer the pool holds twice (someone put it without owning it) is handed to one taker only.
bool InPool(const Control* c, uint64_t p) {
  return p >= c->firstObject && p < c->firstObject + static_cast<uint64_t>(c->count) * c->stride;
}

// Takes a buffer the pool just handed out: free@g -> writing(slot)@g+1. Returns g+1, or -1 when
// the buffer is not free: the pool held it twice and someone else has it; then it is neither
// used nor put back (the conflict is counted).
int32_t TakeBuffer(Control* c, BufferHeader* h, uint32_t slot) {
  uint32_t w = h->owner.load(std::memory_order_relaxed);
  while (OwnerHolder(w) == kHolderFree) {
    uint32_t taken = OwnerWord(OwnerGeneration(w) + 1, kHolderWriting, slot);
    if (h->owner.compare_exchange_weak(w, taken, std::memory_order_acquire, std::memory_order_relaxed))
      return static_cast<int32_t>(OwnerGeneration(taken));
  }
  c->takeConflicts.fetch_add(1, std::memory_order_relaxed);
  return -1;
}

// Hands a written buffer to its receiver: writing(sender)@g -> inFlight(receiver)@g, the last
// write, with release order so the receiver's checks see the whole buffer. A plain store: the
// sender took the buffer by CAS and no step of the protocol lets anyone else change its word
// meanwhile (a peer that cannot be sure it still holds a buffer must publish by CAS instead).
void PublishBuffer(BufferHeader* h, uint32_t generation, uint32_t receiver) {
  h->owner.store(OwnerWord(generation, kHolderInFlight, receiver), std::memory_order_release);
}

// The receiver claims the buffer of a descriptor: inFlight(receiver)@g -> received(receiver)@g.
// Fails for a buffer that is not in flight to it in that generation (sent twice, replayed after
// it was freed, reused after its sender freed it, still being written).
bool ClaimBuffer(BufferHeader* h, uint32_t generation, uint32_t receiver) {
  uint32_t w = OwnerWord(generation, kHolderInFlight, receiver);
  return h->owner.compare_exchange_strong(w, OwnerWord(generation, kHolderReceived, receiver),
                                          std::memory_order_acquire, std::memory_order_relaxed);
}

// Gives up a buffer `slot` holds as `holder` (in whatever generation): -> free. False when it
// is not held so (counted): someone else changed it, and it must not go back to the pool.
bool ReleaseOwnership(Control* c, BufferHeader* h, uint32_t holder, uint32_t slot) {
  uint32_t w = h->owner.load(std::memory_order_relaxed);
  if (OwnerHolder(w) == holder && OwnerSlot(w) == slot &&
      h->owner.compare_exchange_strong(w, OwnerWord(OwnerGeneration(w), kHolderFree, 0), std::memory_order_release,
                                       std::memory_order_relaxed)) {
    return true;
  }
  c->freeConflicts.fetch_add(1, std::memory_order_relaxed);
  return false;
}

// Returns a pool buffer `slot` holds as `holder` to the pool, unless it is not held so.
void ReturnToPool(Control* c, rte_mempool* pool, BufferHeader* h, uint32_t holder, uint32_t slot) {
  if (ReleaseOwnership(c, h, holder, slot)) rte_mempool_put(pool, h);
}

struct Checked {
  uint32_t bad = kBadNone;
  BufferHeader* header = nullptr;
  bool large = false;
  uint32_t largeIndex = 0;
  uint32_t receiverSlot = 0;
  bool ownsBuffer = false;  // true when the buffer was claimed and is now ours to free
};

// Validates a descriptor another process put on an inbox ring, touching only memory it has
// proved to be a pool element or a large block registered in the control block, and claims
// its buffer.
Checked Check(Control* c, uint64_t descriptor, uint32_t receiverSlot) {
  Checked r;
  r.receiverSlot = receiverSlot;
  const uint64_t p = descriptor & kDescriptorAddressMask;
  const uint32_t generation = static_cast<uint32_t>(descriptor >> kDescriptorGenerationShift);
  if (InPool(c, p)) {
    if ((p - c->firstObject) % c->stride != 0) {
      r.bad = kBadMisaligned;
      return r;
    }
    r.header = reinterpret_cast<BufferHeader*>(p);
    if (!ClaimBuffer(r.header, generation, receiverSlot)) {
      r.bad = kBadNotInFlight;  // not a buffer sent to us: never free what someone else holds
      return r;
    }
    r.ownsBuffer = true;
    if (r.header->magic != kBufferMagic)
      r.bad = kBadMagic;
    else if (r.header->version != kBufferVersion)
      r.bad = kBadVersion;
    else if (r.header->length > c->eltSize - sizeof(BufferHeader) || (r.header->flags & kFlagLarge))
      r.bad = kBadLength;
    else if ((r.header->flags & kCodecMask) > kFlagMsgpack)
      r.bad = kBadCodec;
    return r;
  }
  for (uint32_t i = 0; i < kMaxLarge; i++) {
    LargeEntry& e = c->large[i];
    if (e.ptr.load(std::memory_order_acquire) != p) continue;
    if (e.state.load() != kLargeEnqueued || e.receiverSlot != receiverSlot || e.generation != generation) continue;
    r.large = true;
    r.largeIndex = i;
    r.header = reinterpret_cast<BufferHeader*>(p);
    if (!ClaimBuffer(r.header, generation, receiverSlot)) {
      r.bad = kBadNotInFlight;
      return r;
    }
    r.ownsBuffer = true;
    if (r.header->magic != kBufferMagic)
      r.bad = kBadMagic;
    else if (r.header->version != kBufferVersion)
      r.bad = kBadVersion;
    else if (r.header->length > e.bytes - sizeof(BufferHeader) || !(r.header->flags & kFlagLarge) ||
             r.header->largeIndex != i)
      r.bad = kBadLength;
    else if ((r.header->flags & kCodecMask) > kFlagMsgpack)
      r.bad = kBadCodec;
    return r;
  }
  r.bad = kBadOutOfRange;
  return r;
}

// Frees large block `index` if its entry is still in `state`: the entry's CAS makes a second
// free of the same block (a receiver and a reaper, a repeated descriptor) a no-op.
bool FreeLarge(Control* c, uint32_t index, uint32_t state) {
  LargeEntry& e = c->large[index];
  if (!e.state.compare_exchange_strong(state, kLargeFreeing)) return false;
  void* p = reinterpret_cast<void*>(e.ptr.exchange(0));
  if (p != nullptr) rte_free(p);
  e.state.store(kLargeFree, std::memory_order_release);
  return true;
}

void FreeChecked(Control* c, rte_mempool* pool, const Checked& k) {
  if (!k.ownsBuffer) return;
  if (k.large)
    FreeLarge(c, k.largeIndex, kLargeEnqueued);
  else
    ReturnToPool(c, pool, k.header, kHolderReceived, k.receiverSlot);
}

// Frees everything left on an inbox ring (its owner is dead or is starting afresh).
void DrainAndFree(Control* c, rte_mempool* pool, rte_ring* ring, uint32_t slot) {
  void* burst[kBurst];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(ring, burst, kBurst, nullptr)) > 0) {
    for (unsigned i = 0; i < n; i++) FreeChecked(c, pool, Check(c, reinterpret_cast<uint64_t>(burst[i]), slot));
  }
}

// Returns to the pool every pool buffer a gone process held, taking or reading (its owner word
// names it): what it was writing when it died, the burst it was decoding.
void ReclaimBuffersOf(Control* c, rte_mempool* pool, uint32_t slot) {
  for (uint32_t i = 0; i < c->count; i++) {
    auto* h = reinterpret_cast<BufferHeader*>(c->firstObject + static_cast<uint64_t>(i) * c->stride);
    uint32_t w = h->owner.load(std::memory_order_relaxed);
    if (OwnerSlot(w) != slot) continue;
    uint32_t holder = OwnerHolder(w);
    if (holder == kHolderWriting || holder == kHolderReceived) ReturnToPool(c, pool, h, holder, slot);
  }
}

// The receiver's own release of a buffer it claimed: received(slot)@g -> free@g. A checked store,
// not a CAS (the hot path, once per message): a word that says received(slot) can only be
// changed by `slot` itself under the protocol. False (counted) when it does not say so.
bool ReleaseReceived(Control* c, BufferHeader* h, uint32_t slot) {
  uint32_t w = h->owner.load(std::memory_order_relaxed);
  if ((w & 0xffff) != (OwnerWord(0, kHolderReceived, slot) & 0xffff)) {
    c->freeConflicts.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  h->owner.store(w & 0xffff0000, std::memory_order_release);  // free@g
  return true;
}

void ReleaseHeld(Attachment& a) {
  // The burst JS decoded since the last drain. The count is cleared first: dying between the
  // two steps leaves these buffers received by us, which the reaper returns (once: by CAS).
  ProcSlot& s = a.ctl->slots[a.slot];
  uint32_t n = s.heldCount.load(std::memory_order_relaxed);
  if (n == 0) return;
  s.heldCount.store(0, std::memory_order_release);
  uint64_t* held = s.held;
  uint32_t kept = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (!ReleaseReceived(a.ctl, reinterpret_cast<BufferHeader*>(held[i]), a.slot)) continue;
    if (kept != i) held[kept] = held[i];  // only after a conflict
    kept++;
  }
  rte_mempool_put_bulk(a.pool, reinterpret_cast<void* const*>(held), kept);
}

// ---- process liveness ---------------------------------------------------------------------
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

// ---- slots --------------------------------------------------------------------------------
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

// Cleans up after a process that left or died: its names, its inbox, its mailbox table, and
// large blocks it was writing. The caller has moved the slot to kSlotReaping.
void ReapSlot(Control* c, rte_mempool* pool, uint32_t slot, uint32_t reason) {
  ProcSlot& s = c->slots[slot];
  uint32_t gen = s.generation.load();
  RegistryRemoveOwnedBy(slot, gen);
  rte_ring* r = rte_ring_lookup(SlotName("mpbus_ib_", slot).c_str());
  if (r != nullptr) DrainAndFree(c, pool, r, slot);
  const rte_memzone* mz = rte_memzone_lookup(SlotName("mpbus_mt_", slot).c_str());
  if (mz != nullptr) {
    auto* table = static_cast<MailboxEntry*>(mz->addr);
    for (uint32_t i = 0; i < kMaxMailboxesPerProcess; i++) {
      table[i].id.store(0);
      table[i].pending.store(0);
    }
  }
  s.heldCount.store(0);
  ReclaimBuffersOf(c, pool, slot);
  // Buffers in the dead lcore's mempool cache: nobody else uses that cache until a process
  // with this lcore id attaches, and it waits for this reaping to end.
  if (pool->cache_size > 0 && slot < RTE_MAX_LCORE) rte_mempool_cache_flush(&pool->local_cache[slot], pool);
  for (uint32_t i = 0; i < kMaxLarge; i++) {
    LargeEntry& e = c->large[i];
    uint32_t st = e.state.load();
    if ((st == kLargeWriting && e.senderSlot == slot) || (st == kLargeEnqueued && e.receiverSlot == slot))
      FreeLarge(c, i, st);
  }
  s.parked.store(0);
  for (auto& w : s.roomWanted) w.store(0);
  s.exitReason = reason;
  s.exitGeneration.store(gen);
  s.pid = 0;
  s.reaperPid.store(0);
  s.state.store(kSlotFree, std::memory_order_release);
}

// Tries to take the reaping of a slot whose process is gone. True when this process reaped it.
bool TryReap(Control* c, rte_mempool* pool, uint32_t slot) {
  ProcSlot& s = c->slots[slot];
  uint32_t st = s.state.load();
  if (st == kSlotAlive || st == kSlotClaiming) {
    if (!s.state.compare_exchange_strong(st, kSlotReaping)) return false;
  } else if (st == kSlotReaping) {
    int32_t reaper = s.reaperPid.load();
    if (reaper != 0 && ProcessAlive(reaper, 0)) return false;  // someone is on it
    if (!s.reaperPid.compare_exchange_strong(reaper, getpid())) return false;
  } else {
    return false;
  }
  s.reaperPid.store(getpid());
  ReapSlot(c, pool, slot, kExitDied);
  return true;
}

// ---- group objects ------------------------------------------------------------------------
void CreateGroupObjects(Napi::Env env, Control* c, uint32_t count, uint32_t eltSize, uint32_t inboxSize) {
  rte_mempool_objsz sz;
  uint32_t total = rte_mempool_calc_obj_size(eltSize, RTE_MEMPOOL_F_NO_IOVA_CONTIG, &sz);
  // Objects of a NO_IOVA_CONTIG pool are laid end to end (they may cross pages): a regular stride.
  size_t bytes = static_cast<size_t>(count) * total + static_cast<size_t>(total) * 64 + 65536;
  const rte_memzone* mz = rte_memzone_reserve_aligned(kPoolMemName, bytes, SOCKET_ID_ANY, 0, RTE_CACHE_LINE_SIZE);
  if (mz == nullptr) {
    int e = rte_errno;
    ThrowError(env, ErrnoName(e),
               "cannot reserve " + std::to_string(bytes >> 20) + " MiB of hugepage memory for mailbox buffers (" +
                   ErrnoText(e) + "): reserve more hugepages or lower poolBuffers",
               e);
  }
  rte_mempool* mp =
      rte_mempool_create_empty(kPoolName, count, eltSize, 64, 0, SOCKET_ID_ANY, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  if (mp == nullptr) {
    int e = rte_errno;
    ThrowError(env, ErrnoName(e), "cannot create the mailbox buffer pool: " + ErrnoText(e), e);
  }
  // Relaxed tail sync (RTS), not the classic multi-producer/consumer ring: with more busy
  // processes than CPUs (the flagship's workers, the bench's 4 pairs on 2 vCPUs), a process
  // preempted in the middle of a classic ring operation makes every other process spin on the
  // ring's tail until it runs again; measured here, 95% of the receivers' CPU went to that spin
  // and 4 pairs fell from ~3 M/s to 0.05 M/s in about half of the runs.
  if (rte_mempool_set_ops_byname(mp, kPoolOps, nullptr) != 0) {
    ThrowError(env, "ENOTSUP",
               std::string("the ") + kPoolOps + " mempool driver is missing (DPDK's mempool_ring PMD did not load)");
  }
  int added = rte_mempool_populate_iova(mp, static_cast<char*>(mz->addr), RTE_BAD_IOVA, mz->len, nullptr, nullptr);
  if (added < static_cast<int>(count)) {
    ThrowError(env, "ENOMEM",
               "the mailbox buffer pool got " + std::to_string(added) + " of " + std::to_string(count) + " buffers");
  }
  struct Layout {
    uint64_t first = 0, prev = 0;
    uint32_t n = 0;
    uint32_t stride;
    bool regular = true;
  } layout;
  layout.stride = total;
  rte_mempool_obj_iter(
      mp,
      [](rte_mempool*, void* arg, void* obj, unsigned) {
        static_cast<BufferHeader*>(obj)->owner.store(OwnerWord(0, kHolderFree, 0), std::memory_order_relaxed);
        auto* l = static_cast<Layout*>(arg);
        uint64_t p = reinterpret_cast<uint64_t>(obj);
        if (l->n == 0)
          l->first = p;
        else if (p != l->prev + l->stride)
          l->regular = false;
        l->prev = p;
        l->n++;
      },
      &layout);
  if (!layout.regular || layout.n != count)
    ThrowError(env, "ENOTSUP", "the mailbox buffer pool is not laid out at a regular stride");
  if (((layout.first + static_cast<uint64_t>(count) * total) & ~kDescriptorAddressMask) != 0) {
    ThrowError(env, "ENOTSUP", "the mailbox buffer pool lies above 2^48: a descriptor cannot carry its addresses");
  }
  c->poolBase = reinterpret_cast<uint64_t>(mz->addr);
  c->poolBytes = mz->len;
  c->firstObject = layout.first;
  c->stride = total;
  c->eltSize = eltSize;
  c->count = count;
  c->inboxSize = inboxSize;
}

Control* AttachControl(Napi::Env env, uint32_t count, uint32_t eltSize, uint32_t inboxSize) {
  const rte_memzone* mz = rte_memzone_lookup(kControlName);
  if (mz == nullptr) {
    mz = rte_memzone_reserve_aligned(kControlName, sizeof(Control), SOCKET_ID_ANY, 0, RTE_CACHE_LINE_SIZE);
    if (mz != nullptr) {
      auto* c = static_cast<Control*>(mz->addr);
      memset(static_cast<void*>(c), 0, sizeof(Control));
      c->version = kLayoutVersion;
      CreateGroupObjects(env, c, count, eltSize, inboxSize);
      c->magic.store(kControlMagic, std::memory_order_release);
      return c;
    }
    if (rte_errno != EEXIST) {
      int e = rte_errno;
      ThrowError(env, ErrnoName(e), "cannot reserve the mailbox control block: " + ErrnoText(e), e);
    }
    mz = rte_memzone_lookup(kControlName);
    if (mz == nullptr) ThrowError(env, "ENOENT", "the mailbox control block vanished while attaching");
  }
  auto* c = static_cast<Control*>(mz->addr);
  // Another process is creating the group's objects: that takes milliseconds. The JS thread
  // never sleeps here: EAGAIN tells TypeScript to try again from a timer (src/bus/attachment.ts).
  if (c->magic.load(std::memory_order_acquire) != kControlMagic) {
    ThrowError(env, "EAGAIN", "another process is still creating the group's mailbox objects");
  }
  if (c->version != kLayoutVersion) {
    ThrowError(env, "SETTINGS_MISMATCH",
               "the group's mailbox layout is version " + std::to_string(c->version) + ", this process speaks " +
                   std::to_string(kLayoutVersion) + ": run one mpbus version per group");
  }
  return c;
}

// ---- doorbell thread ----------------------------------------------------------------------
void WakerMain(Attachment* a) {
  ProcSlot& s = a->ctl->slots[a->slot];
  std::unique_lock<std::mutex> lock(a->mu);
  for (;;) {
    a->cv.wait(lock, [a] { return a->armed || a->quit; });
    if (a->quit) return;
    uint32_t seen = a->armedSeen;
    lock.unlock();
    while (s.doorbell.load(std::memory_order_acquire) == seen) {
      Futex(&s.doorbell, FUTEX_WAIT, seen, &kParkedRecheck);
      if (a->quit || rte_ring_count(a->inbox) > 0) break;
    }
    s.parked.store(0);
    lock.lock();
    a->armed = false;
    if (a->quit) return;
    a->wake.NonBlockingCall();
  }
}

void StopWaker(Attachment* a) {
  {
    std::lock_guard<std::mutex> lock(a->mu);
    a->quit = true;
  }
  a->cv.notify_all();
  ProcSlot& s = a->ctl->slots[a->slot];
  s.doorbell.fetch_add(1);
  Futex(&s.doorbell, FUTEX_WAKE, INT32_MAX);
  if (a->waker.joinable()) a->waker.join();
}

void Detach(Attachment* a) {
  StopWaker(a);
  a->wake.Release();
  ReleaseHeld(*a);
  Control* c = a->ctl;
  ProcSlot& s = c->slots[a->slot];
  uint32_t st = kSlotAlive;
  if (s.state.compare_exchange_strong(st, kSlotReaping)) {
    s.reaperPid.store(getpid());
    ReapSlot(c, a->pool, a->slot, kExitLeft);
  }
}

void CleanupHook(void*) {
  if (gAtt != nullptr && EalReady()) {
    Detach(gAtt);
  } else if (gAtt != nullptr) {
    StopWaker(gAtt);
  }
  gAtt = nullptr;  // leaked on purpose: env teardown, the process is ending
}

// ---- JS functions -------------------------------------------------------------------------
// mbxAttach({ poolBuffers, bufferSize, inboxSize, role, out: Uint32Array, onWake }) ->
//   { slot, generation, pool: ArrayBuffer, poolBase: number(offset 0), maxInline, burst }
Napi::Value MbxAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  if (gAtt != nullptr) ThrowError(env, "EALREADY", "mailboxes are already attached in this process");
  Napi::Object o = info[0].As<Napi::Object>();
  uint32_t count = o.Get("poolBuffers").As<Napi::Number>().Uint32Value();
  uint32_t eltSize = o.Get("bufferSize").As<Napi::Number>().Uint32Value();
  uint32_t inboxSize = o.Get("inboxSize").As<Napi::Number>().Uint32Value();
  uint32_t role = o.Get("role").As<Napi::Number>().Uint32Value();
  Napi::Uint32Array out = o.Get("out").As<Napi::Uint32Array>();
  if (out.ElementLength() < kBurst * kOutWords) ThrowError(env, "EINVAL", "output array too small");
  unsigned lcore = rte_lcore_id();
  if (lcore >= kMaxSlots) ThrowError(env, "ENOTREADY", "the JS thread has no lcore id");

  Control* c = AttachControl(env, count, eltSize, inboxSize);
  gControl = c;
  rte_mempool* pool = rte_mempool_lookup(kPoolName);
  const rte_memzone* poolMz = rte_memzone_lookup(kPoolMemName);
  if (pool == nullptr || poolMz == nullptr || reinterpret_cast<uint64_t>(poolMz->addr) != c->poolBase) {
    ThrowError(env, "ENOENT", "the mailbox buffer pool of this group is missing");
  }

  // Our slot is our lcore id: we hold its lock file, so whoever had it before is dead.
  ProcSlot& s = c->slots[lcore];
  for (int i = 0; i < 64; i++) {
    uint32_t st = s.state.load();
    if (st == kSlotFree) break;
    if (st == kSlotReaping) {
      int32_t reaper = s.reaperPid.load();
      if (reaper != 0 && reaper != getpid() && ProcessAlive(reaper, 0)) {
        // Another process is reaping our slot's dead holder: TypeScript retries from a timer.
        ThrowError(env, "EAGAIN",
                   "slot " + std::to_string(lcore) + " of the process table is being reaped by process " +
                       std::to_string(reaper));
      }
      s.state.store(kSlotAlive);  // the reaper died: take the reaping over
    }
    TryReap(c, pool, lcore);
  }
  uint32_t expectFree = kSlotFree;
  if (!s.state.compare_exchange_strong(expectFree, kSlotClaiming)) {
    ThrowError(env, "EBUSY",
               "slot " + std::to_string(lcore) + " of the process table is still being reaped by another process");
  }
  std::string ibName = SlotName("mpbus_ib_", lcore);
  rte_ring* inbox = rte_ring_lookup(ibName.c_str());
  if (inbox == nullptr) inbox = rte_ring_create(ibName.c_str(), c->inboxSize, SOCKET_ID_ANY, kInboxFlags);
  std::string mtName = SlotName("mpbus_mt_", lcore);
  const rte_memzone* mt = rte_memzone_lookup(mtName.c_str());
  if (mt == nullptr)
    mt = rte_memzone_reserve_aligned(mtName.c_str(), sizeof(MailboxEntry) * kMaxMailboxesPerProcess, SOCKET_ID_ANY, 0,
                                     RTE_CACHE_LINE_SIZE);
  if (inbox == nullptr || mt == nullptr) {
    int e = rte_errno;
    s.state.store(kSlotFree);
    ThrowError(env, ErrnoName(e), "cannot create this process's inbox: " + ErrnoText(e), e);
  }
  auto* table = static_cast<MailboxEntry*>(mt->addr);
  memset(static_cast<void*>(table), 0, sizeof(MailboxEntry) * kMaxMailboxesPerProcess);
  DrainAndFree(c, pool, inbox, lcore);

  auto* a = new Attachment();
  a->ctl = c;
  a->pool = pool;
  a->poolMz = poolMz;
  a->slot = lcore;
  a->inbox = inbox;
  {
    // The CPUs this process may run on (taskset, cgroups), not the machine's.
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                         : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    a->cpus = n > 0 ? static_cast<uint32_t>(n) : 1;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    a->onlineCpus = online > 0 ? static_cast<uint32_t>(online) : a->cpus;
    a->loadavgFd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  }
  a->table = table;
  a->out = out.Data();
  a->outRef = Napi::Persistent(out);
  a->large = Napi::Persistent(Napi::Array::New(env));
  a->wake = Napi::ThreadSafeFunction::New(env, o.Get("onWake").As<Napi::Function>(), "mpbus-doorbell", 0, 1);
  a->wake.Unref(env);

  s.pid = getpid();
  s.role = role;
  s.startTime = ProcessStartTime(getpid());
  s.inbox = inbox;
  s.mailboxTable = table;
  s.parked.store(0);
  for (auto& w : s.roomWanted) w.store(0);
  s.heartbeatMs.store(NowMs());
  uint32_t generation = (s.generation.load() + 1) & 0xffffff;  // 24 bits: the registry packs it so
  if (generation == 0) generation = 1;
  s.generation.store(generation);
  a->generation = generation;
  s.state.store(kSlotAlive, std::memory_order_release);
  a->waker = std::thread(WakerMain, a);
  gAtt = a;
  static bool hooked = false;
  if (!hooked) {
    napi_add_env_cleanup_hook(env, CleanupHook, nullptr);
    hooked = true;
  }

  Napi::Object r = Napi::Object::New(env);
  r.Set("slot", lcore);
  r.Set("generation", a->generation);
  r.Set("pool", Napi::ArrayBuffer::New(env, poolMz->addr, poolMz->len));
  r.Set("maxInline", c->eltSize - static_cast<uint32_t>(sizeof(BufferHeader)));
  r.Set("burst", kBurst);
  r.Set("poolBuffers", c->count);
  r.Set("inboxSize", c->inboxSize);
  return r;
}

Napi::Value MbxDetach(const Napi::CallbackInfo& info) {
  if (gAtt == nullptr) return info.Env().Undefined();
  Attachment* a = gAtt;
  gAtt = nullptr;
  if (EalReady())
    Detach(a);
  else
    StopWaker(a);
  if (a->loadavgFd >= 0) close(a->loadavgFd);
  delete a;
  return info.Env().Undefined();
}

// mbxOpen(capacity) -> mailbox id
Napi::Value MbxOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  uint32_t capacity = info[0].As<Napi::Number>().Uint32Value();
  uint32_t index;
  if (!a.freeIndexes.empty()) {
    index = a.freeIndexes.back();
    a.freeIndexes.pop_back();
  } else if (a.nextIndex < kMaxMailboxesPerProcess) {
    index = a.nextIndex++;
  } else {
    ThrowError(env, "ENOSPC",
               "this process has " + std::to_string(kMaxMailboxesPerProcess) +
                   " mailboxes open, the most one process can have: close some");
  }
  if (++a.sequence == 0) a.sequence = 1;
  uint32_t id = (static_cast<uint32_t>(a.sequence) << 16) | index;
  MailboxEntry& e = a.table[index];
  e.pending.store(0);
  e.capacity.store(capacity);
  e.hold.store(1);
  e.id.store(id, std::memory_order_release);
  return Napi::Number::New(env, id);
}

// mbxClose(id): senders holding the id get "closed" from now on.
Napi::Value MbxClose(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  MailboxEntry& e = a.table[id & 0xffff];
  uint32_t expected = id;
  if (e.id.compare_exchange_strong(expected, 0)) a.freeIndexes.push_back(id & 0xffff);
  return info.Env().Undefined();
}

// The first four arguments of mbxSend and mbxSendMany: where a message goes, and its codec.
struct SendTarget {
  uint32_t slot;
  uint32_t generation;
  uint32_t mailboxId;
  uint16_t codec;
};

SendTarget ReadSendTarget(const Napi::CallbackInfo& info) {
  return {info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
          info[2].As<Napi::Number>().Uint32Value(),
          static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value() & kCodecMask)};
}

// Fills a buffer the sender holds (flags and largeIndex set by the caller): header and payload.
// PublishBuffer then hands it to the receiver.
void WriteMessage(BufferHeader* h, const SendTarget& to, uint32_t senderSlot, const uint8_t* data, uint32_t length) {
  h->magic = kBufferMagic;
  h->version = kBufferVersion;
  h->length = length;
  h->mailboxId = to.mailboxId;
  h->senderSlot = senderSlot;
  h->reserved = 0;
  memcpy(reinterpret_cast<uint8_t*>(h) + sizeof(BufferHeader), data, length);
}

// A pool buffer taken for writing (TakeBuffer), or nullptr when the pool is empty. A buffer the
// pool held twice is dropped and another one asked for (a few times).
BufferHeader* TakeFromPool(Attachment& a, uint32_t* generation) {
  for (int tries = 0; tries < 4; tries++) {
    void* obj;
    if (rte_mempool_get(a.pool, &obj) != 0) return nullptr;
    int32_t g = TakeBuffer(a.ctl, static_cast<BufferHeader*>(obj), a.slot);
    if (g >= 0) {
      *generation = static_cast<uint32_t>(g);
      return static_cast<BufferHeader*>(obj);
    }
  }
  return nullptr;
}

// Takes the buffers of a bulk get for writing: keeps those TakeBuffer gives us, in order, with
// their generations; returns how many.
uint32_t TakeBulk(Control* c, void** objs, uint32_t n, uint32_t slot, uint32_t* generations) {
  // The words were last written by their receivers: fetch the lines together, not one CAS at a time.
  for (uint32_t i = 0; i < n; i++) __builtin_prefetch(objs[i], 1, 3);
  uint32_t taken = 0;
  for (uint32_t i = 0; i < n; i++) {
    int32_t g = TakeBuffer(c, static_cast<BufferHeader*>(objs[i]), slot);
    if (g < 0) continue;
    objs[taken] = objs[i];
    generations[taken++] = static_cast<uint32_t>(g);
  }
  return taken;
}

// Returns pool buffers (addresses or descriptors) that `slot` holds as `holder` and did not send.
void ReturnUnsent(Attachment& a, void** objs, uint32_t n, uint32_t holder, uint32_t slot) {
  uint32_t kept = 0;
  for (uint32_t i = 0; i < n; i++) {
    auto* h = reinterpret_cast<BufferHeader*>(reinterpret_cast<uint64_t>(objs[i]) & kDescriptorAddressMask);
    if (ReleaseOwnership(a.ctl, h, holder, slot)) objs[kept++] = h;
  }
  if (kept > 0) rte_mempool_put_bulk(a.pool, objs, kept);
}

// The receiving process's inbox and the target mailbox's entry; nullptr entry and a SendStatus
// when the process is gone or the mailbox closed.
struct ResolvedTarget {
  PeerCache* peer = nullptr;
  MailboxEntry* entry = nullptr;
  int32_t status = kSendOk;
};

ResolvedTarget Resolve(Attachment& a, const SendTarget& to) {
  ResolvedTarget r;
  r.peer = Peer(a, to.slot, to.generation);
  if (r.peer == nullptr) {
    r.status = kSendPeerGone;
    return r;
  }
  MailboxEntry& e = r.peer->table[to.mailboxId & 0xffff];
  if (e.id.load(std::memory_order_acquire) != to.mailboxId) {
    r.status = kSendMailboxClosed;
    return r;
  }
  r.entry = &e;
  return r;
}

// mbxSend(slot, generation, mailboxId, codec, bytes: Uint8Array, start, end) -> SendStatus
Napi::Value MbxSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  const SendTarget to = ReadSendTarget(info);
  Napi::Uint8Array bytes = info[4].As<Napi::Uint8Array>();
  size_t start = info[5].As<Napi::Number>().Uint32Value();
  size_t end = info[6].As<Napi::Number>().Int64Value();
  if (end > bytes.ElementLength() || start > end) ThrowError(env, "ERANGE", "send range outside the byte array");
  const uint8_t* data = bytes.Data() + start;
  size_t len = end - start;
  if (len > UINT32_MAX - sizeof(BufferHeader)) ThrowError(env, "EMSGSIZE", "message larger than 4 GiB");

  Control* c = a.ctl;
  const ResolvedTarget target = Resolve(a, to);
  if (target.entry == nullptr) return Napi::Number::New(env, target.status);
  PeerCache* peer = target.peer;
  MailboxEntry& e = *target.entry;
  if (e.pending.fetch_add(1) >= e.capacity.load()) {
    e.pending.fetch_sub(1);
    return Napi::Number::New(env, kSendMailboxFull);
  }
  BufferHeader* h = nullptr;
  int32_t largeIndex = -1;
  uint32_t generation = 0;
  if (len <= c->eltSize - sizeof(BufferHeader)) {
    h = TakeFromPool(a, &generation);
    if (h == nullptr) {
      e.pending.fetch_sub(1);
      return Napi::Number::New(env, kSendNoBuffers);
    }
    h->flags = to.codec;
    h->largeIndex = 0;
  } else {
    for (uint32_t i = 0; i < kMaxLarge && largeIndex < 0; i++) {
      uint32_t st = kLargeFree;
      if (c->large[i].state.compare_exchange_strong(st, kLargeWriting)) largeIndex = static_cast<int32_t>(i);
    }
    void* block = largeIndex < 0 ? nullptr
                                 : rte_malloc_socket("mpbus_large", sizeof(BufferHeader) + len, RTE_CACHE_LINE_SIZE,
                                                     SOCKET_ID_ANY);
    if (block != nullptr && (reinterpret_cast<uint64_t>(block) & ~kDescriptorAddressMask) != 0) {
      rte_free(block);  // an address a descriptor cannot carry (not seen on x86-64 or arm64)
      block = nullptr;
    }
    if (block == nullptr) {
      if (largeIndex >= 0) c->large[largeIndex].state.store(kLargeFree);
      e.pending.fetch_sub(1);
      return Napi::Number::New(env, kSendNoBuffers);
    }
    LargeEntry& le = c->large[largeIndex];
    generation = (le.generation + 1) & 0xffff;
    le.generation = generation;
    le.senderSlot = a.slot;
    le.receiverSlot = to.slot;
    le.bytes = sizeof(BufferHeader) + len;
    le.ptr.store(reinterpret_cast<uint64_t>(block));
    h = static_cast<BufferHeader*>(block);
    h->owner.store(OwnerWord(generation, kHolderWriting, a.slot),
                   std::memory_order_relaxed);  // a new block: ours alone
    h->flags = to.codec | kFlagLarge;
    h->largeIndex = static_cast<uint32_t>(largeIndex);
  }
  WriteMessage(h, to, a.slot, data, static_cast<uint32_t>(len));
  if (largeIndex >= 0) c->large[largeIndex].state.store(kLargeEnqueued, std::memory_order_release);
  PublishBuffer(h, generation, to.slot);
  if (rte_ring_enqueue(peer->inbox,
                       reinterpret_cast<void*>(MakeDescriptor(reinterpret_cast<uint64_t>(h), generation))) != 0) {
    if (largeIndex >= 0)
      FreeLarge(c, static_cast<uint32_t>(largeIndex), kLargeEnqueued);
    else
      ReturnToPool(c, a.pool, h, kHolderInFlight, to.slot);
    e.pending.fetch_sub(1);
    return Napi::Number::New(env, kSendInboxFull);
  }
  // Dekker with the receiver's park(): it sets parked then re-checks the ring; we enqueue then
  // check parked. One of the two sees the other; only a parked receiver costs a syscall.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeIfParked(c->slots[to.slot]);
  return Napi::Number::New(env, kSendOk);
}

// Processes of the group whose receiver is not parked (they spin or work).
uint32_t AwakeProcesses(Control* c);

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

// Whether waiting should sleep on a doorbell rather than spin or yield: more of the group's
// processes are awake than this process has CPUs, or more tasks of any program are runnable
// than the machine has CPUs (other programs' busy processes count too: a worker spinning on a
// machine busy with other work took 53-55% of its CPU samples in the drain and slowed its own
// caller). Recomputed at most every millisecond (a scan of the process table and one pread).
bool Crowded(Attachment& a) {
  uint64_t now = NowUs();
  if (now - a.crowdedAtUs >= 1000) {
    a.crowded = AwakeProcesses(a.ctl) > a.cpus || RunnableTasks(a.loadavgFd) > a.onlineCpus;
    a.crowdedAtUs = now;
  }
  return a.crowded;
}

// Processes of the group whose receiver is not parked (they spin or work).
uint32_t AwakeProcesses(Control* c) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < kMaxSlots; i++) {
    ProcSlot& s = c->slots[i];
    n += s.state.load(std::memory_order_relaxed) == kSlotAlive && s.parked.load(std::memory_order_relaxed) == 0;
  }
  return n;
}

// Drained messages of one of our mailboxes stop counting as pending (unless it holds them).
// Returns true when it released room (a seq_cst read-modify-write, which WakeRoomWaiters relies on).
bool ReleasePending(Attachment& a, uint32_t id, uint32_t count) {
  if (count == 0) return false;
  MailboxEntry& e = a.table[id & 0xffff];
  if (e.id.load(std::memory_order_relaxed) != id || e.hold.load(std::memory_order_relaxed) != 0) return false;
  uint32_t pending = e.pending.load();
  while (!e.pending.compare_exchange_weak(pending, pending > count ? pending - count : 0)) {
  }
  return true;
}

// mbxSendMany(slot, generation, mailboxId, codec, bytes: Uint8Array, bounds: Uint32Array, count)
//   -> how many of the first `count` messages were sent (they keep their order). Message i is
//   bytes[bounds[2i] .. bounds[2i+1]) (msgpackr word-aligns where each packed value starts, so
//   messages need not touch); each must fit one pool buffer. One crossing, one capacity
//   reservation, one bulk buffer get and one ring enqueue for the whole batch.
//   Negative results are a SendStatus for nothing sent (-kSendMailboxFull, ...).
Napi::Value MbxSendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  const SendTarget to = ReadSendTarget(info);
  Napi::Uint8Array bytes = info[4].As<Napi::Uint8Array>();
  Napi::Uint32Array bounds = info[5].As<Napi::Uint32Array>();
  uint32_t count = std::min<uint32_t>(info[6].As<Napi::Number>().Uint32Value(), kBurst);
  if (count * 2 > bounds.ElementLength()) ThrowError(env, "ERANGE", "more messages than message bounds");
  Control* c = a.ctl;
  const size_t maxInline = c->eltSize - sizeof(BufferHeader);
  for (uint32_t i = 0; i < count; i++) {
    uint32_t start = bounds[2 * i], end = bounds[2 * i + 1];
    if (end < start || end > bytes.ElementLength() || end - start > maxInline)
      ThrowError(env, "ERANGE", "a batched message is out of range or larger than one buffer");
  }
  if (count == 0) return Napi::Number::New(env, 0);
  const ResolvedTarget target = Resolve(a, to);
  if (target.entry == nullptr) return Napi::Number::New(env, -target.status);
  PeerCache* peer = target.peer;
  MailboxEntry& e = *target.entry;
  // Reserve room for as many as the capacity allows.
  uint32_t capacity = e.capacity.load();
  uint32_t before = e.pending.fetch_add(count);
  uint32_t room = before >= capacity ? 0 : std::min(count, capacity - before);
  if (room < count) e.pending.fetch_sub(count - room);
  if (room == 0) return Napi::Number::New(env, -kSendMailboxFull);
  void* objs[kBurst];
  uint32_t generations[kBurst];
  uint32_t got = room;
  while (got > 0 && rte_mempool_get_bulk(a.pool, objs, got) != 0) got /= 2;
  got = TakeBulk(c, objs, got, a.slot, generations);
  if (got < room) e.pending.fetch_sub(room - got);
  if (got == 0) return Napi::Number::New(env, -kSendNoBuffers);
  const uint8_t* data = bytes.Data();
  for (uint32_t i = 0; i < got; i++) {
    uint32_t start = bounds[2 * i], length = bounds[2 * i + 1] - start;
    auto* h = static_cast<BufferHeader*>(objs[i]);
    h->flags = to.codec;
    h->largeIndex = 0;
    WriteMessage(h, to, a.slot, data + start, length);
    PublishBuffer(h, generations[i], to.slot);
    objs[i] = reinterpret_cast<void*>(MakeDescriptor(reinterpret_cast<uint64_t>(h), generations[i]));
  }
  unsigned sent = rte_ring_enqueue_burst(peer->inbox, objs, got, nullptr);
  if (sent < got) {
    ReturnUnsent(a, objs + sent, got - sent, kHolderInFlight, to.slot);
    e.pending.fetch_sub(got - sent);
  }
  if (sent == 0) return Napi::Number::New(env, -kSendInboxFull);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeIfParked(c->slots[to.slot]);
  return Napi::Number::New(env, sent);
}

// mbxDrain(spinUs) -> n descriptors written to the output array:
//   [mailboxId, payload offset in the pool ArrayBuffer (or index in mbxTakeLarge()), length,
//    codec | large<<4 | bad<<8 | senderSlot<<16]
Napi::Value MbxDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  uint32_t spinUs = info[0].As<Napi::Number>().Uint32Value();
  ReleaseHeld(a);
  void* burst[kBurst];
  unsigned n = rte_ring_sc_dequeue_burst(a.inbox, burst, kBurst, nullptr);
  if (n == 0 && spinUs > 0) {
    // More awake receivers than CPUs: spinning only takes the CPU from the senders we wait for.
    if (!Crowded(a)) {
      // Look at the ring after every pause: a pause is ~22 ns here, and checking only every 32
      // of them made each hop wait ~360 ns on average before a message was even seen
      // (bench/profile-mailbox.ts). The clock is read only every 16 pauses.
      uint64_t deadline = NowUs() + spinUs;
      for (unsigned i = 1; rte_ring_count(a.inbox) == 0; i++) {
        rte_pause();
        if ((i & 15) == 0 && NowUs() >= deadline) break;
      }
      n = rte_ring_sc_dequeue_burst(a.inbox, burst, kBurst, nullptr);
    }
    // Yield after every empty spin: when the process we wait for shares our CPU, it can only
    // answer while we do not run (when nothing else wants the CPU, sched_yield returns at once).
    // Yielding only after 8 empty spins in a row made such round trips take ~200 µs (the p99 of
    // the encoded rows); now ~10 µs.
    if (n == 0) sched_yield();
  }
  Control* c = a.ctl;
  Napi::Array large;
  uint32_t nLarge = 0;
  uint32_t runId = 0, runLength = 0;
  bool released = false;
  for (unsigned i = 0; i < n; i++) {
    uint64_t p = reinterpret_cast<uint64_t>(burst[i]);
    Checked k = Check(c, p, a.slot);
    uint32_t* o = a.out + i * kOutWords;
    if (k.bad != kBadNone) {
      FreeChecked(c, a.pool, k);
      o[0] = 0;
      o[1] = static_cast<uint32_t>(p);
      o[2] = static_cast<uint32_t>(p >> 32);
      o[3] = k.bad << 8;
      continue;
    }
    BufferHeader* h = k.header;
    uint32_t id = h->mailboxId;
    // Pending counts drop once per run of messages to one mailbox, not once per message: the
    // counter's cache line is shared with the senders, and a burst is mostly one mailbox.
    if (id != runId) {
      released |= ReleasePending(a, runId, runLength);
      runId = id;
      runLength = 0;
    }
    runLength++;
    o[0] = id;
    o[2] = h->length;
    o[3] = (h->flags & kCodecMask) | ((h->flags & kFlagLarge) ? 1u << 4 : 0) | ((h->senderSlot & 0xff) << 16);
    if (k.large) {
      if (large.IsEmpty()) large = Napi::Array::New(env);
      large.Set(nLarge,
                Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(h) + sizeof(BufferHeader), h->length));
      o[1] = nLarge++;
      FreeChecked(c, a.pool, k);
    } else {
      o[1] = static_cast<uint32_t>(reinterpret_cast<uint64_t>(h) + sizeof(BufferHeader) - c->poolBase);
      ProcSlot& self = c->slots[a.slot];
      uint32_t k = self.heldCount.load(std::memory_order_relaxed);
      self.held[k] = reinterpret_cast<uint64_t>(h);
      self.heldCount.store(k + 1, std::memory_order_release);
    }
  }
  released |= ReleasePending(a, runId, runLength);
  if (n > 0) WakeRoomWaiters(c, c->slots[a.slot], released);
  if (nLarge > 0) a.large = Napi::Persistent(large);
  return Napi::Number::New(env, n);
}

Napi::Value MbxTakeLarge(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  Napi::Value v = a.large.Value();
  a.large = Napi::Persistent(Napi::Array::New(info.Env()));
  return v;
}

// mbxPark() -> true when parked (the doorbell thread will call onWake), false when messages wait.
Napi::Value MbxPark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  ReleaseHeld(a);
  ProcSlot& s = a.ctl->slots[a.slot];
  uint32_t seen = s.doorbell.load(std::memory_order_acquire);
  s.parked.store(1);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (rte_ring_count(a.inbox) > 0) {
    s.parked.store(0);
    return Napi::Boolean::New(env, false);
  }
  {
    std::lock_guard<std::mutex> lock(a.mu);
    a.armed = true;
    a.armedSeen = seen;
  }
  a.cv.notify_one();
  return Napi::Boolean::New(env, true);
}

// mbxWantRoom(slot, generation, mailboxId) -> true when there is room already (send again now),
// false when the process in `slot` will ring this process's doorbell when it next makes room
// (drains its inbox or consumes held messages); then park. The mark is set before the check, so
// room made in between is never missed (Dekker with WakeRoomWaiters).
Napi::Value MbxWantRoom(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  uint32_t slot = info[0].As<Napi::Number>().Uint32Value();
  PeerCache* peer = Peer(a, slot, info[1].As<Napi::Number>().Uint32Value());
  uint32_t id = info[2].As<Napi::Number>().Uint32Value();
  if (peer == nullptr) return Napi::Boolean::New(env, true);  // gone: the next send reports it
  a.ctl->slots[slot].roomWanted[a.slot / 64].fetch_or(uint64_t{1} << (a.slot % 64));
  MailboxEntry& e = peer->table[id & 0xffff];
  bool room = e.id.load() != id || e.pending.load() < e.capacity.load(std::memory_order_relaxed);
  room = room && rte_ring_free_count(peer->inbox) > 0 && rte_mempool_avail_count(a.pool) > 0;
  return Napi::Boolean::New(env, room);
}

// mbxCrowded() -> true when more of the group's processes are awake (not parked) than there
// are CPUs: then waiting should sleep on a doorbell rather than spin or yield.
Napi::Value MbxCrowded(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  return Napi::Boolean::New(info.Env(), Crowded(a));
}

// mbxKeepAlive(bool): whether the parked doorbell keeps the event loop (the process) alive.
Napi::Value MbxKeepAlive(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  if (info[0].ToBoolean())
    a.wake.Ref(info.Env());
  else
    a.wake.Unref(info.Env());
  return info.Env().Undefined();
}

// mbxAdjust(id, delta): changes the pending count of one of this process's mailboxes, for
// messages the process keeps queued itself after draining (they still count against capacity).
Napi::Value MbxAdjust(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int32_t delta = info[1].As<Napi::Number>().Int32Value();
  MailboxEntry& e = a.table[id & 0xffff];
  if (e.id.load() != id) return info.Env().Undefined();
  if (delta >= 0) {
    e.pending.fetch_add(static_cast<uint32_t>(delta));
  } else {
    uint32_t cur = e.pending.load();
    uint32_t want;
    do {
      want = cur > static_cast<uint32_t>(-delta) ? cur + delta : 0;
    } while (!e.pending.compare_exchange_weak(cur, want));
    WakeRoomWaiters(a.ctl, a.ctl->slots[a.slot], true);
  }
  return info.Env().Undefined();
}

// mbxSetHold(id, hold): while held (no subscriber), drained messages stay counted as pending.
Napi::Value MbxSetHold(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info.Env());
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  MailboxEntry& e = a.table[id & 0xffff];
  if (e.id.load() == id) e.hold.store(info[1].ToBoolean() ? 1 : 0);
  return info.Env().Undefined();
}

// mbxDepth(slot, generation, mailboxId) -> pending messages, or -1 when the mailbox is gone.
Napi::Value MbxDepth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  PeerCache* peer = Peer(a, info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value());
  uint32_t id = info[2].As<Napi::Number>().Uint32Value();
  if (peer == nullptr) return Napi::Number::New(env, -1);
  MailboxEntry& e = peer->table[id & 0xffff];
  if (e.id.load() != id) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, e.pending.load());
}

// mbxScan() -> { alive: [{slot, pid, generation, role, startTime, self}], reaped: [{slot, pid, generation}] }
// Reaps slots whose process is dead (SIGKILL included): the first process to notice does it.
Napi::Value MbxScan(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
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
  return Napi::String::New(info.Env(), SlotName("mpbus_ib_", info[0].As<Napi::Number>().Uint32Value()));
}

// mbxPoolInfo() -> { firstObject, stride, count, poolBase, available, largeInUse, takeConflicts,
//   freeConflicts } (tests and stats)
Napi::Value MbxPoolInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(env);
  Napi::Object r = Napi::Object::New(env);
  r.Set("firstObject", Napi::BigInt::New(env, a.ctl->firstObject));
  r.Set("poolBase", Napi::BigInt::New(env, a.ctl->poolBase));
  r.Set("stride", a.ctl->stride);
  r.Set("count", a.ctl->count);
  r.Set("available", rte_mempool_avail_count(a.pool));
  unsigned largeInUse = 0;
  for (uint32_t i = 0; i < kMaxLarge; i++) largeInUse += a.ctl->large[i].state.load() != kLargeFree;
  r.Set("largeInUse", largeInUse);
  r.Set("takeConflicts", static_cast<double>(a.ctl->takeConflicts.load()));
  r.Set("freeConflicts", static_cast<double>(a.ctl->freeConflicts.load()));
  return r;
}

void InitMailbox(Napi::Env env, Napi::Object exports) {
  exports.Set("mbxAttach", Napi::Function::New(env, MbxAttach));
  exports.Set("mbxDetach", Napi::Function::New(env, MbxDetach));
  exports.Set("mbxOpen", Napi::Function::New(env, MbxOpen));
  exports.Set("mbxClose", Napi::Function::New(env, MbxClose));
  exports.Set("mbxSend", Napi::Function::New(env, MbxSend));
  exports.Set("mbxSendMany", Napi::Function::New(env, MbxSendMany));
  exports.Set("mbxDrain", Napi::Function::New(env, MbxDrain));
  exports.Set("mbxTakeLarge", Napi::Function::New(env, MbxTakeLarge));
  exports.Set("mbxPark", Napi::Function::New(env, MbxPark));
  exports.Set("mbxKeepAlive", Napi::Function::New(env, MbxKeepAlive));
  exports.Set("mbxWantRoom", Napi::Function::New(env, MbxWantRoom));
  exports.Set("mbxCrowded", Napi::Function::New(env, MbxCrowded));
  exports.Set("mbxDepth", Napi::Function::New(env, MbxDepth));
  exports.Set("mbxAdjust", Napi::Function::New(env, MbxAdjust));
  exports.Set("mbxSetHold", Napi::Function::New(env, MbxSetHold));
  exports.Set("mbxScan", Napi::Function::New(env, MbxScan));
  exports.Set("mbxInboxName", Napi::Function::New(env, MbxInboxName));
  exports.Set("mbxPoolInfo", Napi::Function::New(env, MbxPoolInfo));
}

}  // namespace

Control* AttachedControl() { return gControl; }

uint64_t ProcessStartTime(int32_t pid) {
  char state;
  uint64_t start = 0;
  return ReadStat(pid, &state, &start) ? start : 0;
}

bool ProcessAlive(int32_t pid, uint64_t startTime) {
  if (pid <= 0) return false;
  char state;
  uint64_t start = 0;
  if (!ReadStat(pid, &state, &start)) return false;
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

MPBUS_FACILITY(InitMailbox);
}  // namespace mpbus
