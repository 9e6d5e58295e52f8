// Script commands: EVAL, EVALSHA, SCRIPT LOAD/EXISTS/FLUSH. lockshift runs no Lua: it recognises
// Atlantis's UnlockIfOwnedByPull script by its exact body (equivalently its SHA1) and executes it
// natively through LockStore::deleteIfOwnedByPull, which is atomic. Any other script is refused.

#include "proxy/atlantis_script.h"
#include "proxy/command.h"
#include "resp/writer.h"

namespace lockshift {

namespace {

bool isAtlantisSha(std::string_view sha) { return equalsIgnoreCase(sha, kAtlantisUnlockScriptSha1); }

void refuseScript(CommandContext& ctx) {
  ctx.error("script", "ERR lockshift runs only Atlantis's UnlockIfOwnedByPull script (sha1 " +
                          std::string(kAtlantisUnlockScriptSha1) + "); other scripts are not supported");
}

// Runs the unlock script: args are [EVAL|EVALSHA, script|sha, numkeys, key, pull_num].
asio::awaitable<void> runUnlockScript(CommandContext& ctx, Args& args) {
  int64_t numkeys = 0;
  if (!parseInt64(args[2], numkeys)) {
    ctx.error("syntax", "ERR value is not an integer or out of range");
    co_return;
  }
  if (numkeys < 0 || static_cast<size_t>(numkeys) > args.size() - 3) {
    ctx.error("syntax", numkeys < 0 ? "ERR Number of keys can't be negative"
                                    : "ERR Number of keys can't be greater than number of args");
    co_return;
  }
  if (numkeys != 1 || args.size() != 5) {
    ctx.error("script", "ERR Atlantis's unlock script takes exactly 1 key and 1 argument (the pull number)");
    co_return;
  }
  ctx.store_used = ctx.server.store_label;
  auto deleted = co_await ctx.server.store.deleteIfOwnedByPull(ctx.client.db, std::move(args[3]),
                                                               std::move(args[4]));
  if (!deleted) {
    ctx.storeError(deleted.status());
  } else if (deleted->has_value()) {
    resp::writeBulk(ctx.out, **deleted);
  } else {
    resp::writeNull(ctx.out);
  }
}

asio::awaitable<void> eval(CommandContext& ctx, Args& args) {
  if (args[1] != kAtlantisUnlockScript) {
    refuseScript(ctx);
    co_return;
  }
  co_await runUnlockScript(ctx, args);
}

asio::awaitable<void> evalsha(CommandContext& ctx, Args& args) {
  if (!isAtlantisSha(args[1])) {
    ctx.error("noscript", "NOSCRIPT No matching script. Please use EVAL.");
    co_return;
  }
  co_await runUnlockScript(ctx, args);
}

asio::awaitable<void> script(CommandContext& ctx, Args& args) {
  const std::string sub = lowercase(args[1]);
  if (sub == "load" && args.size() == 3) {
    if (args[2] != kAtlantisUnlockScript) {
      refuseScript(ctx);
    } else {
      resp::writeBulk(ctx.out, kAtlantisUnlockScriptSha1);
    }
  } else if (sub == "exists" && args.size() >= 3) {
    resp::writeArrayHeader(ctx.out, args.size() - 2);
    for (size_t i = 2; i < args.size(); ++i) resp::writeInteger(ctx.out, isAtlantisSha(args[i]) ? 1 : 0);
  } else if (sub == "flush" && args.size() <= 3) {
    resp::writeSimple(ctx.out, "OK");  // the built-in script stays available
  } else {
    ctx.error("unknown_subcommand", "ERR unknown subcommand or wrong number of arguments for '" +
                                        args[1].substr(0, 128) + "'. Try SCRIPT HELP.");
  }
  co_return;
}

}  // namespace

void addScriptCommands(std::vector<CommandSpec>& table) {
  table.push_back({"eval", -3, false, true, eval});
  table.push_back({"evalsha", -3, false, true, evalsha});
  table.push_back({"script", -2, false, false, script});
}

}  // namespace lockshift
