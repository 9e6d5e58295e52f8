// ClusterClient's sending: the routed call with its redirects and retries, calls to one node, and
// waiting for the first slot map. The topology is in redis_cluster_client.cc.
//
// Awaitables are named before co_await: GCC 12 destroys a co_await operand's temporaries twice
// when they hold captures like RedisPool::send()'s.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string_view>
#include <utility>

#include "backends/redis_cluster_client.h"
#include "backends/redis_commands.h"

namespace lockshift::redis {

namespace {

using Clock = std::chrono::steady_clock;

bool startsWithWord(std::string_view text, std::string_view word) {
  return text.rfind(word, 0) == 0 && (text.size() == word.size() || text[word.size()] == ' ');
}

std::string hostOf(const std::string& address) {
  Result<HostPort> parsed = parseAddress(address);
  return parsed.isOk() ? parsed->host : std::string();
}

std::string millis(std::chrono::milliseconds duration) {
  return std::to_string(duration.count()) + " ms";
}

const std::string& askingWire() {
  static const std::string wire = [] {
    std::string out;
    resp::encodeCommand({"ASKING"}, out);
    return out;
  }();
  return wire;
}

}  // namespace

asio::awaitable<void> ClusterClient::sleepFor(std::chrono::milliseconds duration) {
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  auto wait = timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_await std::move(wait);
}

asio::awaitable<PoolReply> ClusterClient::sendTo(std::shared_ptr<RedisPool> pool, std::string wire,
                                                 size_t discard_replies, Deadline deadline) {
  auto send = pool->send(std::move(wire), discard_replies);
  PoolReply reply = co_await std::move(send);
  if (reply.sent) co_return reply;
  auto retry = pool->retryWhileStarting(std::move(reply), deadline);
  co_return co_await std::move(retry);
}

asio::awaitable<Result<std::shared_ptr<const SlotMap>>> ClusterClient::slotMap(Self self,
                                                                               Deadline deadline) {
  uint64_t seen = 0;
  bool spawn = false;
  {
    std::lock_guard lock(self->mu_);
    if (self->closed_) co_return self->closedStatus();
    if (self->map_) co_return self->map_;
    seen = self->refreshes_done_;
    spawn = self->claimRefreshLocked();
  }
  if (spawn) self->spawnRefresh();
  // Until the refresh that runs now has finished; it asks every seed, each within its timeouts.
  for (;;) {
    auto pause = sleepFor(kPollInterval);
    co_await std::move(pause);
    std::lock_guard lock(self->mu_);
    if (self->closed_) co_return self->closedStatus();
    if (self->map_) co_return self->map_;
    if (self->refreshes_done_ > seen) co_return Status::unavailable(self->refresh_error_);
    if (Clock::now() >= deadline) {
      co_return Status::unavailable(
          "redis cluster: no slot map yet: the seed nodes did not answer within " +
          millis(self->options_.command_timeout));
    }
  }
}

asio::awaitable<Result<resp::Value>> ClusterClient::callNode(Self self, std::string address,
                                                             std::vector<std::string> args) {
  std::shared_ptr<RedisPool> pool = self->poolFor(address);
  if (!pool) co_return self->closedStatus();
  std::string wire;
  resp::encodeCommand(args, wire);
  auto send = sendTo(pool, std::move(wire), 0, self->deadlineFromNow());
  PoolReply reply = co_await std::move(send);
  if (!reply.value.isOk()) {
    self->refreshSoon();
    co_return Status(reply.value.status().code(),
                     "redis cluster: " + reply.value.status().message());
  }
  co_return std::move(reply.value);
}

// One attempt per loop: to the slot's master, or to the node an ASK named. Only replies that
// prove the command did not run (redirects, CLUSTERDOWN, TRYAGAIN) and refusals before sending
// lead to another attempt.
asio::awaitable<Result<resp::Value>> ClusterClient::call(Self self, uint16_t slot,
                                                         std::vector<std::string> args) {
  std::string wire;
  resp::encodeCommand(args, wire);
  return callWire(std::move(self), slot, std::move(wire));
}

asio::awaitable<Result<resp::Value>> ClusterClient::call(Self self, uint16_t slot,
                                                         std::initializer_list<std::string_view> args) {
  std::string wire;
  resp::encodeCommand(args, wire);
  return callWire(std::move(self), slot, std::move(wire));
}

asio::awaitable<Result<resp::Value>> ClusterClient::callWire(Self self, uint16_t slot, std::string wire) {
  const Deadline deadline = self->deadlineFromNow();
  const std::string where = "redis cluster (slot " + std::to_string(slot) + ")";
  std::string ask_target;
  int redirects = 0;
  std::chrono::milliseconds backoff = kRetryBackoffInitial;
  // Waits before the next attempt; false when that would pass the deadline.
  auto canRetry = [&] { return Clock::now() + backoff < deadline; };
  auto growBackoff = [&] { backoff = std::min(backoff * 2, kRetryBackoffMax); };

  for (;;) {
    const bool asking = !ask_target.empty();
    std::string address = std::exchange(ask_target, std::string());
    if (!asking) {
      auto lookup = slotMap(self, deadline);
      Result<std::shared_ptr<const SlotMap>> map = co_await std::move(lookup);
      if (!map.isOk()) co_return map.status();
      const std::string* master = (*map)->masterOf(slot);
      if (master == nullptr) {
        self->refreshSoon();
        if (!canRetry()) {
          co_return Status::unavailable("redis cluster is down: slot " + std::to_string(slot) +
                                        " has no master in the slot map");
        }
        auto pause = sleepFor(backoff);
        co_await std::move(pause);
        growBackoff();
        continue;
      }
      address = *master;
    }

    std::shared_ptr<RedisPool> pool = self->poolFor(address);
    if (!pool) co_return self->closedStatus();
    auto send = sendTo(pool, asking ? askingWire() + wire : wire, asking ? 1 : 0, deadline);
    PoolReply reply = co_await std::move(send);
    if (!reply.sent && pool->closed() && Clock::now() < deadline) continue;  // retired by a refresh
    if (!reply.value.isOk()) {
      self->refreshSoon();
      co_return Status(reply.value.status().code(), where + ": " + reply.value.status().message());
    }

    const resp::Value& value = *reply.value;
    if (!value.isError()) co_return std::move(reply.value);
    if (std::optional<Redirect> redirect = parseRedirect(value.str, hostOf(address))) {
      if (++redirects > self->options_.max_redirects) {
        co_return Status::unavailable(where + ": more than " +
                                      std::to_string(self->options_.max_redirects) +
                                      " redirects; the last was " + value.str);
      }
      if (redirect->kind == Redirect::Kind::kMoved) {
        self->applyMoved(redirect->slot, redirect->address);
        self->refreshSoon();
      } else {
        ask_target = redirect->address;
      }
      continue;
    }
    const bool down = startsWithWord(value.str, "CLUSTERDOWN");
    if (down || startsWithWord(value.str, "TRYAGAIN")) {
      if (down) self->refreshSoon();
      if (!canRetry()) {
        co_return Status::unavailable("redis cluster is down: " + address + " answers " +
                                      value.str + " (retried for " +
                                      millis(self->options_.command_timeout) + ")");
      }
      auto pause = sleepFor(backoff);
      co_await std::move(pause);
      growBackoff();
      continue;
    }
    co_return std::move(reply.value);
  }
}

}  // namespace lockshift::redis
