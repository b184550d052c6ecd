// Checking descriptors another process put on this process's inbox ring: a descriptor names a
// buffer (a pool element or a registered large block) only after this file proved it, touching
// no other memory, and claimed the buffer by its owner word; refusals are BadDescriptor reasons.
#include <stdint.h>

#include "common.h"
#include "mbx.h"
#include "mbx_ownership.h"

namespace mpbus {
namespace mbx {

namespace {

// Claims the buffer at `p` for this receiver by its owner word and checks the header fields
// every buffer has; false (with r.bad set) when it is refused.
bool ClaimWithHeader(Checked& r, uint64_t p, uint32_t generation, uint32_t receiverSlot) {
  r.header = reinterpret_cast<BufferHeader*>(p);
  if (!ClaimBuffer(r.header, generation, receiverSlot)) {
    r.bad = kBadNotInFlight;  // not a buffer sent to us: never free what someone else holds
    return false;
  }
  r.ownsBuffer = true;
  if (r.header->magic != kBufferMagic)
    r.bad = kBadMagic;
  else if (r.header->version != kBufferVersion)
    r.bad = kBadVersion;
  return r.bad == kBadNone;
}

// Reads the header's length and flags once: what is checked is what the drain uses, even if the
// sender (buggy or hostile) writes to the buffer after handing it over.
void ReadOnce(Checked& r) {
  r.length = r.header->length;
  r.flags = r.header->flags;
}

}  // namespace

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
    if (!ClaimWithHeader(r, p, generation, receiverSlot)) return r;
    ReadOnce(r);
    if (r.length > c->eltSize - sizeof(BufferHeader) || (r.flags & kFlagLarge))
      r.bad = kBadLength;
    else if ((r.flags & kCodecMask) > kFlagMsgpack)
      r.bad = kBadCodec;
    return r;
  }
  for (uint32_t i = 0; i < kMaxLargeBlocks; i++) {
    LargeEntry& e = c->large[i];
    if (e.ptr.load(std::memory_order_acquire) != p) continue;
    if (e.state.load() != kLargeEnqueued || e.receiverSlot != receiverSlot || e.generation != generation) continue;
    r.large = true;
    r.largeIndex = i;
    if (!ClaimWithHeader(r, p, generation, receiverSlot)) return r;
    ReadOnce(r);
    if (r.length > e.bytes - sizeof(BufferHeader) || !(r.flags & kFlagLarge) || r.header->largeIndex != i)
      r.bad = kBadLength;
    else if ((r.flags & kCodecMask) > kFlagMsgpack)
      r.bad = kBadCodec;
    return r;
  }
  r.bad = kBadOutOfRange;
  return r;
}

void FreeChecked(Control* c, rte_mempool* pool, const Checked& k) {
  if (!k.ownsBuffer) return;
  if (k.large)
    FreeLargeBlock(c, k.largeIndex, kLargeEnqueued);
  else
    ReturnToPool(c, pool, k.header, kHolderReceived, k.receiverSlot);
}

}  // namespace mbx
}  // namespace mpbus
