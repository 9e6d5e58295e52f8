#include "common/parallel.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

namespace lockshift {

namespace asio = boost::asio;

namespace {

// Runs on the strand: launches every worker there and waits for all of them.
asio::awaitable<Status> launchAndWait(const std::function<asio::awaitable<Status>(size_t)>* worker,
                                      size_t workers) {
  auto ex = co_await asio::this_coro::executor;
  using Op = decltype(asio::co_spawn(ex, (*worker)(0), asio::deferred));
  std::vector<Op> ops;
  ops.reserve(workers);
  for (size_t w = 0; w < workers; ++w) ops.push_back(asio::co_spawn(ex, (*worker)(w), asio::deferred));
  auto group = asio::experimental::make_parallel_group(std::move(ops));
  auto [order, exceptions, statuses] =
      co_await group.async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  for (size_t i = 0; i < workers; ++i) {
    if (exceptions[i]) co_return Status::internal("a parallel task failed unexpectedly");
    if (!statuses[i]) co_return statuses[i];
  }
  co_return Status::ok();
}

}  // namespace

asio::awaitable<Status> runParallel(size_t workers, std::function<asio::awaitable<Status>(size_t)> worker) {
  if (workers == 0) co_return Status::ok();
  auto strand = asio::make_strand(co_await asio::this_coro::executor);
  auto all = asio::co_spawn(strand, launchAndWait(&worker, workers), asio::use_awaitable);
  co_return co_await std::move(all);
}

}  // namespace lockshift
