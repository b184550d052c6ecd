// The group's mailbox objects in hugepage memory: the control block (process table, large-block
// table, conflict counters) and the shared buffer pool, created by the first process that
// attaches and found by the others (AttachControl), and mbxPoolInfo for tests and stats.
#include <rte_errno.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <string.h>

#include <string>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// The buffer pool's mempool driver (why relaxed tail sync: below, where the pool is created).
constexpr const char* kPoolOps = "ring_mt_rts";

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

// mbxPoolInfo() -> { firstObject, stride, count, poolBase, available, largeInUse, largeKept,
//   largeHeapCalls (this process's), largeArenaUsed, takeConflicts, freeConflicts } (tests and stats)
Napi::Value MbxPoolInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  Napi::Object r = Napi::Object::New(env);
  r.Set("firstObject", Napi::BigInt::New(env, a.ctl->firstObject));
  r.Set("poolBase", Napi::BigInt::New(env, a.ctl->poolBase));
  r.Set("stride", a.ctl->stride);
  r.Set("count", a.ctl->count);
  r.Set("available", rte_mempool_avail_count(a.pool));
  unsigned largeInUse = 0;
  for (uint32_t i = 0; i < kMaxLargeBlocks; i++) largeInUse += a.ctl->large[i].state.load() != kLargeFree;
  r.Set("largeInUse", largeInUse);
  r.Set("largeKept", LargeBlocksKept(a.ctl));
  r.Set("largeHeapCalls", static_cast<double>(LargeHeapCalls()));
  r.Set("largeArenaUsed", static_cast<double>(LargeArenaUsed(a.ctl)));
  r.Set("takeConflicts", static_cast<double>(a.ctl->takeConflicts.load()));
  r.Set("freeConflicts", static_cast<double>(a.ctl->freeConflicts.load()));
  return r;
}

void InitGroupObjects(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxPoolInfo", MbxPoolInfo);
}

}  // namespace

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
    ThrowError(env, kCodeRetryLater, "another process is still creating the group's mailbox objects");
  }
  if (c->version != kLayoutVersion) {
    ThrowError(env, kCodeSettingsMismatch,
               "the group's mailbox layout is version " + std::to_string(c->version) + ", this process speaks " +
                   std::to_string(kLayoutVersion) + ": run one mpbus version per group");
  }
  return c;
}

MPBUS_FACILITY(InitGroupObjects);
}  // namespace mbx

}  // namespace mpbus
