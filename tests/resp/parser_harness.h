#pragma once
// Test helpers for resp::Parser: feed bytes in a chosen split and record what comes out, so that
// tests compare the outcome of different splits of the same input.

#include <algorithm>
#include <cstdio>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "resp/parser.h"
#include "resp/value.h"

namespace lockshift::resp::testing {

// One thing the parser produced: a request, a reply value, an error, or (last) a value still in
// progress with its bufferedBytes().
struct Event {
  enum class Kind { kRequest, kValue, kError, kPending };
  Kind kind = Kind::kValue;
  std::vector<std::string> args;
  Value value;
  std::string error;
  size_t buffered = 0;

  static Event ofRequest(std::vector<std::string> a) {
    return {Kind::kRequest, std::move(a), {}, {}, 0};
  }
  static Event ofValue(Value v) { return {Kind::kValue, {}, std::move(v), {}, 0}; }
  static Event ofError(std::string e) { return {Kind::kError, {}, {}, std::move(e), 0}; }
  static Event ofPending(size_t n) { return {Kind::kPending, {}, {}, {}, n}; }
  bool operator==(const Event&) const = default;
};

inline std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

inline std::string describe(const Value& v) {
  switch (v.type) {
    case Type::kSimpleString:
      return "+" + quote(v.str);
    case Type::kError:
      return "-" + quote(v.str);
    case Type::kInteger:
      return ":" + std::to_string(v.integer);
    case Type::kBulkString:
      return "$" + quote(v.str);
    case Type::kNull:
      return "nil";
    case Type::kArray: {
      std::string out = "[";
      for (const Value& e : v.elements) out += (out.size() > 1 ? ", " : "") + describe(e);
      return out + "]";
    }
  }
  return "?";
}

inline std::string describe(const Event& e) {
  switch (e.kind) {
    case Event::Kind::kRequest: {
      std::string out = "request(";
      for (size_t i = 0; i < e.args.size(); ++i) out += (i ? " " : "") + quote(e.args[i]);
      return out + ")";
    }
    case Event::Kind::kValue:
      return "value(" + describe(e.value) + ")";
    case Event::Kind::kError:
      return "error(" + e.error + ")";
    case Event::Kind::kPending:
      return "pending(" + std::to_string(e.buffered) + ")";
  }
  return "?";
}

inline void PrintTo(const Event& e, std::ostream* os) { *os << describe(e); }

// Feeds the chunks in order to a new parser and records every value, the first error, and a value
// left in progress. A parser that stops consuming without a value or an error is reported as the
// error "stalled".
inline std::vector<Event> run(Parser::Mode mode, const Limits& limits,
                              const std::vector<std::string_view>& chunks) {
  Parser parser(mode, limits);
  std::vector<Event> out;
  for (std::string_view chunk : chunks) {
    while (true) {
      chunk.remove_prefix(parser.feed(chunk));
      if (parser.state() == Parser::State::kReady) {
        out.push_back(mode == Parser::Mode::kRequest ? Event::ofRequest(parser.takeRequest())
                                                     : Event::ofValue(parser.takeValue()));
        continue;
      }
      if (parser.state() == Parser::State::kError) {
        out.push_back(Event::ofError(parser.error()));
        return out;
      }
      if (!chunk.empty()) {
        out.push_back(Event::ofError("stalled"));
        return out;
      }
      break;
    }
  }
  if (parser.bufferedBytes() > 0) out.push_back(Event::ofPending(parser.bufferedBytes()));
  return out;
}

// `s` cut before each offset in `cuts` (offsets may repeat and be unsorted; empty chunks are kept).
inline std::vector<std::string_view> splitAt(std::string_view s, std::vector<size_t> cuts) {
  std::sort(cuts.begin(), cuts.end());
  std::vector<std::string_view> chunks;
  size_t from = 0;
  for (size_t cut : cuts) {
    cut = std::min(cut, s.size());
    chunks.push_back(s.substr(from, cut - from));
    from = cut;
  }
  chunks.push_back(s.substr(from));
  return chunks;
}

// `s` in chunks of n bytes (n > 0).
inline std::vector<std::string_view> splitEvery(std::string_view s, size_t n) {
  std::vector<std::string_view> chunks;
  for (size_t i = 0; i < s.size(); i += n) chunks.push_back(s.substr(i, n));
  return chunks;
}

}  // namespace lockshift::resp::testing
