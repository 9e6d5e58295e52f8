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
};

struct LockListing {
  std::vector<LockEntry> locks;
  bool truncated = false;  // more keys matched than the limit
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
  // GET /readyz: both stores answer.
  virtual boost::asio::awaitable<bool> ready() = 0;
  // GET /api/v1/locks: keys starting with `prefix` in every db, read from their owners, at most
  // `limit`.
  virtual boost::asio::awaitable<Result<LockListing>> listLocks(std::string prefix, size_t limit) = 0;
  // DELETE /api/v1/locks/{key}: deletes the key from both stores (an operator's force unlock),
  // recorded as an audit event. Returns the value it had, nullopt when it was absent.
  virtual boost::asio::awaitable<Result<std::optional<std::string>>> forceUnlock(int db, std::string key,
                                                                                std::string actor) = 0;
  // GET /api/v1/events: the newest `max` audit events, oldest first, each a JSON object text.
  virtual std::vector<std::string> events(size_t max) = 0;
};

}  // namespace lockshift
