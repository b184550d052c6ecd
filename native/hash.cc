// The group's name registry: an rte_hash in shared memory mapping a mailbox name to where it
// lives (process slot, slot generation, mailbox id).
//
// Processes of one group may be different binaries (a C program, several Node versions), and
// rte_hash keeps its hash function as a pointer valid only in the creating binary. So every
// call here computes the hash itself (rte_hash_crc, an inline function: the same in every
// binary) and uses the *_with_hash API, as DPDK's multi-process guide prescribes.
//
// Readers are lock-free (RW_CONCURRENCY_LF). Writers are serialised by a robust lock in the
// control block (a pid word): a writer SIGKILLed mid-write does not wedge the group.
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <string.h>

#include <vector>

#include "common.h"
#include "mailbox.h"

namespace mpbus {
namespace {

constexpr const char* kRegistryName = "mpbus_registry";
constexpr uint32_t kKeyLen = 64;            // names are at most 63 bytes, zero-padded
constexpr uint32_t kHashSeed = 0x6d706275;  // "mpbu"

rte_hash* gRegistry = nullptr;

struct Key {
  uint8_t bytes[kKeyLen];
};

Key MakeKey(Napi::Env env, const Napi::Value& v) {
  std::string name = v.As<Napi::String>();
  if (name.empty() || name.size() >= kKeyLen) ThrowError(env, "EINVAL", "a registry name is 1 to 63 bytes");
  Key k;
  memset(k.bytes, 0, kKeyLen);
  memcpy(k.bytes, name.data(), name.size());
  return k;
}

hash_sig_t Sig(const Key& k) { return rte_hash_crc(k.bytes, kKeyLen, kHashSeed); }

// slot (8 bits) | generation (24 bits) | mailbox id (32 bits)
uint64_t Pack(uint32_t slot, uint32_t generation, uint32_t id) {
  return (static_cast<uint64_t>(slot & 0xff) << 56) | (static_cast<uint64_t>(generation & 0xffffff) << 32) | id;
}

rte_hash* Require(Napi::Env env) {
  RequireEal(env);
  if (gRegistry == nullptr || AttachedControl() == nullptr)
    ThrowError(env, kCodeNotAttached, "the registry is not attached in this process: open the mailbox system first");
  return gRegistry;
}

struct Locked {
  std::atomic<int32_t>& word;
  explicit Locked(std::atomic<int32_t>& w) : word(w) { RobustLock(word); }
  ~Locked() {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    RobustUnlock(word);
  }
};

// regAttach(entries): creates the registry, or finds the one of the group.
Napi::Value RegAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RequireEal(env);
  Control* c = AttachedControl();
  if (c == nullptr) ThrowError(env, kCodeNotAttached, "attach the mailboxes before the registry");
  uint32_t entries = info[0].As<Napi::Number>().Uint32Value();
  if (gRegistry != nullptr) return Napi::Number::New(env, entries);
  Locked lock(c->registryLock);  // creation is check-then-create: one process at a time
  rte_hash* h = rte_hash_find_existing(kRegistryName);
  if (h == nullptr) {
    rte_hash_parameters p = {};
    p.name = kRegistryName;
    p.entries = entries;
    p.key_len = kKeyLen;
    p.hash_func = rte_hash_crc;  // used only by the non-_with_hash API, which mpbus never calls
    p.hash_func_init_val = kHashSeed;
    p.socket_id = SOCKET_ID_ANY;
    p.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
    h = rte_hash_create(&p);
    if (h == nullptr) {
      int e = rte_errno;
      ThrowError(env, ErrnoName(e), "cannot create the mailbox registry: " + ErrnoText(e), e);
    }
  }
  gRegistry = h;
  return Napi::Number::New(env, rte_hash_max_key_id(h) + 1);
}

// The (slot, generation, id) arguments 1..3 of regAdd / regRemove, packed as one entry value.
uint64_t PackArgs(const Napi::CallbackInfo& info) {
  return Pack(info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value(),
              info[3].As<Napi::Number>().Uint32Value());
}

// regAdd(name, slot, generation, id) -> true, or false when the name is taken.
Napi::Value RegAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_hash* h = Require(env);
  Key k = MakeKey(env, info[0]);
  uint64_t value = PackArgs(info);
  hash_sig_t sig = Sig(k);
  Locked lock(AttachedControl()->registryLock);
  void* existing = nullptr;
  if (rte_hash_lookup_with_hash_data(h, k.bytes, sig, &existing) >= 0) return Napi::Boolean::New(env, false);
  int rc = rte_hash_add_key_with_hash_data(h, k.bytes, sig, reinterpret_cast<void*>(value));
  if (rc < 0) {
    ThrowError(env, rc == -ENOSPC ? "ENOSPC" : ErrnoName(-rc),
               rc == -ENOSPC ? "the mailbox registry is full: raise registryEntries in the first process of the group"
                             : "cannot add to the registry: " + ErrnoText(-rc),
               -rc);
  }
  return Napi::Boolean::New(env, true);
}

// regLookup(name, out: Uint32Array(3)) -> true and out = [slot, generation, id], or false.
Napi::Value RegLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_hash* h = Require(env);
  Key k = MakeKey(env, info[0]);
  void* data = nullptr;
  if (rte_hash_lookup_with_hash_data(h, k.bytes, Sig(k), &data) < 0) return Napi::Boolean::New(env, false);
  uint64_t v = reinterpret_cast<uint64_t>(data);
  Napi::Uint32Array out = info[1].As<Napi::Uint32Array>();
  out[0] = static_cast<uint32_t>(v >> 56);
  out[1] = static_cast<uint32_t>((v >> 32) & 0xffffff);
  out[2] = static_cast<uint32_t>(v);
  return Napi::Boolean::New(env, true);
}

int RemoveLocked(rte_hash* h, const Key& k, hash_sig_t sig) {
  int32_t pos = rte_hash_del_key_with_hash(h, k.bytes, sig);
  if (pos >= 0) {
    rte_hash_free_key_with_position(h, pos);
    Control* c = AttachedControl();
    c->registryEpoch.fetch_add(1);
  }
  return pos;
}

// regRemove(name, slot, generation, id) -> true when removed (only if it still points there).
Napi::Value RegRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_hash* h = Require(env);
  Key k = MakeKey(env, info[0]);
  uint64_t value = PackArgs(info);
  hash_sig_t sig = Sig(k);
  Locked lock(AttachedControl()->registryLock);
  void* data = nullptr;
  if (rte_hash_lookup_with_hash_data(h, k.bytes, sig, &data) < 0 || reinterpret_cast<uint64_t>(data) != value) {
    return Napi::Boolean::New(env, false);
  }
  return Napi::Boolean::New(env, RemoveLocked(h, k, sig) >= 0);
}

// regCount() -> names registered in the group.
Napi::Value RegCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), rte_hash_count(Require(info.Env())));
}

// regEpoch() -> a counter bumped by every removal: caches of name lookups compare it.
Napi::Value RegEpoch(const Napi::CallbackInfo& info) {
  Require(info.Env());
  return Napi::Number::New(info.Env(), AttachedControl()->registryEpoch.load());
}

// regNames(slot?) -> names, all or those of one process slot.
Napi::Value RegNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rte_hash* h = Require(env);
  int32_t slot = info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : -1;
  Napi::Array out = Napi::Array::New(env);
  uint32_t next = 0, n = 0;
  const void* key;
  void* data;
  Locked lock(AttachedControl()->registryLock);  // iterate is not safe against writers
  while (rte_hash_iterate(h, &key, &data, &next) >= 0) {
    uint64_t v = reinterpret_cast<uint64_t>(data);
    if (slot >= 0 && static_cast<int32_t>(v >> 56) != slot) continue;
    const char* s = static_cast<const char*>(key);
    out.Set(n++, Napi::String::New(env, s, strnlen(s, kKeyLen)));
  }
  return out;
}

void InitHash(Napi::Env env, Napi::Object exports) {
  exports.Set("regAttach", Napi::Function::New(env, RegAttach));
  exports.Set("regAdd", Napi::Function::New(env, RegAdd));
  exports.Set("regLookup", Napi::Function::New(env, RegLookup));
  exports.Set("regRemove", Napi::Function::New(env, RegRemove));
  exports.Set("regCount", Napi::Function::New(env, RegCount));
  exports.Set("regEpoch", Napi::Function::New(env, RegEpoch));
  exports.Set("regNames", Napi::Function::New(env, RegNames));
}

}  // namespace

int RegistryRemoveOwnedBy(uint32_t slot, uint32_t generation) {
  rte_hash* h = gRegistry;
  Control* c = AttachedControl();
  if (h == nullptr) h = rte_hash_find_existing(kRegistryName);
  if (h == nullptr || c == nullptr) return 0;
  Locked lock(c->registryLock);
  std::vector<Key> doomed;
  uint32_t next = 0;
  const void* key;
  void* data;
  while (rte_hash_iterate(h, &key, &data, &next) >= 0) {
    uint64_t v = reinterpret_cast<uint64_t>(data);
    if ((v >> 56) == (slot & 0xff) && ((v >> 32) & 0xffffff) == (generation & 0xffffff)) {
      Key k;
      memcpy(k.bytes, key, kKeyLen);
      doomed.push_back(k);
    }
  }
  for (const Key& k : doomed) RemoveLocked(h, k, Sig(k));
  return static_cast<int>(doomed.size());
}

MPBUS_FACILITY(InitHash);
}  // namespace mpbus
