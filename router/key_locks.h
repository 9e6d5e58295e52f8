#pragma once
// Per-key ordering (DESIGN §2): writes to one key are decided on the owner and applied to the
// other store while holding that key's lock, so they reach both stores in the order decided and
// an unlock can never overtake the next lock in the secondary store.
//
// Keys map to a fixed number of stripes (an async mutex each), so memory does not grow with the
// keyspace; two keys sharing a stripe only wait for each other. Waiters are served FIFO.
// A stripe can also be held shared, by any number of holders at once, for writes that need no
// ordering among themselves (Router::writeGuard). An exclusive holder waits until every shared
// holder is done, and while it waits, new shared holders queue behind it, so a steady stream of
// shared writes cannot starve it. When it is done, the shared waiters at the front of the line
// all go at once.
// Every write takes and releases its key's stripe, for a random key of a large keyspace: the
// stripes lie in one array, a cache line each, and a stripe's queue of waiters is made only when
// someone first waits on it, so a free lock costs one line of memory (4096 stripes: 256 KiB).
// A holder must never take a second key lock (no nesting), which rules out deadlock.
//
// Thread-safety: lock() may be called from any executor. Lifetime: KeyLocks must outlive every
// Guard; a Guard releases on destruction.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

namespace lockshift {

class KeyLocks {
 public:
  static constexpr size_t kDefaultStripes = 4096;

  struct Waiter {
    std::function<void()> resume;
    bool shared = false;
  };
  struct alignas(64) Stripe {
    std::mutex mu;
    bool held = false;      // GUARDED_BY(mu): held exclusively
    uint32_t shared = 0;    // GUARDED_BY(mu): shared holders (never with held)
    std::unique_ptr<std::deque<Waiter>> waiters;  // GUARDED_BY(mu); made on first wait
  };

  class Guard {
   public:
    Guard() = default;
    Guard(Stripe* s, bool shared) : stripe_(s), shared_(shared) {}
    Guard(Guard&& o) noexcept : stripe_(o.stripe_), shared_(o.shared_) { o.stripe_ = nullptr; }
    Guard& operator=(Guard&& o) noexcept;
    ~Guard() { release(); }
    void release();
    explicit operator bool() const { return stripe_ != nullptr; }
    bool shared() const { return shared_; }

   private:
    Stripe* stripe_ = nullptr;
    bool shared_ = false;
  };

  // `stripes` is rounded up to a power of two.
  explicit KeyLocks(size_t stripes = kDefaultStripes);

  // The stripe is chosen here, before the returned awaitable runs, so `key` need not outlive
  // this call.
  boost::asio::awaitable<Guard> lock(int db, std::string_view key) { return lockStripe(stripeFor(db, key), false); }
  // The lock if it is free now, else an empty Guard (and nothing waits). Almost every write finds
  // its key's lock free: taking it here spares the request path the coroutine lock() starts.
  Guard tryLock(int db, std::string_view key) { return tryLockStripe(stripeFor(db, key), false); }
  // The same, held shared: granted beside other shared holders, never beside an exclusive one,
  // nor ahead of one waiting.
  boost::asio::awaitable<Guard> lockShared(int db, std::string_view key) {
    return lockStripe(stripeFor(db, key), true);
  }
  Guard tryLockShared(int db, std::string_view key) { return tryLockStripe(stripeFor(db, key), true); }
  // Returns once every shared holder of the moment has let go, taking each stripe held shared
  // exclusively once, in turn. For a caller that has just stopped new shared holds and must wait
  // for the writes still holding one (Router::fillEnhanced).
  boost::asio::awaitable<void> awaitSharedHolders();

 private:
  static Guard tryLockStripe(Stripe& stripe, bool shared);
  static boost::asio::awaitable<Guard> lockStripe(Stripe& stripe, bool shared);
  // Whether a lock of this kind can be granted now (with mu held). A shared one also needs the
  // line to be empty: it must not overtake an exclusive waiter.
  static bool grantable(const Stripe& s, bool shared) {
    return shared ? !s.held && (s.waiters == nullptr || s.waiters->empty()) : !s.held && s.shared == 0;
  }
  static void take(Stripe& s, bool shared) {
    if (shared) {
      ++s.shared;
    } else {
      s.held = true;
    }
  }
  Stripe& stripeFor(int db, std::string_view key);
  size_t mask_;  // the number of stripes, minus one
  std::unique_ptr<Stripe[]> stripes_;
};

}  // namespace lockshift
