#pragma once
// The model of the migration engine that the model-based tests check the router against
// (rapidcheck's state module): random sequences of Atlantis operations interleaved with phase and
// split changes (the shadow phase included), rollbacks, restarts and failures of the non-owner
// store, checked against a model of who holds each lock. Most commands run one at a time; Race
// runs TryLocks, unlocks and a migration change on one key together and accepts any order of
// them, and ScanAcross pages a scan across a migration change.
//   Promise 1: a TryLock succeeds exactly when the model says the lock is free or ours.
//   Promise 2: every lock the model holds reads back byte for byte after every step.
//   Promise 3: with the journal drained, the legacy store alone holds exactly the model's locks
//              (and enhanced too, once it was filled).
// Store failures are injected only where the failing store is the non-owner of every key, and
// the client must then never notice: enhanced while legacy owns every key (legacy-only, shadow, or
// a raised rollback), legacy while enhanced does (enhanced-only with no rollback, the last step
// before legacy is retired). An enhanced outage in any phase comes with an open circuit breaker
// (router/circuit_breaker.h), which takes enhanced out of the path: legacy, kept in sync by every
// write, then owns every key, and the client must not notice either. Within a race, either store
// may fail for a while, the owner included, and lose the replies to writes it applied: calls the
// owner fails may then have taken effect or not, but the stores must still agree afterwards.
// Used by tests/router (the router alone) and tests/shadow (with the shadow mirror wired in).

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/router/router_fixture.h"

namespace lockshift::testing::model {

constexpr int kKeys = 6;

struct Model {
  std::map<int, int> holder;  // key index -> pull number
  Phase phase = Phase::kLegacyOnly;
  double split = 0;
  bool rollback = false;
  bool filled = false;
  bool enhanced_failing = false;
  bool legacy_failing = false;
  bool breaker_open = false;  // enhanced is out of the path (and failing)

  bool legacyOwnsAll() const {
    return rollback || breaker_open || phase == Phase::kLegacyOnly || phase == Phase::kShadow;
  }
  bool enhancedOwnsAll() const { return !rollback && !breaker_open && phase == Phase::kEnhancedOnly; }
};

inline LockSpec spec(int key, int pull) {
  return LockSpec{.path = "m" + std::to_string(key), .project = "p", .pull = pull};
}

using Cmd = rc::state::Command<Model, RouterStack>;

// A store is the non-owner of every key only once no key is pinned to it: a key written while
// the other store was out of the path or the non-owner failed stays with the store that has its
// latest value until the journal copied it (DESIGN §2, dirty keys), and its reads rightly fail
// while that store is down; so does a key whose shadow replay is still queued. The replayer and
// the mirror copy such keys at once while both stores answer.
inline void awaitNothingPinned(RouterStack& s) { RC_ASSERT(s.drainedWithin()); }

// Atlantis's UnlockByPull scan of the model's keys, `count` at a time; `before_page(n)` runs
// before the n-th page is asked for (from 0).
inline std::vector<std::string> scanPages(RouterStack& s, size_t count,
                                          const std::function<void(int)>& before_page = {}) {
  std::vector<std::string> listed;
  ScanRequest req{.db = 0, .cursor = 0, .count = count, .match = "pr/acme/infra*"};
  for (int n = 0; n < 1000; ++n) {
    if (before_page) before_page(n);
    auto page = s.run(s.router().scan(req));
    RC_ASSERT(page.isOk());
    listed.insert(listed.end(), page->keys.begin(), page->keys.end());
    req.cursor = page->next_cursor;
    if (req.cursor == 0) break;
  }
  RC_ASSERT(req.cursor == 0u);
  return listed;
}

// Every held lock listed once, nothing else (names index or scan).
inline void checkListed(const Model& m, const std::vector<std::string>& listed) {
  std::set<std::string> want;
  for (const auto& [k, pull] : m.holder) want.insert(lockKey(spec(k, pull)));
  RC_ASSERT(listed.size() == want.size());
  RC_ASSERT(std::set<std::string>(listed.begin(), listed.end()) == want);
}

inline void checkAll(const Model& m, RouterStack& s) {
  for (int k = 0; k < kKeys; ++k) {
    auto got = s.run(s.router().get(0, lockKey(spec(k, 0))));
    RC_ASSERT(got.isOk());
    auto it = m.holder.find(k);
    if (it == m.holder.end()) {
      RC_ASSERT(!got->has_value());
    } else {
      RC_ASSERT(got->has_value());
      RC_ASSERT(**got == lockJson(spec(k, it->second)));
    }
  }
  checkListed(m, scanPages(s, 3));
}

struct TryLock : Cmd {
  int key = *rc::gen::inRange(0, kKeys);
  int pull = *rc::gen::inRange(1, 4);
  void apply(Model& m) const override {
    if (!m.holder.count(key)) m.holder[key] = pull;
  }
  void run(const Model& m, RouterStack& s) const override {
    auto it = m.holder.find(key);
    bool expect_grant = it == m.holder.end() || it->second == pull;
    auto outcome = s.lock(spec(key, pull));
    RC_ASSERT((outcome == PutResult::Outcome::kApplied) == expect_grant);
    Model next = m;
    apply(next);
    checkAll(next, s);
  }
  void show(std::ostream& os) const override { os << "TryLock(" << key << ", pull " << pull << ")"; }
};

struct Unlock : Cmd {
  int key = *rc::gen::inRange(0, kKeys);
  void apply(Model& m) const override { m.holder.erase(key); }
  void run(const Model& m, RouterStack& s) const override {
    auto n = s.run(s.router().del(0, {lockKey(spec(key, 0))}));
    RC_ASSERT(n.isOk());
    RC_ASSERT(*n == (m.holder.count(key) ? 1 : 0));
    Model next = m;
    apply(next);
    checkAll(next, s);
  }
  void show(std::ostream& os) const override { os << "Unlock(" << key << ")"; }
};

struct UnlockIfOwned : Cmd {
  int key = *rc::gen::inRange(0, kKeys);
  int pull = *rc::gen::inRange(1, 4);
  void apply(Model& m) const override {
    auto it = m.holder.find(key);
    if (it != m.holder.end() && it->second == pull) m.holder.erase(it);
  }
  void run(const Model& m, RouterStack& s) const override {
    auto r = s.run(s.router().deleteIfOwnedByPull(0, lockKey(spec(key, 0)), std::to_string(pull)));
    RC_ASSERT(r.isOk());
    auto it = m.holder.find(key);
    RC_ASSERT(r->has_value() == (it != m.holder.end() && it->second == pull));
    Model next = m;
    apply(next);
    checkAll(next, s);
  }
  void show(std::ostream& os) const override { os << "UnlockIfOwnedByPull(" << key << ", " << pull << ")"; }
};

struct Move : Cmd {
  Phase phase = *rc::gen::element(Phase::kLegacyOnly, Phase::kShadow, Phase::kHybrid, Phase::kHybrid,
                                  Phase::kEnhancedOnly);
  double split = *rc::gen::element(0.0, 10.0, 50.0, 90.0, 100.0);
  void checkPreconditions(const Model& m) const override {
    // Enhanced may not become an owner while it is failing (an open breaker keeps it out of the path).
    RC_PRE(!m.enhanced_failing || phase == Phase::kLegacyOnly || phase == Phase::kShadow || m.rollback ||
           m.breaker_open);
    // Nor legacy while it is failing.
    RC_PRE(!m.legacy_failing || phase == Phase::kEnhancedOnly);
    // Entering shadow the first time starts the backfill, which retries until enhanced answers;
    // the model follows it only where it finishes at once.
    RC_PRE(!(phase == Phase::kShadow && m.enhanced_failing && !m.filled));
  }
  // The first move to hybrid or enhanced-only fills enhanced, which is refused while enhanced fails.
  bool refused(const Model& m) const {
    return (phase == Phase::kHybrid || phase == Phase::kEnhancedOnly) && !m.filled && m.enhanced_failing;
  }
  void apply(Model& m) const override {
    if (refused(m)) return;
    m.phase = phase;
    m.split = split;
    if (phase != Phase::kLegacyOnly) m.filled = true;
  }
  void run(const Model& m, RouterStack& s) const override {
    auto out = s.move(phase, split);
    RC_ASSERT(out.applied == !refused(m));
    // A move changes no lock: m.holder is what every store must answer, before and after.
    if (out.applied && phase == Phase::kShadow) {
      checkAll(m, s);  // while the backfill runs in the background
      RC_ASSERT(s.filledWithin());
    }
    checkAll(m, s);
  }
  void show(std::ostream& os) const override { os << "Move(" << phaseName(phase) << ", " << split << "%)"; }
};

struct Rollback : Cmd {
  bool raise = *rc::gen::arbitrary<bool>();
  void checkPreconditions(const Model& m) const override {
    // Clearing it must leave legacy the owner of every key while enhanced fails.
    RC_PRE(raise || !m.enhanced_failing || m.breaker_open || m.phase == Phase::kLegacyOnly ||
           m.phase == Phase::kShadow);
    // Raising it would make a failing legacy the owner.
    RC_PRE(!raise || !m.legacy_failing);
  }
  void apply(Model& m) const override { m.rollback = raise; }
  void run(const Model& m, RouterStack& s) const override {
    Status st = raise ? s.router().raiseRollback("model", "test") : s.router().clearRollback("test");
    RC_ASSERT(st.isOk());
    checkAll(m, s);
  }
  void show(std::ostream& os) const override { os << (raise ? "RaiseRollback" : "ClearRollback"); }
};

// One call of a race on one key, and the answer it gets when the calls run one at a time: a
// TryLock by `pull` is granted, the holder's UnlockIfOwnedByPull releases, Atlantis's Unlock (a
// plain DEL) deletes. `holder` is the key's holder before the call and after it (0: free).
struct RaceCall {
  enum class Kind { kTryLock, kUnlockIfOwned, kUnlock } kind;
  int pull = 0;  // kTryLock and kUnlockIfOwned

  bool applyTo(int& holder) const {
    switch (kind) {
      case Kind::kTryLock:
        if (holder != 0 && holder != pull) return false;
        holder = pull;
        return true;
      case Kind::kUnlockIfOwned:
        if (holder != pull) return false;
        holder = 0;
        return true;
      case Kind::kUnlock:
        const bool deleted = holder != 0;
        holder = 0;
        return deleted;
    }
    return false;
  }
};

// Whether the calls of a race, all in flight together, were atomic: some order of them, run one
// at a time from `holder`, gives every answer they got and leaves the key to `final_holder`. A
// call answered with an error (no answer) may have taken effect or not: either will do.
inline bool linearizable(const std::vector<RaceCall>& calls, const std::vector<std::optional<bool>>& answers,
                         int holder, int final_holder) {
  std::vector<size_t> order(calls.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::vector<size_t> failed;  // the calls with no answer
  for (size_t i = 0; i < answers.size(); ++i) {
    if (!answers[i]) failed.push_back(i);
  }
  do {
    for (uint32_t took = 0; took < (1u << failed.size()); ++took) {  // which of them took effect
      std::vector<bool> skip(calls.size(), false);
      for (size_t f = 0; f < failed.size(); ++f) skip[failed[f]] = (took >> f & 1) == 0;
      int h = holder;
      bool same = true;
      for (size_t i : order) {
        if (skip[i]) continue;
        const bool answer = calls[i].applyTo(h);
        same = same && (!answers[i] || *answers[i] == answer);
      }
      if (same && h == final_holder) return true;
    }
  } while (std::next_permutation(order.begin(), order.end()));
  return false;
}

// Promises 1 and 3 under concurrency: pulls 1 to 3 try to lock one key at the same time, alongside
// a phase or split change, a rollback raised or cleared, or nothing, started before, between or
// after the tries. With `release` 1 the holder of a held lock releases it during the race instead
// of trying it; with 2 Atlantis's Unlock deletes the key during the race, whoever holds it. The
// answers must be those of some order of the calls run one at a time, and so must the lock the
// key is left with; once the journal drained, both stores hold exactly that lock. During the race
// each store delays every write by a random while, so that writes sent one after another may
// reach it in either order, as over a Redis store's pool of connections. Instead of a change, one
// store may fail from a point of the race until every call answered, the key's owner or the other
// one, and half of the writes it fails reach it first (a reply lost, as to a Redis timeout): a
// call the failing owner answered with an error may have taken effect or not, and one the other
// store fails is never noticed. Or enhanced goes down for good, as in EnhancedOutage, with writes
// in flight: its breaker opens a moment after it fails, and the race's writes enhanced took in
// doubt must not show once it is back. Whoever holds a lock that was free or released then
// releases it, so the model knows the state after the race without knowing who won it.
struct Race : Cmd {
  int key = *rc::gen::inRange(0, kKeys);
  // 0 nothing, 1 `move`, 2 `rollback`, 3 a store fails until all answered, 4 an enhanced outage
  int alongside = *rc::gen::inRange(0, 5);
  bool fail_owner = *rc::gen::arbitrary<bool>();  // with 3: the key's owner fails (else the other store)
  int started_after = *rc::gen::inRange(0, 4);  // how many tries start before it
  int release = *rc::gen::inRange(0, 3);  // 0 none, 1 the holder's UnlockIfOwnedByPull, 2 Unlock
  int released_after = *rc::gen::inRange(0, 4);  // how many tries start before the release
  uint32_t jitter_seed = *rc::gen::arbitrary<uint32_t>();
  Move move;
  Rollback rollback;
  void checkPreconditions(const Model& m) const override {
    if (alongside == 1) move.checkPreconditions(m);
    if (alongside == 2) rollback.checkPreconditions(m);
    if (alongside == 3) RC_PRE(!m.enhanced_failing && !m.legacy_failing);
    if (alongside == 4) RC_PRE(!m.breaker_open && !m.enhanced_failing && !m.legacy_failing);
  }
  void apply(Model& m) const override {
    if (release != 0) m.holder.erase(key);
    if (alongside == 1) move.apply(m);
    if (alongside == 2) rollback.apply(m);
    if (alongside == 4) m.breaker_open = m.enhanced_failing = true;
  }
  // The pull holding the key according to the router (0: free).
  static int holderOf(int key, RouterStack& s) {
    auto value = s.run(s.router().get(0, lockKey(spec(key, 0))));
    RC_ASSERT(value.isOk());
    if (!value->has_value()) return 0;
    for (int pull = 1; pull <= 3; ++pull) {
      if (**value == lockJson(spec(key, pull))) return pull;
    }
    RC_FAIL("the key holds a value no call of the race wrote: " + **value);
    return -1;
  }
  void run(const Model& m, RouterStack& s) const override {
    auto held = m.holder.find(key);
    const int holder = held == m.holder.end() ? 0 : held->second;
    std::vector<RaceCall> calls;
    for (int pull = 1; pull <= 3; ++pull) {
      if (release != 1 || holder == 0 || pull != holder) calls.push_back({RaceCall::Kind::kTryLock, pull});
    }
    const size_t tries = calls.size();
    std::optional<size_t> releasing;
    if (release == 1 && holder != 0) calls.push_back({RaceCall::Kind::kUnlockIfOwned, holder});
    if (release == 2) calls.push_back({RaceCall::Kind::kUnlock});
    if (calls.size() > tries) releasing = calls.size() - 1;

    std::vector<std::future<std::optional<Result<PutResult>>>> locked;
    std::optional<std::future<std::optional<Result<std::optional<std::string>>>>> unlocked_if_owned;
    std::optional<std::future<std::optional<Result<int64_t>>>> unlocked;
    std::optional<std::future<std::optional<ChangeOutcome>>> moved;
    std::optional<Status> rolled;
    bool enhanced_owned = false;  // with 4: enhanced owned the key when it failed
    const std::string key_name = lockKey(spec(key, 0));
    if (alongside == 4) awaitNothingPinned(s);  // a key pinned to enhanced rightly fails while it is down
    struct Faults {
      RouterStack& s;
      FaultyStore* failed = nullptr;  // the store failing during the race
      bool outage = false;              // it stays down after the race
      void recover() {
        if (failed == nullptr) return;
        if (!outage) failed->setFailing(false);
        failed->setLostReplies(0);
      }
      ~Faults() {
        recover();
        s.legacy().setJitter(std::chrono::microseconds(0));
        s.enhanced().setJitter(std::chrono::microseconds(0));
      }
    } faults{s};
    s.legacy().setJitter(std::chrono::microseconds(500), jitter_seed);
    s.enhanced().setJitter(std::chrono::microseconds(500), jitter_seed + 1);
    for (size_t started = 0; started <= tries; ++started) {
      if (started == std::min<size_t>(started_after, tries)) {
        if (alongside == 1) {
          moved = s.start(s.router().changeMigration(MigrationChange{move.phase, move.split, false}, "test"));
        }
        if (alongside == 2) {  // on this thread, as the admin API's
          rolled = rollback.raise ? s.router().raiseRollback("model", "test") : s.router().clearRollback("test");
        }
        if (alongside == 3) {
          const bool legacy_owns = s.router().ownerOf(0, key_name) == StoreRole::kLegacy;
          faults.failed = legacy_owns == fail_owner ? &s.legacy() : &s.enhanced();
          faults.failed->setLostReplies(0.5, jitter_seed + 2);
          faults.failed->setFailing(true);
        }
        if (alongside == 4) {
          enhanced_owned = s.router().ownerOf(0, key_name) == StoreRole::kEnhanced;
          faults.failed = &s.enhanced();
          faults.outage = true;
          faults.failed->setLostReplies(0.5, jitter_seed + 2);
          faults.failed->setFailing(true);
          std::this_thread::sleep_for(std::chrono::microseconds(jitter_seed % 300));
          faults.failed->setAvailable(false);  // the breaker opens
        }
      }
      if (releasing && started == std::min<size_t>(released_after, tries)) {
        const RaceCall& call = calls[*releasing];
        if (call.kind == RaceCall::Kind::kUnlockIfOwned) {
          unlocked_if_owned = s.start(s.router().deleteIfOwnedByPull(0, key_name, std::to_string(call.pull)));
        } else {
          unlocked = s.start(s.router().del(0, {key_name}));
        }
      }
      if (started < tries) {
        locked.push_back(s.start(s.router().put(RouterStack::tryLock(spec(key, calls[started].pull)))));
      }
    }
    // Only a failing owner may answer with an error.
    const bool may_fail = (alongside == 3 && fail_owner) || (alongside == 4 && enhanced_owned);
    std::vector<std::optional<bool>> answers;
    for (auto& f : locked) {
      auto res = std::move(*f.get());
      RC_ASSERT(res.isOk() || may_fail);
      answers.push_back(res.isOk() ? std::optional(res->outcome == PutResult::Outcome::kApplied) : std::nullopt);
    }
    if (unlocked_if_owned) {
      auto res = std::move(*unlocked_if_owned->get());
      RC_ASSERT(res.isOk() || may_fail);
      answers.push_back(res.isOk() ? std::optional(res->has_value()) : std::nullopt);
    }
    if (unlocked) {
      auto res = std::move(*unlocked->get());
      RC_ASSERT(res.isOk() || may_fail);
      if (res.isOk()) RC_ASSERT(*res == 0 || *res == 1);
      answers.push_back(res.isOk() ? std::optional(*res == 1) : std::nullopt);
    }
    faults.recover();
    if (moved) {
      auto out = std::move(*moved->get());
      RC_ASSERT(out.applied == !move.refused(m));
      if (out.applied && move.phase == Phase::kShadow) RC_ASSERT(s.filledWithin());
    }
    if (rolled) RC_ASSERT(rolled->isOk());
    const int left_to = holderOf(key, s);
    if (!linearizable(calls, answers, holder, left_to)) {
      std::string what = "no order of the calls gives their answers:";
      for (size_t i = 0; i < calls.size(); ++i) {
        const char* kind = calls[i].kind == RaceCall::Kind::kTryLock         ? " TryLock by "
                           : calls[i].kind == RaceCall::Kind::kUnlockIfOwned ? " UnlockIfOwnedByPull by "
                                                                              : " Unlock";
        what += kind + (calls[i].kind == RaceCall::Kind::kUnlock ? "" : std::to_string(calls[i].pull)) +
                (!answers[i] ? " error," : *answers[i] ? " yes," : " no,");
      }
      RC_FAIL(what + " from holder " + std::to_string(holder) + " to " + std::to_string(left_to));
    }

    Model next = m;
    apply(next);
    // Promise 3 for the race's outcome, before the lock is let go: with the journal drained, each
    // store holds exactly the lock the race left (writes to one key reach the other store in the
    // order the owner took them).
    if (!next.enhanced_failing && !next.legacy_failing) {
      std::optional<std::string> want;
      if (left_to != 0) want = lockJson(spec(key, left_to));
      RC_ASSERT(s.drainedWithin());
      RC_ASSERT(s.getFrom(s.legacyStore(), key_name) == want);
      if (next.filled) RC_ASSERT(s.getFrom(s.enhancedStore(), key_name) == want);
    }
    if (left_to != 0 && !next.holder.count(key)) {
      auto released = s.run(s.router().deleteIfOwnedByPull(0, key_name, std::to_string(left_to)));
      RC_ASSERT(released.isOk());
      RC_ASSERT(released->has_value());
    }
    checkAll(next, s);
  }
  void show(std::ostream& os) const override {
    os << "Race(" << key << ", pulls 1-3";
    if (release == 1) os << ", a holder releases it after " << released_after << " of them";
    if (release == 2) os << ", Unlock after " << released_after << " of them";
    if (alongside != 0) {
      os << ", after " << started_after << " of them ";
      if (alongside == 1) move.show(os);
      if (alongside == 2) rollback.show(os);
      if (alongside == 3) os << (fail_owner ? "its owner" : "the other store") << " fails until all answered";
      if (alongside == 4) os << "EnhancedOutage";
    }
    os << ")";
  }
};

// Atlantis's UnlockByPull and List page through SCAN, and an operator may move the phase or the
// split, or raise or clear a rollback, at any time: between two pages, or while lockshift reads
// the stores for one (between its reads of legacy and of enhanced). A different store may then
// answer the pages after it (DESIGN §2, scans). Every held lock is still listed exactly once, and
// nothing else.
struct ScanAcross : Cmd {
  size_t count = *rc::gen::inRange<size_t>(1, 4);
  int changed_before = *rc::gen::inRange(0, 5);  // the page the change starts before; 0: inside the first
  bool rolls_back = *rc::gen::arbitrary<bool>();  // `rollback` or `move`
  Move move;
  Rollback rollback;
  void checkPreconditions(const Model& m) const override {
    if (rolls_back) {
      rollback.checkPreconditions(m);
    } else {
      move.checkPreconditions(m);
    }
  }
  void apply(Model& m) const override {
    if (rolls_back) {
      rollback.apply(m);
    } else {
      move.apply(m);
    }
  }
  void run(const Model& m, RouterStack& s) const override {
    // The change starts without waiting for it to finish (the pages go on alongside a move),
    // from the io thread too when it comes inside a page; once, from whichever thread is first.
    std::mutex mu;
    bool changed = false;
    std::optional<Status> rolled;
    std::optional<std::future<std::optional<ChangeOutcome>>> moved;
    auto change = [&] {
      std::lock_guard lock(mu);
      if (std::exchange(changed, true)) return;
      if (rolls_back) {  // on the calling thread, as the admin API's
        rolled = rollback.raise ? s.router().raiseRollback("model", "test") : s.router().clearRollback("test");
      } else {
        moved = s.start(s.router().changeMigration(MigrationChange{move.phase, move.split, false}, "test"));
      }
    };
    // Removes the hook and waits for a call of it that may be running on the io thread (it runs
    // there in one go), before what it refers to goes away.
    struct Unhook {
      RouterStack& s;
      ~Unhook() {
        s.enhanced().beforeScan(nullptr);
        s.run([]() -> asio::awaitable<bool> { co_return true; }());
      }
    };
    std::vector<std::string> listed;
    {
      Unhook unhook{s};
      if (changed_before == 0) s.enhanced().beforeScan(change);
      listed = scanPages(s, count, [&](int n) {
        if (n >= std::max(changed_before, 1)) change();
      });
    }
    change();  // unless made already: the scan ended first
    if (rolled) RC_ASSERT(rolled->isOk());
    if (moved) {
      auto out = std::move(*moved->get());
      RC_ASSERT(out.applied == !move.refused(m));
      if (out.applied && move.phase == Phase::kShadow) RC_ASSERT(s.filledWithin());
    }
    checkListed(m, listed);
    Model next = m;
    apply(next);
    checkAll(next, s);
  }
  void show(std::ostream& os) const override {
    os << "ScanAcross(" << count << " a page, ";
    if (changed_before == 0) {
      os << "inside the first page ";
    } else {
      os << "before page " << changed_before << " ";
    }
    if (rolls_back) {
      rollback.show(os);
    } else {
      move.show(os);
    }
    os << ")";
  }
};

// Fails or recovers `kStore` where it is the non-owner of every key.
template <StoreRole kStore>
struct FailStore : Cmd {
  static constexpr bool kLegacy = kStore == StoreRole::kLegacy;
  bool failing = *rc::gen::arbitrary<bool>();
  static bool failingIn(const Model& m) { return kLegacy ? m.legacy_failing : m.enhanced_failing; }
  void checkPreconditions(const Model& m) const override {
    RC_PRE(kLegacy || !m.breaker_open);  // EnhancedOutage's own recovery closes the breaker too
    RC_PRE(!failing || (kLegacy ? m.enhancedOwnsAll() : m.legacyOwnsAll()));
  }
  void apply(Model& m) const override { (kLegacy ? m.legacy_failing : m.enhanced_failing) = failing; }
  void run(const Model& m, RouterStack& s) const override {
    if (failing && !failingIn(m)) awaitNothingPinned(s);
    (kLegacy ? s.legacy() : s.enhanced()).setFailing(failing);
    checkAll(m, s);
  }
  void show(std::ostream& os) const override {
    os << (failing ? "Fail" : "Recover") << (kLegacy ? "Legacy" : "Enhanced");
  }
};
using FailEnhanced = FailStore<StoreRole::kEnhanced>;
using FailLegacy = FailStore<StoreRole::kLegacy>;

// Enhanced fails in any phase, and the circuit breaker is open at once (the breaker's own
// thresholds are tested in circuit_breaker_test.cc and against real servers): every key goes to
// legacy, which holds every lock, and each write enhanced misses is journaled. The recovery
// closes the breaker at once, without waiting for the journal: a key written during the outage
// stays with legacy until the replayer copied it (DESIGN §2, dirty keys).
struct EnhancedOutage : Cmd {
  bool open = *rc::gen::arbitrary<bool>();
  void checkPreconditions(const Model& m) const override {
    if (open) {
      RC_PRE(!m.breaker_open && !m.enhanced_failing && !m.legacy_failing);
    } else {
      RC_PRE(m.breaker_open);
    }
  }
  void apply(Model& m) const override {
    m.breaker_open = open;
    m.enhanced_failing = open;
  }
  void run(const Model& m, RouterStack& s) const override {
    if (open) {
      awaitNothingPinned(s);  // a key pinned to enhanced rightly fails while it is down
      s.enhanced().setAvailable(false);
      s.enhanced().setFailing(true);
    } else {
      s.enhanced().setFailing(false);
      s.enhanced().setAvailable(true);
    }
    checkAll(m, s);
  }
  void show(std::ostream& os) const override { os << (open ? "EnhancedOutage" : "EnhancedBack"); }
};

struct Restart : Cmd {
  void apply(Model&) const override {}
  void run(const Model& m, RouterStack& s) const override {
    s.restart();
    checkAll(m, s);
  }
  void show(std::ostream& os) const override { os << "Restart"; }
};

// Promise 3: with enhanced healthy and the journal drained, legacy alone holds exactly the
// model's locks, so Atlantis could be pointed straight back at it. Once enhanced was filled it is
// kept current in every phase (DESIGN §2, dirty keys), so it then holds exactly them too.
struct VerifyStores : Cmd {
  void checkPreconditions(const Model& m) const override { RC_PRE(!m.enhanced_failing && !m.legacy_failing); }
  void apply(Model&) const override {}
  void run(const Model& m, RouterStack& s) const override {
    RC_ASSERT(s.drainedWithin());
    for (int k = 0; k < kKeys; ++k) {
      auto it = m.holder.find(k);
      std::optional<std::string> want;
      if (it != m.holder.end()) want = lockJson(spec(k, it->second));
      RC_ASSERT(s.getFrom(s.legacyStore(), lockKey(spec(k, 0))) == want);
      if (m.filled) RC_ASSERT(s.getFrom(s.enhancedStore(), lockKey(spec(k, 0))) == want);
    }
  }
  void show(std::ostream& os) const override { os << "VerifyStores"; }
};

// Runs one random sequence of the commands above on `stack`, checking every step.
inline void check(RouterStack& stack) {
  Model model;
  rc::state::check(model, stack,
                   rc::state::gen::execOneOfWithArgs<TryLock, TryLock, TryLock, Unlock, UnlockIfOwned, Race, ScanAcross,
                                                     Move, Rollback, FailEnhanced, FailLegacy, EnhancedOutage,
                                                     Restart, VerifyStores>());
}

}  // namespace lockshift::testing::model
