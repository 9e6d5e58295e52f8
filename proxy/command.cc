#include "proxy/command.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <functional>
#include <string_view>
#include <unordered_map>

#include "resp/writer.h"

namespace lockshift {

namespace {

// Lets by_name be searched with a string_view: the name looked up for every request is lowered
// into a buffer on the stack, not into a string.
struct NameHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Longer than every command name: a longer request name is unknown without a lookup.
constexpr size_t kMaxNameLength = 32;

struct Table {
  std::vector<CommandSpec> specs;
  std::unordered_map<std::string, size_t, NameHash, std::equal_to<>> by_name;  // name -> index in specs

  Table() {
    addConnectionCommands(specs);
    addServerCommands(specs);
    addKeyCommands(specs);
    addScriptCommands(specs);
    for (size_t i = 0; i < specs.size(); ++i) {
      assert(std::string_view(specs[i].name).size() <= kMaxNameLength);
      by_name.emplace(specs[i].name, i);
    }
  }
};

const Table& table() {
  static const Table t;
  return t;
}

bool arityOk(int arity, size_t argc) {
  return arity >= 0 ? argc == static_cast<size_t>(arity) : argc >= static_cast<size_t>(-arity);
}

// Redis 7's wording: unknown command 'x', with args beginning with: 'a' 'b' (128 chars at most).
std::string unknownCommandMessage(const Args& args) {
  std::string msg = "ERR unknown command '" + args[0].substr(0, 128) + "', with args beginning with: ";
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
    listed += "'" + args[i].substr(0, 128 - listed.size()) + "' ";
  }
  return msg + listed;
}

}  // namespace

resp::Limits ServerContext::limits(bool authenticated) const {
  if (requiresAuth() && !authenticated) return resp::Limits::unauthenticated();
  resp::Limits l;
  l.max_bulk_length = config.server.max_bulk_length;
  l.max_array_length = config.server.max_array_length;
  l.max_inline_length = config.server.max_inline_length;
  return l;
}

void CommandContext::error(std::string_view kind, std::string_view message) {
  error_kind = kind;
  resp::writeError(out, message);
}

void CommandContext::storeError(const Status& status) {
  switch (status.code()) {
    case ErrorCode::kStoreFull:
      error("store_full", "ERR store full: " + status.message());
      break;
    case ErrorCode::kInvalidArgument:
      error("invalid_value", "ERR " + status.message());
      break;
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
      error("store_unavailable", "ERR store unavailable: " + status.message());
      break;
    default:
      error("store_error", "ERR store error: " + status.message());
      break;
  }
}

const std::vector<CommandSpec>& commandTable() { return table().specs; }

Handler beginCommand(CommandContext& ctx, const Args& args, CommandRecord& record) {
  record.started = std::chrono::steady_clock::now();
  char lowered[kMaxNameLength];
  std::string_view name;  // empty (unknown) when too long to be a command's
  if (args[0].size() <= kMaxNameLength) {
    // ASCII only, as std::tolower in the "C" locale (lowercase()).
    std::transform(args[0].begin(), args[0].end(), lowered,
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    name = std::string_view(lowered, args[0].size());
  }
  auto it = table().by_name.find(name);
  record.index = it == table().by_name.end() ? table().specs.size() : it->second;
  const CommandSpec* spec = record.index < table().specs.size() ? &table().specs[record.index] : nullptr;

  if (spec == nullptr) {
    if (ctx.server.requiresAuth() && !ctx.client.authenticated) {
      ctx.error("noauth", "NOAUTH Authentication required.");
    } else {
      ctx.error("unknown_command", unknownCommandMessage(args));
    }
  } else if (ctx.server.requiresAuth() && !ctx.client.authenticated && !spec->allowed_before_auth) {
    ctx.error("noauth", "NOAUTH Authentication required.");
  } else if (!arityOk(spec->arity, args.size())) {
    wrongArity(ctx, name);
  } else {
    return spec->handler;
  }
  return nullptr;
}

void endCommand(CommandContext& ctx, const CommandRecord& record) {
  ctx.server.commands_processed.fetch_add(1, std::memory_order_relaxed);
  // Cache slots: [index * 2] answered by lockshift itself, [index * 2 + 1] by the store;
  // index == specs.size() is "unknown".
  auto& cache = ctx.client.metrics_cache;
  if (cache.empty()) cache.resize((table().specs.size() + 1) * 2, nullptr);
  Metrics::CommandMetrics*& slot = cache[record.index * 2 + (ctx.store_used == "proxy" ? 0 : 1)];
  if (slot == nullptr) {
    const char* name = record.index < table().specs.size() ? table().specs[record.index].name : "unknown";
    slot = &ctx.server.metrics.command(name, ctx.store_used);
  }
  slot->requests->Increment();
  slot->latency->Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - record.started).count());
  if (!ctx.error_kind.empty()) ctx.server.metrics.countError(ctx.error_kind);
}

asio::awaitable<void> dispatch(CommandContext& ctx, Args& args) {
  CommandRecord record;
  if (Handler handler = beginCommand(ctx, args, record)) co_await handler(ctx, args);
  endCommand(ctx, record);
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool parseInt64(std::string_view s, int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  if (s.size() > 1 && (s[0] == '0' || (s[0] == '-' && s[1] == '0'))) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool parseUint64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20 || s[0] == '-' || s[0] == '+') return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

void wrongArity(CommandContext& ctx, std::string_view name) {
  ctx.error("arity", "ERR wrong number of arguments for '" + std::string(name) + "' command");
}

}  // namespace lockshift
