#pragma once
// Per-key ordering (DESIGN §2): writes to one key are decided on the owner and applied to the
// other store while holding that key's lock, so they reach both stores in the order decided and
// an unlock can never overtake the next lock in the secondary store.
//
// Keys map to a fixed number of stripes (an async mutex each), so memory does not grow with the
// keyspace; two keys sharing a stripe only wait for each other. Waiters are served FIFO.
// Every write takes and releases its key's stripe, for a random key of a large keyspace: the
// stripes lie in one array, a cache line each, and a stripe's queue of waiters is made only when
// someone first waits on it, so a free lock costs one line of memory (4096 stripes: 256 KiB).
// A holder must never take a second key lock (no nesting), which rules out deadlock.
//
// Thread-safety: lock() may be called from any executor. Lifetime: KeyLocks must outlive every
// Guard; a Guard releases on destruction.

#include <boost/asio/awaitable.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

namespace lockshift {

class KeyLocks {
 public:
  static constexpr size_t kDefaultStripes = 4096;

  struct alignas(64) Stripe {
    std::mutex mu;
    bool held = false;                                           // GUARDED_BY(mu)
    std::unique_ptr<std::deque<std::function<void()>>> waiters;  // GUARDED_BY(mu); made on first wait
  };

  class Guard {
   public:
    Guard() = default;
    explicit Guard(Stripe* s) : stripe_(s) {}
    Guard(Guard&& o) noexcept : stripe_(o.stripe_) { o.stripe_ = nullptr; }
    Guard& operator=(Guard&& o) noexcept;
    ~Guard() { release(); }
    void release();
    explicit operator bool() const { return stripe_ != nullptr; }

   private:
    Stripe* stripe_ = nullptr;
  };

  // `stripes` is rounded up to a power of two.
  explicit KeyLocks(size_t stripes = kDefaultStripes);

  // The stripe is chosen here, before the returned awaitable runs, so `key` need not outlive
  // this call.
  boost::asio::awaitable<Guard> lock(int db, std::string_view key) { return lockStripe(stripeFor(db, key)); }
  // The lock if it is free now, else an empty Guard (and nothing waits). Almost every write finds
  // its key's lock free: taking it here spares the request path the coroutine lock() starts.
  Guard tryLock(int db, std::string_view key);

 private:
  static boost::asio::awaitable<Guard> lockStripe(Stripe& stripe);
  Stripe& stripeFor(int db, std::string_view key);
  size_t mask_;  // the number of stripes, minus one
  std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace lockshift
