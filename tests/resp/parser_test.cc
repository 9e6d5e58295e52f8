// Table of wire strings for resp::Parser: each row is fed whole, one byte at a time and in chunks
// of three bytes, and every split must give the row's expected values, error or pending value.

#include "resp/parser.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "tests/resp/parser_harness.h"

namespace lockshift::resp {
namespace {

using namespace std::string_literals;
using testing::Event;
using testing::run;
using testing::splitEvery;

constexpr auto kRequest = Parser::Mode::kRequest;
constexpr auto kReply = Parser::Mode::kReply;

Event req(std::vector<std::string> args) { return Event::ofRequest(std::move(args)); }
Event val(Value v) { return Event::ofValue(std::move(v)); }
Event err(std::string e) { return Event::ofError(std::move(e)); }
Event pending(size_t n) { return Event::ofPending(n); }

const Limits kDefault;
const Limits kSmall{
    .max_bulk_length = 8, .max_array_length = 3, .max_inline_length = 16, .max_depth = 2};
const Limits kOneDigit{.max_inline_length = 1};
const Limits kNoArrays{.max_depth = 0};
const Limits kHuge{.max_bulk_length = SIZE_MAX,
                   .max_array_length = SIZE_MAX,
                   .max_inline_length = 64 * 1024,
                   .max_depth = 32};

struct Row {
  const char* name;
  Parser::Mode mode;
  Limits limits;
  std::string wire;
  std::vector<Event> want;
};

const std::vector<Row>& rows() {
  // clang-format off
  static const auto* kRows = new std::vector<Row>{
    // Requests: arrays of bulk strings.
    {"get", kRequest, kDefault, "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", {req({"GET", "foo"})}},
    {"set_binary", kRequest, kDefault, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$8\r\na\r\nb\0\r\nc\r\n"s,
     {req({"SET", "k", "a\r\nb\0\r\nc"s})}},
    {"pipelined", kRequest, kDefault, "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n*1\r\n$4\r\nPING\r\n",
     {req({"GET", "foo"}), req({"PING"})}},
    {"empty_bulk", kRequest, kDefault, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", {req({"GET", ""})}},
    {"empty_multibulk_skipped", kRequest, kDefault, "*0\r\n*-1\r\n*-7\r\n*1\r\n$4\r\nPING\r\n",
     {req({"PING"})}},
    // Inline commands.
    {"inline_crlf", kRequest, kDefault, "PING\r\n", {req({"PING"})}},
    {"inline_lf", kRequest, kDefault, "set k v\n", {req({"set", "k", "v"})}},
    {"inline_blanks", kRequest, kDefault, "  a\tb   c  \r\n", {req({"a", "b", "c"})}},
    {"inline_quotes", kRequest, kDefault, "SET \"a b\" 'c d' \"\" ''\r\n",
     {req({"SET", "a b", "c d", "", ""})}},
    {"inline_escapes", kRequest, kDefault, R"("\n\r\t\b\a\\\"\x41\x4g\q")" "\r\n",
     {req({"\n\r\t\b\a\\\"Ax4gq"})}},
    {"inline_hex", kRequest, kDefault, R"("\x4A\xff\x00")" "\n", {req({"J\xff\0"s})}},
    {"inline_single_quotes", kRequest, kDefault, R"('it\'s' 'a\nb' "x'y" 'x"y')" "\r\n",
     {req({"it's", "a\\nb", "x'y", "x\"y"})}},
    {"inline_quote_inside_token", kRequest, kDefault, "a\"b c\" d\r\n", {req({"ab c", "d"})}},
    {"inline_cr_separates", kRequest, kDefault, "a\rb\r\n", {req({"a", "b"})}},
    {"inline_vertical_tab", kRequest, kDefault, "\va\vb\n", {req({"a\vb"})}},
    {"inline_dollar", kRequest, kDefault, "$3\r\n", {req({"$3"})}},
    {"inline_empty_lines_skipped", kRequest, kDefault, "\r\n\n   \r\n\t\nPING\r\n",
     {req({"PING"})}},
    {"inline_then_array", kRequest, kDefault, "PING\r\n*1\r\n$4\r\nPING\r\n",
     {req({"PING"}), req({"PING"})}},
    {"unbalanced_double", kRequest, kDefault, "SET \"foo\r\n",
     {err("unbalanced quotes in request")}},
    {"unbalanced_single", kRequest, kDefault, "SET 'foo\r\n",
     {err("unbalanced quotes in request")}},
    {"closing_quote_then_char", kRequest, kDefault, "\"a\"b\r\n",
     {err("unbalanced quotes in request")}},
    {"closing_single_then_char", kRequest, kDefault, "'a'b\r\n",
     {err("unbalanced quotes in request")}},
    {"trailing_backslash_in_quotes", kRequest, kDefault, "\"a\\\r\n",
     {err("unbalanced quotes in request")}},
    // Request errors.
    {"expected_dollar", kRequest, kDefault, "*1\r\n:1\r\n", {err("expected '$', got ':'")}},
    {"expected_dollar_plain", kRequest, kDefault, "*2\r\n$3\r\nGET\r\nfoo\r\n",
     {err("expected '$', got 'f'")}},
    {"mbulk_alpha", kRequest, kDefault, "*abc\r\n", {err("invalid multibulk length")}},
    {"mbulk_plus", kRequest, kDefault, "*+1\r\n", {err("invalid multibulk length")}},
    {"mbulk_empty", kRequest, kDefault, "*\r\n", {err("invalid multibulk length")}},
    {"mbulk_leading_zero", kRequest, kDefault, "*01\r\n", {err("invalid multibulk length")}},
    {"mbulk_cr_without_lf", kRequest, kDefault, "*1\rX", {err("invalid multibulk length")}},
    {"mbulk_lf_only", kRequest, kDefault, "*1\n\r\n", {err("invalid multibulk length")}},
    {"mbulk_int64_overflow", kRequest, kDefault, "*9223372036854775808\r\n",
     {err("invalid multibulk length")}},
    {"mbulk_above_int_max", kRequest, kHuge, "*2147483648\r\n", {err("invalid multibulk length")}},
    {"mbulk_int_max", kRequest, kHuge, "*2147483647\r\n", {pending(13)}},
    {"mbulk_default_limit", kRequest, kDefault, "*1048576\r\n", {pending(10)}},
    {"mbulk_default_limit_plus_one", kRequest, kDefault, "*1048577\r\n",
     {err("invalid multibulk length")}},
    {"bulk_negative", kRequest, kDefault, "*1\r\n$-1\r\n", {err("invalid bulk length")}},
    {"bulk_alpha", kRequest, kDefault, "*1\r\n$x\r\n", {err("invalid bulk length")}},
    {"bulk_overflow", kRequest, kHuge, "*1\r\n$99999999999999999999\r\n",
     {err("invalid bulk length")}},
    {"bulk_cr_without_lf", kRequest, kDefault, "*1\r\n$3\rx", {err("invalid bulk length")}},
    {"bulk_data_bad_terminator", kRequest, kDefault, "*1\r\n$3\r\nfooXY",
     {err("bulk data not terminated by CRLF")}},
    {"bulk_data_cr_without_lf", kRequest, kDefault, "*1\r\n$3\r\nfoo\rX",
     {err("bulk data not terminated by CRLF")}},
    {"bulk_default_limit", kRequest, kDefault, "*1\r\n$16777216\r\n", {pending(15)}},
    {"bulk_default_limit_plus_one", kRequest, kDefault, "*1\r\n$16777217\r\n",
     {err("invalid bulk length")}},
    // Whole requests in one chunk (read in one pass when whole): each row must fail or split
    // exactly as the same bytes do line by line.
    {"whole_eight_args", kRequest, kDefault,
     "*8\r\n" + [] { std::string s; for (int i = 0; i < 8; ++i) s += "$1\r\na\r\n"; return s; }(),
     {req({"a", "a", "a", "a", "a", "a", "a", "a"})}},
    {"whole_nine_args", kRequest, kDefault,
     "*9\r\n" + [] { std::string s; for (int i = 0; i < 9; ++i) s += "$1\r\na\r\n"; return s; }(),
     {req({"a", "a", "a", "a", "a", "a", "a", "a", "a"})}},
    {"whole_then_partial", kRequest, kDefault, "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI",
     {req({"PING"}), pending(10)}},
    {"whole_mbulk_leading_zero", kRequest, kDefault, "*01\r\n$4\r\nPING\r\n",
     {err("invalid multibulk length")}},
    {"whole_bulk_leading_zero", kRequest, kDefault, "*1\r\n$04\r\nPING\r\n",
     {err("invalid bulk length")}},
    {"whole_empty_bulk_leading_zero", kRequest, kDefault, "*1\r\n$00\r\n\r\n",
     {err("invalid bulk length")}},
    {"whole_bulk_lf_terminator", kRequest, kDefault, "*1\r\n$4\r\nPING\n\n",
     {err("bulk data not terminated by CRLF")}},
    {"whole_bulk_cr_then_other", kRequest, kDefault, "*1\r\n$4\r\nPING\rX*1\r\n$4\r\nPING\r\n",
     {err("bulk data not terminated by CRLF")}},
    {"whole_bulk_length_short", kRequest, kDefault, "*1\r\n$3\r\nPING\r\n",
     {err("bulk data not terminated by CRLF")}},
    {"whole_count_cr_then_other", kRequest, kDefault, "*1\rX$4\r\nPING\r\n", {err("invalid multibulk length")}},
    {"whole_bulk_count_cr_then_other", kRequest, kDefault, "*1\r\n$4\rXPING\r\n", {err("invalid bulk length")}},
    {"whole_count_line_over_inline_limit", kRequest, kOneDigit, "*1\r\n$10\r\n0123456789\r\n",
     {err("too big bulk count string")}},
    {"whole_count_lines_at_inline_limit", kRequest, kOneDigit, "*1\r\n$9\r\n012345678\r\n",
     {req({"012345678"})}},
    {"whole_small_array_over_limit", kRequest, kSmall,
     "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n", {err("invalid multibulk length")}},
    {"whole_small_bulk_over_limit", kRequest, kSmall, "*1\r\n$9\r\n123456789\r\n",
     {err("invalid bulk length")}},
    // Whole replies in one chunk, as whole requests above.
    {"whole_script_reply", kReply, kDefault, "*7\r\n:0\r\n$-1\r\n$0\r\n\r\n$2\r\n17\r\n+OK\r\n-ERR x\r\n:-3\r\n",
     {val(Value::array({Value::integer_(0), Value::null(), Value::bulk(""), Value::bulk("17"), Value::simple("OK"),
                        Value::error("ERR x"), Value::integer_(-3)}))}},
    {"whole_null_array", kReply, kDefault, "*-1\r\n", {val(Value::null())}},
    {"whole_empty_array", kReply, kDefault, "*0\r\n", {val(Value::array({}))}},
    {"whole_nested_array", kReply, kDefault, "*2\r\n*1\r\n:1\r\n:2\r\n",
     {val(Value::array({Value::array({Value::integer_(1)}), Value::integer_(2)}))}},
    {"whole_nine_elements", kReply, kDefault, "*9\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n:1\r\n",
     {val(Value::array(std::vector<Value>(9, Value::integer_(1))))}},
    {"whole_array_then_partial", kReply, kDefault, "*1\r\n+OK\r\n$3\r\nab",
     {val(Value::array({Value::simple("OK")})), pending(6)}},
    {"whole_array_leading_zero", kReply, kDefault, "*01\r\n:1\r\n", {err("invalid multibulk length")}},
    {"whole_reply_bulk_leading_zero", kReply, kDefault, "$01\r\na\r\n", {err("invalid bulk length")}},
    {"whole_bulk_minus_two", kReply, kDefault, "$-2\r\n", {err("invalid bulk length")}},
    {"whole_bulk_bad_terminator", kReply, kDefault, "$1\r\nab\r\n", {err("bulk data not terminated by CRLF")}},
    {"whole_integer_bad", kReply, kDefault, ":1x\r\n", {err("invalid integer")}},
    {"whole_integer_leading_zero", kReply, kDefault, ":01\r\n", {err("invalid integer")}},
    {"whole_simple_cr_then_other", kReply, kDefault, "+OK\rX+OK\r\n", {err("line not terminated by CRLF")}},
    {"whole_element_cr_then_other", kReply, kDefault, "*1\r\n:1\rX", {err("line not terminated by CRLF")}},
    {"whole_null_over_inline_limit", kReply, kOneDigit, "$-1\r\n", {err("too big bulk count string")}},
    {"whole_null_array_over_inline_limit", kReply, kOneDigit, "*-1\r\n", {err("too big mbulk count string")}},
    {"whole_integer_over_inline_limit", kReply, kOneDigit, ":12\r\n", {err("too big integer string")}},
    {"whole_small_reply_array_over_limit", kReply, kSmall, "*4\r\n:1\r\n:1\r\n:1\r\n:1\r\n",
     {err("invalid multibulk length")}},
    {"whole_small_simple_over_limit", kReply, kSmall, "+123456789\r\n", {err("too big simple string")}},
    {"whole_small_bulk_element_over_limit", kReply, kSmall, "*1\r\n$9\r\n123456789\r\n",
     {err("invalid bulk length")}},
    {"whole_array_at_depth_zero", kReply, kNoArrays, "*1\r\n:1\r\n", {err("too many nested arrays")}},
    {"whole_null_array_at_depth_zero", kReply, kNoArrays, "*-1\r\n", {val(Value::null())}},
    // Request limits.
    {"small_bulk_at_limit", kRequest, kSmall, "*1\r\n$8\r\n12345678\r\n", {req({"12345678"})}},
    {"small_bulk_over_limit", kRequest, kSmall, "*1\r\n$9\r\n", {err("invalid bulk length")}},
    {"small_array_at_limit", kRequest, kSmall, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
     {req({"a", "b", "c"})}},
    {"small_array_over_limit", kRequest, kSmall, "*4\r\n", {err("invalid multibulk length")}},
    {"small_inline_at_limit", kRequest, kSmall, "abcd efgh 123456\r\n",
     {req({"abcd", "efgh", "123456"})}},
    {"small_inline_at_limit_lf", kRequest, kSmall, "abcd efgh 123456\n",
     {req({"abcd", "efgh", "123456"})}},
    {"small_inline_at_limit_pending_cr", kRequest, kSmall, "abcd efgh 123456\r", {pending(17)}},
    {"small_inline_over_limit", kRequest, kSmall, "abcd efgh 1234567\r\n",
     {err("too big inline request")}},
    {"small_inline_over_limit_no_newline", kRequest, kSmall, "abcd efgh 1234567",
     {err("too big inline request")}},
    {"small_inline_cr_then_more", kRequest, kSmall, "abcd efgh 123456\rX\n",
     {err("too big inline request")}},
    {"small_inline_too_many_args", kRequest, kSmall, "a b c d\r\n",
     {err("too many arguments in inline request")}},
    {"small_inline_arg_too_big", kRequest, kSmall, "123456789\r\n",
     {err("too big argument in inline request")}},
    {"small_mbulk_count_at_limit", kRequest, kSmall, "*0000000000000001\r\n",
     {err("invalid multibulk length")}},
    {"small_mbulk_count_too_long", kRequest, kSmall, "*00000000000000001",
     {err("too big mbulk count string")}},
    {"small_bulk_count_too_long", kRequest, kSmall, "*1\r\n$00000000000000001",
     {err("too big bulk count string")}},
    // Partial requests.
    {"pending_bulk", kRequest, kDefault, "*2\r\n$3\r\nGET\r\n$3\r\nfo", {pending(19)}},
    {"pending_after_value", kRequest, kDefault, "PING\r\n*1\r\n", {req({"PING"}), pending(4)}},
    {"pending_inline", kRequest, kDefault, "\r\nPIN", {pending(3)}},
    // Replies.
    {"simple", kReply, kDefault, "+OK\r\n", {val(Value::simple("OK"))}},
    {"error", kReply, kDefault, "-ERR bad thing\r\n", {val(Value::error("ERR bad thing"))}},
    {"integers", kReply, kDefault,
     ":0\r\n:-42\r\n:9223372036854775807\r\n:-9223372036854775808\r\n",
     {val(Value::integer_(0)), val(Value::integer_(-42)), val(Value::integer_(INT64_MAX)),
      val(Value::integer_(INT64_MIN))}},
    {"integer_overflow", kReply, kDefault, ":9223372036854775808\r\n", {err("invalid integer")}},
    {"integer_underflow", kReply, kDefault, ":-9223372036854775809\r\n", {err("invalid integer")}},
    {"integer_minus_zero", kReply, kDefault, ":-0\r\n", {err("invalid integer")}},
    {"integer_empty", kReply, kDefault, ":\r\n", {err("invalid integer")}},
    {"integer_plus", kReply, kDefault, ":+1\r\n", {err("invalid integer")}},
    {"integer_space", kReply, kDefault, ":1 \r\n", {err("invalid integer")}},
    {"integer_leading_zero", kReply, kDefault, ":007\r\n", {err("invalid integer")}},
    {"nulls", kReply, kDefault, "$-1\r\n*-1\r\n", {val(Value::null()), val(Value::null())}},
    {"empties", kReply, kDefault, "$0\r\n\r\n*0\r\n",
     {val(Value::bulk("")), val(Value::array({}))}},
    {"bulk_binary", kReply, kDefault, "$6\r\na\r\nb\0c\r\n"s, {val(Value::bulk("a\r\nb\0c"s))}},
    {"bulk_minus_two", kReply, kDefault, "$-2\r\n", {err("invalid bulk length")}},
    {"array_minus_two", kReply, kDefault, "*-2\r\n", {err("invalid multibulk length")}},
    {"nested", kReply, kDefault, "*2\r\n*1\r\n:1\r\n$-1\r\n",
     {val(Value::array({Value::array({Value::integer_(1)}), Value::null()}))}},
    {"nested_mixed", kReply, kDefault, "*3\r\n+a\r\n*0\r\n-e\r\n",
     {val(Value::array({Value::simple("a"), Value::array({}), Value::error("e")}))}},
    {"scan_reply", kReply, kDefault, "*2\r\n$1\r\n0\r\n*2\r\n$4\r\npr/a\r\n$4\r\npr/b\r\n",
     {val(Value::array({Value::bulk("0"),
                        Value::array({Value::bulk("pr/a"), Value::bulk("pr/b")})}))}},
    {"unknown_type", kReply, kDefault, "?x\r\n", {err("unknown reply type byte '?'")}},
    {"simple_cr_without_lf", kReply, kDefault, "+OK\rX", {err("line not terminated by CRLF")}},
    {"reply_bulk_not_terminated", kReply, kDefault, "$1\r\nab",
     {err("bulk data not terminated by CRLF")}},
    {"pending_reply", kReply, kDefault, "$5\r\nab", {pending(6)}},
    {"pending_array", kReply, kDefault, "+OK\r\n*2\r\n:1\r\n",
     {val(Value::simple("OK")), pending(8)}},
    // Reply limits.
    {"depth_at_limit", kReply, kSmall, "*1\r\n*1\r\n:1\r\n",
     {val(Value::array({Value::array({Value::integer_(1)})}))}},
    {"depth_null_at_limit", kReply, kSmall, "*1\r\n*1\r\n*-1\r\n",
     {val(Value::array({Value::array({Value::null()})}))}},
    {"depth_over_limit", kReply, kSmall, "*1\r\n*1\r\n*0\r\n", {err("too many nested arrays")}},
    {"reply_bulk_at_limit", kReply, kSmall, "$8\r\n12345678\r\n", {val(Value::bulk("12345678"))}},
    {"reply_bulk_over_limit", kReply, kSmall, "$9\r\n", {err("invalid bulk length")}},
    {"reply_array_over_limit", kReply, kSmall, "*4\r\n", {err("invalid multibulk length")}},
    {"simple_at_limit", kReply, kSmall, "+12345678\r\n", {val(Value::simple("12345678"))}},
    {"simple_over_limit", kReply, kSmall, "+123456789", {err("too big simple string")}},
    {"integer_line_over_limit", kReply, kSmall, ":00000000000000001",
     {err("too big integer string")}},
  };
  // clang-format on
  return *kRows;
}

void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

class ParserTable : public ::testing::TestWithParam<Row> {};

TEST_P(ParserTable, EverySplitGivesTheExpectedResult) {
  const Row& row = GetParam();
  const std::vector<Event> whole = run(row.mode, row.limits, {row.wire});
  EXPECT_EQ(whole, row.want);
  EXPECT_EQ(run(row.mode, row.limits, splitEvery(row.wire, 1)), whole) << "one byte at a time";
  EXPECT_EQ(run(row.mode, row.limits, splitEvery(row.wire, 3)), whole) << "three bytes at a time";
}

INSTANTIATE_TEST_SUITE_P(Wire, ParserTable, ::testing::ValuesIn(rows()),
                         [](const ::testing::TestParamInfo<Row>& info) { return info.param.name; });

TEST(Parser, FeedStopsAfterOneValue) {
  Parser parser(kRequest);
  const std::string wire = "PING\r\n*1\r\n$4\r\nQUIT\r\n";
  EXPECT_EQ(parser.feed(wire), 6u);
  EXPECT_EQ(parser.state(), Parser::State::kReady);
  EXPECT_EQ(parser.feed(std::string_view(wire).substr(6)), 0u);  // nothing until taken
  EXPECT_EQ(parser.takeRequest(), std::vector<std::string>{"PING"});
  EXPECT_EQ(parser.state(), Parser::State::kNeedMore);
  EXPECT_EQ(parser.feed(std::string_view(wire).substr(6)), wire.size() - 6);
  EXPECT_EQ(parser.takeRequest(), std::vector<std::string>{"QUIT"});
  EXPECT_EQ(parser.bufferedBytes(), 0u);
}

TEST(Parser, ErrorIsSticky) {
  Parser parser(kRequest);
  parser.feed("*1\r\n:1\r\n");
  ASSERT_EQ(parser.state(), Parser::State::kError);
  EXPECT_EQ(parser.feed("PING\r\n"), 0u);
  EXPECT_EQ(parser.state(), Parser::State::kError);
  EXPECT_EQ(parser.error(), "expected '$', got ':'");
  EXPECT_TRUE(parser.takeRequest().empty());
}

TEST(Parser, TakeOnlyWhenReadyInItsMode) {
  Parser parser(kReply);
  parser.feed("+OK\r\n");
  EXPECT_TRUE(parser.takeRequest().empty());
  EXPECT_EQ(parser.state(), Parser::State::kReady);
  EXPECT_EQ(parser.takeValue(), Value::simple("OK"));
  EXPECT_EQ(parser.takeValue(), Value::null());
  EXPECT_EQ(parser.state(), Parser::State::kNeedMore);
}

TEST(Parser, BufferedBytesCoverTheValueInProgress) {
  Parser parser(kRequest);
  parser.feed("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab");
  EXPECT_EQ(parser.bufferedBytes(), 4u + 9u + 7u + 6u);
  parser.feed("cde\r\n");
  EXPECT_EQ(parser.bufferedBytes(), 4u + 9u + 7u + 11u);
  EXPECT_EQ(parser.takeRequest(), (std::vector<std::string>{"SET", "k", "abcde"}));
  EXPECT_EQ(parser.bufferedBytes(), 0u);
}

TEST(Parser, UnauthenticatedLimits) {
  const Limits unauth = Limits::unauthenticated();
  std::string eleven = "*11\r\n";
  EXPECT_EQ(run(kRequest, unauth, {eleven}), std::vector<Event>{err("invalid multibulk length")});
  std::string big = "*1\r\n$" + std::to_string(Limits::kUnauthenticatedMaxBulkLength + 1) + "\r\n";
  EXPECT_EQ(run(kRequest, unauth, {big}), std::vector<Event>{err("invalid bulk length")});
}

TEST(Parser, SetLimitsAppliesFromTheNextValue) {
  const std::string auth = "*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n";
  const std::string arg(Limits::kUnauthenticatedMaxBulkLength + 1, 'x');
  std::string set;
  encodeCommand({"SET", "k", arg}, set);

  Parser parser(kRequest, Limits::unauthenticated());
  EXPECT_EQ(parser.feed(auth), auth.size());
  parser.takeRequest();
  parser.setLimits(Limits{});
  EXPECT_EQ(parser.feed(set), set.size());
  ASSERT_EQ(parser.state(), Parser::State::kReady);
  EXPECT_EQ(parser.takeRequest(), (std::vector<std::string>{"SET", "k", arg}));

  // A value already begun keeps the limits it began with.
  Parser midway(kRequest, Limits::unauthenticated());
  midway.feed("*3\r\n");
  midway.setLimits(Limits{});
  midway.feed(std::string_view(set).substr(4));
  EXPECT_EQ(midway.state(), Parser::State::kError);
  EXPECT_EQ(midway.error(), "invalid bulk length");
}

}  // namespace
}  // namespace lockshift::resp
