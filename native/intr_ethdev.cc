// Ethdev events as interrupt sources: link status (LSC), removal, new and destroyed ports,
// registered per (port, event) with rte_eth_dev_callback_register; each callback queues one
// event (intr_queue.cc). net_tap's link, which that PMD never raises, is watched through netlink
// instead (intr_netlink.cc).
#define ALLOW_EXPERIMENTAL_API 1
#include <rte_ethdev.h>

#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

// Registered per (port, event); RTE_ETH_ALL stands for "every port, present and future".
std::mutex gRegMutex;
std::set<std::pair<uint32_t, int>> gEthRegs;

int EthEventCallback(uint16_t port, rte_eth_event_type event, void*, void*) {
  NativeEvent ev;
  ev.portId = port;
  if (event != RTE_ETH_EVENT_NEW) ev.device = PortName(port);
  switch (event) {
    case RTE_ETH_EVENT_INTR_LSC:
      ev.type = EventType::kLsc;
      FillLink(ev, port);
      break;
    case RTE_ETH_EVENT_INTR_RMV:
      ev.type = EventType::kRemoval;
      break;
    case RTE_ETH_EVENT_NEW:
      ev.type = EventType::kNew;
      // the name is read at drain time (see IntrDrain)
      break;
    case RTE_ETH_EVENT_DESTROY:
      ev.type = EventType::kDestroy;
      break;
    default:
      return 0;
  }
  Push(std::move(ev));
  return 0;
}

int EventCode(const std::string& name) {
  if (name == "lsc") return RTE_ETH_EVENT_INTR_LSC;
  if (name == "removal") return RTE_ETH_EVENT_INTR_RMV;
  if (name == "new") return RTE_ETH_EVENT_NEW;
  if (name == "destroy") return RTE_ETH_EVENT_DESTROY;
  return -1;
}

void UnregisterEth(uint32_t port, int event) {
  RetryWhileBusy([&] {
    return rte_eth_dev_callback_unregister(static_cast<uint16_t>(port), static_cast<rte_eth_event_type>(event),
                                           EthEventCallback, nullptr);
  });
}

// intrWatchEth(port | -1, event): -1 = every port (RTE_ETH_ALL), the only way to see NEW ports.
// LSC on net_tap is watched through the kernel's netlink messages instead (the PMD never raises
// RTE_ETH_EVENT_INTR_LSC); the ethdev callback is registered as well, in case a DPDK does.
Napi::Value IntrWatchEth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  int64_t portArg = ArgInt64(info, 0, "the port id");
  std::string name = ArgString(info, 1, "the ethdev event");
  int event = EventCode(name);
  if (event < 0) ThrowError(env, "EINVAL", "unknown ethdev event '" + name + "'");
  uint32_t port = RTE_ETH_ALL;
  if (portArg >= 0) port = RequirePort(env, info[0]);
  const char* via = "interrupt";
  if (event == RTE_ETH_EVENT_INTR_RMV && !PortHasFlag(static_cast<uint16_t>(port), RTE_ETH_DEV_INTR_RMV)) {
    uint16_t p = static_cast<uint16_t>(port);
    ThrowError(
        env, "ENOTSUP",
        "port " + std::to_string(port) + " (" + DriverName(p) +
            ") has no removal interrupt (its PMD does not set RTE_ETH_DEV_INTR_RMV; hardware PMDs such as mlx5 do)",
        ENOTSUP);
  }
  if (event == RTE_ETH_EVENT_INTR_LSC) {
    if (port == RTE_ETH_ALL) ThrowError(env, "EINVAL", "watch link status per port");
    uint16_t p = static_cast<uint16_t>(port);
    if (!PortHasFlag(p, RTE_ETH_DEV_INTR_LSC)) {
      ThrowError(env, "ENOTSUP",
                 "port " + std::to_string(port) + " (" + DriverName(p) +
                     ") has no link status interrupt (its PMD does not set RTE_ETH_DEV_INTR_LSC)",
                 ENOTSUP);
    }
    if (DriverName(p) == "net_tap") {
      WatchNetlinkLink(env, p);
      via = "netlink";
    }
  }
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    if (gEthRegs.count({port, event})) return Napi::String::New(env, via);
  }
  int rc = rte_eth_dev_callback_register(static_cast<uint16_t>(port), static_cast<rte_eth_event_type>(event),
                                         EthEventCallback, nullptr);
  if (rc < 0) ThrowError(env, ErrnoName(-rc), "rte_eth_dev_callback_register failed: " + ErrnoText(-rc), -rc);
  std::lock_guard<std::mutex> lock(gRegMutex);
  gEthRegs.insert({port, event});
  return Napi::String::New(env, via);
}

Napi::Value IntrUnwatchEth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t portArg = ArgInt64(info, 0, "the port id");
  int event = EventCode(ArgString(info, 1, "the ethdev event"));
  uint32_t port = portArg < 0 ? RTE_ETH_ALL : static_cast<uint32_t>(portArg);
  bool had = false;
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    had = gEthRegs.erase({port, event}) > 0;
  }
  if (event == RTE_ETH_EVENT_INTR_LSC) UnwatchNetlinkLink(port);
  if (had && EalReady()) UnregisterEth(port, event);
  return Napi::Boolean::New(env, had);
}

void InitEthdevEvents(Napi::Env env, Napi::Object exports) {
  exports.Set("intrWatchEth", Napi::Function::New(env, IntrWatchEth));
  exports.Set("intrUnwatchEth", Napi::Function::New(env, IntrUnwatchEth));
}

}  // namespace

void CloseEthdevEvents() {
  std::set<std::pair<uint32_t, int>> regs;
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    regs.swap(gEthRegs);
  }
  for (const auto& r : regs) UnregisterEth(r.first, r.second);
}

uint32_t EthRegistrationCount() {
  std::lock_guard<std::mutex> lock(gRegMutex);
  return static_cast<uint32_t>(gEthRegs.size());
}

MPBUS_FACILITY(InitEthdevEvents);
}  // namespace intr
}  // namespace mpbus
