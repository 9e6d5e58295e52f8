#pragma once
// RedisStore: a LockStore on a Redis server, for the legacy store Atlantis used until now (and,
// from the shadow issue on, the enhanced store). Keys and values stay byte for byte Atlantis's,
// so Atlantis can be pointed straight back at this Redis at any time.
//
// Transport: an asynchronous RESP2 client on Boost.Asio with a fixed-size connection pool.
// Each connection pipelines: requests from many callers are written back to back and replies are
// matched in order. Every connection is set up with AUTH [username] password (when configured)
// and SELECT db, and reconnects with exponential backoff (capped) after an error. Calls fail fast
// with kUnavailable while no connection can be made, and with kTimeout after command_timeout. A
// call made while the first connections are still opening (right after start) waits for them,
// up to connect_timeout.
//
// Atomicity: put() with a condition or strict_owner is one Lua script (loaded once per
// connection with SCRIPT LOAD, run with EVALSHA, and EVAL again after a NOSCRIPT reply), so the
// check and the write cannot interleave with another client's write. deleteIfOwnedByPull() runs
// Atlantis's own UnlockIfOwnedByPull script, so it behaves exactly as Atlantis does on Redis.
//
// Scans pass Redis's cursor through: Redis guarantees every key present for the whole scan is
// returned, but may return a key more than once (while its dict rehashes); callers that need
// exactly-once (the router's merged scan) de-duplicate.
//
// Thread-safety: every method may be called from any thread; completions run on the caller's
// executor. Lifetime: the store owns its io threads' work; it must outlive returned awaitables.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "backends/lock_store.h"

namespace lockshift {

struct RedisOptions {
  std::string address;   // "host:port"
  int db = 0;            // SELECT db on every connection
  std::string username;  // empty: AUTH password (the default user)
  std::string password;  // empty: no AUTH. Read from a file or environment by the caller.
  // When set, the password is read from this file (common/files.h) at every connection attempt
  // and used instead of `password`: a secret rotated in the file is used from the next
  // connection on, with no restart. An attempt that cannot read it fails with the file's error,
  // and is retried with the backoff below.
  std::string password_file;
  std::string key_prefix;  // prepended to every key (enhanced only; legacy must keep it empty)
  // Keep enhanced records (backends/redis_records.h) instead of plain keys: enhanced only, since
  // Atlantis could no longer read the keys directly.
  bool records = false;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  int pool_size = 8;     // connections; requests keep to one while it takes them (redis_pool.h)
  // Reconnect backoff: starts at backoff_initial, doubles per failure, capped at backoff_max.
  std::chrono::milliseconds backoff_initial{50};
  std::chrono::milliseconds backoff_max{2000};
};

class RedisStore final : public LockStore {
 public:
  // Creates the store and starts connecting in the background on `io` (which must be run by the
  // caller's threads). Does not wait for a connection: the first calls fail with kUnavailable
  // until one is up. Use ping() to wait for readiness. With `more_loops` (the process's event
  // loops 1, 2, ...: common/event_loop.h) the store keeps a pool of its own on each loop, and a
  // call goes through the calling thread's; `pool_size` is then per loop.
  static std::unique_ptr<RedisStore> create(asio::io_context& io, RedisOptions options,
                                            const std::vector<asio::io_context*>& more_loops = {});
  ~RedisStore() override;

  std::string name() const override { return "redis"; }
  // One keyspace: the Redis database `db` of the options. Calls must pass db 0 (anything else is
  // kInvalidArgument). Atlantis is pointed at lockshift with its default --redis-db 0, and
  // [legacy] db names the database it used on Redis.
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

  // Closes every connection; later calls fail with kUnavailable.
  void close();

 private:
  class Impl;  // redis_store.cc
  explicit RedisStore(std::shared_ptr<Impl> impl);
  // Shared with every operation in flight, so an awaitable that outlives the store (and fails
  // with kUnavailable once close() has run) never touches freed memory.
  std::shared_ptr<Impl> impl_;
};

}  // namespace lockshift
