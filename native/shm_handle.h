// Handles of shared objects (rings, mempools, memzones) that can tell, at each use, whether the
// object is still there. Another process of the group may free it: DPDK then zeroes the entry of
// the memzone that held it, and a later object may take that entry and that memory. A handle
// remembers the entry, its address and its name when it is made, and every use compares them
// (a few loads of the memzone table, which stays mapped), so a stale handle fails with FREED
// instead of reading or writing memory that is no longer the object's, possibly another's. A new
// object under the same name at the same address is told apart by its shape (sizes, flags and,
// for a mempool, where its parts are), read only once its memzone is known to be there (so
// mapped); one with the very same shape is, to every process, what a lookup of the name gives.
#pragma once
#include <napi.h>
#include <rte_mempool.h>
#include <rte_memzone.h>
#include <rte_ring.h>
#include <stdint.h>
#include <string.h>

#include <initializer_list>
#include <string>

#include "common.h"

namespace mpbus {

// The shape of an object: a hash of the fields its creation set and nothing changes later.
inline uint64_t ShapeHash(std::initializer_list<uint64_t> fields) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a over 64-bit words
  for (uint64_t f : fields) {
    h ^= f;
    h *= 1099511628211ull;
  }
  return h;
}
inline uint64_t Shape(const rte_memzone* mz) {
  return ShapeHash({mz->len, mz->iova, mz->hugepage_sz, static_cast<uint64_t>(mz->socket_id), mz->flags});
}
inline uint64_t Shape(const rte_ring* r) {
  return ShapeHash({r->size, r->capacity, r->mask, static_cast<uint64_t>(r->flags)});
}
inline uint64_t Shape(const rte_mempool* mp) {
  return ShapeHash({mp->size, mp->elt_size, mp->cache_size, mp->header_size, mp->trailer_size, mp->private_data_size,
                    mp->flags, reinterpret_cast<uintptr_t>(mp->pool_data), reinterpret_cast<uintptr_t>(mp->local_cache),
                    mp->nb_mem_chunks});
}

template <typename T>
struct SharedHandle {
  T* object;
  // Null for an object that no memzone holds (a C program's rte_ring_init on its own memory):
  // nothing to compare then.
  const rte_memzone* zone;
  const void* zoneAddr;
  char zoneName[RTE_MEMZONE_NAMESIZE];
  uint64_t shape;

  SharedHandle(T* obj, const rte_memzone* mz)
      : object(obj), zone(mz), zoneAddr(mz ? mz->addr : nullptr), zoneName{}, shape(mz ? Shape(obj) : 0) {
    if (mz != nullptr) memcpy(zoneName, mz->name, sizeof zoneName);
  }

  bool Live() const {
    return zone == nullptr ||
           (zone->addr == zoneAddr && strncmp(zone->name, zoneName, sizeof zoneName) == 0 && Shape(object) == shape);
  }
};

// A new handle to `object`, held by the memzone `mz` (or none), as a JavaScript External that
// frees the handle (not the object) when collected.
template <typename T>
Napi::Value MakeSharedHandle(Napi::Env env, T* object, const rte_memzone* mz) {
  return Napi::External<SharedHandle<T>>::New(env, new SharedHandle<T>(object, mz),
                                              [](Napi::Env, SharedHandle<T>* h) { delete h; });
}

// Whether the object behind a handle argument is still there (see SharedHandle::Live).
template <typename T>
Napi::Value IsLive(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a handle");
  return Napi::Boolean::New(info.Env(), info[0].As<Napi::External<SharedHandle<T>>>().Data()->Live());
}

// The object behind a handle argument; throws FREED when another process freed it since.
template <typename T>
T* LiveObject(Napi::Env env, const Napi::Value& value, const char* kind) {
  if (!value.IsExternal()) throw Napi::TypeError::New(env, std::string("expected a ") + kind + " handle");
  SharedHandle<T>* h = value.As<Napi::External<SharedHandle<T>>>().Data();
  if (!h->Live()) {
    // (a memzone is its own zone; a ring or mempool lives in one named after it)
    const std::string what = std::string(kind) == "memzone"
                                 ? std::string("memzone '") + h->zoneName + "'"
                                 : std::string("the ") + kind + " of memzone '" + h->zoneName + "'";
    ThrowError(env, "FREED",
               what +
                   " was freed by another process of the group (its memory may hold another object now): look it up "
                   "again by name");
  }
  return h->object;
}

}  // namespace mpbus
