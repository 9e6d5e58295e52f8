#include "consistency/gate.h"

#include <cstdio>

#include "common/clock.h"

namespace lockshift {

namespace {

// Ownership by phase, split and rules alone: a raised rollback or an unfilled enhanced store
// hands everything to legacy for now, but the gate judges where keys go once those clear.
ControlState ownershipOnly(ControlState s) {
  s.rollback = Rollback{};
  s.enhanced_filled = true;
  return s;
}

std::string seconds(int64_t ms) { return std::to_string(ms / 1000) + " s"; }

}  // namespace

ReportGate::ReportGate(const ReportStore& reports, GateOptions options)
    : reports_(reports), options_(std::move(options)) {
  if (!options_.now) options_.now = nowUnixMs;
}

std::vector<std::string> ReportGate::refusals(const ControlState& from, const ControlState& to) {
  std::vector<std::string> out;
  if (options_.shadow_totals) {
    auto [compared, divergent] = options_.shadow_totals();
    if (compared > 0) {
      const double rate = static_cast<double>(divergent) / static_cast<double>(compared);
      if (rate > options_.max_divergence_rate) {
        char text[160];
        std::snprintf(text, sizeof text, "shadow divergence rate %.4f%% (%llu of %llu calls) is above %.4f%%",
                      rate * 100, static_cast<unsigned long long>(divergent), static_cast<unsigned long long>(compared),
                      options_.max_divergence_rate * 100);
        out.push_back(text);
      }
    }
  }
  std::optional<Report> report = reports_.latestDone();
  if (!report) {
    out.push_back("no finished consistency report: run a check (lockshiftctl check --wait) first");
    return out;
  }
  const int64_t age = options_.now() - report->finished_unix_ms;
  if (age > options_.max_report_age.count()) {
    out.push_back("the newest consistency report " + report->id + " is " + seconds(age) +
                  " old; the gate needs one newer than " + seconds(options_.max_report_age.count()));
  }
  if (report->divergences_truncated) {
    out.push_back("consistency report " + report->id + " found more divergent keys than it lists (" +
                  std::to_string(report->totalDivergent()) + "); repair and check again");
    return out;
  }
  const ControlState before = ownershipOnly(from), after = ownershipOnly(to);
  size_t moving = 0;
  std::string example;
  for (const auto& d : report->divergences) {
    if (before.ownerOf(d.key) == StoreRole::kLegacy && after.ownerOf(d.key) == StoreRole::kEnhanced) {
      if (moving++ == 0) example = d.key;
    }
  }
  if (moving > 0) {
    out.push_back("consistency report " + report->id + " (" + report->verdict() + ") has " + std::to_string(moving) +
                  " divergent keys that this move hands to enhanced, e.g. " + example +
                  (report->verdict() == "repaired" ? "; check again to confirm the repair" : "; repair and check again"));
  }
  return out;
}

}  // namespace lockshift
