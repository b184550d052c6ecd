// Views of shared memory for JavaScript, and argument helpers shared by ring/mempool/memzone.
#include "shm_view.h"

#include <cmath>
#include <memory>
#include <vector>

#include "common.h"

namespace mpbus {
namespace {

struct TrackedView {
  uintptr_t addr;
  size_t length;
  Napi::Reference<Napi::ArrayBuffer> ref;  // weak: a view the program dropped is collected
};

std::vector<std::unique_ptr<TrackedView>>& Views() {
  static std::vector<std::unique_ptr<TrackedView>> views;
  return views;
}

// Drops entries whose ArrayBuffer was garbage collected.
void Prune() {
  auto& views = Views();
  size_t kept = 0;
  for (size_t i = 0; i < views.size(); i++) {
    if (!views[i]->ref.IsEmpty() && !views[i]->ref.Value().IsEmpty()) views[kept++] = std::move(views[i]);
  }
  views.resize(kept);
}

size_t DetachWhere(uintptr_t lo, uintptr_t hi) {
  auto& views = Views();
  size_t detached = 0;
  size_t kept = 0;
  for (size_t i = 0; i < views.size(); i++) {
    TrackedView& v = *views[i];
    bool overlaps = v.addr < hi && v.addr + v.length > lo;
    if (overlaps) {
      if (!v.ref.IsEmpty()) {
        Napi::ArrayBuffer ab = v.ref.Value();
        if (!ab.IsEmpty() && !ab.IsDetached()) {
          ab.Detach();
          detached++;
        }
      }
      continue;
    }
    views[kept++] = std::move(views[i]);
  }
  views.resize(kept);
  return detached;
}

Napi::Value DetachSharedViews(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() >= 2) {
    uintptr_t addr = ToAddress(env, info[0]);
    size_t length = static_cast<size_t>(info[1].As<Napi::Number>().DoubleValue());
    return Napi::Number::New(env, static_cast<double>(DetachViews(addr, length)));
  }
  return Napi::Number::New(env, static_cast<double>(DetachAllViews()));
}

Napi::Value LiveSharedViews(const Napi::CallbackInfo& info) {
  Prune();
  return Napi::Number::New(info.Env(), static_cast<double>(Views().size()));
}

void InitShmView(Napi::Env env, Napi::Object exports) {
  exports.Set("detachSharedViews", Napi::Function::New(env, DetachSharedViews));
  exports.Set("liveSharedViews", Napi::Function::New(env, LiveSharedViews));
}

}  // namespace

Napi::ArrayBuffer MakeSharedView(Napi::Env env, void* addr, size_t length) {
  if (Views().size() >= 64) Prune();
  // No finalizer work: DPDK owns the memory; the view only borrows it.
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, addr, length, [](Napi::Env, void*) {});
  auto tracked = std::make_unique<TrackedView>();
  tracked->addr = reinterpret_cast<uintptr_t>(addr);
  tracked->length = length;
  tracked->ref = Napi::Weak(ab);
  Views().push_back(std::move(tracked));
  return ab;
}

size_t DetachViews(uintptr_t addr, size_t length) { return DetachWhere(addr, addr + length); }

size_t DetachAllViews() { return DetachWhere(0, UINTPTR_MAX); }

void CheckRange(Napi::Env env, double offset, double length, size_t size, const char* what) {
  if (!(offset >= 0) || !(length >= 0) || std::floor(offset) != offset || std::floor(length) != length ||
      offset + length > static_cast<double>(size)) {
    ThrowError(env, "ERANGE",
               std::string("range [") + std::to_string(static_cast<long long>(offset)) + ", +" +
                   std::to_string(static_cast<long long>(length)) + ") is outside the " + what + " (" +
                   std::to_string(size) + " bytes)");
  }
}

uint64_t ToAddress(Napi::Env env, const Napi::Value& value) {
  if (value.IsBigInt()) {
    bool lossless = true;
    uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::TypeError::New(env, "address does not fit in 64 bits");
    return v;
  }
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) {
      throw Napi::TypeError::New(env, "address must be a non-negative safe integer or a bigint");
    }
    return static_cast<uint64_t>(d);
  }
  throw Napi::TypeError::New(env, "address must be a number or a bigint");
}

Napi::BigInt FromAddress(Napi::Env env, uintptr_t addr) { return Napi::BigInt::New(env, static_cast<uint64_t>(addr)); }

U64Array ToU64Array(Napi::Env env, const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_biguint64_array) {
    throw Napi::TypeError::New(env, "expected a BigUint64Array");
  }
  Napi::TypedArrayOf<uint64_t> arr = value.As<Napi::TypedArrayOf<uint64_t>>();
  return U64Array{arr.Data(), arr.ElementLength()};
}

MPBUS_FACILITY(InitShmView);
}  // namespace mpbus
