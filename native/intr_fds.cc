// Fds as interrupt sources: user fds (eventfds or raw fds) and the netlink watcher's socket,
// registered with the EAL interrupt thread (rte_intr_callback_register); each wake-up reads the
// fd and queues an fd event (intr_queue.cc). Also the eventfds of user sources, which Node has
// no API for.
#define ALLOW_EXPERIMENTAL_API 1
#include <fcntl.h>
#include <rte_interrupts.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

struct FdSource {
  uint32_t id;
  FdKind kind;
  int fd;
  bool ownsFd;
  rte_intr_handle* handle;
};

std::mutex gFdMutex;
std::map<uint32_t, std::shared_ptr<FdSource>> gFdSources;
uint32_t gNextFdId = 1;

void FdCallback(void* arg) {
  uint32_t id = static_cast<uint32_t>(reinterpret_cast<uintptr_t>(arg));
  std::shared_ptr<FdSource> src;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    auto it = gFdSources.find(id);
    if (it == gFdSources.end()) return;
    src = it->second;
  }
  if (src->kind == FdKind::kNetlink) {
    HandleNetlink(src->fd);
    return;
  }
  // The EAL does not read EXT fds: the callback must, or the level-triggered epoll spins.
  NativeEvent ev;
  ev.type = EventType::kFd;
  ev.sourceId = id;
  if (src->kind == FdKind::kEventfd) {
    uint64_t value = 0;
    ssize_t n = read(src->fd, &value, sizeof(value));
    if (n != sizeof(value)) return;  // spurious wake-up (another reader took it)
    ev.value = value;
  } else {
    char buf[4096];
    ssize_t total = 0;
    for (;;) {
      ssize_t n = read(src->fd, buf, sizeof(buf));
      if (n <= 0) break;
      total += n;
      if (n < static_cast<ssize_t>(sizeof(buf))) break;
    }
    if (total == 0) return;
    ev.bytes = static_cast<uint32_t>(total);
  }
  Push(std::move(ev));
}

// intrFdWatch(fd, kind: 'eventfd' | 'raw') -> source id. The caller keeps owning fd.
Napi::Value IntrFdWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  int fd = ArgInt32(info, 0, "the fd");
  std::string kind = ArgString(info, 1, "the fd kind");
  return Napi::Number::New(env, AddFdSource(env, fd, kind == "eventfd" ? FdKind::kEventfd : FdKind::kRaw, false));
}

Napi::Value IntrFdUnwatch(const Napi::CallbackInfo& info) {
  uint32_t id = ArgUint32(info, 0, "the fd source id");
  if (IsNetlinkSource(id)) return Napi::Boolean::New(info.Env(), false);
  return Napi::Boolean::New(info.Env(), RemoveFdSource(id));
}

Napi::Value EventfdOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) ThrowError(env, ErrnoName(errno), std::string("eventfd failed: ") + strerror(errno), errno);
  return Napi::Number::New(env, fd);
}

Napi::Value EventfdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = ArgInt32(info, 0, "the eventfd");
  uint64_t v = static_cast<uint64_t>(ArgInt64(info, 1, "the value to add"));
  if (write(fd, &v, sizeof(v)) != sizeof(v))
    ThrowError(env, ErrnoName(errno), std::string("eventfd write failed: ") + strerror(errno), errno);
  return env.Undefined();
}

Napi::Value EventfdClose(const Napi::CallbackInfo& info) {
  close(ArgInt32(info, 0, "the eventfd"));
  return info.Env().Undefined();
}

void InitFdSources(Napi::Env env, Napi::Object exports) {
  exports.Set("intrFdWatch", Napi::Function::New(env, IntrFdWatch));
  exports.Set("intrFdUnwatch", Napi::Function::New(env, IntrFdUnwatch));
  exports.Set("eventfdOpen", Napi::Function::New(env, EventfdOpen));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventfdWrite));
  exports.Set("eventfdClose", Napi::Function::New(env, EventfdClose));
}

// The errno epoll_ctl gives for fd (0: it can be watched). The EAL interrupt thread adds an fd
// to its epoll only later, on its own thread, and panics (rte_panic: the process aborts) when
// that fails: a regular file (EPERM) or a closed fd (EBADF). So the same call is tried here
// first, on an epoll of its own.
int UnpollableErrno(int fd) {
  // (first: a closed fd's number would be the epoll's own below)
  if (fcntl(fd, F_GETFD) < 0) return errno;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return errno;
  epoll_event ev{};
  ev.events = EPOLLIN;
  int e = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? 0 : errno;
  close(ep);
  return e;
}

}  // namespace

uint32_t AddFdSource(Napi::Env env, int fd, FdKind kind, bool ownsFd) {
  if (int e = UnpollableErrno(fd); e != 0) {
    if (ownsFd) close(fd);
    ThrowError(env, ErrnoName(e),
               "fd " + std::to_string(fd) + " cannot be watched: epoll refuses it (" + strerror(e) +
                   "); watch a pipe, FIFO, socket, eventfd or device, not a regular file or a closed fd",
               e);
  }
  rte_intr_handle* handle = rte_intr_instance_alloc(RTE_INTR_INSTANCE_F_PRIVATE);
  if (handle == nullptr) {
    if (ownsFd) close(fd);
    ThrowError(env, "ENOMEM", "rte_intr_instance_alloc failed", ENOMEM);
  }
  rte_intr_type_set(handle, RTE_INTR_HANDLE_EXT);
  rte_intr_fd_set(handle, fd);
  auto src = std::make_shared<FdSource>(FdSource{0, kind, fd, ownsFd, handle});
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    src->id = gNextFdId++;
    gFdSources[src->id] = src;
  }
  int rc = rte_intr_callback_register(handle, FdCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(src->id)));
  if (rc < 0) {
    {
      std::lock_guard<std::mutex> lock(gFdMutex);
      gFdSources.erase(src->id);
    }
    rte_intr_instance_free(handle);
    if (ownsFd) close(fd);
    ThrowError(env, ErrnoName(-rc), "the EAL interrupt thread refused fd " + std::to_string(fd) + ": " + ErrnoText(-rc),
               -rc);
  }
  return src->id;
}

bool RemoveFdSource(uint32_t id) {
  std::shared_ptr<FdSource> src;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    auto it = gFdSources.find(id);
    if (it == gFdSources.end()) return false;
    src = it->second;
    gFdSources.erase(it);
  }
  RetryWhileBusy([&] {
    return rte_intr_callback_unregister(src->handle, FdCallback, reinterpret_cast<void*>(static_cast<uintptr_t>(id)));
  });
  rte_intr_instance_free(src->handle);
  if (src->ownsFd) close(src->fd);
  return true;
}

void CloseFdSources() {
  std::vector<uint32_t> fds;
  {
    std::lock_guard<std::mutex> lock(gFdMutex);
    for (const auto& s : gFdSources) fds.push_back(s.first);
  }
  for (uint32_t id : fds) RemoveFdSource(id);
}

uint32_t FdSourceCount() {
  std::lock_guard<std::mutex> lock(gFdMutex);
  return static_cast<uint32_t>(gFdSources.size());
}

MPBUS_FACILITY(InitFdSources);
}  // namespace intr
}  // namespace mpbus
