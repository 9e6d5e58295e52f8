#pragma once
// Comparing secrets (the RESP password, the admin token) without revealing, through the time a
// wrong guess takes, how much of it was right.

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace lockshift {

// Equality whose running time depends only on the lengths of `a` and `b`, not on where they
// first differ.
inline bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned diff = a.size() != b.size() ? 1 : 0;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace lockshift
