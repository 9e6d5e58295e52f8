#include "resp/value.h"

#include "resp/writer.h"

namespace lockshift::resp {
namespace {

// Simple strings and errors cannot carry CR or LF on the wire; like writeError(), they become
// spaces so that one value never frames as two.
void appendLine(std::string& out, char prefix, const std::string& s) {
  out.push_back(prefix);
  for (char c : s) out.push_back(c == '\r' || c == '\n' ? ' ' : c);
  out.append("\r\n");
}

// A request: an array of bulk strings, from any container of strings or string views.
// Sized first and written in place (writer.h).
template <typename Args>
void encodeArgs(const Args& args, std::string& out) {
  size_t size = headerLength(args.size());
  for (std::string_view arg : args) size += bulkLength(arg);
  char* p = putHeader(grow(out, size), '*', args.size());
  for (std::string_view arg : args) p = putBulk(p, arg);
}

}  // namespace

void encode(const Value& v, std::string& out) {
  switch (v.type) {
    case Type::kSimpleString:
      return appendLine(out, '+', v.str);
    case Type::kError:
      return appendLine(out, '-', v.str);
    case Type::kInteger:
      return writeInteger(out, v.integer);
    case Type::kBulkString:
      return writeBulk(out, v.str);
    case Type::kNull:
      return writeNull(out);
    case Type::kArray:
      writeArrayHeader(out, v.elements.size());
      for (const Value& e : v.elements) encode(e, out);
      return;
  }
}

std::string encode(const Value& v) {
  std::string out;
  encode(v, out);
  return out;
}

void encodeCommand(const std::vector<std::string>& args, std::string& out) { encodeArgs(args, out); }

void encodeCommand(std::initializer_list<std::string_view> args, std::string& out) { encodeArgs(args, out); }

void encodeCommand(std::string_view name, const std::vector<std::string>& args, std::string& out) {
  size_t size = headerLength(args.size() + 1) + bulkLength(name);
  for (std::string_view arg : args) size += bulkLength(arg);
  char* p = putBulk(putHeader(grow(out, size), '*', args.size() + 1), name);
  for (std::string_view arg : args) p = putBulk(p, arg);
}

}  // namespace lockshift::resp
