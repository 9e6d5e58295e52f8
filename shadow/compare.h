#pragma once
// Comparing legacy's and enhanced's answers to one call as lock decisions (DESIGN §2, shadow):
// granted or refused, the holder's pull when refused, the unlock result, values as JSON (member
// order ignored), and whether the keys of a sampled scan page exist.
//
// Thread-safety: pure functions.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "router/mirror.h"

namespace lockshift {

enum class ShadowDivergence {
  kDecision,  // one granted (or wrote), the other refused
  kHolder,    // both refused, naming different holders
  kUnlock,    // the unlock script deleted in one and not the other, or returned different locks
  kDelete,    // DEL deleted a key in one and not the other
  kValue,     // GET (or SET ... GET) returned different values
  kScan,      // a key of legacy's scan page is missing in enhanced
  kError,     // enhanced failed where legacy answered
};
inline constexpr std::array<ShadowDivergence, 7> kShadowDivergences = {
    ShadowDivergence::kDecision, ShadowDivergence::kHolder, ShadowDivergence::kUnlock, ShadowDivergence::kDelete,
    ShadowDivergence::kValue,    ShadowDivergence::kScan,   ShadowDivergence::kError};
// "decision", "holder", "unlock", "delete", "value", "scan", "error"
std::string_view shadowDivergenceName(ShadowDivergence kind);

struct Comparison {
  std::optional<ShadowDivergence> divergence;  // nullopt: the same answer
  std::string detail;                          // "legacy: applied; enhanced: locked by pull #3 (bob)"
};

Comparison compareAnswers(const MirroredCall& legacy, const EnhancedAnswer& enhanced);

}  // namespace lockshift
