// What the interrupt sources of the primary share (native/intr_*.cc): the event record, the one
// ordered queue every source pushes to (intr_queue.cc), the port helpers (intr_ports.cc) and
// the fd sources of the EAL interrupt thread (intr_fds.cc) that the netlink watcher uses.
// What to watch, reference counts and validation are TypeScript's business (src/interrupts/).
#pragma once
#include <napi.h>
#include <rte_cycles.h>
#include <sched.h>

#include <cerrno>
#include <cstdint>
#include <string>

namespace mpbus {
namespace intr {

enum class EventType { kLsc, kRemoval, kNew, kDestroy, kAlarm, kFd };

// One event as the native side saw it. Plain data: built on a DPDK thread, read on the JS thread.
struct NativeEvent {
  uint64_t seq = 0;
  EventType type = EventType::kLsc;
  double timestamp = 0;  // ms since the epoch, like Date.now(), taken when the callback ran
  int portId = -1;
  std::string device;
  // link (lsc, and the link state attached to new ports)
  bool hasLink = false;
  bool linkUp = false;
  uint32_t speedMbps = 0;
  bool fullDuplex = false;
  bool autoneg = false;
  const char* via = "interrupt";
  // alarm / fd sources
  uint32_t sourceId = 0;
  uint64_t value = 0;
  uint32_t bytes = 0;
};

// ---- the ordered queue (intr_queue.cc) ----
// Called from any thread; the order of the calls is the order JavaScript sees.
void Push(NativeEvent ev);

// ---- ports (intr_ports.cc) ----
std::string PortName(uint16_t port);
// The port's link as read now (net_tap: the kernel's word), into ev's link fields.
void FillLink(NativeEvent& ev, uint16_t port);
// A port id this process may read through: valid here and not closed by the primary since.
bool PortReadable(uint16_t port);
// A readable port (PortReadable), or throws EINVAL / ENODEV.
uint16_t RequirePort(Napi::Env env, const Napi::Value& v);
bool PortHasFlag(uint16_t port, uint32_t flag);
std::string DriverName(uint16_t port);
bool PortStarted(uint16_t port);
void MarkStarted(uint16_t port, bool started);
// Stops the ports this process started (see IntrClose).
void StopStartedPorts();

// ---- fd sources on the EAL interrupt thread (intr_fds.cc) ----
enum class FdKind { kEventfd, kRaw, kNetlink };
// Registers fd with the EAL interrupt thread. Returns the source id, or throws.
uint32_t AddFdSource(Napi::Env env, int fd, FdKind kind, bool ownsFd);
bool RemoveFdSource(uint32_t id);
void CloseFdSources();
uint32_t FdSourceCount();

// ---- net_tap's link through netlink (intr_netlink.cc) ----
// Reads what the kernel sent on the netlink socket fd; called by the fd source of kind kNetlink.
void HandleNetlink(int fd);
// Watches port's link through netlink (net_tap raises no LSC interrupt); throws when it cannot.
void WatchNetlinkLink(Napi::Env env, uint16_t port);
// Stops watching `port` (every port when closing); closes the socket once none is watched.
void UnwatchNetlinkLink(uint32_t port);
void CloseNetlink();
uint32_t NetlinkPortCount();
// The kernel's view of a net_tap port's link; false for other PMDs.
bool KernelLinkUp(uint16_t port, bool* up);
// True for the netlink watcher's own fd source (not the user's to unwatch).
bool IsNetlinkSource(uint32_t id);

// ---- ethdev events (intr_ethdev.cc), alarms (intr_alarms.cc) ----
void CloseEthdevEvents();
uint32_t EthRegistrationCount();
void CloseAlarms();
uint32_t AlarmCount();

// An unregister can meet the callback running on the interrupt thread (-EAGAIN). Our callbacks
// only queue an event and never block, so that lasts microseconds: retry, yielding the CPU to the
// interrupt thread, not sleeping the JS thread (bounded at 1 s of wall time, for a DPDK gone wrong).
template <typename F>
int RetryWhileBusy(F unregister) {
  int rc = unregister();
  uint64_t until = rte_get_timer_cycles() + rte_get_timer_hz();
  while (rc == -EAGAIN && rte_get_timer_cycles() < until) {
    sched_yield();
    rc = unregister();
  }
  return rc;
}

}  // namespace intr
}  // namespace mpbus
