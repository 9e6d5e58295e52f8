#pragma once
// What the admin API (and lockshiftctl through it) may ask of the migration engine.
// The admin server depends only on this interface; the Router implements it.
//
// Thread-safety: every method may be called from any thread.

#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "router/control_state.h"

namespace lockshift {

struct MigrationChange {
  std::optional<Phase> phase;           // absent: keep
  std::optional<double> traffic_split;  // absent: keep; 0..100
  bool force = false;                   // override gates (recorded as an audit event)
};

// One key of a lock listing (GET /api/v1/locks).
struct LockEntry {
  int db = 0;
  std::string key;
  std::string value;  // as stored (Atlantis's JSON for a lock)
  StoreRole owner = StoreRole::kLegacy;
  // From the enhanced store's record, when the entry was read from one (DESIGN §3).
  std::optional<uint64_t> token;
  std::optional<int64_t> acquired_at_unix_ms;
};

struct LockListing {
  std::vector<LockEntry> locks;
  bool truncated = false;  // more keys matched than the limit
  // How the locks were found: "scan" (every key examined), "index" (enhanced's repository or
  // pull index only), "index+scan" (the index for the keys enhanced owns, a scan for legacy's).
  std::string source = "scan";
};

// The project locks of one repository, or of one pull of it.
struct LockQuery {
  std::string repo;             // Project.RepoFullName, exactly
  std::optional<int64_t> pull;  // Pull.Num; absent: every pull
};

// Decides whether a forward move (more keys owned by enhanced) may proceed. Moving back is never
// asked. Implemented by the consistency layer (reports); absent: every move is allowed.
class MigrationGate {
 public:
  virtual ~MigrationGate() = default;
  // One line per reason to refuse moving from `from` to `to`; empty: allowed.
  virtual std::vector<std::string> refusals(const ControlState& from, const ControlState& to) = 0;
};

struct ChangeOutcome {
  bool applied = false;
  // When refused (HTTP 409): why, one line each.
  std::vector<std::string> refusals;
  ControlState state;  // the state after the call
};

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;

  // GET /api/v1/status: phase, split, rules, rollback, epoch, journal depth, store health, and
  // where each value came from.
  virtual boost::asio::awaitable<boost::json::object> status() = 0;
  // PUT /api/v1/migration. `actor` names the caller for the audit log.
  virtual boost::asio::awaitable<ChangeOutcome> changeMigration(MigrationChange change, std::string actor) = 0;
  // POST / DELETE /api/v1/rollback. Takes effect for new requests at once.
  virtual Status raiseRollback(std::string reason, std::string actor) = 0;
  virtual Status clearRollback(std::string actor) = 0;
  // GET /readyz: every key can be answered: legacy answers, and so does enhanced while it may own
  // a key (not in legacy-only or shadow, under a rollback, or while a breaker holds it out).
  virtual boost::asio::awaitable<bool> ready() = 0;
  // GET /api/v1/locks: keys starting with `prefix` in every db, read from their owners, at most
  // `limit`.
  virtual boost::asio::awaitable<Result<LockListing>> listLocks(std::string prefix, size_t limit) = 0;
  // GET /api/v1/locks?repo=&pull=: the project locks of a repository or pull in every db, read
  // from their owners, ordered by db and key, at most `limit`.
  virtual boost::asio::awaitable<Result<LockListing>> findLocks(LockQuery query, size_t limit) = 0;
  // DELETE /api/v1/locks?repo=&pull=: releases every lock of the pull (what Atlantis does when a
  // pull request closes), each through UnlockIfOwnedByPull under the key's lock, so a lock taken
  // meanwhile by another pull stays. Recorded as one audit event. Returns what was released.
  virtual boost::asio::awaitable<Result<LockListing>> unlockPull(std::string repo, int64_t pull,
                                                                std::string actor) = 0;
  // DELETE /api/v1/locks/{key}: deletes the key from both stores (an operator's force unlock),
  // recorded as an audit event. Returns the value it had, nullopt when it was absent.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> forceUnlock(int db, std::string key,
                                                                                std::string actor) = 0;
  // GET /api/v1/events: the newest `max` audit events, oldest first, each a JSON object text.
  virtual std::vector<std::string> events(size_t max) = 0;
};

}  // namespace lockshift
