#pragma once
// A RESP2 value as it appears on the wire: what a Redis server replies, or a request array.

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace lockshift::resp {

enum class Type {
  kSimpleString,  // +OK
  kError,         // -ERR message
  kInteger,       // :42
  kBulkString,    // $3\r\nfoo
  kNull,          // $-1 (nil bulk) or *-1 (nil array)
  kArray,         // *2\r\n...
};

struct Value {
  Type type = Type::kNull;
  std::string str;            // kSimpleString, kError (without '-'), kBulkString
  int64_t integer = 0;        // kInteger
  std::vector<Value> elements;  // kArray

  static Value simple(std::string s) { return {Type::kSimpleString, std::move(s), 0, {}}; }
  static Value error(std::string s) { return {Type::kError, std::move(s), 0, {}}; }
  static Value integer_(int64_t n) { return {Type::kInteger, {}, n, {}}; }
  static Value bulk(std::string s) { return {Type::kBulkString, std::move(s), 0, {}}; }
  static Value null() { return {}; }
  static Value array(std::vector<Value> e) { return {Type::kArray, {}, 0, std::move(e)}; }

  bool isError() const { return type == Type::kError; }
  bool operator==(const Value&) const = default;
};

// Appends the RESP2 encoding of v to out.
void encode(const Value& v, std::string& out);
std::string encode(const Value& v);

// Appends the request form (array of bulk strings) of args to out, as a client sends it.
void encodeCommand(const std::vector<std::string>& args, std::string& out);
// The same for arguments the caller already holds, without copying them into strings first.
void encodeCommand(std::initializer_list<std::string_view> args, std::string& out);
// A command named `name` with the arguments `args`, without building one vector of both.
void encodeCommand(std::string_view name, const std::vector<std::string>& args, std::string& out);

}  // namespace lockshift::resp
