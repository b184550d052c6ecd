// The group's large blocks: where a message longer than a pool buffer is written. New blocks are
// carved from one arena the group reserves once; a block stays with its entry of the control
// block's table when its message is done, and the next large message that fits takes it again,
// so large messages make no call into DPDK's heap past the first. Why: rte_malloc/rte_free take
// the heap's locks (spinlocks in shared memory, held for good by a process killed inside them)
// and, when the group's memory is not preallocated, map or unmap hugepages and wait up to 5 s
// for every process's rte_mp reply (docs/mailboxes.md, "Large messages" and "Process death").
#include <rte_malloc.h>
#include <rte_memory.h>

#include <algorithm>
#include <atomic>

#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// Blocks are sized in quarter steps between powers of two (4, 5, 6, 7 x 2^k bytes), at least
// 4 KiB: a size at most a quarter larger than asked for, and few distinct sizes to reuse.
constexpr uint64_t kSmallestBlock = 4096;
// The group's large blocks, in use and kept, stay within this many bytes: past it a sender takes
// room from kept blocks of other sizes (freeing them), or waits ('no-buffers') while the blocks
// are in use, rather than growing the heap. Under a steady flow the heap is then left alone
// however far receivers lag. A message larger than this still goes (TakeLargeBlock).
constexpr uint64_t kLargeBytes = 64ull << 20;
// Blocks larger than this are neither rounded to a quarter step nor kept: they go back to the
// heap when their message is done.
constexpr uint64_t kLargestKept = kLargeBytes / 2;

std::atomic<uint64_t> heapCalls{0};

uint64_t BlockSize(uint64_t bytes) {
  if (bytes <= kSmallestBlock) return kSmallestBlock;
  if (bytes > kLargestKept) return (bytes + kSmallestBlock - 1) & ~(kSmallestBlock - 1);
  const unsigned top = 63 - static_cast<unsigned>(__builtin_clzll(bytes - 1));
  const uint64_t step = 1ull << (top - 2);
  return (bytes + step - 1) & ~(step - 1);
}

// A kept block serves a message it holds without wasting more than the message's own size.
bool Fits(uint64_t blockBytes, uint64_t bytes) { return blockBytes >= bytes && blockBytes - bytes <= bytes; }

// Another process wrote the entry: use its block only if the address is one a descriptor can
// carry and lies in the group's DPDK memory (docs/mailboxes.md, threat model).
bool Plausible(uint64_t p) {
  return p != 0 && (p & ~kDescriptorAddressMask) == 0 && p % RTE_CACHE_LINE_SIZE == 0 &&
         rte_mem_virt2memseg_list(reinterpret_cast<void*>(p)) != nullptr;
}

void HeapFree(uint64_t p) {
  rte_free(reinterpret_cast<void*>(p));
  heapCalls.fetch_add(1, std::memory_order_relaxed);
}

// Claims a free entry for `slot` (-> LargeWritingBy) that `want` accepts (its kept block, 0 for
// none); -1 if none.
template <typename Want>
int32_t ClaimEntry(Control* c, uint32_t slot, Want want) {
  for (uint32_t i = 0; i < kMaxLargeBlocks; i++) {
    LargeEntry& e = c->large[i];
    if (e.state.load(std::memory_order_relaxed) != kLargeFree) continue;
    if (!want(e.ptr.load(std::memory_order_relaxed), e.bytes)) continue;
    uint32_t st = kLargeFree;
    if (e.state.compare_exchange_strong(st, LargeWritingBy(slot))) return static_cast<int32_t>(i);
  }
  return -1;
}

bool InArena(const Control* c, uint64_t p) {
  const uint64_t base = c->arenaBase.load(std::memory_order_acquire);
  return base > kArenaFailed && p >= base && p - base < c->arenaBytes;
}

// Bytes of the group's blocks in use (taken by a sender, until their receiver is done) and kept;
// and of those in use, the bytes outside the arena (what gives the heap memory back).
struct BlockBytes {
  uint64_t inUse = 0;
  uint64_t kept = 0;
  uint64_t inUseOfHeap = 0;
};
BlockBytes CountBlockBytes(const Control* c) {
  BlockBytes b;
  for (const LargeEntry& e : c->large) {
    const uint64_t p = e.ptr.load(std::memory_order_relaxed);
    if (p == 0) continue;
    if (e.state.load(std::memory_order_relaxed) == kLargeFree) {
      b.kept += e.bytes;
      continue;
    }
    b.inUse += e.bytes;
    if (!InArena(c, p)) b.inUseOfHeap += e.bytes;
  }
  return b;
}

// Frees the block of an entry the caller claimed (not one of the arena's, which stay with their
// entries for good); returns its size.
uint64_t DropKept(const Control* c, LargeEntry& e) {
  const uint64_t p = e.ptr.load();
  if (p == 0 || InArena(c, p)) return 0;
  e.ptr.store(0);
  if (Plausible(p)) HeapFree(p);
  return e.bytes;
}

// Claims an entry whose kept block is the heap's (not the arena's): its index, or -1.
int32_t ClaimKeptOfHeap(Control* c, uint32_t senderSlot) {
  return ClaimEntry(c, senderSlot, [c](uint64_t p, uint64_t) { return p != 0 && !InArena(c, p); });
}

// Claims each kept block of the heap and frees it: how many.
uint32_t DropKeptHeapBlocks(Control* c, uint32_t senderSlot) {
  uint32_t dropped = 0;
  for (;;) {
    const int32_t kept = ClaimKeptOfHeap(c, senderSlot);
    if (kept < 0) return dropped;
    dropped += DropKept(c, c->large[kept]) > 0;
    c->large[kept].state.store(kLargeFree, std::memory_order_release);
  }
}

// A block of `size` from DPDK's heap, or nullptr (none to be had, or at an address a descriptor
// cannot carry).
void* HeapBlock(uint64_t size) {
  void* block = rte_malloc_socket("mpbus_large", size, RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY);
  heapCalls.fetch_add(1, std::memory_order_relaxed);
  if (block != nullptr && !Plausible(reinterpret_cast<uint64_t>(block))) {
    HeapFree(reinterpret_cast<uint64_t>(block));
    block = nullptr;
  }
  return block;
}

// When this process may next try to reserve an arena that could not be had (kArenaFailed).
uint64_t arenaRetryAtMs = 0;

// A new block of `size` carved from the group's arena, which the first caller reserves (one heap
// call for the group instead of one per block: every heap call is a moment in which a killed
// process can leave DPDK's locks taken). 0 when there is no arena (being reserved by another
// process, or none could be had) or no room left in it: then the block comes from the heap.
uint64_t CarveFromArena(Control* c, uint64_t size) {
  uint64_t base = c->arenaBase.load(std::memory_order_acquire);
  // A reservation that failed (the hugepages were short then) is tried again, at most once a
  // second by each process: memory freed since may hold it, and without it every large block
  // is a heap call.
  const bool retry = base == kArenaFailed && NowMs() >= arenaRetryAtMs;
  if (base == kArenaNone || retry) {
    if (c->arenaBase.compare_exchange_strong(base, kArenaReserving)) {
      void* arena = rte_malloc_socket("mpbus_large_arena", kLargeBytes, RTE_CACHE_LINE_SIZE, SOCKET_ID_ANY);
      heapCalls.fetch_add(1, std::memory_order_relaxed);
      if (arena != nullptr && !Plausible(reinterpret_cast<uint64_t>(arena))) {
        HeapFree(reinterpret_cast<uint64_t>(arena));
        arena = nullptr;
      }
      if (arena == nullptr) arenaRetryAtMs = NowMs() + 1000;
      c->arenaBytes = arena != nullptr ? kLargeBytes : 0;
      c->arenaBase.store(arena != nullptr ? reinterpret_cast<uint64_t>(arena) : kArenaFailed,
                         std::memory_order_release);
    } else if (retry) {
      arenaRetryAtMs = NowMs() + 1000;  // another process is trying, or has it
    }
    base = c->arenaBase.load(std::memory_order_acquire);
  }
  if (base <= kArenaFailed || !Plausible(base) || c->arenaBytes > kLargeBytes) return 0;
  const uint64_t offset = c->arenaUsed.fetch_add(size);
  if (offset >= c->arenaBytes || c->arenaBytes - offset < size) return 0;
  return base + offset;
}

}  // namespace

int32_t TakeLargeBlock(Control* c, uint64_t bytes, uint32_t senderSlot, uint32_t receiverSlot, uint32_t* generation) {
  // A kept block that fits tightly, else a bigger one of the arena's.
  int32_t index = ClaimEntry(c, senderSlot, [bytes](uint64_t p, uint64_t kept) { return p != 0 && Fits(kept, bytes); });
  if (index < 0)
    index = ClaimEntry(c, senderSlot, [c, bytes](uint64_t p, uint64_t kept) { return kept >= bytes && InArena(c, p); });
  if (index >= 0) {
    LargeEntry& e = c->large[index];
    if (!Plausible(e.ptr.load())) {
      e.ptr.store(0);  // not a block of the group's memory: forgotten, never written to
    } else if (e.bytes < bytes) {
      e.state.store(kLargeFree, std::memory_order_release);  // it changed between the look and
      return kLargeWait;                                     // the claim: the send tries again
    }
  } else {
    // No kept block fits: a new one, within kLargeBytes, the room taken from kept blocks.
    const uint64_t size = BlockSize(bytes);
    BlockBytes b = CountBlockBytes(c);
    // Wait for blocks in use to come back; a message larger than half the bytes waits only for
    // the others to use at most half (under a steady flow of smaller ones, none may ever be in use).
    const bool roomNow = b.inUse + size <= kLargeBytes || (size > kLargestKept && b.inUse <= kLargestKept);
    if (b.inUse > 0 && !roomNow) return kLargeWait;
    while (b.inUse + b.kept + size > kLargeBytes) {
      const int32_t kept = ClaimKeptOfHeap(c, senderSlot);
      if (kept < 0) break;
      b.kept -= std::min(b.kept, DropKept(c, c->large[kept]));
      c->large[kept].state.store(kLargeFree, std::memory_order_release);
    }
    index = ClaimEntry(c, senderSlot, [](uint64_t p, uint64_t) { return p == 0; });
    if (index < 0) return kLargeWait;  // 256 in flight
  }
  LargeEntry& e = c->large[index];
  if (e.ptr.load(std::memory_order_relaxed) == 0) {
    const uint64_t size = BlockSize(bytes);
    const uint64_t carved = size <= kLargestKept ? CarveFromArena(c, size) : 0;
    void* block = reinterpret_cast<void*>(carved);
    if (block == nullptr) block = HeapBlock(size);
    // The heap refused: hugepage memory is short (the machine's free pages, a hugetlb cgroup's
    // limit, --socket-limit). Kept blocks of the heap hold memory no message uses: given back,
    // the heap is asked once more.
    if (block == nullptr && DropKeptHeapBlocks(c, senderSlot) > 0) block = HeapBlock(size);
    if (block == nullptr) {
      e.state.store(kLargeFree, std::memory_order_release);
      // Heap blocks in use come back when their receivers are done: wait for them. With none,
      // waiting would not help (a send waited for its whole timeout, asking the heap again and
      // again): the message cannot be sent now, and the sender says why.
      return CountBlockBytes(c).inUseOfHeap > 0 ? kLargeWait : kLargeHeapShort;
    }
    e.bytes = size;
    e.ptr.store(reinterpret_cast<uint64_t>(block), std::memory_order_release);
  }
  *generation = (e.generation + 1) & 0xffff;
  e.generation = *generation;
  e.receiverSlot = receiverSlot;
  return index;
}

bool FreeLargeBlock(Control* c, uint32_t index, uint32_t state) {
  LargeEntry& e = c->large[index];
  // The block stays with its entry for the next message (kLargeBytes bounds what is kept)...
  if (e.bytes <= kLargestKept) return e.state.compare_exchange_strong(state, kLargeFree, std::memory_order_acq_rel);
  // ...unless it is one of the rare very large ones, which would pin that much hugepage memory.
  if (!e.state.compare_exchange_strong(state, kLargeFreeing)) return false;
  DropKept(c, e);
  e.state.store(kLargeFree, std::memory_order_release);
  return true;
}

uint64_t LargeHeapCalls() { return heapCalls.load(std::memory_order_relaxed); }

uint64_t LargeArenaUsed(const Control* c) {
  return c->arenaBase.load() > kArenaFailed ? std::min(c->arenaUsed.load(), c->arenaBytes) : 0;
}

uint32_t LargeBlocksKept(const Control* c) {
  uint32_t n = 0;
  for (const LargeEntry& e : c->large)
    n += e.state.load(std::memory_order_relaxed) == kLargeFree && e.ptr.load(std::memory_order_relaxed) != 0;
  return n;
}

}  // namespace mbx
}  // namespace mpbus
