// net_tap's link through netlink: net_tap never raises RTE_ETH_EVENT_INTR_LSC, so for its ports
// a NETLINK_ROUTE socket on the EAL interrupt thread (an fd source, intr_fds.cc) turns the
// kernel's RTM_NEWLINK messages into lsc events; and the kernel's flags stand in for the PMD's
// cached link copy, stale just after a start (KernelLinkUp).
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <rte_ethdev.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

// Remember which port's state the watcher last reported, so kernel messages that do not flip
// the link (address, mtu, ...) make no event.
struct NetlinkPort {
  uint16_t port;
  bool up;
};
std::mutex gNetlinkMutex;
std::map<int, NetlinkPort> gNetlinkPorts;  // kernel ifindex -> port; under gNetlinkMutex
// The watcher's fd source; 0 = none. Touched on the JS thread only.
uint32_t gNetlinkSourceId = 0;

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

void RemoveSourceIfIdle() {
  bool idle;
  {
    std::lock_guard<std::mutex> lock(gNetlinkMutex);
    idle = gNetlinkPorts.empty();
  }
  if (idle && gNetlinkSourceId != 0) {
    RemoveFdSource(gNetlinkSourceId);
    gNetlinkSourceId = 0;
  }
}

}  // namespace

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
        std::lock_guard<std::mutex> lock(gNetlinkMutex);
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

void WatchNetlinkLink(Napi::Env env, uint16_t port) {
  rte_eth_dev_info dinfo;
  if (rte_eth_dev_info_get(port, &dinfo) != 0 || dinfo.if_index == 0) {
    ThrowError(env, "ENOTSUP", "net_tap port " + std::to_string(port) + " has no kernel interface index", ENOTSUP);
  }
  if (gNetlinkSourceId == 0) {
    int fd = OpenNetlinkLinkSocket();
    if (fd < 0) ThrowError(env, ErrnoName(-fd), std::string("cannot open a netlink socket: ") + strerror(-fd), -fd);
    gNetlinkSourceId = AddFdSource(env, fd, FdKind::kNetlink, true);
  }
  NativeEvent now;
  FillLink(now, port);
  std::lock_guard<std::mutex> lock(gNetlinkMutex);
  gNetlinkPorts[static_cast<int>(dinfo.if_index)] = NetlinkPort{port, now.linkUp};
}

void UnwatchNetlinkLink(uint32_t port) {
  {
    std::lock_guard<std::mutex> lock(gNetlinkMutex);
    for (auto it = gNetlinkPorts.begin(); it != gNetlinkPorts.end();) {
      it = it->second.port == port ? gNetlinkPorts.erase(it) : std::next(it);
    }
  }
  RemoveSourceIfIdle();
}

void CloseNetlink() {
  {
    std::lock_guard<std::mutex> lock(gNetlinkMutex);
    gNetlinkPorts.clear();
  }
  RemoveSourceIfIdle();
}

uint32_t NetlinkPortCount() {
  std::lock_guard<std::mutex> lock(gNetlinkMutex);
  return static_cast<uint32_t>(gNetlinkPorts.size());
}

bool IsNetlinkSource(uint32_t id) { return id != 0 && id == gNetlinkSourceId; }

}  // namespace intr
}  // namespace mpbus
