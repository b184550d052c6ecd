// Sending: mbxSend and mbxSendMany write messages into buffers this process takes from the
// group's pool (or a large block, mbx_large.cc), hand them to the receiver by owner word and put
// their descriptors on the receiver's inbox ring, within the target mailbox's capacity.
#include <rte_mempool.h>
#include <rte_ring.h>
#include <string.h>

#include <algorithm>

#include "common.h"
#include "mbx.h"
#include "mbx_ownership.h"

namespace mpbus {
namespace mbx {
namespace {

// The first four arguments of mbxSend and mbxSendMany: where a message goes, and its codec.
struct SendTarget {
  uint32_t slot;
  uint32_t generation;
  uint32_t mailboxId;
  uint16_t codec;
};

SendTarget ReadSendTarget(const Napi::CallbackInfo& info) {
  return {ArgUint32(info, 0, "the slot"), ArgUint32(info, 1, "the generation"), ArgUint32(info, 2, "the mailbox id"),
          static_cast<uint16_t>(ArgUint32(info, 3, "the codec") & kCodecMask)};
}

// The room a send holds in the receiver's pending count, noted in this process's slot from
// before it is taken until the messages are on the ring or the room is given back (scope end),
// so that a reaper can give it back if the process dies in between (ProcSlot::reservation).
// Only the reaper reads it, once this process is dead: signal fences keep the compiler from
// moving the notes across the count's updates, and a killed process stops at an instruction
// boundary with every earlier store made, so no hardware fence is needed.
class RoomNote {
 public:
  RoomNote(ProcSlot& self, const SendTarget& to, uint32_t count) : self_(self), toSlot_(to.slot) {
    self_.reservedMailbox.store(to.mailboxId, std::memory_order_relaxed);
    Set(count);
  }
  RoomNote(const RoomNote&) = delete;
  RoomNote& operator=(const RoomNote&) = delete;
  ~RoomNote() { Set(0); }
  // After room was given back: what is still held. (Noted after the count changed, so a death in
  // between gives back too much, for a while, rather than too little, for good.)
  void Set(uint32_t count) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    self_.reservation.store(count == 0 ? 0 : (count << 8) | toSlot_, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }

 private:
  ProcSlot& self_;
  uint32_t toSlot_;
};

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
  Attachment& a = RequireAttached(info);
  const SendTarget to = ReadSendTarget(info);
  Napi::Uint8Array bytes = ArgBytes(info, 4, "the bytes");
  size_t start = ArgUint32(info, 5, "the start");
  size_t end = ArgInt64(info, 6, "the end");
  if (end > bytes.ElementLength() || start > end) ThrowError(env, "ERANGE", "send range outside the byte array");
  const uint8_t* data = bytes.Data() + start;
  size_t len = end - start;
  if (len > UINT32_MAX - sizeof(BufferHeader)) ThrowError(env, "EMSGSIZE", "message larger than 4 GiB");

  Control* c = a.ctl;
  const ResolvedTarget target = Resolve(a, to);
  if (target.entry == nullptr) return Napi::Number::New(env, target.status);
  PeerCache* peer = target.peer;
  MailboxEntry& e = *target.entry;
  RoomNote note(c->slots[a.slot], to, 1);
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
    largeIndex = TakeLargeBlock(c, sizeof(BufferHeader) + len, a.slot, to.slot, &generation);
    if (largeIndex < 0) {
      e.pending.fetch_sub(1);
      return Napi::Number::New(env, largeIndex == kLargeHeapShort ? kSendHeapShort : kSendNoBuffers);
    }
    void* block = reinterpret_cast<void*>(c->large[largeIndex].ptr.load(std::memory_order_relaxed));
    h = static_cast<BufferHeader*>(block);
    h->owner.store(OwnerWord(generation, kHolderWriting, a.slot),
                   std::memory_order_relaxed);  // the entry's claim made the block ours alone
    h->flags = to.codec | kFlagLarge;
    h->largeIndex = static_cast<uint32_t>(largeIndex);
  }
  WriteMessage(h, to, a.slot, data, static_cast<uint32_t>(len));
  if (largeIndex >= 0) c->large[largeIndex].state.store(kLargeEnqueued, std::memory_order_release);
  PublishBuffer(h, generation, to.slot);
  if (rte_ring_enqueue(peer->inbox,
                       reinterpret_cast<void*>(MakeDescriptor(reinterpret_cast<uint64_t>(h), generation))) != 0) {
    if (largeIndex >= 0)
      FreeLargeBlock(c, static_cast<uint32_t>(largeIndex), kLargeEnqueued);
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

// mbxSendMany(slot, generation, mailboxId, codec, bytes: Uint8Array, bounds: Uint32Array, count)
//   -> how many of the first `count` messages were sent (they keep their order). Message i is
//   bytes[bounds[2i] .. bounds[2i+1]) (msgpackr word-aligns where each packed value starts, so
//   messages need not touch); each must fit one pool buffer. One crossing, one capacity
//   reservation, one bulk buffer get and one ring enqueue for the whole batch.
//   Negative results are a SendStatus for nothing sent (-kSendMailboxFull, ...).
Napi::Value MbxSendMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  const SendTarget to = ReadSendTarget(info);
  Napi::Uint8Array bytes = ArgBytes(info, 4, "the bytes");
  Napi::Uint32Array bounds = ArgUint32Array(info, 5, "the message bounds");
  uint32_t count = std::min<uint32_t>(ArgUint32(info, 6, "the count"), kBurst);
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
  RoomNote note(c->slots[a.slot], to, count);
  uint32_t before = e.pending.fetch_add(count);
  uint32_t room = before >= capacity ? 0 : std::min(count, capacity - before);
  if (room < count) {
    e.pending.fetch_sub(count - room);
    note.Set(room);
  }
  if (room == 0) return Napi::Number::New(env, -kSendMailboxFull);
  void* objs[kBurst];
  uint32_t generations[kBurst];
  uint32_t got = room;
  while (got > 0 && rte_mempool_get_bulk(a.pool, objs, got) != 0) got /= 2;
  got = TakeBulk(c, objs, got, a.slot, generations);
  if (got < room) {
    e.pending.fetch_sub(room - got);
    note.Set(got);
  }
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

void InitSend(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxSend", MbxSend);
  SetMailboxFunction(env, exports, "mbxSendMany", MbxSendMany);
  Napi::Object send = ConstantsGroup(env, exports, "mailbox", "send");
  send.Set("ok", static_cast<int32_t>(kSendOk));
  send.Set("mailboxFull", static_cast<int32_t>(kSendMailboxFull));
  send.Set("inboxFull", static_cast<int32_t>(kSendInboxFull));
  send.Set("noBuffers", static_cast<int32_t>(kSendNoBuffers));
  send.Set("peerGone", static_cast<int32_t>(kSendPeerGone));
  send.Set("mailboxClosed", static_cast<int32_t>(kSendMailboxClosed));
  send.Set("heapShort", static_cast<int32_t>(kSendHeapShort));
  Napi::Object codec = ConstantsGroup(env, exports, "mailbox", "codec");
  codec.Set("raw", static_cast<uint32_t>(kFlagRaw));
  codec.Set("msgpack", static_cast<uint32_t>(kFlagMsgpack));
}

}  // namespace
MPBUS_FACILITY(InitSend);
}  // namespace mbx

}  // namespace mpbus
