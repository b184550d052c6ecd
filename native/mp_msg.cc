// rte_mp messages that leave from the JS thread: mpSend (rte_mp_sendmsg), mpRequestAsync (its
// outcome arrives through the inbox, mp_inbox.cc), mpRequestSync (on a pool thread), mpReply
// (with the peer path an incoming event carried); the conversion of their arguments and the
// limits they enforce (mpLimits).
#include <rte_eal.h>
#include <rte_errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "mp.h"

namespace mpbus {
namespace mp {
namespace {

timespec TimeoutSpec(const Napi::Value& v) {
  double ms = NumberOf(v.Env(), v, "the timeout (ms)");
  if (ms < 0) ms = 0;
  timespec ts;
  ts.tv_sec = static_cast<time_t>(ms / 1000);
  ts.tv_nsec = static_cast<long>((ms - ts.tv_sec * 1000.0) * 1e6);
  return ts;
}

// mpSend(name, param?, fds?)
Napi::Value MpSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  uint64_t logMark = DpdkLogMark();
  if (rte_mp_sendmsg(&msg) < 0) ThrowRte(env, std::string("rte_mp_sendmsg('") + msg.name + "') failed", logMark);
  return env.Undefined();
}

// mpRequestAsync(name, param?, fds?, timeoutMs): the outcome arrives as a "requestDone" event.
Napi::Value MpRequestAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  rte_mp_msg msg;
  FillMsg(env, info, 0, &msg);
  timespec ts = TimeoutSpec(info[3]);
  uint64_t logMark = DpdkLogMark();
  if (rte_mp_request_async(&msg, &ts, OnAsyncReply) < 0) {
    ThrowRte(env, std::string("rte_mp_request_async('") + msg.name + "') failed", logMark);
  }
  ExpectTraffic(static_cast<MpEnv*>(info.Data()));
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
  uint64_t logMark = DpdkLogMark();
  if (rte_mp_reply(&msg, peer.c_str()) < 0) {
    ThrowRte(env, std::string("rte_mp_reply('") + msg.name + "') failed", logMark);
  }
  return env.Undefined();
}

void InitMpMsg(Napi::Env env, Napi::Object exports) {
  exports.Set("mpSend", Napi::Function::New(env, MpSend));
  SetMpFunction(env, exports, "mpRequestAsync", MpRequestAsync);
  exports.Set("mpRequestSync", Napi::Function::New(env, MpRequestSync));
  exports.Set("mpReply", Napi::Function::New(env, MpReply));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxNameBytes", RTE_MP_MAX_NAME_LEN - 1);
  limits.Set("maxParamBytes", RTE_MP_MAX_PARAM_LEN);
  limits.Set("maxFds", RTE_MP_MAX_FD_NUM);
  limits.Set("largeHeaderBytes", PayloadHeaderBytes());
  exports.Set("mpLimits", limits);
}

}  // namespace

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

[[noreturn]] void ThrowRte(Napi::Env env, const std::string& what, uint64_t logMark) {
  int e = rte_errno;
  std::string log = RecentDpdkLog(2, logMark);
  ThrowError(env, ErrnoName(e), what + ": " + ErrnoText(e) + (log.empty() ? "" : "\nDPDK said:\n" + log), e);
}

MPBUS_FACILITY(InitMpMsg);
}  // namespace mp
}  // namespace mpbus
