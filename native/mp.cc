// rte_mp (DPDK's IPC between the processes of a group), bridged to JavaScript.
//
// DPDK runs action callbacks on its IPC thread and async-request callbacks on the IPC thread
// (replies) or the interrupt thread (timeouts). Neither may run JavaScript and neither should
// wait for it, so every callback here only copies what DPDK handed over (the message, the
// sender's socket path, the replies) into an inbox and returns. One thread-safe function call
// per burst wakes the JS thread, which drains the whole inbox at once. Replies are sent later
// from the JS thread with the saved sender path, which rte_mp_reply accepts from any thread.
//
// The primary's messages (rte_mp_sendmsg: a broadcast to every secondary) go out from a sender
// thread, in FIFO order: DPDK sends with a blocking sendmsg on its datagram socket, and a
// secondary that cannot read (stopped, or its IPC thread starved) must not stall the JS thread.
// The primary's rte_mp socket also gets a send timeout (MpBoundSendTimeout), so no sender, DPDK's
// own hotplug requests included, waits forever for a peer whose queue is full.
//
// Policy (names, sizes, lanes, correlation ids, late replies) lives in src/bus/; this file only
// reports what DPDK said. It also owns "large payload" buffers: values too big for the 256-byte
// param travel in rte_malloc'd shared memory, referenced by (address, length, token).
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_fbarray.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_random.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "pipeline.h"

namespace mpbus {
namespace {

struct Reply {
  std::vector<uint8_t> param;
  std::vector<int> fds;
};

// One thing that happened on a DPDK thread, waiting for the JS thread.
struct Event {
  enum Kind { kIncoming = 0, kRequestDone = 1, kSendDone = 2 } kind = kIncoming;
  std::string name;
  // kIncoming: the message and who sent it.
  std::vector<uint8_t> param;
  std::vector<int> fds;
  std::string peer;
  // kRequestDone: what rte_mp_request_async reported (param holds the request's param).
  int sent = 0;
  int received = 0;
  std::vector<Reply> replies;
  // kSendDone: a queued send left (errnum 0) or failed for some peer (rte_errno).
  double ticket = 0;
  int errnum = 0;
  std::string log;
};

void CloseFds(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

void CopyFds(const rte_mp_msg* msg, std::vector<int>* out) {
  int n = msg->num_fds;
  if (n < 0) n = 0;
  if (n > RTE_MP_MAX_FD_NUM) n = RTE_MP_MAX_FD_NUM;
  out->assign(msg->fds, msg->fds + n);
}

void CopyParam(const rte_mp_msg* msg, std::vector<uint8_t>* out) {
  int n = msg->len_param;
  if (n < 0) n = 0;
  if (n > RTE_MP_MAX_PARAM_LEN) n = RTE_MP_MAX_PARAM_LEN;
  out->assign(msg->param, msg->param + n);
}

// ---- the inbox: DPDK threads push, the JS thread drains (pipeline.h) -----------------------
void DrainToJs(Napi::Env env, Napi::Function callback);
// Open between mpOpen and mpClose; unbounded (DPDK's own queues bound what arrives).
Pipeline<Event> gInbox("mpbus-rte-mp", 0, DrainToJs);

// ---- short spin before the event loop sleeps ----------------------------------------------
// Waking a sleeping JS thread costs as much as the IPC itself on these VMs. While traffic is
// expected (a request just went out, or a message just came in), the loop's prepare phase,
// right before it would block, spins briefly until the inbox fills. The wake-up is then
// already signalled and the loop goes on without sleeping. Idle, nothing spins.
std::atomic<int64_t> gSpinUntilNs{0};
std::atomic<int64_t> gSpinWindowNs{0};  // 0: spinning off
std::atomic<int64_t> gSpinMaxNs{0};
uv_prepare_t* gPrepare = nullptr;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

void ExpectTraffic() {
  int64_t window = gSpinWindowNs.load(std::memory_order_relaxed);
  if (window > 0) gSpinUntilNs.store(NowNs() + window, std::memory_order_relaxed);
}

void SpinBeforePoll(uv_prepare_t*) {
  int64_t until = gSpinUntilNs.load(std::memory_order_relaxed);
  int64_t start = NowNs();
  if (start >= until) return;
  int64_t stop = start + gSpinMaxNs.load(std::memory_order_relaxed);
  if (stop > until) stop = until;
  // Yield rather than pause: with fewer CPUs than busy threads, the thread this spin waits for
  // (DPDK's IPC thread, here or in the peer) may need this very CPU.
  while (!gInbox.Filled()) {
    if (NowNs() >= stop) return;
    sched_yield();
  }
}

// Called on DPDK threads. Takes ownership of the event's fds: closes them if nobody listens.
void Push(Event&& ev) {
  if (!gInbox.Push(std::move(ev))) {
    CloseFds(ev.fds);
    for (auto& r : ev.replies) CloseFds(r.fds);
  }
}

Napi::Array FdsToJs(Napi::Env env, const std::vector<int>& fds) {
  Napi::Array arr = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) arr.Set(i, fds[i]);
  return arr;
}

void DrainToJsUnsafe(Napi::Env env, Napi::Function callback);

// Runs on the JS thread: hands every pending event to the bus in one call. Node may run a last
// queued call while it tears the environment down, when no JavaScript can run: a C++ exception
// escaping here would terminate the process, so none does.
void DrainToJs(Napi::Env env, Napi::Function callback) {
  try {
    DrainToJsUnsafe(env, callback);
  } catch (...) {
    // the bus's drain catches its own errors; only a dying environment gets here
  }
}

void DrainToJsUnsafe(Napi::Env env, Napi::Function callback) {
  std::vector<Event> events = gInbox.Take();
  if (events.empty() || env == nullptr) return;
  for (const Event& ev : events) {
    if (ev.kind == Event::kIncoming) {
      ExpectTraffic();  // a peer is active: its next message likely follows soon
      break;
    }
  }
  Napi::Array arr = Napi::Array::New(env, events.size());
  for (size_t i = 0; i < events.size(); i++) {
    Event& ev = events[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", ev.kind == Event::kIncoming      ? "incoming"
                  : ev.kind == Event::kRequestDone ? "requestDone"
                                                   : "sendDone");
    o.Set("name", ev.name);
    if (ev.kind == Event::kSendDone) {
      o.Set("ticket", ev.ticket);
      if (ev.errnum != 0) {
        o.Set("code", ErrnoName(ev.errnum));
        o.Set("errno", ev.errnum);
        o.Set("message", ErrnoText(ev.errnum) + (ev.log.empty() ? "" : "\nDPDK said:\n" + ev.log));
      }
    } else if (ev.kind == Event::kIncoming) {
      o.Set("param", Napi::Buffer<uint8_t>::Copy(env, ev.param.data(), ev.param.size()));
      o.Set("fds", FdsToJs(env, ev.fds));
      o.Set("peer", ev.peer);
    } else {
      o.Set("requestParam", Napi::Buffer<uint8_t>::Copy(env, ev.param.data(), ev.param.size()));
      o.Set("sent", ev.sent);
      o.Set("received", ev.received);
      Napi::Array replies = Napi::Array::New(env, ev.replies.size());
      for (size_t r = 0; r < ev.replies.size(); r++) {
        Napi::Object ro = Napi::Object::New(env);
        ro.Set("param", Napi::Buffer<uint8_t>::Copy(env, ev.replies[r].param.data(), ev.replies[r].param.size()));
        ro.Set("fds", FdsToJs(env, ev.replies[r].fds));
        replies.Set(r, ro);
      }
      o.Set("replies", replies);
    }
    arr.Set(i, o);
  }
  callback.Call({arr});
}

// ---- DPDK callbacks (IPC thread, interrupt thread) -----------------------------------------
int OnAction(const rte_mp_msg* msg, const void* peer) {
  Event ev;
  ev.kind = Event::kIncoming;
  ev.name.assign(msg->name, strnlen(msg->name, RTE_MP_MAX_NAME_LEN));
  CopyParam(msg, &ev.param);
  CopyFds(msg, &ev.fds);
  if (peer != nullptr) ev.peer = static_cast<const char*>(peer);
  Push(std::move(ev));
  return 0;
}

int OnAsyncReply(const rte_mp_msg* request, const struct rte_mp_reply* reply) {
  Event ev;
  ev.kind = Event::kRequestDone;
  ev.name.assign(request->name, strnlen(request->name, RTE_MP_MAX_NAME_LEN));
  ev.sent = reply->nb_sent;
  ev.received = reply->nb_received;
  CopyParam(request, &ev.param);  // lets JS tell which request this was (its correlation id)
  for (int i = 0; i < reply->nb_received; i++) {
    Reply r;
    CopyParam(&reply->msgs[i], &r.param);
    CopyFds(&reply->msgs[i], &r.fds);
    ev.replies.push_back(std::move(r));
  }
  Push(std::move(ev));
  return 0;
}

// ---- argument helpers (TypeScript validated already; these only keep C++ memory-safe) -----
void FillMsg(Napi::Env env, const Napi::CallbackInfo& info, size_t first, rte_mp_msg* msg) {
  memset(msg, 0, sizeof(*msg));
  std::string name = ArgString(info, first, "the rte_mp name");
  if (name.empty() || name.size() >= RTE_MP_MAX_NAME_LEN) {
    ThrowError(env, "ENAMETOOLONG", "rte_mp name must be 1.." + std::to_string(RTE_MP_MAX_NAME_LEN - 1) + " bytes");
  }
  memcpy(msg->name, name.data(), name.size());
  Napi::Value payload = info[first + 1];
  if (payload.IsTypedArray()) {
    Napi::Uint8Array bytes = ArgBytes(info, first + 1, "the rte_mp param");
    if (bytes.ByteLength() > RTE_MP_MAX_PARAM_LEN) {
      ThrowError(env, "E2BIG", "rte_mp param is at most " + std::to_string(RTE_MP_MAX_PARAM_LEN) + " bytes");
    }
    memcpy(msg->param, bytes.Data(), bytes.ByteLength());
    msg->len_param = static_cast<int>(bytes.ByteLength());
  }
  Napi::Value fds = info[first + 2];
  if (fds.IsArray()) {
    Napi::Array arr = fds.As<Napi::Array>();
    if (arr.Length() > RTE_MP_MAX_FD_NUM) {
      ThrowError(env, "E2BIG", "rte_mp carries at most " + std::to_string(RTE_MP_MAX_FD_NUM) + " fds");
    }
    for (uint32_t i = 0; i < arr.Length(); i++) msg->fds[i] = static_cast<int>(NumberOf(env, arr.Get(i), "an fd"));
    msg->num_fds = static_cast<int>(arr.Length());
  }
}

[[noreturn]] void ThrowRte(Napi::Env env, const std::string& what) {
  int e = rte_errno;
  std::string log = RecentDpdkLog(2);
  ThrowError(env, ErrnoName(e), what + ": " + ErrnoText(e) + (log.empty() ? "" : "\nDPDK said:\n" + log), e);
}

timespec TimeoutSpec(const Napi::Value& v) {
  double ms = NumberOf(v.Env(), v, "the timeout (ms)");
  if (ms < 0) ms = 0;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>((ms - ts.tv_sec * 1000.0) * 1e6);
  return ts;
}

// ---- the sender thread: the primary's messages, in order, off the JS thread ----------------
// The JS thread only copies the message (and dups its fds) into a FIFO and returns; this thread
// calls rte_mp_sendmsg for each, in order, and reports what it could not send (and, when asked,
// what it sent) through the inbox. It sleeps on a condition variable when idle, starts on the
// first queued send, and is joined by mpClose (a runtime close hook: before rte_eal_cleanup).
// It is a plain thread, invisible to libuv: it never keeps the process alive.
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

void SenderLoop() {
  pthread_setname_np(pthread_self(), "mpbus-mp-send");
  bool dropRest = false;  // closing, and a peer is not reading: do not wait on it once per message
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
    } else if (rte_mp_sendmsg(&out.msg) < 0) {
      errnum = rte_errno != 0 ? rte_errno : EIO;
      log = RecentDpdkLog(2);
      std::lock_guard<std::mutex> lock(gSendMutex);
      if (gSendStop) dropRest = true;
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

// Sends what is queued (each send bounded by the socket's send timeout), then joins the thread.
void StopSender() {
  std::thread* t;
  {
    std::lock_guard<std::mutex> lock(gSendMutex);
    t = gSender;
    gSender = nullptr;
    if (t == nullptr) return;
    gSendStop = true;
  }
  gSendWake.notify_all();
  t->join();
  delete t;
  std::lock_guard<std::mutex> lock(gSendMutex);
  gSendStop = false;
}

// ---- a bounded wait for peers that do not read ---------------------------------------------
// DPDK's rte_mp socket is blocking: sendmsg to a peer whose receive queue is full
// (/proc/sys/net/unix/max_dgram_qlen datagrams, 10 by default) waits until it reads. A timeout on
// the socket turns that wait into EAGAIN: DPDK logs it, goes on with the next peer, and returns
// -1. Receiving is unaffected (SO_RCVTIMEO is a separate option). DPDK keeps the fd to itself,
// so it is found by its address: the AF_UNIX datagram socket bound to <runtime dir>/mp_socket
// (a secondary's is mp_socket_<pid>_<tsc>).
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

// ---- JS functions ---------------------------------------------------------------------------

// mpOpen(drain): starts delivering events to drain(events[]). The wake-up handle is unref'd:
// an open bus never keeps the process alive by itself.
Napi::Value MpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  if (!gInbox.Open(env, ArgFunction(info, 0, "the event callback"))) {
    ThrowError(env, "EALREADY", "the rte_mp bridge is already open in this process");
  }
  if (gPrepare == nullptr) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    if (loop != nullptr) {
      gPrepare = new uv_prepare_t;
      uv_prepare_init(loop, gPrepare);
      uv_unref(reinterpret_cast<uv_handle_t*>(gPrepare));
    }
  }
  if (gPrepare != nullptr) uv_prepare_start(gPrepare, SpinBeforePoll);
  return env.Undefined();
}

// mpSetSpin(windowUs, maxUs): spin up to maxUs before the loop sleeps, within windowUs of the
// last request sent or message received. (0, 0) turns spinning off.
Napi::Value MpSetSpin(const Napi::CallbackInfo& info) {
  gSpinWindowNs = static_cast<int64_t>(ArgNumber(info, 0, "the spin window (us)") * 1000);
  gSpinMaxNs = static_cast<int64_t>(ArgNumber(info, 1, "the spin limit (us)") * 1000);
  gSpinUntilNs = 0;
  return info.Env().Undefined();
}

// mpClose(): stops delivery; events that arrive later are dropped and their fds closed.
Napi::Value MpClose(const Napi::CallbackInfo& info) {
  StopSender();  // its last reports are dropped with the inbox below
  std::vector<Event> dropped = gInbox.Close();
  if (gPrepare != nullptr) uv_prepare_stop(gPrepare);
  gSpinUntilNs = 0;
  for (auto& ev : dropped) {
    CloseFds(ev.fds);
    for (auto& r : ev.replies) CloseFds(r.fds);
  }
  return info.Env().Undefined();
}

Napi::Value MpRegister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = ArgString(info, 0, "the rte_mp name");
  if (rte_mp_action_register(name.c_str(), OnAction) < 0)
    ThrowRte(env, "rte_mp_action_register('" + name + "') failed");
  return env.Undefined();
}

Napi::Value MpUnregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!EalReady()) return env.Undefined();
  std::string name = ArgString(info, 0, "the rte_mp name");
  rte_mp_action_unregister(name.c_str());
  return env.Undefined();
}

// mpSend(name, param?, fds?)
Napi::Value MpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  if (rte_mp_sendmsg(&msg) < 0) ThrowRte(env, std::string("rte_mp_sendmsg('") + msg.name + "') failed");
  return env.Undefined();
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
    if (gSender == nullptr) gSender = new std::thread(SenderLoop);
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

// mpRequestAsync(name, param?, fds?, timeoutMs): the outcome arrives as a "requestDone" event.
Napi::Value MpRequestAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  timespec ts = TimeoutSpec(info[3]);
  if (rte_mp_request_async(&msg, &ts, OnAsyncReply) < 0) {
    ThrowRte(env, std::string("rte_mp_request_async('") + msg.name + "') failed");
  }
  ExpectTraffic();
  return env.Undefined();
}

// rte_mp_request_sync blocks until every peer replied or the timeout: run it on a pool thread.
class RequestSyncWorker : public Napi::AsyncWorker {
 public:
  RequestSyncWorker(Napi::Env env, const rte_mp_msg& msg, timespec ts)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), msg_(msg), ts_(ts) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    struct rte_mp_reply reply = {};
    rc_ = rte_mp_request_sync(&msg_, &reply, &ts_);
    errnum_ = rc_ < 0 ? rte_errno : 0;
    sent_ = reply.nb_sent;
    for (int i = 0; i < reply.nb_received && reply.msgs != nullptr; i++) {
      Reply r;
      CopyParam(&reply.msgs[i], &r.param);
      CopyFds(&reply.msgs[i], &r.fds);
      replies_.push_back(std::move(r));
    }
    free(reply.msgs);
  }

  void OnOK() override {
    Napi::Env env = Env();
    // DPDK reports a timeout as a failure; mpbus reports it as a result with fewer replies.
    if (rc_ < 0 && errnum_ != ETIMEDOUT) {
      for (auto& r : replies_) CloseFds(r.fds);
      deferred_.Reject(MakeError(env, ErrnoName(errnum_),
                                 std::string("rte_mp_request_sync('") + msg_.name + "') failed: " + ErrnoText(errnum_),
                                 errnum_)
                           .Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("sent", sent_);
    o.Set("received", static_cast<uint32_t>(replies_.size()));
    o.Set("timedOut", rc_ < 0);
    Napi::Array arr = Napi::Array::New(env, replies_.size());
    for (size_t i = 0; i < replies_.size(); i++) {
      Napi::Object ro = Napi::Object::New(env);
      ro.Set("param", Napi::Buffer<uint8_t>::Copy(env, replies_[i].param.data(), replies_[i].param.size()));
      ro.Set("fds", FdsToJs(env, replies_[i].fds));
      arr.Set(i, ro);
    }
    o.Set("replies", arr);
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  rte_mp_msg msg_;
  timespec ts_;
  int rc_ = 0;
  int errnum_ = 0;
  int sent_ = 0;
  std::vector<Reply> replies_;
};

Napi::Value MpRequestSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  auto* worker = new RequestSyncWorker(env, msg, TimeoutSpec(info[3]));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// mpReply(name, param?, fds?, peer)
Napi::Value MpReply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  std::string peer = ArgString(info, 3, "the peer's socket path");
  if (rte_mp_reply(&msg, peer.c_str()) < 0) {
    ThrowRte(env, std::string("rte_mp_reply('") + msg.name + "') failed");
  }
  return env.Undefined();
}

// ---- large payloads of rte_mp messages (not the mailboxes' large blocks: mailbox.h) -------
// Layout of an rte_malloc'd buffer: a header, then the bytes. The state word packs the token
// (high 32 bits), a "dead" bit and a reader count, so every CAS also checks the token: memory
// that was freed (DPDK zeroes it) or reused never matches.
constexpr uint64_t kPayloadMagic = 0x31474c5355424d50ULL;  // "PMBUSLG1"
constexpr uint64_t kDeadBit = 1ULL << 31;
constexpr uint64_t kReaderMask = kDeadBit - 1;
constexpr uint64_t kMaxPayloadBytes = 1ULL << 30;

struct PayloadHeader {
  uint64_t magic;
  uint64_t length;
  std::atomic<uint64_t> state;
  uint32_t token;
  uint32_t ownerPid;
};

uint64_t LiveState(uint32_t token) { return static_cast<uint64_t>(token) << 32; }

// True if every page of [addr, addr+len) is an allocated page of one DPDK memseg list. Pages
// DPDK gave back are remapped PROT_NONE: touching them would crash, so "in the range" is not
// enough; each page's memseg must be in use.
bool InDpdkMemory(uintptr_t addr, uint64_t len) {
  if (addr == 0 || len == 0 || addr + len < addr) return false;
  const rte_memseg_list* msl = rte_mem_virt2memseg_list(reinterpret_cast<void*>(addr));
  if (msl == nullptr || msl->page_sz == 0) return false;
  uintptr_t base = reinterpret_cast<uintptr_t>(msl->base_va);
  uintptr_t end = addr + len - 1;
  if (end >= base + msl->len) return false;
  for (uintptr_t page = (addr - base) / msl->page_sz; page <= (end - base) / msl->page_sz; page++) {
    if (rte_fbarray_is_used(const_cast<rte_fbarray*>(&msl->memseg_arr), static_cast<unsigned>(page)) != 1) return false;
  }
  return true;
}

// mpLargeAlloc(bytes) -> { address, token }
Napi::Value PayloadAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Napi::Uint8Array bytes = ArgBytes(info, 0, "the payload");
  if (bytes.ByteLength() == 0 || bytes.ByteLength() > kMaxPayloadBytes)
    ThrowError(env, "E2BIG", "large payload size out of range");
  auto* hdr =
      static_cast<PayloadHeader*>(rte_malloc("mpbus_mp_payload", sizeof(PayloadHeader) + bytes.ByteLength(), 64));
  if (hdr == nullptr) {
    ThrowError(env, "ENOMEM",
               "no shared hugepage memory for a " + std::to_string(bytes.ByteLength()) +
                   "-byte payload: reserve more hugepages or send smaller values",
               ENOMEM);
  }
  uint32_t token = static_cast<uint32_t>(rte_rand()) | 1;  // never 0: zeroed memory never matches
  hdr->length = bytes.ByteLength();
  hdr->token = token;
  hdr->ownerPid = static_cast<uint32_t>(getpid());
  hdr->state.store(LiveState(token), std::memory_order_relaxed);
  memcpy(static_cast<void*>(hdr + 1), bytes.Data(), bytes.ByteLength());
  std::atomic_thread_fence(std::memory_order_release);
  hdr->magic = kPayloadMagic;
  Napi::Object o = Napi::Object::New(env);
  o.Set("address", Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(hdr))));
  o.Set("token", token);
  return o;
}

// Validates a reference another process sent. Returns the header or nullptr.
PayloadHeader* CheckPayload(double addressD, double lengthD, uint32_t token) {
  if (!(addressD > 0) || addressD > 9007199254740991.0 || !(lengthD > 0) ||
      lengthD > static_cast<double>(kMaxPayloadBytes))
    return nullptr;
  uintptr_t address = static_cast<uintptr_t>(addressD);
  uint64_t length = static_cast<uint64_t>(lengthD);
  if (address % 64 != 0) return nullptr;
  if (!InDpdkMemory(address, sizeof(PayloadHeader) + length)) return nullptr;
  auto* hdr = reinterpret_cast<PayloadHeader*>(address);
  if (hdr->magic != kPayloadMagic || hdr->token != token || hdr->length != length) return nullptr;
  return hdr;
}

void FreePayload(PayloadHeader* hdr) {
  hdr->magic = 0;
  rte_free(hdr);
}

// mpLargeTake(address, length, token, exclusive) -> Buffer, or null when the reference is not a
// live mpbus buffer (expired, freed, forged). exclusive: the only receiver copies and frees it;
// otherwise (a broadcast) the reader holds a reference while copying and the sender frees.
Napi::Value PayloadTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  uint32_t token = ArgUint32(info, 2, "the token");
  bool exclusive = info[3].ToBoolean();
  PayloadHeader* hdr = CheckPayload(ArgNumber(info, 0, "the address"), ArgNumber(info, 1, "the length"), token);
  if (hdr == nullptr) return env.Null();
  uint64_t live = LiveState(token);
  if (exclusive) {
    uint64_t expected = live;
    if (!hdr->state.compare_exchange_strong(expected, live | kDeadBit)) return env.Null();
    Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(hdr + 1), hdr->length);
    FreePayload(hdr);
    return out;
  }
  uint64_t cur = hdr->state.load();
  do {
    if ((cur >> 32) != token || (cur & kDeadBit) != 0) return env.Null();
  } while (!hdr->state.compare_exchange_weak(cur, cur + 1));
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<uint8_t*>(hdr + 1), hdr->length);
  hdr->state.fetch_sub(1);
  return out;
}

// mpLargeRelease(address, length, token): the sender's end of a buffer it sent. Frees it unless an
// exclusive receiver took it; waits (briefly) for readers still copying.
Napi::Value PayloadRelease(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!EalReady()) return Napi::Boolean::New(env, false);
  uint32_t token = ArgUint32(info, 2, "the token");
  PayloadHeader* hdr = CheckPayload(ArgNumber(info, 0, "the address"), ArgNumber(info, 1, "the length"), token);
  if (hdr == nullptr) return Napi::Boolean::New(env, false);
  uint64_t live = LiveState(token);
  for (int spins = 0; spins < 100000; spins++) {
    uint64_t expected = live;
    if (hdr->state.compare_exchange_strong(expected, live | kDeadBit)) {
      FreePayload(hdr);
      return Napi::Boolean::New(env, true);
    }
    if ((expected >> 32) != token || (expected & kDeadBit) != 0) return Napi::Boolean::New(env, false);
    sched_yield();  // a reader is copying (microseconds)
  }
  return Napi::Boolean::New(env, false);
}

void InitMp(Napi::Env env, Napi::Object exports) {
  exports.Set("mpOpen", Napi::Function::New(env, MpOpen));
  exports.Set("mpClose", Napi::Function::New(env, MpClose));
  exports.Set("mpSetSpin", Napi::Function::New(env, MpSetSpin));
  exports.Set("mpRegister", Napi::Function::New(env, MpRegister));
  exports.Set("mpUnregister", Napi::Function::New(env, MpUnregister));
  exports.Set("mpSend", Napi::Function::New(env, MpSend));
  exports.Set("mpSendQueued", Napi::Function::New(env, MpSendQueued));
  exports.Set("mpSendStats", Napi::Function::New(env, MpSendStats));
  exports.Set("mpBoundSendTimeout", Napi::Function::New(env, MpBoundSendTimeout));
  exports.Set("mpRequestAsync", Napi::Function::New(env, MpRequestAsync));
  exports.Set("mpRequestSync", Napi::Function::New(env, MpRequestSync));
  exports.Set("mpReply", Napi::Function::New(env, MpReply));
  exports.Set("mpLargeAlloc", Napi::Function::New(env, PayloadAlloc));
  exports.Set("mpLargeTake", Napi::Function::New(env, PayloadTake));
  exports.Set("mpLargeRelease", Napi::Function::New(env, PayloadRelease));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxNameBytes", RTE_MP_MAX_NAME_LEN - 1);
  limits.Set("maxParamBytes", RTE_MP_MAX_PARAM_LEN);
  limits.Set("maxFds", RTE_MP_MAX_FD_NUM);
  limits.Set("largeHeaderBytes", static_cast<uint32_t>(sizeof(PayloadHeader)));
  exports.Set("mpLimits", limits);
}

}  // namespace

MPBUS_FACILITY(InitMp);
}  // namespace mpbus
