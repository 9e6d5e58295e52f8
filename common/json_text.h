#pragma once
// JSON text of a Boost.JSON value: what boost::json::serialize writes, except for doubles.
//
// Boost.JSON 1.81 writes every double in exponent form (12.5 as 1.25E1, 0 as 0E0) and has no
// option to do otherwise. The documents lockshift writes (the admin API's answers, its state
// files and reports) are read by people, so a finite double is written here as std::to_chars
// writes it, the shortest text that reads back to the same double (12.5, 0.001, 1e+21), with
// ".0" added when that text would read back as an integer ("0.0", "100.0"): a double stays a
// double for whoever parses it. Everything else, and the non-finite doubles JSON cannot express,
// is written by Boost.JSON, so escaping and every other kind are exactly its own.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>

namespace lockshift {

std::string jsonText(const boost::json::value& value);
std::string jsonText(const boost::json::object& object);
std::string jsonText(const boost::json::array& array);

}  // namespace lockshift
