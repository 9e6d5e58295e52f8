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
};

}  // namespace lockshift
