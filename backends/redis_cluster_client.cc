// ClusterClient's topology: node pools, the slot map and its refreshes. Sending is in
// redis_cluster_call.cc.

#include "backends/redis_cluster_client.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <utility>

#include "backends/redis_commands.h"

namespace lockshift::redis {

namespace {

RedisOptions nodeOptions(const RedisClusterOptions& cluster, const std::string& address) {
  RedisOptions options;
  options.address = address;
  options.username = cluster.username;
  options.password = cluster.password;
  options.password_file = cluster.password_file;
  options.key_prefix = cluster.key_prefix;
  options.connect_timeout = cluster.connect_timeout;
  options.command_timeout = cluster.command_timeout;
  options.pool_size = cluster.pool_size;
  options.backoff_initial = cluster.backoff_initial;
  options.backoff_max = cluster.backoff_max;
  return options;
}

// The map in one node's CLUSTER SLOTS reply, or why there is none ("redis host:port: ...").
Result<SlotMap> readMap(const PoolReply& reply, const RedisPool& pool, const std::string& address) {
  if (!reply.value.isOk()) return reply.value.status();
  const resp::Value& value = *reply.value;
  if (value.isError()) {
    return Status::unavailable(pool.where() + ": CLUSTER SLOTS failed: " + value.str);
  }
  Result<HostPort> host = parseAddress(address);
  Result<SlotMap> map = SlotMap::fromClusterSlots(value, host.isOk() ? host->host : "");
  if (!map.isOk()) return Status(map.status().code(), pool.where() + ": " + map.status().message());
  if (map->unassigned == kSlotCount) {
    return Status::unavailable(pool.where() + ": serves no slot (is the cluster created?)");
  }
  return map;
}

}  // namespace

ClusterClient::ClusterClient(asio::io_context& io, RedisClusterOptions options)
    : io_(io), options_(std::move(options)), timer_(io) {}

void ClusterClient::start() {
  bool spawn = false;
  {
    std::lock_guard lock(mu_);
    armTimerLocked();
    spawn = claimRefreshLocked();
  }
  if (spawn) spawnRefresh();
}

void ClusterClient::close() {
  std::map<std::string, std::shared_ptr<RedisPool>> pools;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    pools.swap(pools_);
  }
  for (auto& [address, pool] : pools) pool->close();
}

std::string ClusterClient::fencingWarning() const {
  std::lock_guard lock(mu_);
  for (const auto& [address, pool] : pools_) {
    std::string warning = redis::fencingWarning(pool->fences());
    if (!warning.empty()) return pool->where() + ": " + warning;
  }
  return {};
}

std::shared_ptr<RedisPool> ClusterClient::poolFor(const std::string& address) {
  std::lock_guard lock(mu_);
  return poolForLocked(address);
}

// Started under mu_, so nobody sees a pool that has not begun its first connection (it would
// refuse without firstAttemptPending()). Starting only takes the connections' own locks.
std::shared_ptr<RedisPool> ClusterClient::poolForLocked(const std::string& address) {
  if (closed_) return nullptr;
  auto& pool = pools_[address];
  if (!pool) {
    pool = std::make_shared<RedisPool>(io_, nodeOptions(options_, address), nodeFencesLocked(address));
    pool->start();
  }
  return pool;
}

std::shared_ptr<Fences> ClusterClient::nodeFencesLocked(const std::string& address) {
  if (!map_) return nullptr;
  auto id = map_->node_ids.find(address);
  if (id == map_->node_ids.end()) return nullptr;
  std::shared_ptr<Fences>& fences = fences_by_node_[id->second];
  if (!fences) fences = std::make_shared<Fences>("redis " + address);
  return fences;
}

void ClusterClient::refreshSoon() {
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (refreshing_) {
      refresh_again_ = true;
      return;
    }
    if (map_) {
      const auto since = std::chrono::steady_clock::now() - last_refresh_;
      if (since < kMinRefreshGap) {
        delay = std::chrono::ceil<std::chrono::milliseconds>(kMinRefreshGap - since);
      }
    }
    if (!claimRefreshLocked()) return;
  }
  spawnRefresh(delay);
}

bool ClusterClient::claimRefreshLocked() {
  if (closed_ || refreshing_) return false;
  refreshing_ = true;
  return true;
}

void ClusterClient::spawnRefresh(std::chrono::milliseconds delay) {
  asio::co_spawn(io_, backgroundRefresh(shared_from_this(), delay), asio::detached);
}

void ClusterClient::armTimerLocked() {
  if (options_.refresh_interval.count() <= 0) return;
  timer_.expires_after(options_.refresh_interval);
  timer_.async_wait(
      [self = shared_from_this()](const boost::system::error_code& ec) { self->onTimer(ec); });
}

void ClusterClient::onTimer(const boost::system::error_code& ec) {
  bool spawn = false;
  {
    std::lock_guard lock(mu_);
    if (closed_ || ec) return;
    armTimerLocked();
    spawn = claimRefreshLocked();
  }
  if (spawn) spawnRefresh();
}

asio::awaitable<void> ClusterClient::backgroundRefresh(Self self, std::chrono::milliseconds delay) {
  for (;;) {
    if (delay.count() > 0) {
      auto pause = sleepFor(delay);
      co_await std::move(pause);
    }
    {
      std::lock_guard lock(self->mu_);
      self->last_refresh_ = std::chrono::steady_clock::now();
    }
    auto fetch = fetchMap(self);
    Result<SlotMap> map = co_await std::move(fetch);
    const bool fetched = map.isOk();
    if (fetched) self->install(std::move(map.value()));
    {
      std::lock_guard lock(self->mu_);
      ++self->refreshes_done_;
      self->refresh_error_ = fetched ? std::string() : map.status().message();
      if (!self->refresh_again_ || self->closed_) {
        self->refreshing_ = false;
        self->refresh_again_ = false;
        co_return;
      }
      self->refresh_again_ = false;
    }
    // Asked again while this one ran: once more, after the gap that spaces refreshes.
    delay = kMinRefreshGap;
  }
}

asio::awaitable<Result<SlotMap>> ClusterClient::fetchMap(Self self) {
  std::vector<std::string> candidates;
  {
    std::lock_guard lock(self->mu_);
    if (self->closed_) co_return self->closedStatus();
    if (self->map_) candidates = self->map_->masters;
  }
  for (const std::string& seed : self->options_.addresses) {
    if (std::find(candidates.begin(), candidates.end(), seed) == candidates.end()) {
      candidates.push_back(seed);
    }
  }
  if (candidates.empty()) co_return Status::unavailable("redis cluster: no seed addresses");
  std::string wire;
  resp::encodeCommand({"CLUSTER", "SLOTS"}, wire);
  std::string errors;
  for (const std::string& address : candidates) {
    std::shared_ptr<RedisPool> pool = self->poolFor(address);
    if (!pool) co_return self->closedStatus();
    const auto deadline = std::chrono::steady_clock::now() + self->options_.connect_timeout +
                          self->options_.command_timeout;
    auto send = sendTo(pool, wire, 0, deadline);
    PoolReply reply = co_await std::move(send);
    Result<SlotMap> map = readMap(reply, *pool, address);
    if (map.isOk()) co_return map;
    errors += (errors.empty() ? "" : "; ") + map.status().message();
  }
  co_return Status::unavailable("redis cluster: no node gave a slot map: " + errors);
}

asio::awaitable<Result<std::shared_ptr<const SlotMap>>> ClusterClient::refreshNow(Self self) {
  auto fetch = fetchMap(self);
  Result<SlotMap> map = co_await std::move(fetch);
  if (!map.isOk()) co_return map.status();
  self->install(std::move(map.value()));
  std::lock_guard lock(self->mu_);
  if (self->closed_ || !self->map_) co_return self->closedStatus();
  co_return self->map_;
}

void ClusterClient::pruneNodeFences(NodeFences& fences, const SlotMap& map) {
  auto departed = [&map](const std::string& id) {
    return std::none_of(map.node_ids.begin(), map.node_ids.end(),
                        [&id](const auto& entry) { return entry.second == id; });
  };
  size_t kept = 0;
  for (auto it = fences.begin(); it != fences.end();) {
    if (!departed(it->first)) {
      ++it;
    } else if (it->second->size() == 0) {
      it = fences.erase(it);
    } else {
      ++kept;
      ++it;
    }
  }
  if (kept <= kMaxDepartedNodes) return;
  std::erase_if(fences, [&departed](const auto& entry) { return departed(entry.first); });
}

void ClusterClient::adoptPoolFences(NodeFences& fences, const std::string& id,
                                    const std::shared_ptr<Fences>& pool_fences) {
  std::shared_ptr<Fences>& mine = fences[id];
  if (mine == pool_fences) return;
  for (auto& [other, list] : fences) {
    if (list != pool_fences) continue;
    list = std::make_shared<Fences>("redis node " + other);
    list->absorb(*pool_fences);
  }
  if (mine) pool_fences->absorb(*mine);
  mine = pool_fences;
}

// Pools of nodes that are no longer masters (seeds included) close; every master's pool opens.
void ClusterClient::install(SlotMap map) {
  std::vector<std::shared_ptr<RedisPool>> retired;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    if (!map_ || map_->fingerprint != map.fingerprint || map_->node_ids != map.node_ids) {
      map_ = std::make_shared<const SlotMap>(std::move(map));
    }
    for (const auto& [address, id] : map_->node_ids) {
      auto pool = pools_.find(address);
      if (pool != pools_.end()) adoptPoolFences(fences_by_node_, id, pool->second->sharedFences());
    }
    pruneNodeFences(fences_by_node_, *map_);
    const std::vector<std::string>& masters = map_->masters;
    for (auto it = pools_.begin(); it != pools_.end();) {
      if (std::binary_search(masters.begin(), masters.end(), it->first)) {
        ++it;
      } else {
        retired.push_back(std::move(it->second));
        it = pools_.erase(it);
      }
    }
    for (const std::string& master : masters) poolForLocked(master);
  }
  for (auto& pool : retired) pool->close();
}

void ClusterClient::applyMoved(uint16_t slot, const std::string& address) {
  std::lock_guard lock(mu_);
  if (closed_ || !map_) return;
  const std::string* owner = map_->masterOf(slot);
  if (owner != nullptr && *owner == address) return;
  map_ = std::make_shared<const SlotMap>(map_->withOwner(slot, address));
  poolForLocked(address);
}

}  // namespace lockshift::redis
