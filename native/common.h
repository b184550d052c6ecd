// Shared helpers for the mpbus native layer: error construction and argument checks.
// Policy (what is valid, what to retry) lives in TypeScript; C++ only reports what DPDK said.
#pragma once
#include <napi.h>
#include <cstdint>
#include <string>

namespace mpbus {

// Throws a JavaScript MpBusError (the class TypeScript handed to the addon at load time)
// with a `code` such as "EEXIST" and, where known, the DPDK/posix errno.
[[noreturn]] void ThrowError(Napi::Env env, const std::string& code, const std::string& message, int errnum = 0);
Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message, int errnum = 0);

// Name of a posix/DPDK errno value ("EEXIST", "ENOMEM", ...), "E<n>" when unknown.
std::string ErrnoName(int errnum);
// DPDK's rte_strerror() text for errnum.
std::string ErrnoText(int errnum);

// Last lines DPDK logged in this process (captured through rte_openlog_stream), newest last.
std::string RecentDpdkLog(size_t maxLines = 8);

// Arguments from JavaScript, type-checked: a value of the wrong type throws an MpBusError with
// code EINVAL naming the argument (`what`), instead of N-API's abort on a failed As<> or a
// garbage value. TypeScript validated already; these keep C++ memory-safe when it did not.
double ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* what);
int32_t ArgInt32(const Napi::CallbackInfo& info, size_t i, const char* what);
uint32_t ArgUint32(const Napi::CallbackInfo& info, size_t i, const char* what);
int64_t ArgInt64(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* what);
Napi::Uint8Array ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what);
// The same checks on a value that is not an argument (an array element, an optional argument).
double NumberOf(Napi::Env env, const Napi::Value& v, const char* what);

// True once rte_eal_init succeeded in this process and rte_eal_cleanup has not run yet.
bool EalReady();
// Throws ENOTREADY if the EAL is not running in this process.
void RequireEal(Napi::Env env);

// Each facility file (eal.cc, mp.cc, ring.cc, ...) registers its functions on the exports
// object with MPBUS_FACILITY(InitFoo) at namespace scope; addon.cc needs no edit per facility.
using FacilityInit = void (*)(Napi::Env env, Napi::Object exports);
struct FacilityRegistrar {
  explicit FacilityRegistrar(FacilityInit init);
};
#define MPBUS_FACILITY(fn) static ::mpbus::FacilityRegistrar mpbus_facility_##fn(fn)

}  // namespace mpbus
