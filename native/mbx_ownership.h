// The ownership protocol of message buffers (docs/mailboxes.md, "Ownership"): the compare-and-
// swap steps that move a buffer's owner word from the pool to a sender, to one receiver and
// back. Inline: every step runs once per message on the send
// and drain paths of several files (mbx_send.cc, mbx_check.cc, mbx_drain.cc, mbx_reap.cc).
#pragma once
#include <rte_mempool.h>

#include "mailbox.h"

// Hidden: these names are the addon's own, not exported from mpbus.node (calls between the
// files are then direct, not through the PLT).
#pragma GCC visibility push(hidden)
namespace mpbus {
namespace mbx {

// Who holds a buffer is its header's owner word, moved only by compare-and-swap: the pool's
// free@g -> the sender's writing@g+1 (take) -> inFlight@g to one receiver (publish) -> that
// receiver's received@g (claim) -> free@g (release, then back to the pool). The descriptor on
// the ring carries g. Whoever loses a CAS does not hold the buffer and leaves it alone, so a
// repeated, replayed or stale descriptor is refused instead of freeing a buffer twice, and a
// buffer the pool holds twice (someone put it without owning it) is handed to one taker only.
inline bool InPool(const Control* c, uint64_t p) {
  return p >= c->firstObject && p < c->firstObject + static_cast<uint64_t>(c->count) * c->stride;
}

// Takes a buffer the pool just handed out: free@g -> writing(slot)@g+1. Returns g+1, or -1 when
// the buffer is not free: the pool held it twice and someone else has it; then it is neither
// used nor put back (the conflict is counted).
inline int32_t TakeBuffer(Control* c, BufferHeader* h, uint32_t slot) {
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
inline void PublishBuffer(BufferHeader* h, uint32_t generation, uint32_t receiver) {
  h->owner.store(OwnerWord(generation, kHolderInFlight, receiver), std::memory_order_release);
}

// The receiver claims the buffer of a descriptor: inFlight(receiver)@g -> received(receiver)@g.
// Fails for a buffer that is not in flight to it in that generation (sent twice, replayed after
// it was freed, reused after its sender freed it, still being written).
inline bool ClaimBuffer(BufferHeader* h, uint32_t generation, uint32_t receiver) {
  uint32_t w = OwnerWord(generation, kHolderInFlight, receiver);
  return h->owner.compare_exchange_strong(w, OwnerWord(generation, kHolderReceived, receiver),
                                          std::memory_order_acquire, std::memory_order_relaxed);
}

// Gives up a buffer `slot` holds as `holder` (in whatever generation): -> free. False when it
// is not held so (counted): someone else changed it, and it must not go back to the pool.
inline bool ReleaseOwnership(Control* c, BufferHeader* h, uint32_t holder, uint32_t slot) {
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
inline void ReturnToPool(Control* c, rte_mempool* pool, BufferHeader* h, uint32_t holder, uint32_t slot) {
  if (ReleaseOwnership(c, h, holder, slot)) rte_mempool_put(pool, h);
}

// The receiver's own release of a buffer it claimed: received(slot)@g -> free@g. A checked store,
// not a CAS (the hot path, once per message): a word that says received(slot) can only be
// changed by `slot` itself under the protocol. False (counted) when it does not say so.
inline bool ReleaseReceived(Control* c, BufferHeader* h, uint32_t slot) {
  uint32_t w = h->owner.load(std::memory_order_relaxed);
  if ((w & 0xffff) != (OwnerWord(0, kHolderReceived, slot) & 0xffff)) {
    c->freeConflicts.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  h->owner.store(w & 0xffff0000, std::memory_order_release);  // free@g
  return true;
}

}  // namespace mbx
}  // namespace mpbus
#pragma GCC visibility pop
