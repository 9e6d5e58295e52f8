// rapidcheck properties of the RESP codec: decode(encode(v)) == v, any split of the input decodes
// the same, and random bytes never crash the parser or get past its limits.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/value.h"
#include "tests/resp/parser_harness.h"

namespace lockshift::resp {
namespace {

using testing::Event;
using testing::run;
using testing::splitAt;
using testing::splitEvery;

constexpr auto kRequest = Parser::Mode::kRequest;
constexpr auto kReply = Parser::Mode::kReply;

rc::Gen<std::string> genBytes() {
  return rc::gen::container<std::string>(rc::gen::arbitrary<char>());
}

// Simple strings and errors cannot hold CR or LF.
rc::Gen<std::string> genLine() {
  return rc::gen::container<std::string>(
      rc::gen::suchThat(rc::gen::arbitrary<char>(), [](char c) { return c != '\r' && c != '\n'; }));
}

rc::Gen<Value> genValue(int depth) {
  auto leaf =
      rc::gen::oneOf(rc::gen::map(genLine(), Value::simple), rc::gen::map(genLine(), Value::error),
                     rc::gen::map(rc::gen::arbitrary<int64_t>(), Value::integer_),
                     rc::gen::map(genBytes(), Value::bulk), rc::gen::just(Value::null()));
  if (depth == 0) return leaf;
  auto array = rc::gen::mapcat(rc::gen::inRange(0, 6), [depth](int n) {
    return rc::gen::map(rc::gen::container<std::vector<Value>>(n, genValue(depth - 1)),
                        Value::array);
  });
  return rc::gen::weightedOneOf<Value>({{3, leaf}, {1, array}});
}

// Offsets at which to cut a string of `size` bytes.
std::vector<size_t> genCuts(size_t size) {
  return *rc::gen::container<std::vector<size_t>>(rc::gen::inRange<size_t>(0, size + 1));
}

std::vector<Event> valuesOf(const std::vector<Value>& values) {
  std::vector<Event> events;
  for (const Value& v : values) events.push_back(Event::ofValue(v));
  return events;
}

RC_GTEST_PROP(RespCodec, replyRoundTrips, ()) {
  const Value v = *genValue(3);
  const std::string wire = encode(v);
  RC_ASSERT(run(kReply, Limits{}, {wire}) == valuesOf({v}));
  RC_ASSERT(run(kReply, Limits{}, splitAt(wire, genCuts(wire.size()))) == valuesOf({v}));
}

RC_GTEST_PROP(RespCodec, commandRoundTrips, ()) {
  const auto args = *rc::gen::nonEmpty(rc::gen::container<std::vector<std::string>>(genBytes()));
  std::string wire;
  encodeCommand(args, wire);
  RC_ASSERT(run(kRequest, Limits{}, {wire}) == std::vector<Event>{Event::ofRequest(args)});
}

RC_GTEST_PROP(RespCodec, anySplitOfManyRepliesDecodesTheSame, ()) {
  const auto values = *rc::gen::container<std::vector<Value>>(genValue(2));
  std::string wire;
  for (const Value& v : values) encode(v, wire);
  RC_ASSERT(run(kReply, Limits{}, splitAt(wire, genCuts(wire.size()))) == valuesOf(values));
}

RC_GTEST_PROP(RespCodec, anySplitOfManyRequestsDecodesTheSame, ()) {
  const auto commands = *rc::gen::container<std::vector<std::vector<std::string>>>(
      rc::gen::nonEmpty(rc::gen::container<std::vector<std::string>>(genBytes())));
  std::string wire;
  std::vector<Event> want;
  for (const auto& args : commands) {
    encodeCommand(args, wire);
    want.push_back(Event::ofRequest(args));
  }
  RC_ASSERT(run(kRequest, Limits{}, splitAt(wire, genCuts(wire.size()))) == want);
}

// Bytes that often form (almost) valid RESP, mixed with arbitrary ones.
rc::Gen<std::string> genNoise() {
  const std::string alphabet = "*$+-:\r\n0123456789 \t\"'\\x-";
  auto byte = rc::gen::weightedOneOf<char>(
      {{3, rc::gen::elementOf(alphabet)}, {1, rc::gen::arbitrary<char>()}});
  auto piece = rc::gen::oneOf(rc::gen::container<std::string>(byte),
                              rc::gen::map(genValue(2), [](const Value& v) { return encode(v); }));
  return rc::gen::map(rc::gen::container<std::vector<std::string>>(piece),
                      [](const std::vector<std::string>& pieces) {
                        std::string s;
                        for (const std::string& p : pieces) s += p;
                        return s;
                      });
}

size_t depthOf(const Value& v) {
  size_t depth = 0;
  for (const Value& e : v.elements) depth = std::max(depth, depthOf(e));
  return v.type == Type::kArray ? depth + 1 : 0;
}

bool withinLimits(const Value& v, const Limits& limits) {
  if (v.str.size() > limits.max_bulk_length || v.elements.size() > limits.max_array_length) {
    return false;
  }
  for (const Value& e : v.elements) {
    if (!withinLimits(e, limits)) return false;
  }
  return true;
}

Limits genLimits() {
  Limits limits;
  limits.max_bulk_length = *rc::gen::inRange<size_t>(0, 40);
  limits.max_array_length = *rc::gen::inRange<size_t>(0, 6);
  limits.max_inline_length = *rc::gen::inRange<size_t>(0, 40);
  limits.max_depth = *rc::gen::inRange<size_t>(0, 4);
  return limits;
}

RC_GTEST_PROP(RespCodec, randomBytesStayWithinLimitsWhateverTheSplit, ()) {
  const auto mode = *rc::gen::element(kRequest, kReply);
  const Limits limits = genLimits();
  const std::string wire = *genNoise();
  const std::vector<Event> whole = run(mode, limits, {wire});
  RC_ASSERT(run(mode, limits, splitEvery(wire, 1)) == whole);
  RC_ASSERT(run(mode, limits, splitAt(wire, genCuts(wire.size()))) == whole);
  for (const Event& e : whole) {
    RC_ASSERT(e.error != "stalled");
    if (e.kind == Event::Kind::kRequest) {
      RC_ASSERT(!e.args.empty());
      RC_ASSERT(e.args.size() <= limits.max_array_length);
      for (const std::string& arg : e.args) RC_ASSERT(arg.size() <= limits.max_bulk_length);
    } else if (e.kind == Event::Kind::kValue) {
      RC_ASSERT(withinLimits(e.value, limits));
      RC_ASSERT(depthOf(e.value) <= limits.max_depth);
    }
  }
}

// Changes, inserts or removes up to three bytes of `wire`, mostly bytes that mean something in
// RESP. Returns how many flaws it made (inside a property: draws from rapidcheck).
int addFlaws(std::string& wire) {
  const std::string alphabet = "*$+-:\r\n0123456789 x";
  const int flaws = *rc::gen::inRange(0, 4);
  for (int i = 0; i < flaws && !wire.empty(); ++i) {
    const size_t at = *rc::gen::inRange<size_t>(0, wire.size());
    const char c = *rc::gen::elementOf(alphabet);
    switch (*rc::gen::inRange(0, 3)) {
      case 0:
        wire[at] = c;
        break;
      case 1:
        wire.insert(wire.begin() + static_cast<std::ptrdiff_t>(at), c);
        break;
      default:
        wire.erase(at, 1);
    }
  }
  return flaws;
}

// Requests as clients send them, with a few bytes changed, inserted or removed: counts with a
// sign or a leading zero, lengths that do not match, missing CRLFs, cut-off requests. A whole
// request in one chunk may be read in one pass (Parser::wholeRequest); fed a byte at a time, it is
// read line by line. Both must give the same requests, the same error and the same pending bytes.
RC_GTEST_PROP(RespCodec, flawedRequestsDecodeTheSameWholeAndByteByByte, ()) {
  const auto commands = *rc::gen::container<std::vector<std::vector<std::string>>>(
      *rc::gen::inRange<size_t>(1, 4), rc::gen::mapcat(rc::gen::inRange<size_t>(1, 10), [](size_t n) {
        auto arg = rc::gen::mapcat(rc::gen::inRange<size_t>(0, 24), [](size_t size) {
          return rc::gen::container<std::string>(size, rc::gen::arbitrary<char>());
        });
        return rc::gen::container<std::vector<std::string>>(n, arg);
      }));
  std::string wire;
  for (const auto& args : commands) encodeCommand(args, wire);
  const int flaws = addFlaws(wire);
  // Limits a request of these sizes may or may not be within, every count line included.
  Limits limits;
  if (*rc::gen::element(0, 1, 2) != 0) {
    limits.max_bulk_length = *rc::gen::inRange<size_t>(0, 30);
    limits.max_array_length = *rc::gen::inRange<size_t>(1, 10);
    limits.max_inline_length = *rc::gen::inRange<size_t>(1, 3);
  }
  const std::vector<Event> whole = run(kRequest, limits, {wire});
  RC_ASSERT(run(kRequest, limits, splitEvery(wire, 1)) == whole);
  RC_TAG(flaws == 0 ? "intact" : "flawed");
}

// The same for replies: a store's replies, with a few bytes changed, inserted or removed, under
// limits they may or may not be within (arrays refused at depth 0, count lines of one or two
// digits). Whole replies may be read in one pass (Parser::wholeReply), a byte at a time never.
RC_GTEST_PROP(RespCodec, flawedRepliesDecodeTheSameWholeAndByteByByte, ()) {
  const auto values = *rc::gen::container<std::vector<Value>>(*rc::gen::inRange<size_t>(1, 4), genValue(2));
  std::string wire;
  for (const Value& v : values) encode(v, wire);
  const int flaws = addFlaws(wire);
  Limits limits;
  if (*rc::gen::element(0, 1, 2) != 0) {
    limits.max_bulk_length = *rc::gen::inRange<size_t>(0, 30);
    limits.max_array_length = *rc::gen::inRange<size_t>(0, 10);
    limits.max_inline_length = *rc::gen::inRange<size_t>(0, 4);
    limits.max_depth = *rc::gen::inRange<size_t>(0, 3);
  }
  const std::vector<Event> whole = run(kReply, limits, {wire});
  RC_ASSERT(run(kReply, limits, splitEvery(wire, 1)) == whole);
  RC_TAG(flaws == 0 ? "intact" : "flawed");
}

// The most wire bytes one value can take under `limits`: a count line holds at most
// max_inline_length bytes, a simple string max_bulk_length, arrays nest up to max_depth.
size_t maxWireSize(Parser::Mode mode, const Limits& l, size_t depth = 0) {
  const size_t countLine = 1 + l.max_inline_length + 2;
  const size_t bulk = countLine + l.max_bulk_length + 2;
  if (mode == kRequest)
    return std::max(l.max_inline_length + 2, countLine + l.max_array_length * bulk);
  size_t element = std::max({1 + l.max_bulk_length + 2, countLine, bulk});
  if (depth < l.max_depth) {
    element = std::max(element, countLine + l.max_array_length * maxWireSize(mode, l, depth + 1));
  }
  return element;
}

// bufferedBytes() counts the bytes consumed since the value in progress began (an empty request
// consumed in between starts the count again): it never exceeds what arrived, nor the largest
// value the limits allow, and drops to zero when the value is taken.
RC_GTEST_PROP(RespCodec, bufferedBytesStayWithinWhatArrivedAndTheLimits, ()) {
  const auto mode = *rc::gen::element(kRequest, kReply);
  const Limits limits = genLimits();
  const std::string wire = *genNoise();
  const size_t bound = maxWireSize(mode, limits);
  Parser parser(mode, limits);
  size_t sinceTake = 0;
  for (std::string_view chunk : splitAt(wire, genCuts(wire.size()))) {
    while (parser.state() != Parser::State::kError) {
      const size_t n = parser.feed(chunk);
      chunk.remove_prefix(n);
      sinceTake += n;
      RC_ASSERT(parser.bufferedBytes() <= sinceTake);
      RC_ASSERT(parser.bufferedBytes() <= bound);
      if (parser.state() != Parser::State::kReady) break;
      mode == kRequest ? (void)parser.takeRequest() : (void)parser.takeValue();
      RC_ASSERT(parser.bufferedBytes() == 0u);
      sinceTake = 0;
    }
  }
}

TEST(RespEncode, Shapes) {
  EXPECT_EQ(encode(Value::simple("OK")), "+OK\r\n");
  EXPECT_EQ(encode(Value::error("ERR x")), "-ERR x\r\n");
  EXPECT_EQ(encode(Value::integer_(-7)), ":-7\r\n");
  EXPECT_EQ(encode(Value::bulk("a\r\nb")), "$4\r\na\r\nb\r\n");
  EXPECT_EQ(encode(Value::null()), "$-1\r\n");
  EXPECT_EQ(encode(Value::array({})), "*0\r\n");
  EXPECT_EQ(encode(Value::array({Value::integer_(1), Value::array({Value::bulk("")})})),
            "*2\r\n:1\r\n*1\r\n$0\r\n\r\n");
  // CR and LF cannot travel inside a simple string or error: they become spaces.
  EXPECT_EQ(encode(Value::simple("a\r\nb")), "+a  b\r\n");
  EXPECT_EQ(encode(Value::error("ERR a\nb")), "-ERR a b\r\n");
  std::string out = "prefix";
  encodeCommand({"GET", "k"}, out);
  EXPECT_EQ(out, "prefix*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
  // A name and its arguments encode as the one list of both.
  for (const std::vector<std::string>& args : {std::vector<std::string>{}, {"a"}, {"k1", "", "k\r\n3"}}) {
    std::string joined = "x", split = "x";
    std::vector<std::string> all = {"DEL"};
    all.insert(all.end(), args.begin(), args.end());
    encodeCommand(all, joined);
    encodeCommand("DEL", args, split);
    EXPECT_EQ(split, joined);
  }
}

}  // namespace
}  // namespace lockshift::resp
