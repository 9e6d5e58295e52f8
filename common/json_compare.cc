#include "common/json_compare.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace lockshift {

bool sameJsonValue(std::string_view a, std::string_view b) {
  if (a == b) return true;
  boost::system::error_code ea, eb;
  boost::json::value va = boost::json::parse(a, ea);
  if (ea) return false;
  boost::json::value vb = boost::json::parse(b, eb);
  if (eb) return false;
  return va == vb;  // object equality ignores member order
}

}  // namespace lockshift
