// The receiver's copies of large messages: the process-private memory a large message is copied
// into out of the shared heap before DPDK's block is freed, kept for reuse once JavaScript lets
// go of it. A fresh buffer of a MiB or more is fresh pages from the kernel, and faulting them in
// cost 2-5 ms per MiB on the 2-vCPU machine, against ~0.04 ms to copy into memory already
// mapped: most of what receiving a large message cost (docs/mailboxes.md, "Large messages").
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "mbx.h"

namespace mpbus {
namespace mbx {
namespace {

// Copies are kept in size classes of powers of two from 64 KiB (below it, malloc reuses freed
// memory itself) to 64 MiB; larger ones are ordinary buffers.
constexpr unsigned kMinClassShift = 16;
constexpr unsigned kMaxClassShift = 26;
constexpr unsigned kClasses = kMaxClassShift - kMinClassShift + 1;
// At most this much idle memory is kept for reuse; what comes back beyond it is freed.
constexpr size_t kIdleBytesMax = size_t{32} << 20;

struct CopyCache {
  std::mutex lock;  // finalizers run on the thread of the environment that made the buffer
  std::vector<void*> idle[kClasses];
  size_t idleBytes = 0;
};

// Never destroyed: buffers still alive when the process exits are given back by Node's cleanup
// hooks, which may run after static destructors would have.
CopyCache& Cache() {
  static CopyCache* cache = new CopyCache();
  return *cache;
}

unsigned ClassOf(uint32_t length) {
  unsigned shift = kMinClassShift;
  while ((size_t{1} << shift) < length) shift++;
  return shift - kMinClassShift;
}

void* TakeChunk(unsigned cls) {
  CopyCache& cache = Cache();
  {
    std::lock_guard<std::mutex> guard(cache.lock);
    std::vector<void*>& idle = cache.idle[cls];
    if (!idle.empty()) {
      void* p = idle.back();
      idle.pop_back();
      cache.idleBytes -= size_t{1} << (cls + kMinClassShift);
      return p;
    }
  }
  return std::malloc(size_t{1} << (cls + kMinClassShift));
}

void GiveBackChunk(Napi::Env, uint8_t* data, void* hint) {
  const unsigned cls = static_cast<unsigned>(reinterpret_cast<uintptr_t>(hint));
  const size_t bytes = size_t{1} << (cls + kMinClassShift);
  CopyCache& cache = Cache();
  {
    std::lock_guard<std::mutex> guard(cache.lock);
    if (cache.idleBytes + bytes <= kIdleBytesMax) {
      cache.idle[cls].push_back(data);
      cache.idleBytes += bytes;
      return;
    }
  }
  std::free(data);
}

}  // namespace

Napi::Buffer<uint8_t> CopyOutLarge(Napi::Env env, const uint8_t* bytes, uint32_t length) {
  if (length < (1u << kMinClassShift) || length > (1u << kMaxClassShift))
    return Napi::Buffer<uint8_t>::Copy(env, bytes, length);
  const unsigned cls = ClassOf(length);
  void* chunk = TakeChunk(cls);
  if (chunk == nullptr) return Napi::Buffer<uint8_t>::Copy(env, bytes, length);  // it reports the failure
  std::memcpy(chunk, bytes, length);
  try {
    return Napi::Buffer<uint8_t>::New(env, static_cast<uint8_t*>(chunk), length, GiveBackChunk,
                                      reinterpret_cast<void*>(static_cast<uintptr_t>(cls)));
  } catch (...) {
    std::free(chunk);  // no buffer was made, so no finalizer will give it back
    throw;
  }
}

}  // namespace mbx
}  // namespace mpbus
