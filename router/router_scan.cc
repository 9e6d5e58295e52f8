// Router scans (DESIGN §2 "Scans"): the owner-filtered union of both stores, each key once.
//
// When one LMDB store owns every key (legacy-only/shadow/rollback with legacy on LMDB, or
// enhanced-only on LMDB) and nothing is journaled, SCAN passes straight through: the LMDB cursor
// is stateless, exact, and survives restarts. Otherwise cursor 0 takes a snapshot: every key of
// both stores matching the pattern, kept only where it comes from its owner, de-duplicated
// (Redis's own SCAN may repeat keys), sorted by the stable hash; later calls page through it.
// Snapshot cursors have the top bit set; a store's cursor is handed out halved, so its top bit is
// clear and the two never collide.
// A scan the store began can go on from a snapshot: the journal may fill (a failed write to the
// other store) or the phase move between two calls. The store's cursor is the hash where its
// pages left off (LMDB pages by the stable hash, the order of a snapshot), so the snapshot is
// paged from there: keys present for the whole scan are listed once, from whichever answered.
// A key deleted after the snapshot may still be listed (as with Redis, a GET can then miss).
//
// A store with records answers a pattern whose literal prefix its name index covers (Atlantis's
// `pr/<repo>*` for UnlockByPull) from that index, reading only the keys under the prefix; the
// snapshot skips a store that owns no key now (legacy in enhanced-only).

#include <algorithm>
#include <random>
#include <unordered_map>

#include "common/glob.h"
#include "common/stable_hash.h"
#include "router/router.h"

namespace lockshift {

// One cursor position in a snapshot. Several cursors share a snapshot's keys; a cursor is not
// consumed by use, so a client that retries a SCAN with the same cursor gets the same page (until
// it has used the next cursor; see `prev`).
struct Router::Snapshot {
  std::shared_ptr<const std::vector<std::string>> keys;
  size_t offset = 0;
  int db = 0;
  std::chrono::steady_clock::time_point used;
  // The cursor whose page returned this one (0 for the first page). Once this cursor is used,
  // the client has moved past that one, so it is dropped: a scan holds at most two entries, and
  // a long scan cannot push other scans' cursors out of the table.
  uint64_t prev = 0;
};

namespace {

constexpr uint64_t kSnapshotBit = uint64_t{1} << 63;

uint64_t newSnapshotId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng() | kSnapshotBit;
}

// A client's cursor of a scan LMDB answers is LMDB's halved: LMDB's is the hash of the first entry
// its page did not examine, and halving keeps the top bit clear for snapshot ids.
uint64_t storeCursor(uint64_t client_cursor) { return client_cursor << 1; }

// Makes `page` (LMDB's) one a client can be given: halving rounds an odd cursor down, so the next
// page starts one hash earlier and would list again a key of exactly that hash; such a key is
// left to the next page instead. Every key is then listed once and none is skipped. (LMDB's
// cursor 1, a page whose every key hashes to 0, would read as the end: probability 2^-64.)
void toClientPage(ScanPage& page) {
  if (page.next_cursor == 0) return;
  const uint64_t resume = page.next_cursor & ~uint64_t{1};
  std::erase_if(page.keys, [resume](const std::string& key) { return stableHash64(key) >= resume; });
  page.next_cursor = resume >> 1;
}

}  // namespace

bool Router::answersFromNames(const LockStore& store, std::string_view match) {
  return store.hasRecords() && nameIndexCovers(globLiteralPrefix(match));
}

asio::awaitable<Result<ScanPage>> Router::scan(ScanRequest request) {
  countClientCall();
  const int db = request.db;
  auto call = scanOwners(std::move(request));
  auto page = co_await std::move(call);
  if (page.isOk() && !page->keys.empty() && mirroringReads()) {
    MirroredCall mirrored{.op = MirroredCall::Op::kScan, .db = db, .keys = page->keys};
    mirror_->submit(std::move(mirrored));
  }
  co_return page;
}

asio::awaitable<Result<ScanPage>> Router::scanOwners(ScanRequest request) {
  if ((request.cursor & kSnapshotBit) == 0) {  // 0, or a cursor of the store's own pages
    auto state = control_.snapshot();
    bool single_owner = state->rollback.raised || state->phase == Phase::kLegacyOnly ||
                        state->phase == Phase::kShadow || state->phase == Phase::kEnhancedOnly;
    // With one owner and the journal empty, that is enhanced only where it owns every key (not
    // while the breaker holds it out of the path), and legacy, kept in sync, everywhere else.
    const StoreRole owner = enhancedOwnsEveryKey() ? StoreRole::kEnhanced : StoreRole::kLegacy;
    if (single_owner && journal_.depth() == 0 && store(owner).name() == "lmdb" &&
        !answersFromNames(store(owner), request.match)) {
      const auto t = std::chrono::steady_clock::now();
      request.cursor = storeCursor(request.cursor);
      auto call = store(owner).scan(std::move(request));
      auto page = co_await std::move(call);
      metrics_.observe(owner, RouterMetrics::Op::kScan, page.status(),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
      if (page.isOk()) toClientPage(*page);
      co_return page;
    }
    if (request.cursor != 0) {
      const uint64_t from = storeCursor(request.cursor);
      request.cursor = 0;
      auto call = snapshotScan(std::move(request), from);
      co_return co_await std::move(call);
    }
  }
  auto call = snapshotScan(std::move(request));
  co_return co_await std::move(call);
}

asio::awaitable<Result<ScanPage>> Router::snapshotScan(ScanRequest request, std::optional<uint64_t> from_hash) {
  std::shared_ptr<const std::vector<std::string>> keys;
  size_t offset = 0;
  if (request.cursor != 0) {
    std::lock_guard lock(snapshots_mu_);
    auto it = snapshots_.find(request.cursor);
    if (it == snapshots_.end() || it->second->db != request.db) {
      co_return Status::invalidArgument("invalid cursor (expired or unknown)");
    }
    it->second->used = std::chrono::steady_clock::now();
    keys = it->second->keys;
    offset = it->second->offset;
    if (it->second->prev != 0) snapshots_.erase(it->second->prev);
  } else {
    // A key is kept if the store it was read from owned it then, or if its owner once both stores
    // were read holds it. Either alone drops keys whose owner changes during the scan: judged
    // during each pass, a rollback or a lowered split between the passes drops a key from the
    // first pass as not legacy's and from the second as not enhanced's; judged only at the end, a
    // key repaired into enhanced after enhanced's pass (its journal pin cleared) is dropped as
    // not legacy's. Each key is listed once.
    std::unordered_map<std::string, uint8_t> holders;  // bit 1: legacy holds the key, bit 2: enhanced
    constexpr uint8_t kOwnedWhenRead = 4;
    auto bit = [](StoreRole role) { return static_cast<uint8_t>(role == StoreRole::kLegacy ? 1 : 2); };
    const std::string literal = globLiteralPrefix(request.match);
    // A store that owns no key now is skipped, so an enhanced store that is out of the path (or
    // failing under a rollback) does not fail the scan; the other store is then the only owner
    // when the scan starts, and every key it holds is taken.
    const bool skip_legacy = enhancedOwnsEveryKey();
    const bool skip_enhanced = !skip_legacy && !enhancedMayOwnKeys();
    const bool sole_owner = skip_legacy || skip_enhanced;
    auto seen = [&](std::string key, StoreRole role) {
      const bool owned = sole_owner || ownerOf(request.db, key) == role;
      holders[std::move(key)] |= static_cast<uint8_t>(bit(role) | (owned ? kOwnedWhenRead : 0));
    };
    for (StoreRole role : {StoreRole::kLegacy, StoreRole::kEnhanced}) {
      if (role == StoreRole::kLegacy ? skip_legacy : skip_enhanced) continue;
      if (answersFromNames(store(role), request.match)) {
        const auto t = std::chrono::steady_clock::now();
        auto call = store(role).keysWithPrefix(request.db, literal);
        auto names = co_await std::move(call);
        metrics_.observe(role, RouterMetrics::Op::kScan, names.status(),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
        if (!names) co_return names.status();
        for (auto& key : *names) {
          if (globMatch(request.match, key)) seen(std::move(key), role);
        }
        continue;
      }
      ScanRequest full{.db = request.db, .cursor = 0, .count = 1000, .match = request.match};
      do {
        const auto t = std::chrono::steady_clock::now();
        auto call = store(role).scan(full);
        auto page = co_await std::move(call);
        metrics_.observe(role, RouterMetrics::Op::kScan, page.status(),
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
        if (!page) co_return page.status();
        for (auto& key : page->keys) seen(std::move(key), role);
        full.cursor = page->next_cursor;
      } while (full.cursor != 0);
    }
    auto collected = std::make_shared<std::vector<std::string>>();
    collected->reserve(holders.size());
    for (auto& [key, held] : holders) {
      if (sole_owner || (held & kOwnedWhenRead) != 0 || (held & bit(ownerOf(request.db, key))) != 0) {
        collected->push_back(key);
      }
    }
    std::sort(collected->begin(), collected->end(), [](const std::string& a, const std::string& b) {
      uint64_t ha = stableHash64(a), hb = stableHash64(b);
      return ha != hb ? ha < hb : a < b;
    });
    if (from_hash) {
      offset = std::partition_point(collected->begin(), collected->end(),
                                    [&](const std::string& key) { return stableHash64(key) < *from_hash; }) -
               collected->begin();
    }
    keys = std::move(collected);
  }

  ScanPage page;
  size_t end = std::min(keys->size(), offset + std::max<size_t>(request.count, 1));
  for (size_t i = offset; i < end; ++i) page.keys.push_back((*keys)[i]);

  std::lock_guard lock(snapshots_mu_);
  if (end < keys->size()) {
    // Expire unused snapshots, then make room by dropping the least recently used.
    const auto now = std::chrono::steady_clock::now();
    for (auto it = snapshots_.begin(); it != snapshots_.end();) {
      it = now - it->second->used > options_.scan_snapshot_ttl ? snapshots_.erase(it) : std::next(it);
    }
    while (snapshots_.size() >= options_.max_scan_snapshots) {
      auto oldest = std::min_element(snapshots_.begin(), snapshots_.end(),
                                     [](const auto& a, const auto& b) { return a.second->used < b.second->used; });
      snapshots_.erase(oldest);
    }
    auto next = std::make_shared<Snapshot>(Snapshot{keys, end, request.db, now, request.cursor});
    uint64_t next_id = newSnapshotId();
    snapshots_.emplace(next_id, std::move(next));
    page.next_cursor = next_id;
  }
  co_return page;
}

}  // namespace lockshift
