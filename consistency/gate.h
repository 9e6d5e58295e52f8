#pragma once
// The rollout gate of DESIGN §2: a forward move needs a consistency report that is clean for the
// keys that will move and newer than a configured age. "Clean for the keys that will move": the
// newest finished report lists every divergent key (up to Report::kMaxListed); the move is
// refused if any of them changes owner from legacy to enhanced with it, or if the report could
// not list them all. A report that repaired keys is evidence of a repair, not of consistency:
// the keys it repaired count until a later check finds them equal.
//
// Thread-safety: refusals() may be called from any thread. Lifetime: `reports` must outlive it.

#include <chrono>
#include <functional>

#include "consistency/report_store.h"
#include "router/control_plane.h"

namespace lockshift {

struct GateOptions {
  // The newest finished report must be younger than this. Shorter ages demand fresher evidence
  // (more frequent checks); longer ones let older evidence through.
  std::chrono::milliseconds max_report_age{std::chrono::hours(1)};
  // Wall clock in unix milliseconds; replaceable for tests.
  std::function<int64_t()> now;
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
