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
    o.stripe_ = nullptr;
  }
  return *this;
}

void KeyLocks::Guard::release() {
  if (stripe_ == nullptr) return;
  std::function<void()> next;
  {
    std::lock_guard lock(stripe_->mu);
    auto& waiters = stripe_->waiters;
    if (waiters == nullptr || waiters->empty()) {
      stripe_->held = false;
    } else {
      next = std::move(waiters->front());  // ownership passes on; held stays true
      waiters->pop_front();
    }
  }
  stripe_ = nullptr;
  if (next) next();
}

KeyLocks::Guard KeyLocks::tryLock(int db, std::string_view key) {
  Stripe& stripe = stripeFor(db, key);
  std::lock_guard lock(stripe.mu);
  if (stripe.held) return Guard();
  stripe.held = true;
  return Guard(&stripe);
}

asio::awaitable<KeyLocks::Guard> KeyLocks::lockStripe(Stripe& stripe) {
  {
    std::lock_guard lock(stripe.mu);
    if (!stripe.held) {
      stripe.held = true;
      co_return Guard(&stripe);
    }
  }
  // Wait in line. The waiter holds tracked work on the caller's executor, so io_context::run()
  // cannot return while a lock is owed; it resumes the caller through post(), never inline.
  auto initiate = [&stripe](auto handler) {
    auto work = asio::prefer(asio::get_associated_executor(handler), asio::execution::outstanding_work.tracked);
    auto shared = std::make_shared<decltype(handler)>(std::move(handler));
    std::unique_lock lock(stripe.mu);
    if (!stripe.held) {  // released between the fast path and here
      stripe.held = true;
      lock.unlock();
      asio::post(work, [shared] { (*shared)(); });
      return;
    }
    if (stripe.waiters == nullptr) stripe.waiters = std::make_unique<std::deque<std::function<void()>>>();
    stripe.waiters->push_back([work, shared] { asio::post(work, [shared] { (*shared)(); }); });
  };
  auto wait = asio::async_initiate<const asio::use_awaitable_t<>&, void()>(initiate, asio::use_awaitable);
  co_await std::move(wait);
  co_return Guard(&stripe);
}

}  // namespace lockshift
