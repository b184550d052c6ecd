// Loading more of DPDK's libraries into this process before rte_eal_init: each library registers
// its tailqs (its objects' named lists in shared memory) from a constructor, and a secondary can
// only join a primary that registered every tailq the secondary's own libraries register.
#include <dlfcn.h>
#include <rte_eal.h>

#include <string>

#include "common.h"

namespace mpbus {
namespace {

// The path of the librte_eal this addon uses, e.g. /lib/x86_64-linux-gnu/librte_eal.so.23: the
// other libraries of the same DPDK sit beside it with the same ABI suffix.
std::string EalPath() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&rte_eal_init), &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

// dpdkLibraryPath('rib') -> the path of librte_rib of this DPDK (whether or not it exists).
Napi::Value LibraryPath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string eal = EalPath();
  size_t at = eal.rfind("librte_eal.so");
  if (at == std::string::npos) return env.Null();
  return Napi::String::New(env, eal.substr(0, at) + "librte_" + name + eal.substr(at + 10));
}

// loadLibrary(path) -> null, or dlerror()'s text. RTLD_GLOBAL | RTLD_NODELETE: the library stays
// for the life of the process, as a linked one would.
Napi::Value LoadLibrary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE) == nullptr) {
    const char* why = dlerror();
    return Napi::String::New(env, why == nullptr ? "dlopen failed" : why);
  }
  return env.Null();
}

void InitLibraries(Napi::Env env, Napi::Object exports) {
  exports.Set("dpdkLibraryPath", Napi::Function::New(env, LibraryPath));
  exports.Set("loadLibrary", Napi::Function::New(env, LoadLibrary));
}

}  // namespace
MPBUS_FACILITY(InitLibraries);
}  // namespace mpbus
