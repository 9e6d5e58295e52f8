#include "common/lock_json.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "common/json_events.h"

namespace lockshift {

namespace json = boost::json;

namespace {

// lockPullNumber() parses a held lock on every unlock by pull. The parsed value lives only while
// its fields are read, so it is built in a caller's stack buffer (a monotonic resource, which
// takes the heap only for a document that does not fit) instead of one heap allocation per
// object and per string longer than Boost.JSON's inline size.
struct JsonArena {
  unsigned char buffer[8192];
  json::monotonic_resource resource{buffer, sizeof buffer};
};

Result<json::value> parseJson(std::string_view text, JsonArena& arena) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, &arena.resource);
  if (ec) return Status::invalidArgument("not JSON: " + ec.message());
  return v;
}

const json::object* objectField(const json::object& obj, std::string_view name) {
  const json::value* v = obj.if_contains(json::string_view(name.data(), name.size()));
  return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

// The members of a ProjectLock that parseProjectLock() reads, taken from Boost.JSON's SAX events
// with the meaning the DOM would give them: a member named twice counts by its last occurrence
// (as boost::json::object keeps it), a member of the wrong type counts as absent, and anything
// deeper than root.Member.Field is skipped.
class LockFieldsHandler : public JsonEvents {
 public:
  enum class Num { kMissing, kInteger, kNotInteger };

  bool root_is_object = false;
  bool has_pull = false;
  Num num = Num::kMissing;
  bool has_project = false;
  bool has_workspace = false;
  LockIdentity id;

  bool on_array_begin(boost::system::error_code&) {
    value(Kind::kOther);
    open(Container::kOther);
    return true;
  }
  bool on_array_end(size_t, boost::system::error_code&) { return close(); }
  bool on_object_begin(boost::system::error_code&) {
    if (depth_ == 0) {
      root_is_object = true;
      open(Container::kRoot);
      return true;
    }
    const Container opened = value(Kind::kObject);
    open(opened);
    return true;
  }
  bool on_object_end(size_t, boost::system::error_code&) { return close(); }
  bool on_key_part(json::string_view s, size_t, boost::system::error_code&) {
    appendKey(s);
    return true;
  }
  bool on_key(json::string_view s, size_t, boost::system::error_code&) {
    appendKey(s);
    if (depth_ <= 2) {
      const std::string_view name = key_length_ <= kMaxKeyRead ? std::string_view(key_, key_length_) : "";
      field_[depth_] = fieldNamed(name, container_[depth_]);
    }
    key_length_ = 0;
    return true;
  }
  bool on_string_part(json::string_view s, size_t, boost::system::error_code&) {
    appendString(s);
    return true;
  }
  bool on_string(json::string_view s, size_t, boost::system::error_code&) {
    appendString(s);
    in_string_ = false;
    value(Kind::kString);
    return true;
  }
  bool on_int64(int64_t i, json::string_view, boost::system::error_code&) {
    value(Kind::kInteger);
    if (target() == Field::kNum) id.pull_num = i;
    return true;
  }
  bool on_uint64(uint64_t u, json::string_view, boost::system::error_code&) {
    // Boost.JSON reports integers above INT64_MAX this way: too large for a pull number.
    const bool fits = u <= static_cast<uint64_t>(INT64_MAX);
    value(fits ? Kind::kInteger : Kind::kOther);
    if (fits && target() == Field::kNum) id.pull_num = static_cast<int64_t>(u);
    return true;
  }
  bool on_double(double, json::string_view, boost::system::error_code&) {
    value(Kind::kOther);
    return true;
  }
  bool on_bool(bool, boost::system::error_code&) {
    value(Kind::kOther);
    return true;
  }
  bool on_null(boost::system::error_code&) {
    value(Kind::kOther);
    return true;
  }

 private:
  // What an open container is: the root object, one of its members read here, or anything else.
  enum class Container { kNone, kRoot, kPull, kProject, kUser, kOther };
  // The members read here, by the container they are in.
  enum class Field { kNone, kPull, kProject, kUser, kWorkspace, kNum, kRepoFullName, kPath, kProjectName, kUsername };
  enum class Kind { kObject, kString, kInteger, kOther };

  // A switch, not a table: it runs for every key of every lock written.
  static Field fieldNamed(std::string_view name, Container in) {
    switch (in) {
      case Container::kRoot:
        if (name == "Pull") return Field::kPull;
        if (name == "Project") return Field::kProject;
        if (name == "User") return Field::kUser;
        if (name == "Workspace") return Field::kWorkspace;
        return Field::kNone;
      case Container::kPull:
        return name == "Num" ? Field::kNum : Field::kNone;
      case Container::kProject:
        if (name == "RepoFullName") return Field::kRepoFullName;
        if (name == "Path") return Field::kPath;
        if (name == "ProjectName") return Field::kProjectName;
        return Field::kNone;
      case Container::kUser:
        return name == "Username" ? Field::kUsername : Field::kNone;
      default:
        return Field::kNone;
    }
  }

  // The member the next value belongs to; kNone below the depths read here.
  Field target() const { return depth_ >= 1 && depth_ <= 2 ? field_[depth_] : Field::kNone; }

  std::string* stringFor(Field f) {
    switch (f) {
      case Field::kWorkspace:
        return &id.workspace;
      case Field::kRepoFullName:
        return &id.repo_full_name;
      case Field::kPath:
        return &id.path;
      case Field::kProjectName:
        return &id.project_name;
      case Field::kUsername:
        return &id.username;
      default:
        return nullptr;
    }
  }

  // A value of `kind` begins for target(): records what it means, and returns the container it
  // opens if it is an object (for other kinds the result means nothing).
  Container value(Kind kind) {
    const Field f = target();
    switch (f) {
      case Field::kPull:
        has_pull = kind == Kind::kObject;
        num = Num::kMissing;
        id.pull_num = 0;
        return Container::kPull;
      case Field::kProject:
        has_project = kind == Kind::kObject;
        id.repo_full_name.clear();
        id.path.clear();
        id.project_name.clear();
        return Container::kProject;
      case Field::kUser:
        id.username.clear();
        return Container::kUser;
      case Field::kNum:
        num = kind == Kind::kInteger ? Num::kInteger : Num::kNotInteger;
        if (num != Num::kInteger) id.pull_num = 0;
        break;
      case Field::kWorkspace:
        has_workspace = kind == Kind::kString;
        [[fallthrough]];
      default:
        // A string member's text was appended already (appendString); any other kind of value
        // leaves it empty.
        if (std::string* text = stringFor(f); text != nullptr && kind != Kind::kString) text->clear();
        break;
    }
    return Container::kOther;
  }

  void open(Container c) {
    ++depth_;
    if (depth_ <= 2) {
      container_[depth_] = c;
      field_[depth_] = Field::kNone;
    }
  }

  bool close() {
    --depth_;
    return true;
  }

  void appendKey(json::string_view s) {
    // Every name read here is short: a longer key is only counted, to stay unmatched.
    if (key_length_ + s.size() <= kMaxKeyRead) std::memcpy(key_ + key_length_, s.data(), s.size());
    key_length_ += s.size();
  }

  void appendString(json::string_view s) {
    std::string* text = stringFor(target());
    if (text == nullptr) return;
    if (!in_string_) text->clear();
    in_string_ = true;
    text->append(s.data(), s.size());
  }

  static constexpr size_t kMaxKeyRead = 16;
  int depth_ = 0;
  Container container_[3] = {Container::kNone, Container::kNone, Container::kNone};
  Field field_[3] = {Field::kNone, Field::kNone, Field::kNone};
  char key_[kMaxKeyRead];
  size_t key_length_ = 0;
  bool in_string_ = false;
};

}  // namespace

bool LockIdentity::sameHolder(const LockIdentity& other) const {
  return pull_num == other.pull_num && repo_full_name == other.repo_full_name &&
         path == other.path && project_name == other.project_name && workspace == other.workspace;
}

std::string LockIdentity::describe() const {
  std::string out = "pull #" + std::to_string(pull_num);
  if (!username.empty()) out += " (" + username + ")";
  return out;
}

Result<LockIdentity> parseProjectLock(std::string_view text) {
  // Read with Boost.JSON's SAX parser: a strict acquire parses every lock it writes, and the
  // handler below keeps only the six fields it needs instead of building the whole document
  // (about a third of the time per value).
  json::basic_parser<LockFieldsHandler> parser(json::parse_options{});
  boost::system::error_code ec;
  const size_t n = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && n < text.size()) ec = json::error::extra_data;  // as json::parse() reports it
  if (ec) return Status::invalidArgument("not JSON: " + ec.message());
  LockFieldsHandler& found = parser.handler();

  if (!found.root_is_object) return Status::invalidArgument("lock value is not a JSON object");
  if (!found.has_pull) return Status::invalidArgument("lock value has no Pull object");
  switch (found.num) {
    case LockFieldsHandler::Num::kMissing:
      return Status::invalidArgument("lock value has no Pull.Num");
    case LockFieldsHandler::Num::kNotInteger:
      return Status::invalidArgument("lock value's Pull.Num is not an integer");
    case LockFieldsHandler::Num::kInteger:
      break;
  }
  if (!found.has_project) return Status::invalidArgument("lock value has no Project object");
  if (!found.has_workspace) return Status::invalidArgument("lock value has no Workspace string");
  return std::move(found.id);
}

Result<std::optional<double>> lockPullNumber(std::string_view text) {
  JsonArena arena;
  auto parsed = parseJson(text, arena);
  if (!parsed) return Status::invalidArgument("failed to deserialize current lock");
  if (!parsed->is_object()) return std::optional<double>();
  const json::object* pull = objectField(parsed->get_object(), "Pull");
  if (pull == nullptr) return std::optional<double>();
  const json::value* num = pull->if_contains("Num");
  if (num == nullptr) return std::optional<double>();
  if (num->is_number()) return std::optional<double>(num->to_number<double>());
  if (num->is_string()) {
    const json::string& s = num->get_string();
    return luaToNumber(std::string_view(s.data(), s.size()));
  }
  return std::optional<double>();
}

std::optional<double> luaToNumber(std::string_view text) {
  // Lua 5.1's tonumber: surrounding whitespace allowed, decimal/float/hex via strtod.
  auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string buf(text);
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace lockshift
