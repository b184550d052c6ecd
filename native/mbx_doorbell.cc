// The doorbell: a futex word in each process's slot that senders ring (WakeIfParked, mbx.h) when
// its receiver sleeps. mbxPark arms this process's doorbell thread, which sleeps on the word and
// calls JavaScript's onWake through a thread-safe function; JavaScript then drains the inbox
// itself (mbxDrain). No queue of events: the inbox ring is the queue, so this is not a
// native/pipeline.h pipeline, only its wake-up.
#include <rte_ring.h>

#include <climits>
#include <mutex>
#include <thread>

#include "common.h"
#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// A parked receiver also looks at its ring this often: producers that do not ring the doorbell
// (a C program using the raw rte_ring API) are then served within this delay.
constexpr timespec kParkedRecheck = {0, 250 * 1000 * 1000};

void WakerMain(Attachment* a) {
  ProcSlot& s = a->ctl->slots[a->slot];
  std::unique_lock<std::mutex> lock(a->mu);
  for (;;) {
    a->cv.wait(lock, [a] { return a->armed || a->quit; });
    if (a->quit) return;
    uint32_t seen = a->armedSeen;
    lock.unlock();
    while (s.doorbell.load(std::memory_order_acquire) == seen) {
      Futex(&s.doorbell, FUTEX_WAIT, seen, &kParkedRecheck);
      if (a->quit || rte_ring_count(a->inbox) > 0) break;
    }
    s.parked.store(0);
    lock.lock();
    a->armed = false;
    if (a->quit) return;
    a->wake.NonBlockingCall();
  }
}

// mbxPark() -> true when parked (the doorbell thread will call onWake), false when messages wait.
Napi::Value MbxPark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment& a = RequireAttached(info);
  ReleaseHeld(a);
  ProcSlot& s = a.ctl->slots[a.slot];
  uint32_t seen = s.doorbell.load(std::memory_order_acquire);
  s.parked.store(1);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (rte_ring_count(a.inbox) > 0) {
    s.parked.store(0);
    return Napi::Boolean::New(env, false);
  }
  {
    std::lock_guard<std::mutex> lock(a.mu);
    a.armed = true;
    a.armedSeen = seen;
  }
  a.cv.notify_one();
  return Napi::Boolean::New(env, true);
}

// mbxKeepAlive(bool): whether the parked doorbell keeps the event loop (the process) alive.
Napi::Value MbxKeepAlive(const Napi::CallbackInfo& info) {
  Attachment& a = RequireAttached(info);
  if (info[0].ToBoolean())
    a.wake.Ref(info.Env());
  else
    a.wake.Unref(info.Env());
  return info.Env().Undefined();
}

void InitDoorbell(Napi::Env env, Napi::Object exports) {
  SetMailboxFunction(env, exports, "mbxPark", MbxPark);
  SetMailboxFunction(env, exports, "mbxKeepAlive", MbxKeepAlive);
}

}  // namespace

int StartWaker(Attachment* a) { return TryStartThread(&a->waker, WakerMain, a); }

void StopWaker(Attachment* a) {
  {
    std::lock_guard<std::mutex> lock(a->mu);
    a->quit = true;
  }
  a->cv.notify_all();
  ProcSlot& s = a->ctl->slots[a->slot];
  s.doorbell.fetch_add(1);
  Futex(&s.doorbell, FUTEX_WAKE, INT32_MAX);
  if (a->waker.joinable()) a->waker.join();
}

MPBUS_FACILITY(InitDoorbell);
}  // namespace mbx

}  // namespace mpbus
