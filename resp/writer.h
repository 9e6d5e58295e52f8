#pragma once
// Appends RESP2 replies to an output buffer. Header-only: on the hot path of every reply.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace lockshift::resp {

inline void appendInteger(std::string& out, char prefix, int64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.push_back(prefix);
  out.append(buf, end);
  out.append("\r\n");
}

inline void writeSimple(std::string& out, std::string_view s) {
  out.push_back('+');
  out.append(s);
  out.append("\r\n");
}
// `message` is written after '-' verbatim: it must start with the error code ("ERR ...").
// CR and LF inside the message would break framing and are replaced by spaces.
inline void writeError(std::string& out, std::string_view message) {
  out.push_back('-');
  for (char c : message) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out.append("\r\n");
}
inline void writeInteger(std::string& out, int64_t n) { appendInteger(out, ':', n); }
inline void writeBulk(std::string& out, std::string_view s) {
  appendInteger(out, '$', static_cast<int64_t>(s.size()));
  out.append(s);
  out.append("\r\n");
}
inline void writeNull(std::string& out) { out.append("$-1\r\n"); }
inline void writeNullArray(std::string& out) { out.append("*-1\r\n"); }
inline void writeArrayHeader(std::string& out, size_t n) {
  appendInteger(out, '*', static_cast<int64_t>(n));
}

}  // namespace lockshift::resp
