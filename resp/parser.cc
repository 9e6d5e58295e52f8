#include "resp/parser.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <utility>

namespace lockshift::resp {
namespace {

// Bulk data reserves at most this much before its bytes arrive; beyond it, memory grows with the
// bytes received.
constexpr size_t kBulkReserveCap = 64 * 1024;

// Redis's string2ll(): an optional '-', no '+', no leading zeros, no "-0", no overflow.
bool parseInt(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") {
    out = 0;
    return true;
  }
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative && ++i == s.size()) return false;
  if (s[i] < '1' || s[i] > '9') return false;
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  constexpr auto kMax = static_cast<uint64_t>(INT64_MAX);
  if (negative) {
    if (v > kMax + 1) return false;
    out = v == kMax + 1 ? INT64_MIN : -static_cast<int64_t>(v);
  } else {
    if (v > kMax) return false;
    out = static_cast<int64_t>(v);
  }
  return true;
}

// A count line as the one-pass readers (Parser::wholeRequest, wholeReply) read it: 1 to
// max_digits digits (at most 18, so no overflow), no sign and no leading zero, then "\r\n".
// Returns the byte after the line and sets `out`, or returns nullptr for anything else, an
// incomplete line included; the line steps then read it, and report what is wrong with it.
const char* scanCount(const char* p, const char* end, size_t max_digits, int64_t& out) {
  const size_t limit = std::min<size_t>(max_digits, 18);
  const char* q = p;
  int64_t v = 0;
  while (q < end && *q >= '0' && *q <= '9') {
    if (static_cast<size_t>(q - p) == limit) return nullptr;
    v = v * 10 + (*q - '0');
    ++q;
  }
  if (q == p || (*p == '0' && q - p > 1) || end - q < 2 || q[0] != '\r' || q[1] != '\n') return nullptr;
  out = v;
  return q + 2;
}

// A bulk string's "<len>\r\n<data>\r\n" after its '$', as the one-pass readers read it: the
// length as scanCount() reads it, at most max_bulk, and the data with its CRLF all in the input.
// Returns the byte after it and sets `data`, or returns nullptr.
const char* scanBulk(const char* p, const char* end, const Limits& limits, std::string_view& data) {
  int64_t len = 0;
  const char* q = scanCount(p, end, limits.max_inline_length, len);
  if (q == nullptr || static_cast<uint64_t>(len) > limits.max_bulk_length || end - q < len + 2 || q[len] != '\r' ||
      q[len + 1] != '\n') {
    return nullptr;
  }
  data = std::string_view(q, static_cast<size_t>(len));
  return q + len + 2;
}

// C isspace() in the "C" locale.
bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool isHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hexValue(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

// What "\<c>" stands for inside double quotes.
char unescape(char c) {
  constexpr std::string_view kFrom = "nrtba", kTo = "\n\r\t\b\a";
  const size_t i = kFrom.find(c);
  return i == std::string_view::npos ? c : kTo[i];
}

// Splits an inline command like Redis's sdssplitargs(): arguments are separated by blanks;
// "..." understands \n \r \t \b \a \xHH and \<any>; '...' understands only \'. A closing quote
// must be followed by a blank or the end of the line. Returns false on unbalanced quotes.
// Unlike Redis, a NUL byte is an ordinary character rather than the end of the line.
bool splitInline(std::string_view line, std::vector<std::string>& args) {
  const size_t n = line.size();
  size_t i = 0;
  while (true) {
    while (i < n && isSpace(line[i])) ++i;
    if (i == n) return true;
    std::string arg;
    enum class Quote { kNone, kDouble, kSingle } quote = Quote::kNone;
    bool done = false;
    while (!done) {
      if (quote == Quote::kNone) {
        if (i == n) break;
        const char c = line[i++];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
          done = true;
        } else if (c == '"') {
          quote = Quote::kDouble;
        } else if (c == '\'') {
          quote = Quote::kSingle;
        } else {
          arg.push_back(c);
        }
        continue;
      }
      if (i == n) return false;  // unterminated quotes
      const char c = line[i];
      const char close = quote == Quote::kDouble ? '"' : '\'';
      if (c == close) {
        if (i + 1 < n && !isSpace(line[i + 1])) return false;
        ++i;
        done = true;
      } else if (quote == Quote::kDouble && c == '\\' && i + 3 < n && line[i + 1] == 'x' &&
                 isHexDigit(line[i + 2]) && isHexDigit(line[i + 3])) {
        arg.push_back(static_cast<char>(hexValue(line[i + 2]) * 16 + hexValue(line[i + 3])));
        i += 4;
      } else if (quote == Quote::kDouble && c == '\\' && i + 1 < n) {
        arg.push_back(unescape(line[i + 1]));
        i += 2;
      } else if (quote == Quote::kSingle && c == '\\' && i + 1 < n && line[i + 1] == '\'') {
        arg.push_back('\'');
        i += 2;
      } else {
        arg.push_back(c);
        ++i;
      }
    }
    args.push_back(std::move(arg));
  }
}

}  // namespace

Parser::Parser(Mode mode, Limits limits) : mode_(mode), limits_(limits), active_(limits) {}

size_t Parser::feed(std::string_view in) {
  const char* const begin = in.data();
  const char* const end = begin + in.size();
  const char* p = begin;
  while (p < end && state_ == State::kNeedMore) {
    if (step_ == Step::kType && (mode_ == Mode::kRequest ? args_remaining_ == 0 && *p == '*' : stack_.empty())) {
      if (const char* after = mode_ == Mode::kRequest ? wholeRequest(p, end) : wholeReply(p, end)) {
        value_bytes_ += static_cast<size_t>(after - p);
        p = after;
        break;
      }
    }
    const char* next = p;
    switch (step_) {
      case Step::kType:
        next = onType(p, end);
        break;
      case Step::kLine:
        next = onLine(p, end);
        break;
      case Step::kLineFeed:
        next = onLineFeed(p, end);
        break;
      case Step::kBulkData:
        next = onBulkData(p, end);
        break;
      case Step::kBulkCrlf:
        next = onBulkCrlf(p, end);
        break;
      case Step::kInline:
        next = onInline(p, end);
        break;
    }
    value_bytes_ += static_cast<size_t>(next - p);
    p = next;
    if (skipped_ || state_ == State::kError) {  // nothing is held for a value any more
      skipped_ = false;
      value_bytes_ = 0;
    }
  }
  return static_cast<size_t>(p - begin);
}

// A request is almost always whole in one read, and a few bulk strings long: read that way, it
// takes one pass and no step per line (the steps cost about a thousand instructions for a GET).
// It yields exactly what the steps would, and leaves everything unusual to them: more than
// kMaxArgs arguments, a count the limits refuse, any byte out of the plain form, an incomplete
// request. Those return nullptr before anything changed.
const char* Parser::wholeRequest(const char* p, const char* end) {
  constexpr int64_t kMaxArgs = 8;
  std::string_view found[kMaxArgs];
  // '*' and '$' lines count against the inline limit, as onLine() reads them.
  int64_t n = 0;
  const char* q = scanCount(p + 1, end, limits_.max_inline_length, n);
  if (q == nullptr || n < 1 || n > kMaxArgs || static_cast<uint64_t>(n) > limits_.max_array_length) return nullptr;
  for (int64_t i = 0; i < n; ++i) {
    if (q == end || *q != '$') return nullptr;
    q = scanBulk(q + 1, end, limits_, found[i]);
    if (q == nullptr) return nullptr;
  }
  active_ = limits_;
  args_.clear();
  if (args_.capacity() == 0) args_.swap(spare_args_);  // empty after takeRequest()
  args_.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    std::string arg;
    if (found[i].size() > arg.capacity()) reuseSpare(arg, found[i].size());
    arg.assign(found[i]);
    args_.push_back(std::move(arg));
  }
  state_ = State::kReady;
  return q;
}

// Replies from a store are read this way: a store's reply to a script is a short flat array,
// and a scalar reply still saves the steps' turns. As for requests, anything the steps would read
// differently (or reject) is left to them.
const char* Parser::wholeReply(const char* p, const char* end) {
  constexpr int64_t kMaxElements = 8;
  Value v;
  const char* q = nullptr;
  if (*p != '*') {
    q = wholeScalar(p, end, v);
    if (q == nullptr) return nullptr;
  } else {
    if (limits_.max_depth == 0) return nullptr;  // the steps refuse any array then
    if (end - p >= 5 && std::memcmp(p, "*-1\r\n", 5) == 0 && limits_.max_inline_length >= 2) {
      q = p + 5;  // a null array: v stays null
    } else {
      int64_t n = 0;
      q = scanCount(p + 1, end, limits_.max_inline_length, n);
      if (q == nullptr || n > kMaxElements || static_cast<uint64_t>(n) > limits_.max_array_length) return nullptr;
      v.type = Type::kArray;
      v.elements.resize(static_cast<size_t>(n));
      for (Value& element : v.elements) {
        if (q == end) return nullptr;
        q = wholeScalar(q, end, element);
        if (q == nullptr) return nullptr;
      }
    }
  }
  active_ = limits_;
  ready_ = std::move(v);
  state_ = State::kReady;
  return q;
}

const char* Parser::wholeScalar(const char* p, const char* end, Value& out) const {
  const char type = *p;
  if (type == '$') {
    if (end - p >= 5 && std::memcmp(p, "$-1\r\n", 5) == 0 && limits_.max_inline_length >= 2) {
      out = Value::null();
      return p + 5;
    }
    std::string_view data;
    const char* q = scanBulk(p + 1, end, limits_, data);
    if (q == nullptr) return nullptr;
    out = Value::bulk(std::string(data));
    return q;
  }
  if (type != '+' && type != '-' && type != ':') return nullptr;
  const auto* cr = static_cast<const char*>(std::memchr(p + 1, '\r', static_cast<size_t>(end - p - 1)));
  if (cr == nullptr || end - cr < 2 || cr[1] != '\n') return nullptr;
  const std::string_view line(p + 1, static_cast<size_t>(cr - p - 1));
  // The limits onLine() applies: text as long as a bulk string, a number as long as an inline line.
  if (line.size() > (type == ':' ? limits_.max_inline_length : limits_.max_bulk_length)) return nullptr;
  if (type == ':') {
    int64_t n = 0;
    if (!parseInt(line, n)) return nullptr;
    out = Value::integer_(n);
  } else {
    out = type == '+' ? Value::simple(std::string(line)) : Value::error(std::string(line));
  }
  return cr + 2;
}

void Parser::reuseSpare(std::string& s, size_t n) {
  auto best = spare_strings_.end();
  for (auto it = spare_strings_.begin(); it != spare_strings_.end(); ++it) {
    if (it->capacity() >= n && (best == spare_strings_.end() || it->capacity() < best->capacity())) best = it;
  }
  if (best != spare_strings_.end()) {
    s.swap(*best);
    spare_strings_.erase(best);
    s.clear();
  }
}

std::vector<std::string> Parser::takeRequest() {
  if (state_ != State::kReady || mode_ != Mode::kRequest) return {};
  std::vector<std::string> args = std::move(args_);
  args_.clear();
  state_ = State::kNeedMore;
  value_bytes_ = 0;
  return args;
}

void Parser::recycle(std::vector<std::string>&& args) {
  if (mode_ != Mode::kRequest) return;
  if (spare_strings_.capacity() < kSpareStrings) spare_strings_.reserve(kSpareStrings);
  for (std::string& arg : args) {
    if (spare_strings_.size() == kSpareStrings) break;
    // A short string's buffer is inline (no allocation to save); a large one is not kept.
    if (arg.capacity() > std::string().capacity() && arg.capacity() <= kSpareCapacity) {
      spare_strings_.push_back(std::move(arg));
    }
  }
  args.clear();
  if (args.capacity() > spare_args_.capacity() && args.capacity() <= Limits::kReserveCap) {
    spare_args_ = std::move(args);
  }
}

Value Parser::takeValue() {
  if (state_ != State::kReady || mode_ != Mode::kReply) return Value::null();
  Value v = std::move(*ready_);
  ready_.reset();
  state_ = State::kNeedMore;
  value_bytes_ = 0;
  return v;
}

const char* Parser::onType(const char* p, const char* end) {
  const bool top = mode_ == Mode::kRequest ? args_remaining_ == 0 : stack_.empty();
  if (top) active_ = limits_;
  const char c = *p;
  if (mode_ == Mode::kRequest) {
    if (top && c != '*') {
      step_ = Step::kInline;  // the byte is part of the inline command
      return p;
    }
    if (!top && c != '$') {
      fail(std::string("expected '$', got '") + c + "'");
      return p + 1;
    }
  } else if (c != '+' && c != '-' && c != ':' && c != '$' && c != '*') {
    fail(std::string("unknown reply type byte '") + c + "'");
    return p + 1;
  }
  type_ = c;
  step_ = Step::kLine;
  return p + 1;
}

const char* Parser::onLine(const char* p, const char* end) {
  // Simple strings and errors may be as long as a bulk string; numbers get the inline limit.
  const bool text = type_ == '+' || type_ == '-';
  const size_t limit = text ? active_.max_bulk_length : active_.max_inline_length;
  const auto* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(end - p)));
  const size_t len = static_cast<size_t>((cr != nullptr ? cr : end) - p);
  if (len > limit - std::min(limit, line_.size())) {
    fail(type_ == '*'   ? "too big mbulk count string"
         : type_ == '$' ? "too big bulk count string"
         : text         ? "too big simple string"
                        : "too big integer string");
    return end;
  }
  if (cr == nullptr || cr + 1 == end) {
    line_.append(p, len);
    if (cr != nullptr) step_ = Step::kLineFeed;
    return end;
  }
  if (!line_.empty() || cr[1] != '\n') {
    line_.append(p, len);
    return onLineFeed(cr + 1, end);
  }
  processLine(std::string_view(p, len));  // the whole line is in the input: no copy
  return cr + 2;
}

const char* Parser::onLineFeed(const char* p, const char* end) {
  if (*p != '\n') {
    fail(type_ == '*'   ? "invalid multibulk length"
         : type_ == '$' ? "invalid bulk length"
                        : "line not terminated by CRLF");
    return p;
  }
  processLine(line_);
  line_.clear();
  return p + 1;
}

void Parser::processLine(std::string_view line) {
  step_ = Step::kType;
  switch (type_) {
    case '*':
      return processArrayLength(line);
    case '$':
      return processBulkLength(line);
    case '+':
      return finishValue(Value::simple(std::string(line)));
    case '-':
      return finishValue(Value::error(std::string(line)));
    default: {  // ':'
      int64_t n = 0;
      if (!parseInt(line, n)) return fail("invalid integer");
      return finishValue(Value::integer_(n));
    }
  }
}

void Parser::processArrayLength(std::string_view line) {
  int64_t n = 0;
  if (!parseInt(line, n) || n > INT_MAX ||
      (n > 0 && static_cast<uint64_t>(n) > active_.max_array_length)) {
    return fail("invalid multibulk length");
  }
  const size_t reserve =
      std::min(static_cast<size_t>(std::max<int64_t>(n, 0)), Limits::kReserveCap);
  if (mode_ == Mode::kRequest) {
    if (n <= 0) {  // Redis skips empty and negative multibulk requests without a reply
      skipped_ = true;
      return;
    }
    args_.clear();
    if (args_.capacity() == 0) args_.swap(spare_args_);  // empty after takeRequest()
    args_.reserve(reserve);
    args_remaining_ = n;
    return;
  }
  if (n < -1) return fail("invalid multibulk length");
  if (n == -1) return finishValue(Value::null());
  if (stack_.size() >= active_.max_depth) return fail("too many nested arrays");
  if (n == 0) return finishValue(Value::array({}));
  Frame frame;
  frame.value.type = Type::kArray;
  frame.value.elements.reserve(reserve);
  frame.remaining = n;
  stack_.push_back(std::move(frame));
}

void Parser::processBulkLength(std::string_view line) {
  int64_t n = 0;
  if (!parseInt(line, n) || n < -1 || (n == -1 && mode_ == Mode::kRequest) ||
      (n >= 0 && static_cast<uint64_t>(n) > active_.max_bulk_length)) {
    return fail("invalid bulk length");
  }
  if (n == -1) return finishValue(Value::null());
  bulk_.clear();
  // bulk_ was moved into the arguments: take the smallest recycled buffer that holds n bytes.
  if (static_cast<size_t>(n) > bulk_.capacity()) reuseSpare(bulk_, static_cast<size_t>(n));
  bulk_remaining_ = n;
  saw_cr_ = false;
  step_ = n > 0 ? Step::kBulkData : Step::kBulkCrlf;
}

const char* Parser::onBulkData(const char* p, const char* end) {
  const size_t take = std::min(static_cast<size_t>(end - p), static_cast<size_t>(bulk_remaining_));
  const size_t needed = bulk_.size() + take;
  if (needed > bulk_.capacity()) {
    // Geometric growth bounded by the announced length: about twice what arrived, or the cap.
    const size_t total = bulk_.size() + static_cast<size_t>(bulk_remaining_);
    bulk_.reserve(std::min(total, std::max({needed, 2 * bulk_.capacity(), kBulkReserveCap})));
  }
  bulk_.append(p, take);
  bulk_remaining_ -= static_cast<int64_t>(take);
  if (bulk_remaining_ == 0) step_ = Step::kBulkCrlf;
  return p + take;
}

const char* Parser::onBulkCrlf(const char* p, const char* end) {
  if (!saw_cr_) {
    if (*p != '\r') {
      fail("bulk data not terminated by CRLF");
      return p;
    }
    saw_cr_ = true;
    if (++p == end) return p;
  }
  if (*p != '\n') {
    fail("bulk data not terminated by CRLF");
    return p;
  }
  saw_cr_ = false;
  finishBulk();
  return p + 1;
}

void Parser::finishBulk() {
  step_ = Step::kType;
  if (mode_ == Mode::kReply) {
    finishValue(Value::bulk(std::move(bulk_)));
    bulk_.clear();
    return;
  }
  args_.push_back(std::move(bulk_));
  bulk_.clear();
  if (--args_remaining_ == 0) state_ = State::kReady;
}

const char* Parser::onInline(const char* p, const char* end) {
  // The command ends at '\n'; one '\r' before it is dropped, so the content may be limit bytes
  // plus a pending '\r'.
  const size_t limit = active_.max_inline_length;
  const auto* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
  const size_t len = static_cast<size_t>((nl != nullptr ? nl : end) - p);
  const size_t total = line_.size() + len;
  if (total > limit) {
    const char last = len > 0 ? p[len - 1] : line_.back();
    if (total - limit > 1 || last != '\r') {
      fail("too big inline request");
      return end;
    }
  }
  if (nl == nullptr) {
    line_.append(p, len);
    return end;
  }
  std::string_view line(p, len);
  if (!line_.empty()) {
    line_.append(p, len);
    line = line_;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  processInline(line);
  line_.clear();
  return nl + 1;
}

void Parser::processInline(std::string_view line) {
  step_ = Step::kType;
  std::vector<std::string> args;
  if (!splitInline(line, args)) return fail("unbalanced quotes in request");
  if (args.empty()) {
    skipped_ = true;
    return;
  }
  // Redis bounds inline commands only by their length; the array and bulk limits hold here too so
  // that no request, however it arrives, exceeds them.
  if (args.size() > active_.max_array_length) return fail("too many arguments in inline request");
  for (const std::string& arg : args) {
    if (arg.size() > active_.max_bulk_length) return fail("too big argument in inline request");
  }
  args_ = std::move(args);
  state_ = State::kReady;
}

void Parser::finishValue(Value v) {
  step_ = Step::kType;
  while (!stack_.empty()) {
    Frame& top = stack_.back();
    top.value.elements.push_back(std::move(v));
    if (--top.remaining > 0) return;
    v = std::move(top.value);
    stack_.pop_back();
  }
  ready_ = std::move(v);
  state_ = State::kReady;
}

void Parser::fail(std::string message) {
  state_ = State::kError;
  error_ = std::move(message);
  // The connection is closed after an error: release what the value in progress held.
  line_ = {};
  bulk_ = {};
  args_ = {};
  stack_ = {};
  ready_.reset();
}

}  // namespace lockshift::resp
