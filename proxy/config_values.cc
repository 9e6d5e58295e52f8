#include "proxy/config_values.h"

#include "proxy/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <utility>


// Durations, byte sizes and addresses as the config file writes them.

namespace lockshift {
namespace config_detail {

// ---------------------------------------------------------------------------------------------
// Quantities: durations and byte sizes share one grammar, <number>[.<fraction>]<unit>.

struct Unit {
  std::string_view name;
  uint64_t factor;
};

constexpr Unit kDurationUnits[] = {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}};
constexpr std::string_view kDurationUnitNames = "ms, s, m or h";

constexpr Unit kByteUnits[] = {
    {"B", 1},
    {"KiB", uint64_t{1} << 10},
    {"MiB", uint64_t{1} << 20},
    {"GiB", uint64_t{1} << 30},
    {"TiB", uint64_t{1} << 40},
    {"KB", 1'000},
    {"MB", 1'000'000},
    {"GB", 1'000'000'000},
    {"TB", 1'000'000'000'000},
};
constexpr std::string_view kByteUnitNames = "B, KiB, MiB, GiB, TiB, KB, MB, GB or TB";

// A non-negative decimal as written: whole = 1, fraction = 5, fraction_scale = 10 for "1.5".
struct Decimal {
  uint64_t whole = 0;
  uint64_t fraction = 0;
  uint64_t fraction_scale = 1;
};

// `text` in double quotes, control and non-ASCII bytes escaped, for error messages.
std::string inQuotes(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

std::string formatNumber(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", value);
  return buf;
}

enum class DecimalError { kNone, kMalformed, kTooLarge, kTooPrecise };

// Reads a decimal at the front of `text` and advances past it. Rejects a missing integer part,
// a trailing point, more than 9 fraction digits and values above 2^64-1.
DecimalError takeDecimal(std::string_view& text, Decimal& out) {
  out = Decimal{};
  size_t i = 0;
  for (; i < text.size() && isDigit(text[i]); ++i) {
    if (__builtin_mul_overflow(out.whole, 10, &out.whole) ||
        __builtin_add_overflow(out.whole, uint64_t(text[i] - '0'), &out.whole)) {
      return DecimalError::kTooLarge;
    }
  }
  if (i == 0) return DecimalError::kMalformed;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    for (; i < text.size() && isDigit(text[i]); ++i) {
      if (i - start >= 9) return DecimalError::kTooPrecise;
      out.fraction = out.fraction * 10 + uint64_t(text[i] - '0');
      out.fraction_scale *= 10;
    }
    if (i == start) return DecimalError::kMalformed;
  }
  text.remove_prefix(i);
  return DecimalError::kNone;
}

// Why takeDecimal failed, for an error message; `malformed` says what was expected.
std::string decimalErrorText(DecimalError error, std::string_view malformed) {
  switch (error) {
    case DecimalError::kTooLarge:
      return "too large";
    case DecimalError::kTooPrecise:
      return "more than 9 decimal places";
    default:
      return std::string(malformed);
  }
}

// Reads the run of letters at the front of `text` and advances past it.
std::string_view takeUnit(std::string_view& text) {
  size_t i = 0;
  while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
  std::string_view unit = text.substr(0, i);
  text.remove_prefix(i);
  return unit;
}

std::optional<uint64_t> unitFactor(std::span<const Unit> units, std::string_view name) {
  for (const Unit& u : units) {
    if (u.name == name) return u.factor;
  }
  return std::nullopt;
}

// number × factor when it is a whole number no greater than `max`; otherwise an error message.
std::string scale(const Decimal& d, uint64_t factor, uint64_t max, const char* whole_unit,
                  uint64_t& out) {
  using U128 = unsigned __int128;
  U128 fraction = U128(d.fraction) * factor;
  if (fraction % d.fraction_scale != 0) return std::string("not a whole number of ") + whole_unit;
  U128 value = U128(d.whole) * factor + fraction / d.fraction_scale;
  if (value > max) return "too large";
  out = static_cast<uint64_t>(value);
  return {};
}


// ---------------------------------------------------------------------------------------------
// Listen and connect addresses: "host:port", "[v6]:port".


bool allOf(std::string_view s, bool (*pred)(char)) { return std::all_of(s.begin(), s.end(), pred); }
bool isHostnameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// Splits and checks an address; returns an error message, empty when `out` is valid.
std::string parseHostPort(std::string_view text, HostPort& out) {
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
    out.host = std::string(text.substr(1, close - 1));
    in6_addr addr6;
    if (inet_pton(AF_INET6, out.host.c_str(), &addr6) != 1) return "invalid IPv6 address";
    if (close + 1 >= text.size() || text[close + 1] != ':') return "missing :port";
    colon = close + 1;
  } else {
    colon = text.rfind(':');
    if (colon == std::string_view::npos) return "missing :port";
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) return "IPv6 addresses need brackets: [::1]:6380";
    if (out.host.empty()) return "missing host";
    if (!allOf(out.host, isHostnameChar)) return "invalid host name";
    in_addr addr4;
    bool numeric = allOf(out.host, [](char c) { return isDigit(c) || c == '.'; });
    if (numeric && inet_pton(AF_INET, out.host.c_str(), &addr4) != 1) return "invalid IPv4 address";
  }
  std::string_view port = text.substr(colon + 1);
  if (port.empty() || port.size() > 5 || !allOf(port, isDigit)) return "port must be a number";
  unsigned value = std::stoul(std::string(port));
  if (value < 1 || value > 65535) return "port must be between 1 and 65535";
  out.port = static_cast<uint16_t>(value);
  return {};
}

// 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 and "localhost".
bool isLoopback(const std::string& host) {
  std::string lower = host;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower == "localhost") return true;
  in_addr addr4;
  if (inet_pton(AF_INET, host.c_str(), &addr4) == 1) return (ntohl(addr4.s_addr) >> 24) == 127;
  in6_addr addr6;
  if (inet_pton(AF_INET6, host.c_str(), &addr6) != 1) return false;
  if (IN6_IS_ADDR_LOOPBACK(&addr6)) return true;
  return IN6_IS_ADDR_V4MAPPED(&addr6) && addr6.s6_addr[12] == 127;
}

bool isWildcard(const std::string& host) { return host == "0.0.0.0" || host == "::"; }

// ---------------------------------------------------------------------------------------------

}  // namespace config_detail

using namespace config_detail;

Result<Duration> parseDuration(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Status::invalidArgument("invalid duration " + inQuotes(text) + ": " + std::string(why));
  };
  if (text == "0") return Duration{0};
  if (!text.empty() && text.front() == '-') return fail("must not be negative");
  constexpr uint64_t kMax = std::numeric_limits<Duration::rep>::max();
  uint64_t total = 0;
  std::string_view rest = text;
  do {
    Decimal number;
    if (DecimalError e = takeDecimal(rest, number); e != DecimalError::kNone) {
      return fail(decimalErrorText(e, "expected a number and a unit such as \"5s\" or \"250ms\""));
    }
    std::string_view unit = takeUnit(rest);
    if (unit.empty()) return fail("missing unit (" + std::string(kDurationUnitNames) + ")");
    std::optional<uint64_t> factor = unitFactor(kDurationUnits, unit);
    if (!factor) {
      return fail("unknown unit " + inQuotes(unit) + " (use " + std::string(kDurationUnitNames) +
                  ")");
    }
    uint64_t part = 0;
    if (std::string why = scale(number, *factor, kMax, "milliseconds", part); !why.empty()) {
      return fail(why);
    }
    if (part > kMax - total) return fail("too large");
    total += part;
  } while (!rest.empty());
  return Duration{static_cast<Duration::rep>(total)};
}

Result<size_t> parseByteSize(std::string_view text) {
  auto fail = [&](std::string_view why) {
    return Status::invalidArgument("invalid byte size " + inQuotes(text) + ": " + std::string(why));
  };
  if (!text.empty() && text.front() == '-') return fail("must not be negative");
  std::string_view rest = text;
  Decimal number;
  if (DecimalError e = takeDecimal(rest, number); e != DecimalError::kNone) {
    return fail(decimalErrorText(
        e, "expected a number of bytes, optionally with a unit, such as \"64MiB\""));
  }
  std::string_view unit = takeUnit(rest);
  if (!rest.empty()) return fail("unexpected " + inQuotes(rest) + " after the unit");
  std::optional<uint64_t> factor = unit.empty() ? 1 : unitFactor(kByteUnits, unit);
  if (!factor)
    return fail("unknown unit " + inQuotes(unit) + " (use " + std::string(kByteUnitNames) + ")");
  uint64_t bytes = 0;
  std::string why = scale(number, *factor, std::numeric_limits<size_t>::max(), "bytes", bytes);
  if (!why.empty()) return fail(why);
  return static_cast<size_t>(bytes);
}

}  // namespace lockshift
