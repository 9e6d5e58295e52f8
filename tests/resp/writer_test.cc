// The header-only reply writers produce what encode() produces and what the parser reads back.

#include "resp/writer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "resp/value.h"
#include "tests/resp/parser_harness.h"

namespace lockshift::resp {
namespace {

using testing::Event;
using testing::run;

TEST(RespWriter, MatchesEncodeAndParsesBack) {
  std::string out;
  writeSimple(out, "OK");
  writeError(out, "ERR no");
  writeInteger(out, INT64_MIN);
  writeBulk(out, std::string("a\r\n\0b", 5));
  writeNull(out);
  writeNullArray(out);
  writeArrayHeader(out, 2);
  writeBulk(out, "0");
  writeArrayHeader(out, 0);

  const std::vector<Value> want = {
      Value::simple("OK"),
      Value::error("ERR no"),
      Value::integer_(INT64_MIN),
      Value::bulk(std::string("a\r\n\0b", 5)),
      Value::null(),
      Value::null(),
      Value::array({Value::bulk("0"), Value::array({})}),
  };
  std::string encoded;
  for (const Value& v : want) encode(v, encoded);
  // encode() writes a null as "$-1"; the writer was asked for one "*-1".
  EXPECT_EQ(out, encoded.replace(encoded.find("$-1\r\n$-1"), 8, "$-1\r\n*-1"));

  std::vector<Event> events;
  for (const Value& v : want) events.push_back(Event::ofValue(v));
  EXPECT_EQ(run(Parser::Mode::kReply, Limits{}, {out}), events);
}

TEST(RespWriter, ErrorMessagesCannotBreakFraming) {
  std::string out;
  writeError(out, "ERR bad\r\nkey");
  EXPECT_EQ(out, "-ERR bad  key\r\n");
  EXPECT_EQ(run(Parser::Mode::kReply, Limits{}, {out}),
            std::vector<Event>{Event::ofValue(Value::error("ERR bad  key"))});
}

// The sized writers (putHeader, putBulk) count every digit: lengths and counts at each boundary
// of their decimal width, up to the largest a header can carry.
TEST(RespWriter, SizedFramingFillsExactlyAtEveryDigitBoundary) {
  for (uint64_t n : {uint64_t{0}, uint64_t{9}, uint64_t{10}, uint64_t{99}, uint64_t{100}, uint64_t{12345},
                     uint64_t{999999999}, uint64_t{1000000000}, UINT64_MAX}) {
    const std::string want = "*" + std::to_string(n) + "\r\n";
    EXPECT_EQ(headerLength(n), want.size()) << n;
    std::string out = "x";
    writeArrayHeader(out, n);
    EXPECT_EQ(out, "x" + want) << n;
  }
  for (size_t size : {0, 1, 9, 10, 99, 100, 1000, 65536}) {
    const std::string s(size, 'v');
    const std::string want = "$" + std::to_string(size) + "\r\n" + s + "\r\n";
    EXPECT_EQ(bulkLength(s), want.size()) << size;
    std::string out;
    writeBulk(out, s);
    EXPECT_EQ(out, want) << size;

    // Several in one sized block end exactly at its end.
    std::string block;
    char* p = grow(block, headerLength(2) + 2 * bulkLength(s));
    char* end = putBulk(putBulk(putHeader(p, '*', 2), s), s);
    EXPECT_EQ(end, block.data() + block.size()) << size;
    EXPECT_EQ(block, "*2\r\n" + want + want) << size;
  }
}

TEST(RespWriter, RequestsEncodeAsBulkStringArrays) {
  using namespace std::string_literals;
  std::string out = "keep";
  encodeCommand({"SET", "k", std::string_view("a\0b", 3), ""}, out);
  EXPECT_EQ(out, "keep*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\0b\r\n$0\r\n\r\n"s);
  std::string named;
  encodeCommand("HGET", std::vector<std::string>{"key", "v"}, named);
  EXPECT_EQ(named, "*3\r\n$4\r\nHGET\r\n$3\r\nkey\r\n$1\r\nv\r\n");
}

}  // namespace
}  // namespace lockshift::resp
