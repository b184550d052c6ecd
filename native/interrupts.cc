// Interrupt and event sources of the primary: ethdev events (LSC, removal, new, destroy), device
// hotplug, EAL alarms, user fds watched by the EAL interrupt thread, and a netlink watcher that
// stands in for the LSC interrupt net_tap never raises (see docs/interrupts.md).
//
// Every callback runs on a DPDK thread (the interrupt thread, or whichever thread probes or
// releases a device). It copies what it needs into one ordered queue and wakes JavaScript through
// a single thread-safe function, once per burst; JavaScript drains the queue with intrDrain().
// What to watch, reference counts and validation are TypeScript's business (src/interrupts/).
#define ALLOW_EXPERIMENTAL_API 1
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <rte_alarm.h>
#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_interrupts.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <string.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace mpbus {
namespace {

enum class EventType { kLsc, kRemoval, kNew, kDestroy, kAlarm, kFd };

const char* EventTypeName(EventType t) {
  switch (t) {
    case EventType::kLsc: return "lsc";
    case EventType::kRemoval: return "removal";
    case EventType::kNew: return "new";
    case EventType::kDestroy: return "destroy";
    case EventType::kAlarm: return "alarm";
    case EventType::kFd: return "fd";
  }
  return "unknown";
}

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

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// ---- the ordered queue and its wake-up ----------------------------------------------------
std::mutex gQueueMutex;
std::deque<NativeEvent> gQueue;
uint64_t gNextSeq = 1;
bool gWakePending = false;
bool gOpen = false;
Napi::ThreadSafeFunction gWake;
constexpr size_t kMaxQueued = 65536;  // JS stopped draining: drop the newest, count them
uint64_t gDropped = 0;

// Called from any thread. Order = order of the calls (one lock), which for a single DPDK thread
// is the order the primary saw the events.
void Push(NativeEvent ev) {
  std::lock_guard<std::mutex> lock(gQueueMutex);
  if (!gOpen) return;
  if (gQueue.size() >= kMaxQueued) {
    gDropped++;
    return;
  }
  ev.seq = gNextSeq++;
  if (ev.timestamp == 0) ev.timestamp = NowMs();
  gQueue.push_back(std::move(ev));
  if (!gWakePending) {
    gWakePending = true;
    gWake.NonBlockingCall();
  }
}

// The kernel's view of a net_tap port's link, with the PMD's rule (up = IFF_UP && IFF_RUNNING).
// With intr_conf.lsc set and the port started, ethdev returns the PMD's cached copy, which
// net_tap refreshes only when its own netlink message arrives: just after a start it is stale.
bool KernelLinkUp(uint16_t port, bool* up) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.if_index == 0 || info.driver_name == nullptr ||
      strcmp(info.driver_name, "net_tap") != 0) {
    return false;
  }
  ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  if (if_indextoname(info.if_index, ifr.ifr_name) == nullptr) return false;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  close(fd);
  if (ok) *up = (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
  return ok;
}

void FillLink(NativeEvent& ev, uint16_t port) {
  rte_eth_link link;
  memset(&link, 0, sizeof(link));
  if (rte_eth_link_get_nowait(port, &link) != 0) return;
  ev.hasLink = true;
  ev.linkUp = link.link_status == RTE_ETH_LINK_UP;
  bool kernelUp;
  if (KernelLinkUp(port, &kernelUp)) ev.linkUp = kernelUp;
  ev.speedMbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
  ev.fullDuplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
  ev.autoneg = link.link_autoneg == RTE_ETH_LINK_AUTONEG;
}

std::string PortName(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {0};
  if (rte_eth_dev_get_name_by_port(port, name) != 0) return std::string();
  return name;
}

// ---- ethdev events ------------------------------------------------------------------------
// Registered per (port, event); RTE_ETH_ALL stands for "every port, present and future".
std::mutex gRegMutex;
std::set<std::pair<uint32_t, int>> gEthRegs;

// net_tap's LSC comes through our netlink watcher; remember which port's state it last reported
// so kernel messages that do not flip the link (address, mtu, ...) make no event.
struct NetlinkPort {
  uint16_t port;
  bool up;
};
std::map<int, NetlinkPort> gNetlinkPorts;  // kernel ifindex -> port; under gRegMutex

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

void UnregisterEth(uint32_t port, int event) {
  RetryWhileBusy([&] {
    return rte_eth_dev_callback_unregister(static_cast<uint16_t>(port),
                                           static_cast<rte_eth_event_type>(event),
                                           EthEventCallback, nullptr);
  });
}

// ---- user fds and the netlink watcher on the EAL interrupt thread -----------------------------
enum class FdKind { kEventfd, kRaw, kNetlink };

struct FdSource {
  uint32_t id;
  FdKind kind;
  int fd;
  bool ownsFd;
  rte_intr_handle* handle;
};

std::mutex gFdMutex;
std::map<uint32_t, std::shared_ptr<FdSource>> gFdSources;
uint32_t gNextFdId = 1;
uint32_t gNetlinkSourceId = 0;  // 0 = no netlink watcher

void HandleNetlink(int fd) {
  char buf[8192];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) return;
    int len = static_cast<int>(n);
    for (nlmsghdr* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<unsigned>(len));
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_type != RTM_NEWLINK || nh->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) continue;
      auto* info = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
      // net_tap calls a link up only when the interface is both UP and RUNNING (tap_link_update).
      bool up = (info->ifi_flags & IFF_UP) && (info->ifi_flags & IFF_RUNNING);
      NativeEvent ev;
      {
        std::lock_guard<std::mutex> lock(gRegMutex);
        auto it = gNetlinkPorts.find(info->ifi_index);
        if (it == gNetlinkPorts.end() || it->second.up == up) continue;
        it->second.up = up;
        ev.portId = it->second.port;
      }
      ev.type = EventType::kLsc;
      ev.via = "netlink";
      ev.device = PortName(static_cast<uint16_t>(ev.portId));
      FillLink(ev, static_cast<uint16_t>(ev.portId));
      ev.hasLink = true;
      ev.linkUp = up;  // the kernel's word, whatever the PMD's copy says yet
      Push(std::move(ev));
    }
  }
}

void FdCallback(void* arg) {
  uint32_t id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  std::shared_ptr<FdSource> src;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    auto it = gFdSources.find(id);
    if (it == gFdSources.end()) return;
    src = it->second;
  }
  if (src->kind == FdKind::kNetlink) {
    HandleNetlink(src->fd);
    return;
  }
  // The EAL does not read EXT fds: the callback must, or the level-triggered epoll spins.
  NativeEvent ev;
  ev.type = EventType::kFd;
  ev.sourceId = id;
  if (src->kind == FdKind::kEventfd) {
    uint64_t value = 0;
    ssize_t n = read(src->fd, &value, sizeof(value));
    if (n != sizeof(value)) return;  // spurious wake-up (another reader took it)
    ev.value = value;
  } else {
    char buf[4096];
    ssize_t total = 0;
    for (;;) {
      ssize_t n = read(src->fd, buf, sizeof(buf));
      if (n <= 0) break;
      total += n;
      if (n < static_cast<ssize_t>(sizeof(buf))) break;
    }
    if (total == 0) return;
    ev.bytes = static_cast<uint32_t>(total);
  }
  Push(std::move(ev));
}

// Registers fd with the EAL interrupt thread. Returns the source id, or throws.
uint32_t AddFdSource(Napi::Env env, int fd, FdKind kind, bool ownsFd) {
  rte_intr_handle* handle = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
  if (handle == nullptr) {
    if (ownsFd) close(fd);
    ThrowError(env, "ENOMEM", "rte_intr_instance_alloc failed", ENOMEM);
  }
  rte_intr_type_set(handle, RTE_INTR_HANDLE_EXT);
  rte_intr_fd_set(handle, fd);
  auto src = std::make_shared<FdSource>(FdSource{0, kind, fd, ownsFd, handle});
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    src->id = gNextFdId++;
    gFdSources[src->id] = src;
  }
  int rc = rte_intr_callback_register(handle, FdCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(src->id)));
  if (rc < 0) {
    {
      std::lock_guard<std::mutex> lock(gFdMutex);
      gFdSources.erase(src->id);
    }
    rte_intr_instance_free(handle);
    if (ownsFd) close(fd);
    ThrowError(env, ErrnoName(-rc), "the EAL interrupt thread refused fd " + std::to_string(fd) + ": " + ErrnoText(-rc), -rc);
  }
  return src->id;
}

bool RemoveFdSource(uint32_t id) {
  std::shared_ptr<FdSource> src;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    auto it = gFdSources.find(id);
    if (it == gFdSources.end()) return false;
    src = it->second;
    gFdSources.erase(it);
  }
  RetryWhileBusy([&] {
    return rte_intr_callback_unregister(src->handle, FdCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  });
  rte_intr_instance_free(src->handle);
  if (src->ownsFd) close(src->fd);
  return true;
}

int OpenNetlinkLinkSocket() {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  sockaddr_nl local;
  memset(&local, 0, sizeof(local));
  local.nl_family = AF_NETLINK;
  local.nl_groups = RTMGRP_LINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

// ---- alarms -------------------------------------------------------------------------------
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

// ---- ports --------------------------------------------------------------------------------
rte_mempool* gPortPool = nullptr;
// Ports this process started (ethdev has no public "is started" query in 22.11).
std::mutex gPortMutex;
std::set<uint16_t> gStartedPorts;

bool PortStarted(uint16_t port) {
  std::lock_guard<std::mutex> lock(gPortMutex);
  return gStartedPorts.count(port) > 0;
}

void MarkStarted(uint16_t port, bool started) {
  std::lock_guard<std::mutex> lock(gPortMutex);
  if (started) gStartedPorts.insert(port);
  else gStartedPorts.erase(port);
}

uint16_t RequirePort(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) ThrowError(env, "EINVAL", "port id must be a number");
  int64_t port = v.As<Napi::Number>().Int64Value();
  if (port < 0 || port >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port(static_cast<uint16_t>(port))) {
    ThrowError(env, "ENODEV", "no ethdev port " + std::to_string(port) +
                                  " in this process: give the device at start (vdevs) or hotplug it first",
               ENODEV);
  }
  return static_cast<uint16_t>(port);
}

bool PortHasFlag(uint16_t port, uint32_t flag) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.dev_flags == nullptr) return false;
  return (*info.dev_flags & flag) != 0;
}

bool PortHasLscInterrupt(uint16_t port) { return PortHasFlag(port, RTE_ETH_DEV_INTR_LSC); }

std::string DriverName(uint16_t port) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.driver_name == nullptr) return std::string();
  return info.driver_name;
}

Napi::Object LinkObject(Napi::Env env, uint16_t port) {
  NativeEvent ev;
  FillLink(ev, port);
  Napi::Object link = Napi::Object::New(env);
  link.Set("status", ev.linkUp ? "up" : "down");
  link.Set("speedMbps", ev.speedMbps);
  link.Set("duplex", ev.fullDuplex ? "full" : "half");
  link.Set("autoneg", ev.autoneg);
  return link;
}

// ---- JS entry points ------------------------------------------------------------------------
Napi::Value IntrOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::lock_guard<std::mutex> lock(gQueueMutex);
  if (gOpen) ThrowError(env, "EALREADY", "interrupt delivery is already open in this process");
  gWake = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "mpbus-interrupts", 0, 1,
                                        [](Napi::Env) {});
  gWake.Unref(env);  // events never keep the process alive on their own
  gOpen = true;
  gWakePending = false;
  return env.Undefined();
}

// Hands the queued events to JavaScript, oldest first, and re-arms the wake-up.
Napi::Value IntrDrain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::deque<NativeEvent> batch;
  {
    std::lock_guard<std::mutex> lock(gQueueMutex);
    batch.swap(gQueue);
    gWakePending = false;
  }
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
  std::set<std::pair<uint32_t, int>> regs;
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    regs.swap(gEthRegs);
    gNetlinkPorts.clear();
  }
  for (const auto& r : regs) UnregisterEth(r.first, r.second);
  std::vector<uint32_t> alarms;
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    for (const auto& a : gAlarms) alarms.push_back(a.first);
  }
  for (uint32_t id : alarms) CancelAlarm(id);
  std::vector<uint32_t> fds;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    for (const auto& s : gFdSources) fds.push_back(s.first);
  }
  for (uint32_t id : fds) RemoveFdSource(id);
  gNetlinkSourceId = 0;
  // Stop the ports this process started: a started net_tap keeps its own netlink socket on the
  // interrupt thread, and a wake-up of that thread during rte_eal_cleanup (which frees the alarm
  // handle without unregistering it, DPDK 22.11) crashes the process on exit.
  std::set<uint16_t> started;
  {
    std::lock_guard<std::mutex> lock(gPortMutex);
    started.swap(gStartedPorts);
  }
  if (EalReady()) {
    for (uint16_t port : started) rte_eth_dev_stop(port);
  }
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(gQueueMutex);
    release = gOpen;
    gOpen = false;
    gQueue.clear();
  }
  if (release) gWake.Release();
  return env.Undefined();
}

Napi::Value IntrStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    o.Set("ethRegistrations", static_cast<uint32_t>(gEthRegs.size()));
    o.Set("netlinkPorts", static_cast<uint32_t>(gNetlinkPorts.size()));
  }
  {
    std::lock_guard<std::mutex> lock(gAlarmMutex);
    o.Set("alarms", static_cast<uint32_t>(gAlarms.size()));
  }
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    o.Set("fdSources", static_cast<uint32_t>(gFdSources.size()));
  }
  {
    std::lock_guard<std::mutex> lock(gQueueMutex);
    o.Set("queued", static_cast<uint32_t>(gQueue.size()));
    o.Set("dropped", Napi::Number::New(env, static_cast<double>(gDropped)));
  }
  return o;
}

// intrWatchEth(port | -1, event): -1 = every port (RTE_ETH_ALL), the only way to see NEW ports.
// LSC on net_tap is watched through the kernel's netlink messages instead (the PMD never raises
// RTE_ETH_EVENT_INTR_LSC); the ethdev callback is registered as well, in case a DPDK does.
Napi::Value IntrWatchEth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  int64_t portArg = info[0].As<Napi::Number>().Int64Value();
  std::string name = info[1].As<Napi::String>();
  int event = EventCode(name);
  if (event < 0) ThrowError(env, "EINVAL", "unknown ethdev event '" + name + "'");
  uint32_t port = RTE_ETH_ALL;
  if (portArg >= 0) port = RequirePort(env, info[0]);
  const char* via = "interrupt";
  if (event == RTE_ETH_EVENT_INTR_RMV && !PortHasFlag(static_cast<uint16_t>(port), RTE_ETH_DEV_INTR_RMV)) {
    uint16_t p = static_cast<uint16_t>(port);
    ThrowError(env, "ENOTSUP",
               "port " + std::to_string(port) + " (" + DriverName(p) +
                   ") has no removal interrupt (its PMD does not set RTE_ETH_DEV_INTR_RMV; hardware PMDs such as mlx5 do)",
               ENOTSUP);
  }
  if (event == RTE_ETH_EVENT_INTR_LSC) {
    if (port == RTE_ETH_ALL) ThrowError(env, "EINVAL", "watch link status per port");
    uint16_t p = static_cast<uint16_t>(port);
    if (!PortHasLscInterrupt(p)) {
      ThrowError(env, "ENOTSUP",
                 "port " + std::to_string(port) + " (" + DriverName(p) +
                     ") has no link status interrupt (its PMD does not set RTE_ETH_DEV_INTR_LSC)",
                 ENOTSUP);
    }
    if (DriverName(p) == "net_tap") {
      rte_eth_dev_info dinfo;
      if (rte_eth_dev_info_get(p, &dinfo) != 0 || dinfo.if_index == 0) {
        ThrowError(env, "ENOTSUP", "net_tap port " + std::to_string(port) + " has no kernel interface index", ENOTSUP);
      }
      if (gNetlinkSourceId == 0) {
        int fd = OpenNetlinkLinkSocket();
        if (fd < 0) ThrowError(env, ErrnoName(-fd), std::string("cannot open a netlink socket: ") + strerror(-fd), -fd);
        gNetlinkSourceId = AddFdSource(env, fd, FdKind::kNetlink, true);
      }
      NativeEvent now;
      FillLink(now, p);
      std::lock_guard<std::mutex> lock(gRegMutex);
      gNetlinkPorts[static_cast<int>(dinfo.if_index)] = NetlinkPort{p, now.linkUp};
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
  int64_t portArg = info[0].As<Napi::Number>().Int64Value();
  int event = EventCode(info[1].As<Napi::String>());
  uint32_t port = portArg < 0 ? RTE_ETH_ALL : static_cast<uint32_t>(portArg);
  bool had = false;
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    had = gEthRegs.erase({port, event}) > 0;
    if (event == RTE_ETH_EVENT_INTR_LSC) {
      for (auto it = gNetlinkPorts.begin(); it != gNetlinkPorts.end();) {
        it = it->second.port == port ? gNetlinkPorts.erase(it) : std::next(it);
      }
    }
  }
  if (had && EalReady()) UnregisterEth(port, event);
  bool netlinkIdle;
  {
    std::lock_guard<std::mutex> lock(gRegMutex);
    netlinkIdle = gNetlinkPorts.empty();
  }
  if (netlinkIdle && gNetlinkSourceId != 0) {
    RemoveFdSource(gNetlinkSourceId);
    gNetlinkSourceId = 0;
  }
  return Napi::Boolean::New(env, had);
}

Napi::Value IntrPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  uint16_t port;
  RTE_ETH_FOREACH_DEV(port) out.Set(i++, port);
  return out;
}

Napi::Value IntrPortInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = RequirePort(env, info[0]);
  rte_eth_dev_info dinfo;
  int rc = rte_eth_dev_info_get(port, &dinfo);
  if (rc != 0) ThrowError(env, ErrnoName(-rc), "rte_eth_dev_info_get failed: " + ErrnoText(-rc), -rc);
  Napi::Object o = Napi::Object::New(env);
  o.Set("portId", port);
  o.Set("name", PortName(port));
  o.Set("driver", dinfo.driver_name ? dinfo.driver_name : "");
  o.Set("lscInterrupt", dinfo.dev_flags && (*dinfo.dev_flags & RTE_ETH_DEV_INTR_LSC) != 0);
  o.Set("removalInterrupt", dinfo.dev_flags && (*dinfo.dev_flags & RTE_ETH_DEV_INTR_RMV) != 0);
  o.Set("ifIndex", dinfo.if_index);
  char ifname[IF_NAMESIZE] = {0};
  if (dinfo.if_index != 0 && if_indextoname(dinfo.if_index, ifname) != nullptr) o.Set("ifName", ifname);
  o.Set("started", PortStarted(port));
  o.Set("link", LinkObject(env, port));
  return o;
}

Napi::Value IntrLinkGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  return LinkObject(env, RequirePort(env, info[0]));
}

// intrPostLink(port): queues the port's link as read now, in order with the interrupts, after
// this process started or stopped it (PMDs without a link interrupt report no other way).
Napi::Value IntrPostLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = RequirePort(env, info[0]);
  NativeEvent ev;
  ev.type = EventType::kLsc;
  ev.portId = port;
  ev.device = PortName(port);
  ev.via = "port-control";
  FillLink(ev, port);
  Push(std::move(ev));
  return env.Undefined();
}

// intrPortStart(port, lsc): one rx and one tx queue, the link status interrupt armed at configure
// when asked (PMDs such as net_tap arm it only if intr_conf.lsc is set then).
Napi::Value IntrPortStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = RequirePort(env, info[0]);
  bool lsc = info[1].ToBoolean();
  if (PortStarted(port)) return Napi::Boolean::New(env, PortHasLscInterrupt(port) && lsc);
  if (gPortPool == nullptr) {
    gPortPool = rte_pktmbuf_pool_create("mpbus_port_pool", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
    if (gPortPool == nullptr) gPortPool = rte_mempool_lookup("mpbus_port_pool");
    if (gPortPool == nullptr) ThrowError(env, ErrnoName(rte_errno), "cannot create the ports' mbuf pool: " + ErrnoText(rte_errno), rte_errno);
  }
  rte_eth_conf conf;
  memset(&conf, 0, sizeof(conf));
  conf.intr_conf.lsc = lsc && PortHasLscInterrupt(port) ? 1 : 0;
  int rc = rte_eth_dev_configure(port, 1, 1, &conf);
  if (rc == 0) rc = rte_eth_rx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr, gPortPool);
  if (rc == 0) rc = rte_eth_tx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr);
  if (rc == 0) rc = rte_eth_dev_start(port);
  if (rc != 0) {
    std::string log = RecentDpdkLog(4);
    ThrowError(env, ErrnoName(-rc), "cannot start port " + std::to_string(port) + ": " + ErrnoText(-rc) +
                                        (log.empty() ? "" : "\nDPDK said:\n" + log), -rc);
  }
  MarkStarted(port, true);
  return Napi::Boolean::New(env, conf.intr_conf.lsc != 0);
}

Napi::Value IntrPortStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = RequirePort(env, info[0]);
  if (!PortStarted(port)) return env.Undefined();
  int rc = rte_eth_dev_stop(port);
  if (rc == 0) MarkStarted(port, false);
  if (rc != 0) ThrowError(env, ErrnoName(-rc), "cannot stop port " + std::to_string(port) + ": " + ErrnoText(-rc), -rc);
  return env.Undefined();
}

// Hotplug runs on a pool thread: in a primary, rte_dev_probe/remove wait for every secondary
// to attach/detach the device as well (an rte_mp request with a timeout).
class HotplugWorker : public Napi::AsyncWorker {
 public:
  HotplugWorker(Napi::Env env, bool attach, std::string arg)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), attach_(attach), arg_(std::move(arg)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    if (attach_) {
      rc_ = rte_dev_probe(arg_.c_str());
      if (rc_ == 0) {
        // The device's name is the devargs up to the first comma (net_null1,size=64 -> net_null1).
        std::string name = arg_.substr(0, arg_.find(','));
        uint16_t port;
        if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0) port_ = port;
      }
      return;
    }
    uint16_t port;
    if (rte_eth_dev_get_port_by_name(arg_.c_str(), &port) != 0) {
      rc_ = -ENODEV;
      return;
    }
    port_ = port;
    if (PortStarted(port)) {
      rte_eth_dev_stop(port);
      MarkStarted(port, false);
    }
    rte_eth_dev_info dinfo;
    rc_ = rte_eth_dev_info_get(port, &dinfo);
    if (rc_ == 0) rc_ = rte_dev_remove(dinfo.device);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ != 0) {
      int e = rc_ < 0 ? -rc_ : rc_;
      std::string log = RecentDpdkLog(4);
      deferred_.Reject(MakeError(env, ErrnoName(e),
                                 std::string(attach_ ? "cannot attach device '" : "cannot detach device '") + arg_ +
                                     "': " + ErrnoText(e) + (log.empty() ? "" : "\nDPDK said:\n" + log),
                                 e)
                           .Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", arg_.substr(0, arg_.find(',')));
    if (port_ >= 0) o.Set("portId", port_);
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  bool attach_;
  std::string arg_;
  int rc_ = 0;
  int port_ = -1;
};

Napi::Value IntrHotplug(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  bool attach = info[0].ToBoolean();
  auto* worker = new HotplugWorker(env, attach, info[1].As<Napi::String>());
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// intrAlarmSet(id, delayUs, periodic)
Napi::Value IntrAlarmSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  uint64_t us = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
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
  if (EalReady()) CancelAlarm(info[0].As<Napi::Number>().Uint32Value());
  return info.Env().Undefined();
}

// intrFdWatch(fd, kind: 'eventfd' | 'raw') -> source id. The caller keeps owning fd.
Napi::Value IntrFdWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string kind = info[1].As<Napi::String>();
  return Napi::Number::New(env, AddFdSource(env, fd, kind == "eventfd" ? FdKind::kEventfd : FdKind::kRaw, false));
}

Napi::Value IntrFdUnwatch(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (id == gNetlinkSourceId) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), RemoveFdSource(id));
}

// Eventfds for user sources: Node has no API for them.
Napi::Value EventfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowError(env, ErrnoName(errno), std::string("eventfd failed: ") + strerror(errno), errno);
  return Napi::Number::New(env, fd);
}

Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint64_t v = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  if (write(fd, &v, sizeof(v)) != sizeof(v)) ThrowError(env, ErrnoName(errno), std::string("eventfd write failed: ") + strerror(errno), errno);
  return env.Undefined();
}

Napi::Value EventfdClose(const Napi::CallbackInfo& info) {
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

void InitInterrupts(Napi::Env env, Napi::Object exports) {
  exports.Set("intrOpen", Napi::Function::New(env, IntrOpen));
  exports.Set("intrDrain", Napi::Function::New(env, IntrDrain));
  exports.Set("intrClose", Napi::Function::New(env, IntrClose));
  exports.Set("intrStats", Napi::Function::New(env, IntrStats));
  exports.Set("intrWatchEth", Napi::Function::New(env, IntrWatchEth));
  exports.Set("intrUnwatchEth", Napi::Function::New(env, IntrUnwatchEth));
  exports.Set("intrPorts", Napi::Function::New(env, IntrPorts));
  exports.Set("intrPortInfo", Napi::Function::New(env, IntrPortInfo));
  exports.Set("intrLinkGet", Napi::Function::New(env, IntrLinkGet));
  exports.Set("intrPortStart", Napi::Function::New(env, IntrPortStart));
  exports.Set("intrPortStop", Napi::Function::New(env, IntrPortStop));
  exports.Set("intrPostLink", Napi::Function::New(env, IntrPostLink));
  exports.Set("intrHotplug", Napi::Function::New(env, IntrHotplug));
  exports.Set("intrAlarmSet", Napi::Function::New(env, IntrAlarmSet));
  exports.Set("intrAlarmCancel", Napi::Function::New(env, IntrAlarmCancel));
  exports.Set("intrFdWatch", Napi::Function::New(env, IntrFdWatch));
  exports.Set("intrFdUnwatch", Napi::Function::New(env, IntrFdUnwatch));
  exports.Set("eventfdOpen", Napi::Function::New(env, EventfdOpen));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite));
  exports.Set("eventfdClose", Napi::Function::New(env, EventfdClose));
}

}  // namespace

MPBUS_FACILITY(InitInterrupts);
}  // namespace mpbus
