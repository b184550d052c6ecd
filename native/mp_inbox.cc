// The rte_mp inbox: DPDK's callbacks (actions, async-request replies) copy what DPDK handed over
// into it, and the JS thread drains it (pipeline.h); mpOpen/mpClose, mpRegister/mpUnregister.
//
// DPDK runs action callbacks on its IPC thread and async-request callbacks on the IPC thread
// (replies) or the interrupt thread (timeouts). Neither may run JavaScript and neither should
// wait for it, so every callback here only copies the message, the sender's socket path and the
// replies into the inbox and returns. One thread-safe function call per burst wakes the JS
// thread, which drains the whole inbox at once. Replies are sent later from the JS thread with
// the saved sender path (mp_msg.cc), which rte_mp_reply accepts from any thread.
#include <rte_eal.h>
#include <string.h>

#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "mp.h"
#include "pipeline.h"

namespace mpbus {
namespace mp {
namespace {

void DrainToJs(Napi::Env env, Napi::Function callback);

// Process-wide, not per environment: DPDK keeps one action table per process, registered by
// name without user data (rte_mp_action_register), and its callbacks run on DPDK's threads, so
// they can only reach one inbox per process. The environment that opened it owns its
// thread-safe function; mpOpen refuses a second (EALREADY). Open between mpOpen and mpClose;
// unbounded (DPDK's own queues bound what arrives).
Pipeline<Event> gInbox("mpbus-rte-mp", 0, DrainToJs);
// The environment that opened the inbox (its spin is told when traffic arrives); read and
// written only on that environment's JS thread.
MpEnv* gReceiver = nullptr;

void CloseEventFds(Event& ev) {
  CloseFds(ev.fds);
  for (auto& r : ev.replies) CloseFds(r.fds);
}

void DrainToJsUnsafe(Napi::Env env, Napi::Function callback);

// A queued send's outcome (kSendDone) on its JS event object.
void SetSendOutcome(Napi::Object o, const Event& ev) {
  o.Set("ticket", ev.ticket);
  if (ev.errnum != 0) {
    o.Set("code", ErrnoName(ev.errnum));
    o.Set("errno", ev.errnum);
    o.Set("message", ErrnoText(ev.errnum) + (ev.log.empty() ? "" : "\nDPDK said:\n" + ev.log));
  }
}

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
      if (gReceiver != nullptr) ExpectTraffic(gReceiver);  // a peer is active: its next message likely follows soon
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
      SetSendOutcome(o, ev);
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

// ---- JS functions ---------------------------------------------------------------------------

// mpOpen(drain): starts delivering events to drain(events[]). The wake-up handle is unref'd:
// an open bus never keeps the process alive by itself.
Napi::Value MpOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  if (!gInbox.Open(env, ArgFunction(info, 0, "the event callback"))) {
    ThrowError(env, "EALREADY", "the rte_mp bridge is already open in this process");
  }
  auto* m = static_cast<MpEnv*>(info.Data());
  gReceiver = m;
  StartSpin(env, m);
  return env.Undefined();
}

// mpClose() -> sendDone events[]: stops delivery; events that arrive later are dropped and their
// fds closed. What the sender thread reported while it finished the queue is returned (those
// messages were sent or failed: they were not cut off by the close); the rest is dropped.
Napi::Value MpClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StopSender();
  std::vector<Event> dropped = gInbox.Close();
  auto* m = static_cast<MpEnv*>(info.Data());
  StopSpin(m);
  if (gReceiver == m) gReceiver = nullptr;
  Napi::Array sendOutcomes = Napi::Array::New(env);
  for (auto& ev : dropped) {
    CloseEventFds(ev);
    if (ev.kind != Event::kSendDone) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", "sendDone");
    o.Set("name", ev.name);
    SetSendOutcome(o, ev);
    sendOutcomes.Set(sendOutcomes.Length(), o);
  }
  return sendOutcomes;
}

// The action registration is process-wide too: DPDK keeps one table of names per process.
Napi::Value MpRegister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string name = ArgString(info, 0, "the rte_mp name");
  uint64_t logMark = DpdkLogMark();
  if (rte_mp_action_register(name.c_str(), OnAction) < 0)
    ThrowRte(env, "rte_mp_action_register('" + name + "') failed", logMark);
  return env.Undefined();
}

Napi::Value MpUnregister(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!EalReady()) return env.Undefined();
  std::string name = ArgString(info, 0, "the rte_mp name");
  rte_mp_action_unregister(name.c_str());
  return env.Undefined();
}

void InitMpInbox(Napi::Env env, Napi::Object exports) {
  SetMpFunction(env, exports, "mpOpen", MpOpen);
  SetMpFunction(env, exports, "mpClose", MpClose);
  exports.Set("mpRegister", Napi::Function::New(env, MpRegister));
  exports.Set("mpUnregister", Napi::Function::New(env, MpUnregister));
}

}  // namespace

void Push(Event&& ev) {
  if (!gInbox.Push(std::move(ev))) CloseEventFds(ev);
}

bool InboxFilled() { return gInbox.Filled(); }

// DPDK's callback for rte_mp_request_async (with OnAction above): on the IPC thread for replies,
// on the interrupt thread at the timeout.
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

void ForgetReceiver(MpEnv* m) {
  if (gReceiver == m) gReceiver = nullptr;
}

MPBUS_FACILITY(InitMpInbox);
}  // namespace mp
}  // namespace mpbus
