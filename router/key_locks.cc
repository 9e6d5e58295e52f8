#include "router/key_locks.h"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/stable_hash.h"

namespace lockshift {

namespace asio = boost::asio;

KeyLocks::KeyLocks(size_t stripes) {
  stripes_.reserve(stripes);
  for (size_t i = 0; i < stripes; ++i) stripes_.push_back(std::make_unique<Stripe>());
}

KeyLocks::Stripe& KeyLocks::stripeFor(int db, std::string_view key) {
  uint64_t h = stableHash64(key) ^ (static_cast<uint64_t>(db) * 0x9e3779b97f4a7c15ULL);
  return *stripes_[h % stripes_.size()];
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
    if (stripe_->waiters.empty()) {
      stripe_->held = false;
    } else {
      next = std::move(stripe_->waiters.front());  // ownership passes on; held stays true
      stripe_->waiters.pop_front();
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
    stripe.waiters.push_back([work, shared] { asio::post(work, [shared] { (*shared)(); }); });
  };
  auto wait = asio::async_initiate<const asio::use_awaitable_t<>&, void()>(initiate, asio::use_awaitable);
  co_await std::move(wait);
  co_return Guard(&stripe);
}

}  // namespace lockshift
