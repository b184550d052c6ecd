// Attaching this process to the group's mailboxes and detaching it: claiming its slot in the
// process table (its lcore id), creating its inbox ring and mailbox table, starting its doorbell
// thread (mbxAttach), and leaving cleanly (mbxDetach, or the environment's cleanup hook).
#include <fcntl.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// Inboxes: many senders (relaxed tail sync, for the same reason as the buffer pool: mbx_group.cc),
// one receiver. Senders must use the generic rte_ring_enqueue*, which follow the ring's own sync mode.
constexpr unsigned kInboxFlags = RING_F_MP_RTS_ENQ | RING_F_SC_DEQ;

// The group's control block, once this process attached: the same for every environment (DPDK
// maps it once per process), and it stays mapped after detach (the group's memory outlives us).
// Read by the registry (hash.cc) and DPDK's telemetry thread (telemetry.cc).
Control* gControl = nullptr;

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

// The environment ends: leave the group (or stop the doorbell thread when the EAL is gone) and
// free the environment's state. The attachment itself is leaked on purpose: the process is ending.
void CleanupHook(void* arg) {
  auto* m = static_cast<MailboxEnv*>(arg);
  if (m->att != nullptr && EalReady()) {
    Detach(m->att);
  } else if (m->att != nullptr) {
    StopWaker(m->att);
  }
  delete m;
}

// mbxAttach({ poolBuffers, bufferSize, inboxSize, role, out: Uint32Array, onWake }) ->
//   { slot, generation, pool: ArrayBuffer, poolBase: number(offset 0), maxInline, burst }
Napi::Value MbxAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  MailboxEnv* m = static_cast<MailboxEnv*>(info.Data());
  if (m->att != nullptr) ThrowError(env, "EALREADY", "mailboxes are already attached in this process");
  Napi::Object o = ArgObject(info, 0, "the attach options");
  uint32_t count = Uint32Of(env, o.Get("poolBuffers"), "poolBuffers");
  uint32_t eltSize = Uint32Of(env, o.Get("bufferSize"), "bufferSize");
  uint32_t inboxSize = Uint32Of(env, o.Get("inboxSize"), "inboxSize");
  uint32_t role = Uint32Of(env, o.Get("role"), "role");
  Napi::Uint32Array out = Uint32ArrayOf(env, o.Get("out"), "out");
  Napi::Function onWake = FunctionOf(env, o.Get("onWake"), "onWake");
  if (out.ElementLength() < kBurst * kOutWords) ThrowError(env, "EINVAL", "output array too small");
  unsigned lcore = rte_lcore_id();
  if (lcore >= kMaxSlots) ThrowError(env, kCodeNotReady, "the JS thread has no lcore id");

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
        ThrowError(env, kCodeRetryLater,
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
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    a->onlineCpus = online > 0 ? static_cast<uint32_t>(online) : 1;
    a->loadavgFd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  }
  a->table = table;
  a->out = out.Data();
  a->outRef = Napi::Persistent(out);
  a->large = Napi::Persistent(Napi::Array::New(env));
  a->wake = Napi::ThreadSafeFunction::New(env, onWake, "mpbus-doorbell", 0, 1);
  a->wake.Unref(env);

  s.pid = getpid();
  s.role = role;
  s.startTime = ProcessStartTime(getpid());
  s.inbox = inbox;
  s.mailboxTable = table;
  s.parked.store(0);
  for (auto& w : s.roomWanted) w.store(0);
  s.reservation.store(0);
  s.heartbeatMs.store(NowMs());
  uint32_t generation = (s.generation.load() + 1) & 0xffffff;  // 24 bits: the registry packs it so
  if (generation == 0) generation = 1;
  s.generation.store(generation);
  a->generation = generation;
  // The CPUs this process's JS thread may run on (taskset, cgroups, placement), not the
  // machine's; published in the slot for the others' crowded check.
  RefreshCpus(*a);
  // The waker before the slot is alive (it waits until a park arms it): a thread the process
  // cannot have leaves the slot free, as a failed inbox does.
  if (int e = StartWaker(a); e != 0) {
    s.state.store(kSlotFree);
    a->wake.Release();
    if (a->loadavgFd >= 0) close(a->loadavgFd);
    delete a;
    ThrowThreadLimit(env, "the mailboxes' doorbell thread", e);
  }
  s.state.store(kSlotAlive, std::memory_order_release);
  m->att = a;

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
  MailboxEnv* m = static_cast<MailboxEnv*>(info.Data());
  if (m->att == nullptr) return info.Env().Undefined();
  Attachment* a = m->att;
  m->att = nullptr;
  if (EalReady())
    Detach(a);
  else
    StopWaker(a);
  if (a->loadavgFd >= 0) close(a->loadavgFd);
  delete a;
  return info.Env().Undefined();
}

void InitAttach(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxAttach", MbxAttach);
  SetMailboxFunction(env, exports, "mbxDetach", MbxDetach);
}

}  // namespace

MailboxEnv* MailboxEnvOf(Napi::Env env) {
  static const char key = 0;
  void*& slot = EnvSlot(env, &key);
  if (slot == nullptr) {
    auto* m = new MailboxEnv();
    napi_add_env_cleanup_hook(env, CleanupHook, m);
    slot = m;
  }
  return static_cast<MailboxEnv*>(slot);
}

void SetMailboxFunction(Napi::Env env, Napi::Object exports, const char* name,
                        Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(env, fn, name, MailboxEnvOf(env)));
}

Attachment& RequireAttached(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Attachment* a = static_cast<MailboxEnv*>(info.Data())->att;
  if (a == nullptr)
    ThrowError(env, kCodeNotAttached, "mailboxes are not attached in this process: open the mailbox system first");
  return *a;
}

MPBUS_FACILITY(InitAttach);
}  // namespace mbx

Control* AttachedControl() { return mbx::gControl; }

}  // namespace mpbus
