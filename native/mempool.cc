// rte_mempool from JavaScript: create, look up, free; get and put objects (addresses); read
// and write an object's bytes; zero-copy views of the pool's memory. Every address that comes
// from JavaScript (and so possibly from another process, through a ring) is checked against the
// pool's own list of objects before it is read, written or put back; a get or put does not wait
// without end behind one that a killed process left unfinished in the pool's ring.
#include <rte_errno.h>
#include <rte_mempool.h>
#include <string.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "ring_wait.h"
#include "shm_handle.h"
#include "shm_view.h"

namespace mpbus {
namespace {

// The sorted addresses of a pool's objects. Objects do not sit at a fixed stride (DPDK skips
// page boundaries), so membership is an exact lookup, not arithmetic.
struct PoolIndex {
  std::string name;
  uint32_t populated = 0;
  std::vector<uintptr_t> objects;
};

std::unordered_map<const rte_mempool*, PoolIndex>& Indexes() {
  static std::unordered_map<const rte_mempool*, PoolIndex> indexes;
  return indexes;
}

const PoolIndex& IndexOf(rte_mempool* mp) {
  PoolIndex& idx = Indexes()[mp];
  // Rebuilt when the pool at this address is not the one indexed (freed and recreated).
  if (idx.populated != mp->populated_size || idx.name != mp->name || idx.objects.empty()) {
    idx.name = mp->name;
    idx.populated = mp->populated_size;
    idx.objects.clear();
    idx.objects.reserve(mp->populated_size);
    rte_mempool_obj_iter(
        mp,
        [](rte_mempool*, void* arg, void* obj, unsigned) {
          static_cast<std::vector<uintptr_t>*>(arg)->push_back(reinterpret_cast<uintptr_t>(obj));
        },
        &idx.objects);
    std::sort(idx.objects.begin(), idx.objects.end());
  }
  return idx;
}

// Index of the object at addr, or -1 when addr is not the start of one of the pool's objects.
long ObjectIndex(rte_mempool* mp, uintptr_t addr) {
  const PoolIndex& idx = IndexOf(mp);
  auto it = std::lower_bound(idx.objects.begin(), idx.objects.end(), addr);
  if (it == idx.objects.end() || *it != addr) return -1;
  return static_cast<long>(it - idx.objects.begin());
}

rte_mempool* PoolArg(Napi::Env env, const Napi::Value& value) {
  RequireEal(env);
  return LiveObject<rte_mempool>(env, value, "mempool");
}

void* CheckedObject(Napi::Env env, rte_mempool* mp, const Napi::Value& value) {
  uintptr_t addr = static_cast<uintptr_t>(ToAddress(env, value));
  if (ObjectIndex(mp, addr) < 0) {
    char hex[32];
    snprintf(hex, sizeof(hex), "0x%lx", static_cast<unsigned long>(addr));
    ThrowError(env, kCodeNotInPool, std::string(hex) + " is not an object of mempool '" + mp->name + "'");
  }
  return reinterpret_cast<void*>(addr);
}

Napi::Value Handle(Napi::Env env, rte_mempool* mp) { return MakeSharedHandle(env, mp, mp->mz); }

// mempoolCreate(name, n, eltSize, cacheSize, socketId, flags) -> handle
Napi::Value MempoolCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  unsigned n = info[1].As<Napi::Number>().Uint32Value();
  unsigned eltSize = info[2].As<Napi::Number>().Uint32Value();
  unsigned cacheSize = info[3].As<Napi::Number>().Uint32Value();
  int socket = info[4].As<Napi::Number>().Int32Value();
  unsigned flags = info[5].As<Napi::Number>().Uint32Value();
  rte_mempool* mp =
      rte_mempool_create(name.c_str(), n, eltSize, cacheSize, 0, nullptr, nullptr, nullptr, nullptr, socket, flags);
  if (mp == nullptr) {
    int err = rte_errno;
    ThrowError(env, ErrnoName(err), "cannot create mempool '" + name + "': " + ErrnoText(err), err);
  }
  return Handle(env, mp);
}

Napi::Value MempoolLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  rte_mempool* mp = rte_mempool_lookup(name.c_str());
  if (mp == nullptr) ThrowError(env, "ENOENT", "no mempool '" + name + "'", ENOENT);
  return Handle(env, mp);
}

Napi::Value MempoolFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  rte_mempool_mem_iter(
      mp,
      [](rte_mempool*, void*, rte_mempool_memhdr* hdr, unsigned) {
        DetachViews(reinterpret_cast<uintptr_t>(hdr->addr), hdr->len);
      },
      nullptr);
  Indexes().erase(mp);
  rte_mempool_free(mp);
  return env.Undefined();
}

Napi::Value MempoolInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", mp->name);
  out.Set("size", mp->size);
  out.Set("populated", mp->populated_size);
  out.Set("eltSize", mp->elt_size);
  out.Set("headerSize", mp->header_size);
  out.Set("trailerSize", mp->trailer_size);
  out.Set("cacheSize", mp->cache_size);
  out.Set("flags", mp->flags);
  out.Set("socketId", mp->socket_id);
  out.Set("address", FromAddress(env, reinterpret_cast<uintptr_t>(mp)));
  return out;
}

Napi::Value MempoolAvailCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rte_mempool_avail_count(PoolArg(info.Env(), info[0])));
}

Napi::Value MempoolInUseCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rte_mempool_in_use_count(PoolArg(info.Env(), info[0])));
}

// Before a get (put) of `n` objects that goes past this lcore's cache to the pool's own ring
// (DPDK's ring ops): waits for what other processes left in progress there, or throws
// RING_STUCK (see AwaitRingInFlight). A get or put the cache serves does not touch the ring.
void AwaitPoolRing(Napi::Env env, const rte_mempool* mp, unsigned n, bool put) {
  const rte_mempool_ops* ops = rte_mempool_get_ops(mp->ops_index);
  if (ops == nullptr || strncmp(ops->name, "ring_", 5) != 0 || mp->pool_data == nullptr) return;
  const rte_mempool_cache* cache = rte_mempool_default_cache(const_cast<rte_mempool*>(mp), rte_lcore_id());
  if (cache != nullptr && n <= RTE_MEMPOOL_CACHE_MAX_SIZE &&
      (put ? cache->len + n <= cache->flushthresh : cache->len >= n))
    return;
  AwaitRingInFlight(env, static_cast<const rte_ring*>(mp->pool_data), put, std::string("mempool '") + mp->name + "'",
                    "create the pool anew");
}

// mempoolGet(handle) -> bigint address, or null when the pool is empty
Napi::Value MempoolGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  AwaitPoolRing(env, mp, 1, false);
  void* obj = nullptr;
  if (rte_mempool_get(mp, &obj) != 0) return env.Null();
  return FromAddress(env, reinterpret_cast<uintptr_t>(obj));
}

// mempoolGetBulk(handle, BigUint64Array, start, n) -> true when all n were taken (else none)
Napi::Value MempoolGetBulk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  U64Array arr = ToU64Array(env, info[1]);
  double start = info[2].As<Napi::Number>().DoubleValue();
  double n = info[3].As<Napi::Number>().DoubleValue();
  CheckRange(env, start, n, arr.length, "array");
  void** objs = reinterpret_cast<void**>(arr.data + static_cast<size_t>(start));
  AwaitPoolRing(env, mp, static_cast<unsigned>(n), false);
  return Napi::Boolean::New(env, rte_mempool_get_bulk(mp, objs, static_cast<unsigned>(n)) == 0);
}

// mempoolPut(handle, address): the address must be one of the pool's objects.
Napi::Value MempoolPut(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  void* obj = CheckedObject(env, mp, info[1]);
  AwaitPoolRing(env, mp, 1, true);
  rte_mempool_put(mp, obj);
  return env.Undefined();
}

// mempoolPutBulk(handle, BigUint64Array, start, n): all addresses are checked before any is put.
Napi::Value MempoolPutBulk(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  U64Array arr = ToU64Array(env, info[1]);
  double start = info[2].As<Napi::Number>().DoubleValue();
  double n = info[3].As<Napi::Number>().DoubleValue();
  CheckRange(env, start, n, arr.length, "array");
  uint64_t* first = arr.data + static_cast<size_t>(start);
  for (size_t i = 0; i < static_cast<size_t>(n); i++) {
    if (ObjectIndex(mp, static_cast<uintptr_t>(first[i])) < 0) {
      ThrowError(
          env, "NOT_IN_POOL",
          "element " + std::to_string(i) + " is not an object of mempool '" + mp->name + "'; nothing was put back");
    }
  }
  AwaitPoolRing(env, mp, static_cast<unsigned>(n), true);
  rte_mempool_put_bulk(mp, reinterpret_cast<void**>(first), static_cast<unsigned>(n));
  return env.Undefined();
}

// mempoolObjectIndex(handle, address) -> index of the object, or -1 when not one of the pool's
Napi::Value MempoolObjectIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  if (!info[1].IsBigInt() && !info[1].IsNumber()) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, static_cast<double>(ObjectIndex(mp, static_cast<uintptr_t>(ToAddress(env, info[1])))));
}

// mempoolObjectAt(handle, index) -> bigint address of the index-th object (in address order)
Napi::Value MempoolObjectAt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  const PoolIndex& idx = IndexOf(mp);
  double i = info[1].As<Napi::Number>().DoubleValue();
  CheckRange(env, i, 1, idx.objects.size(), "pool's object list");
  return FromAddress(env, idx.objects[static_cast<size_t>(i)]);
}

// mempoolRead(handle, address, offset, length) -> Buffer (a copy of the object's bytes)
Napi::Value MempoolRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  uint8_t* obj = static_cast<uint8_t*>(CheckedObject(env, mp, info[1]));
  double offset = info[2].As<Napi::Number>().DoubleValue();
  double length = info[3].As<Napi::Number>().DoubleValue();
  CheckRange(env, offset, length, mp->elt_size, "mempool object");
  return Napi::Buffer<uint8_t>::Copy(env, obj + static_cast<size_t>(offset), static_cast<size_t>(length));
}

// mempoolWrite(handle, address, offset, Uint8Array)
Napi::Value MempoolWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  uint8_t* obj = static_cast<uint8_t*>(CheckedObject(env, mp, info[1]));
  double offset = info[2].As<Napi::Number>().DoubleValue();
  Napi::Uint8Array data = info[3].As<Napi::Uint8Array>();
  CheckRange(env, offset, static_cast<double>(data.ByteLength()), mp->elt_size, "mempool object");
  memcpy(obj + static_cast<size_t>(offset), data.Data(), data.ByteLength());
  return env.Undefined();
}

// mempoolObjectView(handle, address) -> ArrayBuffer over the object's eltSize bytes, no copy
Napi::Value MempoolObjectView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  return MakeSharedView(env, CheckedObject(env, mp, info[1]), mp->elt_size);
}

// mempoolMemory(handle) -> [{ address, length, view }]: the pool's memory chunks as zero-copy
// views (one external ArrayBuffer per chunk; objects are at address - chunk address).
Napi::Value MempoolMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_mempool* mp = PoolArg(env, info[0]);
  std::vector<rte_mempool_memhdr*> chunks;
  rte_mempool_mem_iter(
      mp,
      [](rte_mempool*, void* arg, rte_mempool_memhdr* hdr, unsigned) {
        static_cast<std::vector<rte_mempool_memhdr*>*>(arg)->push_back(hdr);
      },
      &chunks);
  Napi::Array out = Napi::Array::New(env, chunks.size());
  for (size_t i = 0; i < chunks.size(); i++) {
    Napi::Object chunk = Napi::Object::New(env);
    chunk.Set("address", FromAddress(env, reinterpret_cast<uintptr_t>(chunks[i]->addr)));
    chunk.Set("length", static_cast<double>(chunks[i]->len));
    chunk.Set("view", MakeSharedView(env, chunks[i]->addr, chunks[i]->len));
    out.Set(static_cast<uint32_t>(i), chunk);
  }
  return out;
}

void InitMempool(Napi::Env env, Napi::Object exports) {
  exports.Set("mempoolCreate", Napi::Function::New(env, MempoolCreate));
  exports.Set("mempoolLookup", Napi::Function::New(env, MempoolLookup));
  exports.Set("mempoolFree", Napi::Function::New(env, MempoolFree));
  exports.Set("mempoolInfo", Napi::Function::New(env, MempoolInfo));
  exports.Set("mempoolLive", Napi::Function::New(env, IsLive<rte_mempool>));
  exports.Set("mempoolAvailCount", Napi::Function::New(env, MempoolAvailCount));
  exports.Set("mempoolInUseCount", Napi::Function::New(env, MempoolInUseCount));
  exports.Set("mempoolGet", Napi::Function::New(env, MempoolGet));
  exports.Set("mempoolGetBulk", Napi::Function::New(env, MempoolGetBulk));
  exports.Set("mempoolPut", Napi::Function::New(env, MempoolPut));
  exports.Set("mempoolPutBulk", Napi::Function::New(env, MempoolPutBulk));
  exports.Set("mempoolObjectIndex", Napi::Function::New(env, MempoolObjectIndex));
  exports.Set("mempoolObjectAt", Napi::Function::New(env, MempoolObjectAt));
  exports.Set("mempoolRead", Napi::Function::New(env, MempoolRead));
  exports.Set("mempoolWrite", Napi::Function::New(env, MempoolWrite));
  exports.Set("mempoolObjectView", Napi::Function::New(env, MempoolObjectView));
  exports.Set("mempoolMemory", Napi::Function::New(env, MempoolMemory));
  Napi::Object c = Napi::Object::New(env);
  c.Set("RTE_MEMPOOL_NAMESIZE", RTE_MEMPOOL_NAMESIZE);
  c.Set("RTE_MEMPOOL_CACHE_MAX_SIZE", RTE_MEMPOOL_CACHE_MAX_SIZE);
  c.Set("RTE_MEMPOOL_F_SP_PUT", RTE_MEMPOOL_F_SP_PUT);
  c.Set("RTE_MEMPOOL_F_SC_GET", RTE_MEMPOOL_F_SC_GET);
  c.Set("RTE_MEMPOOL_F_NO_IOVA_CONTIG", RTE_MEMPOOL_F_NO_IOVA_CONTIG);
  c.Set("RTE_MEMPOOL_F_NO_SPREAD", RTE_MEMPOOL_F_NO_SPREAD);
  c.Set("RTE_MEMPOOL_F_NO_CACHE_ALIGN", RTE_MEMPOOL_F_NO_CACHE_ALIGN);
  exports.Set("mempoolConstants", c);
}

}  // namespace
MPBUS_FACILITY(InitMempool);
}  // namespace mpbus
