#include "backends/redis_store.h"

#include <array>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "backends/redis_commands.h"
#include "backends/redis_pool.h"
#include "backends/redis_records.h"
#include "backends/redis_scripts.h"
#include "common/event_loop.h"
#include "proxy/atlantis_script.h"

namespace lockshift {

// The LockStore operations on one pool. Each operation is a static coroutine holding a
// shared_ptr to the Impl, so the Impl (and its pool) outlives every operation in flight.
// Thread-safety: pools_ is fixed after construction, and each pool is thread-safe itself.
class RedisStore::Impl {
 public:
  // SCAN COUNT used by count() when it has to scan for the key prefix.
  static constexpr size_t kCountScanBatch = 1000;

  // One pool per event loop (common/event_loop.h): `loops` in loop order, loop 0 first.
  Impl(const std::vector<asio::io_context*>& loops, const RedisOptions& options) {
    // The pools reach one server: a connection of any of them that times out is fenced off from
    // the requests of all (redis_fences.h).
    auto fences = std::make_shared<redis::Fences>("redis " + options.address);
    for (asio::io_context* io : loops) {
      pools_.push_back(std::make_shared<redis::RedisPool>(*io, options, fences));
    }
    if (options.records) {
      records_ = std::make_shared<redis::Records>(
          prefix(), where(),
          [pools = pools_](const std::string&, std::string wire) {
            return poolOf(pools).callWire(std::move(wire));
          },
          /*single_node=*/true);
    }
  }
  // Set when the store keeps enhanced records; every operation then goes through it (get, put,
  // del and deleteIfOwnedByPull on db 0 are routed to it by RedisStore, the rest here).
  std::shared_ptr<const redis::Records> records_;
  void start() {
    for (auto& p : pools_) p->start();
  }
  void close() {
    for (auto& p : pools_) p->close();
  }
  // Every pool shares one Fences.
  std::string warning() const { return redis::fencingWarning(pools_.front()->fences()); }

  using Self = std::shared_ptr<Impl>;
  static asio::awaitable<Result<std::optional<std::string>>> get(Self self, int db,
                                                                 std::string key);
  static asio::awaitable<Result<PutResult>> put(Self self, PutRequest request);
  static asio::awaitable<Result<int64_t>> del(Self self, int db, std::vector<std::string> keys);
  static asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      Self self, int db, std::string key, std::string pull_num);
  static asio::awaitable<Result<ScanPage>> scan(Self self, ScanRequest request);
  static asio::awaitable<Result<int64_t>> count(Self self, int db);
  static asio::awaitable<Status> ping(Self self);

 private:
  // Sends one command through the pool; completes on the awaiting coroutine's executor.
  asio::awaitable<Result<resp::Value>> call(std::vector<std::string> args) {
    return pool().call(std::move(args));
  }
  // EVALSHA, and EVAL when the server has lost the script (NOSCRIPT).
  asio::awaitable<Result<resp::Value>> callScript(std::string_view body, std::string_view sha,
                                                  std::string key, std::vector<std::string> args);
  std::string wireKey(std::string_view key) const { return prefix() + std::string(key); }
  const std::string& prefix() const { return pools_.front()->options().key_prefix; }
  const std::string& where() const { return pools_.front()->where(); }
  // The calling thread's loop's pool: its replies come back on the thread that awaits them.
  static redis::RedisPool& poolOf(const std::vector<std::shared_ptr<redis::RedisPool>>& pools) {
    return *pools[pools.size() == 1 ? 0 : static_cast<size_t>(currentLoop()) % pools.size()];
  }
  redis::RedisPool& pool() const { return poolOf(pools_); }
  static Status dbOutOfRange() { return Status::invalidArgument("DB index is out of range"); }

  std::vector<std::shared_ptr<redis::RedisPool>> pools_;
};

// Awaitables are named before co_await: GCC 12 destroys a co_await operand's temporaries twice
// when they hold captures like RedisPool::send()'s.
asio::awaitable<Result<resp::Value>> RedisStore::Impl::callScript(std::string_view body,
                                                                  std::string_view sha,
                                                                  std::string key,
                                                                  std::vector<std::string> args) {
  const std::array<std::string_view, 1> keys = {key};
  auto first = pool().callWire(redis::scriptWire("EVALSHA", sha, keys, args));
  Result<resp::Value> reply = co_await std::move(first);
  if (!redis::isNoScript(reply)) co_return reply;
  auto again = pool().callWire(redis::scriptWire("EVAL", body, keys, args));
  co_return co_await std::move(again);
}

asio::awaitable<Result<std::optional<std::string>>> RedisStore::Impl::get(Self self, int db,
                                                                          std::string key) {
  if (db != 0) co_return dbOutOfRange();
  // GET is the hot path: encoded straight from the key, with no argument vector to build.
  std::string wire;
  if (self->prefix().empty()) {
    resp::encodeCommand({"GET", key}, wire);
  } else {
    resp::encodeCommand({"GET", self->wireKey(key)}, wire);
  }
  auto op = self->pool().send(std::move(wire));
  redis::PoolReply reply = co_await std::move(op);
  if (!reply.sent) {
    auto retry = self->pool().retryWhileStarting(std::move(reply));
    reply = co_await std::move(retry);
  }
  co_return redis::readOptionalString(std::move(reply.value), self->where());
}

asio::awaitable<Result<PutResult>> RedisStore::Impl::put(Self self, PutRequest request) {
  if (request.db != 0) co_return dbOutOfRange();
  const redis::PutForm form = redis::putForm(request);
  // The key as Redis has it, copied only when there is a prefix to add.
  const std::string prefixed = self->prefix().empty() ? std::string() : self->wireKey(request.key);
  const std::string_view key = self->prefix().empty() ? std::string_view(request.key) : prefixed;
  if (redis::isPlainAcquire(request)) {
    // Atlantis's TryLock almost always finds the key free, and SET NX takes a free key in one
    // plain command, several times cheaper for Redis than the script. Only a present key needs
    // the script to decide whether its holder is the requester; the script reads the key again,
    // so a key freed in between is simply taken by it.
    auto nx = self->pool().callWire(redis::setIfAbsentWire(request, key));
    Result<resp::Value> nx_reply = co_await std::move(nx);
    auto taken = redis::readSetIfAbsent(nx_reply, self->where());
    if (!taken) co_return taken.status();
    if (*taken) co_return PutResult{};
  }
  auto op = form == redis::PutForm::kScript
                ? self->callScript(redis::kPutScript, redis::putScriptSha1(), std::string(key),
                                   redis::putScriptArgs(request))
                : self->pool().callWire(redis::setWire(request, key));
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readPut(form, request.return_previous, reply, self->where());
}

asio::awaitable<Result<int64_t>> RedisStore::Impl::del(Self self, int db,
                                                       std::vector<std::string> keys) {
  if (db != 0) co_return dbOutOfRange();
  if (keys.empty()) co_return int64_t{0};
  // Encoded straight from the keys, as GET is: every Unlock of Atlantis ends in a DEL.
  std::string wire;
  if (self->prefix().empty()) {
    resp::encodeCommand("DEL", keys, wire);
  } else {
    std::vector<std::string> prefixed;
    prefixed.reserve(keys.size());
    for (const std::string& key : keys) prefixed.push_back(self->wireKey(key));
    resp::encodeCommand("DEL", prefixed, wire);
  }
  auto op = self->pool().callWire(std::move(wire));
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readInteger(reply, self->where());
}

asio::awaitable<Result<std::optional<std::string>>> RedisStore::Impl::deleteIfOwnedByPull(
    Self self, int db, std::string key, std::string pull_num) {
  if (db != 0) co_return dbOutOfRange();
  auto op = self->callScript(kAtlantisUnlockScript, kAtlantisUnlockScriptSha1, self->wireKey(key),
                             {std::move(pull_num)});
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readUnlock(reply, self->where());
}

asio::awaitable<Result<ScanPage>> RedisStore::Impl::scan(Self self, ScanRequest request) {
  if (request.db != 0) co_return dbOutOfRange();
  if (self->records_) {
    std::string pattern = redis::recordScanPattern(self->prefix(), request.match);
    auto op = self->call(redis::scanCommand(request.cursor, request.count, pattern));
    Result<resp::Value> reply = co_await std::move(op);
    co_return redis::readRecordScan(reply, self->prefix(), request.match, self->where());
  }
  std::string pattern = redis::scanPattern(self->prefix(), request.match);
  auto op = self->call(redis::scanCommand(request.cursor, request.count, pattern));
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readScan(reply, self->prefix(), self->where());
}

// DBSIZE counts the whole database; with a key prefix or records only a scan can count (a key
// that SCAN returns twice is counted once).
asio::awaitable<Result<int64_t>> RedisStore::Impl::count(Self self, int db) {
  if (db != 0) co_return dbOutOfRange();
  if (self->prefix().empty() && !self->records_) {
    auto op = self->call({"DBSIZE"});
    Result<resp::Value> reply = co_await std::move(op);
    co_return redis::readInteger(reply, self->where());
  }
  const std::string pattern = self->records_ ? redis::recordScanPattern(self->prefix(), "")
                                             : redis::scanPattern(self->prefix(), "");
  std::unordered_set<std::string> keys;
  uint64_t cursor = 0;
  do {
    auto op = self->call(redis::scanCommand(cursor, kCountScanBatch, pattern));
    Result<resp::Value> reply = co_await std::move(op);
    Result<ScanPage> page = self->records_
                                ? redis::readRecordScan(reply, self->prefix(), "", self->where())
                                : redis::readScan(reply, self->prefix(), self->where());
    if (!page.isOk()) co_return page.status();
    for (std::string& key : page->keys) keys.insert(std::move(key));
    cursor = page->next_cursor;
  } while (cursor != 0);
  co_return static_cast<int64_t>(keys.size());
}

asio::awaitable<Status> RedisStore::Impl::ping(Self self) {
  auto op = self->call({"PING"});
  Result<resp::Value> reply = co_await std::move(op);
  co_return redis::readPong(reply, self->where());
}

// ---- RedisStore ----

std::unique_ptr<RedisStore> RedisStore::create(asio::io_context& io, RedisOptions options,
                                               const std::vector<asio::io_context*>& more_loops) {
  std::vector<asio::io_context*> loops{&io};
  loops.insert(loops.end(), more_loops.begin(), more_loops.end());
  auto impl = std::make_shared<Impl>(loops, options);
  impl->start();
  return std::unique_ptr<RedisStore>(new RedisStore(std::move(impl)));
}

RedisStore::RedisStore(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisStore::~RedisStore() { impl_->close(); }

std::string RedisStore::warning() const { return impl_->warning(); }

void RedisStore::close() { impl_->close(); }

// With records, the four calls on a key go straight to Records' coroutines, without one of
// Impl's in between (each coroutine is a frame to allocate and a resumption; the mirror makes
// one of these calls for every write in the shadow phase). Records hold the pools they use.

asio::awaitable<Result<std::optional<std::string>>> RedisStore::get(int db, std::string key) {
  if (impl_->records_ && db == 0) return redis::Records::get(impl_->records_, std::move(key));
  return Impl::get(impl_, db, std::move(key));
}

asio::awaitable<Result<PutResult>> RedisStore::put(PutRequest request) {
  if (impl_->records_ && request.db == 0) return redis::Records::put(impl_->records_, std::move(request));
  return Impl::put(impl_, std::move(request));
}

asio::awaitable<Result<int64_t>> RedisStore::del(int db, std::vector<std::string> keys) {
  if (impl_->records_ && db == 0 && !keys.empty()) return redis::Records::del(impl_->records_, std::move(keys));
  return Impl::del(impl_, db, std::move(keys));
}

asio::awaitable<Result<std::optional<std::string>>> RedisStore::deleteIfOwnedByPull(
    int db, std::string key, std::string pull_num) {
  if (impl_->records_ && db == 0) {
    return redis::Records::deleteIfOwnedByPull(impl_->records_, std::move(key), std::move(pull_num));
  }
  return Impl::deleteIfOwnedByPull(impl_, db, std::move(key), std::move(pull_num));
}

asio::awaitable<Result<ScanPage>> RedisStore::scan(ScanRequest request) {
  return Impl::scan(impl_, std::move(request));
}

asio::awaitable<Result<int64_t>> RedisStore::count(int db) { return Impl::count(impl_, db); }

asio::awaitable<Status> RedisStore::ping() { return Impl::ping(impl_); }

bool RedisStore::hasRecords() const { return impl_->records_ != nullptr; }

asio::awaitable<Result<std::optional<LockRecord>>> RedisStore::getRecord(int db,
                                                                        std::string key) {
  if (!impl_->records_) {
    auto records_op = LockStore::getRecord(db, std::move(key));
    co_return co_await std::move(records_op);
  }
  if (db != 0) co_return Status::invalidArgument("DB index is out of range");
  auto records_op = redis::Records::getRecord(impl_->records_, std::move(key));
  co_return co_await std::move(records_op);
}

asio::awaitable<Result<std::vector<LockRecord>>> RedisStore::locksByRepo(int db,
                                                                        std::string repo) {
  if (!impl_->records_) {
    auto records_op = LockStore::locksByRepo(db, std::move(repo));
    co_return co_await std::move(records_op);
  }
  if (db != 0) co_return Status::invalidArgument("DB index is out of range");
  auto records_op = redis::Records::locksByRepo(impl_->records_, std::move(repo));
  co_return co_await std::move(records_op);
}

asio::awaitable<Result<std::vector<LockRecord>>> RedisStore::locksByPull(int db, std::string repo,
                                                                        int64_t pull_num) {
  if (!impl_->records_) {
    auto records_op = LockStore::locksByPull(db, std::move(repo), pull_num);
    co_return co_await std::move(records_op);
  }
  if (db != 0) co_return Status::invalidArgument("DB index is out of range");
  auto records_op = redis::Records::locksByPull(impl_->records_, std::move(repo), pull_num);
  co_return co_await std::move(records_op);
}

asio::awaitable<Result<std::vector<std::string>>> RedisStore::keysWithPrefix(int db,
                                                                            std::string prefix) {
  if (!impl_->records_) {
    auto records_op = LockStore::keysWithPrefix(db, std::move(prefix));
    co_return co_await std::move(records_op);
  }
  if (db != 0) co_return Status::invalidArgument("DB index is out of range");
  auto scan_records = [impl = impl_](uint64_t cursor) {
    return Impl::scan(impl, redis::Records::namedKeysPage(cursor));
  };
  auto records_op = redis::Records::keysWithPrefix(impl_->records_, std::move(prefix), scan_records);
  co_return co_await std::move(records_op);
}

}  // namespace lockshift
