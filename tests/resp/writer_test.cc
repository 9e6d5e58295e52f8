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

}  // namespace
}  // namespace lockshift::resp
