#pragma once
// A consistency report (DESIGN §4): what one comparison of the legacy and enhanced stores found.
// Reports are plain values; report_store.h persists them, checker.h produces them. They render as
// JSON for machines (the admin API and `lockshiftctl --json`) and as Markdown or a self-contained
// HTML page for people: summary and verdict first, then counts, then examples.
//
// Thread-safety: plain values; the free functions share no state.

#include <boost/json/object.hpp>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace lockshift {

// The ways a key can differ between the stores, in the order reports list them.
enum class DivergenceKind { kMissingInEnhanced, kMissingInLegacy, kValueMismatch };
inline constexpr std::array<DivergenceKind, 3> kDivergenceKinds = {
    DivergenceKind::kMissingInEnhanced, DivergenceKind::kMissingInLegacy, DivergenceKind::kValueMismatch};
// "missing_in_enhanced", "missing_in_legacy", "value_mismatch"
std::string_view divergenceName(DivergenceKind kind);

// The class of a key, for per-class counts: "project-lock" (Atlantis's pr/... keys), "command-lock"
// (command/...), "other".
std::string_view keyClass(std::string_view key);

struct Divergence {
  DivergenceKind kind;
  int db = 0;
  std::string key;
  std::optional<std::string> legacy;    // the value in legacy when last compared; nullopt: absent
  std::optional<std::string> enhanced;  // likewise in enhanced
  std::string owner;                    // "legacy" | "enhanced": the store a repair copies from
};

struct StoreCount {
  std::string store;                     // the store's name ("lmdb", "redis")
  uint64_t keys = 0;                     // keys seen by the scan
  std::map<std::string, uint64_t> by_class;
};

struct Report {
  std::string id;                // "20261122T013500Z-3f2a": sortable by start time
  std::string state = "running";  // running | done | failed
  std::string mode = "online";    // online (through the running proxy) | offline (lockshiftctl diff)
  bool repair = false;            // whether divergences were repaired (owner -> other store)
  int64_t started_unix_ms = 0;
  int64_t finished_unix_ms = 0;
  int rounds = 0;                 // comparison rounds run (1 + rechecks)
  std::string error;              // state == failed: why
  std::string progress;           // running: "scanning legacy", "rechecking (round 2)", ...
  uint64_t keys_scanned = 0;      // running: keys seen so far, both stores
  StoreCount legacy, enhanced;
  uint64_t compared = 0;          // distinct keys compared
  uint64_t matched = 0;
  std::map<DivergenceKind, uint64_t> divergent;  // final counts, after the rechecks
  uint64_t repaired = 0;
  uint64_t repair_failed = 0;
  // Every final divergence up to kMaxListed (the gates need the keys), of which reports show
  // kMaxExamples per kind. divergences_truncated: more diverged than were listed.
  std::vector<Divergence> divergences;
  bool divergences_truncated = false;

  static constexpr size_t kMaxListed = 10000;
  static constexpr size_t kMaxExamples = 20;

  uint64_t totalDivergent() const;
  // "clean" (done, nothing diverged or everything repaired), "divergent", "failed", "running".
  std::string verdict() const;
};

boost::json::object reportToJson(const Report& report, bool with_divergences = true);
Result<Report> reportFromJson(std::string_view json);
// A one-object summary for lists: id, state, verdict, times, counts (no examples).
boost::json::object reportSummaryJson(const Report& report);
std::string renderMarkdown(const Report& report);
// A self-contained page (inline CSS, no scripts, no external resources).
std::string renderHtml(const Report& report);

}  // namespace lockshift
