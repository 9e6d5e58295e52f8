#pragma once
// Router: the migration engine's data path (DESIGN §2). It is a LockStore over two LockStores,
// legacy and enhanced, and the ControlPlane that moves keys between them.
//
// Ownership: ControlState::ownerOf(key) (phase, rollback, rules, split bucket), overridden by
// the repair journal: a key dirty for one store stays owned by the other until repaired.
// Reads go to the owner. A write is decided on the owner (atomically there: strict acquire,
// NX/XX, the unlock script) and, if it changed anything, applied to the other store while the
// key's lock is held (per-key ordering):
//   - other = legacy: synchronously when keep_legacy_in_sync;
//   - other = enhanced: synchronously in hybrid; journaled (replayed later) while legacy owns
//     the key because of a rollback or the legacy-only/shadow phase after enhanced was filled;
//     nothing before enhanced was ever filled.
// A failed write to the other store never fails the client: the key is journaled instead.
// Scans are the owner-filtered union of both stores, de-duplicated (see router_scan.cc).
//
// Thread-safety: every method may be called from any thread. Lifetime: the stores, control store
// and journal must outlive the router; stop() before destroying it.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "backends/lock_store.h"
#include "router/control_plane.h"
#include "router/control_store.h"
#include "router/key_locks.h"
#include "router/mirror.h"
#include "router/repair_journal.h"
#include "router/router_metrics.h"

namespace lockshift {

// Where the backfill (legacy copied into enhanced) stands; see router_backfill.cc.
struct BackfillProgress {
  std::string state = "idle";  // idle | running | done | failed
  int db = 0;
  int pass = 0;  // 0: legacy's keys copied; 1: enhanced's keys that legacy lacks removed
  uint64_t cursor = 0;
  uint64_t copied = 0, removed = 0;
  int64_t started_unix_ms = 0, finished_unix_ms = 0;
  std::string error;
  bool resumed = false;  // continued from a saved position
};

struct RouterOptions {
  // Write every change to legacy too while enhanced owns keys, so rollback is instant and
  // lossless. Turn off only to decommission legacy.
  bool keep_legacy_in_sync = true;
  // How often the replayer retries journaled keys, and the longest it backs off to.
  std::chrono::milliseconds replay_interval{100};
  std::chrono::milliseconds replay_backoff_max{5000};
  // How often <state_dir>/ROLLBACK is checked: bounds how fast a flag-file rollback takes effect.
  std::chrono::milliseconds flag_poll_interval{250};
  // A migration change waits at most this long for journaled keys to drain before it applies
  // (less once a round of the drain no longer shrinks the journal).
  std::chrono::milliseconds drain_timeout{5000};
  // Keys per second the backfill copies; 0: unthrottled.
  int64_t backfill_rate = 0;
  // Merged-scan snapshots kept at once, and how long an unused one lives.
  size_t max_scan_snapshots = 256;
  std::chrono::seconds scan_snapshot_ttl{600};
};

class Router final : public LockStore, public ControlPlane {
 public:
  Router(LockStore& legacy, LockStore& enhanced, ControlStore& control, RepairJournal& journal,
         RouterMetrics& metrics, RouterOptions options);
  ~Router() override;

  // Starts the journal replayer and the flag-file poller on `io`.
  void start(asio::io_context& io);
  void stop();
  // True once stop() was called and every loop the router runs in the background (journal
  // replay, flag-file poll, backfill) has returned. Until then they may still be suspended in a
  // store call, so the router, its stores and its journal must stay alive.
  bool stopped() const { return stopping_.load() && background_.load() == 0; }
  // True when start() found that the last process serving this state directory did not stop
  // cleanly (killed, crashed, power loss).
  bool uncleanStart() const { return unclean_start_; }

  // LockStore
  std::string name() const override { return "router"; }
  int databases() const override;
  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override;
  asio::awaitable<Result<PutResult>> put(PutRequest request) override;
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override;
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(int db, std::string key,
                                                                         std::string pull_num) override;
  asio::awaitable<Result<ScanPage>> scan(ScanRequest request) override;
  asio::awaitable<Result<int64_t>> count(int db) override;
  asio::awaitable<Status> ping() override;

  // ControlPlane
  asio::awaitable<boost::json::object> status() override;
  asio::awaitable<ChangeOutcome> changeMigration(MigrationChange change, std::string actor) override;
  Status raiseRollback(std::string reason, std::string actor) override;
  Status clearRollback(std::string actor) override;
  // A consistency check found legacy equal to enhanced (or repaired it): with keep_legacy_in_sync
  // on, legacy is complete again and may take keys back (ControlState::legacy_behind).
  void legacyCaughtUp(const std::string& report_id);
  asio::awaitable<bool> ready() override;
  asio::awaitable<Result<LockListing>> listLocks(std::string prefix, size_t limit) override;
  asio::awaitable<Result<std::optional<std::string>>> forceUnlock(int db, std::string key,
                                                                 std::string actor) override;
  asio::awaitable<Result<LockListing>> findLocks(LockQuery query, size_t limit) override;
  asio::awaitable<Result<LockListing>> unlockPull(std::string repo, int64_t pull,
                                                  std::string actor) override;
  std::vector<std::string> events(size_t max) override { return control_.events(max); }

  // Forward moves (more keys owned by enhanced) ask `gate` first unless forced. Set before
  // start(); the gate must outlive the router. nullptr: ungated.
  void setGate(MigrationGate* gate) { gate_ = gate; }
  // The shadow mirror (shadow/); set before start(), must outlive the router. nullptr: writes in
  // the shadow phase are journaled for enhanced instead of replayed.
  void setMirror(MirrorSink* mirror) { mirror_ = mirror; }

  // For the mirror: replays a call legacy answered on enhanced. Decided under the key's lock
  // (skipped when the key is dirty: the journal copies it whole), made after releasing it.
  asio::awaitable<EnhancedAnswer> replayOnEnhanced(MirroredCall call);
  // For the mirror: enhanced answered differently, so it is repaired from legacy.
  asio::awaitable<void> markEnhancedDirty(int db, std::string key);

  // Copies the owner's current value of `key` to the other store (deleting it there when the
  // owner has none), under the key's lock, and clears any journal entry for it: the consistency
  // checker's repair.
  asio::awaitable<Status> reconcileKey(int db, std::string key);

  // The store that owns `key` now, journal pinning included.
  StoreRole ownerOf(int db, std::string_view key) const;

 private:
  struct Snapshot;
  enum class Change { kPut, kDelete };

  LockStore& store(StoreRole role) { return role == StoreRole::kLegacy ? legacy_ : enhanced_; }
  const LockStore& store(StoreRole role) const { return role == StoreRole::kLegacy ? legacy_ : enhanced_; }
  // Refuses a SET of a key an LMDB enhanced store cannot hold (more than
  // LmdbStore::kMaxKeyLength bytes) once enhanced is in use: legacy would take it and enhanced
  // never, leaving the key pinned to legacy for good. Checked before any store is touched, so the
  // refused SET changes nothing (Atlantis reports the failed lock). Before that only legacy sees
  // writes, under its own limits (an LMDB legacy refuses such a key itself); a Redis enhanced
  // store and the repair journal take long keys. Deletes are not refused: a lock taken earlier
  // must stay releasable.
  Status checkKeyForSet(std::string_view key) const;
  // Whether enhanced may own keys now and can answer from its indexes (router_admin.cc).
  bool enhancedIndexUsable() const;
  // Whether no key of any db can be owned by legacy now (so a query needs no legacy scan).
  bool enhancedOwnsEveryKey() const;
  // Whether enhanced may own a key now (false: legacy owns every key, so scans skip enhanced and
  // readiness does not need it) (router_admin.cc).
  bool enhancedMayOwnKeys() const;
  // A lock found by findLocks in one store, and whether that store owned the key when it was read.
  struct LockCandidate {
    LockEntry entry;
    bool owned_when_read = false;
  };
  // Appends the locks of `query` that legacy holds in `db`, by scanning legacy; sets *cut and
  // stops when `out` reaches the listing's bound.
  asio::awaitable<Status> scanLegacyFor(const LockQuery& query, int db, std::vector<LockCandidate>* out, bool* cut);
  // How a decided change reaches the non-owner store, from the state now: not at all, by making
  // the key's journal entry durable (the key is already journaled: the replayer copies it whole),
  // applied at once (and journaled if that fails), or journaled. kJournalForEnhanced: see inDoubt().
  enum class Propagation { kNone, kEnsureDurable, kApply, kJournal, kJournalForEnhanced };
  Propagation propagation(int db, std::string_view key, StoreRole owner, Change change) const;
  // For a write the owner failed (any error but one about the request itself): the write may
  // still have been applied there (Redis ran the command and the reply was lost to a timeout or
  // a torn connection), so the other store, kept current by every write that succeeds, may now
  // differ from the owner with no entry saying so. Wherever the write would have propagated, the
  // key is journaled for enhanced (kJournalForEnhanced, or kEnsureDurable for a key journaled
  // already): legacy, current for every key not journaled for it, stays the truth for it. Where
  // legacy owns the key, enhanced gets whatever legacy ended up with; where enhanced owns it, the
  // key falls back to legacy (which answers for it while enhanced is down) until enhanced is
  // repaired from legacy, undoing a write whose client was told it failed. The client's answer
  // stays the owner's error.
  Propagation inDoubt(int db, std::string_view key, StoreRole owner, Change change, const Status& failure) const;
  // Carries out propagation()'s decision, taken under the key's lock with no suspension since.
  // Requires the key's lock. An error means the change could be neither applied nor journaled
  // durably (RepairJournal::mark): the client's write must then be answered with it, not
  // acknowledged.
  asio::awaitable<Status> propagate(int db, std::string key, StoreRole owner, Change change,
                                    std::string value, Propagation how);
  asio::awaitable<Status> applyTo(StoreRole target, int db, std::string key, Change change,
                                  std::string value);
  // For a write to a key already journaled: its entry must be durable before the write is
  // acknowledged. Retries the durable write of an entry kept in memory only; its error if that
  // fails again. Requires the key's lock.
  asio::awaitable<Status> ensureDurable(int db, std::string key);
  // The lock of a data-path write on its key, if it can be had now (else an empty Guard, and the
  // write waits in waitForKey()). Before the migration starts (legacy-only, enhanced never in
  // use, nothing journaled) a write touches legacy and nothing else, and those writes hold the
  // key's lock shared: nothing needs them in any order among themselves, and legacy orders
  // them as Redis orders its own clients (router.cc).
  KeyLocks::Guard writeGuard(int db, std::string_view key);
  asio::awaitable<KeyLocks::Guard> waitForKey(int db, std::string key);
  bool legacyAlone() const { return control_.legacyAlone() && journal_.depth() == 0; }
  // While legacy is being copied into enhanced (enhanced in use, not filled yet), a write to a
  // legacy-owned key is journaled for enhanced before legacy applies it: journalsAhead() says
  // whether this write must be, journalAhead() marks it (router.cc). A write so marked calls
  // repairSoon once legacy has answered it.
  bool journalsAhead(int db, std::string_view key, StoreRole owner) const;
  asio::awaitable<Status> journalAhead(int db, std::string key);
  // For a write journalAhead marked, once legacy has answered it: repairs the key in the
  // background right away (repair(), under the key's lock, so after the write returns), rather
  // than leaving it to the replayer, whose rounds are paced while clients call; otherwise every
  // key written while the backfill copies waits for those rounds, and the move out of shadow for
  // all of them. The client is never kept waiting for enhanced (DESIGN §6, promise 5). At most
  // kEagerRepairs at once; past that, and when a repair fails, the replayer has the key.
  void repairSoon(int db, std::string key);
  static constexpr int kEagerRepairs = 64;
  std::atomic<int> eager_repairs_{0};
  // Copies the source's current value of a journaled key to its target. Takes the key's lock.
  // Coroutine parameters are taken by value: a reference would dangle once the caller's
  // temporary dies while the coroutine is suspended.
  asio::awaitable<Status> repair(RepairJournal::Entry entry);
  // Repairs up to `max` journaled keys, several at a time; returns how many were repaired.
  asio::awaitable<size_t> replayOnce(size_t max);
  struct ReplayTally {
    std::atomic<size_t> next{0}, repaired{0}, failed{0};
  };
  // One of replayOnce's workers: repairs the entries it takes from `tally->next` until none are
  // left. Both pointers are into replayOnce's frame, which waits for every worker.
  asio::awaitable<Status> replayWorker(const std::vector<RepairJournal::Entry>* entries, ReplayTally* tally);
  asio::awaitable<void> replayLoop();
  asio::awaitable<void> flagLoop();
  // Copies every legacy key into enhanced (the first move past legacy-only), resuming a saved
  // position (router_backfill.cc).
  asio::awaitable<Status> fillEnhanced(std::string actor);
  struct CopyTally {
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> copied{0}, removed{0};
    std::atomic<bool> failed{false};
  };
  // One of a backfill page's copiers: copies the keys it takes from `tally->next` (read from
  // legacy; in the pass over `from` = enhanced, only keys legacy lacks, which it deletes) until
  // none are left or a copy failed. Both pointers are into fillEnhanced's frame, which waits.
  asio::awaitable<Status> copyWorker(int db, StoreRole from, const std::vector<std::string>* keys, CopyTally* tally);
  void startBackfill(std::string actor);  // in the background
  // <state_dir>/running is present while a process serves the state directory. Found at start
  // in the shadow phase, the last process was not stopped cleanly and its mirror's queue is
  // lost: enhanced is filled again before it may own a key. The destructor removes it.
  void recoverFromUncleanStop();
  void removeRunningMarker();
  bool started_ = false;
  bool unclean_start_ = false;  // set by recoverFromUncleanStop()
  // A shadow write the stopping mirror could not journal: the next start must not trust enhanced
  // (see markEnhancedDirty).
  std::atomic<bool> mirror_write_lost_{false};
  // Why legacy cannot take keys back (keep_legacy_in_sync off once enhanced was in use, or it was
  // and no consistency check has caught legacy up since), or empty.
  std::string legacyIncomplete() const;
  bool flag_refused_ = false;  // flagLoop reported the present flag file as refused
  // Where the replayer's next round starts in the journal (replayOnce).
  std::atomic<size_t> replay_skip_{0};
  // Clients' calls so far (get, put, del, deleteIfOwnedByPull, scan, count): the replayer starts
  // its next round at once only after a round no client call arrived during (replayLoop).
  std::atomic<uint64_t> client_calls_{0};
  void countClientCall() { client_calls_.fetch_add(1, std::memory_order_relaxed); }
  bool backfillRunning() const;
  // Removes the saved backfill position: the next backfill starts from the beginning.
  void forgetBackfillProgress();
  boost::json::object backfillJson() const;
  // Whether a scan of `store` for `match` is answered from its name index (router_scan.cc).
  static bool answersFromNames(const LockStore& store, std::string_view match);
  // A scan from a snapshot: request.cursor is one of its cursors, or 0 to take one. With
  // `from_hash`, a snapshot is taken and paged from its first key whose stable hash is at least
  // that: where a scan the store answered itself left off.
  asio::awaitable<Result<ScanPage>> snapshotScan(ScanRequest request, std::optional<uint64_t> from_hash = {});
  asio::awaitable<Result<ScanPage>> scanOwners(ScanRequest request);
  // Whether writes are replayed by the mirror now (shadow phase, enhanced filled and in the path).
  bool mirroring() const;
  // Leaving shadow: freezes the mirror and waits (up to drain_timeout) for its queue to empty.
  // False when it did not, and the mirror is unfrozen again.
  asio::awaitable<bool> settleMirror();
  // The setting first: it is off by default, and mirroring() reads the control state.
  bool mirroringReads() const { return mirror_ != nullptr && mirror_->mirrorReads() && mirroring(); }
  // Hands a write legacy decided to the mirror. Returns the call's key when it must be journaled
  // instead (journalMirrored()): it is dirty already, or the mirror's queue is full. Not a
  // coroutine: the mirror takes nearly every write. Callers build the call in its argument, which
  // keeps it (about 500 bytes) out of their coroutine frames. Requires the key's lock.
  std::optional<std::string> submitMirrored(MirroredCall&& call);
  // For a write submitMirrored() refused: makes the key's journal entry durable, or marks it.
  // Requires the key's lock. Errors as propagate().
  asio::awaitable<Status> journalMirrored(int db, std::string key);
  // replayOnEnhanced()'s parts (router_mirror.cc): a sampled scan page, a call on one key, and
  // (callEnhanced) the call on enhanced for the call's kind.
  asio::awaitable<EnhancedAnswer> replayScan(int db, std::vector<std::string> keys);
  asio::awaitable<EnhancedAnswer> replayKey(MirroredCall call);
  // What replayKey() does with a call, decided under the key's lock: replay it, skip it (the
  // key is dirty, or a read outside the shadow phase), or journal it for enhanced (a write
  // while the shadow phase ends).
  enum class ReplayDecision { kReplay, kSkip, kJournal };
  ReplayDecision replayDecision(const MirroredCall& call) const;
  static EnhancedAnswer skippedAnswer();
  asio::awaitable<void> journalInsteadOfReplay(int db, std::string key);
  asio::awaitable<EnhancedAnswer> callEnhanced(MirroredCall call);
  void publishStateMetrics();
  void publishJournal();

  LockStore& legacy_;
  LockStore& enhanced_;
  ControlStore& control_;
  RepairJournal& journal_;
  RouterMetrics& metrics_;
  RouterOptions options_;
  KeyLocks locks_;

  asio::io_context* io_ = nullptr;
  MigrationGate* gate_ = nullptr;
  std::atomic<bool> backfill_running_{false};
  mutable std::mutex backfill_mu_;
  BackfillProgress backfill_;  // GUARDED_BY(backfill_mu_)
  MirrorSink* mirror_ = nullptr;
  std::atomic<bool> changing_{false};  // one migration change at a time (they await)
  // Set while a change leaves the shadow phase: writes are journaled instead of mirrored, and
  // queued replays are skipped (their keys journaled), so none lands on enhanced after it gained
  // keys. The change waits until the mirror's queue is empty.
  std::atomic<bool> mirror_frozen_{false};
  std::atomic<bool> stopping_{false};
  // Each on the strand its loop runs on (start()).
  std::unique_ptr<asio::steady_timer> replay_timer_, flag_timer_;
  // Runs `task` on io_ (or on `executor`), counted in background_ until it returns (see
  // stopped()).
  void spawnBackground(std::function<asio::awaitable<void>()> task);
  void spawnBackground(asio::any_io_executor executor, std::function<asio::awaitable<void>()> task);
  std::atomic<int> background_{0};

  std::mutex snapshots_mu_;
  std::map<uint64_t, std::shared_ptr<Snapshot>> snapshots_;  // GUARDED_BY(snapshots_mu_)
};

}  // namespace lockshift
