#pragma once
// Wall-clock time for audit records and persisted state (not for measuring durations: use
// std::chrono::steady_clock for those).

#include <chrono>
#include <cstdint>

namespace lockshift {

inline int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace lockshift
