#include "shadow/compare.h"

#include "common/json_compare.h"

namespace lockshift {

std::string_view shadowDivergenceName(ShadowDivergence kind) {
  switch (kind) {
    case ShadowDivergence::kDecision: return "decision";
    case ShadowDivergence::kHolder: return "holder";
    case ShadowDivergence::kUnlock: return "unlock";
    case ShadowDivergence::kDelete: return "delete";
    case ShadowDivergence::kValue: return "value";
    case ShadowDivergence::kScan: return "scan";
    case ShadowDivergence::kError: return "error";
  }
  return "unknown";
}

namespace {

std::string outcomeText(const PutResult& r) {
  switch (r.outcome) {
    case PutResult::Outcome::kApplied: return "applied";
    case PutResult::Outcome::kConditionFailed: return "condition not met";
    case PutResult::Outcome::kLockedByOther: return "locked by " + r.holder;
  }
  return "?";
}

bool sameOptional(const std::optional<std::string>& a, const std::optional<std::string>& b) {
  if (!a || !b) return !a && !b;
  return sameJsonValue(*a, *b);
}

std::string valueText(const std::optional<std::string>& v) {
  if (!v) return "(nil)";
  return v->size() <= 200 ? *v : v->substr(0, 200) + "…";
}

Comparison differ(ShadowDivergence kind, std::string legacy, std::string enhanced) {
  return Comparison{kind, "legacy: " + legacy + "; enhanced: " + enhanced};
}

}  // namespace

Comparison compareAnswers(const MirroredCall& l, const EnhancedAnswer& e) {
  if (!e.status) return Comparison{ShadowDivergence::kError, "enhanced: " + e.status.message()};
  switch (l.op) {
    case MirroredCall::Op::kPut: {
      if (l.put_result.outcome != e.put_result.outcome) {
        return differ(ShadowDivergence::kDecision, outcomeText(l.put_result), outcomeText(e.put_result));
      }
      if (l.put_result.outcome == PutResult::Outcome::kLockedByOther && l.put_result.holder != e.put_result.holder) {
        return differ(ShadowDivergence::kHolder, outcomeText(l.put_result), outcomeText(e.put_result));
      }
      if (l.put.return_previous && !sameOptional(l.put_result.previous, e.put_result.previous)) {
        return differ(ShadowDivergence::kValue, valueText(l.put_result.previous), valueText(e.put_result.previous));
      }
      return {};
    }
    case MirroredCall::Op::kDelete:
      if (l.deleted != e.deleted) {
        return differ(ShadowDivergence::kDelete, "deleted " + std::to_string(l.deleted),
                      "deleted " + std::to_string(e.deleted));
      }
      return {};
    case MirroredCall::Op::kUnlockScript:
      if (!sameOptional(l.value, e.value)) {
        return differ(ShadowDivergence::kUnlock, l.value ? "unlocked " + valueText(l.value) : "not unlocked",
                      e.value ? "unlocked " + valueText(e.value) : "not unlocked");
      }
      return {};
    case MirroredCall::Op::kGet:
      if (!sameOptional(l.value, e.value)) return differ(ShadowDivergence::kValue, valueText(l.value), valueText(e.value));
      return {};
    case MirroredCall::Op::kScan:
      for (size_t i = 0; i < l.keys.size() && i < e.present.size(); ++i) {
        if (!e.present[i]) return Comparison{ShadowDivergence::kScan, "legacy's scan returned " + l.keys[i] + "; enhanced has no such key"};
      }
      return {};
  }
  return {};
}

}  // namespace lockshift
