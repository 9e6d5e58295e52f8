#pragma once
// The repair journal (DESIGN §2): the durable set of keys whose copy in one store is behind the
// other ("dirty"), each with the store that needs repair (its target). A key is dirty for at most
// one target at a time, and while it is dirty the router keeps it owned by the other store (its
// source), which is the current one. A replayer copies source -> target and clears the entry.
//
// Entries live in an LMDB environment (<state_dir>/journal, group-committed) and in an in-memory
// index that the request path consults without I/O. A key of up to LmdbStore::kMaxKeyLength
// bytes is the LMDB key of its entry in its db's database (value: the target's name). A longer
// key, which a Redis store holds but LMDB cannot take as a key, lives in one more database under
// a slot "<db>:<stableHash64 hex>:<n>" with value "<target>\n<key>"; n tells colliding keys apart.
// The journal is bounded: past max_entries (or when the durable write fails) a key is still
// pinned in memory, so ownership stays safe while the process lives, but mark() returns an error
// because a restart would forget the entry; the router then answers the client's write with that
// error rather than acknowledging a write whose safety depends on memory alone. memoryOnlyCount()
// is how many entries are in that state now; overflowCount() how many times since the process
// started an entry could not be made durable.
//
// Thread-safety: every method may be called from any thread.

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/lmdb_store.h"
#include "router/control_state.h"

namespace lockshift {

class RepairJournal {
 public:
  struct Entry {
    int db;
    std::string key;
    StoreRole target;
  };

  static Result<std::unique_ptr<RepairJournal>> open(const std::string& dir, int databases, size_t max_entries);

  // The store this key must be repaired in, if it is dirty. No I/O.
  std::optional<StoreRole> dirtyTarget(int db, std::string_view key) const;
  // Durably marks the key dirty for `target` (a no-op if it already is, durably). When the entry
  // cannot be made durable (max_entries are on disk, or the write failed) the key is pinned in
  // memory anyway and the error is returned; marking it again retries the durable write.
  boost::asio::awaitable<Status> mark(int db, std::string key, StoreRole target);
  // Removes the key's entry once its target was repaired.
  boost::asio::awaitable<Status> clear(int db, std::string key);

  size_t depth() const;
  // Entries whose target is `target` (walks the index: for status and breaker recovery, not the
  // request path).
  size_t depthFor(StoreRole target) const;
  // Times mark() could not make an entry durable since this process started (cumulative).
  size_t overflowCount() const;
  // Entries present now that are kept in memory only (not yet repaired and cleared). A restart
  // would forget them, so keys must not move toward a store while any is present.
  size_t memoryOnlyCount() const;
  // Whether the key's entry is one of those.
  bool memoryOnly(int db, std::string_view key) const;
  // Up to `max` entries, for the replayer and the status, starting `skip` entries into the index
  // (modulo its size, wrapping around): the replayer moves past entries that keep failing, so
  // they cannot hold the others back.
  std::vector<Entry> pending(size_t max, size_t skip = 0) const;

 private:
  RepairJournal(std::unique_ptr<LmdbStore> store, int databases, size_t max_entries);
  static std::string indexKey(int db, std::string_view key);
  static bool isLong(std::string_view key);
  static std::string slotKey(int db, std::string_view key, int n);

  std::unique_ptr<LmdbStore> store_;
  const int databases_;  // the stores' databases; entries of long keys are in database databases_
  size_t max_entries_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, StoreRole> index_;  // GUARDED_BY(mu_)
  // index_.size(), readable without the mutex: the request path asks dirtyTarget() on every
  // call, and the journal is almost always empty.
  std::atomic<size_t> size_{0};
  size_t overflow_ = 0;                               // GUARDED_BY(mu_)
  std::unordered_set<std::string> memory_only_;       // GUARDED_BY(mu_): index keys not on disk
  // Long keys' slots: index key -> slot, and every slot taken (GUARDED_BY(mu_)).
  std::unordered_map<std::string, std::string> long_slots_;
  std::unordered_set<std::string> used_slots_;
};

}  // namespace lockshift
