// The one way native events reach JavaScript: DPDK threads (or any native thread) push events
// into a mutex-guarded queue; the first push into an empty queue makes one call of a
// thread-safe function; on the JS thread, Take() hands over the whole queue at once. Nothing on
// a native thread ever waits for JavaScript. Used by the rte_mp bridge (mp_inbox.cc) and the
// interrupt sources (intr_queue.cc).
#pragma once
#include <napi.h>

#include <atomic>
#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

namespace mpbus {

template <typename Event>
class Pipeline {
 public:
  // What the thread-safe function runs on the JS thread (null: call the JS function with no
  // arguments, and JavaScript takes the events itself).
  using Deliver = void (*)(Napi::Env env, Napi::Function callback);

  Pipeline(const char* resourceName, size_t capacity, Deliver deliver)
      : resourceName_(resourceName), capacity_(capacity), deliver_(deliver) {}

  // Starts delivering to `callback`; false when already open (the caller says why, e.g. EALREADY).
  // The wake-up is unref'd: events never keep the process alive on their own.
  bool Open(Napi::Env env, Napi::Function callback) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (open_) return false;
    tsfn_ = Napi::ThreadSafeFunction::New(env, callback, resourceName_, 0, 1);
    tsfn_.Unref(env);
    open_ = true;
    wakePending_ = false;
    filled_.store(false, std::memory_order_relaxed);
    return true;
  }

  // From any thread; the order of the calls is the order JavaScript sees. `stamp` runs under the
  // lock on an accepted event (to number it in that order). Returns false, with the event left
  // to the caller, when closed or full (full: counted in dropped()).
  template <typename Stamp>
  bool Push(Event&& ev, Stamp stamp) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return false;
    if (capacity_ != 0 && queue_.size() >= capacity_) {
      dropped_++;
      return false;
    }
    stamp(ev);
    queue_.push_back(std::move(ev));
    if (!wakePending_) {
      wakePending_ = true;
      if (deliver_ != nullptr) {
        tsfn_.NonBlockingCall(deliver_);
      } else {
        tsfn_.NonBlockingCall();
      }
      filled_.store(true, std::memory_order_release);
    }
    return true;
  }
  bool Push(Event&& ev) {
    return Push(std::move(ev), [](Event&) {});
  }

  // On the JS thread: every queued event, oldest first; the next push wakes JavaScript again.
  std::vector<Event> Take() {
    std::vector<Event> events;
    std::lock_guard<std::mutex> lock(mutex_);
    events.swap(queue_);
    wakePending_ = false;
    filled_.store(false, std::memory_order_relaxed);
    return events;
  }

  // Stops delivering and releases the thread-safe function; returns what was still queued (its
  // resources are the caller's to free). Idempotent.
  std::vector<Event> Close() {
    std::vector<Event> left;
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_) return left;
    open_ = false;
    left.swap(queue_);
    tsfn_.Release();
    return left;
  }

  // Something is queued and JavaScript was woken (read without the lock, e.g. by a spin).
  bool Filled() const { return filled_.load(std::memory_order_acquire); }

  size_t Queued() {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.size();
  }
  uint64_t Dropped() {
    std::lock_guard<std::mutex> lock(mutex_);
    return dropped_;
  }

 private:
  const char* resourceName_;
  size_t capacity_;  // 0: unbounded
  Deliver deliver_;
  std::mutex mutex_;
  std::vector<Event> queue_;
  bool wakePending_ = false;
  bool open_ = false;
  std::atomic<bool> filled_{false};
  uint64_t dropped_ = 0;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace mpbus
