#pragma once
// Value grammars of the config file shared by the loader: quoting for messages, number
// formatting, and "host:port" addresses. Internal to proxy/config*.cc.

#include <cstdint>
#include <string>
#include <string_view>

namespace lockshift::config_detail {

// `text` in double quotes, with control and non-ASCII bytes as \xNN, for error messages.
std::string inQuotes(std::string_view text);
// A number as a person writes it: no trailing zeros, no exponent for ordinary values.
std::string formatNumber(double value);

struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};
// Parses "host:port" or "[v6]:port"; returns an error message, empty on success.
std::string parseHostPort(std::string_view text, HostPort& out);
// 127.0.0.0/8, ::1 and localhost.
bool isLoopback(const std::string& host);
// 0.0.0.0 and :: (every interface).
bool isWildcard(const std::string& host);

}  // namespace lockshift::config_detail
