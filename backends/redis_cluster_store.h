#pragma once
// RedisClusterStore: a LockStore on a Redis Cluster, for the enhanced store (never the legacy
// one: Atlantis's own client talks to a single Redis). Keys and values are stored as RedisStore
// stores them, one Redis key per lock key, so the commands, scripts and reply readers are
// RedisStore's (redis_commands.h, redis_scripts.h) and the transport is its connection pool
// (redis_pool.h), one pool per master.
//
// Routing: a key's slot is CRC16(key or its {hash tag}) mod 16384, as Redis computes it, over
// the key as written to Redis (key_prefix included: a prefix with a {hash tag} puts every key in
// one slot). The slot map comes from CLUSTER SLOTS, asked of a known master or else of a seed
// node, at start, every refresh_interval, and soon after any error that may mean the topology
// moved (a MOVED reply, a node that cannot be reached, CLUSTERDOWN). Each call goes to its
// slot's master and follows at most max_redirects redirects:
//   -MOVED slot node   the map takes the new owner at once, a full refresh is scheduled, the
//                      command is sent again to that node;
//   -ASK slot node     ASKING and the command go to that node together, once (the map keeps the
//                      old owner: the slot is being migrated);
//   -CLUSTERDOWN, -TRYAGAIN   retried with a short backoff (10 ms doubling to 100 ms) until
//                      command_timeout after the call began, then kUnavailable
//                      "redis cluster is down: ...".
// A redirect or CLUSTERDOWN reply means the command did not run, so these retries are safe. A
// node that cannot be reached, or does not answer within command_timeout, fails the call at once
// (kUnavailable / kTimeout, naming the node and slot); it is not retried, since the command may
// have run. While a node's pool makes its first connection, calls wait for it (within the same
// deadline) instead of failing. Each attempt is bounded by command_timeout, and no new attempt
// starts after the deadline, so a call that keeps meeting new nodes can take up to about twice
// command_timeout; one the cluster answers takes at most command_timeout plus one backoff step.
//
// Operations: get, put (the same Lua script as RedisStore: one key, so one slot; EVALSHA with the
// EVAL fallback after NOSCRIPT, on whichever node serves the slot), deleteIfOwnedByPull
// (Atlantis's script), del (one DEL per slot, one slot after another: a multi-slot DEL is not
// atomic, as a multi-key DEL is not in any Redis Cluster client), count (the sum of DBSIZE over the
// masters; with a key_prefix, the distinct keys with that prefix on each master, by SCAN),
// ping (every master answers PING and every slot has a master), scan (below).
//
// Scans walk the masters in the order of their sorted addresses, one master's SCAN after the
// other; the cursor holds the master's index, its SCAN cursor and 13 bits of the slot map's
// fingerprint (layout in redis_cluster_slots.h, bit 63 always 0). Every key present for the whole
// scan is returned while the slot map stays the same; a key may come twice only as Redis's own
// SCAN repeats it. If the map changes between two pages (slots moved to another master, a
// failover), a key could have moved from a master not yet scanned to one already scanned, so the
// scan fails with kUnavailable "redis cluster: the slot map changed during the scan ... start
// the scan again" rather than silently miss it. The map is fetched afresh for the first page and
// again before the last page is answered, so a change that no MOVED or periodic refresh has
// shown yet is caught too (each such fetch is one CLUSTER SLOTS). Limits: keys
// moved by a migration still in progress (between SETSLOT MIGRATING and SETSLOT NODE, before the
// map changes) can be missed or returned twice, and a changed map has a 1/8192 chance of an equal
// fingerprint.
//
// Thread-safety: every method may be called from any thread; completions run on the caller's
// executor. Lifetime: `io` must be run by the caller's threads and outlive the store; the store
// must outlive returned awaitables (an operation still running after close() fails with
// kUnavailable and touches nothing freed).

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backends/lock_store.h"

namespace lockshift {

struct RedisClusterOptions {
  // Seed nodes, "host:port": asked for the slot map when no known master answers. Any node of
  // the cluster will do; more than one keeps the store starting while one is down.
  std::vector<std::string> addresses;
  std::string username;    // empty: AUTH password (the default user)
  std::string password;    // empty: no AUTH. The same on every node.
  std::string password_file;  // read at every connection attempt, as in RedisOptions
  std::string key_prefix;  // prepended to every key, as in RedisOptions
  bool records = false;    // keep enhanced records, as in RedisOptions
  std::chrono::milliseconds connect_timeout{1000};
  // The whole of one call, redirects and CLUSTERDOWN retries included (see above).
  std::chrono::milliseconds command_timeout{1000};
  int pool_size = 8;  // connections per master
  // Reconnect backoff of each connection, as in RedisOptions.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
  // Time between scheduled slot map refreshes; 0 turns them off. Shorter notices a resharding
  // or failover before the first MOVED or failed call does, at the cost of one CLUSTER SLOTS per
  // interval.
  std::chrono::milliseconds refresh_interval{10000};
  // Redirects (MOVED, ASK) one call follows before it fails; Redis's own clients use 5 or so.
  int max_redirects = 5;
};

class RedisClusterStore final : public LockStore {
 public:
  // Creates the store and starts asking the seeds for the slot map in the background on `io`.
  // Does not wait: a call made before the first map arrives waits for it (up to command_timeout)
  // and fails with kUnavailable naming every seed's error if none answers. Use ping() to wait
  // for readiness. Bad seed addresses are reported by the calls, not here.
  static std::unique_ptr<RedisClusterStore> create(asio::io_context& io,
                                                   RedisClusterOptions options);
  ~RedisClusterStore() override;

  std::string name() const override { return "redis-cluster"; }
  // A cluster has one database; calls must pass db 0 (anything else is kInvalidArgument).
  int databases() const override { return 1; }

  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override;
  asio::awaitable<Result<PutResult>> put(PutRequest request) override;
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override;
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      int db, std::string key, std::string pull_num) override;
  asio::awaitable<Result<ScanPage>> scan(ScanRequest request) override;
  asio::awaitable<Result<int64_t>> count(int db) override;
  asio::awaitable<Status> ping() override;
  bool hasRecords() const override;
  asio::awaitable<Result<std::optional<LockRecord>>> getRecord(int db, std::string key) override;
  asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(int db, std::string repo) override;
  asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(int db, std::string repo,
                                                               int64_t pull_num) override;
  asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(int db,
                                                                  std::string prefix) override;
  std::string warning() const override;

  // Closes every connection and stops the refreshes; later calls fail with kUnavailable.
  void close();

 private:
  class Impl;  // redis_cluster_store.cc
  explicit RedisClusterStore(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace lockshift
