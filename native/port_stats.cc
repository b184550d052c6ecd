// A port's basic counters (rte_eth_stats_get), readable in any process of the group: a secondary
// whose primary is a C DPDK program polls its ports with it (the C primary relays nothing).
#include <rte_ethdev.h>

#include <string>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace {

// ethStats(port) -> { ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rxNoMbuf }
// as numbers (exact up to 2^53).
Napi::Value EthStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint16_t port = intr::RequirePort(env, info[0]);
  rte_eth_stats s{};
  int rc = rte_eth_stats_get(port, &s);
  if (rc != 0) ThrowError(env, ErrnoName(-rc), "rte_eth_stats_get failed: " + ErrnoText(-rc), -rc);
  Napi::Object o = Napi::Object::New(env);
  o.Set("ipackets", static_cast<double>(s.ipackets));
  o.Set("opackets", static_cast<double>(s.opackets));
  o.Set("ibytes", static_cast<double>(s.ibytes));
  o.Set("obytes", static_cast<double>(s.obytes));
  o.Set("imissed", static_cast<double>(s.imissed));
  o.Set("ierrors", static_cast<double>(s.ierrors));
  o.Set("oerrors", static_cast<double>(s.oerrors));
  o.Set("rxNoMbuf", static_cast<double>(s.rx_nombuf));
  return o;
}

void InitPortStats(Napi::Env env, Napi::Object exports) { exports.Set("ethStats", Napi::Function::New(env, EthStats)); }

}  // namespace
MPBUS_FACILITY(InitPortStats);
}  // namespace mpbus
