// The router's operator calls that are neither data path nor migration moves: listing locks,
// force unlock, and reconciling one key for the consistency checker.

#include "router/router.h"

namespace lockshift {

namespace {

// A Redis glob matching exactly the keys that start with `prefix`.
std::string prefixGlob(std::string_view prefix) {
  std::string glob;
  for (char c : prefix) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') glob += '\\';
    glob += c;
  }
  return glob + "*";
}

StoreRole otherStore(StoreRole r) { return r == StoreRole::kLegacy ? StoreRole::kEnhanced : StoreRole::kLegacy; }

}  // namespace

asio::awaitable<Result<LockListing>> Router::listLocks(std::string prefix, size_t limit) {
  LockListing out;
  const std::string match = prefixGlob(prefix);
  for (int db = 0; db < databases() && !out.truncated; ++db) {
    ScanRequest request{.db = db, .cursor = 0, .count = 1000, .match = match};
    do {
      auto call = scan(request);
      auto page = co_await std::move(call);
      if (!page) co_return page.status();
      for (auto& key : page->keys) {
        if (out.locks.size() == limit) {
          out.truncated = true;
          break;
        }
        auto read = get(db, key);
        auto value = co_await std::move(read);
        if (!value) co_return value.status();
        if (!value->has_value()) continue;  // deleted since the scan saw it
        StoreRole owner = ownerOf(db, key);
        out.locks.push_back(LockEntry{.db = db, .key = std::move(key), .value = std::move(**value), .owner = owner});
      }
      request.cursor = page->next_cursor;
    } while (request.cursor != 0 && !out.truncated);
  }
  co_return out;
}

asio::awaitable<Result<std::optional<std::string>>> Router::forceUnlock(int db, std::string key, std::string actor) {
  if (db < 0 || db >= databases()) co_return Status::invalidArgument("db must be from 0 to " + std::to_string(databases() - 1));
  std::optional<std::string> previous;
  {
    auto guard = co_await locks_.lock(db, key);
    const StoreRole owner = ownerOf(db, key);
    auto read = store(owner).get(db, key);
    auto value = co_await std::move(read);
    if (!value) co_return value.status();
    previous = std::move(*value);
    if (previous) {
      auto call = store(owner).del(db, {key});
      auto deleted = co_await std::move(call);
      if (!deleted) co_return deleted.status();
      co_await propagate(db, key, owner, Change::kDelete, {});
    }
  }
  if (previous) {
    auto lock = parseProjectLock(*previous);
    std::string holder = lock ? lock->describe() : "";
    control_.audit("lock.force_unlocked", actor, "db " + std::to_string(db) + " " + key + (holder.empty() ? "" : " held by " + holder));
  }
  co_return previous;
}

asio::awaitable<Status> Router::reconcileKey(int db, std::string key) {
  auto guard = co_await locks_.lock(db, key);
  if (mirror_ != nullptr && mirror_->pending(db, key)) co_return Status::unavailable("a mirror replay of the key is pending; check again");
  const StoreRole owner = ownerOf(db, key);
  auto read = store(owner).get(db, key);
  auto value = co_await std::move(read);
  if (!value) co_return value.status();
  auto apply = applyTo(otherStore(owner), db, key, value->has_value() ? Change::kPut : Change::kDelete,
                       value->value_or(std::string()));
  Status s = co_await std::move(apply);
  if (!s) co_return s;
  if (journal_.dirtyTarget(db, key)) {
    auto clear = journal_.clear(db, key);
    co_return co_await std::move(clear);
  }
  co_return Status::ok();
}

}  // namespace lockshift
