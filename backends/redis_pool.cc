#include "backends/redis_pool.h"

#include <algorithm>
#include <chrono>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace lockshift::redis {

RedisPool::RedisPool(asio::io_context& io, RedisOptions options)
    : target_(std::make_shared<RedisTarget>(std::move(options))) {
  const int size = std::max(target_->options().pool_size, 1);
  for (int i = 0; i < size; ++i) {
    connections_.push_back(std::make_shared<RedisConnection>(io, target_));
  }
}

void RedisPool::start() {
  for (auto& connection : connections_) connection->start();
}

void RedisPool::close() {
  closed_.store(true, std::memory_order_release);
  for (auto& connection : connections_) connection->close();
}

bool RedisPool::starting() {
  bool pending = false;
  for (auto& connection : connections_) {
    if (connection->ready()) return false;
    pending = pending || connection->firstAttemptPending();
  }
  return pending;
}

bool RedisPool::trySubmit(RedisRequest& request, Status* refusal) {
  const size_t size = connections_.size();
  const size_t first = current_.load(std::memory_order_relaxed);
  for (size_t i = 0; i < size; ++i) {
    const size_t index = (first + i) % size;
    if (connections_[index]->trySubmit(request, refusal)) {
      if (i != 0) current_.store(index, std::memory_order_relaxed);
      return true;
    }
  }
  // Built only here: the accepted path of every request must not pay for an error message.
  if (refusal->isOk()) *refusal = Status::unavailable(where() + ": no connection");
  return false;
}

asio::awaitable<PoolReply> RedisPool::send(std::string wire, size_t discard_replies) {
  auto initiate = [this, wire = std::move(wire), discard_replies](auto handler) mutable {
    using Handler = decltype(handler);
    // Tracked, so the awaiting io_context does not run out of work while a reply is owed.
    auto work = asio::prefer(asio::get_associated_executor(handler),
                             asio::execution::outstanding_work.tracked);
    // std::function needs a copyable callable; the handler is move-only.
    auto shared = std::make_shared<Handler>(std::move(handler));
    // A reply is dispatched: the connection's read handler resumes the awaiting coroutine
    // directly when it already runs on that coroutine's executor (one network thread), rather
    // than queueing it for another turn of the scheduler. A refusal is posted, since it happens
    // inside this initiation, before the coroutine has suspended.
    auto finish = [work, shared](PoolReply reply, bool from_initiation) mutable {
      auto target = asio::prefer(work, asio::execution::outstanding_work.untracked);
      auto complete = [work = std::move(work), shared = std::move(shared),
                       reply = std::move(reply)]() mutable { (*shared)(std::move(reply)); };
      if (from_initiation) {
        asio::post(target, std::move(complete));
      } else {
        asio::dispatch(target, std::move(complete));
      }
    };
    auto done = [finish](Result<resp::Value> value) mutable {
      finish(PoolReply{std::move(value), true}, false);
    };
    RedisRequest request{std::move(wire), std::move(done), discard_replies};
    Status refusal;
    if (!trySubmit(request, &refusal)) {
      finish(PoolReply{std::move(refusal), false, std::move(request.wire), request.discard_replies}, true);
    }
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(PoolReply)>(std::move(initiate),
                                                                               asio::use_awaitable);
}

// Awaitables are named before co_await: GCC 12 destroys a co_await operand's temporaries twice
// when they hold captures like send()'s.
asio::awaitable<PoolReply> RedisPool::retryWhileStarting(
    PoolReply refused, std::optional<std::chrono::steady_clock::time_point> until) {
  constexpr std::chrono::milliseconds kPoll{5};
  const auto deadline = until.value_or(std::chrono::steady_clock::now() + options().connect_timeout);
  PoolReply reply = std::move(refused);
  while (!reply.sent && !closed()) {
    // Once no first attempt is pending, a connection is ready or every one failed: one more try
    // decides (a connection may have become ready just after the refusal).
    const bool last = !starting() || std::chrono::steady_clock::now() + kPoll >= deadline;
    if (!last) {
      asio::steady_timer timer(co_await asio::this_coro::executor, kPoll);
      auto pause = timer.async_wait(asio::as_tuple(asio::use_awaitable));
      co_await std::move(pause);
    }
    auto again = send(std::move(reply.unsent_wire), reply.unsent_discard);
    reply = co_await std::move(again);
    if (last) break;
  }
  co_return reply;
}

asio::awaitable<Result<resp::Value>> RedisPool::call(std::vector<std::string> args) {
  std::string wire;
  resp::encodeCommand(args, wire);
  return callWire(std::move(wire));
}

asio::awaitable<Result<resp::Value>> RedisPool::call(std::initializer_list<std::string_view> args) {
  std::string wire;
  resp::encodeCommand(args, wire);
  return callWire(std::move(wire));
}

asio::awaitable<Result<resp::Value>> RedisPool::callWire(std::string wire) {
  auto op = send(std::move(wire));
  PoolReply reply = co_await std::move(op);
  if (!reply.sent) {
    auto retry = retryWhileStarting(std::move(reply));
    reply = co_await std::move(retry);
  }
  co_return std::move(reply.value);
}

}  // namespace lockshift::redis
