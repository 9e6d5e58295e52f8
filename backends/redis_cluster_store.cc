#include "backends/redis_cluster_store.h"

#include <array>
#include <map>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "backends/redis_cluster_client.h"
#include "backends/redis_cluster_slots.h"
#include "backends/redis_commands.h"
#include "backends/redis_records.h"
#include "backends/redis_scripts.h"
#include "proxy/atlantis_script.h"

namespace lockshift {

using redis::ClusterClient;
using redis::ClusterCursor;
using redis::SlotMap;

// The LockStore operations, as static coroutines holding the client, so it outlives every
// operation in flight. Awaitables are named before co_await (GCC 12, see redis_store.cc).
class RedisClusterStore::Impl {
 public:
  using Client = std::shared_ptr<ClusterClient>;
  // SCAN COUNT used by count() when it has to scan for the key prefix.
  static constexpr size_t kCountScanBatch = 1000;
  // The prefix of messages about replies from the slot's master, whichever node that was.
  static constexpr std::string_view kWhere = "redis cluster";

  explicit Impl(Client c) : client(std::move(c)) {
    if (client->options().records) {
      records = std::make_shared<redis::Records>(
          client->options().key_prefix, std::string(kWhere),
          [c = client](const std::string& key, std::string wire) {
            return ClusterClient::callWire(c, redis::keySlot(key), std::move(wire));
          },
          /*single_node=*/false);
    }
  }

  static asio::awaitable<Result<std::optional<std::string>>> get(Client c, int db, std::string key);
  static asio::awaitable<Result<PutResult>> put(Client c, PutRequest request);
  static asio::awaitable<Result<int64_t>> del(Client c, int db, std::vector<std::string> keys);
  static asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      Client c, int db, std::string key, std::string pull_num);
  static asio::awaitable<Result<ScanPage>> scan(Client c, ScanRequest request);
  static asio::awaitable<Result<int64_t>> count(Client c, int db);
  static asio::awaitable<Status> ping(Client c);

  const Client client;
  // Set when the store keeps enhanced records; every key operation then goes through it.
  std::shared_ptr<const redis::Records> records;

 private:
  // EVALSHA, and EVAL when the node has lost the script (NOSCRIPT); `key` is the wire key.
  static asio::awaitable<Result<resp::Value>> callScript(Client c, std::string_view body,
                                                         std::string_view sha, std::string key,
                                                         std::vector<std::string> args);
  static asio::awaitable<Result<int64_t>> countPrefixed(Client c, std::string address);
  static std::string wireKey(const Client& c, std::string_view key) {
    return c->options().key_prefix + std::string(key);
  }
  static Status dbOutOfRange() { return Status::invalidArgument("DB index is out of range"); }
  static Status mapChanged() {
    return Status::unavailable(
        "redis cluster: the slot map changed during the scan (slots moved or a master failed "
        "over), so keys may have moved between masters; start the scan again");
  }
};

asio::awaitable<Result<resp::Value>> RedisClusterStore::Impl::callScript(
    Client c, std::string_view body, std::string_view sha, std::string key,
    std::vector<std::string> args) {
  const uint16_t slot = redis::keySlot(key);
  const std::array<std::string_view, 1> keys = {key};
  auto first = ClusterClient::callWire(c, slot, redis::scriptWire("EVALSHA", sha, keys, args));
  Result<resp::Value> reply = co_await std::move(first);
  if (!redis::isNoScript(reply)) co_return reply;
  auto again = ClusterClient::callWire(c, slot, redis::scriptWire("EVAL", body, keys, args));
  co_return co_await std::move(again);
}

asio::awaitable<Result<std::optional<std::string>>> RedisClusterStore::Impl::get(Client c, int db,
                                                                                 std::string key) {
  if (db != 0) co_return dbOutOfRange();
  std::string wire_key = wireKey(c, key);
  const uint16_t slot = redis::keySlot(wire_key);
  auto op = ClusterClient::call(c, slot, {"GET", std::move(wire_key)});
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readOptionalString(std::move(reply), kWhere);
}

asio::awaitable<Result<PutResult>> RedisClusterStore::Impl::put(Client c, PutRequest request) {
  if (request.db != 0) co_return dbOutOfRange();
  const redis::PutForm form = redis::putForm(request);
  std::string key = wireKey(c, request.key);
  const uint16_t slot = redis::keySlot(key);
  auto op = form == redis::PutForm::kScript
                ? callScript(c, redis::kPutScript, redis::putScriptSha1(), std::move(key),
                             redis::putScriptArgs(request))
                : ClusterClient::callWire(c, slot, redis::setWire(request, key));
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readPut(form, request.return_previous, reply, kWhere);
}

// One DEL per slot, since a cluster refuses a DEL whose keys span slots (CROSSSLOT).
asio::awaitable<Result<int64_t>> RedisClusterStore::Impl::del(Client c, int db,
                                                              std::vector<std::string> keys) {
  if (db != 0) co_return dbOutOfRange();
  std::map<uint16_t, std::vector<std::string>> by_slot;
  for (const std::string& key : keys) {
    std::string wire_key = wireKey(c, key);
    std::vector<std::string>& command = by_slot[redis::keySlot(wire_key)];
    if (command.empty()) command.push_back("DEL");
    command.push_back(std::move(wire_key));
  }
  int64_t deleted = 0;
  for (auto& [slot, command] : by_slot) {
    auto op = ClusterClient::call(c, slot, std::move(command));
    Result<resp::Value> reply = co_await std::move(op);
    Result<int64_t> count = redis::readInteger(reply, kWhere);
    if (!count.isOk()) co_return count.status();
    deleted += *count;
  }
  co_return deleted;
}

asio::awaitable<Result<std::optional<std::string>>> RedisClusterStore::Impl::deleteIfOwnedByPull(
    Client c, int db, std::string key, std::string pull_num) {
  if (db != 0) co_return dbOutOfRange();
  auto op = callScript(c, kAtlantisUnlockScript, kAtlantisUnlockScriptSha1, wireKey(c, key),
                       {std::move(pull_num)});
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readUnlock(reply, kWhere);
}

// One SCAN on one master per call (see the header for the cursor and topology changes).
asio::awaitable<Result<ScanPage>> RedisClusterStore::Impl::scan(Client c, ScanRequest request) {
  if (request.db != 0) co_return dbOutOfRange();
  if (request.cursor >> 63 != 0) co_return Status::invalidArgument("invalid cursor");
  // A scan starts on a fresh map, so a change the client has not noticed yet does not count as
  // a change during the scan; later pages compare with the map as the client knows it.
  auto lookup = request.cursor == 0 ? ClusterClient::refreshNow(c)
                                    : ClusterClient::slotMap(c, c->deadlineFromNow());
  Result<std::shared_ptr<const SlotMap>> map = co_await std::move(lookup);
  if (!map.isOk()) co_return map.status();
  const std::vector<std::string>& masters = (*map)->masters;
  if (masters.size() > ClusterCursor::kMaxNodes) {
    co_return Status::unavailable("redis cluster: " + std::to_string(masters.size()) +
                                  " masters; a scan walks at most " +
                                  std::to_string(ClusterCursor::kMaxNodes));
  }
  const uint32_t fingerprint = ClusterCursor::fingerprintBits((*map)->fingerprint);
  ClusterCursor cursor = request.cursor == 0 ? ClusterCursor{0, 0, fingerprint}
                                             : ClusterCursor::decode(request.cursor);
  if (cursor.fingerprint != fingerprint) co_return mapChanged();
  if (cursor.node >= masters.size()) co_return Status::invalidArgument("invalid cursor");

  const std::string& prefix = c->options().key_prefix;
  const bool records = c->options().records;
  const std::string address = masters[cursor.node];
  const std::string pattern = records ? redis::recordScanPattern(prefix, request.match)
                                      : redis::scanPattern(prefix, request.match);
  auto op = ClusterClient::callNode(
      c, address, redis::scanCommand(cursor.node_cursor, request.count, pattern));
  Result<resp::Value> reply = co_await std::move(op);
  const std::string where = "redis cluster node " + address;
  Result<ScanPage> page = records ? redis::readRecordScan(reply, prefix, request.match, where)
                                  : redis::readScan(reply, prefix, where);
  if (!page.isOk()) co_return page.status();
  if (page->next_cursor > ClusterCursor::kMaxNodeCursor) {
    co_return Status::internal("redis cluster: " + address + " returned SCAN cursor " +
                               std::to_string(page->next_cursor) + ", which does not fit in the " +
                               std::to_string(ClusterCursor::kNodeCursorBits) +
                               " bits the cluster cursor keeps for it");
  }
  if (page->next_cursor != 0) {
    cursor.node_cursor = page->next_cursor;
    page->next_cursor = cursor.encode();
  } else if (cursor.node + 1 < masters.size()) {
    cursor = ClusterCursor{0, cursor.node + 1, fingerprint};
    page->next_cursor = cursor.encode();
  } else {
    // The last page: confirm with a fresh map that nothing moved while the scan ran.
    auto refresh = ClusterClient::refreshNow(c);
    Result<std::shared_ptr<const SlotMap>> fresh = co_await std::move(refresh);
    if (!fresh.isOk()) co_return fresh.status();
    if (ClusterCursor::fingerprintBits((*fresh)->fingerprint) != fingerprint)
      co_return mapChanged();
  }
  co_return page;
}

// The distinct keys with the prefix on one master (SCAN may return a key twice).
asio::awaitable<Result<int64_t>> RedisClusterStore::Impl::countPrefixed(Client c,
                                                                        std::string address) {
  const std::string& prefix = c->options().key_prefix;
  const bool records = c->options().records;
  const std::string pattern =
      records ? redis::recordScanPattern(prefix, "") : redis::scanPattern(prefix, "");
  const std::string where = "redis cluster node " + address;
  std::unordered_set<std::string> keys;
  uint64_t cursor = 0;
  do {
    auto op =
        ClusterClient::callNode(c, address, redis::scanCommand(cursor, kCountScanBatch, pattern));
    Result<resp::Value> reply = co_await std::move(op);
    Result<ScanPage> page = records ? redis::readRecordScan(reply, prefix, "", where)
                                    : redis::readScan(reply, prefix, where);
    if (!page.isOk()) co_return page.status();
    for (std::string& key : page->keys) keys.insert(std::move(key));
    cursor = page->next_cursor;
  } while (cursor != 0);
  co_return static_cast<int64_t>(keys.size());
}

// DBSIZE counts every key of a master; with a key prefix or records only a scan can count.
asio::awaitable<Result<int64_t>> RedisClusterStore::Impl::count(Client c, int db) {
  if (db != 0) co_return dbOutOfRange();
  auto lookup = ClusterClient::slotMap(c, c->deadlineFromNow());
  Result<std::shared_ptr<const SlotMap>> map = co_await std::move(lookup);
  if (!map.isOk()) co_return map.status();
  int64_t total = 0;
  for (const std::string& address : (*map)->masters) {
    Result<int64_t> count = Status::internal("not counted");
    if (c->options().key_prefix.empty() && !c->options().records) {
      auto op = ClusterClient::callNode(c, address, {"DBSIZE"});
      Result<resp::Value> reply = co_await std::move(op);
      count = redis::readInteger(reply, "redis cluster node " + address);
    } else {
      auto op = countPrefixed(c, address);
      count = co_await std::move(op);
    }
    if (!count.isOk()) co_return count.status();
    total += *count;
  }
  co_return total;
}

asio::awaitable<Status> RedisClusterStore::Impl::ping(Client c) {
  auto lookup = ClusterClient::slotMap(c, c->deadlineFromNow());
  Result<std::shared_ptr<const SlotMap>> map = co_await std::move(lookup);
  if (!map.isOk()) co_return map.status();
  if ((*map)->unassigned != 0) {
    co_return Status::unavailable("redis cluster is down: " + std::to_string((*map)->unassigned) +
                                  " of " + std::to_string(redis::kSlotCount) +
                                  " slots have no master");
  }
  for (const std::string& address : (*map)->masters) {
    auto op = ClusterClient::callNode(c, address, {"PING"});
    Result<resp::Value> reply = co_await std::move(op);
    if (Status status = redis::readPong(reply, "redis cluster node " + address); !status) {
      co_return status;
    }
  }
  co_return Status::ok();
}

// ---- RedisClusterStore ----

std::unique_ptr<RedisClusterStore> RedisClusterStore::create(asio::io_context& io,
                                                             RedisClusterOptions options) {
  auto client = std::make_shared<ClusterClient>(io, std::move(options));
  client->start();
  return std::unique_ptr<RedisClusterStore>(
      new RedisClusterStore(std::make_shared<Impl>(std::move(client))));
}

RedisClusterStore::RedisClusterStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisClusterStore::~RedisClusterStore() { impl_->client->close(); }

void RedisClusterStore::close() { impl_->client->close(); }

namespace {
// A record operation's answer when the db is not 0 (a cluster has one keyspace).
template <typename T>
asio::awaitable<Result<T>> clusterDbOutOfRange() {
  co_return Status::invalidArgument("DB index is out of range");
}
}  // namespace

asio::awaitable<Result<std::optional<std::string>>> RedisClusterStore::get(int db,
                                                                           std::string key) {
  if (impl_->records && db == 0) return redis::Records::get(impl_->records, std::move(key));
  return Impl::get(impl_->client, db, std::move(key));
}

asio::awaitable<Result<PutResult>> RedisClusterStore::put(PutRequest request) {
  if (impl_->records && request.db == 0) {
    return redis::Records::put(impl_->records, std::move(request));
  }
  return Impl::put(impl_->client, std::move(request));
}

asio::awaitable<Result<int64_t>> RedisClusterStore::del(int db, std::vector<std::string> keys) {
  if (impl_->records && db == 0) return redis::Records::del(impl_->records, std::move(keys));
  return Impl::del(impl_->client, db, std::move(keys));
}

asio::awaitable<Result<std::optional<std::string>>> RedisClusterStore::deleteIfOwnedByPull(
    int db, std::string key, std::string pull_num) {
  if (impl_->records && db == 0) {
    return redis::Records::deleteIfOwnedByPull(impl_->records, std::move(key),
                                               std::move(pull_num));
  }
  return Impl::deleteIfOwnedByPull(impl_->client, db, std::move(key), std::move(pull_num));
}

bool RedisClusterStore::hasRecords() const { return impl_->records != nullptr; }

asio::awaitable<Result<std::optional<LockRecord>>> RedisClusterStore::getRecord(int db,
                                                                               std::string key) {
  if (!impl_->records) return LockStore::getRecord(db, std::move(key));
  if (db != 0) return clusterDbOutOfRange<std::optional<LockRecord>>();
  return redis::Records::getRecord(impl_->records, std::move(key));
}

asio::awaitable<Result<std::vector<LockRecord>>> RedisClusterStore::locksByRepo(int db,
                                                                               std::string repo) {
  if (!impl_->records) return LockStore::locksByRepo(db, std::move(repo));
  if (db != 0) return clusterDbOutOfRange<std::vector<LockRecord>>();
  return redis::Records::locksByRepo(impl_->records, std::move(repo));
}

asio::awaitable<Result<std::vector<LockRecord>>> RedisClusterStore::locksByPull(
    int db, std::string repo, int64_t pull_num) {
  if (!impl_->records) return LockStore::locksByPull(db, std::move(repo), pull_num);
  if (db != 0) return clusterDbOutOfRange<std::vector<LockRecord>>();
  return redis::Records::locksByPull(impl_->records, std::move(repo), pull_num);
}

asio::awaitable<Result<std::vector<std::string>>> RedisClusterStore::keysWithPrefix(
    int db, std::string prefix) {
  if (!impl_->records) return LockStore::keysWithPrefix(db, std::move(prefix));
  if (db != 0) return clusterDbOutOfRange<std::vector<std::string>>();
  auto scan_records = [client = impl_->client](uint64_t cursor) {
    return Impl::scan(client, redis::Records::namedKeysPage(cursor));
  };
  return redis::Records::keysWithPrefix(impl_->records, std::move(prefix), scan_records);
}

asio::awaitable<Result<ScanPage>> RedisClusterStore::scan(ScanRequest request) {
  return Impl::scan(impl_->client, std::move(request));
}

asio::awaitable<Result<int64_t>> RedisClusterStore::count(int db) {
  return Impl::count(impl_->client, db);
}

asio::awaitable<Status> RedisClusterStore::ping() { return Impl::ping(impl_->client); }

std::string RedisClusterStore::warning() const { return impl_->client->fencingWarning(); }

}  // namespace lockshift
