#pragma once
// ControlStore: the durable home of the ControlState (DESIGN §2 "Control state").
//
// <state_dir>/control.json holds the state once anything changed it; the config file only seeds
// a state directory that has none. Every change increments the epoch and is written atomically
// (temporary file, fsync, rename, fsync of the directory) before it is published, so a restart
// never sees half a change. Readers get an immutable snapshot: a reference-counted copy taken
// under a mutex held only for that copy.
//
// <state_dir>/events.jsonl is the audit log: one JSON object per line (time, kind, actor,
// detail), bounded by keeping the newest kMaxEvents lines.
//
// <state_dir>/ROLLBACK is the emergency flag file for when the admin port is unreachable:
// pollFlagFile() (called every 250 ms by the router) raises the rollback when the file appears,
// with its first line as the reason. Removing the file does not clear a rollback; clearing is
// an explicit act and is refused while the file still exists.
//
// Thread-safety: all methods may be called from any thread.

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "router/control_state.h"

namespace lockshift {

class ControlStore {
 public:
  static constexpr size_t kMaxEvents = 10000;

  // Loads <dir>/control.json if present, else starts from `initial` (and does not write it until
  // the first change). Errors: unreadable or invalid control.json (kInvalidArgument naming it).
  static Result<std::unique_ptr<ControlStore>> open(std::string dir, ControlState initial);

  std::shared_ptr<const ControlState> snapshot() const {
    std::lock_guard lock(state_mu_);
    return state_;
  }

  // The published state is legacy-only with enhanced never in use: before the migration starts,
  // when a write touches legacy alone (Router::writeGuard). An atomic beside the snapshot, read
  // without its mutex: the data path asks on every write. Set before the snapshot is replaced, so
  // a reader ordered after a publish (by a key's lock, say) sees the new value.
  bool legacyAlone() const { return legacy_alone_.load(std::memory_order_acquire); }

  // Applies `change` to a copy, bumps the epoch, persists, publishes. Changes are serialised.
  template <typename F>
  Result<ControlState> update(F&& change) {
    std::lock_guard lock(write_mu_);
    ControlState next = *snapshot();
    change(next);
    next.epoch += 1;
    if (Status s = persist(next); !s) return s;
    publish(std::make_shared<const ControlState>(next));
    return next;
  }

  // Audit log.
  void audit(const std::string& kind, const std::string& actor, const std::string& detail);
  // The newest `max` events, oldest first, each a JSON object text.
  std::vector<std::string> events(size_t max = 200) const;

  // Raises the rollback when <dir>/ROLLBACK exists and no rollback is raised. Returns true if it
  // raised one now.
  bool pollFlagFile();
  bool flagFilePresent() const;
  std::string flagFilePath() const { return dir_ + "/ROLLBACK"; }
  // The state directory (for other state files kept beside control.json).
  const std::string& dir() const { return dir_; }

 private:
  explicit ControlStore(std::string dir);
  Status persist(const ControlState& state);
  // Replaces the published state; the old one is released outside the lock.
  void publish(std::shared_ptr<const ControlState> state) {
    std::lock_guard lock(state_mu_);
    legacy_alone_.store(state->phase == Phase::kLegacyOnly && !state->enhanced_in_use, std::memory_order_release);
    state_.swap(state);
  }

  std::string dir_;
  std::mutex write_mu_;  // serialises update()
  // Not std::atomic<std::shared_ptr>: libstdc++ 12's load() releases its internal lock with
  // relaxed order, so under the C++ memory model its read of the pointer is not ordered before
  // a later store(), and ThreadSanitizer reports a race (google/sanitizers#1558). A mutex costs
  // the same two atomic operations per snapshot.
  mutable std::mutex state_mu_;
  std::shared_ptr<const ControlState> state_;  // GUARDED_BY(state_mu_)
  std::atomic<bool> legacy_alone_{false};        // written under state_mu_
  mutable std::mutex events_mu_;
  std::vector<std::string> events_;  // GUARDED_BY(events_mu_)
};

}  // namespace lockshift
