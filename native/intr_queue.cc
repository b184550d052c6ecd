// The interrupt facility's one ordered queue and its wake-up (a pipeline.h pipeline): every
// source of the primary (native/intr_*.cc) pushes its events here from a DPDK thread (the interrupt thread, or
// whichever thread probes or releases a device); one thread-safe function wakes JavaScript once per burst, and
// JavaScript drains the queue with intrDrain(). Also the facility's open, close and stats. See docs/interrupts.md.
#include <time.h>

#include <utility>
#include <vector>

#include "common.h"
#include "interrupts.h"
#include "pipeline.h"

namespace mpbus {
namespace intr {
namespace {

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kLsc:
      return "lsc";
    case EventType::kRemoval:
      return "removal";
    case EventType::kNew:
      return "new";
    case EventType::kDestroy:
      return "destroy";
    case EventType::kAlarm:
      return "alarm";
    case EventType::kFd:
      return "fd";
  }
  return "unknown";
}

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

constexpr size_t kMaxQueued = 65536;  // JS stopped draining: drop the newest, count them
// The wake-up calls the JS function with no arguments; JavaScript then calls intrDrain().
Pipeline<NativeEvent> gQueue("mpbus-interrupts", kMaxQueued, nullptr);
uint64_t gNextSeq = 1;  // under the pipeline's lock (Push's stamp)

}  // namespace

// Order = order of the calls (one lock), which for a single DPDK thread is the order the primary
// saw the events.
void Push(NativeEvent ev) {
  gQueue.Push(std::move(ev), [](NativeEvent& accepted) {
    accepted.seq = gNextSeq++;
    if (accepted.timestamp == 0) accepted.timestamp = NowMs();
  });
}

namespace {

Napi::Value IntrOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  if (!gQueue.Open(env, ArgFunction(info, 0, "the wake-up callback"))) {
    ThrowError(env, "EALREADY", "interrupt delivery is already open in this process");
  }
  return env.Undefined();
}

// Hands the queued events to JavaScript, oldest first, and re-arms the wake-up.
Napi::Value IntrDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<NativeEvent> batch = gQueue.Take();
  Napi::Array out = Napi::Array::New(env, batch.size());
  uint32_t i = 0;
  for (const NativeEvent& ev : batch) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("seq", Napi::Number::New(env, static_cast<double>(ev.seq)));
    o.Set("type", EventTypeName(ev.type));
    o.Set("timestamp", ev.timestamp);
    if (ev.portId >= 0) o.Set("portId", ev.portId);
    // NEW fires before the port is marked attached, when its name cannot be read yet.
    std::string device = ev.device.empty() && ev.portId >= 0 ? PortName(static_cast<uint16_t>(ev.portId)) : ev.device;
    if (!device.empty()) o.Set("device", device);
    if (ev.hasLink) {
      o.Set("linkUp", ev.linkUp);
      o.Set("speedMbps", ev.speedMbps);
      o.Set("fullDuplex", ev.fullDuplex);
      o.Set("autoneg", ev.autoneg);
      o.Set("via", ev.via);
    }
    if (ev.type == EventType::kAlarm || ev.type == EventType::kFd) o.Set("sourceId", ev.sourceId);
    if (ev.type == EventType::kFd) {
      o.Set("value", Napi::Number::New(env, static_cast<double>(ev.value)));
      o.Set("bytes", ev.bytes);
    }
    out.Set(i++, o);
  }
  return out;
}

// Unregisters every callback, cancels every alarm, stops watching every fd. Idempotent; run
// before rte_eal_cleanup (whose device cleanup would otherwise raise DESTROY into a dead queue).
Napi::Value IntrClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CloseEthdevEvents();
  CloseNetlink();
  CloseAlarms();
  CloseFdSources();
  // Stop the ports this process started: a started net_tap keeps its own netlink socket on the
  // interrupt thread, and a wake-up of that thread during rte_eal_cleanup (which frees the alarm
  // handle without unregistering it, DPDK 22.11) crashes the process on exit.
  StopStartedPorts();
  gQueue.Close();
  return env.Undefined();
}

Napi::Value IntrStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("ethRegistrations", EthRegistrationCount());
  o.Set("netlinkPorts", NetlinkPortCount());
  o.Set("alarms", AlarmCount());
  o.Set("fdSources", FdSourceCount());
  o.Set("queued", static_cast<uint32_t>(gQueue.Queued()));
  o.Set("dropped", Napi::Number::New(env, static_cast<double>(gQueue.Dropped())));
  return o;
}

void InitInterruptQueue(Napi::Env env, Napi::Object exports) {
  exports.Set("intrOpen", Napi::Function::New(env, IntrOpen));
  exports.Set("intrDrain", Napi::Function::New(env, IntrDrain));
  exports.Set("intrClose", Napi::Function::New(env, IntrClose));
  exports.Set("intrStats", Napi::Function::New(env, IntrStats));
}

}  // namespace

MPBUS_FACILITY(InitInterruptQueue);
}  // namespace intr
}  // namespace mpbus
