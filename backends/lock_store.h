#pragma once
// LockStore: the one interface every lock store implements (LMDB now; Redis, Redis Cluster next).
// Nothing above backends/ knows which store it talks to.
//
// Semantics every implementation keeps:
//  - Keys and values are opaque bytes, returned byte for byte as written.
//  - `db` selects an independent keyspace (Redis's SELECT); 0 <= db < databases().
//  - A write completes only after it is durable in the store (for LMDB: committed and synced).
//  - put() and deleteIfOwnedByPull() are atomic with respect to every other write to the key.
//  - scan(): starting from cursor 0 and following next_cursor until it is 0 returns every key
//    present for the whole scan exactly once; keys added or removed meanwhile may or may not
//    appear, but never twice. Cursors are unsigned 64-bit numbers.
// Errors are values (Status); no exception leaves these functions.
// Thread-safety: all methods may be called concurrently from any thread/executor. The awaitable
// completes on the awaiting coroutine's executor.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/lock_json.h"
#include "common/status.h"

namespace lockshift {

namespace asio = boost::asio;

struct PutRequest {
  enum class Condition {
    kAlways,     // plain SET
    kIfAbsent,   // SET NX
    kIfPresent,  // SET XX
  };
  int db = 0;
  std::string key;
  std::string value;
  Condition condition = Condition::kAlways;
  // SET ... GET: report the value the key held before.
  bool return_previous = false;
  // Strict acquire (DESIGN §2): when set, the put succeeds only if the key is free or the current
  // value is a project lock held by the same holder (LockIdentity::sameHolder). A value that does
  // not parse as a project lock counts as held by someone else. It is what parseProjectLock()
  // reads from `value` (the proxy sets it so), and a store with records takes the holder from it
  // instead of parsing the value again.
  std::optional<LockIdentity> strict_owner;
};

struct PutResult {
  enum class Outcome {
    kApplied,          // the value was written
    kConditionFailed,  // NX/XX not met; nothing written
    kLockedByOther,    // strict acquire refused; nothing written
  };
  Outcome outcome = Outcome::kApplied;
  std::optional<std::string> previous;  // the value before, when return_previous was set
  std::string holder;                   // kLockedByOther: "pull #12 (alice)"
};

struct ScanRequest {
  int db = 0;
  uint64_t cursor = 0;
  size_t count = 10;  // how many entries to examine (a hint, like Redis's COUNT)
  std::string match;  // Redis glob; empty = every key
};

struct ScanPage {
  uint64_t next_cursor = 0;  // 0 when the scan is complete
  std::vector<std::string> keys;
};

// Whether a store is in the request path, as decided by a wrapper that can take it out (the
// circuit breaker, router/circuit_breaker.h). A plain store is always available.
struct StoreAvailability {
  bool available = true;
  std::string state;          // "" for a plain store; "closed", "open", "half-open" for a breaker
  std::string reason;         // why it was taken out (the last trip)
  int64_t since_unix_ms = 0;  // when the state was entered
  uint64_t trips = 0;         // times it was taken out since start
};

// An enhanced record (DESIGN §3): what an enhanced store keeps for a key besides the value.
// Stores that keep records (LmdbOptions::records, RedisOptions::records) derive these fields from
// the value on every write, inside the write's atomic step, and index project locks by repository
// and by pull so a pull's or a repository's locks are found without scanning every key.
struct LockRecord {
  std::string key;
  std::string value;  // byte for byte as written
  // Fencing token: a put that grants the key (see isNewGrant() in backends/lock_records.h) gets a
  // token greater than any this key had before; a re-put by the same holder keeps it. A holder
  // can hand it to whatever it protects, which refuses tokens smaller than the last one it saw.
  uint64_t token = 0;
  int64_t acquired_at_unix_ms = 0;  // when the current grant was made
  // The holder, for a value that parseProjectLock() reads; empty otherwise.
  std::optional<int64_t> pull_num;  // Pull.Num
  std::string user;                 // User.Username
  std::string repo;                 // Project.RepoFullName
};

// Stores with records also keep a name index: every key that starts with kNameIndexPrefix (the
// project locks), in bytewise order. It answers the scans Atlantis sends for a repository's locks
// (`SCAN MATCH pr/<repo>*`) without examining any other key; a prefix it covers is one that
// starts with kNameIndexPrefix.
inline constexpr std::string_view kNameIndexPrefix = "pr/";
inline bool nameIndexCovers(std::string_view prefix) { return prefix.starts_with(kNameIndexPrefix); }
// OK when nameIndexCovers(prefix), else the kInvalidArgument keysWithPrefix() answers.
Status checkNameIndexCovers(std::string_view prefix);

class LockStore {
 public:
  virtual ~LockStore() = default;

  // A short name for logs and metrics ("lmdb", "redis").
  virtual std::string name() const = 0;
  virtual int databases() const = 0;

  virtual asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) = 0;
  virtual asio::awaitable<Result<PutResult>> put(PutRequest request) = 0;
  // Deletes the keys that exist; returns how many were deleted.
  virtual asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) = 0;
  // Atlantis's UnlockIfOwnedByPull script, natively: if the key holds a lock whose Pull.Num equals
  // `pull_num` (compared as numbers, like Lua's tonumber), delete it and return the deleted value;
  // otherwise return nullopt. A value that is not JSON gives kInvalidArgument
  // "failed to deserialize current lock" and changes nothing.
  virtual asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      int db, std::string key, std::string pull_num) = 0;
  virtual asio::awaitable<Result<ScanPage>> scan(ScanRequest request) = 0;
  virtual asio::awaitable<Result<int64_t>> count(int db) = 0;
  // Cheap health probe.
  virtual asio::awaitable<Status> ping() = 0;
  // ---- Enhanced records (stores created with records enabled; others answer kUnsupported) ----
  virtual bool hasRecords() const { return false; }
  // The key's record, nullopt when the key does not exist.
  virtual asio::awaitable<Result<std::optional<LockRecord>>> getRecord(int db, std::string key);
  // Every project lock whose Project.RepoFullName is `repo`, from the repository index, ordered
  // by key. Each is read from its record, so the answer never lists a lock that is not held.
  virtual asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(int db, std::string repo);
  // Every project lock of pull `pull_num` of `repo` (Project.RepoFullName), from the pull index.
  virtual asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(int db, std::string repo,
                                                                       int64_t pull_num);
  // Every key of `db` that starts with `prefix`, in bytewise order, from the name index: only
  // keys under the prefix are examined. Every key present for the whole call is listed, each once,
  // and none that was absent for the whole call. kInvalidArgument unless nameIndexCovers(prefix).
  virtual asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(int db,
                                                                          std::string prefix);

  // Whether the store is in the request path. No I/O, no locks: called on every request.
  virtual bool available() const { return true; }
  // The details, for status pages.
  virtual StoreAvailability availability() const { return {}; }
  // What an operator should know about the store's guarantees, for status pages; empty when
  // nothing. No I/O. (A Redis store that cannot fence commands left unanswered says so.)
  virtual std::string warning() const { return {}; }
};

}  // namespace lockshift
