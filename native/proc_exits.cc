// Process exit notices without polling: a thread per Node environment sleeps in epoll on pidfds
// (pidfd_open(2), Linux 5.3) of the processes JavaScript asked about, and calls JavaScript's
// onExit(pid) through a thread-safe function when one of them ends (SIGKILL included). Which
// processes to watch, and what an exit means, is policy: src/runtime/process-exits.ts.
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <thread>
#include <unordered_map>

#include "common.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace mpbus {
namespace {

struct ExitWatch {
  int epoll = -1;
  int stop = -1;  // an eventfd: written once to end the thread
  bool started = false;
  std::thread thread;
  Napi::ThreadSafeFunction onExit;
  // pid -> pidfd; only the JavaScript thread reads or changes it (the watcher thread sees the
  // pid in each epoll event's data)
  std::unordered_map<int32_t, int> pidfds;
};

void ThreadMain(ExitWatch* w) {
  epoll_event events[16];
  for (;;) {
    int n = epoll_wait(w->epoll, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == UINT64_MAX) return;  // the stop eventfd
      // One-shot: the pidfd stays readable once its process ended, so it is not armed again;
      // JavaScript's unwatch closes it.
      auto* pid = new int32_t(static_cast<int32_t>(events[i].data.u64));
      if (w->onExit.NonBlockingCall(pid, [](Napi::Env env, Napi::Function fn, int32_t* p) {
            int32_t value = *p;
            delete p;
            if (env != nullptr) fn.Call({Napi::Number::New(env, value)});
          }) != napi_ok) {
        delete pid;
      }
    }
  }
}

void Close(ExitWatch* w) {
  if (w->stop >= 0) {
    uint64_t one = 1;
    ssize_t ignored = write(w->stop, &one, sizeof one);
    (void)ignored;
  }
  if (w->thread.joinable()) w->thread.join();
  if (w->started) w->onExit.Release();
  w->started = false;
  for (auto& [pid, fd] : w->pidfds) close(fd);
  w->pidfds.clear();
  if (w->stop >= 0) close(w->stop);
  if (w->epoll >= 0) close(w->epoll);
  w->stop = w->epoll = -1;
}

const char kEnvKey = 0;

ExitWatch*& WatchOf(Napi::Env env) { return reinterpret_cast<ExitWatch*&>(EnvSlot(env, &kEnvKey)); }

void CleanupHook(void* arg) {
  auto* w = static_cast<ExitWatch*>(arg);
  Close(w);
  delete w;
}

ExitWatch& RequireWatch(const Napi::CallbackInfo& info) {
  ExitWatch* w = WatchOf(info.Env());
  if (w == nullptr || w->epoll < 0)
    ThrowError(info.Env(), kCodeNotReady, "process exit watching is not open: call procExitsOpen first");
  return *w;
}

// procExitsOpen(onExit: (pid) => void): starts this environment's watcher thread, which runs
// until the environment ends (its cleanup hook stops it and closes every pidfd). Throws ENOSYS
// (or EPERM under a seccomp filter) when the kernel has no pidfd_open: the caller polls instead.
Napi::Value ProcExitsOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function onExit = ArgFunction(info, 0, "onExit");
  ExitWatch*& slot = WatchOf(env);
  if (slot != nullptr && slot->epoll >= 0)
    ThrowError(env, "EALREADY", "process exit watching is already open in this environment");
  // probe pidfd_open on this very process before starting anything
  int probe = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (probe < 0) {
    int e = errno;
    ThrowError(env, ErrnoName(e), std::string("pidfd_open is not available: ") + strerror(e), e);
  }
  close(probe);
  if (slot == nullptr) {
    slot = new ExitWatch();
    napi_add_env_cleanup_hook(env, CleanupHook, slot);
  }
  ExitWatch* w = slot;
  w->epoll = epoll_create1(EPOLL_CLOEXEC);
  w->stop = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (w->epoll < 0 || w->stop < 0) {
    int e = errno;
    Close(w);
    ThrowError(env, ErrnoName(e), std::string("cannot create the exit watcher: ") + strerror(e), e);
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(w->epoll, EPOLL_CTL_ADD, w->stop, &ev);
  w->onExit = Napi::ThreadSafeFunction::New(env, onExit, "mpbus-process-exits", 0, 1);
  w->onExit.Unref(env);  // watching never keeps a process alive
  w->started = true;
  if (int e = TryStartThread(&w->thread, ThreadMain, w); e != 0) {
    Close(w);
    ThrowThreadLimit(env, "the process exit watcher's thread", e);
  }
  return env.Undefined();
}

// procExitsWatch(pid) -> true when watched (or already), false when no such process is left.
Napi::Value ProcExitsWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ExitWatch& w = RequireWatch(info);
  int32_t pid = static_cast<int32_t>(ArgNumber(info, 0, "the pid"));
  if (pid <= 0) ThrowError(env, "EINVAL", "the pid must be a positive integer");
  if (w.pidfds.count(pid) != 0) return Napi::Boolean::New(env, true);
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    int e = errno;
    if (e == ESRCH) return Napi::Boolean::New(env, false);
    ThrowError(env, ErrnoName(e), "cannot watch process " + std::to_string(pid) + ": " + strerror(e), e);
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = static_cast<uint32_t>(pid);
  if (epoll_ctl(w.epoll, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    close(fd);
    ThrowError(env, ErrnoName(e), "cannot watch process " + std::to_string(pid) + ": " + strerror(e), e);
  }
  w.pidfds.emplace(pid, fd);
  return Napi::Boolean::New(env, true);
}

// procExitsUnwatch(pid): forgets the process (closing a pidfd removes it from the epoll set).
Napi::Value ProcExitsUnwatch(const Napi::CallbackInfo& info) {
  ExitWatch& w = RequireWatch(info);
  int32_t pid = static_cast<int32_t>(ArgNumber(info, 0, "the pid"));
  auto it = w.pidfds.find(pid);
  if (it != w.pidfds.end()) {
    close(it->second);
    w.pidfds.erase(it);
  }
  return info.Env().Undefined();
}

void InitProcExits(Napi::Env env, Napi::Object exports) {
  exports.Set("procExitsOpen", Napi::Function::New(env, ProcExitsOpen));
  exports.Set("procExitsWatch", Napi::Function::New(env, ProcExitsWatch));
  exports.Set("procExitsUnwatch", Napi::Function::New(env, ProcExitsUnwatch));
}

}  // namespace
MPBUS_FACILITY(InitProcExits);
}  // namespace mpbus
