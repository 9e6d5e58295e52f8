#pragma once
// runParallel: `workers` coroutines at once, awaited together; the first failure is the result.
//
// Boost 1.81's ranged parallel group reads its range of operations again after launching them
// all. On an io_context run by several threads the operations can all finish meanwhile, and the
// frame that owns the range (the awaiting coroutine's) be destroyed under that read. So the
// group, and every worker, runs on a strand of its own: no worker starts before the launch has
// returned and the group waits.
//
// Lifetime: `worker` is kept until every worker finished; what it captures by reference must
// outlive the call (the caller's frame stays suspended until then).

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <functional>

#include "common/status.h"

namespace lockshift {

boost::asio::awaitable<Status> runParallel(size_t workers,
                                           std::function<boost::asio::awaitable<Status>(size_t)> worker);

}  // namespace lockshift
