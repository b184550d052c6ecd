// Entry point of the addon: keeps, per Node environment, the MpBusError class that TypeScript
// passes in; builds the errors and checks the arguments every facility uses; lets every facility
// file (eal.cc, mp_inbox.cc, ring.cc, ...) register its functions.
#include <rte_errno.h>
#include <string.h>

#include <map>
#include <vector>

#include "common.h"

namespace mpbus {
namespace {
// What the addon keeps per Node environment (the main thread, each worker thread): a reference to
// a JavaScript value belongs to the environment that made it, so the MpBusError class one
// environment handed over must never be used by another. Freed with the environment.
struct AddonData {
  Napi::FunctionReference errorClass;
  std::map<const void*, void*> slots;  // EnvSlot: each facility's state in this environment
};

AddonData* DataOf(Napi::Env env) { return env.GetInstanceData<AddonData>(); }

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    throw Napi::TypeError::New(info.Env(), "setErrorClass expects a constructor");
  }
  DataOf(info.Env())->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}
}  // namespace

std::string ErrnoName(int errnum) {
  // One case per errno name, listed compactly (clang-format cannot lay out a macro list).
  // clang-format off
  switch (errnum) {
#define MPBUS_ERRNO(e) \
  case e:              \
    return #e;
    MPBUS_ERRNO(EPERM) MPBUS_ERRNO(ENOENT) MPBUS_ERRNO(ESRCH) MPBUS_ERRNO(EINTR)
    MPBUS_ERRNO(EIO) MPBUS_ERRNO(EBADF) MPBUS_ERRNO(EAGAIN) MPBUS_ERRNO(ENOMEM)
    MPBUS_ERRNO(EACCES) MPBUS_ERRNO(EFAULT) MPBUS_ERRNO(EBUSY) MPBUS_ERRNO(EEXIST)
    MPBUS_ERRNO(ENODEV) MPBUS_ERRNO(EINVAL) MPBUS_ERRNO(ENFILE) MPBUS_ERRNO(EMFILE)
    MPBUS_ERRNO(ENOSPC) MPBUS_ERRNO(EPIPE) MPBUS_ERRNO(ERANGE) MPBUS_ERRNO(ENAMETOOLONG)
    MPBUS_ERRNO(ENOSYS) MPBUS_ERRNO(ENOTSUP) MPBUS_ERRNO(ETIMEDOUT) MPBUS_ERRNO(EALREADY)
    MPBUS_ERRNO(ECONNREFUSED) MPBUS_ERRNO(ENOBUFS) MPBUS_ERRNO(EMSGSIZE) MPBUS_ERRNO(ENOEXEC)
    MPBUS_ERRNO(E_RTE_SECONDARY) MPBUS_ERRNO(E_RTE_NO_CONFIG)
#undef MPBUS_ERRNO
    default:
      return "E" + std::to_string(errnum);
  }
  // clang-format on
}

std::string ErrnoText(int errnum) { return rte_strerror(errnum); }

Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message, int errnum) {
  Napi::Object err;
  AddonData* data = DataOf(env);
  if (data != nullptr && !data->errorClass.IsEmpty()) {
    err = data->errorClass.New({Napi::String::New(env, code), Napi::String::New(env, message)});
  } else {
    err = Napi::Error::New(env, message).Value();
    err.Set("code", code);
  }
  if (errnum != 0) err.Set("errno", Napi::Number::New(env, errnum));
  return Napi::Error(env, err);
}

void ThrowError(Napi::Env env, const std::string& code, const std::string& message, int errnum) {
  throw MakeError(env, code, message, errnum);
}

void ThrowThreadLimit(Napi::Env env, const std::string& what, int errnum) {
  ThrowError(env, kCodeThreadLimit,
             "cannot start " + what + ": " + ErrnoText(errnum) +
                 ": this process may start no more threads (its limit of tasks: a pids cgroup's pids.max, "
                 "as docker --pids-limit or a pod's pid limit set, or ulimit -u); raise the limit",
             errnum);
}

void RequireEal(Napi::Env env) {
  if (!EalReady()) {
    ThrowError(env, kCodeNotReady, "the DPDK runtime is not started in this process (or already closed)");
  }
}

void ThrowArgType(Napi::Env env, const char* what, const char* type) {
  ThrowError(env, "EINVAL", std::string(what) + " must be " + type, EINVAL);
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString()) ThrowArgType(info.Env(), what, "a string");
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Function ArgFunction(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsFunction()) ThrowArgType(info.Env(), what, "a function");
  return info[i].As<Napi::Function>();
}

Napi::Function FunctionOf(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsFunction()) ThrowArgType(env, what, "a function");
  return v.As<Napi::Function>();
}

Napi::Object ArgObject(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsObject()) ThrowArgType(info.Env(), what, "an object");
  return info[i].As<Napi::Object>();
}

void*& EnvSlot(Napi::Env env, const void* key) { return DataOf(env)->slots[key]; }

namespace {
std::vector<FacilityInit>& Facilities() {
  static std::vector<FacilityInit> list;  // filled by static initialisers of each .cc file
  return list;
}
}  // namespace

FacilityRegistrar::FacilityRegistrar(FacilityInit init) { Facilities().push_back(init); }

namespace {
// The object at `key` of `parent`, made when missing.
Napi::Object ObjectAt(Napi::Env env, Napi::Object parent, const char* key) {
  Napi::Value v = parent.Get(key);
  if (v.IsObject()) return v.As<Napi::Object>();
  Napi::Object made = Napi::Object::New(env);
  parent.Set(key, made);
  return made;
}
}  // namespace

Napi::Object ConstantsGroup(Napi::Env env, Napi::Object exports, const char* group, const char* part) {
  Napi::Object g = ObjectAt(env, ObjectAt(env, exports, "constants"), group);
  return part == nullptr ? g : ObjectAt(env, g, part);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());  // deleted by N-API when the environment ends
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass));
  Napi::Object errors = ConstantsGroup(env, exports, "errors");
  errors.Set("notReady", kCodeNotReady);
  errors.Set("notAttached", kCodeNotAttached);
  errors.Set("retryLater", kCodeRetryLater);
  errors.Set("settingsMismatch", kCodeSettingsMismatch);
  errors.Set("notInPool", kCodeNotInPool);
  errors.Set("threadLimit", kCodeThreadLimit);
  for (FacilityInit init : Facilities()) init(env, exports);
  return exports;
}

}  // namespace mpbus

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return mpbus::Init(env, exports); }
NODE_API_MODULE(mpbus, InitAddon)
