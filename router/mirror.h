#pragma once
// The seam between the router and the shadow mirror (shadow/): in the shadow phase the router
// answers every request from legacy, then hands the call and legacy's answer to a MirrorSink,
// which replays it on enhanced after the client was answered and compares the answers.
//
// The router never waits for the mirror: submit() must not block. A write the sink cannot take
// (its queue is full) is journaled instead, so enhanced is repaired and never silently behind.

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lock_store.h"

namespace lockshift {

// One client call as legacy answered it.
struct MirroredCall {
  enum class Op { kGet, kPut, kDelete, kUnlockScript, kScan };
  Op op = Op::kGet;
  int db = 0;
  std::string key;  // empty for kScan
  PutRequest put;               // kPut: the request
  std::string pull_num;         // kUnlockScript: the script's argument
  std::vector<std::string> keys;  // kScan: the keys of legacy's page
  // Legacy's answer.
  Status status;
  std::optional<std::string> value;  // kGet: the value; kUnlockScript: the deleted value
  PutResult put_result;              // kPut
  int64_t deleted = 0;               // kDelete
};

// Enhanced's answer to the same call (Router::replayOnEnhanced).
struct EnhancedAnswer {
  bool skipped = false;  // the key is dirty: the journal repairs it, so there is nothing to compare
  Status status;
  std::optional<std::string> value;
  PutResult put_result;
  int64_t deleted = 0;
  std::vector<bool> present;  // kScan: whether each of legacy's keys exists in enhanced
};

class MirrorSink {
 public:
  virtual ~MirrorSink() = default;
  // Queues a call for replay, taking it; never blocks. False when it was dropped (queue full),
  // and then `call` is left as it was.
  virtual bool submit(MirroredCall&& call) = 0;
  // Reads (GET, sampled SCAN) are mirrored too.
  virtual bool mirrorReads() const = 0;
  // Calls for this key are queued or being replayed: the journal waits before repairing it, so a
  // queued replay never lands on top of a repair.
  virtual bool pending(int db, std::string_view key) const = 0;
  // Calls queued or being replayed. Leaving the shadow phase waits for 0 (Router::changeMigration).
  virtual size_t depth() const = 0;
  // For GET /api/v1/status.
  virtual boost::json::object statusJson() const = 0;
};

}  // namespace lockshift
