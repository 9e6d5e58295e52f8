// runParallel: every worker runs, the first failure is the result, and an io_context run by
// several threads, with workers that finish as soon as they start, completes every group.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <atomic>
#include <thread>
#include <vector>

#include "common/parallel.h"

namespace lockshift {
namespace {

namespace asio = boost::asio;

TEST(RunParallel, RunsEveryWorkerAndReturnsAFailure) {
  asio::io_context io;
  std::atomic<int> ran{0};
  auto run = [&](int failing) {
    auto f = asio::co_spawn(
        io,
        runParallel(5,
                    [&ran, failing](size_t w) -> asio::awaitable<Status> {
                      // Yield once, so the workers interleave.
                      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
                      ++ran;
                      if (static_cast<int>(w) == failing) co_return Status::unavailable("worker " + std::to_string(w));
                      co_return Status::ok();
                    }),
        asio::use_future);
    io.restart();
    io.run();
    return f.get();
  };
  EXPECT_TRUE(run(-1).isOk());
  EXPECT_EQ(ran.load(), 5);
  Status failed = run(3);
  EXPECT_EQ(failed.code(), ErrorCode::kUnavailable);
  EXPECT_EQ(failed.message(), "worker 3");
  EXPECT_EQ(ran.load(), 10);
  EXPECT_TRUE(run(-1).isOk());
}

TEST(RunParallel, GroupsOnAManyThreadedContextAllComplete) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
  std::atomic<int> ran{0};
  auto groups = asio::co_spawn(
      io,
      [&ran]() -> asio::awaitable<int> {
        int ok = 0;
        for (int g = 0; g < 2000; ++g) {
          // Workers that finish at once: the group may complete while it is still launching.
          auto all = runParallel(8, [&ran](size_t) -> asio::awaitable<Status> {
            ++ran;
            co_return Status::ok();
          });
          if ((co_await std::move(all)).isOk()) ++ok;
        }
        co_return ok;
      },
      asio::use_future);
  const int ok = groups.get();
  guard.reset();
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 2000);
  EXPECT_EQ(ran.load(), 2000 * 8);
}

}  // namespace
}  // namespace lockshift
