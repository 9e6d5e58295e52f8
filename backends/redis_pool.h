#pragma once
// RedisPool: the connections to one Redis server, and the awaitable call that sends a command
// through them. RedisStore has one; RedisClusterStore has one per cluster node. Private to
// backends/redis_*.
//
// Requests go to one connection while it takes them, and move on to the next ready one when it
// refuses (not connected, or too much in flight); see RedisConnection for connecting, pipelining,
// timeouts and backoff. Keeping to one connection is what lets the requests of many sessions
// leave in one write: a connection writes everything queued in one turn of the event loop, so
// spreading requests over the pool would split that batch into one write per connection, and
// Redis, which answers one command at a time anyway, would read and write as often. When no
// connection is ready the request is refused at once: nothing queues in the pool.
//
// Thread-safety: every method may be called from any thread; connections_ is fixed after
// construction and current_ is atomic. Completions run on the awaiting coroutine's executor.
// Lifetime: create with std::make_shared; whoever awaits send() or call() keeps the pool alive
// until the awaitable completes. The io_context must outlive the pool.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis_connection.h"
#include "common/status.h"
#include "resp/value.h"

namespace lockshift::redis {

// What send() brings back: the reply (or the error that replaces it), and whether a connection
// took the request. A request that was not sent was not executed, so it is always safe to retry.
struct PoolReply {
  Result<resp::Value> value = Status::internal("no reply");
  bool sent = false;
  // When not sent: the request, for a retry (see retryWhileStarting()).
  std::string unsent_wire;
  size_t unsent_discard = 0;
};

class RedisPool {
 public:
  // `fences`: shared by every pool to the same server (redis_fences.h); null for its own.
  RedisPool(asio::io_context& io, RedisOptions options, std::shared_ptr<Fences> fences = nullptr);
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  // Starts connecting every connection. Call once.
  void start();
  // Closes every connection; later requests are refused with kUnavailable.
  void close();
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // True while no connection is ready and one is still making its first attempt (see
  // RedisConnection::firstAttemptPending): a refusal now says nothing about the server yet.
  bool starting();

  const RedisOptions& options() const { return target_->options(); }
  // "redis host:port".
  const std::string& where() const { return target_->where(); }
  Fences& fences() const { return target_->fences(); }
  // The same, for another pool to this server (a cluster node that moved, redis_cluster_client.h).
  const std::shared_ptr<Fences>& sharedFences() const { return target_->sharedFences(); }

  // Sends `wire` (one or more encoded commands) on one connection. The replies to the first
  // `discard_replies` commands are dropped and the last one is returned (for ASKING + command).
  asio::awaitable<PoolReply> send(std::string wire, size_t discard_replies = 0);
  // For a reply send() refused: while the pool is still making its first connections (start-up,
  // when clients may already be connected to lockshift), sends it again every few milliseconds
  // until a connection takes it, the first attempts fail, or `deadline` (default: connect_timeout
  // from now) passes. Otherwise tries once more and returns that.
  asio::awaitable<PoolReply> retryWhileStarting(
      PoolReply refused, std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt);
  // Sends one command (retryWhileStarting() included); a refusal comes back as its kUnavailable
  // status.
  asio::awaitable<Result<resp::Value>> call(std::vector<std::string> args);
  // The same for arguments the caller holds (encoded before it returns; no copies).
  asio::awaitable<Result<resp::Value>> call(std::initializer_list<std::string_view> args);
  // The same for one command already encoded (resp::encodeCommand).
  asio::awaitable<Result<resp::Value>> callWire(std::string wire);

 private:
  // Hands the request to the next ready connection; false (request untouched) when none took it.
  bool trySubmit(RedisRequest& request, Status* refusal);

  const std::shared_ptr<const RedisTarget> target_;
  std::vector<std::shared_ptr<RedisConnection>> connections_;
  std::atomic<size_t> current_{0};  // the connection requests go to while it takes them
  std::atomic<bool> closed_{false};
};

}  // namespace lockshift::redis
