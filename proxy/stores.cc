#include "proxy/stores.h"

#include <cctype>
#include <cstdlib>

#include "backends/lmdb_store.h"

namespace lockshift {

namespace asio = boost::asio;

Status checkSupported(const Config& config) {
  if (config.legacy.type == "redis-cluster") {
    return Status::invalidArgument(config.source +
                                   ": [legacy] type 'redis-cluster' is not supported: Atlantis's own client talks "
                                   "to a single Redis, so the legacy store must be one (a cluster can be the "
                                   "[enhanced] store)");
  }
  return Status::ok();
}

// A Redis store's password: password_file, else $LOCKSHIFT_<ROLE>_PASSWORD, else none.
namespace {

Result<std::string> storePassword(const StoreConfig& c, const std::string& role) {
  if (!c.password_file.empty()) return readSecretFile(c.password_file);
  std::string var = "LOCKSHIFT_" + role + "_PASSWORD";
  for (auto& ch : var) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  const char* env = std::getenv(var.c_str());
  return std::string(env != nullptr ? env : "");
}

// The settings a single Redis and a cluster share.
template <typename Options>
void setClientOptions(const StoreConfig& c, std::string password, bool records, Options& o) {
  o.records = records;
  o.username = c.username;
  o.password = std::move(password);
  o.password_file = c.password_file;  // read again at every connection attempt: rotation needs no restart
  o.key_prefix = c.key_prefix;
  o.connect_timeout = c.connect_timeout;
  o.command_timeout = c.command_timeout;
  o.pool_size = c.pool_size;
}

}  // namespace

Result<OpenedStore> openStore(const StoreConfig& c, const std::string& role, int databases, asio::io_context& io,
                              const std::vector<asio::io_context*>& more_loops) {
  OpenedStore out;
  // The enhanced store keeps enhanced records (DESIGN §3); the legacy store keeps Atlantis's
  // keys as they are, so Atlantis can be pointed back at it.
  const bool records = role == "enhanced";
  if (c.type == "lmdb") {
    LmdbOptions o;
    o.path = c.path;
    o.map_size = c.map_size;
    o.sync = c.sync;
    o.databases = databases;
    o.records = records;
    auto store = LmdbStore::open(o);
    if (!store) return Status(store.status().code(), "[" + role + "] " + store.status().message());
    out.store = std::move(store.value());
    return out;
  }
  auto password = storePassword(c, role);
  if (!password) return Status::invalidArgument("[" + role + "] " + password.status().message());
  if (c.type == "redis-cluster") {
    if (role != "enhanced") return Status::invalidArgument("[" + role + "] type 'redis-cluster' is enhanced only");
    RedisClusterOptions o;
    o.addresses = c.addresses;
    setClientOptions(c, std::move(password.value()), records, o);
    auto cluster = RedisClusterStore::create(io, std::move(o));
    out.redis_cluster = cluster.get();
    out.store = std::move(cluster);
    return out;
  }
  RedisOptions o;
  o.address = c.address;
  o.db = c.db;
  setClientOptions(c, std::move(password.value()), records, o);
  auto redis = RedisStore::create(io, std::move(o), more_loops);
  out.redis = redis.get();
  out.store = std::move(redis);
  return out;
}

ControlState initialState(const MigrationConfig& m) {
  ControlState s;
  s.phase = parsePhase(m.phase).value_or(Phase::kLegacyOnly);
  s.traffic_split = m.traffic_split;
  for (const auto& r : m.rules) s.rules.push_back({r.match, parseRole(r.owner).value_or(StoreRole::kLegacy)});
  return s;
}

}  // namespace lockshift
