// EAL alarms as interrupt sources: one-shot or periodic rte_eal_alarm timers, each firing queues
// an alarm event (intr_queue.cc); a periodic one re-arms itself from its callback.
#include <rte_alarm.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

struct AlarmEntry {
  uint64_t periodUs;  // 0 = one shot
};
std::mutex gAlarmMutex;
std::map<uint32_t, AlarmEntry> gAlarms;

void AlarmCallback(void* arg) {
  uint32_t id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    auto it = gAlarms.find(id);
    if (it == gAlarms.end()) return;  // cancelled while firing
    if (it->second.periodUs > 0) {
      rte_eal_alarm_set(it->second.periodUs, AlarmCallback, arg);
    } else {
      gAlarms.erase(it);
    }
  }
  NativeEvent ev;
  ev.type = EventType::kAlarm;
  ev.sourceId = id;
  Push(std::move(ev));
}

void CancelAlarm(uint32_t id) {
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    gAlarms.erase(id);
  }
  // Waits for a running callback; removes what it may have re-armed meanwhile.
  rte_eal_alarm_cancel(AlarmCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
}

// intrAlarmSet(id, delayUs, periodic)
Napi::Value IntrAlarmSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint32_t id = ArgUint32(info, 0, "the alarm id");
  uint64_t us = static_cast<uint64_t>(ArgInt64(info, 1, "the alarm delay (us)"));
  bool periodic = info[2].ToBoolean();
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    if (gAlarms.count(id)) ThrowError(env, "EEXIST", "alarm " + std::to_string(id) + " is already set", EEXIST);
    gAlarms[id] = AlarmEntry{periodic ? us : 0};
  }
  int rc = rte_eal_alarm_set(us, AlarmCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  if (rc < 0) {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    gAlarms.erase(id);
    ThrowError(env, ErrnoName(-rc), "rte_eal_alarm_set failed: " + ErrnoText(-rc), -rc);
  }
  return env.Undefined();
}

Napi::Value IntrAlarmCancel(const Napi::CallbackInfo& info) {
  uint32_t id = ArgUint32(info, 0, "the alarm id");
  if (EalReady()) CancelAlarm(id);
  return info.Env().Undefined();
}

void InitAlarms(Napi::Env env, Napi::Object exports) {
  exports.Set("intrAlarmSet", Napi::Function::New(env, IntrAlarmSet));
  exports.Set("intrAlarmCancel", Napi::Function::New(env, IntrAlarmCancel));
}

}  // namespace

void CloseAlarms() {
  std::vector<uint32_t> alarms;
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    for (const auto& a : gAlarms) alarms.push_back(a.first);
  }
  for (uint32_t id : alarms) CancelAlarm(id);
}

uint32_t AlarmCount() {
  std::lock_guard<std::mutex> lock(gAlarmMutex);
  return static_cast<uint32_t>(gAlarms.size());
}

MPBUS_FACILITY(InitAlarms);
}  // namespace intr
}  // namespace mpbus
