// The router's side of the shadow mirror: replaying a call on enhanced under the key's lock.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <iostream>

#include "router/router.h"

namespace lockshift {

asio::awaitable<EnhancedAnswer> Router::replayOnEnhanced(MirroredCall call) {
  EnhancedAnswer answer;
  if (call.op == MirroredCall::Op::kScan) {
    // Whether each key of legacy's page is in enhanced; a key deleted meanwhile is the mirror's
    // to discount (it compares against legacy again).
    for (const auto& key : call.keys) {
      auto get = enhanced_.get(call.db, key);
      auto value = co_await std::move(get);
      if (!value) {
        answer.status = value.status();
        co_return answer;
      }
      bool present = value->has_value();
      if (!present) {
        // Deleted from legacy since its page was read: not a key enhanced should have.
        auto again = legacy_.get(call.db, key);
        auto in_legacy = co_await std::move(again);
        present = in_legacy.isOk() && !in_legacy->has_value();
      }
      answer.present.push_back(present);
    }
    co_return answer;
  }
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
  auto guard = co_await locks_.lock(call.db, call.key);
  if (journal_.dirtyTarget(call.db, call.key)) {
    answer.skipped = true;
    co_return answer;
  }
  if (mirror_frozen_.load() || control_.snapshot()->phase != Phase::kShadow) {
    if (call.op == MirroredCall::Op::kGet) {
      // A read changed nothing enhanced lacks: there is nothing to copy.
      answer.skipped = true;
      co_return answer;
    }
    // The shadow phase is ending: replaying now could land after enhanced owns the key. The
    // journal copies it from legacy instead, and pins it to legacy until then.
    auto mark = journal_.mark(call.db, call.key, StoreRole::kEnhanced);
    Status marked = co_await std::move(mark);
    publishJournal();
    if (!marked) {
      // Still pinned in memory (memoryOnlyCount() holds forward moves back) until the replayer
      // repairs it; the client was answered long ago, so this log is where the failure shows.
      std::cerr << "lockshift: a shadow write to db " << call.db << " key '" << call.key
                << "' is journaled in memory only: " << marked.toString() << "\n";
    }
    answer.skipped = true;
    co_return answer;
  }
  guard.release();
  const auto t = std::chrono::steady_clock::now();
  switch (call.op) {
    case MirroredCall::Op::kGet: {
      auto c = enhanced_.get(call.db, call.key);
      auto r = co_await std::move(c);
      answer.status = r.status();
      if (r) answer.value = std::move(*r);
      break;
    }
    case MirroredCall::Op::kPut: {
      auto c = enhanced_.put(std::move(call.put));
      auto r = co_await std::move(c);
      answer.status = r.status();
      if (r) answer.put_result = std::move(*r);
      break;
    }
    case MirroredCall::Op::kDelete: {
      auto c = enhanced_.del(call.db, {call.key});
      auto r = co_await std::move(c);
      answer.status = r.status();
      if (r) answer.deleted = *r;
      break;
    }
    case MirroredCall::Op::kUnlockScript: {
      auto c = enhanced_.deleteIfOwnedByPull(call.db, call.key, std::move(call.pull_num));
      auto r = co_await std::move(c);
      answer.status = r.status();
      if (r) answer.value = std::move(*r);
      break;
    }
    case MirroredCall::Op::kScan: break;
  }
  metrics_.observe(StoreRole::kEnhanced, RouterMetrics::Op::kMirror, answer.status,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  co_return answer;
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
