// The router's side of the shadow mirror: replaying a call on enhanced under the key's lock.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <iostream>

#include "router/router.h"

namespace lockshift {

// Not a coroutine itself: it picks the coroutine for the call, so a replay's frame holds only
// what its own kind of call needs. GCC 12 gives every local of every branch its own room in a
// coroutine frame (one coroutine for all kinds was 5.8 KB), and frames above about 1 KiB miss
// the allocators' fast paths.
asio::awaitable<EnhancedAnswer> Router::replayOnEnhanced(MirroredCall call) {
  if (call.op == MirroredCall::Op::kScan) return replayScan(call.db, std::move(call.keys));
  // Almost always the key's lock is free and the call is to be replayed: that is decided here
  // without a coroutine of its own, and the call on enhanced starts once the caller awaits it,
  // with the lock released, as in replayKey(). Otherwise replayKey() waits for the lock and
  // decides again.
  if (KeyLocks::Guard guard = locks_.tryLock(call.db, call.key)) {
    if (replayDecision(call) == ReplayDecision::kReplay) {
      guard.release();
      return callEnhanced(std::move(call));
    }
  }
  return replayKey(std::move(call));
}

asio::awaitable<EnhancedAnswer> Router::replayScan(int db, std::vector<std::string> keys) {
  // Whether each key of legacy's page is in enhanced; a key deleted meanwhile is the mirror's to
  // discount (it compares against legacy again). A scan page has no key of its own, so its replay
  // is not ordered behind the writes to its keys: a key whose write is still queued in the mirror
  // (written just before the scan), or dirty for enhanced (the journal copies it), is not yet
  // in enhanced, and counts as present rather than as a divergence.
  EnhancedAnswer answer;
  for (const auto& key : keys) {
    if (journal_.dirtyTarget(db, key) || (mirror_ != nullptr && mirror_->pending(db, key))) {
      answer.present.push_back(true);
      continue;
    }
    auto get = enhanced_.get(db, key);
    auto value = co_await std::move(get);
    if (!value) {
      answer.status = value.status();
      co_return answer;
    }
    bool present = value->has_value();
    if (!present) {
      // Deleted from legacy since its page was read: not a key enhanced should have.
      auto again = legacy_.get(db, key);
      auto in_legacy = co_await std::move(again);
      present = in_legacy.isOk() && !in_legacy->has_value();
    }
    answer.present.push_back(present);
  }
  co_return answer;
}

asio::awaitable<EnhancedAnswer> Router::replayKey(MirroredCall call) {
  // The decision to replay is taken under the key's lock; the call on enhanced is made after it
  // is released, so a client's write to the key never waits for enhanced (a frozen enhanced
  // would otherwise hold it for the whole command timeout). That is safe because nothing else
  // writes the key on enhanced while this replay is in the mirror:
  // - client writes in the shadow phase go to legacy only, and their replays queue behind this
  //   one on the same mirror shard (per-key order);
  // - a repair (journal, reconcile) refuses a key the mirror has pending;
  // - leaving the shadow phase waits for the mirror to empty (settleMirror), so no client write
  //   reaches enhanced while a replay is in flight.
  // A dirty key is skipped: the journal copies it whole.
  KeyLocks::Guard guard = locks_.tryLock(call.db, call.key);
  if (!guard) guard = co_await locks_.lock(call.db, call.key);
  switch (replayDecision(call)) {
    case ReplayDecision::kReplay: {
      guard.release();
      auto replay = callEnhanced(std::move(call));
      co_return co_await std::move(replay);
    }
    case ReplayDecision::kJournal: {
      auto journal = journalInsteadOfReplay(call.db, std::move(call.key));
      co_await std::move(journal);
      break;
    }
    case ReplayDecision::kSkip:
      break;
  }
  co_return skippedAnswer();
}

Router::ReplayDecision Router::replayDecision(const MirroredCall& call) const {
  if (journal_.dirtyTarget(call.db, call.key)) return ReplayDecision::kSkip;
  if (!mirror_frozen_.load() && control_.snapshot()->phase == Phase::kShadow) return ReplayDecision::kReplay;
  // A read changed nothing enhanced lacks: there is nothing to copy.
  if (call.op == MirroredCall::Op::kGet) return ReplayDecision::kSkip;
  // The shadow phase is ending: replaying now could land after enhanced owns the key. The
  // journal copies it from legacy instead, and pins it to legacy until then.
  return ReplayDecision::kJournal;
}

EnhancedAnswer Router::skippedAnswer() { return EnhancedAnswer{.skipped = true}; }

asio::awaitable<void> Router::journalInsteadOfReplay(int db, std::string key) {
  auto mark = journal_.mark(db, key, StoreRole::kEnhanced);
  Status marked = co_await std::move(mark);
  publishJournal();
  if (!marked) {
    // Still pinned in memory (memoryOnlyCount() holds forward moves back) until the replayer
    // repairs it; the client was answered long ago, so this log is where the failure shows.
    std::cerr << "lockshift: a shadow write to db " << db << " key '" << key
              << "' is journaled in memory only: " << marked.toString() << "\n";
  }
}

namespace {

// Awaits one call on enhanced, timed as an enhanced call of the mirror
// (RouterMetrics::Op::kMirror); `take` moves its value into the answer.
template <typename T, typename Take>
asio::awaitable<EnhancedAnswer> timedReplay(RouterMetrics& metrics, asio::awaitable<Result<T>> call, Take take) {
  const auto t = std::chrono::steady_clock::now();
  Result<T> r = co_await std::move(call);
  metrics.observe(StoreRole::kEnhanced, RouterMetrics::Op::kMirror, r.status(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  EnhancedAnswer answer{.status = r.status()};
  if (r) take(answer, *r);
  co_return answer;
}

}  // namespace

asio::awaitable<EnhancedAnswer> Router::callEnhanced(MirroredCall call) {
  auto take_value = [](EnhancedAnswer& a, std::optional<std::string>& v) { a.value = std::move(v); };
  switch (call.op) {
    case MirroredCall::Op::kGet:
      return timedReplay(metrics_, enhanced_.get(call.db, std::move(call.key)), take_value);
    case MirroredCall::Op::kPut:
      return timedReplay(metrics_, enhanced_.put(std::move(call.put)),
                         [](EnhancedAnswer& a, PutResult& r) { a.put_result = std::move(r); });
    case MirroredCall::Op::kDelete:
      return timedReplay(metrics_, enhanced_.del(call.db, {std::move(call.key)}),
                         [](EnhancedAnswer& a, int64_t& n) { a.deleted = n; });
    case MirroredCall::Op::kUnlockScript:
      return timedReplay(metrics_,
                         enhanced_.deleteIfOwnedByPull(call.db, std::move(call.key), std::move(call.pull_num)),
                         take_value);
    case MirroredCall::Op::kScan:
      break;
  }
  return replayScan(call.db, std::move(call.keys));
}

asio::awaitable<bool> Router::settleMirror() {
  if (mirror_ == nullptr) co_return true;
  mirror_frozen_ = true;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
  while (mirror_->depth() > 0 && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(10));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (mirror_->depth() == 0) co_return true;
  mirror_frozen_ = false;
  co_return false;
}

asio::awaitable<void> Router::markEnhancedDirty(int db, std::string key) {
  auto guard = co_await locks_.lock(db, key);
  if (journal_.dirtyTarget(db, key)) co_return;
  auto mark = journal_.mark(db, key, StoreRole::kEnhanced);
  Status marked = co_await std::move(mark);
  publishJournal();
  if (!marked) {
    // Called as the mirror stops: the next process could not learn that enhanced missed this
    // write. Keeping the running marker makes it start as after a crash, which in the shadow
    // phase fills enhanced from legacy again (recoverFromUncleanStop).
    mirror_write_lost_ = true;
    std::cerr << "lockshift: cannot journal the shadow write to db " << db << " key '" << key
              << "' that enhanced has not seen: " << marked.toString() << "; the next start fills enhanced again\n";
  }
}

}  // namespace lockshift
