// Key commands: GET, SET, DEL, EXISTS, TYPE, SCAN, KEYS. SET carries strict acquire (DESIGN §2):
// on a project-lock key the value must be Atlantis's ProjectLock JSON and the store refuses to
// overwrite another pull's lock.

#include "common/lock_json.h"
#include "proxy/command.h"
#include "resp/writer.h"

namespace lockshift {

namespace {

// SCAN's COUNT is a hint; this bounds the work one call may do on an io thread.
constexpr size_t kMaxScanCount = 100000;

asio::awaitable<void> get(CommandContext& ctx, Args& args) {
  ctx.store_used = ctx.server.store_label;
  auto value = co_await ctx.server.store.get(ctx.client.db, std::move(args[1]));
  if (!value) {
    ctx.storeError(value.status());
  } else if (value->has_value()) {
    resp::writeBulk(ctx.out, **value);
  } else {
    resp::writeNull(ctx.out);
  }
}

struct SetOptions {
  PutRequest::Condition condition = PutRequest::Condition::kAlways;
  bool get = false;
  bool expiry = false;  // EX/PX/EXAT/PXAT given
};

// Parses SET's options the way Redis does; returns false after writing the error reply.
bool parseSetOptions(CommandContext& ctx, const Args& args, SetOptions& opts) {
  bool keepttl = false;
  for (size_t i = 3; i < args.size(); ++i) {
    const std::string opt = lowercase(args[i]);
    bool has_next = i + 1 < args.size();
    if (opt == "nx" && opts.condition != PutRequest::Condition::kIfPresent) {
      opts.condition = PutRequest::Condition::kIfAbsent;
    } else if (opt == "xx" && opts.condition != PutRequest::Condition::kIfAbsent) {
      opts.condition = PutRequest::Condition::kIfPresent;
    } else if (opt == "get") {
      opts.get = true;
    } else if (opt == "keepttl" && !opts.expiry) {
      keepttl = true;
    } else if ((opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") && has_next && !opts.expiry &&
               !keepttl) {
      int64_t n = 0;
      if (!parseInt64(args[++i], n)) {
        ctx.error("syntax", "ERR value is not an integer or out of range");
        return false;
      }
      if (n <= 0) {
        ctx.error("syntax", "ERR invalid expire time in 'set' command");
        return false;
      }
      opts.expiry = true;
    } else {
      ctx.error("syntax", "ERR syntax error");
      return false;
    }
  }
  return true;
}

asio::awaitable<void> set(CommandContext& ctx, Args& args) {
  SetOptions opts;
  if (!parseSetOptions(ctx, args, opts)) co_return;
  const bool lock_key = isProjectLockKey(args[1]);
  if (opts.expiry) {
    // Atlantis never sets an expiry, and a held lock must never vanish on a timer.
    if (lock_key) {
      ctx.error("expiry", "ERR lockshift refuses an expiry on lock key '" + args[1].substr(0, 200) +
                              "': a held lock must not vanish");
    } else {
      ctx.error("expiry", "ERR lockshift does not expire keys: EX, PX, EXAT and PXAT are not supported");
    }
    co_return;
  }

  PutRequest req;
  req.db = ctx.client.db;
  req.condition = opts.condition;
  req.return_previous = opts.get;
  if (lock_key && ctx.server.config.migration.acquire == AcquireMode::kStrict) {
    auto owner = parseProjectLock(args[2]);
    if (!owner) {
      ctx.error("invalid_value", "ERR invalid lock value for key '" + args[1].substr(0, 200) +
                                     "': " + owner.status().message());
      co_return;
    }
    req.strict_owner = std::move(owner.value());
  }
  req.key = std::move(args[1]);
  req.value = std::move(args[2]);

  ctx.store_used = ctx.server.store_label;
  auto result = co_await ctx.server.store.put(std::move(req));
  if (!result) {
    ctx.storeError(result.status());
    co_return;
  }
  switch (result->outcome) {
    case PutResult::Outcome::kLockedByOther:
      ctx.error("locked", "LOCKED held by " + result->holder);
      co_return;
    case PutResult::Outcome::kConditionFailed:
    case PutResult::Outcome::kApplied:
      if (opts.get) {
        if (result->previous) {
          resp::writeBulk(ctx.out, *result->previous);
        } else {
          resp::writeNull(ctx.out);
        }
      } else if (result->outcome == PutResult::Outcome::kApplied) {
        resp::writeSimple(ctx.out, "OK");
      } else {
        resp::writeNull(ctx.out);
      }
  }
}

asio::awaitable<void> del(CommandContext& ctx, Args& args) {
  ctx.store_used = ctx.server.store_label;
  args.erase(args.begin());
  auto n = co_await ctx.server.store.del(ctx.client.db, std::move(args));
  if (!n) {
    ctx.storeError(n.status());
  } else {
    resp::writeInteger(ctx.out, *n);
  }
}

asio::awaitable<void> exists(CommandContext& ctx, Args& args) {
  ctx.store_used = ctx.server.store_label;
  int64_t found = 0;
  for (size_t i = 1; i < args.size(); ++i) {  // EXISTS k k counts k twice, like Redis
    auto value = co_await ctx.server.store.get(ctx.client.db, args[i]);
    if (!value) {
      ctx.storeError(value.status());
      co_return;
    }
    if (value->has_value()) ++found;
  }
  resp::writeInteger(ctx.out, found);
}

asio::awaitable<void> type(CommandContext& ctx, Args& args) {
  ctx.store_used = ctx.server.store_label;
  auto value = co_await ctx.server.store.get(ctx.client.db, std::move(args[1]));
  if (!value) {
    ctx.storeError(value.status());
  } else {
    resp::writeSimple(ctx.out, value->has_value() ? "string" : "none");
  }
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. Every value is a string, so TYPE string keeps
// every key and any other type none. The reply's cursor is a decimal bulk string.
asio::awaitable<void> scan(CommandContext& ctx, Args& args) {
  ScanRequest req;
  req.db = ctx.client.db;
  if (!parseUint64(args[1], req.cursor)) {
    ctx.error("syntax", "ERR invalid cursor");
    co_return;
  }
  bool type_matches = true;
  for (size_t i = 2; i < args.size(); i += 2) {
    const std::string opt = lowercase(args[i]);
    if (i + 1 >= args.size()) {
      ctx.error("syntax", "ERR syntax error");
      co_return;
    }
    if (opt == "match") {
      req.match = args[i + 1];
      if (req.match == "*") req.match.clear();
    } else if (opt == "count") {
      int64_t n = 0;
      if (!parseInt64(args[i + 1], n)) {
        ctx.error("syntax", "ERR value is not an integer or out of range");
        co_return;
      }
      if (n < 1) {
        ctx.error("syntax", "ERR syntax error");
        co_return;
      }
      req.count = std::min<size_t>(static_cast<size_t>(n), kMaxScanCount);
    } else if (opt == "type") {
      type_matches = equalsIgnoreCase(args[i + 1], "string");
    } else {
      ctx.error("syntax", "ERR syntax error");
      co_return;
    }
  }
  ctx.store_used = ctx.server.store_label;
  auto page = co_await ctx.server.store.scan(std::move(req));
  if (!page) {
    ctx.storeError(page.status());
    co_return;
  }
  if (!type_matches) page->keys.clear();
  resp::writeArrayHeader(ctx.out, 2);
  resp::writeBulk(ctx.out, std::to_string(page->next_cursor));
  resp::writeArrayHeader(ctx.out, page->keys.size());
  for (const auto& key : page->keys) resp::writeBulk(ctx.out, key);
}

// KEYS pattern: a whole scan in one reply (for operators at redis-cli; Atlantis uses SCAN).
asio::awaitable<void> keys(CommandContext& ctx, Args& args) {
  ctx.store_used = ctx.server.store_label;
  ScanRequest req;
  req.db = ctx.client.db;
  req.count = 1000;
  req.match = args[1] == "*" ? "" : args[1];
  std::vector<std::string> found;
  do {
    auto page = co_await ctx.server.store.scan(req);
    if (!page) {
      ctx.storeError(page.status());
      co_return;
    }
    for (auto& k : page->keys) found.push_back(std::move(k));
    req.cursor = page->next_cursor;
  } while (req.cursor != 0);
  resp::writeArrayHeader(ctx.out, found.size());
  for (const auto& key : found) resp::writeBulk(ctx.out, key);
}

}  // namespace

void addKeyCommands(std::vector<CommandSpec>& table) {
  table.push_back({"get", 2, false, false, get});
  table.push_back({"set", -3, false, true, set});
  table.push_back({"del", -2, false, true, del});
  table.push_back({"exists", -2, false, false, exists});
  table.push_back({"type", 2, false, false, type});
  table.push_back({"scan", -2, false, false, scan});
  table.push_back({"keys", 2, false, false, keys});
}

}  // namespace lockshift
