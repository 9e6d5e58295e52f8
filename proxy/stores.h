#pragma once
// Opening what a config names: the two stores and the migration's initial control state. Shared
// by the lockshift binary and `lockshiftctl diff`, which reads the same config offline.
//
// Thread-safety: free functions without shared state. Lifetime: a Redis store posts to `io`,
// which must outlive it.

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "backends/lock_store.h"
#include "backends/redis_cluster_store.h"
#include "backends/redis_store.h"
#include "common/files.h"
#include "common/status.h"
#include "proxy/config.h"
#include "router/control_state.h"

namespace lockshift {

// What this version can run; the config loader accepts more (for features still to come).
// redis-cluster is an enhanced store only: Atlantis's own client never talks to a cluster.
Status checkSupported(const Config& config);

struct OpenedStore {
  std::unique_ptr<LockStore> store;
  RedisStore* redis = nullptr;  // set for a Redis store, to close its connections at shutdown
  RedisClusterStore* redis_cluster = nullptr;  // set for a Redis Cluster store, likewise
};

// Opens one store of the config. `role` is "legacy" or "enhanced": it names the section in errors
// and the password environment variable ($LOCKSHIFT_LEGACY_PASSWORD, $LOCKSHIFT_ENHANCED_PASSWORD)
// used when the section has no password_file. A Redis store keeps a connection pool on `io` and
// on each of `more_loops` (RedisStore::create); the others complete on their caller's executor
// from any loop.
Result<OpenedStore> openStore(const StoreConfig& config, const std::string& role, int databases,
                              boost::asio::io_context& io,
                              const std::vector<boost::asio::io_context*>& more_loops = {});

// The control state the config seeds a fresh state directory with.
ControlState initialState(const MigrationConfig& migration);

}  // namespace lockshift
