// Large payloads of rte_mp messages (not the mailboxes' large blocks: mailbox.h): values too big
// for the 256-byte param travel in an rte_malloc'd buffer of the group's shared memory,
// referenced by (address, length, token): mpLargeAlloc, mpLargeTake, mpLargeRelease. When to
// use one and who frees it is decided in src/bus/mp-large.ts.
#include <rte_fbarray.h>
#include <rte_malloc.h>
#include <rte_memory.h>
#include <rte_random.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "common.h"
#include "mp.h"

namespace mpbus {
namespace mp {
namespace {

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

void InitMpPayload(Napi::Env env, Napi::Object exports) {
  exports.Set("mpLargeAlloc", Napi::Function::New(env, PayloadAlloc));
  exports.Set("mpLargeTake", Napi::Function::New(env, PayloadTake));
  exports.Set("mpLargeRelease", Napi::Function::New(env, PayloadRelease));
}

}  // namespace

uint32_t PayloadHeaderBytes() { return static_cast<uint32_t>(sizeof(PayloadHeader)); }

MPBUS_FACILITY(InitMpPayload);
}  // namespace mp
}  // namespace mpbus
