// The group's ethdev ports as the interrupt facility sees them: the list, a port's info and link
// read now, and starting and stopping a port (one rx and one tx queue), with the link event a
// start or stop posts in order with the interrupts. Ethdev has no public "is started" query in
// DPDK 22.11, so the ports this process started are tracked here.
#define ALLOW_EXPERIMENTAL_API 1
#include <net/if.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <string.h>

#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

rte_mempool* gPortPool = nullptr;
std::mutex gPortMutex;
std::set<uint16_t> gStartedPorts;

bool PortHasLscInterrupt(uint16_t port) { return PortHasFlag(port, RTE_ETH_DEV_INTR_LSC); }

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

Napi::Value IntrPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t i = 0;
  uint16_t port;
  RTE_ETH_FOREACH_DEV(port) {
    if (PortReadable(port)) out.Set(i++, port);
  }
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
    if (gPortPool == nullptr)
      ThrowError(env, ErrnoName(rte_errno), "cannot create the ports' mbuf pool: " + ErrnoText(rte_errno), rte_errno);
  }
  rte_eth_conf conf;
  memset(&conf, 0, sizeof(conf));
  conf.intr_conf.lsc = lsc && PortHasLscInterrupt(port) ? 1 : 0;
  uint64_t logMark = DpdkLogMark();
  int rc = rte_eth_dev_configure(port, 1, 1, &conf);
  if (rc == 0) rc = rte_eth_rx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr, gPortPool);
  if (rc == 0) rc = rte_eth_tx_queue_setup(port, 0, 128, rte_eth_dev_socket_id(port), nullptr);
  if (rc == 0) rc = rte_eth_dev_start(port);
  if (rc != 0) {
    std::string log = RecentDpdkLog(4, logMark);
    ThrowError(env, ErrnoName(-rc),
               "cannot start port " + std::to_string(port) + ": " + ErrnoText(-rc) +
                   (log.empty() ? "" : "\nDPDK said:\n" + log),
               -rc);
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

void InitPorts(Napi::Env env, Napi::Object exports) {
  exports.Set("intrPorts", Napi::Function::New(env, IntrPorts));
  exports.Set("intrPortInfo", Napi::Function::New(env, IntrPortInfo));
  exports.Set("intrLinkGet", Napi::Function::New(env, IntrLinkGet));
  exports.Set("intrPortStart", Napi::Function::New(env, IntrPortStart));
  exports.Set("intrPortStop", Napi::Function::New(env, IntrPortStop));
  exports.Set("intrPostLink", Napi::Function::New(env, IntrPostLink));
}

}  // namespace

std::string PortName(uint16_t port) {
  char name[RTE_ETH_NAME_MAX_LEN] = {0};
  if (rte_eth_dev_get_name_by_port(port, name) != 0) return std::string();
  return name;
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

// In a secondary, rte_eth_dev_is_valid_port reads this process's own port table, which the
// primary's rte_eth_dev_close does not reach: the primary frees the port's private data and zeroes
// its shared data (the name with it), and a PMD's callbacks in this process then read through a
// null dev_private (net_null's info_get crashed a secondary polling testpmd as testpmd quit). The
// shared name, read by rte_eth_dev_get_name_by_port, is the mark of a port still there. The span
// between the primary's frees and its zeroing stays open (short): a secondary cannot see it.
bool PortReadable(uint16_t port) {
  if (port >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port(port)) return false;
  return !PortName(port).empty();
}

uint16_t RequirePort(Napi::Env env, const Napi::Value& v) {
  if (!v.IsNumber()) ThrowError(env, "EINVAL", "port id must be a number");
  int64_t port = v.As<Napi::Number>().Int64Value();
  if (port < 0 || port >= RTE_MAX_ETHPORTS || !rte_eth_dev_is_valid_port(static_cast<uint16_t>(port))) {
    ThrowError(env, "ENODEV",
               "no ethdev port " + std::to_string(port) +
                   " in this process: give the device at start (vdevs) or hotplug it first",
               ENODEV);
  }
  if (!PortReadable(static_cast<uint16_t>(port))) {
    ThrowError(env, "ENODEV", "ethdev port " + std::to_string(port) + " was closed by the primary", ENODEV);
  }
  return static_cast<uint16_t>(port);
}

bool PortHasFlag(uint16_t port, uint32_t flag) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.dev_flags == nullptr) return false;
  return (*info.dev_flags & flag) != 0;
}

std::string DriverName(uint16_t port) {
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0 || info.driver_name == nullptr) return std::string();
  return info.driver_name;
}

bool PortStarted(uint16_t port) {
  std::lock_guard<std::mutex> lock(gPortMutex);
  return gStartedPorts.count(port) > 0;
}

void MarkStarted(uint16_t port, bool started) {
  std::lock_guard<std::mutex> lock(gPortMutex);
  if (started)
    gStartedPorts.insert(port);
  else
    gStartedPorts.erase(port);
}

void StopStartedPorts() {
  std::set<uint16_t> started;
  {
    std::lock_guard<std::mutex> lock(gPortMutex);
    started.swap(gStartedPorts);
  }
  if (EalReady()) {
    for (uint16_t port : started) rte_eth_dev_stop(port);
  }
}

MPBUS_FACILITY(InitPorts);
}  // namespace intr
}  // namespace mpbus
