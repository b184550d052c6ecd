// Waiting, before a ring operation, for the operations other processes left in progress on the
// same side of the ring (see AwaitRingInFlight in ring.cc): shared by rings and by the rings
// inside mempools.
#pragma once

#include <napi.h>
#include <rte_ring.h>

#include <string>

namespace mpbus {

// Before an operation on the producers' (consumers') side of `ring`: returns once the operations
// in progress there now have finished, or throws RING_STUCK after a bound when one never does (a
// process killed inside it). `what` names the ring in the message ("ring 'r'", "mempool 'p'"),
// `fix` says what to do.
void AwaitRingInFlight(Napi::Env env, const rte_ring* ring, bool producers, const std::string& what,
                       const std::string& fix);

}  // namespace mpbus
