#pragma once
// A base for handlers of Boost.JSON's event parser (boost::json::basic_parser), which reads a
// document without building it: no limits beyond the parser's own, and every event accepted and
// ignored. A handler derives from it and declares the events it reads; its declarations hide
// these. The parser is included with <boost/json/basic_parser_impl.hpp> where it is used.

#include <boost/json/string_view.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>

namespace lockshift {

struct JsonEvents {
  static constexpr size_t max_object_size = static_cast<size_t>(-1);
  static constexpr size_t max_array_size = static_cast<size_t>(-1);
  static constexpr size_t max_key_size = static_cast<size_t>(-1);
  static constexpr size_t max_string_size = static_cast<size_t>(-1);

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(size_t, boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) { return true; }
  bool on_object_end(size_t, boost::system::error_code&) { return true; }
  bool on_string_part(boost::json::string_view, size_t, boost::system::error_code&) { return true; }
  bool on_string(boost::json::string_view, size_t, boost::system::error_code&) { return true; }
  bool on_key_part(boost::json::string_view, size_t, boost::system::error_code&) { return true; }
  bool on_key(boost::json::string_view, size_t, boost::system::error_code&) { return true; }
  bool on_number_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_int64(int64_t, boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_uint64(uint64_t, boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_double(double, boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_bool(bool, boost::system::error_code&) { return true; }
  bool on_null(boost::system::error_code&) { return true; }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }
};

}  // namespace lockshift
