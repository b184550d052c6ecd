// EAL lifecycle: rte_eal_init / rte_eal_cleanup off the JS thread, the lcore identity of the JS
// thread, the CPUs the process's threads run on, whether the kernel lets it make the memory-policy
// calls DPDK's memory needs, and DPDK's log captured so errors can quote what DPDK said.
#include <dirent.h>
#include <limits.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_per_lcore.h>
#include <rte_version.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <vector>

#include "common.h"

namespace mpbus {
namespace {

std::atomic<bool> gEalReady{false};
std::atomic<bool> gEalTried{false};
unsigned gMainLcore = LCORE_ID_ANY;

// ---- DPDK log capture -------------------------------------------------------------------
// DPDK writes its log to a FILE*. A cookie stream keeps the last lines (for error messages)
// and echoes to stderr only messages at or above the level the user asked for.
std::mutex gLogMutex;
std::deque<std::string> gLogLines;
std::string gLogPartial;
// Lines ever logged (gLogLines holds the last of them); written under gLogMutex, read without it
// by DpdkLogMark (taken before every rte_mp send: no lock there).
std::atomic<uint64_t> gLogLinesTotal{0};
std::atomic<int> gEchoLevel{RTE_LOG_ERR};
constexpr size_t kMaxLogLines = 64;

// The process's own stderr, taken before an init swaps stdio's streams (see StdioDuringInit).
FILE* gEchoStream = stderr;

ssize_t LogWrite(void*, const char* buf, size_t size) {
  int level = rte_log_cur_msg_loglevel();
  if (level > 0 && level <= gEchoLevel.load()) fwrite(buf, 1, size, gEchoStream);
  std::lock_guard<std::mutex> lock(gLogMutex);
  gLogPartial.append(buf, size);
  size_t nl;
  while ((nl = gLogPartial.find('\n')) != std::string::npos) {
    gLogLines.push_back(gLogPartial.substr(0, nl));
    gLogLinesTotal++;
    gLogPartial.erase(0, nl + 1);
    if (gLogLines.size() > kMaxLogLines) gLogLines.pop_front();
  }
  return static_cast<ssize_t>(size);
}

void InstallLogStream() {
  static FILE* stream = nullptr;
  if (stream != nullptr) return;
  cookie_io_functions_t io = {};
  io.write = LogWrite;
  stream = fopencookie(nullptr, "w", io);
  if (stream != nullptr) {
    setvbuf(stream, nullptr, _IOLBF, 0);
    rte_openlog_stream(stream);
  }
}

// ---- init --------------------------------------------------------------------------------
// DPDK's init prints to stdio itself, beside its log: its whole usage text to stdout on a bad
// argument, getopt's complaint and "EAL: FATAL: ..." to stderr, whatever the log level. Node
// writes its stdout and stderr through libuv, not stdio, so for the init stdio's streams write to
// memory instead: the application's stdout stays its own, and the lines are quoted in the error
// and echoed (to stderr) only when the log level asks for errors. The memory streams are never
// closed: a thread that read `stderr` during the swap may still write to its stream after it.
class StdioDuringInit {
 public:
  StdioDuringInit() {
    out_ = open_memstream(&outBuf_, &outLen_);
    err_ = open_memstream(&errBuf_, &errLen_);
    if (out_ == nullptr || err_ == nullptr) return;
    realOut_ = stdout;
    realErr_ = stderr;
    stdout = out_;
    stderr = err_;
  }
  // Gives stdio its streams back; what DPDK printed to stderr (its complaint lines).
  std::string Restore(bool echo) {
    if (realOut_ == nullptr) return std::string();
    stdout = realOut_;
    stderr = realErr_;
    fflush(out_);
    fflush(err_);
    std::string printed(outBuf_ ? outBuf_ : "", outLen_);
    std::string complaint(errBuf_ ? errBuf_ : "", errLen_);
    if (echo) {
      fwrite(printed.data(), 1, printed.size(), realErr_);
      fwrite(complaint.data(), 1, complaint.size(), realErr_);
    }
    return complaint;
  }

 private:
  FILE* out_ = nullptr;
  FILE* err_ = nullptr;
  FILE* realOut_ = nullptr;
  FILE* realErr_ = nullptr;
  char* outBuf_ = nullptr;
  char* errBuf_ = nullptr;
  size_t outLen_ = 0;
  size_t errLen_ = 0;
};

class EalInitWorker : public Napi::AsyncWorker {
 public:
  EalInitWorker(Napi::Env env, std::vector<std::string> args)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), args_(std::move(args)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    std::vector<char*> argv;
    for (auto& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    logMark_ = DpdkLogMark();
    cpu_set_t poolCpus;
    bool havePoolCpus = sched_getaffinity(0, sizeof(poolCpus), &poolCpus) == 0;
    StdioDuringInit stdio;
    int rc = rte_eal_init(static_cast<int>(args_.size()), argv.data());
    complaint_ = stdio.Restore(gEchoLevel.load() >= static_cast<int>(RTE_LOG_ERR));
    errnum_ = rc < 0 ? rte_errno : 0;
    ok_ = rc >= 0;
    if (ok_) {
      gMainLcore = rte_get_main_lcore();
      procType_ = rte_eal_process_type();
    }
    // This pool thread ran init and so was made DPDK's main lcore. It goes back to libuv's
    // pool: take the identity away so no other pool task ever passes for the main lcore, and
    // the CPUs EAL pinned it to (the lcore's are the JS thread's, placed by mpbus).
    RTE_PER_LCORE(_lcore_id) = LCORE_ID_ANY;
    if (havePoolCpus) sched_setaffinity(0, sizeof(poolCpus), &poolCpus);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!ok_) {
      std::string log = RecentDpdkLog(8, logMark_);
      // getopt's complaint names the argument; "EAL: FATAL" repeats a logged line
      std::string complaint;
      for (size_t at = 0; at < complaint_.size();) {
        size_t nl = complaint_.find('\n', at);
        std::string line = complaint_.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? complaint_.size() : nl + 1;
        // (DPDK parses the arguments twice: getopt complains twice)
        if (line.empty() || line.rfind("EAL: FATAL", 0) == 0 || complaint.find(line + "\n") != std::string::npos)
          continue;
        complaint += line + "\n";
      }
      log = complaint + log;
      deferred_.Reject(MakeError(env, errnum_ ? ErrnoName(errnum_) : "EAL_INIT",
                                 "rte_eal_init failed" + (errnum_ ? ": " + ErrnoText(errnum_) : std::string()) +
                                     (log.empty() ? "" : "\nDPDK said:\n" + log),
                                 errnum_)
                           .Value());
      return;
    }
    // The JS thread becomes the main lcore: mempool caches and lcore-aware APIs index by the
    // thread-local lcore id, and this id is the one unique in the group.
    RTE_PER_LCORE(_lcore_id) = gMainLcore;
    gEalReady = true;
    Napi::Object result = Napi::Object::New(env);
    result.Set("lcoreId", gMainLcore);
    result.Set("processType", procType_ == RTE_PROC_PRIMARY ? "primary" : "secondary");
    deferred_.Resolve(result);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> args_;
  bool ok_ = false;
  int errnum_ = 0;
  rte_proc_type_t procType_ = RTE_PROC_INVALID;
  uint64_t logMark_ = 0;
  std::string complaint_;
};

Napi::Value EalInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (gEalTried.exchange(true)) {
    ThrowError(env, "EALREADY",
               "the DPDK EAL can be initialised once per process (DPDK has no re-init); "
               "start another process to join another group");
  }
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> args;
  for (uint32_t i = 0; i < arr.Length(); i++) args.push_back(arr.Get(i).As<Napi::String>());
  if (info.Length() > 1 && info[1].IsNumber()) gEchoLevel = info[1].As<Napi::Number>().Int32Value();
  InstallLogStream();
  auto* worker = new EalInitWorker(env, std::move(args));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---- cleanup -----------------------------------------------------------------------------
class EalCleanupWorker : public Napi::AsyncWorker {
 public:
  explicit EalCleanupWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { rc_ = rte_eal_cleanup(); }
  void OnOK() override {
    if (rc_ < 0) {
      deferred_.Reject(
          MakeError(Env(), ErrnoName(rte_errno), "rte_eal_cleanup failed: " + ErrnoText(rte_errno)).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  int rc_ = 0;
};

Napi::Value EalCleanup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  gEalReady = false;  // from now on every facility refuses to touch DPDK objects
  RTE_PER_LCORE(_lcore_id) = LCORE_ID_ANY;
  auto* worker = new EalCleanupWorker(env);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// ---- locks of the shared memory config left by dead processes ---------------------------------
// The group's memory config (struct rte_mem_config: internal to DPDK; in 22.11 it begins with
// magic, version, nchannel and nrank, then the rwlocks mlock, qlock and mplock, the spinlock
// tlock and the rwlock memory_hotplug_lock, 32-bit words each) is the start of the `config` file
// every process maps. A process killed while it held one of those locks (a secondary SIGKILLed in
// rte_eal_init, which reads the memory config under the hotplug lock) leaves it held for good:
// the next writer sets its wait bit, and from then on every reader spins. rte_eal_cleanup's
// memseg walk is one: a primary's close never ended, at 100% CPU. clearStaleLocks() is called by
// the primary's close once no other process of the group lives, so every word still set belongs
// to a dead process; it clears them and says which. The mapping is found in /proc/self/maps (the
// file must not be opened here: closing a descriptor of it drops the primary's lock on it), and
// used only when its magic and version are those of the DPDK this addon was built with.
struct MemConfigHead {
  uint32_t magic, version, nchannel, nrank;
  int32_t mlock, qlock, mplock, tlock, hotplug;
};

MemConfigHead* MappedMemConfig(const std::string& givenPath) {
  // the maps name the file by its real path (/var/run is a link to /run on Debian)
  char real[PATH_MAX];
  if (realpath(givenPath.c_str(), real) == nullptr) return nullptr;
  std::string configPath(real);
  FILE* maps = fopen("/proc/self/maps", "re");
  if (maps == nullptr) return nullptr;
  char line[4096];
  MemConfigHead* head = nullptr;
  while (head == nullptr && fgets(line, sizeof(line), maps) != nullptr) {
    unsigned long start = 0, offset = 0;
    int pathAt = 0;
    if (sscanf(line, "%lx-%*x %*s %lx %*s %*u %n", &start, &offset, &pathAt) < 2 || pathAt == 0) continue;
    std::string path(line + pathAt);
    while (!path.empty() && (path.back() == '\n' || path.back() == ' ')) path.pop_back();
    if (offset == 0 && path == configPath) head = reinterpret_cast<MemConfigHead*>(start);
  }
  fclose(maps);
  if (head != nullptr && (head->magic != RTE_MAGIC || head->version != RTE_VERSION)) return nullptr;
  return head;
}

Napi::Value ClearStaleLocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  std::string configPath = info[0].As<Napi::String>();
  Napi::Array cleared = Napi::Array::New(env);
  MemConfigHead* head = MappedMemConfig(configPath);
  if (head == nullptr) return cleared;
  const std::pair<const char*, int32_t*> words[] = {{"mlock", &head->mlock},
                                                    {"qlock", &head->qlock},
                                                    {"mplock", &head->mplock},
                                                    {"tlock", &head->tlock},
                                                    {"memory_hotplug_lock", &head->hotplug}};
  for (const auto& [name, word] : words) {
    int32_t was = __atomic_exchange_n(word, 0, __ATOMIC_SEQ_CST);
    if (was == 0) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("lock", name);
    o.Set("value", was);
    cleared.Set(cleared.Length(), o);
  }
  return cleared;
}

// memConfigIntact(configPath): whether this process's mapping of the group's memory config still
// holds what DPDK wrote there (its magic and version). A DPDK primary started on the prefix after
// the group's primary died, while a secondary lives on, re-creates the config under it (zeroed
// first, then filled as its init goes; a failed init leaves it so), and rte_eal_cleanup then
// reads garbage: a divide error in the secondary's close, seen under a restarted testpmd.
Napi::Value MemConfigIntact(const Napi::CallbackInfo& info) {
  std::string configPath = info[0].As<Napi::String>();
  return Napi::Boolean::New(info.Env(), MappedMemConfig(configPath) != nullptr);
}

Napi::Value PrimaryAlive(const Napi::CallbackInfo& info) {
  std::string path = info[0].As<Napi::String>();
  return Napi::Boolean::New(info.Env(), rte_eal_primary_proc_alive(path.c_str()) != 0);
}

Napi::Value Version(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), rte_version()); }

Napi::Value LcoreId(const Napi::CallbackInfo& info) {
  unsigned id = rte_lcore_id();
  if (id == LCORE_ID_ANY) return Napi::Number::New(info.Env(), -1);
  return Napi::Number::New(info.Env(), id);
}

Napi::Value RecentLog(const Napi::CallbackInfo& info) {
  size_t n = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : 16;
  return Napi::String::New(info.Env(), RecentDpdkLog(n));
}

Napi::Value SetLogEchoLevel(const Napi::CallbackInfo& info) {
  gEchoLevel = info[0].As<Napi::Number>().Int32Value();
  return info.Env().Undefined();
}

// ---- Memory policy -----------------------------------------------------------------------
// Whether this process may read its memory policy: DPDK's memory (a primary's allocations, a
// secondary's mapping of the primary's) asks the kernel which NUMA node holds each page and fails
// when it may not. A container's default seccomp profile denies get_mempolicy, set_mempolicy and
// mbind without CAP_SYS_NICE. Returns the errno name, or undefined when allowed.
Napi::Value MemPolicyDenied(const Napi::CallbackInfo& info) {
  int mode = 0;
  if (syscall(SYS_get_mempolicy, &mode, nullptr, 0, nullptr, 0) == 0) return info.Env().Undefined();
  int e = errno;
  return Napi::String::New(info.Env(), ErrnoName(e));
}

// ---- CPU affinity ------------------------------------------------------------------------
// EAL pins only the thread that ran rte_eal_init (here a libuv pool thread, not the JS thread
// that becomes the lcore), so mpbus places the process's threads itself. Which threads, and
// onto which CPUs, is decided in TypeScript (src/runtime/cpus.ts); this only applies it.

// Sets the affinity of this thread (wholeProcess false) or of every thread of the process (each
// task of /proc/self/task, passes repeated until no new thread appears: a thread created meanwhile
// by one not yet moved inherits the old mask). Returns how many threads were set.
Napi::Value SetCpuAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array list = info[0].As<Napi::Array>();
  bool wholeProcess = info[1].As<Napi::Boolean>().Value();
  cpu_set_t set;
  CPU_ZERO(&set);
  for (uint32_t i = 0; i < list.Length(); i++) CPU_SET(list.Get(i).As<Napi::Number>().Uint32Value(), &set);
  if (!wholeProcess) {
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      int e = errno;
      ThrowError(env, ErrnoName(e), "sched_setaffinity: " + ErrnoText(e), e);
    }
    return Napi::Number::New(env, 1);
  }
  std::set<pid_t> done;
  for (int pass = 0; pass < 8; pass++) {
    DIR* dir = opendir("/proc/self/task");
    if (dir == nullptr) {
      int e = errno;
      ThrowError(env, ErrnoName(e), "cannot list /proc/self/task: " + ErrnoText(e), e);
    }
    size_t before = done.size();
    int failed = 0;
    while (dirent* entry = readdir(dir)) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      pid_t tid = static_cast<pid_t>(atoi(entry->d_name));
      if (done.count(tid) != 0) continue;
      // ESRCH: the thread ended meanwhile, nothing to place.
      if (sched_setaffinity(tid, sizeof(set), &set) != 0 && errno != ESRCH) failed = errno;
      done.insert(tid);
    }
    closedir(dir);
    if (failed != 0) ThrowError(env, ErrnoName(failed), "sched_setaffinity: " + ErrnoText(failed), failed);
    if (done.size() == before) break;
  }
  return Napi::Number::New(env, static_cast<double>(done.size()));
}

void InitEal(Napi::Env env, Napi::Object exports) {
  exports.Set("setCpuAffinity", Napi::Function::New(env, SetCpuAffinity));
  exports.Set("memPolicyDenied", Napi::Function::New(env, MemPolicyDenied));
  exports.Set("ealInit", Napi::Function::New(env, EalInit));
  exports.Set("ealCleanup", Napi::Function::New(env, EalCleanup));
  exports.Set("clearStaleLocks", Napi::Function::New(env, ClearStaleLocks));
  exports.Set("memConfigIntact", Napi::Function::New(env, MemConfigIntact));
  exports.Set("primaryAlive", Napi::Function::New(env, PrimaryAlive));
  exports.Set("dpdkVersion", Napi::Function::New(env, Version));
  exports.Set("lcoreId", Napi::Function::New(env, LcoreId));
  exports.Set("recentDpdkLog", Napi::Function::New(env, RecentLog));
  exports.Set("setLogEchoLevel", Napi::Function::New(env, SetLogEchoLevel));
  exports.Set("maxLcore", Napi::Number::New(env, RTE_MAX_LCORE));
}

}  // namespace

bool EalReady() { return gEalReady.load(); }

uint64_t DpdkLogMark() { return gLogLinesTotal.load(std::memory_order_relaxed); }

std::string RecentDpdkLog(size_t maxLines, uint64_t mark) {
  std::lock_guard<std::mutex> lock(gLogMutex);
  std::string out;
  uint64_t total = gLogLinesTotal.load(std::memory_order_relaxed);  // (its writer holds the lock too)
  size_t sinceMark = mark >= total ? 0 : static_cast<size_t>(std::min<uint64_t>(total - mark, gLogLines.size()));
  size_t start = gLogLines.size() - std::min(sinceMark, maxLines);
  for (size_t i = start; i < gLogLines.size(); i++) {
    out += gLogLines[i];
    out += '\n';
  }
  return out;
}

MPBUS_FACILITY(InitEal);
}  // namespace mpbus
