// The short spin before the event loop sleeps, and the per-environment state it lives in
// (MpEnv: one per Node environment, freed with it).
//
// Waking a sleeping JS thread costs as much as the IPC itself on these VMs. While traffic is
// expected (a request just went out, or a message just came in), the loop's prepare phase,
// right before it would block, spins briefly until the inbox fills. The wake-up is then
// already signalled and the loop goes on without sleeping. Idle, nothing spins.
#include <sched.h>
#include <time.h>
#include <uv.h>

#include "common.h"
#include "mp.h"

namespace mpbus {
namespace mp {
namespace {

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void SpinBeforePoll(uv_prepare_t* handle) {
  auto* m = static_cast<MpEnv*>(handle->data);
  int64_t until = m->spinUntilNs;
  int64_t start = NowNs();
  if (start >= until) return;
  int64_t stop = start + m->spinMaxNs;
  if (stop > until) stop = until;
  // Yield rather than pause: with fewer CPUs than busy threads, the thread this spin waits for
  // (DPDK's IPC thread, here or in the peer) may need this very CPU.
  while (!InboxFilled()) {
    if (NowNs() >= stop) return;
    sched_yield();
  }
}

// The environment ends: its loop's handle is stopped and closed (freed when libuv is done with
// it), then the environment's state is freed.
void CleanupHook(void* arg) {
  auto* m = static_cast<MpEnv*>(arg);
  ForgetReceiver(m);
  if (m->prepare != nullptr) {
    uv_prepare_stop(m->prepare);
    uv_close(reinterpret_cast<uv_handle_t*>(m->prepare),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
  }
  delete m;
}

// mpSetSpin(windowUs, maxUs): spin up to maxUs before the loop sleeps, within windowUs of the
// last request sent or message received. (0, 0) turns spinning off.
Napi::Value MpSetSpin(const Napi::CallbackInfo& info) {
  auto* m = static_cast<MpEnv*>(info.Data());
  m->spinWindowNs = static_cast<int64_t>(ArgNumber(info, 0, "the spin window (us)") * 1000);
  m->spinMaxNs = static_cast<int64_t>(ArgNumber(info, 1, "the spin limit (us)") * 1000);
  m->spinUntilNs = 0;
  return info.Env().Undefined();
}

void InitMpSpin(Napi::Env env, Napi::Object exports) { SetMpFunction(env, exports, "mpSetSpin", MpSetSpin); }

}  // namespace

MpEnv* MpEnvOf(Napi::Env env) {
  static const char key = 0;
  void*& slot = EnvSlot(env, &key);
  if (slot == nullptr) {
    auto* m = new MpEnv();
    napi_add_env_cleanup_hook(env, CleanupHook, m);
    slot = m;
  }
  return static_cast<MpEnv*>(slot);
}

void SetMpFunction(Napi::Env env, Napi::Object exports, const char* name,
                   Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(env, fn, name, MpEnvOf(env)));
}

void ExpectTraffic(MpEnv* m) {
  if (m->spinWindowNs > 0) m->spinUntilNs = NowNs() + m->spinWindowNs;
}

// The prepare handle is unref'd: an open bus never keeps the process alive by itself.
void StartSpin(Napi::Env env, MpEnv* m) {
  if (m->prepare == nullptr) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    if (loop != nullptr) {
      m->prepare = new uv_prepare_t;
      uv_prepare_init(loop, m->prepare);
      m->prepare->data = m;
      uv_unref(reinterpret_cast<uv_handle_t*>(m->prepare));
    }
  }
  if (m->prepare != nullptr) uv_prepare_start(m->prepare, SpinBeforePoll);
}

void StopSpin(MpEnv* m) {
  if (m->prepare != nullptr) uv_prepare_stop(m->prepare);
  m->spinUntilNs = 0;
}

MPBUS_FACILITY(InitMpSpin);
}  // namespace mp
}  // namespace mpbus
