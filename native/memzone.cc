// rte_memzone from JavaScript: reserve, look up, free, read and write bytes, and zero-copy views
// (external ArrayBuffers, detached before the zone is freed or the EAL cleaned up).
#include <rte_errno.h>
#include <rte_memzone.h>
#include <string.h>

#include "common.h"
#include "shm_handle.h"
#include "shm_view.h"

namespace mpbus {
namespace {

const rte_memzone* ZoneArg(Napi::Env env, const Napi::Value& value) {
  RequireEal(env);
  return LiveObject<const rte_memzone>(env, value, "memzone");
}

Napi::Value Handle(Napi::Env env, const rte_memzone* mz) { return MakeSharedHandle(env, mz, mz); }

// memzoneReserve(name, length, socketId, flags, align) -> handle (align 0: DPDK's default)
Napi::Value MemzoneReserve(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  size_t length = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
  int socket = info[2].As<Napi::Number>().Int32Value();
  unsigned flags = info[3].As<Napi::Number>().Uint32Value();
  unsigned align = info[4].As<Napi::Number>().Uint32Value();
  const rte_memzone* mz = align == 0 ? rte_memzone_reserve(name.c_str(), length, socket, flags)
                                     : rte_memzone_reserve_aligned(name.c_str(), length, socket, flags, align);
  if (mz == nullptr) {
    int err = rte_errno;
    ThrowError(env, ErrnoName(err),
               "cannot reserve memzone '" + name + "' of " + std::to_string(length) + " bytes: " + ErrnoText(err), err);
  }
  return Handle(env, mz);
}

Napi::Value MemzoneLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = info[0].As<Napi::String>();
  const rte_memzone* mz = rte_memzone_lookup(name.c_str());
  if (mz == nullptr) ThrowError(env, "ENOENT", "no memzone '" + name + "'", ENOENT);
  return Handle(env, mz);
}

Napi::Value MemzoneFree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const rte_memzone* mz = ZoneArg(env, info[0]);
  DetachViews(reinterpret_cast<uintptr_t>(mz->addr), mz->len);
  int rc = rte_memzone_free(mz);
  if (rc < 0) ThrowError(env, ErrnoName(-rc), "cannot free memzone: " + ErrnoText(-rc), -rc);
  return env.Undefined();
}

Napi::Value MemzoneInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const rte_memzone* mz = ZoneArg(env, info[0]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", mz->name);
  out.Set("length", static_cast<double>(mz->len));
  out.Set("address", FromAddress(env, reinterpret_cast<uintptr_t>(mz->addr)));
  out.Set("socketId", mz->socket_id);
  out.Set("flags", mz->flags);
  out.Set("hugepageSize", static_cast<double>(mz->hugepage_sz));
  return out;
}

// memzoneRead(handle, offset, length) -> Buffer (a copy)
Napi::Value MemzoneRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const rte_memzone* mz = ZoneArg(env, info[0]);
  double offset = info[1].As<Napi::Number>().DoubleValue();
  double length = info[2].As<Napi::Number>().DoubleValue();
  CheckRange(env, offset, length, mz->len, "memzone");
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(mz->addr) + static_cast<size_t>(offset),
                                     static_cast<size_t>(length));
}

// memzoneWrite(handle, offset, Uint8Array)
Napi::Value MemzoneWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const rte_memzone* mz = ZoneArg(env, info[0]);
  double offset = info[1].As<Napi::Number>().DoubleValue();
  Napi::Uint8Array data = info[2].As<Napi::Uint8Array>();
  CheckRange(env, offset, static_cast<double>(data.ByteLength()), mz->len, "memzone");
  memcpy(static_cast<uint8_t*>(mz->addr) + static_cast<size_t>(offset), data.Data(), data.ByteLength());
  return env.Undefined();
}

// memzoneView(handle) -> ArrayBuffer over the whole zone, no copy
Napi::Value MemzoneView(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const rte_memzone* mz = ZoneArg(env, info[0]);
  return MakeSharedView(env, mz->addr, mz->len);
}

void InitMemzone(Napi::Env env, Napi::Object exports) {
  exports.Set("memzoneReserve", Napi::Function::New(env, MemzoneReserve));
  exports.Set("memzoneLookup", Napi::Function::New(env, MemzoneLookup));
  exports.Set("memzoneLive", Napi::Function::New(env, IsLive<const rte_memzone>));
  exports.Set("memzoneFree", Napi::Function::New(env, MemzoneFree));
  exports.Set("memzoneInfo", Napi::Function::New(env, MemzoneInfo));
  exports.Set("memzoneRead", Napi::Function::New(env, MemzoneRead));
  exports.Set("memzoneWrite", Napi::Function::New(env, MemzoneWrite));
  exports.Set("memzoneView", Napi::Function::New(env, MemzoneView));
  Napi::Object c = Napi::Object::New(env);
  c.Set("RTE_MEMZONE_NAMESIZE", RTE_MEMZONE_NAMESIZE);
  c.Set("RTE_MEMZONE_2MB", RTE_MEMZONE_2MB);
  c.Set("RTE_MEMZONE_1GB", RTE_MEMZONE_1GB);
  c.Set("RTE_MEMZONE_SIZE_HINT_ONLY", RTE_MEMZONE_SIZE_HINT_ONLY);
  c.Set("RTE_MEMZONE_IOVA_CONTIG", RTE_MEMZONE_IOVA_CONTIG);
  c.Set("SOCKET_ID_ANY", SOCKET_ID_ANY);
  exports.Set("memzoneConstants", c);
}

}  // namespace
MPBUS_FACILITY(InitMemzone);
}  // namespace mpbus
