#include "router/repair_journal.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

namespace lockshift {

namespace asio = boost::asio;

RepairJournal::RepairJournal(std::unique_ptr<LmdbStore> store, size_t max_entries)
    : store_(std::move(store)), max_entries_(max_entries) {}

namespace {

// The in-memory index's key: the db in two bytes, then the key.
void appendIndexKey(int db, std::string_view key, std::string& out) {
  out.push_back(static_cast<char>(db >> 8));
  out.push_back(static_cast<char>(db & 0xff));
  out.append(key);
}

}  // namespace

std::string RepairJournal::indexKey(int db, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 2);
  appendIndexKey(db, key, k);
  return k;
}

Result<std::unique_ptr<RepairJournal>> RepairJournal::open(const std::string& dir, int databases,
                                                           size_t max_entries) {
  LmdbOptions options;
  options.path = dir;
  options.databases = databases;
  options.map_size = size_t{256} << 20;
  auto store = LmdbStore::open(options);
  if (!store) return store.status();
  std::unique_ptr<RepairJournal> journal(new RepairJournal(std::move(store.value()), max_entries));

  // Load every entry into the index. LMDB reads complete inline, so one io_context run does it.
  Status status;
  asio::io_context io;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int db = 0; db < databases && status.isOk(); ++db) {
      ScanRequest req{.db = db, .cursor = 0, .count = 1000};
      do {
        auto page = co_await journal->store_->scan(req);
        if (!page) {
          status = page.status();
          break;
        }
        for (auto& key : page->keys) {
          // An entry that cannot be read or understood is not skipped: the key's pin would be
          // lost, and the store whose copy is behind could answer for it.
          auto value = co_await journal->store_->get(db, key);
          if (!value) {
            status = Status(value.status().code(), "reading repair journal entry db " + std::to_string(db) + " key '" +
                                                       key + "': " + value.status().message());
            break;
          }
          if (!value->has_value()) continue;  // deleted since the page was read
          auto role = parseRole(**value);
          if (!role) {
            status = Status::invalidArgument("repair journal entry db " + std::to_string(db) + " key '" + key +
                                             "' names no store ('" + **value +
                                             "', expected legacy or enhanced); the journal in " + dir +
                                             " is damaged");
            break;
          }
          journal->index_.emplace(indexKey(db, key), *role);
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
  req.key = std::move(key);
  req.value = std::string(roleName(target));
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
  auto del = store_->del(db, {key});
  auto result = co_await std::move(del);
  if (!result) co_return result.status();
  std::lock_guard lock(mu_);
  index_.erase(ik);
  memory_only_.erase(ik);
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
  auto start = std::next(index_.begin(), static_cast<std::ptrdiff_t>(skip));
  auto it = start;
  for (size_t taken = 0; taken < n && out.size() < max; ++taken) {
    const auto& [ik, target] = *it;
    int db = (static_cast<unsigned char>(ik[0]) << 8) | static_cast<unsigned char>(ik[1]);
    out.push_back({db, ik.substr(2), target});
    if (++it == index_.end()) it = index_.begin();
  }
  return out;
}

}  // namespace lockshift
