// Receiving: mbxDrain, called by the JS thread itself, takes a burst of descriptors from this
// process's inbox (waiting briefly when asked: spinning, or yielding when the group's processes
// crowd its CPUs), checks each (mbx_check.cc) and writes one row per message into the output array
// JavaScript reads; pool buffers stay held until the next drain, large messages are copied out
// (mbxTakeLarge).
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_ring_peek.h>
#include <sched.h>

#include "common.h"
#include "mbx.h"
#include "mbx_ownership.h"

namespace mpbus {
namespace mbx {
namespace {

// Large messages copied out by one drain, in bytes, before it stops (the first is always taken).
// Copying into fresh memory cost 2-3.5 ms per MiB on the 2-vCPU machine (mostly the page faults
// of the new buffer), and a backlog of 67 such messages held the receiver's event loop for
// 234 ms in one drain. Copies now go into reused memory (mbx_copies.cc) when there is some, but
// a backlog still needs a bound: past this budget the drain leaves the rest on the ring for the
// next turn (docs/mailboxes.md, "Large messages").
constexpr uint64_t kLargeBytesPerDrain = 4u << 20;

// Takes up to kBurst descriptors from the inbox without releasing their places yet: the drain
// gives back (rte_ring_dequeue_finish) only as many as it handled, and the rest stay first in
// line. The inbox has a single consumer, which the peek API supports.
unsigned PeekBurst(Attachment& a, void** burst) {
  return rte_ring_dequeue_burst_start(a.inbox, burst, kBurst, nullptr);
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

// mbxDrain(spinUs) -> n descriptors written to the output array:
//   [mailboxId, payload offset in the pool ArrayBuffer (or index in mbxTakeLarge()), length,
//    codec | large<<4 | bad<<8 | senderSlot<<16]
Napi::Value MbxDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  uint32_t spinUs = ArgUint32(info, 0, "spinUs");
  ReleaseHeld(a);
  void* burst[kBurst];
  unsigned n = PeekBurst(a, burst);
  if (n == 0 && spinUs > 0) {
    uint64_t deadline = NowUs() + spinUs;
    bool crowded = Crowded(a);
    if (!a.peersCrowd) {
      // Look at the ring after every pause: a pause is ~22 ns here, and checking only every 32
      // of them made each hop wait ~360 ns on average before a message was even seen
      // (bench/profile-mailbox.ts). The clock is read only every 16 pauses.
      for (unsigned i = 1; rte_ring_count(a.inbox) == 0; i++) {
        rte_pause();
        if ((i & 15) == 0 && NowUs() >= deadline) break;
      }
      n = PeekBurst(a, burst);
      // Yield after an empty spin when the machine is not crowded: the process we wait for may
      // share our CPU and can only answer while we do not run (with nothing else runnable,
      // sched_yield returns at once). Yielding only after 8 empty spins in a row made such round
      // trips take ~200 µs (the p99 of the encoded rows); now ~10 µs. When it is crowded but not
      // by the group (other programs' busy processes), never: a yield hands the CPU to whatever
      // else is runnable on it, and a busy process then keeps it for its whole time slice. With
      // one busy-loop process on the 2-vCPU machine a sequential ask took ~4 ms (p50), and 128
      // asks in flight through a router made 45-85 k/s against ~600 k/s without it
      // (docs/benchmarks.md, "Ninth pass: waiting beside a busy process").
      if (n == 0 && !crowded) sched_yield();
    } else {
      // More of the group's processes awake on our CPUs than we have: spinning would only take
      // the CPU from the senders we wait for, so the same wait is spent yielding to them, with
      // a look at the ring after each yield. Returning to JavaScript after one yield made an
      // idle receiver loop whole event-loop turns (a worker between the asks of a sequential
      // caller that alternates two workers: 2-7 turns per ask), each a slice of CPU taken from
      // the processes that work.
      do sched_yield();
      while (rte_ring_count(a.inbox) == 0 && NowUs() < deadline);
      n = PeekBurst(a, burst);
    }
  }
  Control* c = a.ctl;
  Napi::Array large;
  uint32_t nLarge = 0;
  uint64_t largeBytes = 0;
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
      o[3] = k.bad << kRowBadShift;
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
    o[2] = k.length;
    o[3] = (k.flags & kRowCodecMask) | (k.large ? kRowLarge : 0) | ((h->senderSlot & kRowByteMask) << kRowSenderShift);
    if (k.large) {
      if (large.IsEmpty()) large = Napi::Array::New(env);
      try {
        large.Set(nLarge, CopyOutLarge(env, reinterpret_cast<uint8_t*>(h) + sizeof(BufferHeader), k.length));
      } catch (...) {
        // No memory for the copy: this message is lost, the ones before it stay drained, and
        // the inbox stays consistent for the next drain.
        FreeChecked(c, a.pool, k);
        rte_ring_dequeue_finish(a.inbox, i + 1);
        throw;
      }
      o[1] = nLarge++;
      FreeChecked(c, a.pool, k);
      largeBytes += k.length;
      if (largeBytes >= kLargeBytesPerDrain && i + 1 < n) {
        n = i + 1;
        break;
      }
    } else {
      o[1] = static_cast<uint32_t>(reinterpret_cast<uint64_t>(h) + sizeof(BufferHeader) - c->poolBase);
      ProcSlot& self = c->slots[a.slot];
      uint32_t k = self.heldCount.load(std::memory_order_relaxed);
      self.held[k] = reinterpret_cast<uint64_t>(h);
      self.heldCount.store(k + 1, std::memory_order_release);
    }
  }
  rte_ring_dequeue_finish(a.inbox, n);
  released |= ReleasePending(a, runId, runLength);
  if (n > 0) WakeRoomWaiters(c, c->slots[a.slot], released);
  if (nLarge > 0) a.large = Napi::Persistent(large);
  return Napi::Number::New(env, n);
}

Napi::Value MbxTakeLarge(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info);
  Napi::Value v = a.large.Value();
  a.large = Napi::Persistent(Napi::Array::New(info.Env()));
  return v;
}

void InitDrain(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxDrain", MbxDrain);
  SetMailboxFunction(env, exports, "mbxTakeLarge", MbxTakeLarge);
  Napi::Object row = ConstantsGroup(env, exports, "mailbox", "row");
  row.Set("burst", kBurst);
  row.Set("words", kOutWords);
  row.Set("codecMask", kRowCodecMask);
  row.Set("large", kRowLarge);
  row.Set("badShift", kRowBadShift);
  row.Set("senderShift", kRowSenderShift);
  row.Set("byteMask", kRowByteMask);
  Napi::Object bad = ConstantsGroup(env, exports, "mailbox", "bad");
  bad.Set("outOfRange", static_cast<uint32_t>(kBadOutOfRange));
  bad.Set("misaligned", static_cast<uint32_t>(kBadMisaligned));
  bad.Set("notInFlight", static_cast<uint32_t>(kBadNotInFlight));
  bad.Set("magic", static_cast<uint32_t>(kBadMagic));
  bad.Set("version", static_cast<uint32_t>(kBadVersion));
  bad.Set("length", static_cast<uint32_t>(kBadLength));
  bad.Set("codec", static_cast<uint32_t>(kBadCodec));
}

}  // namespace

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

MPBUS_FACILITY(InitDrain);
}  // namespace mbx

}  // namespace mpbus
