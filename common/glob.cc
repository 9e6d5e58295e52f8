#include "common/glob.h"

#include <cstddef>
#include <optional>

namespace lockshift {

namespace {

// Matches one pattern element at pattern[p] against c. Returns the length of the element, or
// nullopt if it does not match. `*` is handled by the caller.
std::optional<size_t> matchOne(std::string_view pattern, size_t p, char c) {
  char pc = pattern[p];
  if (pc == '?') return 1;
  if (pc == '\\' && p + 1 < pattern.size()) {
    return pattern[p + 1] == c ? std::optional<size_t>(2) : std::nullopt;
  }
  if (pc != '[') return pc == c ? std::optional<size_t>(1) : std::nullopt;

  // Character class, Redis style: [abc] [^abc] [a-z] with \x escapes; an unclosed class
  // extends to the end of the pattern.
  size_t i = p + 1;
  bool negate = i < pattern.size() && pattern[i] == '^';
  if (negate) ++i;
  bool matched = false;
  while (i < pattern.size() && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      if (pattern[i + 1] == c) matched = true;
      i += 2;
    } else if (i + 2 < pattern.size() && pattern[i + 1] == '-') {
      char lo = pattern[i], hi = pattern[i + 2];
      if (lo > hi) std::swap(lo, hi);
      if (c >= lo && c <= hi) matched = true;
      i += 3;
    } else {
      if (pattern[i] == c) matched = true;
      ++i;
    }
  }
  size_t len = (i < pattern.size() ? i + 1 : i) - p;
  return matched != negate ? std::optional<size_t>(len) : std::nullopt;
}

}  // namespace

// Iterative matching with a single backtrack point for the last `*`: linear in practice and
// never exponential, unlike the naive recursive form (Redis hardened its own against that).
bool globMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  std::optional<size_t> star_p, star_t;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      if (auto len = matchOne(pattern, p, text[t])) {
        p += *len;
        ++t;
        continue;
      }
    }
    if (!star_p) return false;
    p = *star_p;
    t = ++*star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::string globLiteralPrefix(std::string_view pattern) {
  std::string literal;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '*' || c == '?' || c == '[') break;
    // As matchOne(): a backslash escapes the next character; a trailing one is itself.
    if (c == '\\' && i + 1 < pattern.size()) ++i;
    literal.push_back(pattern[i]);
  }
  return literal;
}

}  // namespace lockshift
