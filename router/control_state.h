#pragma once
// The migration's control state (DESIGN §2): phase, traffic split, routing rules, emergency
// rollback and epoch. It decides which store owns each key. The config file gives the initial
// value; after that it lives in <state_dir>/control.json and survives restarts.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lockshift {

enum class Phase { kLegacyOnly, kShadow, kHybrid, kEnhancedOnly };
enum class StoreRole { kLegacy, kEnhanced };

std::string_view phaseName(Phase phase);
std::optional<Phase> parsePhase(std::string_view name);
std::string_view roleName(StoreRole role);
std::optional<StoreRole> parseRole(std::string_view name);

struct RoutingRule {
  std::string match;  // Redis glob over the whole key
  StoreRole owner;
};

struct Rollback {
  bool raised = false;
  std::string reason;
  std::string actor;       // "admin", "flag-file", "cli", ...
  int64_t since_unix_ms = 0;
};

struct ControlState {
  Phase phase = Phase::kLegacyOnly;
  // Percent of the 10 000 buckets owned by enhanced in hybrid: buckets [0, split*100) move.
  double traffic_split = 0;
  // Evaluated in order before the split in hybrid; the first match decides.
  std::vector<RoutingRule> rules;
  Rollback rollback;
  // Set when the first move past legacy-only starts copying legacy into enhanced: from then on
  // every write that enhanced misses is journaled, so enhanced never silently falls behind.
  bool enhanced_in_use = false;
  // Set once that copy completed. Until then no move past legacy-only is applied.
  bool enhanced_filled = false;
  // Set while enhanced is in use with [migration] keep_legacy_in_sync off: legacy misses
  // enhanced's writes from then on. It stays set when the setting is turned back on, until a
  // consistency check finds legacy equal to enhanced (or repairs it): until then legacy must not
  // take keys back (no rollback, no unforced move back).
  bool legacy_behind = false;
  // Incremented by every change, so replicas and logs can tell states apart.
  uint64_t epoch = 0;

  // Where each value came from: "config" (the file's initial state) or "state" (control.json,
  // written by the admin API, the CLI or the flag file).
  std::string phase_source = "config";
  std::string split_source = "config";
  std::string rules_source = "config";

  // The store that owns `key` under this state, before dirty-key pinning (router.h). Legacy
  // while a rollback is raised or enhanced is not filled yet, whatever the phase.
  StoreRole ownerOf(std::string_view key) const;
  // Number of buckets owned by enhanced in hybrid (0..10000).
  uint32_t enhancedBuckets() const;
  // Percent of buckets enhanced owns under this state, as ownerOf() decides before rules: 0 in
  // legacy-only and shadow, while a rollback is raised or enhanced is not filled yet; the split
  // in hybrid; 100 in enhanced-only.
  double enhancedOwnedPercent() const;
};

// control.json <-> ControlState. Parsing validates every field (kInvalidArgument naming it).
std::string encodeControlState(const ControlState& state);
Result<ControlState> decodeControlState(std::string_view json);

}  // namespace lockshift
