#pragma once
// ClusterClient: RedisClusterStore's view of the cluster: one RedisPool per node, the slot map,
// its refreshes, and the routed call that follows MOVED/ASK and retries CLUSTERDOWN/TRYAGAIN
// (the rules are in redis_cluster_store.h). Private to backends/redis_cluster_*.
//
// Refreshes run in the background, one at a time: at start(), every refresh_interval, and when a
// call asks for one (no sooner than kMinRefreshGap after the previous one while a map is known;
// requests made while one runs or waits are served by one more run). A refresh asks the known
// masters, then the seeds, for CLUSTER SLOTS and installs the first map that serves at least one
// slot; pools of nodes that are no longer masters are closed, and every master's pool is opened
// ahead of its first call.
//
// A node's fences (redis_fences.h) belong to the node, not to its address: a master that comes
// back under another address (its announced IP or port changed) is the same redis-server, which
// may still hold a command sent to the old address, so its new pool puts the old pool's fences
// in front of its first requests. Nodes are told apart by the IDs in CLUSTER SLOTS. A node found
// at an address that has a pool already takes that pool's fences, with its own added to them
// (adoptPoolFences).
//
// Thread-safety: every method may be called from any thread; the state is guarded by mu_, and no
// lock is held while a coroutine is started or awaited. Lifetime: create with std::make_shared;
// the periodic timer and each operation hold a shared_ptr, so the client lives until close() has
// stopped them and they have returned. `io` must outlive it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis_cluster_slots.h"
#include "backends/redis_cluster_store.h"
#include "backends/redis_pool.h"
#include "common/status.h"
#include "resp/value.h"

namespace lockshift::redis {

class ClusterClient : public std::enable_shared_from_this<ClusterClient> {
 public:
  // How often a waiting call looks again (for a first map, a node's first connection).
  static constexpr std::chrono::milliseconds kPollInterval{5};
  static constexpr std::chrono::milliseconds kMinRefreshGap{100};
  static constexpr std::chrono::milliseconds kRetryBackoffInitial{10};
  static constexpr std::chrono::milliseconds kRetryBackoffMax{100};
  // Nodes no longer masters whose open fences are kept, in case they come back under another
  // address.
  static constexpr size_t kMaxDepartedNodes = 64;

  // The fences of nodes by node ID (see above). Forgets those of nodes that are not masters in
  // `map` once none of theirs is left open, and all of theirs when more than kMaxDepartedNodes
  // such nodes have some open.
  using NodeFences = std::map<std::string, std::shared_ptr<Fences>>;
  static void pruneNodeFences(NodeFences& fences, const SlotMap& map);
  // Node `id` is at the address of a pool with `pool_fences`, which become the node's. They take
  // in the node's own open fences first (it moved here from an address whose pool had them, and
  // which may be closed now). The pool's fences are its own when it was opened before its node's
  // ID was known (a seed, a MOVED target), or those of the node that held the address until now;
  // that node keeps a copy of them. No two nodes share one list: a kill run on one server says
  // nothing of a client of another, yet it takes the fence off the list.
  static void adoptPoolFences(NodeFences& fences, const std::string& id,
                              const std::shared_ptr<Fences>& pool_fences);

  ClusterClient(asio::io_context& io, RedisClusterOptions options);
  ClusterClient(const ClusterClient&) = delete;
  ClusterClient& operator=(const ClusterClient&) = delete;

  // Starts the first refresh and the periodic timer. Call once.
  void start();
  // Stops refreshing and closes every pool; later calls fail with kUnavailable.
  void close();

  const RedisClusterOptions& options() const { return options_; }
  // The first node whose pool cannot fence, as "redis <address>: <warning>"; "" when none.
  std::string fencingWarning() const;

  using Self = std::shared_ptr<ClusterClient>;
  using Deadline = std::chrono::steady_clock::time_point;
  Deadline deadlineFromNow() const {
    return std::chrono::steady_clock::now() + options_.command_timeout;
  }

  // Runs a single-key command on the master of `slot`, following redirects. Error replies other
  // than redirects and CLUSTERDOWN/TRYAGAIN come back as values, for the reply readers.
  static asio::awaitable<Result<resp::Value>> call(Self self, uint16_t slot,
                                                   std::vector<std::string> args);
  // The same for arguments the caller holds (encoded before it returns; no copies).
  static asio::awaitable<Result<resp::Value>> call(Self self, uint16_t slot,
                                                   std::initializer_list<std::string_view> args);
  // The same for one command already encoded (resp::encodeCommand).
  static asio::awaitable<Result<resp::Value>> callWire(Self self, uint16_t slot, std::string wire);
  // Runs a command on the node at `address` as it is (SCAN, DBSIZE, PING: no key, no redirect).
  static asio::awaitable<Result<resp::Value>> callNode(Self self, std::string address,
                                                       std::vector<std::string> args);
  // The slot map; until the first one is known, waits for it until `deadline`.
  static asio::awaitable<Result<std::shared_ptr<const SlotMap>>> slotMap(Self self,
                                                                         Deadline deadline);
  // Asks the cluster for its slot map now, installs it and returns it.
  static asio::awaitable<Result<std::shared_ptr<const SlotMap>>> refreshNow(Self self);

 private:
  // ---- redis_cluster_client.cc: topology ----
  // The pool of `address`, opened on first use; nullptr once closed.
  std::shared_ptr<RedisPool> poolFor(const std::string& address);
  std::shared_ptr<RedisPool> poolForLocked(const std::string& address);  // REQUIRES mu_
  // REQUIRES mu_. The fences of the node at `address` in map_, shared with its pools at other
  // addresses; nullptr when map_ gives no node ID for it (the pool then has fences of its own).
  std::shared_ptr<Fences> nodeFencesLocked(const std::string& address);
  // Schedules a background refresh (coalesced and rate-limited, see above).
  void refreshSoon();
  // REQUIRES mu_. Marks a refresh as running; true when the caller must spawn it (after
  // releasing mu_: co_spawn may run the coroutine at once).
  bool claimRefreshLocked();
  void spawnRefresh(std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void armTimerLocked();  // REQUIRES mu_
  void onTimer(const boost::system::error_code& ec);
  // Refreshes after `delay`, and once more (kMinRefreshGap later) when asked again meanwhile.
  static asio::awaitable<void> backgroundRefresh(Self self, std::chrono::milliseconds delay);
  // Asks the known masters, then the seeds, for CLUSTER SLOTS; the first usable map.
  static asio::awaitable<Result<SlotMap>> fetchMap(Self self);
  void install(SlotMap map);
  // A MOVED reply: `slot` is served by `address` from now on.
  void applyMoved(uint16_t slot, const std::string& address);
  Status closedStatus() const { return Status::unavailable("redis cluster: store closed"); }

  // ---- redis_cluster_call.cc: sending ----
  // pool->send(), waiting while the pool makes its first connection, until `deadline`.
  static asio::awaitable<PoolReply> sendTo(std::shared_ptr<RedisPool> pool, std::string wire,
                                           size_t discard_replies, Deadline deadline);
  static asio::awaitable<void> sleepFor(std::chrono::milliseconds duration);

  asio::io_context& io_;
  const RedisClusterOptions options_;

  mutable std::mutex mu_;
  bool closed_ = false;                                      // GUARDED_BY(mu_)
  std::shared_ptr<const SlotMap> map_;                       // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<RedisPool>> pools_;  // GUARDED_BY(mu_), by address
  // GUARDED_BY(mu_): the fences of every node seen as a master, by node ID.
  NodeFences fences_by_node_;
  bool refreshing_ = false;                                  // GUARDED_BY(mu_)
  bool refresh_again_ = false;                               // GUARDED_BY(mu_)
  uint64_t refreshes_done_ = 0;                              // GUARDED_BY(mu_)
  std::string refresh_error_;  // GUARDED_BY(mu_): why the last refresh failed, or empty
  std::chrono::steady_clock::time_point last_refresh_;  // GUARDED_BY(mu_)
  asio::steady_timer timer_;                            // GUARDED_BY(mu_): periodic refresh
};

}  // namespace lockshift::redis
