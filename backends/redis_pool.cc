#include "backends/redis_pool.h"

#include <algorithm>
#include <chrono>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace lockshift::redis {

RedisPool::RedisPool(asio::io_context& io, RedisOptions options, std::shared_ptr<Fences> fences)
    : target_(std::make_shared<RedisTarget>(std::move(options), std::move(fences))) {
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

namespace {

// The reply to one send(), which resumes the awaiting coroutine.
// The coroutine runs on an io_context in practice; its executor is then kept as that type, with
// the work counted, rather than as the type-erased any_io_executor: an any_io_executor wraps each
// function it runs in a heap-allocated one, and converting it costs as much again.
template <typename Handler>
class AwaitedReply final : public ReplyHandler {
 public:
  explicit AwaitedReply(Handler handler) : handler_(std::move(handler)) {
    auto executor = asio::get_associated_executor(handler_);
    // Tracked, so the awaiting io_context does not run out of work while a reply is owed.
    if (const auto* io = executor.template target<asio::io_context::executor_type>()) {
      io_.emplace(asio::prefer(*io, asio::execution::outstanding_work.tracked));
    } else {
      other_.emplace(asio::prefer(executor, asio::execution::outstanding_work.tracked));
    }
  }

  void complete(Result<resp::Value> value) override { finish(PoolReply{std::move(value), true}, false); }

  // A reply read on the awaiting coroutine's own thread resumes it at once, as asio::dispatch
  // would (one network thread: no second turn of the scheduler). Otherwise it is posted to it,
  // and so is a refusal, which happens inside the initiation, before the coroutine has suspended.
  void finish(PoolReply reply, bool from_initiation) {
    if (!from_initiation && io_ && io_->running_in_this_thread()) {
      handler_(std::move(reply));
      return;
    }
    auto resume = [handler = std::move(handler_), reply = std::move(reply)]() mutable {
      handler(std::move(reply));
    };
    if (io_) {
      asio::post(*io_, std::move(resume));
    } else {
      asio::post(*other_, std::move(resume));
    }
  }

 private:
  using TrackedIo = decltype(asio::prefer(std::declval<asio::io_context::executor_type>(),
                                          asio::execution::outstanding_work.tracked));
  Handler handler_;
  std::optional<TrackedIo> io_;              // the awaiting executor, when it is an io_context's
  std::optional<asio::any_io_executor> other_;  // any other executor
};

}  // namespace

asio::awaitable<PoolReply> RedisPool::send(std::string wire, size_t discard_replies) {
  auto initiate = [this, wire = std::move(wire), discard_replies](auto handler) mutable {
    auto reply = std::make_unique<AwaitedReply<decltype(handler)>>(std::move(handler));
    auto* awaited = reply.get();
    RedisRequest request{std::move(wire), std::move(reply), discard_replies};
    Status refusal;
    if (!trySubmit(request, &refusal)) {  // the request still owns `awaited`
      awaited->finish(PoolReply{std::move(refusal), false, std::move(request.wire), request.discard_replies}, true);
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
