// What the rte_mp files (native/mp_*.cc) share: the events DPDK threads hand to the JS thread,
// the per-environment state (MpEnv), and the functions one file offers the others. Everything
// here is hidden from the addon's exports, so calls between the files are direct calls.
//
// The files: mp_inbox.cc (DPDK's callbacks and the inbox they fill), mp_spin.cc (the pre-poll
// spin, MpEnv), mp_msg.cc (sends, requests and replies from the JS thread), mp_send.cc (the
// primary's sender thread), mp_socket.cc (the send timeout on DPDK's socket), mp_payload.cc
// (large payloads in shared memory). Policy (names, sizes, lanes, correlation ids, late
// replies) lives in src/bus/; these files only report what DPDK said.
#pragma once
#include <napi.h>
#include <rte_eal.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#pragma GCC visibility push(hidden)
namespace mpbus {
namespace mp {

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

inline void CloseFds(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

inline void CopyFds(const rte_mp_msg* msg, std::vector<int>* out) {
  int n = msg->num_fds;
  if (n < 0) n = 0;
  if (n > RTE_MP_MAX_FD_NUM) n = RTE_MP_MAX_FD_NUM;
  out->assign(msg->fds, msg->fds + n);
}

inline void CopyParam(const rte_mp_msg* msg, std::vector<uint8_t>* out) {
  int n = msg->len_param;
  if (n < 0) n = 0;
  if (n > RTE_MP_MAX_PARAM_LEN) n = RTE_MP_MAX_PARAM_LEN;
  out->assign(msg->param, msg->param + n);
}

inline Napi::Array FdsToJs(Napi::Env env, const std::vector<int>& fds) {
  Napi::Array arr = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) arr.Set(i, fds[i]);
  return arr;
}

// ---- per-environment state (mp_spin.cc) --------------------------------------------------
// The pre-poll spin of one Node environment: its event loop's prepare handle and when to spin.
// Only that environment's JS thread reads or writes these (the loop's prepare phase runs on it).
struct MpEnv {
  int64_t spinUntilNs = 0;
  int64_t spinWindowNs = 0;  // 0: spinning off
  int64_t spinMaxNs = 0;
  uv_prepare_t* prepare = nullptr;
};

// ---- offered by one file to the others ----------------------------------------------------
// mp_spin.cc: this environment's MpEnv, made on first use and freed with the environment.
MpEnv* MpEnvOf(Napi::Env env);
// mp_spin.cc: exports[name] = fn, with this environment's MpEnv as its data.
void SetMpFunction(Napi::Env env, Napi::Object exports, const char* name, Napi::Value (*fn)(const Napi::CallbackInfo&));
// mp_spin.cc: traffic is expected (a request went out, a message came in): spin for a while.
void ExpectTraffic(MpEnv* m);
// mp_spin.cc: the spin runs in this environment's loop from mpOpen to mpClose.
void StartSpin(Napi::Env env, MpEnv* m);
void StopSpin(MpEnv* m);

// mp_inbox.cc: hands an event to the JS thread. Called on DPDK threads (and the sender thread);
// takes ownership of the event's fds: closes them if nobody listens.
void Push(Event&& ev);
// mp_inbox.cc: something is queued and JavaScript was woken (read without a lock by the spin).
bool InboxFilled();
// mp_inbox.cc: DPDK's callback for rte_mp_request_async (mp_msg.cc): the outcome, into the inbox.
int OnAsyncReply(const rte_mp_msg* request, const struct rte_mp_reply* reply);
// mp_inbox.cc: the environment ends (mp_spin.cc): the inbox no longer tells its spin.
void ForgetReceiver(MpEnv* m);

// mp_send.cc: sends what is queued (each send bounded by the socket's send timeout), then joins
// the sender thread.
void StopSender();

// mp_msg.cc: an rte_mp message from (name, param?, fds?) at info[first..first+2]. TypeScript
// validated already; this only keeps C++ memory-safe.
void FillMsg(Napi::Env env, const Napi::CallbackInfo& info, size_t first, rte_mp_msg* msg);
// mp_msg.cc: throws what rte_errno and DPDK's log since `logMark` (DpdkLogMark() before the
// call) say about a failed call.
[[noreturn]] void ThrowRte(Napi::Env env, const std::string& what, uint64_t logMark);

// mp_payload.cc: the bytes before a large payload in its buffer (mpLimits.largeHeaderBytes).
uint32_t PayloadHeaderBytes();

}  // namespace mp
}  // namespace mpbus
#pragma GCC visibility pop
