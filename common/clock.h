#pragma once
// Wall-clock time for audit records and persisted state (not for measuring durations: use
// std::chrono::steady_clock for those).

#include <chrono>
#include <cstdint>
#include <ctime>
#include <string>

namespace lockshift {

inline int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `unix_ms` in UTC with strftime's `format` ("%Y-%m-%d %H:%M:%S UTC"); "-" for 0 or less.
inline std::string formatUtc(int64_t unix_ms, const char* format) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace lockshift
