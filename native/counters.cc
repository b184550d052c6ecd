// The shared counters file from JavaScript: maps this process's slot of
// <runtime dir>/mpbus_counters (MAP_SHARED, so every member and any tool reads it without asking
// this process), and retires the mapping when the process leaves its group: the same addresses
// become private memory holding the same values, so the Float64Arrays actors still hold stay
// valid and no longer touch the group's file. Needs no EAL: a plain file on the runtime dir's
// tmpfs (docs/observability.md says why not a memzone). Layout: src/runtime/counters-layout.ts.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common.h"

namespace mpbus {
namespace {

// countersMapSlot(path, fileBytes, offset, length) -> ArrayBuffer over [offset, offset+length)
// of the file, created (sparse, 0600) or grown to fileBytes when needed. Unmapped when collected.
Napi::Value CountersMapSlot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  off_t fileBytes = static_cast<off_t>(info[1].As<Napi::Number>().Int64Value());
  off_t offset = static_cast<off_t>(info[2].As<Napi::Number>().Int64Value());
  size_t length = static_cast<size_t>(info[3].As<Napi::Number>().Int64Value());
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    ThrowError(env, ErrnoName(err), "cannot open the counters file " + path + ": " + strerror(err), err);
  }
  struct stat st;
  // Never shrinks: every process grows it to the same size, in any order.
  if (fstat(fd, &st) != 0 || (st.st_size < fileBytes && ftruncate(fd, fileBytes) != 0)) {
    int err = errno;
    close(fd);
    ThrowError(env, ErrnoName(err), "cannot size the counters file " + path + ": " + strerror(err), err);
  }
  void* addr = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
  int err = errno;
  close(fd);
  if (addr == MAP_FAILED)
    ThrowError(env, ErrnoName(err), "cannot map the counters file " + path + ": " + strerror(err), err);
  return Napi::ArrayBuffer::New(env, addr, length, [length](Napi::Env, void* data) { munmap(data, length); });
}

// countersRetire(ArrayBuffer): the mapping becomes private anonymous memory with the same bytes.
Napi::Value CountersRetire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return env.Undefined();
  void* addr = ab.Data();
  size_t length = ab.ByteLength();
  std::vector<uint8_t> copy(static_cast<uint8_t*>(addr), static_cast<uint8_t*>(addr) + length);
  void* again = mmap(addr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (again == MAP_FAILED) {
    int err = errno;
    ThrowError(env, ErrnoName(err), std::string("cannot retire the counters mapping: ") + strerror(err), err);
  }
  memcpy(again, copy.data(), length);
  return env.Undefined();
}

void InitCounters(Napi::Env env, Napi::Object exports) {
  exports.Set("countersMapSlot", Napi::Function::New(env, CountersMapSlot));
  exports.Set("countersRetire", Napi::Function::New(env, CountersRetire));
}

}  // namespace
MPBUS_FACILITY(InitCounters);
}  // namespace mpbus
