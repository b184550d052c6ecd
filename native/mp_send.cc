// The primary's sender thread: its messages (rte_mp_sendmsg: a broadcast to every secondary)
// leave in FIFO order, off the JS thread (mpSendQueued, mpSendStats).
//
// DPDK sends with a blocking sendmsg on its datagram socket, and a secondary that cannot read
// (stopped, or its IPC thread starved) must not stall the JS thread. The primary's rte_mp socket
// also gets a send timeout (mp_socket.cc), so no sender, DPDK's own hotplug requests included,
// waits forever for a peer whose queue is full.
//
// The JS thread only copies the message (and dups its fds) into a FIFO and returns; this thread
// calls rte_mp_sendmsg for each, in order, and reports what it could not send (and, when asked,
// what it sent) through the inbox. It sleeps on a condition variable when idle, starts on the
// first queued send, and is joined by mpClose (a runtime close hook: before rte_eal_cleanup).
// It is a plain thread, invisible to libuv: it never keeps the process alive.
//
// Process-wide, not per environment: it feeds DPDK's one rte_mp socket of the process, and its
// state must outlive exit() (below).
#include <fcntl.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common.h"
#include "mp.h"

namespace mpbus {
namespace mp {
namespace {

struct Outgoing {
  rte_mp_msg msg;
  double ticket;
  bool notify;
};

// Never destroyed: at exit() (a process.exit without close) the thread may still wait on the
// condition variable, and glibc's pthread_cond_destroy waits for its waiters: a destructor
// would hang the exit. A joinable std::thread destroyed at exit would abort.
std::mutex& gSendMutex = *new std::mutex;
std::condition_variable& gSendWake = *new std::condition_variable;
std::deque<Outgoing>& gSendQueue = *new std::deque<Outgoing>;
bool gSendStop = false;
std::thread* gSender = nullptr;
std::atomic<double> gSendTickets{0};  // tickets handed out (ticket n is the n-th queued send)
std::atomic<double> gSendDone{0};     // tickets whose send returned
std::atomic<double> gSendFailed{0};   // sends that failed for at least one peer
// Closing: what is still queued goes on for this long, even past a peer that does not read (each
// message then waits the socket's send timeout for it: 10 ms once it is known stuck). Dropped
// at its first failure, the last messages never reached the peers that read either: the
// interrupt relay's last events and its end.
constexpr std::chrono::milliseconds kCloseSendBudget{100};
std::chrono::steady_clock::time_point gStopAt;

void SenderLoop() {
  pthread_setname_np(pthread_self(), "mpbus-mp-send");
  // Closing for longer than the budget, and a peer is not reading: do not wait on it once per message.
  bool dropRest = false;
  bool lastFailed = false;
  for (;;) {
    Outgoing out;
    {
      std::unique_lock<std::mutex> lock(gSendMutex);
      gSendWake.wait(lock, [] { return gSendStop || !gSendQueue.empty(); });
      if (gSendQueue.empty()) return;  // stopping, and everything was sent
      out = gSendQueue.front();
      gSendQueue.pop_front();
    }
    int errnum = 0;
    std::string log;
    if (dropRest) {
      errnum = ECANCELED;
    } else if (uint64_t logMark = DpdkLogMark(); rte_mp_sendmsg(&out.msg) < 0) {
      errnum = rte_errno != 0 ? rte_errno : EIO;
      log = RecentDpdkLog(2, logMark);
      std::lock_guard<std::mutex> lock(gSendMutex);
      if (gSendStop && std::chrono::steady_clock::now() - gStopAt > kCloseSendBudget) dropRest = true;
    }
    for (int i = 0; i < out.msg.num_fds; i++) close(out.msg.fds[i]);
    if (errnum != 0) gSendFailed.store(gSendFailed.load() + 1);
    gSendDone.store(out.ticket);
    // The first success after a failure is reported too: JS learns that every peer reads again.
    bool recovered = errnum == 0 && lastFailed;
    lastFailed = errnum != 0;
    if (errnum != 0 || out.notify || recovered) {
      Event ev;
      ev.kind = Event::kSendDone;
      ev.name.assign(out.msg.name, strnlen(out.msg.name, RTE_MP_MAX_NAME_LEN));
      ev.ticket = out.ticket;
      ev.errnum = errnum;
      ev.log = std::move(log);
      Push(std::move(ev));
    }
  }
}

// mpSendQueued(name, param?, fds?, notify) -> ticket: queues an rte_mp_sendmsg for the sender
// thread. fds are duplicated (the caller keeps its own). With notify, a "sendDone" event reports
// the outcome; failures, and the first success after a failure, are always reported.
Napi::Value MpSendQueued(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Outgoing out;
  FillMsg(env, info, 0, &out.msg);
  out.notify = info[3].ToBoolean();
  for (int i = 0; i < out.msg.num_fds; i++) {
    int dup = fcntl(out.msg.fds[i], F_DUPFD_CLOEXEC, 0);
    if (dup < 0) {
      int e = errno;
      for (int j = 0; j < i; j++) close(out.msg.fds[j]);
      ThrowError(env, ErrnoName(e),
                 "cannot duplicate fd " + std::to_string(out.msg.fds[i]) + " to send it: " + ErrnoText(e), e);
    }
    out.msg.fds[i] = dup;
  }
  {
    std::lock_guard<std::mutex> lock(gSendMutex);
    if (gSender == nullptr) {
      std::thread sender;
      if (int e = TryStartThread(&sender, SenderLoop); e != 0) {
        for (int i = 0; i < out.msg.num_fds; i++) close(out.msg.fds[i]);
        ThrowThreadLimit(env, "the rte_mp sender thread", e);
      }
      gSender = new std::thread(std::move(sender));
    }
    out.ticket = gSendTickets.load() + 1;
    gSendTickets.store(out.ticket);
    gSendQueue.push_back(out);
  }
  gSendWake.notify_one();
  return Napi::Number::New(env, out.ticket);
}

// mpSendStats() -> { queued, done, failed }: cheap counters (queued - done = the backlog).
Napi::Value MpSendStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("queued", gSendTickets.load());
  o.Set("done", gSendDone.load());
  o.Set("failed", gSendFailed.load());
  return o;
}

void InitMpSend(Napi::Env env, Napi::Object exports) {
  exports.Set("mpSendQueued", Napi::Function::New(env, MpSendQueued));
  exports.Set("mpSendStats", Napi::Function::New(env, MpSendStats));
}

}  // namespace

void StopSender() {
  std::thread* t;
  {
    std::lock_guard<std::mutex> lock(gSendMutex);
    t = gSender;
    gSender = nullptr;
    if (t == nullptr) return;
    gSendStop = true;
    gStopAt = std::chrono::steady_clock::now();
  }
  gSendWake.notify_all();
  t->join();
  delete t;
  std::lock_guard<std::mutex> lock(gSendMutex);
  gSendStop = false;
}

MPBUS_FACILITY(InitMpSend);
}  // namespace mp
}  // namespace mpbus
