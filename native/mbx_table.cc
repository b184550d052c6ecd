// This process's mailbox table, one entry per open mailbox in shared memory: opening and closing
// mailbox ids (mbxOpen, mbxClose), the pending counts and hold flag that make a mailbox's
// capacity (mbxAdjust, mbxSetHold), and any mailbox's depth as its receiver counts it (mbxDepth).
#include <string>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// mbxOpen(capacity) -> mailbox id
Napi::Value MbxOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  uint32_t capacity = ArgUint32(info, 0, "the capacity");
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
  Attachment& a = RequireAttached(info);
  uint32_t id = ArgUint32(info, 0, "the mailbox id");
  MailboxEntry& e = a.table[id & 0xffff];
  uint32_t expected = id;
  if (e.id.compare_exchange_strong(expected, 0)) a.freeIndexes.push_back(id & 0xffff);
  return info.Env().Undefined();
}

// mbxAdjust(id, delta): changes the pending count of one of this process's mailboxes, for
// messages the process keeps queued itself after draining (they still count against capacity).
Napi::Value MbxAdjust(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info);
  uint32_t id = ArgUint32(info, 0, "the mailbox id");
  int32_t delta = ArgInt32(info, 1, "the delta");
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
  Attachment& a = RequireAttached(info);
  uint32_t id = ArgUint32(info, 0, "the mailbox id");
  MailboxEntry& e = a.table[id & 0xffff];
  if (e.id.load() == id) e.hold.store(info[1].ToBoolean() ? 1 : 0);
  return info.Env().Undefined();
}

// mbxDepth(slot, generation, mailboxId) -> pending messages, or -1 when the mailbox is gone.
Napi::Value MbxDepth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  PeerCache* peer = Peer(a, ArgUint32(info, 0, "the slot"), ArgUint32(info, 1, "the generation"));
  uint32_t id = ArgUint32(info, 2, "the mailbox id");
  if (peer == nullptr) return Napi::Number::New(env, -1);
  MailboxEntry& e = peer->table[id & 0xffff];
  if (e.id.load() != id) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, e.pending.load());
}

void InitMailboxTable(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxOpen", MbxOpen);
  SetMailboxFunction(env, exports, "mbxClose", MbxClose);
  SetMailboxFunction(env, exports, "mbxAdjust", MbxAdjust);
  SetMailboxFunction(env, exports, "mbxSetHold", MbxSetHold);
  SetMailboxFunction(env, exports, "mbxDepth", MbxDepth);
}

}  // namespace
MPBUS_FACILITY(InitMailboxTable);
}  // namespace mbx

}  // namespace mpbus
