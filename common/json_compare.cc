#include "common/json_compare.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace lockshift {

bool sameJsonValue(std::string_view a, std::string_view b) {
  if (a == b) return true;
  // Both values live only for the comparison: built in a stack buffer, not one heap allocation
  // per object and string (the resource takes the heap only for what does not fit).
  unsigned char buffer[16384];
  boost::json::monotonic_resource resource(buffer, sizeof buffer);
  boost::system::error_code ea, eb;
  boost::json::value va = boost::json::parse(a, ea, &resource);
  if (ea) return false;
  boost::json::value vb = boost::json::parse(b, eb, &resource);
  if (eb) return false;
  return va == vb;  // object equality ignores member order
}

}  // namespace lockshift
