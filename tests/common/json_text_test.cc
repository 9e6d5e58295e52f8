// jsonText: Boost.JSON's own text for everything but doubles, which are written in plain decimal
// and still read back as the same doubles.

#include "common/json_text.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

namespace lockshift {
namespace {

namespace json = boost::json;

TEST(JsonText, WritesDoublesInDecimal) {
  const std::pair<double, const char*> cases[] = {
      {12.5, "12.5"},  {0.0, "0.0"},         {-0.0, "-0.0"},  {100.0, "100.0"}, {0.001, "0.001"},
      {-2.25, "-2.25"}, {1e21, "1e+21"}, {1e-7, "1e-07"}, {1.0 / 3, "0.3333333333333333"},
  };
  for (const auto& [d, want] : cases) {
    EXPECT_EQ(jsonText(json::value(d)), want) << json::serialize(json::value(d));
  }
}

TEST(JsonText, WritesObjectsAndArraysLikeBoostJson) {
  const json::object o{{"phase", "shadow"},
                       {"traffic_split", 12.5},
                       {"divergence_rate", 0.0},
                       {"epoch", 3},
                       {"big", uint64_t{18446744073709551615u}},
                       {"rules", json::array{json::object{{"match", "a\"b\\c\n"}, {"percent", 50}}, nullptr, true}},
                       {"empty", json::object{}},
                       {"none", json::array{}}};
  EXPECT_EQ(jsonText(o),
            "{\"phase\":\"shadow\",\"traffic_split\":12.5,\"divergence_rate\":0.0,\"epoch\":3,"
            "\"big\":18446744073709551615,\"rules\":[{\"match\":\"a\\\"b\\\\c\\n\",\"percent\":50},null,true],"
            "\"empty\":{},\"none\":[]}");
  EXPECT_EQ(jsonText(json::value(o)), jsonText(o));
  EXPECT_EQ(jsonText(json::array{1.5, "x"}), "[1.5,\"x\"]");
}

TEST(JsonText, LeavesNonFiniteDoublesToBoostJson) {
  for (double d : {std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_EQ(jsonText(json::value(d)), json::serialize(json::value(d)));
  }
}

// Any finite double's text names exactly that double, and a JSON reader reads it as a double.
// (Boost.JSON 1.81's own reader is not exact for every double, subnormals among them: it must
// read this text as it reads its own exponent form, so nothing is lost against that.)
RC_GTEST_PROP(JsonText, EveryFiniteDoubleReadsBackExactly, (uint64_t bits)) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  RC_PRE(std::isfinite(d));
  const std::string text = jsonText(json::value(d));
  double exact = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), exact);
  RC_ASSERT(ec == std::errc());
  RC_ASSERT(end == text.data() + text.size());
  uint64_t exact_bits;
  std::memcpy(&exact_bits, &exact, sizeof exact);
  RC_ASSERT(exact_bits == bits);
  const json::value back = json::parse(text);
  RC_ASSERT(back.is_double());
  RC_ASSERT(back == json::parse(json::serialize(json::value(d))));
}

// Without doubles the text is Boost.JSON's, byte for byte (strings with any bytes, integers).
RC_GTEST_PROP(JsonText, WithoutDoublesIsBoostJsonsText, (std::string key, std::string text, int64_t i, uint64_t u)) {
  const json::object o{{key, json::array{text, i, u, json::object{{text, nullptr}}, false}}};
  RC_ASSERT(jsonText(o) == json::serialize(o));
}

}  // namespace
}  // namespace lockshift
