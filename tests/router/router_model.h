#pragma once
// The model of the migration engine that the model-based tests check the router against
// (rapidcheck's state module): random sequences of Atlantis operations interleaved with phase and
// split changes (the shadow phase included), rollbacks, restarts and failures of the non-owner
// store, checked against a model of who holds each lock.
//   Promise 1: a TryLock succeeds exactly when the model says the lock is free or ours.
//   Promise 2: every lock the model holds reads back byte for byte after every step.
//   Promise 3: with the journal drained, the legacy store alone holds exactly the model's locks
//              (and enhanced too, once it was filled).
// Store failures are injected only where the failing store is the non-owner of every key, and
// the client must then never notice: enhanced while legacy owns every key (legacy-only, shadow, or
// a raised rollback), legacy while enhanced does (enhanced-only with no rollback, the last step
// before legacy is retired). An enhanced outage in any phase comes with an open circuit breaker
// (router/circuit_breaker.h), which takes enhanced out of the path: legacy, kept in sync by every
// write, then owns every key, and the client must not notice either.
// Used by tests/router (the router alone) and tests/shadow (with the shadow mirror wired in).

#include <rapidcheck.h>
#include <rapidcheck/state.h>

#include <map>
#include <optional>
#include <set>
#include <string>
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
  // Atlantis's UnlockByPull scan: every held lock once, nothing else (names index or scan).
  std::set<std::string> want;
  for (const auto& [k, pull] : m.holder) want.insert(lockKey(spec(k, pull)));
  std::vector<std::string> listed;
  ScanRequest req{.db = 0, .cursor = 0, .count = 3, .match = "pr/acme/infra*"};
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = s.run(s.router().scan(req));
    RC_ASSERT(page.isOk());
    listed.insert(listed.end(), page->keys.begin(), page->keys.end());
    req.cursor = page->next_cursor;
    if (req.cursor == 0) break;
  }
  RC_ASSERT(req.cursor == 0u);
  RC_ASSERT(listed.size() == want.size());
  RC_ASSERT(std::set<std::string>(listed.begin(), listed.end()) == want);
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

// Promise 1 under concurrency: pulls 1 to 3 try to lock one key at the same time, alongside a
// phase or split change, a rollback raised or cleared, or nothing, started before, between or
// after the tries. A free lock goes to exactly one pull and a held one to its holder alone. With
// `release`, the holder of a held lock releases it during the race instead of trying it, and the
// other pulls get it at most once between them. The winner of a lock that was free or released
// then releases it, so the model knows the state after the race without knowing who won it.
struct Race : Cmd {
  int key = *rc::gen::inRange(0, kKeys);
  int alongside = *rc::gen::inRange(0, 3);  // 0 nothing, 1 `move`, 2 `rollback`
  int started_after = *rc::gen::inRange(0, 4);  // how many tries start before it
  bool release = *rc::gen::arbitrary<bool>();
  int released_after = *rc::gen::inRange(0, 3);  // how many tries start before the release
  Move move;
  Rollback rollback;
  void checkPreconditions(const Model& m) const override {
    if (alongside == 1) move.checkPreconditions(m);
    if (alongside == 2) rollback.checkPreconditions(m);
  }
  void apply(Model& m) const override {
    if (release) m.holder.erase(key);
    if (alongside == 1) move.apply(m);
    if (alongside == 2) rollback.apply(m);
  }
  void run(const Model& m, RouterStack& s) const override {
    auto held = m.holder.find(key);
    const int holder = held == m.holder.end() ? 0 : held->second;
    const bool releasing = release && holder != 0;
    std::vector<int> pulls;
    for (int pull = 1; pull <= 3; ++pull) {
      if (!releasing || pull != holder) pulls.push_back(pull);
    }
    std::vector<std::future<std::optional<Result<PutResult>>>> tries;
    std::optional<std::future<std::optional<ChangeOutcome>>> moved;
    std::optional<Status> rolled;
    std::optional<std::future<std::optional<Result<std::optional<std::string>>>>> unlocked;
    for (size_t started = 0; started <= pulls.size(); ++started) {
      if (started == std::min<size_t>(started_after, pulls.size())) {
        if (alongside == 1) {
          moved = s.start(s.router().changeMigration(MigrationChange{move.phase, move.split, false}, "test"));
        }
        if (alongside == 2) {  // on this thread, as the admin API's
          rolled = rollback.raise ? s.router().raiseRollback("model", "test") : s.router().clearRollback("test");
        }
      }
      if (releasing && started == std::min<size_t>(released_after, pulls.size())) {
        unlocked = s.start(s.router().deleteIfOwnedByPull(0, lockKey(spec(key, 0)), std::to_string(holder)));
      }
      if (started < pulls.size()) tries.push_back(s.start(s.router().put(RouterStack::tryLock(spec(key, pulls[started])))));
    }
    std::set<int> granted;
    for (size_t i = 0; i < pulls.size(); ++i) {
      auto res = std::move(*tries[i].get());
      RC_ASSERT(res.isOk());
      if (res->outcome == PutResult::Outcome::kApplied) granted.insert(pulls[i]);
    }
    if (moved) {
      auto out = std::move(*moved->get());
      RC_ASSERT(out.applied == !move.refused(m));
      if (out.applied && move.phase == Phase::kShadow) RC_ASSERT(s.filledWithin());
    }
    if (rolled) RC_ASSERT(rolled->isOk());
    if (releasing) {
      auto released = std::move(*unlocked->get());
      RC_ASSERT(released.isOk());
      RC_ASSERT(released->has_value());  // no other pull could take it before
      RC_ASSERT(granted.size() <= 1u);
    } else if (holder != 0) {
      RC_ASSERT(granted == std::set<int>{holder});
    } else {
      RC_ASSERT(granted.size() == 1u);
    }
    Model next = m;
    apply(next);
    // Promise 3 for the race's outcome, before the winner lets go: with the journal drained, each
    // store holds exactly the lock the race left (writes to one key reach the other store in the
    // order the owner took them).
    if (!m.enhanced_failing && !m.legacy_failing) {
      std::optional<std::string> want;
      if (!granted.empty()) want = lockJson(spec(key, *granted.begin()));
      RC_ASSERT(s.drainedWithin());
      RC_ASSERT(s.getFrom(s.legacyStore(), lockKey(spec(key, 0))) == want);
      if (next.filled) RC_ASSERT(s.getFrom(s.enhancedStore(), lockKey(spec(key, 0))) == want);
    }
    if ((holder == 0 || releasing) && !granted.empty()) {
      auto released = s.run(s.router().deleteIfOwnedByPull(0, lockKey(spec(key, 0)), std::to_string(*granted.begin())));
      RC_ASSERT(released.isOk());
      RC_ASSERT(released->has_value());
    }
    checkAll(next, s);
  }
  void show(std::ostream& os) const override {
    os << "Race(" << key << ", pulls 1-3";
    if (release) os << ", a holder releases it after " << released_after << " of them";
    if (alongside != 0) {
      os << ", after " << started_after << " of them ";
      if (alongside == 1) move.show(os);
      if (alongside == 2) rollback.show(os);
    }
    os << ")";
  }
};

// A store is the non-owner of every key only once no key is pinned to it: a key written while
// the other store was out of the path or the non-owner failed stays with the store that has its
// latest value until the journal copied it (DESIGN §2, dirty keys), and its reads rightly fail
// while that store is down; so does a key whose shadow replay is still queued. The replayer and
// the mirror copy such keys at once while both stores answer.
inline void awaitNothingPinned(RouterStack& s) { RC_ASSERT(s.drainedWithin()); }

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
                   rc::state::gen::execOneOfWithArgs<TryLock, TryLock, TryLock, Unlock, UnlockIfOwned, Race, Move,
                                                     Rollback, FailEnhanced, FailLegacy, EnhancedOutage,
                                                     Restart, VerifyStores>());
}

}  // namespace lockshift::testing::model
