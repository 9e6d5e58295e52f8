// The router's operator calls that are neither data path nor migration moves: listing locks,
// finding a repository's or a pull's locks, force unlock, and reconciling one key for the
// consistency checker.

#include <algorithm>
#include <tuple>

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

bool matches(const LockQuery& query, const LockIdentity& holder) {
  return holder.repo_full_name == query.repo && (!query.pull || holder.pull_num == *query.pull);
}

// Keys of one query are few; a listing larger than this is cut (and says so).
constexpr size_t kMaxPullLocks = 100000;

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

bool Router::enhancedIndexUsable() const {
  auto state = control_.snapshot();
  return enhanced_.hasRecords() && enhanced_.available() && state->enhanced_filled && !state->rollback.raised &&
         (state->phase == Phase::kHybrid || state->phase == Phase::kEnhancedOnly);
}

bool Router::enhancedMayOwnKeys() const {
  // A key journaled for legacy is pinned to enhanced, even out of the path (ownerOf()).
  if (journal_.depthFor(StoreRole::kLegacy) > 0) return true;
  auto state = control_.snapshot();
  return state->enhanced_in_use && state->enhanced_filled && !state->rollback.raised && enhanced_.available() &&
         (state->phase == Phase::kHybrid || state->phase == Phase::kEnhancedOnly);
}

bool Router::enhancedOwnsEveryKey() const {
  auto state = control_.snapshot();
  // A key journaled for enhanced is pinned to legacy until it is repaired (ownerOf()).
  return state->phase == Phase::kEnhancedOnly && state->enhanced_filled && !state->rollback.raised &&
         enhanced_.available() && journal_.depthFor(StoreRole::kEnhanced) == 0;
}

// Atlantis names a project lock pr/{RepoFullName}/..., so only keys with that prefix can be the
// repository's; each candidate's value decides (keys are never split to learn their parts).
asio::awaitable<Status> Router::scanLegacyFor(const LockQuery& query, int db, std::vector<LockCandidate>* out,
                                              bool* cut) {
  ScanRequest request{.db = db, .cursor = 0, .count = 1000, .match = prefixGlob("pr/" + query.repo + "/")};
  do {
    auto call = legacy_.scan(request);
    auto page = co_await std::move(call);
    if (!page) co_return page.status();
    for (auto& key : page->keys) {
      auto read = legacy_.get(db, key);
      auto value = co_await std::move(read);
      if (!value) co_return value.status();
      if (!value->has_value()) continue;
      auto holder = parseProjectLock(**value);
      if (!holder || !matches(query, *holder)) continue;
      if (out->size() >= kMaxPullLocks) {
        *cut = true;
        co_return Status::ok();
      }
      const bool owned = ownerOf(db, key) == StoreRole::kLegacy;
      LockEntry entry{.db = db, .key = std::move(key), .value = std::move(**value), .owner = StoreRole::kLegacy};
      out->push_back({std::move(entry), owned});
    }
    request.cursor = page->next_cursor;
  } while (request.cursor != 0);
  co_return Status::ok();
}

asio::awaitable<Result<LockListing>> Router::findLocks(LockQuery query, size_t limit) {
  LockListing out;
  const bool index = enhancedIndexUsable();
  const bool scan_legacy = !index || !enhancedOwnsEveryKey();
  out.source = index ? (scan_legacy ? "index+scan" : "index") : "scan";
  // Both stores' candidates first, each noted with whether its store owned the key when it was
  // read; then one copy per key: one read from its owner then, else the copy of the key's owner
  // now. As in the merged scan, either rule alone drops locks whose owner changes between the
  // index read and the legacy scan (a rollback, a split move, a repair).
  std::vector<LockCandidate> found;
  bool cut = false;  // more candidates than kMaxPullLocks
  // Legacy first, then enhanced, as the merged scan: a key moving to enhanced between the two
  // reads (a repair copying it there) was legacy's when legacy was read.
  for (int db = 0; db < databases(); ++db) {
    if (scan_legacy && db < legacy_.databases()) {
      auto scan = scanLegacyFor(query, db, &found, &cut);
      if (Status s = co_await std::move(scan); !s) co_return s;
    }
    if (index && db < enhanced_.databases()) {
      auto call = query.pull ? enhanced_.locksByPull(db, query.repo, *query.pull) : enhanced_.locksByRepo(db, query.repo);
      auto records = co_await std::move(call);
      if (!records) co_return records.status();
      for (LockRecord& r : *records) {
        if (found.size() >= kMaxPullLocks) {
          cut = true;
          break;
        }
        const bool owned = ownerOf(db, r.key) == StoreRole::kEnhanced;
        found.push_back({LockEntry{.db = db, .key = std::move(r.key), .value = std::move(r.value),
                                   .owner = StoreRole::kEnhanced, .token = r.token,
                                   .acquired_at_unix_ms = r.acquired_at_unix_ms},
                         owned});
      }
    }
  }
  // A copy that fits neither rule is not a lock its owner holds (released there, or held by
  // another pull). A key has at most two copies; one owned when read sorts first.
  std::sort(found.begin(), found.end(), [](const LockCandidate& a, const LockCandidate& b) {
    return std::tie(a.entry.db, a.entry.key, b.owned_when_read) < std::tie(b.entry.db, b.entry.key, a.owned_when_read);
  });
  std::vector<LockEntry> kept;
  for (size_t i = 0; i < found.size(); ++i) {
    const bool same_as_next = i + 1 < found.size() && found[i + 1].entry.db == found[i].entry.db &&
                              found[i + 1].entry.key == found[i].entry.key;
    LockCandidate* pick = nullptr;
    if (found[i].owned_when_read) {
      pick = &found[i];
    } else {
      const StoreRole owner_now = ownerOf(found[i].entry.db, found[i].entry.key);
      if (found[i].entry.owner == owner_now) {
        pick = &found[i];
      } else if (same_as_next && found[i + 1].entry.owner == owner_now) {
        pick = &found[i + 1];
      }
    }
    if (pick != nullptr) kept.push_back(std::move(pick->entry));
    if (same_as_next) ++i;  // the key's other copy
  }
  out.truncated = cut || kept.size() > limit;
  if (kept.size() > limit) kept.resize(limit);
  out.locks = std::move(kept);
  co_return out;
}

asio::awaitable<Result<LockListing>> Router::unlockPull(std::string repo, int64_t pull, std::string actor) {
  auto find = findLocks(LockQuery{.repo = repo, .pull = pull}, kMaxPullLocks);
  auto found = co_await std::move(find);
  if (!found) co_return found.status();
  LockListing released;
  released.source = found->source;
  released.truncated = found->truncated;
  for (LockEntry& entry : found->locks) {
    // The data path's own UnlockIfOwnedByPull: key lock, owner decides, the other store follows.
    auto call = deleteIfOwnedByPull(entry.db, entry.key, std::to_string(pull));
    auto deleted = co_await std::move(call);
    if (!deleted) co_return deleted.status();
    if (!deleted->has_value()) continue;  // released or taken by another pull meanwhile
    entry.value = std::move(**deleted);
    released.locks.push_back(std::move(entry));
  }
  control_.audit("lock.pull_unlocked", actor,
                 "repo " + repo + " pull #" + std::to_string(pull) + ": " + std::to_string(released.locks.size()) +
                     " lock(s) released (found by " + released.source + ")");
  co_return released;
}

asio::awaitable<Result<std::optional<std::string>>> Router::forceUnlock(int db, std::string key, std::string actor) {
  if (db < 0 || db >= databases()) co_return Status::invalidArgument("db must be from 0 to " + std::to_string(databases() - 1));
  std::optional<std::string> previous;
  Status copied;
  {
    auto guard = co_await locks_.lock(db, key);
    const StoreRole owner = ownerOf(db, key);
    auto read = store(owner).get(db, key);
    auto value = co_await std::move(read);
    if (!value) co_return value.status();
    previous = std::move(*value);
    if (previous) {
      const bool marked = journalsAhead(db, key, owner);  // as the data path's deletes do
      if (marked) {
        auto ahead = journalAhead(db, key);
        if (Status s = co_await std::move(ahead); !s) co_return s;
      }
      auto call = store(owner).del(db, {key});
      auto deleted = co_await std::move(call);
      if (marked) repairSoon(db, key);
      // A delete the owner failed may still have been applied: journaled as the data path's are.
      auto copy = propagate(db, key, owner, Change::kDelete, {},
                            deleted ? propagation(db, key, owner, Change::kDelete)
                                    : inDoubt(db, key, owner, Change::kDelete, deleted.status()));
      copied = co_await std::move(copy);
      if (!deleted) co_return deleted.status();
    }
  }
  if (previous) {
    // Recorded even when the other store's copy could not be journaled: the owner let go.
    auto lock = parseProjectLock(*previous);
    std::string holder = lock ? lock->describe() : "";
    control_.audit("lock.force_unlocked", actor, "db " + std::to_string(db) + " " + key + (holder.empty() ? "" : " held by " + holder));
  }
  if (!copied) co_return copied;
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
