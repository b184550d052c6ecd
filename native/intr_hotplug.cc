// Device hotplug: attaching a device by its devargs (rte_dev_probe) and detaching one by name
// (rte_dev_remove), on a pool thread. The new/destroy events it causes come from the ethdev
// callbacks (intr_ethdev.cc).
#include <rte_dev.h>
#include <rte_ethdev.h>

#include <string>
#include <utility>

#include "common.h"
#include "interrupts.h"

namespace mpbus {
namespace intr {
namespace {

// Hotplug runs on a pool thread: in a primary, rte_dev_probe/remove wait for every secondary
// to attach/detach the device as well (an rte_mp request with a timeout).
class HotplugWorker : public Napi::AsyncWorker {
 public:
  HotplugWorker(Napi::Env env, bool attach, std::string arg)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), attach_(attach), arg_(std::move(arg)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    logMark_ = DpdkLogMark();
    if (attach_) {
      rc_ = rte_dev_probe(arg_.c_str());
      if (rc_ == 0) {
        // The device's name is the devargs up to the first comma (net_null1,size=64 -> net_null1).
        std::string name = arg_.substr(0, arg_.find(','));
        uint16_t port;
        if (rte_eth_dev_get_port_by_name(name.c_str(), &port) == 0) port_ = port;
      }
      return;
    }
    uint16_t port;
    if (rte_eth_dev_get_port_by_name(arg_.c_str(), &port) != 0) {
      rc_ = -ENODEV;
      return;
    }
    port_ = port;
    if (PortStarted(port)) {
      rte_eth_dev_stop(port);
      MarkStarted(port, false);
    }
    rte_eth_dev_info dinfo;
    rc_ = rte_eth_dev_info_get(port, &dinfo);
    if (rc_ == 0) rc_ = rte_dev_remove(dinfo.device);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (rc_ != 0) {
      int e = rc_ < 0 ? -rc_ : rc_;
      std::string log = RecentDpdkLog(4, logMark_);
      deferred_.Reject(MakeError(env, ErrnoName(e),
                                 std::string(attach_ ? "cannot attach device '" : "cannot detach device '") + arg_ +
                                     "': " + ErrnoText(e) + (log.empty() ? "" : "\nDPDK said:\n" + log),
                                 e)
                           .Value());
      return;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", arg_.substr(0, arg_.find(',')));
    if (port_ >= 0) o.Set("portId", port_);
    deferred_.Resolve(o);
  }

 private:
  Napi::Promise::Deferred deferred_;
  bool attach_;
  std::string arg_;
  int rc_ = 0;
  int port_ = -1;
  uint64_t logMark_ = 0;
};

Napi::Value IntrHotplug(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  bool attach = info[0].ToBoolean();
  auto* worker = new HotplugWorker(env, attach, ArgString(info, 1, attach ? "the devargs" : "the device name"));
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

void InitHotplug(Napi::Env env, Napi::Object exports) {
  exports.Set("intrHotplug", Napi::Function::New(env, IntrHotplug));
}

}  // namespace

MPBUS_FACILITY(InitHotplug);
}  // namespace intr
}  // namespace mpbus
