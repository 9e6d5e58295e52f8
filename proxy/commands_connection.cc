// Connection commands: PING, ECHO, QUIT, HELLO, AUTH, SELECT, CLIENT.
// go-redis v9 sends HELLO 3 [AUTH ...], then (with RESP3 configured) CLIENT MAINT_NOTIFICATIONS,
// then CLIENT SETINFO LIB-NAME/LIB-VER; see DESIGN §1 for what each must answer.

#include <algorithm>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "common/constant_time.h"
#include "common/files.h"
#include "proxy/command.h"
#include "resp/writer.h"

namespace lockshift {

namespace {

// Redis's reported version: what clients feature-detect against (RESP2 commands of Redis 7.0).
constexpr std::string_view kCompatibleRedisVersion = "7.0.0";

// Logs why AUTH cannot check a password (null: it can again). Once per episode and reason, since
// every client retries and each failure would otherwise add a line.
void noteUnreadablePasswordFile(const Status* why) {
  static std::mutex mu;
  static std::string logged;  // GUARDED_BY(mu)
  std::lock_guard lock(mu);
  if (why == nullptr) {
    logged.clear();
  } else if (logged != why->message()) {
    logged = why->message();
    std::cerr << "lockshift: [server] password_file: " << logged << "; AUTH is refused until it can be read\n";
  }
}

// Whether `pass` is a password the server accepts now (ServerContext::password_file).
Result<bool> acceptedPassword(const ServerContext& server, std::string_view pass) {
  if (server.password_file.empty()) return constantTimeEquals(pass, server.password);
  Result<std::vector<std::string>> accepted = readSecretLines(server.password_file);
  if (!accepted) {
    noteUnreadablePasswordFile(&accepted.status());
    return accepted.status();
  }
  noteUnreadablePasswordFile(nullptr);
  bool match = false;
  for (const std::string& password : *accepted) match |= constantTimeEquals(pass, password);  // every line, always
  return match;
}

// Checks credentials; on success raises the client's parser limits to the authenticated ones.
bool authenticate(CommandContext& ctx, std::string_view user, std::string_view pass) {
  Result<bool> accepted = acceptedPassword(ctx.server, pass);
  if (!accepted) {
    // Nothing to check against: refused, with the reason in the log rather than told to a client
    // not yet trusted.
    ctx.error("auth", "ERR lockshift cannot read its password file; see its log");
    return false;
  }
  if (user != "default" || !*accepted) {
    ctx.error("wrongpass", "WRONGPASS invalid username-password pair or user is disabled.");
    return false;
  }
  ctx.client.authenticated = true;
  if (ctx.client.parser != nullptr) ctx.client.parser->setLimits(ctx.server.limits(true));
  return true;
}

bool validClientName(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](unsigned char c) { return c > ' ' && c <= '~'; });
}

asio::awaitable<void> ping(CommandContext& ctx, Args& args) {
  if (args.size() > 2) {
    wrongArity(ctx, "ping");
  } else if (args.size() == 2) {
    resp::writeBulk(ctx.out, args[1]);
  } else {
    resp::writeSimple(ctx.out, "PONG");
  }
  co_return;
}

asio::awaitable<void> echo(CommandContext& ctx, Args& args) {
  resp::writeBulk(ctx.out, args[1]);
  co_return;
}

asio::awaitable<void> quit(CommandContext& ctx, Args&) {
  ctx.client.close_after_reply = true;
  resp::writeSimple(ctx.out, "OK");
  co_return;
}

asio::awaitable<void> auth(CommandContext& ctx, Args& args) {
  if (args.size() > 3) {
    ctx.error("syntax", "ERR syntax error");
    co_return;
  }
  if (!ctx.server.requiresAuth()) {
    ctx.error("auth", "ERR AUTH <password> called without any password configured for the default user. "
                      "Are you sure your configuration is correct?");
    co_return;
  }
  std::string_view user = args.size() == 3 ? std::string_view(args[1]) : "default";
  if (authenticate(ctx, user, args.back())) resp::writeSimple(ctx.out, "OK");
}

// HELLO [protover [AUTH user pass] [SETNAME name]]. lockshift speaks RESP2: HELLO 3 is refused with
// an error reply (never a close), which makes go-redis fall back to RESP2 and AUTH.
asio::awaitable<void> hello(CommandContext& ctx, Args& args) {
  int64_t proto = 2;
  if (args.size() >= 2) {
    if (!parseInt64(args[1], proto)) {
      ctx.error("syntax", "ERR Protocol version is not an integer or out of range");
      co_return;
    }
    if (proto != 2) {
      ctx.error("noproto", "ERR lockshift speaks RESP2 only: HELLO " + args[1] +
                               " is not supported (use HELLO 2 or no HELLO)");
      co_return;
    }
  }
  std::string setname;
  bool has_setname = false;
  for (size_t i = 2; i < args.size(); ++i) {
    if (equalsIgnoreCase(args[i], "auth") && i + 2 < args.size()) {
      if (!ctx.server.requiresAuth()) {
        ctx.error("auth", "ERR AUTH <password> called without any password configured for the default user. "
                          "Are you sure your configuration is correct?");
        co_return;
      }
      if (!authenticate(ctx, args[i + 1], args[i + 2])) co_return;
      i += 2;
    } else if (equalsIgnoreCase(args[i], "setname") && i + 1 < args.size()) {
      setname = args[++i];
      has_setname = true;
    } else {
      ctx.error("syntax", "ERR Syntax error in HELLO option '" + args[i] + "'");
      co_return;
    }
  }
  if (ctx.server.requiresAuth() && !ctx.client.authenticated) {
    ctx.error("noauth", "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
                        "select the RESP protocol version at the same time");
    co_return;
  }
  if (has_setname) {
    if (!validClientName(setname)) {
      ctx.error("syntax", "ERR Client names cannot contain spaces, newlines or special characters.");
      co_return;
    }
    ctx.client.name = setname;
  }
  resp::writeArrayHeader(ctx.out, 14);
  resp::writeBulk(ctx.out, "server");
  resp::writeBulk(ctx.out, "redis");
  resp::writeBulk(ctx.out, "version");
  resp::writeBulk(ctx.out, kCompatibleRedisVersion);
  resp::writeBulk(ctx.out, "proto");
  resp::writeInteger(ctx.out, 2);
  resp::writeBulk(ctx.out, "id");
  resp::writeInteger(ctx.out, static_cast<int64_t>(ctx.client.id));
  resp::writeBulk(ctx.out, "mode");
  resp::writeBulk(ctx.out, "standalone");
  resp::writeBulk(ctx.out, "role");
  resp::writeBulk(ctx.out, "master");
  resp::writeBulk(ctx.out, "modules");
  resp::writeArrayHeader(ctx.out, 0);
}

asio::awaitable<void> select(CommandContext& ctx, Args& args) {
  int64_t db = 0;
  if (!parseInt64(args[1], db)) {
    ctx.error("syntax", "ERR value is not an integer or out of range");
  } else if (db < 0 || db >= ctx.server.store.databases()) {
    ctx.error("syntax", "ERR DB index is out of range");
  } else {
    ctx.client.db = static_cast<int>(db);
    resp::writeSimple(ctx.out, "OK");
  }
  co_return;
}

void clientSetInfo(CommandContext& ctx, Args& args) {
  if (args.size() != 4) {
    ctx.error("arity", "ERR wrong number of arguments for 'client|setinfo' command");
  } else if (!validClientName(args[3])) {
    ctx.error("syntax", "ERR " + args[2] + " cannot contain spaces, newlines or special characters.");
  } else if (equalsIgnoreCase(args[2], "lib-name")) {
    ctx.client.lib_name = args[3];
    resp::writeSimple(ctx.out, "OK");
  } else if (equalsIgnoreCase(args[2], "lib-ver")) {
    ctx.client.lib_ver = args[3];
    resp::writeSimple(ctx.out, "OK");
  } else {
    ctx.error("syntax", "ERR Unrecognized option '" + args[2] + "'");
  }
}

asio::awaitable<void> client(CommandContext& ctx, Args& args) {
  const std::string sub = lowercase(args[1]);
  if (sub == "setname" && args.size() == 3) {
    if (!validClientName(args[2])) {
      ctx.error("syntax", "ERR Client names cannot contain spaces, newlines or special characters.");
    } else {
      ctx.client.name = args[2];
      resp::writeSimple(ctx.out, "OK");
    }
  } else if (sub == "getname" && args.size() == 2) {
    if (ctx.client.name.empty()) {
      resp::writeNull(ctx.out);
    } else {
      resp::writeBulk(ctx.out, ctx.client.name);
    }
  } else if (sub == "id" && args.size() == 2) {
    resp::writeInteger(ctx.out, static_cast<int64_t>(ctx.client.id));
  } else if (sub == "setinfo") {
    clientSetInfo(ctx, args);
  } else if (sub == "info" && args.size() == 2) {
    resp::writeBulk(ctx.out, "id=" + std::to_string(ctx.client.id) + " addr=" + ctx.client.peer + " name=" +
                                 ctx.client.name + " db=" + std::to_string(ctx.client.db) + " lib-name=" +
                                 ctx.client.lib_name + " lib-ver=" + ctx.client.lib_ver + "\n");
  } else {
    // Includes MAINT_NOTIFICATIONS: a +OK would commit go-redis to push notifications that
    // lockshift does not send, so it must be an error (go-redis then disables the feature).
    ctx.error("unknown_subcommand", "ERR unknown subcommand '" + args[1].substr(0, 128) + "'. Try CLIENT HELP.");
  }
  co_return;
}

}  // namespace

void addConnectionCommands(std::vector<CommandSpec>& table) {
  table.push_back({"ping", -1, false, false, ping});
  table.push_back({"echo", 2, false, false, echo});
  table.push_back({"quit", -1, true, false, quit});
  table.push_back({"auth", -2, true, false, auth});
  table.push_back({"hello", -1, true, false, hello});
  table.push_back({"select", 2, false, false, select});
  table.push_back({"client", -2, false, false, client});
}

}  // namespace lockshift
