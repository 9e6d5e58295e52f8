#include "router/key_locks.h"

#include <algorithm>
#include <bit>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <functional>
#include <vector>

namespace lockshift {

namespace asio = boost::asio;

KeyLocks::KeyLocks(size_t stripes)
    : mask_(std::bit_ceil(std::max<size_t>(stripes, 1)) - 1), stripes_(std::make_unique<Stripe[]>(mask_ + 1)) {}

// The stripe need not be the same across versions or processes (unlike the ownership bucket of
// common/stable_hash.h), so the standard library's hash, which reads a key eight bytes at a time,
// picks it. The multiply spreads the database number over the high bits, and the shift brings
// them down to the ones the mask keeps.
KeyLocks::Stripe& KeyLocks::stripeFor(int db, std::string_view key) {
  uint64_t h = std::hash<std::string_view>{}(key) ^ (static_cast<uint64_t>(db) * 0x9e3779b97f4a7c15ULL);
  h ^= h >> 32;
  return stripes_[h & mask_];
}

KeyLocks::Guard& KeyLocks::Guard::operator=(Guard&& o) noexcept {
  if (this != &o) {
    release();
    stripe_ = o.stripe_;
    shared_ = o.shared_;
    o.stripe_ = nullptr;
  }
  return *this;
}

void KeyLocks::Guard::release() {
  if (stripe_ == nullptr) return;
  Stripe& s = *stripe_;
  stripe_ = nullptr;
  std::function<void()> next;                // one waiter: the usual case
  std::vector<std::function<void()>> others;  // shared waiters let in with it
  {
    std::lock_guard lock(s.mu);
    if (shared_) {
      --s.shared;
    } else {
      s.held = false;
    }
    // Free now: ownership passes on to the front of the line, an exclusive waiter alone, or the
    // shared ones up to the first exclusive.
    if (!s.held && s.shared == 0 && s.waiters != nullptr && !s.waiters->empty()) {
      const bool shared = s.waiters->front().shared;
      do {
        take(s, shared);
        std::function<void()> resume = std::move(s.waiters->front().resume);
        s.waiters->pop_front();
        if (next) {
          others.push_back(std::move(resume));
        } else {
          next = std::move(resume);
        }
      } while (shared && !s.waiters->empty() && s.waiters->front().shared);
    }
  }
  if (next) next();
  for (auto& resume : others) resume();
}

KeyLocks::Guard KeyLocks::tryLockStripe(Stripe& stripe, bool shared) {
  std::lock_guard lock(stripe.mu);
  if (!grantable(stripe, shared)) return Guard();
  take(stripe, shared);
  return Guard(&stripe, shared);
}

asio::awaitable<KeyLocks::Guard> KeyLocks::lockStripe(Stripe& stripe, bool shared) {
  if (Guard now = tryLockStripe(stripe, shared)) co_return now;
  // Wait in line. The waiter holds tracked work on the caller's executor, so io_context::run()
  // cannot return while a lock is owed; it resumes the caller through post(), never inline.
  // Whoever lets it in (release(), or this function) counts it as a holder first.
  auto initiate = [&stripe, shared](auto handler) {
    auto work = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    auto resume = std::make_shared<decltype(handler)>(std::move(handler));
    std::unique_lock lock(stripe.mu);
    if (grantable(stripe, shared)) {  // released between the fast path and here
      take(stripe, shared);
      lock.unlock();
      asio::post(work, [resume] { (*resume)(); });
      return;
    }
    if (stripe.waiters == nullptr) stripe.waiters = std::make_unique<std::deque<Waiter>>();
    stripe.waiters->push_back(Waiter{[work, resume] { asio::post(work, [resume] { (*resume)(); }); }, shared});
  };
  auto wait = asio::async_initiate<const asio::use_awaitable_t<>&, void()>(initiate, asio::use_awaitable);
  co_await std::move(wait);
  co_return Guard(&stripe, shared);
}

asio::awaitable<void> KeyLocks::awaitSharedHolders() {
  for (size_t i = 0; i <= mask_; ++i) {
    Stripe& stripe = stripes_[i];
    {
      std::lock_guard lock(stripe.mu);
      if (stripe.shared == 0) continue;
    }
    auto wait = lockStripe(stripe, false);
    Guard held = co_await std::move(wait);
  }
}

}  // namespace lockshift
