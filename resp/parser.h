#pragma once
// A resumable RESP2 parser with named limits.
//
// Feed it bytes in any split (one byte at a time, or all at once) and it produces the same values:
// the parser keeps its position inside a value between calls and never re-scans consumed bytes.
// Numbers on the wire are parsed with overflow checks, and no allocation is sized from a count on
// the wire beyond min(count, kReserveCap): memory grows only with bytes actually received.
//
// Two modes:
//  - kRequest: what a server reads. A request is an array of bulk strings (`*2\r\n$3\r\nGET...`)
//    or an inline command (`GET foo\r\n`, telnet style, split on spaces/tabs with Redis's quoting
//    rules for "..." and '...'). Empty inline lines and `*0`/`*-1` requests are skipped.
//  - kReply: what a client reads. Any RESP2 value, nested arrays allowed up to max_depth.
//
// Thread-safety: none; one parser per connection.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "resp/value.h"

namespace lockshift::resp {

// Limits, named so config, code and tests share them. Defaults follow Redis where Redis has one.
struct Limits {
  static constexpr size_t kDefaultMaxBulkLength = 16 * 1024 * 1024;  // Redis: proto-max-bulk-len 512MB
  static constexpr size_t kDefaultMaxArrayLength = 1024 * 1024;       // Redis: INT_MAX
  static constexpr size_t kDefaultMaxInlineLength = 64 * 1024;        // Redis: PROTO_INLINE_MAX_SIZE
  static constexpr size_t kDefaultMaxDepth = 32;                      // kReply only
  // Before AUTH succeeds (when a password is configured), Redis allows 10 arguments of 16 KB.
  static constexpr size_t kUnauthenticatedMaxBulkLength = 16 * 1024;
  static constexpr size_t kUnauthenticatedMaxArrayLength = 10;
  // A count on the wire reserves at most this many slots up front (Redis: min(n, 1024)).
  static constexpr size_t kReserveCap = 1024;

  size_t max_bulk_length = kDefaultMaxBulkLength;
  size_t max_array_length = kDefaultMaxArrayLength;
  size_t max_inline_length = kDefaultMaxInlineLength;
  size_t max_depth = kDefaultMaxDepth;

  static Limits unauthenticated() {
    Limits l;
    l.max_bulk_length = kUnauthenticatedMaxBulkLength;
    l.max_array_length = kUnauthenticatedMaxArrayLength;
    return l;
  }
};

class Parser {
 public:
  enum class Mode { kRequest, kReply };
  enum class State { kNeedMore, kReady, kError };

  explicit Parser(Mode mode, Limits limits = {});

  // Consumes bytes from `in` until one complete value is ready, the input is exhausted, or an
  // error is found. Returns how many bytes were consumed; the rest must be fed again later
  // (after take*()). After kError the parser stays in kError: the connection must be closed.
  size_t feed(std::string_view in);

  State state() const { return state_; }
  // Only in kError: Redis's wording without the "ERR Protocol error: " prefix,
  // e.g. "invalid bulk length", "too big mbulk count string", "expected '$', got 'x'".
  const std::string& error() const { return error_; }

  // Only in kReady (kRequest mode): the command's arguments. Resets for the next request.
  std::vector<std::string> takeRequest();
  // Hands a handled request's arguments back, so their memory serves the next request instead
  // of new allocations: the vector, and up to kSpareStrings of its strings whose buffers are at
  // most kSpareCapacity bytes (what is kept per connection stays small).
  void recycle(std::vector<std::string>&& args);
  static constexpr size_t kSpareStrings = 4;
  static constexpr size_t kSpareCapacity = 4096;
  // Only in kReady (kReply mode): the value. Resets for the next value.
  Value takeValue();

  // Changes the limits for the values that follow (e.g. after AUTH). Applies from the next value.
  void setLimits(const Limits& limits) { limits_ = limits; }
  const Limits& limits() const { return limits_; }

  // Bytes buffered inside the parser for the value in progress (partial lines and bulk data):
  // the wire bytes consumed since that value began, including its completed elements, until it is
  // taken. Memory held is proportional to it (plus at most the fixed up-front reservations).
  size_t bufferedBytes() const { return value_bytes_; }

 private:
  enum class Step {
    kType,      // expecting a type byte ('*', '$', ...) or the first byte of an inline command
    kLine,      // reading the rest of a type line up to '\r'
    kLineFeed,  // the type line's '\r' was read; expecting '\n'
    kBulkData,  // copying bulk string bytes
    kBulkCrlf,  // expecting the "\r\n" after bulk data
    kInline,    // reading an inline command up to '\n' (kRequest only)
  };
  struct Frame {  // kReply: an array being filled
    Value value;
    int64_t remaining = 0;
  };

  // The common case, a whole request of a few bulk strings already in the input, read in one
  // pass: returns the first byte after it, or nullptr (nothing consumed, nothing changed) when the
  // input holds anything else, which the steps below then read.
  const char* wholeRequest(const char* p, const char* end);
  // The same for a whole reply (kReply mode, outside any array): a simple string, error, integer,
  // bulk string or null, or an array of up to kMaxArgs of those. Sets ready_.
  const char* wholeReply(const char* p, const char* end);
  // One reply that is not an array, into `out`; nullptr when it is not whole and plain.
  const char* wholeScalar(const char* p, const char* end, Value& out) const;
  // Points `s` (empty) at the smallest recycled buffer that holds n bytes, if one does and its own
  // capacity does not.
  void reuseSpare(std::string& s, size_t n);

  // Each step consumes bytes from [p, end) (p < end) and returns the first byte not consumed.
  const char* onType(const char* p, const char* end);
  const char* onLine(const char* p, const char* end);
  const char* onLineFeed(const char* p, const char* end);
  const char* onBulkData(const char* p, const char* end);
  const char* onBulkCrlf(const char* p, const char* end);
  const char* onInline(const char* p, const char* end);

  void processLine(std::string_view line);
  void processArrayLength(std::string_view line);
  void processBulkLength(std::string_view line);
  void processInline(std::string_view line);
  void finishBulk();
  void finishValue(Value v);  // kReply: a value is complete; it fills arrays or becomes ready
  void fail(std::string message);

  Mode mode_;
  Limits limits_;  // as configured by setLimits()
  Limits active_;  // the limits for the value in progress (copied from limits_ when it starts)
  State state_ = State::kNeedMore;
  std::string error_;
  Step step_ = Step::kType;
  char type_ = 0;               // the type byte of the line being read
  std::string line_;            // partial type line or inline command (without terminator)
  int64_t bulk_remaining_ = 0;  // bulk bytes still expected
  std::string bulk_;            // bulk data received so far
  bool saw_cr_ = false;         // kBulkCrlf: the '\r' was read
  std::vector<std::string> args_;  // kRequest: the arguments of the request in progress or ready
  std::vector<std::string> spare_args_;     // kRequest: a recycled, empty argument vector
  std::vector<std::string> spare_strings_;  // kRequest: recycled strings for the next bulks
  int64_t args_remaining_ = 0;     // kRequest: bulk strings still expected (0 outside an array)
  std::vector<Frame> stack_;       // kReply: open arrays, outermost first
  std::optional<Value> ready_;     // kReply: the complete value
  size_t value_bytes_ = 0;         // bytes consumed for the value in progress or ready
  bool skipped_ = false;           // an empty request was consumed; restart the byte count
};

}  // namespace lockshift::resp
