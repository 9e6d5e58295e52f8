// KeyLocks, the per-key ordering of the router (router/key_locks.h): one holder per key at a
// time, waiters served in arrival order, and exclusion across the threads of an io_context; shared
// holders beside each other but never beside an exclusive one, nor ahead of one waiting.
#include "router/key_locks.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace lockshift {
namespace {

namespace asio = boost::asio;

// Holds `key` (exclusively, or shared when `shared`) across `yields` trips through the scheduler,
// recording when it got and left it.
asio::awaitable<void> holdFor(KeyLocks& locks, std::string key, int yields, int id, std::vector<int>* order,
                              bool shared = false) {
  auto lock = shared ? locks.lockShared(0, key) : locks.lock(0, key);
  KeyLocks::Guard guard = co_await std::move(lock);
  EXPECT_EQ(guard.shared(), shared);
  order->push_back(id);
  for (int i = 0; i < yields; ++i) co_await asio::post(asio::use_awaitable);
  order->push_back(-id);
}

TEST(KeyLocks, OneHolderPerKeyAndWaitersInArrivalOrder) {
  KeyLocks locks;
  asio::io_context io;
  std::vector<int> order;
  for (int id = 1; id <= 3; ++id) asio::co_spawn(io, holdFor(locks, "pr/a", 3, id, &order), asio::detached);
  io.run();
  // Each one got the key only after the one before left it, in the order they asked.
  EXPECT_EQ(order, (std::vector<int>{1, -1, 2, -2, 3, -3}));
}

TEST(KeyLocks, KeysOfOneStripeWaitForEachOther) {
  KeyLocks shared(1);  // every key on one stripe
  asio::io_context io;
  std::vector<int> order;
  asio::co_spawn(io, holdFor(shared, "pr/a", 3, 1, &order), asio::detached);
  asio::co_spawn(io, holdFor(shared, "pr/b", 3, 2, &order), asio::detached);
  io.run();
  EXPECT_EQ(order, (std::vector<int>{1, -1, 2, -2}));
}

// The stripe count is rounded up to a power of two; none at all means one, shared by every key.
TEST(KeyLocks, NoStripesMeansOneForEveryKey) {
  KeyLocks one(0);
  KeyLocks::Guard a = one.tryLock(0, "pr/a");
  ASSERT_TRUE(a);
  EXPECT_FALSE(one.tryLock(3, "pr/b"));
  a.release();
  EXPECT_TRUE(one.tryLock(3, "pr/b"));
}

// Across threads: 8 workers each make 200 read-modify-writes of a plain counter under the key's
// lock, with a trip through the scheduler (another thread may run) between the read and the
// write, on an io_context run by 4 threads. Returns the counter; with `try_first` the workers
// take the lock as the router's write path does (tryLock, then lock() when the key is held) and
// `*fast` counts the takes tryLock got.
constexpr int kWorkers = 8, kSteps = 200;
long countUnderLock(KeyLocks& locks, bool try_first, std::atomic<int>* fast) {
  asio::io_context io;
  long counter = 0;
  auto worker = [&]() -> asio::awaitable<void> {
    for (int i = 0; i < kSteps; ++i) {
      KeyLocks::Guard guard = try_first ? locks.tryLock(0, "pr/counter") : KeyLocks::Guard();
      if (guard) {
        ++*fast;
      } else {
        guard = co_await locks.lock(0, "pr/counter");
      }
      const long seen = counter;
      co_await asio::post(asio::use_awaitable);
      counter = seen + 1;
    }
  };
  for (int i = 0; i < kWorkers; ++i) asio::co_spawn(io, worker(), asio::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  return counter;
}

TEST(KeyLocks, ExcludesAcrossThreads) {
  KeyLocks locks;
  std::atomic<int> fast{0};
  EXPECT_EQ(countUnderLock(locks, false, &fast), long{kWorkers} * kSteps);  // loses no step
}

TEST(KeyLocks, TryLockTakesAFreeKeyAndRefusesAHeldOne) {
  KeyLocks locks;
  KeyLocks::Guard first = locks.tryLock(0, "pr/a");
  ASSERT_TRUE(first);
  EXPECT_FALSE(locks.tryLock(0, "pr/a"));
  EXPECT_TRUE(locks.tryLock(1, "pr/b"));  // another key is free (and released at once)
  first.release();
  EXPECT_FALSE(first);
  EXPECT_TRUE(locks.tryLock(0, "pr/a"));
}

// A key handed to a waiter stays held until the waiter lets it go: tryLock never jumps the queue.
TEST(KeyLocks, TryLockDoesNotOvertakeAWaiter) {
  KeyLocks locks;
  asio::io_context io;
  KeyLocks::Guard holder = locks.tryLock(0, "pr/a");
  ASSERT_TRUE(holder);
  bool waiter_has_it = false;
  bool release_waiter = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto lock = locks.lock(0, "pr/a");
        KeyLocks::Guard guard = co_await std::move(lock);
        waiter_has_it = true;
        while (!release_waiter) co_await asio::post(asio::use_awaitable);
      },
      asio::detached);
  io.poll();  // the waiter is now in line
  EXPECT_FALSE(waiter_has_it);
  holder.release();
  EXPECT_FALSE(locks.tryLock(0, "pr/a"));  // handed to the waiter, which has not run yet
  for (int i = 0; i < 100 && !waiter_has_it; ++i) io.poll_one();
  ASSERT_TRUE(waiter_has_it);
  EXPECT_FALSE(locks.tryLock(0, "pr/a"));
  release_waiter = true;
  io.run();
  EXPECT_TRUE(locks.tryLock(0, "pr/a"));
}

// The router's write path, tryLock first and lock() when the key is held: mixed, across threads,
// the same read-modify-writes still lose no step.
TEST(KeyLocks, TryLockAndLockTogetherExcludeAcrossThreads) {
  KeyLocks locks;
  std::atomic<int> fast{0};
  EXPECT_EQ(countUnderLock(locks, true, &fast), long{kWorkers} * kSteps);
  EXPECT_GT(fast.load(), 0);  // both paths ran
  EXPECT_LT(fast.load(), kWorkers * kSteps);
}

TEST(KeyLocks, SharedHoldersGoTogether) {
  KeyLocks locks;
  asio::io_context io;
  std::vector<int> order;
  for (int id = 1; id <= 3; ++id) asio::co_spawn(io, holdFor(locks, "pr/a", 3, id, &order, true), asio::detached);
  io.run();
  // All three got the key before any let it go.
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(std::vector<int>(order.begin(), order.begin() + 3), (std::vector<int>{1, 2, 3}));
}

// An exclusive holder waits for the shared ones before it; shared ones asking after it wait for it,
// and then go together.
TEST(KeyLocks, ExclusiveWaitsForSharedAndSharedQueueBehindIt) {
  KeyLocks locks;
  asio::io_context io;
  std::vector<int> order;
  asio::co_spawn(io, holdFor(locks, "pr/a", 4, 1, &order, true), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/a", 4, 2, &order, true), asio::detached);
  io.poll_one();
  io.poll_one();  // 1 and 2 hold it shared
  asio::co_spawn(io, holdFor(locks, "pr/a", 2, 3, &order, false), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/a", 2, 4, &order, true), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/a", 2, 5, &order, true), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/a", 2, 6, &order, false), asio::detached);
  io.run();
  auto at = [&](int id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  EXPECT_LT(at(1), at(-1));
  EXPECT_LT(at(2), at(-1));  // 1 and 2 together
  EXPECT_GT(at(3), std::max(at(-1), at(-2)));  // 3 after both shared holders
  EXPECT_GT(at(4), at(-3));  // 4 and 5 queued behind 3, not beside 1 and 2
  EXPECT_GT(at(5), at(-3));
  EXPECT_LT(at(5), at(-4));  // and then went together
  EXPECT_GT(at(6), std::max(at(-4), at(-5)));  // 6 after them, alone
}

// awaitSharedHolders() returns once the shared holders of the moment, on any key, let go; it does
// not wait for an exclusive holder, nor for nothing.
TEST(KeyLocks, AwaitSharedHoldersWaitsForEverySharedHolderOfTheMoment) {
  KeyLocks locks;
  asio::io_context io;
  std::vector<int> order;
  asio::co_spawn(io, holdFor(locks, "pr/a", 3, 1, &order, true), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/b", 6, 2, &order, true), asio::detached);
  asio::co_spawn(io, holdFor(locks, "pr/c", 20, 3, &order, false), asio::detached);
  io.poll_one();
  io.poll_one();
  io.poll_one();  // 1 and 2 hold their keys shared, 3 its key exclusively
  ASSERT_EQ(order, (std::vector<int>{1, 2, 3}));
  auto waiter = [&]() -> asio::awaitable<void> {
    co_await locks.awaitSharedHolders();
    order.push_back(0);
  };
  asio::co_spawn(io, waiter, asio::detached);
  io.run();
  auto at = [&](int id) { return std::find(order.begin(), order.end(), id) - order.begin(); };
  EXPECT_GT(at(0), std::max(at(-1), at(-2)));
  EXPECT_LT(at(0), at(-3));

  order.clear();  // nothing held: at once
  asio::co_spawn(io, waiter, asio::detached);
  io.restart();
  io.poll_one();
  EXPECT_EQ(order, std::vector<int>{0});
}

TEST(KeyLocks, TryLockSharedRefusesBesideOrAheadOfAnExclusiveHolder) {
  KeyLocks locks;
  asio::io_context io;
  KeyLocks::Guard a = locks.tryLockShared(0, "pr/a");
  KeyLocks::Guard b = locks.tryLockShared(0, "pr/a");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_TRUE(a.shared());
  EXPECT_FALSE(locks.tryLock(0, "pr/a"));  // not beside shared holders
  bool exclusive = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto lock = locks.lock(0, "pr/a");
        KeyLocks::Guard guard = co_await std::move(lock);
        exclusive = true;
      },
      asio::detached);
  io.poll();  // in line behind a and b
  EXPECT_FALSE(locks.tryLockShared(0, "pr/a"));  // does not overtake the exclusive waiter
  a.release();
  io.poll();
  EXPECT_FALSE(exclusive);
  b.release();
  io.run();
  EXPECT_TRUE(exclusive);
  EXPECT_TRUE(locks.tryLockShared(0, "pr/a"));
  KeyLocks::Guard c = locks.tryLock(0, "pr/a");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c.shared());
  EXPECT_FALSE(locks.tryLockShared(0, "pr/a"));  // not beside an exclusive holder
}

// Across threads: shared holders counting themselves in and out while exclusive holders check
// that they are alone, on an io_context run by 4 threads.
TEST(KeyLocks, SharedAndExclusiveExcludeAcrossThreads) {
  KeyLocks locks;
  asio::io_context io;
  std::atomic<int> shared_in{0}, exclusive_in{0}, overlaps{0}, most_shared{0};
  auto worker = [&](bool exclusive) -> asio::awaitable<void> {
    for (int i = 0; i < kSteps; ++i) {
      KeyLocks::Guard guard = exclusive ? locks.tryLock(0, "pr/a") : locks.tryLockShared(0, "pr/a");
      if (!guard) {
        auto lock = exclusive ? locks.lock(0, "pr/a") : locks.lockShared(0, "pr/a");
        guard = co_await std::move(lock);
      }
      if (exclusive) {
        if (exclusive_in.fetch_add(1) != 0 || shared_in.load() != 0) ++overlaps;
      } else {
        const int n = shared_in.fetch_add(1) + 1;
        if (exclusive_in.load() != 0) ++overlaps;
        int seen = most_shared.load();
        while (n > seen && !most_shared.compare_exchange_weak(seen, n)) {
        }
      }
      co_await asio::post(asio::use_awaitable);
      if (exclusive) {
        --exclusive_in;
      } else {
        --shared_in;
      }
    }
  };
  for (int i = 0; i < kWorkers; ++i) asio::co_spawn(io, worker(i % 4 == 0), asio::detached);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { io.run(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(most_shared.load(), 1);  // shared holders did overlap each other
  EXPECT_TRUE(locks.tryLock(0, "pr/a"));  // and every hold was let go
}

}  // namespace
}  // namespace lockshift
