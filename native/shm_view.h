// Zero-copy JavaScript views of shared hugepage memory (memzones, mempool memory).
// A view is an external ArrayBuffer over memory DPDK owns. When that memory goes away (the
// object is freed, or rte_eal_cleanup unmaps the group's memory) every view over it must be
// detached first, or JavaScript would read unmapped pages. Views are tracked here through
// weak references so they can be detached by address range.
#pragma once
#include <napi.h>
#include <stdint.h>

namespace mpbus {

// An external ArrayBuffer over [addr, addr + length), tracked for DetachViews.
Napi::ArrayBuffer MakeSharedView(Napi::Env env, void* addr, size_t length);

// Detaches every live view overlapping [addr, addr + length); returns how many were detached.
size_t DetachViews(uintptr_t addr, size_t length);

// Detaches every live view. Called before rte_eal_cleanup.
size_t DetachAllViews();

// Throws an MpBusError(ERANGE) unless [offset, offset + length) lies inside [0, size).
void CheckRange(Napi::Env env, double offset, double length, size_t size, const char* what);

// Reads a pointer-sized value given as a JS number or bigint. Throws TypeError otherwise.
uint64_t ToAddress(Napi::Env env, const Napi::Value& value);
Napi::BigInt FromAddress(Napi::Env env, uintptr_t addr);

// The uint64 elements of a BigUint64Array argument.
struct U64Array {
  uint64_t* data;
  size_t length;
};
U64Array ToU64Array(Napi::Env env, const Napi::Value& value);

}  // namespace mpbus
