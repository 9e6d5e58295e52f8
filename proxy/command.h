#pragma once
// The RESP command layer: a table of command families (connection, server, keys, scripts), each
// a small set of handlers. A session parses a request and runs it through dispatch() (or its two
// halves, beginCommand() and endCommand()); the handler appends exactly one reply to the output
// buffer. Handlers talk to the keyspace only through LockStore.
//
// Thread-safety: a CommandContext belongs to one session and is used on its strand only.
// ServerContext is shared by every session and is read-only after start-up (atomics aside).

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lock_store.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "resp/parser.h"

namespace lockshift {

// What every session shares. Must outlive every session.
struct ServerContext {
  LockStore& store;  // the keyspace Atlantis sees
  std::string store_label;  // metrics label of commands answered through `store` ("router")
  Metrics& metrics;
  const Config& config;
  std::string password;  // empty: AUTH not required
  // When set (with `password`, its first line at start-up), AUTH reads this file at every
  // attempt and accepts any of its non-empty lines: a password is rotated by adding the new line,
  // moving Atlantis to it, then removing the old line, with no restart.
  std::string password_file;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::atomic<uint64_t> next_client_id{1};
  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> commands_processed{0};
  // Commands read and not yet answered, over every session (Session::run reads this).
  std::atomic<int64_t> commands_in_flight{0};

  bool requiresAuth() const { return !password.empty(); }
  resp::Limits limits(bool authenticated) const;
};

// Per-connection state that commands read and change.
struct ClientState {
  uint64_t id = 0;
  int db = 0;
  bool authenticated = false;
  bool close_after_reply = false;  // QUIT
  std::string name;                // CLIENT SETNAME
  std::string lib_name, lib_ver;   // CLIENT SETINFO
  std::string peer;                // "127.0.0.1:51234"
  resp::Parser* parser = nullptr;  // to switch limits after AUTH
  // Metric handles this session already resolved, by command index and store (see endCommand()),
  // so the request path takes no lock once a session has seen a command.
  std::vector<Metrics::CommandMetrics*> metrics_cache;
};

using Args = std::vector<std::string>;

struct CommandContext {
  ServerContext& server;
  ClientState& client;
  std::string& out;  // replies are appended here
  std::string store_used = "proxy";  // set by handlers that reach the store (for metrics)
  std::string error_kind;            // set when the reply is an error (for metrics)

  // Appends an error reply and records its kind for metrics.
  void error(std::string_view kind, std::string_view message);
  // Appends the error reply for a failed store call.
  void storeError(const Status& status);
};

using Handler = asio::awaitable<void> (*)(CommandContext&, Args&);

struct CommandSpec {
  const char* name;  // lower case
  int arity;         // Redis convention: N exact (name included), -N at least N
  bool allowed_before_auth;
  bool is_write;
  Handler handler;
};

// Parses and runs one request (args[0] is the command name, any case). Appends exactly one reply.
asio::awaitable<void> dispatch(CommandContext& ctx, Args& args);

// dispatch() in two halves around the handler, for a caller that awaits the handler in its own
// coroutine: one coroutine frame fewer per request (Session does this).
struct CommandRecord {
  std::chrono::steady_clock::time_point started;
  size_t index = 0;  // in commandTable(); its size for an unknown command
};
// Returns the handler to await, or nullptr after appending the refusal (unknown command, NOAUTH,
// wrong arity). Either way endCommand() follows, once the handler has completed.
Handler beginCommand(CommandContext& ctx, const Args& args, CommandRecord& record);
// Counts the request in the metrics.
void endCommand(CommandContext& ctx, const CommandRecord& record);

// All known commands (for COMMAND and COMMAND COUNT).
const std::vector<CommandSpec>& commandTable();

// Families, each in its own file; the table is their union.
void addConnectionCommands(std::vector<CommandSpec>& table);  // commands_connection.cc
void addServerCommands(std::vector<CommandSpec>& table);      // commands_server.cc
void addKeyCommands(std::vector<CommandSpec>& table);         // commands_keys.cc
void addScriptCommands(std::vector<CommandSpec>& table);      // commands_script.cc

// Helpers shared by the families.
std::string lowercase(std::string_view s);
bool equalsIgnoreCase(std::string_view a, std::string_view b);
// Redis's string2ll: strict decimal int64 (no spaces, no '+', no leading zeros except "0").
bool parseInt64(std::string_view s, int64_t& out);
bool parseUint64(std::string_view s, uint64_t& out);
// "-ERR wrong number of arguments for 'get' command"
void wrongArity(CommandContext& ctx, std::string_view name);

}  // namespace lockshift
