// Server commands: INFO, COMMAND, CONFIG GET, DBSIZE. Enough of Redis's shapes for the clients
// that probe a server when they connect (ioredis's ready check reads INFO's `loading:0`,
// redis-cli asks COMMAND DOCS, redis-benchmark asks CONFIG GET save/appendonly).

#include <unistd.h>

#include <chrono>

#include "common/glob.h"
#include "proxy/command.h"
#include "resp/writer.h"

namespace lockshift {

namespace {

constexpr std::string_view kLockshiftVersion = "0.1.0";

std::string infoServer(const CommandContext& ctx) {
  auto uptime = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                                 ctx.server.started).count();
  std::string s = "# Server\r\n";
  s += "redis_version:7.0.0\r\n";
  s += "lockshift_version:" + std::string(kLockshiftVersion) + "\r\n";
  s += "redis_mode:standalone\r\n";
  s += "os:Linux\r\n";
  s += "process_id:" + std::to_string(::getpid()) + "\r\n";
  s += "tcp_port:" + ctx.server.config.server.resp_listen.substr(ctx.server.config.server.resp_listen.rfind(':') + 1) + "\r\n";
  s += "uptime_in_seconds:" + std::to_string(uptime) + "\r\n";
  s += "uptime_in_days:" + std::to_string(uptime / 86400) + "\r\n";
  return s + "\r\n";
}

std::string infoClients(const CommandContext& ctx) {
  return "# Clients\r\nconnected_clients:" + std::to_string(ctx.server.connected_clients.load()) +
         "\r\nmaxclients:" + std::to_string(ctx.server.config.server.max_clients) + "\r\n\r\n";
}

std::string infoPersistence() {
  // lockshift answers only once its stores are open, so it is never loading.
  return "# Persistence\r\nloading:0\r\nasync_loading:0\r\n\r\n";
}

std::string infoStats(const CommandContext& ctx) {
  return "# Stats\r\ntotal_commands_processed:" + std::to_string(ctx.server.commands_processed.load()) +
         "\r\n\r\n";
}

std::string infoReplication() { return "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n"; }

asio::awaitable<std::string> infoKeyspace(CommandContext& ctx) {
  std::string s = "# Keyspace\r\n";
  for (int db = 0; db < ctx.server.store.databases(); ++db) {
    auto n = co_await ctx.server.store.count(db);
    if (n.isOk() && *n > 0) s += "db" + std::to_string(db) + ":keys=" + std::to_string(*n) + ",expires=0,avg_ttl=0\r\n";
  }
  co_return s + "\r\n";
}

asio::awaitable<void> info(CommandContext& ctx, Args& args) {
  bool all = args.size() == 1;
  auto wants = [&](std::string_view section) {
    if (all) return true;
    for (size_t i = 1; i < args.size(); ++i) {
      if (equalsIgnoreCase(args[i], section) || equalsIgnoreCase(args[i], "all") ||
          equalsIgnoreCase(args[i], "everything") || equalsIgnoreCase(args[i], "default")) {
        return true;
      }
    }
    return false;
  };
  std::string text;
  if (wants("server")) text += infoServer(ctx);
  if (wants("clients")) text += infoClients(ctx);
  if (wants("persistence")) text += infoPersistence();
  if (wants("stats")) text += infoStats(ctx);
  if (wants("replication")) text += infoReplication();
  if (wants("keyspace")) {
    ctx.store_used = ctx.server.store_label;
    text += co_await infoKeyspace(ctx);
  }
  if (text.size() >= 2) text.resize(text.size() - 2);  // no blank line after the last section
  resp::writeBulk(ctx.out, text);
}

// COMMAND's per-command entry: name, arity, flags, first key, last key, step, ACL categories,
// tips, key specs, subcommands (Redis 7 shape).
void writeCommandInfo(std::string& out, const CommandSpec& spec) {
  bool has_key = spec.is_write || std::string_view(spec.name) == "get" || std::string_view(spec.name) == "exists" ||
                 std::string_view(spec.name) == "type";
  resp::writeArrayHeader(out, 10);
  resp::writeBulk(out, spec.name);
  resp::writeInteger(out, spec.arity);
  resp::writeArrayHeader(out, 1);
  resp::writeSimple(out, spec.is_write ? "write" : "readonly");
  resp::writeInteger(out, has_key ? 1 : 0);
  resp::writeInteger(out, has_key ? (spec.arity < 0 ? -1 : 1) : 0);
  resp::writeInteger(out, has_key ? 1 : 0);
  for (int i = 0; i < 4; ++i) resp::writeArrayHeader(out, 0);
}

asio::awaitable<void> command(CommandContext& ctx, Args& args) {
  const auto& table = commandTable();
  if (args.size() == 1) {
    resp::writeArrayHeader(ctx.out, table.size());
    for (const auto& spec : table) writeCommandInfo(ctx.out, spec);
    co_return;
  }
  const std::string sub = lowercase(args[1]);
  if (sub == "count" && args.size() == 2) {
    resp::writeInteger(ctx.out, static_cast<int64_t>(table.size()));
  } else if (sub == "docs") {
    // No documentation is served; redis-cli falls back to its built-in help.
    resp::writeArrayHeader(ctx.out, 0);
  } else if (sub == "info") {
    resp::writeArrayHeader(ctx.out, args.size() - 2);
    for (size_t i = 2; i < args.size(); ++i) {
      const CommandSpec* found = nullptr;
      for (const auto& spec : table) {
        if (equalsIgnoreCase(spec.name, args[i])) found = &spec;
      }
      if (found != nullptr) {
        writeCommandInfo(ctx.out, *found);
      } else {
        resp::writeNullArray(ctx.out);
      }
    }
  } else {
    ctx.error("unknown_subcommand", "ERR unknown subcommand '" + args[1].substr(0, 128) + "'. Try COMMAND HELP.");
  }
}

// CONFIG GET answers the few parameters clients read at connect time; CONFIG SET is refused since
// lockshift is configured by its own TOML file.
asio::awaitable<void> config(CommandContext& ctx, Args& args) {
  const std::string sub = lowercase(args[1]);
  if (sub != "get" || args.size() < 3) {
    ctx.error("unknown_subcommand",
              "ERR lockshift supports only CONFIG GET; it is configured by its TOML file");
    co_return;
  }
  const std::pair<std::string_view, std::string> params[] = {
      {"save", ""},
      {"appendonly", "no"},
      {"databases", std::to_string(ctx.server.store.databases())},
      {"maxclients", std::to_string(ctx.server.config.server.max_clients)},
      {"proto-max-bulk-len", std::to_string(ctx.server.config.server.max_bulk_length)},
      {"timeout", std::to_string(ctx.server.config.server.idle_timeout.count() / 1000)},
  };
  std::vector<std::pair<std::string_view, std::string_view>> hits;
  for (const auto& [name, value] : params) {
    for (size_t i = 2; i < args.size(); ++i) {
      if (globMatch(lowercase(args[i]), name)) {
        hits.emplace_back(name, value);
        break;
      }
    }
  }
  resp::writeArrayHeader(ctx.out, hits.size() * 2);
  for (const auto& [name, value] : hits) {
    resp::writeBulk(ctx.out, name);
    resp::writeBulk(ctx.out, value);
  }
}

asio::awaitable<void> dbsize(CommandContext& ctx, Args&) {
  ctx.store_used = ctx.server.store_label;
  auto n = co_await ctx.server.store.count(ctx.client.db);
  if (!n) {
    ctx.storeError(n.status());
  } else {
    resp::writeInteger(ctx.out, *n);
  }
}

}  // namespace

void addServerCommands(std::vector<CommandSpec>& table) {
  table.push_back({"info", -1, false, false, info});
  table.push_back({"command", -1, false, false, command});
  table.push_back({"config", -2, false, false, config});
  table.push_back({"dbsize", 1, false, false, dbsize});
}

}  // namespace lockshift
