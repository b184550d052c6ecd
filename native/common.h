// Shared helpers for the mpbus native layer: error construction and argument checks.
// Policy (what is valid, what to retry) lives in TypeScript; C++ only reports what DPDK said.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace mpbus {

// Codes of the errors the addon throws on its own account (the others are errno names, from
// ErrnoName). Exported to TypeScript as `constants.errors` (addon.cc), which names them from there.
constexpr const char* kCodeNotReady = "ENOTREADY";        // no EAL in this process
constexpr const char* kCodeNotAttached = "ENOTATTACHED";  // mailboxes/registry not attached
constexpr const char* kCodeRetryLater = "EAGAIN";         // another process is mid-way: try again from a timer
constexpr const char* kCodeSettingsMismatch = "SETTINGS_MISMATCH";  // the group was made by another layout
constexpr const char* kCodeNotInPool = "NOT_IN_POOL";               // an address that is no object of the mempool
constexpr const char* kCodeThreadLimit = "THREAD_LIMIT";            // the process may start no more threads

// The addon's constants for TypeScript: `exports.constants[group]` (or `[group][part]`), made on
// first use. Each facility sets its own once in its init, so a status, a bit or a code is written
// once, here in C++; src/native/*.ts names them and checks its names against these on first load.
Napi::Object ConstantsGroup(Napi::Env env, Napi::Object exports, const char* group, const char* part = nullptr);

// Throws a JavaScript MpBusError (the class TypeScript handed to the addon at load time)
// with a `code` such as "EEXIST" and, where known, the DPDK/posix errno.
[[noreturn]] void ThrowError(Napi::Env env, const std::string& code, const std::string& message, int errnum = 0);
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message, int errnum = 0);

// Starts `*thread` running fn(args...): 0, or the errno when the process may start no more
// threads (its limit of tasks: a pids cgroup's pids.max, ulimit -u). std::thread throws
// std::system_error then, which left uncaught ends the process (std::terminate): the caller
// undoes what it began and throws ThrowThreadLimit instead.
template <typename Fn, typename... Args>
int TryStartThread(std::thread* thread, Fn&& fn, Args&&... args) {
  try {
    *thread = std::thread(std::forward<Fn>(fn), std::forward<Args>(args)...);
    return 0;
  } catch (const std::system_error& e) {
    return e.code().value() != 0 ? e.code().value() : EAGAIN;
  }
}
// THREAD_LIMIT: `what` (a thread of the addon's) could not be started.
[[noreturn]] void ThrowThreadLimit(Napi::Env env, const std::string& what, int errnum);

// Name of a posix/DPDK errno value ("EEXIST", "ENOMEM", ...), "E<n>" when unknown.
std::string ErrnoName(int errnum);
// DPDK's rte_strerror() text for errnum.
std::string ErrnoText(int errnum);

// Last lines DPDK logged in this process (captured through rte_openlog_stream), newest last:
// at most maxLines of those logged since `mark` (a DpdkLogMark() taken before the DPDK call
// that failed, so an error quotes what that call logged, not an earlier failure's lines).
std::string RecentDpdkLog(size_t maxLines = 8, uint64_t mark = 0);
// How many lines DPDK has logged in this process so far (see RecentDpdkLog).
uint64_t DpdkLogMark();

// Arguments from JavaScript, type-checked: a value of the wrong type throws an MpBusError with
// code EINVAL naming the argument (`what`), instead of N-API's generic error or a garbage value.
// TypeScript validated already; these keep C++ memory-safe when it did not. Numbers and typed
// arrays cost what an unchecked As<>() costs (one N-API call, whose own type check is the
// check): they are read on the send and drain paths.
[[noreturn]] void ThrowArgType(Napi::Env env, const char* what, const char* type);

// One N-API read with its own type check; the ...Of readers below name the type they expect.
template <typename T, napi_status (*Get)(napi_env, napi_value, T*)>
inline T ValueOf(Napi::Env env, const Napi::Value& v, const char* what) {
  T r;
  if (Get(env, v, &r) != napi_ok) ThrowArgType(env, what, "a number");
  return r;
}
inline double NumberOf(Napi::Env env, const Napi::Value& v, const char* what) {
  return ValueOf<double, napi_get_value_double>(env, v, what);
}
inline uint32_t Uint32Of(Napi::Env env, const Napi::Value& v, const char* what) {
  return ValueOf<uint32_t, napi_get_value_uint32>(env, v, what);
}
inline int32_t Int32Of(Napi::Env env, const Napi::Value& v, const char* what) {
  return ValueOf<int32_t, napi_get_value_int32>(env, v, what);
}
inline int64_t Int64Of(Napi::Env env, const Napi::Value& v, const char* what) {
  return ValueOf<int64_t, napi_get_value_int64>(env, v, what);
}
// A typed array of exactly `type` (a Buffer is a Uint8Array).
template <typename T>
Napi::TypedArrayOf<T> TypedArrayOfType(Napi::Env env, const Napi::Value& v, napi_typedarray_type type, const char* what,
                                       const char* typeName) {
  Napi::TypedArrayOf<T> a;
  try {
    a = Napi::TypedArrayOf<T>(env, v);  // throws when v is no typed array
  } catch (const Napi::Error&) {
    ThrowArgType(env, what, typeName);
  }
  if (a.TypedArrayType() != type) ThrowArgType(env, what, typeName);
  return a;
}
inline Napi::Uint8Array BytesOf(Napi::Env env, const Napi::Value& v, const char* what) {
  return TypedArrayOfType<uint8_t>(env, v, napi_uint8_array, what, "a Uint8Array");
}
inline Napi::Uint32Array Uint32ArrayOf(Napi::Env env, const Napi::Value& v, const char* what) {
  return TypedArrayOfType<uint32_t>(env, v, napi_uint32_array, what, "a Uint32Array");
}
Napi::Function FunctionOf(Napi::Env env, const Napi::Value& v, const char* what);

inline double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return NumberOf(info.Env(), info[i], what);
}
inline int32_t ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Int32Of(info.Env(), info[i], what);
}
inline uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Uint32Of(info.Env(), info[i], what);
}
inline int64_t ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Int64Of(info.Env(), info[i], what);
}
inline Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return BytesOf(info.Env(), info[i], what);
}
inline Napi::Uint32Array ArgUint32Array(const Napi::CallbackInfo& info, size_t i, const char* what) {
  return Uint32ArrayOf(info.Env(), info[i], what);
}
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what);

// The slot where a facility keeps its state for one Node environment (the main thread, each
// worker thread), found by `key` (the address of something of the facility's own); nullptr
// until the facility stores there. The facility owns what it stores and frees it with the
// environment (napi_add_env_cleanup_hook): N-API references belong to the environment that made them.
void*& EnvSlot(Napi::Env env, const void* key);

// True once rte_eal_init succeeded in this process and rte_eal_cleanup has not run yet.
bool EalReady();
// Throws ENOTREADY if the EAL is not running in this process.
void RequireEal(Napi::Env env);

// Each facility file (eal.cc, mp_inbox.cc, ring.cc, ...) registers its functions on the exports
// object with MPBUS_FACILITY(InitFoo) at namespace scope; addon.cc needs no edit per facility.
using FacilityInit = void (*)(Napi::Env env, Napi::Object exports);
struct FacilityRegistrar {
  explicit FacilityRegistrar(FacilityInit init);
};
#define MPBUS_FACILITY(fn) static ::mpbus::FacilityRegistrar mpbus_facility_##fn(fn)

}  // namespace mpbus
