// A bounded wait for peers that do not read: mpBoundSendTimeout finds DPDK's rte_mp socket by a
// scan of /proc/self/fd and gives it a send timeout.
//
// DPDK's rte_mp socket is blocking: sendmsg to a peer whose receive queue is full
// (/proc/sys/net/unix/max_dgram_qlen datagrams, 10 by default) waits until it reads. A timeout on
// the socket turns that wait into EAGAIN: DPDK logs it, goes on with the next peer, and returns
// -1. Receiving is unaffected (SO_RCVTIMEO is a separate option). DPDK keeps the fd to itself,
// so it is found by its address: the AF_UNIX datagram socket bound to <runtime dir>/mp_socket
// (a secondary's is mp_socket_<pid>_<tsc>).
#include <dirent.h>
#include <rte_eal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <string>

#include "common.h"
#include "mp.h"

namespace mpbus {
namespace mp {
namespace {

int FindMpSocket() {
  std::string want = std::string(rte_eal_get_runtime_dir()) + "/mp_socket";
  if (rte_eal_process_type() == RTE_PROC_SECONDARY) want += "_";
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  int self = dirfd(dir);
  while (dirent* ent = readdir(dir)) {
    char* end = nullptr;
    long fd = strtol(ent->d_name, &end, 10);
    if (end == ent->d_name || *end != '\0' || fd == self) continue;
    int type = 0;
    socklen_t typeLen = sizeof(type);
    if (getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &typeLen) != 0 || type != SOCK_DGRAM) continue;
    sockaddr_un addr;
    socklen_t addrLen = sizeof(addr);
    memset(&addr, 0, sizeof(addr));
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &addrLen) != 0 ||
        addr.sun_family != AF_UNIX)
      continue;
    std::string path(addr.sun_path, strnlen(addr.sun_path, sizeof(addr.sun_path)));
    bool match = rte_eal_process_type() == RTE_PROC_SECONDARY ? path.compare(0, want.size(), want) == 0 : path == want;
    if (match) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// mpBoundSendTimeout(ms) -> the rte_mp socket's fd, or -1 if it was not found. See FindMpSocket.
Napi::Value MpBoundSendTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  double ms = ArgNumber(info, 0, "the send timeout (ms)");
  int fd = FindMpSocket();
  if (fd < 0) return Napi::Number::New(env, -1);
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms - tv.tv_sec * 1000.0) * 1000);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    int e = errno;
    ThrowError(env, ErrnoName(e), "cannot set a send timeout on DPDK's rte_mp socket: " + ErrnoText(e), e);
  }
  return Napi::Number::New(env, fd);
}

void InitMpSocket(Napi::Env env, Napi::Object exports) {
  exports.Set("mpBoundSendTimeout", Napi::Function::New(env, MpBoundSendTimeout));
}

}  // namespace

MPBUS_FACILITY(InitMpSocket);
}  // namespace mp
}  // namespace mpbus
