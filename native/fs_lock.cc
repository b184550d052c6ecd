// File locks that Node has no API for. mpbus uses flock(2) files in the group's runtime dir to
// hand out lcore IDs and to count live members: the kernel drops a lock when its process dies,
// so IDs and membership of a SIGKILLed process become free without any cleanup.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

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

// True while `fd` is still the file at `path`. The last process of a group deletes the runtime
// dir, lock files included: a lock taken on a file that was unlinked meanwhile guards nothing,
// so callers retry on a fresh file.
bool StillLinked(int fd, const std::string& path) {
  struct stat byFd, byPath;
  if (fstat(fd, &byFd) != 0 || stat(path.c_str(), &byPath) != 0) return false;
  return byFd.st_ino == byPath.st_ino && byFd.st_dev == byPath.st_dev;
}

Napi::Value FlockOpenLinked(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  for (int attempt = 0; attempt < 8; attempt++) {
    Napi::Value result = FlockOpen(info);
    int fd = result.As<Napi::Number>().Int32Value();
    if (fd < 0 || StillLinked(fd, path)) return result;
    flock(fd, LOCK_UN);
    close(fd);
  }
  ThrowError(info.Env(), kCodeRetryLater, "lock file " + path + " keeps being removed by another process; try again");
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

// fcntlLockHolder(path): the pid of a process that holds a POSIX (fcntl) lock on the file, 0 when
// none does (or it is not visible from this pid namespace). DPDK's primary holds one on its
// runtime "config" file for as long as it lives: its pid, whatever program it is.
Napi::Value FcntlLockHolder(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Napi::Number::New(info.Env(), 0);
  struct flock probe = {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  bool locked = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return Napi::Number::New(info.Env(), locked && probe.l_pid > 0 ? probe.l_pid : 0);
}

// releaseFcntlLocks(path): drops every POSIX (fcntl) lock this process holds on the file. POSIX
// releases them when any fd of the process on that file is closed; a primary whose rte_eal_init
// failed half-way still holds the lock on its `config` file, which would make it look alive.
Napi::Value ReleaseFcntlLocks(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return info.Env().Undefined();
}

// unlockDirs(paths): drops the flock(2) locks this process holds on these directories. A primary
// locks each hugetlbfs mount exclusively during rte_eal_init and unlocks it only when init
// succeeds: after a failure half-way, every other DPDK primary on the machine would block.
Napi::Value UnlockDirs(const Napi::CallbackInfo& info) {
  Napi::Array paths = info[0].As<Napi::Array>();
  std::vector<std::string> wanted;
  for (uint32_t i = 0; i < paths.Length(); i++) wanted.push_back(paths.Get(i).As<Napi::String>());
  int unlocked = 0;
  DIR* fds = opendir("/proc/self/fd");
  if (fds == nullptr) return Napi::Number::New(info.Env(), 0);
  while (struct dirent* entry = readdir(fds)) {
    if (entry->d_name[0] == '.') continue;
    int fd = atoi(entry->d_name);
    if (fd == dirfd(fds)) continue;
    char target[PATH_MAX];
    std::string link = std::string("/proc/self/fd/") + entry->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    for (const auto& path : wanted) {
      if (path == target && flock(fd, LOCK_UN) == 0) unlocked++;
    }
  }
  closedir(fds);
  return Napi::Number::New(info.Env(), unlocked);
}

void InitFsLock(Napi::Env env, Napi::Object exports) {
  exports.Set("unlockDirs", Napi::Function::New(env, UnlockDirs));
  exports.Set("releaseFcntlLocks", Napi::Function::New(env, ReleaseFcntlLocks));
  exports.Set("flockOpen", Napi::Function::New(env, FlockOpenLinked));
  exports.Set("flockClose", Napi::Function::New(env, FlockClose));
  exports.Set("fcntlLockHolder", Napi::Function::New(env, FcntlLockHolder));
}

}  // namespace
MPBUS_FACILITY(InitFsLock);
}  // namespace mpbus
