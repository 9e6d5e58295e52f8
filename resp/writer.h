#pragma once
// Appends RESP2 replies to an output buffer. Header-only: on the hot path of every reply.

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace lockshift::resp {

// ---- Framing into memory sized first ----
// A request or reply made of many bulk strings (a record script's EVALSHA has about thirty) is
// written with one resize of the output and plain stores, instead of five std::string appends
// per bulk string (about 230 instructions each, under callgrind, most of them in the appends'
// calls; BENCHMARKS.md, "Round of 2026-12-07 (day)"). headerLength(n) bytes hold putHeader(p,
// prefix, n) and bulkLength(s) bytes hold putBulk(p, s); each put returns the position after
// what it wrote. grow(out, n) appends n bytes to `out` for them and returns where they begin.

inline size_t decimalLength(uint64_t n) {
  size_t length = 1;
  while (n >= 10) {
    n /= 10;
    ++length;
  }
  return length;
}
inline size_t headerLength(uint64_t n) { return decimalLength(n) + 3; }  // prefix, digits, CRLF
inline size_t bulkLength(std::string_view s) { return headerLength(s.size()) + s.size() + 2; }

inline char* putHeader(char* p, char prefix, uint64_t n) {
  *p++ = prefix;
  char* const end = p + decimalLength(n);
  char* digit = end;
  do {
    *--digit = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  end[0] = '\r';
  end[1] = '\n';
  return end + 2;
}
inline char* putBulk(char* p, std::string_view s) {
  p = putHeader(p, '$', s.size());
  if (!s.empty()) std::memcpy(p, s.data(), s.size());
  p += s.size();
  p[0] = '\r';
  p[1] = '\n';
  return p + 2;
}
inline char* grow(std::string& out, size_t n) {
  const size_t at = out.size();
  out.resize(at + n);
  return out.data() + at;
}

// ---- Appending to a buffer ----

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
inline void writeBulk(std::string& out, std::string_view s) { putBulk(grow(out, bulkLength(s)), s); }
inline void writeNull(std::string& out) { out.append("$-1\r\n"); }
inline void writeNullArray(std::string& out) { out.append("*-1\r\n"); }
inline void writeArrayHeader(std::string& out, size_t n) { putHeader(grow(out, headerLength(n)), '*', n); }

}  // namespace lockshift::resp
