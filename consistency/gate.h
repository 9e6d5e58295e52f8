#pragma once
// The rollout gate of DESIGN §2: a forward move needs a consistency report that is clean for the
// keys that will move and newer than a configured age, and a shadow divergence rate (divergent /
// compared calls of the mirror) at most max_divergence_rate once the mirror compared anything. "Clean for the keys that will move": the
// newest finished report lists every divergent key (up to Report::kMaxListed); the move is
// refused if any of them changes owner from legacy to enhanced with it, or if the report could
// not list them all. A report that repaired keys is evidence of a repair, not of consistency:
// the keys it repaired count until a later check finds them equal.
//
// Thread-safety: refusals() may be called from any thread. Lifetime: `reports` must outlive it.

#include <chrono>
#include <functional>
#include <utility>

#include "consistency/report_store.h"
#include "router/control_plane.h"

namespace lockshift {

struct GateOptions {
  // The newest finished report must be younger than this. Shorter ages demand fresher evidence
  // (more frequent checks); longer ones let older evidence through.
  std::chrono::milliseconds max_report_age{std::chrono::hours(1)};
  // Wall clock in unix milliseconds; replaceable for tests.
  std::function<int64_t()> now;
  // The shadow mirror's totals (compared, divergent calls); absent: no shadow evidence is asked.
  std::function<std::pair<uint64_t, uint64_t>()> shadow_totals;
  // The most divergent / compared the shadow mirror may have seen, once it compared anything.
  double max_divergence_rate = 0.001;
};

class ReportGate final : public MigrationGate {
 public:
  ReportGate(const ReportStore& reports, GateOptions options);
  std::vector<std::string> refusals(const ControlState& from, const ControlState& to) override;

 private:
  const ReportStore& reports_;
  GateOptions options_;
};

}  // namespace lockshift
