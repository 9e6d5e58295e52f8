#pragma once
// The consistency checker (DESIGN §4): compares the legacy and enhanced stores key by key.
//
// Round 1 scans legacy, then enhanced, in pages; each key is read from both stores and the
// values compared as JSON (field order ignored; byte comparison when either is not JSON). Keys
// that differ are kept, and each later round re-reads only those after `recheck_delay`, so a
// write in flight is not reported: a key is divergent only if it differed in every round. Memory
// is bounded by the page size plus the differing keys, never by the store size.
//
// With `repair`, every final divergence is repaired from its owner to the other store through
// `repair_key` (the router's, online: under the key's lock; a direct copy, offline).
//
// Thread-safety: runCheck() uses only its arguments; the stores must be safe for concurrent use
// (every LockStore is). Lifetime: the stores and every callback must outlive the awaitable.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "backends/lock_store.h"
#include "consistency/report.h"
#include "router/control_state.h"

namespace lockshift {

struct CheckOptions {
  // Comparison rounds: 1 compares once; each further round rechecks the keys that still differ.
  // More rounds tolerate longer in-flight writes; each costs a recheck_delay.
  int rounds = 3;
  std::chrono::milliseconds recheck_delay{1000};
  // Keys read per scan page, and reads in flight per store.
  size_t page_size = 500;
  size_t concurrency = 32;
  bool repair = false;
  int databases = 1;  // checks db 0..databases-1
  // The store that owns a key now: decides the repair direction. Required.
  std::function<StoreRole(int db, std::string_view key)> owner;
  // Copies the owner's value of `key` to the other store (deleting it there if the owner has
  // none). Required when repair is set.
  std::function<asio::awaitable<Status>(int db, std::string key)> repair_key;
  // Polled between pages: true ends the check as failed ("cancelled"). Optional.
  std::function<bool()> cancelled;
  // Called with the report in progress after every page and round (for status and progress
  // bars). Optional.
  std::function<void(const Report&)> on_progress;
};

// Runs a whole check into `report` (whose id, mode and started time the caller sets). Never
// throws: a store error ends the check with state "failed" and the error.
asio::awaitable<void> runCheck(LockStore& legacy, LockStore& enhanced, CheckOptions options,
                               Report& report);

// Compares two stored values as lock decisions do: JSON-equal when both parse as JSON (field
// order ignored), byte-equal otherwise.
bool sameValue(std::string_view a, std::string_view b);

// Copies `key` from `from` to `to` (or deletes it from `to` when `from` has none). Used offline,
// where no router serialises writes.
asio::awaitable<Status> copyKey(LockStore& from, LockStore& to, int db, std::string key);

}  // namespace lockshift
