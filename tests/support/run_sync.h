#pragma once
// Runs an awaitable to completion on the calling thread and returns its result. For tests of
// asynchronous stores; completions posted from other threads (e.g. LMDB's writer) are handled.
//
// The io_contexts it runs on are never destroyed before the process exits, only reused: a
// store's thread that posts a completion still touches the io_context after the completion may
// have run (Asio's post() wakes the io_context's thread after releasing its lock), so an
// io_context made per call could be destroyed under it; ThreadSanitizer reports exactly that.
// Each call takes one no other call is using, so calls may nest (a callback of the awaitable
// may call runSync() again) and run on several threads at once.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace lockshift::testing {

// The idle io_contexts, reused by later calls.
class SyncIoPool {
 public:
  std::unique_ptr<boost::asio::io_context> take() {
    std::lock_guard lock(mu_);
    if (idle_.empty()) return std::make_unique<boost::asio::io_context>();
    auto io = std::move(idle_.back());
    idle_.pop_back();
    io->restart();
    return io;
  }
  void give(std::unique_ptr<boost::asio::io_context> io) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(io));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<boost::asio::io_context>> idle_;
};

// One io_context of the pool for as long as it lives.
class SyncIo {
 public:
  SyncIo() : io_(pool().take()) {}
  SyncIo(const SyncIo&) = delete;
  SyncIo& operator=(const SyncIo&) = delete;
  ~SyncIo() { pool().give(std::move(io_)); }
  boost::asio::io_context& get() { return *io_; }

 private:
  static SyncIoPool& pool() {
    static SyncIoPool instance;
    return instance;
  }
  std::unique_ptr<boost::asio::io_context> io_;
};

// co_spawn's future needs a default-constructible result; Result<T> is not.
template <typename T>
boost::asio::awaitable<std::optional<T>> inOptional(boost::asio::awaitable<T> aw) {
  co_return co_await std::move(aw);
}

// Runs `io` until no work is left: the awaitable, and every operation it awaits, finished.
template <typename Future>
void runUntilReady(boost::asio::io_context& io, Future& future) {
  io.run();
  if (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    throw std::logic_error("runSync: the io_context ran out of work before the awaitable finished");
  }
}

template <typename T>
T runSync(boost::asio::awaitable<T> aw) {
  SyncIo lease;
  boost::asio::io_context& io = lease.get();
  if constexpr (std::is_void_v<T>) {
    auto future = boost::asio::co_spawn(io, std::move(aw), boost::asio::use_future);
    runUntilReady(io, future);
    future.get();
  } else {
    auto future = boost::asio::co_spawn(io, inOptional(std::move(aw)), boost::asio::use_future);
    runUntilReady(io, future);
    return std::move(*future.get());
  }
}

}  // namespace lockshift::testing
