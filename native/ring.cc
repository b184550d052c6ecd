// rte_ring from JavaScript: create, look up, free, enqueue/dequeue pointer-sized elements one
// at a time or in bursts (a BigUint64Array), and the ring's counters; an operation does not
// wait without end behind one a killed process left unfinished. Names, sizes and flags are
// validated in src/shm/ring.ts before any of these functions runs.
#include <rte_errno.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include <chrono>

#include "common.h"
#include "ring_wait.h"
#include "shm_handle.h"
#include "shm_view.h"

namespace mpbus {
namespace {

// How long an operation waits, before it starts, for the operations of other processes already
// in progress on the same side of a ring to finish: one whose process was killed inside it
// (SIGKILL between DPDK's move of the head and of the tail) never finishes, and DPDK's next
// operation on that side then waits for it without end, on the JS thread, deaf to signals. A
// live process finishes within microseconds, unless the scheduler takes its CPU in between:
// 2 s is far beyond a time slice, even on a crowded machine.
constexpr std::chrono::milliseconds kInFlightWait{2000};

// Head and tail of the producers' (or consumers') side of a multi-process side of `ring`;
// false for a single-producer (single-consumer) side, where no operation waits for another.
// Another process writes them: they are only read, to decide whether to wait.
bool SidePositions(const rte_ring* ring, bool producers, uint32_t* head, uint32_t* tail) {
  const rte_ring_headtail& side = producers ? ring->prod : ring->cons;
  switch (side.sync_type) {
    case RTE_RING_SYNC_MT:
      *head = __atomic_load_n(&side.head, __ATOMIC_ACQUIRE);
      *tail = __atomic_load_n(&side.tail, __ATOMIC_ACQUIRE);
      return true;
    case RTE_RING_SYNC_MT_RTS: {
      const rte_ring_rts_headtail& rts = producers ? ring->rts_prod : ring->rts_cons;
      *head = __atomic_load_n(&rts.head.val.pos, __ATOMIC_ACQUIRE);
      *tail = __atomic_load_n(&rts.tail.val.pos, __ATOMIC_ACQUIRE);
      return true;
    }
    case RTE_RING_SYNC_MT_HTS: {
      const rte_ring_hts_headtail& hts = producers ? ring->hts_prod : ring->hts_cons;
      *head = __atomic_load_n(&hts.ht.pos.head, __ATOMIC_ACQUIRE);
      *tail = __atomic_load_n(&hts.ht.pos.tail, __ATOMIC_ACQUIRE);
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

// Before an operation on a multi-process side: waits until the operations in progress there
// now have finished (the tail reached the head seen), at most kInFlightWait, else throws
// RING_STUCK rather than let DPDK wait for good. A process killed between this check and its
// own move of the head is not caught (a window of a few instructions).
void AwaitRingInFlight(Napi::Env env, const rte_ring* ring, bool producers, const std::string& what,
                       const std::string& fix) {
  uint32_t head = 0;
  uint32_t tail = 0;
  if (!SidePositions(ring, producers, &head, &tail) || head == tail) return;
  const uint32_t seen = head;
  const auto until = std::chrono::steady_clock::now() + kInFlightWait;
  for (unsigned spins = 0;; spins++) {
    SidePositions(ring, producers, &head, &tail);
    // (positions wrap around 2^32: "the tail reached `seen`" is a signed distance)
    if (static_cast<int32_t>(tail - seen) >= 0) return;
    if ((spins & 1023) == 1023 && std::chrono::steady_clock::now() > until) break;
    rte_pause();
  }
  const char* side = producers ? "an enqueue" : "a dequeue";
  ThrowError(env, "RING_STUCK",
             what + ": " + side + " of another process has not finished for " + std::to_string(kInFlightWait.count()) +
                 " ms (" + std::to_string(head - tail) +
                 " slots taken and never released). A process killed inside an operation leaves DPDK's multi-producer "
                 "and multi-consumer rings stuck for good: " +
                 fix + ", and see docs/shared-memory-objects.md, \"Rings and a process killed inside an operation\"");
}

namespace {

void AwaitInFlight(Napi::Env env, const rte_ring* ring, bool producers) {
  AwaitRingInFlight(env, ring, producers, std::string("ring '") + ring->name + "'", "make a new ring");
}

rte_ring* RingArg(Napi::Env env, const Napi::Value& value) {
  RequireEal(env);
  return LiveObject<rte_ring>(env, value, "ring");
}

Napi::Value Handle(Napi::Env env, rte_ring* ring) { return MakeSharedHandle(env, ring, ring->memzone); }

[[noreturn]] void ThrowRte(Napi::Env env, const std::string& what, const std::string& name, int err) {
  ThrowError(env, ErrnoName(err), what + " '" + name + "': " + ErrnoText(err), err);
}

// ringCreate(name, count, socketId, flags) -> handle
Napi::Value RingCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  unsigned count = info[1].As<Napi::Number>().Uint32Value();
  int socket = info[2].As<Napi::Number>().Int32Value();
  unsigned flags = info[3].As<Napi::Number>().Uint32Value();
  rte_ring* ring = rte_ring_create(name.c_str(), count, socket, flags);
  if (ring == nullptr) ThrowRte(env, "cannot create ring", name, rte_errno);
  return Handle(env, ring);
}

// ringLookup(name) -> handle; throws ENOENT
Napi::Value RingLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  rte_ring* ring = rte_ring_lookup(name.c_str());
  if (ring == nullptr) ThrowRte(env, "no ring", name, rte_errno ? rte_errno : ENOENT);
  return Handle(env, ring);
}

Napi::Value RingFree(const Napi::CallbackInfo& info) {
  rte_ring_free(RingArg(info.Env(), info[0]));
  return info.Env().Undefined();
}

// The element size a ring was created with (rte_ring_create_elem), deduced from the size of its
// memzone, since DPDK does not store it; 0 when unknown (no memzone). In rings of a few slots
// several sizes round up to the same memzone: pointer-sized wins then.
unsigned ElementSize(const rte_ring* ring) {
  if (ring->memzone == nullptr) return 0;
  size_t length = ring->memzone->len;
  auto memsize = [ring](unsigned esize) { return rte_ring_get_memsize_elem(esize, ring->size); };
  if (memsize(sizeof(void*)) == static_cast<ssize_t>(length)) return sizeof(void*);
  for (unsigned esize = 4; memsize(esize) > 0 && static_cast<size_t>(memsize(esize)) <= length; esize += 4) {
    if (static_cast<size_t>(memsize(esize)) == length) return esize;
  }
  return 0;
}

Napi::Value RingInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_ring* ring = RingArg(env, info[0]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", ring->name);
  out.Set("size", rte_ring_get_size(ring));
  out.Set("capacity", rte_ring_get_capacity(ring));
  out.Set("flags", ring->flags);
  out.Set("address", FromAddress(env, reinterpret_cast<uintptr_t>(ring)));
  out.Set("elementSize", ElementSize(ring));
  return out;
}

Napi::Value RingCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rte_ring_count(RingArg(info.Env(), info[0])));
}

Napi::Value RingFreeCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rte_ring_free_count(RingArg(info.Env(), info[0])));
}

// ringEnqueue(handle, value) -> true when enqueued, false when the ring is full
Napi::Value RingEnqueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_ring* ring = RingArg(env, info[0]);
  AwaitInFlight(env, ring, true);
  void* obj = reinterpret_cast<void*>(static_cast<uintptr_t>(ToAddress(env, info[1])));
  return Napi::Boolean::New(env, rte_ring_enqueue(ring, obj) == 0);
}

// ringDequeue(handle) -> bigint, or null when the ring is empty
Napi::Value RingDequeue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_ring* ring = RingArg(env, info[0]);
  AwaitInFlight(env, ring, false);
  void* obj = nullptr;
  if (rte_ring_dequeue(ring, &obj) != 0) return env.Null();
  return FromAddress(env, reinterpret_cast<uintptr_t>(obj));
}

// Elements [start, start + n) of a BigUint64Array argument, bounds-checked.
void** Slice(Napi::Env env, const Napi::CallbackInfo& info, size_t argIndex, unsigned* n) {
  U64Array arr = ToU64Array(env, info[argIndex]);
  double start = info[argIndex + 1].As<Napi::Number>().DoubleValue();
  double count = info[argIndex + 2].As<Napi::Number>().DoubleValue();
  CheckRange(env, start, count, arr.length, "array");
  static_assert(sizeof(void*) == sizeof(uint64_t), "pointer-sized ring elements are 64-bit here");
  *n = static_cast<unsigned>(count);
  return reinterpret_cast<void**>(arr.data + static_cast<size_t>(start));
}

// ringEnqueueBurst(handle, BigUint64Array, start, n, bulk) -> how many were enqueued
// (bulk: all n or none).
Napi::Value RingEnqueueBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_ring* ring = RingArg(env, info[0]);
  unsigned n = 0;
  void** objs = Slice(env, info, 1, &n);
  bool bulk = info[4].ToBoolean();
  AwaitInFlight(env, ring, true);
  unsigned done = bulk ? rte_ring_enqueue_bulk(ring, objs, n, nullptr) : rte_ring_enqueue_burst(ring, objs, n, nullptr);
  return Napi::Number::New(env, done);
}

// ringDequeueBurst(handle, BigUint64Array, start, max, bulk) -> how many were dequeued
Napi::Value RingDequeueBurst(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_ring* ring = RingArg(env, info[0]);
  unsigned n = 0;
  void** objs = Slice(env, info, 1, &n);
  bool bulk = info[4].ToBoolean();
  AwaitInFlight(env, ring, false);
  unsigned done = bulk ? rte_ring_dequeue_bulk(ring, objs, n, nullptr) : rte_ring_dequeue_burst(ring, objs, n, nullptr);
  return Napi::Number::New(env, done);
}

void InitRing(Napi::Env env, Napi::Object exports) {
  exports.Set("ringCreate", Napi::Function::New(env, RingCreate));
  exports.Set("ringLookup", Napi::Function::New(env, RingLookup));
  exports.Set("ringFree", Napi::Function::New(env, RingFree));
  exports.Set("ringInfo", Napi::Function::New(env, RingInfo));
  exports.Set("ringLive", Napi::Function::New(env, IsLive<rte_ring>));
  exports.Set("ringCount", Napi::Function::New(env, RingCount));
  exports.Set("ringFreeCount", Napi::Function::New(env, RingFreeCount));
  exports.Set("ringEnqueue", Napi::Function::New(env, RingEnqueue));
  exports.Set("ringDequeue", Napi::Function::New(env, RingDequeue));
  exports.Set("ringEnqueueBurst", Napi::Function::New(env, RingEnqueueBurst));
  exports.Set("ringDequeueBurst", Napi::Function::New(env, RingDequeueBurst));
  Napi::Object c = Napi::Object::New(env);
  c.Set("RTE_RING_NAMESIZE", RTE_RING_NAMESIZE);
  c.Set("RING_F_SP_ENQ", RING_F_SP_ENQ);
  c.Set("RING_F_SC_DEQ", RING_F_SC_DEQ);
  c.Set("RING_F_EXACT_SZ", RING_F_EXACT_SZ);
  c.Set("RING_F_MP_RTS_ENQ", RING_F_MP_RTS_ENQ);
  c.Set("RING_F_MC_RTS_DEQ", RING_F_MC_RTS_DEQ);
  c.Set("RING_F_MP_HTS_ENQ", RING_F_MP_HTS_ENQ);
  c.Set("RING_F_MC_HTS_DEQ", RING_F_MC_HTS_DEQ);
  c.Set("RTE_RING_SZ_MASK", RTE_RING_SZ_MASK);
  exports.Set("ringConstants", c);
}

}  // namespace
MPBUS_FACILITY(InitRing);
}  // namespace mpbus
