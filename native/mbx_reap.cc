// Reaping: cleaning up after a process of the group that left or died (SIGKILL included), so
// nothing it held stays lost: its names, the messages left on its inbox, its mailbox table, the
// pool buffers it was writing or reading, its lcore's mempool cache, its large blocks and the
// room a send of its had reserved in another process's mailbox.
#include <unistd.h>

#include "common.h"
#include "mbx.h"
#include "mbx_ownership.h"

namespace mpbus {
namespace mbx {

// Frees everything left on an inbox ring (its owner is dead or is starting afresh).
void DrainAndFree(Control* c, rte_mempool* pool, rte_ring* ring, uint32_t slot) {
  void* burst[kBurst];
  unsigned n;
  while ((n = rte_ring_dequeue_burst(ring, burst, kBurst, nullptr)) > 0) {
    for (unsigned i = 0; i < n; i++) FreeChecked(c, pool, Check(c, reinterpret_cast<uint64_t>(burst[i]), slot));
  }
}

namespace {

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

// Gives back the room a process that died inside a send had reserved in a receiver's pending
// count (ProcSlot::reservation): no message will ever be drained for it. Saturating, as the
// receiver's own release is: a death just after the messages reached the ring gives back
// too much for a while, which their drain then clamps at 0.
void GiveBackRoom(Control* c, ProcSlot& s) {
  uint32_t r = s.reservation.exchange(0);
  if (r == 0) return;
  uint32_t toSlot = r & 0xff, count = r >> 8, id = s.reservedMailbox.load();
  if (toSlot >= kMaxSlots) return;
  const rte_memzone* mz = rte_memzone_lookup(SlotName("mpbus_mt_", toSlot).c_str());
  if (mz == nullptr) return;
  MailboxEntry& e = static_cast<MailboxEntry*>(mz->addr)[id & 0xffff];
  if (e.id.load() != id) return;  // closed (or its process gone) since: nothing counts any more
  uint32_t cur = e.pending.load();
  while (!e.pending.compare_exchange_weak(cur, cur > count ? cur - count : 0)) {
  }
  WakeRoomWaiters(c, c->slots[toSlot], true);
}

}  // namespace

// Cleans up after a process that left or died: its names, its inbox, its mailbox table, and
// large blocks it was writing. The caller has moved the slot to kSlotReaping.
void ReapSlot(Control* c, rte_mempool* pool, uint32_t slot, uint32_t reason) {
  ProcSlot& s = c->slots[slot];
  uint32_t gen = s.generation.load();
  GiveBackRoom(c, s);
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
  for (uint32_t i = 0; i < kMaxLargeBlocks; i++) {
    LargeEntry& e = c->large[i];
    uint32_t st = e.state.load();
    if (st == LargeWritingBy(slot) || (st == kLargeEnqueued && e.receiverSlot == slot)) FreeLargeBlock(c, i, st);
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

}  // namespace mbx
}  // namespace mpbus
