#include "tools/lockshiftctl_cli.h"

#include <charconv>
#include <cmath>
#include <iostream>

#include "tools/lockshiftctl_output.h"

namespace lockshift::ctl {

std::optional<std::string> Invocation::value(std::string_view flag) const {
  auto it = flags.find(flag);
  if (it == flags.end()) return std::nullopt;
  return it->second;
}

int fail(int code, std::string_view message) {
  clearProgressLine();
  std::cerr << "lockshiftctl: " << message << "\n" << std::flush;
  return code;
}

int usageError(const Invocation& inv, std::string_view message) {
  fail(kExitUsage, message);
  std::cerr << "lockshiftctl: see 'lockshiftctl " << (inv.command.empty() ? "" : inv.command + " ") << "--help'\n";
  return kExitUsage;
}

std::optional<int64_t> parseInteger(std::string_view text, int64_t min, int64_t max) {
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || n < min || n > max) {
    return std::nullopt;
  }
  return n;
}

std::optional<double> parseSplit(std::string_view text) {
  double split = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), split);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(split) ||
      split < 0 || split > 100) {
    return std::nullopt;
  }
  return split;
}

bool isReportFormat(std::string_view text) { return text == "json" || text == "md" || text == "html"; }

}  // namespace lockshift::ctl
