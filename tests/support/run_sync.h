#pragma once
// Runs an awaitable to completion on a private io_context and returns its result. For tests of
// asynchronous stores; completions posted from other threads (e.g. LMDB's writer) are handled.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <thread>
#include <type_traits>

namespace lockshift::testing {

template <typename T>
T runSync(boost::asio::awaitable<T> aw) {
  boost::asio::io_context io;
  auto future = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
  auto guard = boost::asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  // Let run() return by itself once no work is left: a store's thread may still be finishing
  // its post() of the completion, which holds tracked work until it returns.
  auto finish = [&] {
    guard.reset();
    runner.join();
  };
  if constexpr (std::is_void_v<T>) {
    future.get();
    finish();
  } else {
    T result = future.get();
    finish();
    return result;
  }
}

}  // namespace lockshift::testing
