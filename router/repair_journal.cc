#include "router/repair_journal.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/stable_hash.h"

namespace lockshift {

namespace asio = boost::asio;

RepairJournal::RepairJournal(std::unique_ptr<LmdbStore> store, int databases, size_t max_entries)
    : store_(std::move(store)), databases_(databases), max_entries_(max_entries) {}

namespace {

// The in-memory index's key: the db in two bytes, then the key.
void appendIndexKey(int db, std::string_view key, std::string& out) {
  out.push_back(static_cast<char>(db >> 8));
  out.push_back(static_cast<char>(db & 0xff));
  out.append(key);
}

// The journal's environment with the LMDB databases "db0".."db<lmdb_databases - 1>".
Result<std::unique_ptr<LmdbStore>> openEnvironment(const std::string& dir, int lmdb_databases) {
  LmdbOptions options;
  options.path = dir;
  options.databases = lmdb_databases;
  options.map_size = size_t{256} << 20;
  return LmdbStore::open(options);
}

// The highest N of the databases "db<N>" among `names`, or -1.
int highestDb(const std::vector<std::string>& names) {
  int highest = -1;
  for (const std::string& name : names) {
    if (name.size() < 3 || name.compare(0, 2, "db") != 0) continue;
    if (name.find_first_not_of("0123456789", 2) != std::string::npos) continue;
    highest = std::max(highest, std::atoi(name.c_str() + 2));
  }
  return highest;
}

// What an operator does about a journal laid out for another [server] databases.
std::string restoreDatabases(const std::string& earlier) {
  return "set [server] databases back to " + earlier +
         " and let lockshift repair the journal (status: journal depth 0) before changing it";
}

// Entries in the databases past this layout's long-key database, "db<databases + 1>" up to
// "db<highest>": an earlier open with more [server] databases made them. Their entries would not
// be loaded, which would unpin their keys, so any is an error. LMDB reads complete inline.
Status checkNoEntriesPast(const std::string& dir, int databases, int highest) {
  auto wide = openEnvironment(dir, highest + 1);
  if (!wide) return wide.status();
  int64_t entries = 0;
  std::string where;
  Status status;
  asio::io_context io;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int db = databases + 1; db <= highest && status.isOk(); ++db) {
      auto n = co_await (*wide)->count(db);
      if (!n) {
        status = n.status();
      } else if (*n > 0) {
        entries += *n;
        where += (where.empty() ? "" : ", ") + ("db" + std::to_string(db));
      }
    }
  }, asio::detached);
  io.run();
  if (!status) return status;
  if (entries == 0) return Status::ok();
  return Status::invalidArgument(
      "the repair journal in " + dir + " holds " + std::to_string(entries) + " entries in " + where +
      ", written while [server] databases was larger than " + std::to_string(databases) +
      " (at least " + std::to_string(highest) + "); " + restoreDatabases("its earlier value"));
}

}  // namespace

bool RepairJournal::isLong(std::string_view key) { return key.size() > LmdbStore::kMaxKeyLength; }

std::string RepairJournal::slotKey(int db, std::string_view key, int n) {
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(stableHash64(key)));
  return std::to_string(db) + ":" + hash + ":" + std::to_string(n);
}

std::string RepairJournal::indexKey(int db, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 2);
  appendIndexKey(db, key, k);
  return k;
}

Result<std::unique_ptr<RepairJournal>> RepairJournal::open(const std::string& dir, int databases,
                                                           size_t max_entries) {
  // One more database than the stores have: it holds the entries of keys too long to be an LMDB
  // key (see the header); an environment from before it existed gains it here.
  auto store = openEnvironment(dir, databases + 1);
  if (!store) return store.status();
  auto names = (*store)->databaseNames();
  if (!names) return names.status();
  if (const int highest = highestDb(*names); highest > databases) {
    store.value().reset();  // one environment per path and process: closed while the check opens it
    if (Status status = checkNoEntriesPast(dir, databases, highest); !status) return status;
    store = openEnvironment(dir, databases + 1);
    if (!store) return store.status();
  }
  std::unique_ptr<RepairJournal> journal(new RepairJournal(std::move(store.value()), databases, max_entries));

  // Load every entry into the index. LMDB reads complete inline, so one io_context run does it.
  // An entry that cannot be read or understood is not skipped: the key's pin would be lost, and
  // the store whose copy is behind could answer for it.
  Status status;
  auto damaged = [&](int db, const std::string& key, const std::string& why) {
    return Status::invalidArgument("repair journal entry db " + std::to_string(db) + " key '" + key + "' " + why +
                                   "; the journal in " + dir + " is damaged");
  };
  asio::io_context io;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int db = 0; db <= databases && status.isOk(); ++db) {
      const bool long_keys = db == databases;
      ScanRequest req{.db = db, .cursor = 0, .count = 1000};
      do {
        auto page = co_await journal->store_->scan(req);
        if (!page) {
          status = page.status();
          break;
        }
        for (auto& key : page->keys) {
          auto value = co_await journal->store_->get(db, key);
          if (!value) {
            status = Status(value.status().code(), "reading repair journal entry db " + std::to_string(db) + " key '" +
                                                       key + "': " + value.status().message());
            break;
          }
          if (!value->has_value()) continue;  // deleted since the page was read
          std::string_view role_name = **value;
          int entry_db = db;
          std::string entry_key = key;
          if (long_keys) {
            // Slot "<db>:<hash>:<n>", value "<role>\n<key>".
            const size_t newline = role_name.find('\n');
            const size_t colon = key.find(':');
            entry_db = colon == std::string::npos ? -1 : std::atoi(key.substr(0, colon).c_str());
            if (newline == std::string::npos && parseRole(role_name)) {
              // A key's entry in the database of a db index this layout no longer has.
              status = Status::invalidArgument(
                  "repair journal entry db " + std::to_string(db) + " key '" + key + "' is for db " +
                  std::to_string(db) + ", written while [server] databases was larger than " +
                  std::to_string(databases) + "; " + restoreDatabases("its earlier value"));
              break;
            }
            if (newline == std::string::npos || entry_db < 0 || !isLong(role_name.substr(newline + 1))) {
              status = damaged(db, key, "is not a long-key entry ('<db>:<hash>:<n>' = '<store>\\n<key>')");
              break;
            }
            if (entry_db >= databases) {
              status = Status::invalidArgument("repair journal entry '" + key + "' is for db " +
                                               std::to_string(entry_db) + ", but the stores have " +
                                               std::to_string(databases) + " databases; restore [server] databases "
                                               "until the journal has drained");
              break;
            }
            entry_key = std::string(role_name.substr(newline + 1));
            role_name = role_name.substr(0, newline);
          }
          auto role = parseRole(role_name);
          if (!role && !long_keys && role_name.find('\n') != std::string::npos &&
              parseRole(role_name.substr(0, role_name.find('\n')))) {
            // The long keys' database of a layout with `db` databases.
            status = Status::invalidArgument("repair journal entry db " + std::to_string(db) + " key '" + key +
                                             "' is a long key's entry, written while [server] databases was " +
                                             std::to_string(db) + "; " + restoreDatabases(std::to_string(db)));
            break;
          }
          if (!role) {
            status = damaged(db, key, "names no store ('" + std::string(role_name) + "', expected legacy or enhanced)");
            break;
          }
          const std::string ik = indexKey(entry_db, entry_key);
          journal->index_.emplace(ik, *role);
          if (long_keys) {
            journal->long_slots_[ik] = key;
            journal->used_slots_.insert(key);
          }
          journal->size_.store(journal->index_.size());
        }
        if (!status) break;
        req.cursor = page->next_cursor;
      } while (req.cursor != 0);
    }
  }, asio::detached);
  io.run();
  if (!status) return status;
  return journal;
}

std::optional<StoreRole> RepairJournal::dirtyTarget(int db, std::string_view key) const {
  if (size_.load(std::memory_order_acquire) == 0) return std::nullopt;
  // Asked for every routed request while the journal holds anything: the lookup key is built in
  // a per-thread buffer rather than a new string each time.
  thread_local std::string lookup;
  lookup.clear();
  appendIndexKey(db, key, lookup);
  std::lock_guard lock(mu_);
  auto it = index_.find(lookup);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

asio::awaitable<Status> RepairJournal::mark(int db, std::string key, StoreRole target) {
  const std::string ik = indexKey(db, key);
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(ik);
    const bool memory_only = memory_only_.count(ik) != 0;
    if (it != index_.end() && it->second == target && !memory_only) co_return Status::ok();
    // The bound is on the durable entries; a key already on disk is rewritten in place.
    const bool on_disk = it != index_.end() && !memory_only;
    if (!on_disk && index_.size() - memory_only_.size() >= max_entries_) {
      // Pinned in memory only: ownership stays safe while this process lives, but a restart
      // would forget the entry, so the caller must not acknowledge what depends on it.
      index_[ik] = target;
      size_.store(index_.size(), std::memory_order_release);
      ++overflow_;
      memory_only_.insert(ik);
      co_return Status::unavailable("the repair journal is full (" + std::to_string(max_entries_) +
                                    " keys wait for repair): the " + std::string(roleName(target)) +
                                    " store's copy is behind and this cannot be recorded durably");
    }
  }
  PutRequest req;
  req.db = db;
  req.value = std::string(roleName(target));
  if (isLong(key)) {
    // Too long to be an LMDB key: kept under a slot of the extra database, with the key in the
    // value. Slots are taken under the mutex, from the loaded entries, so two keys whose hashes
    // collide get different slots.
    std::lock_guard lock(mu_);
    auto slot = long_slots_.find(ik);
    if (slot == long_slots_.end()) {
      std::string free;
      for (int n = 0; free.empty() || used_slots_.count(free) != 0; ++n) free = slotKey(db, key, n);
      used_slots_.insert(free);
      slot = long_slots_.emplace(ik, std::move(free)).first;
    }
    req.db = databases_;
    req.key = slot->second;
    req.value += '\n';
    req.value += key;
  } else {
    req.key = std::move(key);
  }
  auto put = store_->put(std::move(req));
  auto result = co_await std::move(put);
  std::lock_guard lock(mu_);
  index_[ik] = target;  // pinned even if the durable write failed
  size_.store(index_.size(), std::memory_order_release);
  if (!result) {
    ++overflow_;
    memory_only_.insert(ik);
    co_return Status(result.status().code(), "the repair journal cannot record that the " +
                                                 std::string(roleName(target)) + " store's copy is behind: " +
                                                 result.status().message());
  }
  memory_only_.erase(ik);
  co_return Status::ok();
}

asio::awaitable<Status> RepairJournal::clear(int db, std::string key) {
  const std::string ik = indexKey(db, key);
  std::optional<std::string> slot;
  if (isLong(key)) {
    std::lock_guard lock(mu_);
    if (auto it = long_slots_.find(ik); it != long_slots_.end()) slot = it->second;
  }
  if (!isLong(key) || slot) {
    auto del = slot ? store_->del(databases_, {*slot}) : store_->del(db, {key});
    auto result = co_await std::move(del);
    if (!result) co_return result.status();
  }
  std::lock_guard lock(mu_);
  index_.erase(ik);
  memory_only_.erase(ik);
  if (slot) {
    long_slots_.erase(ik);
    used_slots_.erase(*slot);
  }
  size_.store(index_.size(), std::memory_order_release);
  co_return Status::ok();
}

size_t RepairJournal::depth() const { return size_.load(std::memory_order_acquire); }

size_t RepairJournal::depthFor(StoreRole target) const {
  if (depth() == 0) return 0;
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [key, t] : index_) n += t == target ? 1 : 0;
  return n;
}

size_t RepairJournal::overflowCount() const {
  std::lock_guard lock(mu_);
  return overflow_;
}

bool RepairJournal::memoryOnly(int db, std::string_view key) const {
  std::lock_guard lock(mu_);
  return !memory_only_.empty() && memory_only_.count(indexKey(db, key)) != 0;
}

size_t RepairJournal::memoryOnlyCount() const {
  std::lock_guard lock(mu_);
  return memory_only_.size();
}

std::vector<RepairJournal::Entry> RepairJournal::pending(size_t max, size_t skip) const {
  std::lock_guard lock(mu_);
  std::vector<Entry> out;
  if (index_.empty()) return out;
  const size_t n = index_.size();
  skip %= n;
  auto it = std::next(index_.begin(), static_cast<std::ptrdiff_t>(skip));
  for (size_t taken = 0; taken < n && out.size() < max; ++taken) {
    const auto& [ik, target] = *it;
    int db = (static_cast<unsigned char>(ik[0]) << 8) | static_cast<unsigned char>(ik[1]);
    out.push_back({db, ik.substr(2), target});
    if (++it == index_.end()) it = index_.begin();
  }
  return out;
}

}  // namespace lockshift
