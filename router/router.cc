// Router data path: ownership, reads from the owner, writes decided on the owner and propagated.
// The control plane is in router_control.cc, the merged scan in router_scan.cc.

#include "router/router.h"

#include <algorithm>

#include "backends/lmdb_store.h"

namespace lockshift {

namespace {

StoreRole other(StoreRole r) { return r == StoreRole::kLegacy ? StoreRole::kEnhanced : StoreRole::kLegacy; }

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Whether a store's failed write may still have been applied: every failure but one about the
// request itself (bad input, a full store, an operation the store does not offer).
bool mayHaveApplied(const Status& failure) {
  switch (failure.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kStoreFull:
    case ErrorCode::kUnsupported:
      return false;
    default:
      return true;
  }
}

}  // namespace

Router::Router(LockStore& legacy, LockStore& enhanced, ControlStore& control, RepairJournal& journal,
               RouterMetrics& metrics, RouterOptions options)
    : legacy_(legacy),
      enhanced_(enhanced),
      control_(control),
      journal_(journal),
      metrics_(metrics),
      options_(std::move(options)) {
  publishStateMetrics();
}

Router::~Router() {
  stop();
  // A clean stop: the mirror journaled what it had not replayed (ShadowMirror::stop). When it
  // could not, the marker stays and the next start treats this stop as a crash.
  if (started_ && !mirror_write_lost_.load()) removeRunningMarker();
}

int Router::databases() const { return std::min(legacy_.databases(), enhanced_.databases()); }

StoreRole Router::ownerOf(int db, std::string_view key) const {
  // A dirty key stays with the store that has its latest value, even one out of the path: the
  // other store would answer from a stale copy.
  if (auto target = journal_.dirtyTarget(db, key)) return other(*target);
  const StoreRole owner = control_.snapshot()->ownerOf(key);
  if (owner == StoreRole::kLegacy) return owner;
  // Out of the path (breaker open): legacy holds every key, kept in sync by every write.
  if (!enhanced_.available()) return StoreRole::kLegacy;
  // A shadow-phase write whose replay is still queued: legacy has its latest value. With several
  // network threads, a write can decide to mirror just before the shadow phase ends and submit
  // its replay after the move checked that the mirror was empty; the replay then journals the key
  // (replayOnEnhanced), which pins it to legacy until it is repaired.
  if (mirror_ != nullptr && mirror_->depth() > 0 && mirror_->pending(db, key)) return StoreRole::kLegacy;
  return owner;
}

asio::awaitable<Result<std::optional<std::string>>> Router::get(int db, std::string key) {
  countClientCall();
  const StoreRole owner = ownerOf(db, key);
  const bool mirror = owner == StoreRole::kLegacy && mirroringReads();
  const auto t = std::chrono::steady_clock::now();
  // The key is copied only when the mirror needs it afterwards: GET is the hot path.
  auto call = mirror ? store(owner).get(db, key) : store(owner).get(db, std::move(key));
  auto result = co_await std::move(call);
  metrics_.observe(owner, RouterMetrics::Op::kGet, result.status(), since(t));
  if (result.isOk() && mirror) {
    MirroredCall mirrored{.op = MirroredCall::Op::kGet, .db = db, .key = std::move(key), .value = *result};
    mirror_->submit(std::move(mirrored));
  }
  co_return result;
}

bool Router::mirroring() const {
  if (mirror_ == nullptr) return false;
  auto state = control_.snapshot();
  return state->phase == Phase::kShadow && !state->rollback.raised && state->enhanced_filled && enhanced_.available() &&
         !mirror_frozen_.load();
}

std::optional<std::string> Router::submitMirrored(MirroredCall&& call) {
  if (journal_.dirtyTarget(call.db, call.key)) return std::move(call.key);  // already behind: journaled
  if (mirror_->submit(std::move(call))) return std::nullopt;
  return std::move(call.key);  // a call the queue dropped is left whole
}

asio::awaitable<Status> Router::journalMirrored(int db, std::string key) {
  if (journal_.dirtyTarget(db, key)) {
    auto entry = ensureDurable(db, std::move(key));  // the replayer copies it whole
    co_return co_await std::move(entry);
  }
  // The mirror's queue is full: enhanced is repaired from legacy instead, never left behind.
  auto mark = journal_.mark(db, std::move(key), StoreRole::kEnhanced);
  Status marked = co_await std::move(mark);
  publishJournal();
  co_return marked;
}

asio::awaitable<Status> Router::ensureDurable(int db, std::string key) {
  if (!journal_.memoryOnly(db, key)) co_return Status::ok();
  auto target = journal_.dirtyTarget(db, key);
  if (!target) co_return Status::ok();  // repaired meanwhile
  auto mark = journal_.mark(db, std::move(key), *target);
  Status marked = co_await std::move(mark);
  publishJournal();
  co_return marked;
}

bool Router::journalsAhead(int db, std::string_view key, StoreRole owner) const {
  if (owner != StoreRole::kLegacy || journal_.dirtyTarget(db, key)) return false;
  auto state = control_.snapshot();
  if (!state->enhanced_in_use || state->enhanced_filled) return false;
  // An LMDB enhanced store cannot hold such a key: it has nothing to repair (see propagate).
  return !(key.size() > LmdbStore::kMaxKeyLength && enhanced_.name() == "lmdb");
}

asio::awaitable<Status> Router::journalAhead(int db, std::string key) {
  // Marked before legacy applies the write, not after as elsewhere: a process killed between the
  // two would leave legacy changed, enhanced not and no entry, and the backfill it resumes may be
  // past the key already. (In the other states an unclean start refills enhanced or runs a repair
  // check.) The write then has the key repaired at once (repairSoon).
  auto mark = journal_.mark(db, std::move(key), StoreRole::kEnhanced);
  Status marked = co_await std::move(mark);
  publishJournal();
  co_return marked;
}

void Router::repairSoon(int db, std::string key) {
  // Bounded: past kEagerRepairs in flight the key waits for the replayer's rounds instead (as
  // it does for a router not started, or stopping).
  if (io_ == nullptr || stopping_) return;
  if (eager_repairs_.fetch_add(1) >= kEagerRepairs) {
    --eager_repairs_;
    return;
  }
  spawnBackground([this, db, key = std::move(key)]() -> asio::awaitable<void> {
    // Takes the key's lock, so it starts once the write that asked has returned.
    auto call = repair(RepairJournal::Entry{db, key, StoreRole::kEnhanced});
    co_await std::move(call);  // a failure leaves the entry for the replayer
    --eager_repairs_;
  });
}

Status Router::checkKeyForSet(std::string_view key) const {
  if (key.size() <= LmdbStore::kMaxKeyLength || enhanced_.name() != "lmdb" || !control_.snapshot()->enhanced_in_use) {
    return Status::ok();
  }
  return Status::invalidArgument("key too long: " + std::to_string(key.size()) +
                                 " bytes (while the lmdb enhanced store is in use, at most " +
                                 std::to_string(LmdbStore::kMaxKeyLength) + ", the longest key it can hold)");
}

// Writes to one key are ordered (the key's lock, held until the write is done everywhere it
// goes) so that both stores, and the mirror, see them in the same order. While legacy is alone
// there is no second place: the order legacy applies them in is the only one. Holding the lock
// exclusively then only made every write to a busy key wait a whole round trip to legacy for the
// one before it: 50 clients setting one key got a quarter of redis-server's rate (BENCHMARKS.md,
// "One key"). Shared holders still exclude everything else that takes the key's lock: a
// backfill's copy of the key, a repair, a forced unlock, and every write once the state has moved
// on, which waits for the shared writes before it. The state is read once the hold is taken: a
// backfill makes enhanced in use before it copies any key under its lock, so a write let in
// after that copy sees it and takes the lock exclusively, and one let in before finishes first.
KeyLocks::Guard Router::writeGuard(int db, std::string_view key) {
  if (legacyAlone()) {
    if (KeyLocks::Guard shared = locks_.tryLockShared(db, key); shared && legacyAlone()) return shared;
  }
  return locks_.tryLock(db, key);
}

asio::awaitable<KeyLocks::Guard> Router::waitForKey(int db, std::string key) {
  if (legacyAlone()) {
    auto wait = locks_.lockShared(db, key);
    KeyLocks::Guard shared = co_await std::move(wait);
    if (legacyAlone()) co_return shared;
  }  // (a shared hold taken in vain is released here, before waiting for the exclusive one)
  auto wait = locks_.lock(db, key);
  co_return co_await std::move(wait);
}

// The write path below avoids starting a coroutine where a synchronous check tells it would
// return at once (the key's lock, journalAhead, propagate), and keeps the mirror's copies out of
// its frames: a frame larger than Asio's recycled blocks (1 020 bytes) costs a heap allocation per
// call. See BENCHMARKS.md, "Round of 2026-12-06 (afternoon)".

asio::awaitable<Result<PutResult>> Router::put(PutRequest request) {
  countClientCall();
  if (Status s = checkKeyForSet(request.key); !s) co_return s;
  KeyLocks::Guard guard = writeGuard(request.db, request.key);
  if (!guard) {
    auto wait = waitForKey(request.db, request.key);
    guard = co_await std::move(wait);
  }
  const StoreRole owner = ownerOf(request.db, request.key);
  const bool marked = journalsAhead(request.db, request.key, owner);
  if (marked) {
    auto ahead = journalAhead(request.db, request.key);
    if (Status s = co_await std::move(ahead); !s) co_return s;
  }
  const int db = request.db;
  std::string key = request.key;
  // A write to mirror keeps the whole request for its replay, any other only the value, which
  // propagate() may need.
  std::unique_ptr<PutRequest> replay;
  std::string value;
  if (owner == StoreRole::kLegacy && mirroring()) {
    replay = std::make_unique<PutRequest>(request);
  } else {
    value = request.value;
  }
  const auto t = std::chrono::steady_clock::now();
  auto call = store(owner).put(std::move(request));
  auto result = co_await std::move(call);
  metrics_.observe(owner, RouterMetrics::Op::kPut, result.status(), since(t));
  if (marked) repairSoon(db, key);
  // Decided again now that legacy answered, as del() does: the shadow phase may have ended
  // meanwhile (leaving it waits only for replays already queued), and a replay submitted now
  // would reach enhanced after it owns the key. propagate() journals the write instead.
  Propagation how = Propagation::kNone;
  if (!result) {
    how = inDoubt(db, key, owner, Change::kPut, result.status());
  } else if (replay != nullptr && mirroring()) {
    // Refusals are mirrored too: enhanced must refuse the same lock to the same holder.
    std::optional<std::string> refused = submitMirrored(MirroredCall{
        .op = MirroredCall::Op::kPut, .db = db, .key = std::move(key), .put = std::move(*replay), .put_result = *result});
    if (refused) {
      auto write = journalMirrored(db, std::move(*refused));
      if (Status s = co_await std::move(write); !s) co_return s;
    }
  } else if (result->outcome == PutResult::Outcome::kApplied) {
    how = propagation(db, key, owner, Change::kPut);
  }
  if (how != Propagation::kNone) {
    if (replay != nullptr) value = std::move(replay->value);  // meant to be mirrored: it kept the value
    auto copy = propagate(db, std::move(key), owner, Change::kPut, std::move(value), how);
    // A failed write is answered with its own error, whatever the journaling did.
    if (Status s = co_await std::move(copy); !s && result.isOk()) co_return s;
  }
  co_return result;
}

asio::awaitable<Result<int64_t>> Router::del(int db, std::vector<std::string> keys) {
  countClientCall();
  // Key by key, each under its own lock: Atlantis deletes one key at a time, and one lock at a
  // time rules out lock-order deadlocks.
  int64_t deleted = 0;
  for (auto& key : keys) {
    KeyLocks::Guard guard = writeGuard(db, key);
    if (!guard) {
      auto wait = waitForKey(db, key);
      guard = co_await std::move(wait);
    }
    const StoreRole owner = ownerOf(db, key);
    const bool marked = journalsAhead(db, key, owner);
    if (marked) {
      auto ahead = journalAhead(db, key);
      if (Status s = co_await std::move(ahead); !s) co_return s;
    }
    const auto t = std::chrono::steady_clock::now();
    auto call = store(owner).del(db, {key});
    auto result = co_await std::move(call);
    metrics_.observe(owner, RouterMetrics::Op::kDelete, result.status(), since(t));
    if (marked) repairSoon(db, key);
    if (result) deleted += *result;
    if (result && owner == StoreRole::kLegacy && mirroring()) {
      std::optional<std::string> refused =
          submitMirrored(MirroredCall{.op = MirroredCall::Op::kDelete, .db = db, .key = key, .deleted = *result});
      if (refused) {
        auto write = journalMirrored(db, std::move(*refused));
        if (Status s = co_await std::move(write); !s) co_return s;
      }
      continue;
    }
    // Propagated even when the owner had nothing: the other store must not keep a stale copy.
    if (Propagation how = result ? propagation(db, key, owner, Change::kDelete)
                                 : inDoubt(db, key, owner, Change::kDelete, result.status());
        how != Propagation::kNone) {
      auto copy = propagate(db, key, owner, Change::kDelete, {}, how);
      if (Status s = co_await std::move(copy); !s && result) co_return s;
    }
    if (!result) co_return result.status();
  }
  co_return deleted;
}

asio::awaitable<Result<std::optional<std::string>>> Router::deleteIfOwnedByPull(int db, std::string key,
                                                                               std::string pull_num) {
  countClientCall();
  KeyLocks::Guard guard = writeGuard(db, key);
  if (!guard) {
    auto wait = waitForKey(db, key);
    guard = co_await std::move(wait);
  }
  const StoreRole owner = ownerOf(db, key);
  const bool marked = journalsAhead(db, key, owner);
  if (marked) {
    auto ahead = journalAhead(db, key);
    if (Status s = co_await std::move(ahead); !s) co_return s;
  }
  const auto t = std::chrono::steady_clock::now();
  auto call = store(owner).deleteIfOwnedByPull(db, key, pull_num);
  auto result = co_await std::move(call);
  metrics_.observe(owner, RouterMetrics::Op::kUnlockScript, result.status(), since(t));
  if (marked) repairSoon(db, key);
  Propagation how = Propagation::kNone;
  if (!result) {
    how = inDoubt(db, key, owner, Change::kDelete, result.status());
  } else if (owner == StoreRole::kLegacy && mirroring()) {
    std::optional<std::string> refused = submitMirrored(MirroredCall{.op = MirroredCall::Op::kUnlockScript,
                                                                     .db = db,
                                                                     .key = std::move(key),
                                                                     .pull_num = std::move(pull_num),
                                                                     .value = *result});
    if (refused) {
      auto write = journalMirrored(db, std::move(*refused));
      if (Status s = co_await std::move(write); !s) co_return s;
    }
  } else if (result->has_value()) {
    how = propagation(db, key, owner, Change::kDelete);
  }
  if (how != Propagation::kNone) {
    auto copy = propagate(db, std::move(key), owner, Change::kDelete, {}, how);
    if (Status s = co_await std::move(copy); !s && result.isOk()) co_return s;
  }
  co_return result;
}

asio::awaitable<Status> Router::applyTo(StoreRole target, int db, std::string key, Change change,
                                        std::string value) {
  const auto t = std::chrono::steady_clock::now();
  Status status;
  if (change == Change::kPut) {
    PutRequest req;
    req.db = db;
    req.key = key;
    req.value = value;
    auto call = store(target).put(std::move(req));
    auto r = co_await std::move(call);
    status = r.status();
  } else {
    auto call = store(target).del(db, {key});
    auto r = co_await std::move(call);
    status = r.status();
  }
  metrics_.observe(target, change == Change::kPut ? RouterMetrics::Op::kPut : RouterMetrics::Op::kDelete,
                   status, since(t));
  co_return status;
}

Router::Propagation Router::inDoubt(int db, std::string_view key, StoreRole owner, Change change,
                                    const Status& failure) const {
  if (!mayHaveApplied(failure)) return Propagation::kNone;
  const Propagation how = propagation(db, key, owner, change);
  if (how == Propagation::kNone || how == Propagation::kEnsureDurable) return how;
  return Propagation::kJournalForEnhanced;
}

Router::Propagation Router::propagation(int db, std::string_view key, StoreRole owner, Change change) const {
  const StoreRole target = other(owner);
  if (change == Change::kDelete && key.size() > LmdbStore::kMaxKeyLength && store(target).name() == "lmdb") {
    // An LMDB store cannot hold such a key (it refuses even to look it up), so it has nothing to
    // delete. Without this, a long key taken in a Redis legacy before an LMDB enhanced was in use
    // would stay journaled for a repair that can never succeed.
    return Propagation::kNone;
  }
  if (journal_.dirtyTarget(db, key)) return Propagation::kEnsureDurable;  // the replayer copies it whole
  if (target == StoreRole::kLegacy) return options_.keep_legacy_in_sync ? Propagation::kApply : Propagation::kNone;
  auto state = control_.snapshot();
  if (!state->enhanced_in_use) return Propagation::kNone;  // enhanced not in use yet
  // Hybrid keeps a key's future owner current; while legacy owns everything (legacy-only,
  // shadow, rollback) writes are journaled so the client never waits for enhanced.
  // Also while a breaker has enhanced out of the path: it fails such a call at once (and the
  // key is journaled), and lets it through as a probe once it is half-open.
  return state->phase == Phase::kHybrid && !state->rollback.raised ? Propagation::kApply : Propagation::kJournal;
}

asio::awaitable<Status> Router::propagate(int db, std::string key, StoreRole owner, Change change,
                                          std::string value, Propagation how) {
  const StoreRole target = other(owner);
  switch (how) {
    case Propagation::kNone:
      co_return Status::ok();
    case Propagation::kEnsureDurable: {
      auto entry = ensureDurable(db, std::move(key));
      co_return co_await std::move(entry);
    }
    case Propagation::kApply: {
      auto apply = applyTo(target, db, key, change, std::move(value));
      Status s = co_await std::move(apply);
      if (s.isOk()) co_return s;
      metrics_.countPropagationFailure(target);
      break;
    }
    case Propagation::kJournal:
    case Propagation::kJournalForEnhanced:
      break;
  }
  const StoreRole behind = how == Propagation::kJournalForEnhanced ? StoreRole::kEnhanced : target;
  auto mark = journal_.mark(db, std::move(key), behind);
  Status marked = co_await std::move(mark);
  publishJournal();
  co_return marked;
}

asio::awaitable<Result<int64_t>> Router::count(int db) {
  countClientCall();
  auto state = control_.snapshot();
  // Legacy holds every key while it is kept in sync and nothing is pending for it.
  bool legacy_complete = options_.keep_legacy_in_sync || !state->enhanced_in_use;
  if (legacy_complete && journal_.depth() == 0) {
    const auto t = std::chrono::steady_clock::now();
    auto call = legacy_.count(db);
    auto n = co_await std::move(call);
    metrics_.observe(StoreRole::kLegacy, RouterMetrics::Op::kCount, n.status(), since(t));
    co_return n;
  }
  int64_t n = 0;
  ScanRequest req{.db = db, .cursor = 0, .count = 1000};
  do {
    auto call = snapshotScan(req);
    auto page = co_await std::move(call);
    if (!page) co_return page.status();
    n += static_cast<int64_t>(page->keys.size());
    req.cursor = page->next_cursor;
  } while (req.cursor != 0);
  co_return n;
}

asio::awaitable<Status> Router::ping() {
  auto t = std::chrono::steady_clock::now();
  auto call = legacy_.ping();
  Status legacy = co_await std::move(call);
  metrics_.observe(StoreRole::kLegacy, RouterMetrics::Op::kPing, legacy, since(t));
  if (!legacy) co_return legacy;
  if (control_.snapshot()->enhanced_in_use) {
    t = std::chrono::steady_clock::now();
    auto call2 = enhanced_.ping();
    Status enhanced = co_await std::move(call2);
    metrics_.observe(StoreRole::kEnhanced, RouterMetrics::Op::kPing, enhanced, since(t));
  }
  co_return Status::ok();
}

}  // namespace lockshift
