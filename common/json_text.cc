#include "common/json_text.h"

#include <boost/json/serialize.hpp>
#include <charconv>
#include <cmath>
#include <string_view>

namespace lockshift {

namespace json = boost::json;

namespace {

void append(std::string& out, const json::value& value);

void appendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += json::serialize(json::value(d));
    return;
  }
  char text[32];  // the shortest round-trip form of a double is at most 24 characters
  const auto [end, ec] = std::to_chars(text, text + sizeof text, d);
  const std::string_view written(text, static_cast<size_t>(end - text));
  out += written;
  if (written.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void appendObject(std::string& out, const json::object& object) {
  out += '{';
  bool first = true;
  for (const auto& [key, member] : object) {
    if (!first) out += ',';
    first = false;
    out += json::serialize(key);
    out += ':';
    append(out, member);
  }
  out += '}';
}

void appendArray(std::string& out, const json::array& array) {
  out += '[';
  bool first = true;
  for (const auto& item : array) {
    if (!first) out += ',';
    first = false;
    append(out, item);
  }
  out += ']';
}

void append(std::string& out, const json::value& value) {
  switch (value.kind()) {
    case json::kind::object: appendObject(out, value.get_object()); break;
    case json::kind::array: appendArray(out, value.get_array()); break;
    case json::kind::double_: appendDouble(out, value.get_double()); break;
    default: out += json::serialize(value); break;
  }
}

}  // namespace

std::string jsonText(const json::value& value) {
  std::string out;
  append(out, value);
  return out;
}

std::string jsonText(const json::object& object) {
  std::string out;
  appendObject(out, object);
  return out;
}

std::string jsonText(const json::array& array) {
  std::string out;
  appendArray(out, array);
  return out;
}

}  // namespace lockshift
