// File locks that Node has no API for. mpbus uses flock(2) files in the group's runtime dir to
// hand out lcore IDs and to count live members: the kernel drops a lock when its process dies,
// so IDs and membership of a SIGKILLed process become free without any cleanup.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "common.h"

namespace mpbus {
namespace {

// flockOpen(path, exclusive, wait) -> fd, or -1 when the lock is held by another process.
Napi::Value FlockOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  bool exclusive = info[1].ToBoolean();
  bool wait = info[2].ToBoolean();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int e = errno;
    ThrowError(env, ErrnoName(e), "cannot open lock file " + path + ": " + strerror(e), e);
  }
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  if (flock(fd, op) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK) return Napi::Number::New(env, -1);
    ThrowError(env, ErrnoName(e), "cannot lock " + path + ": " + strerror(e), e);
  }
  return Napi::Number::New(env, fd);
}

// flockClose(fd): releases the lock and closes the file.
Napi::Value FlockClose(const Napi::CallbackInfo& info) {
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd >= 0) {
    flock(fd, LOCK_UN);
    close(fd);
  }
  return info.Env().Undefined();
}

// isFcntlLocked(path): true when some process holds a POSIX (fcntl) lock on the file. DPDK's
// primary holds one on its runtime "config" file for as long as it lives.
Napi::Value IsFcntlLocked(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Napi::Boolean::New(info.Env(), false);
  struct flock probe = {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  bool locked = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return Napi::Boolean::New(info.Env(), locked);
}

void InitFsLock(Napi::Env env, Napi::Object exports) {
  exports.Set("flockOpen", Napi::Function::New(env, FlockOpen));
  exports.Set("flockClose", Napi::Function::New(env, FlockClose));
  exports.Set("isFcntlLocked", Napi::Function::New(env, IsFcntlLocked));
}

}  // namespace
MPBUS_FACILITY(InitFsLock);
}  // namespace mpbus
