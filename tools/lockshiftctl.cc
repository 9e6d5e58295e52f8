// lockshiftctl: the operator's command line for lockshift. Every command but `diff` talks to the
// admin API of a running proxy (proxy/admin_server.h); `diff` opens the stores of a config
// directly. This file parses the command line and dispatches; lockshiftctl_cli.h lists the rest.

#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "tools/lockshiftctl_cli.h"

namespace {

using namespace lockshift::ctl;

constexpr std::string_view kVersion = "lockshiftctl 0.1.0";

constexpr std::string_view kToolHelp = R"(usage: lockshiftctl [--admin URL] [--token-file FILE] [--json] COMMAND [ARGS]

Operates a lockshift migration proxy through its admin API, or compares its two stores offline.

Commands:
  status                                    phase, split, rules, rollback, journal, stores
  phase PHASE [--split N] [--force]         move to legacy-only, shadow, hybrid or enhanced-only
  split N [--force]                         set the hybrid traffic split, 0 to 100 %
  rollback [--reason TEXT] | rollback --clear
                                            raise or clear the emergency rollback
  check [--repair] [--wait]                 start a consistency check (--wait: follow it)
  report ID|latest [--format json|md|html]  show a consistency report
  locks [--prefix P | --repo R [--pull N]]  list held locks
  unlock KEY [--db N] | --repo R --pull N   release one lock, or every lock of a pull
  events [--limit N]                        the audit log, oldest first
  diff --config FILE [--repair] [--format json|md|html] [--rounds N] [--recheck-delay DURATION]
                                            compare the stores of FILE offline, without the proxy
  help [COMMAND]                            this text, or a command's

Global flags (before or after the command):
  --admin URL        the admin API (default: $LOCKSHIFT_ADMIN, else http://127.0.0.1:9121)
  --token-file FILE  bearer token for the admin API: the first line of FILE
                     (default: $LOCKSHIFT_TOKEN_FILE; needed for changes when lockshift has
                     [server] admin_token_file)
  --json             print the server's JSON on stdout instead of text
  -h, --help         this text; 'lockshiftctl COMMAND --help' for one command
  --version

Requests time out after 10 s. Progress (check --wait, diff) goes to stderr: a bar on a terminal,
a line per second otherwise.

Exit codes:
  0  success
  1  failure: admin API unreachable, HTTP 5xx, an unexpected answer, a store or file error
  2  usage error: unknown command or flag, a bad value (the message names it)
  3  refused (HTTP 409): a gate or the current state refused; the reasons are printed
  4  divergent: check --wait or diff finished with a divergent verdict
  5  not found (HTTP 404): no such report, lock or endpoint
)";

struct FlagSpec {
  std::string_view name;
  bool takes_value;
};

struct CommandSpec {
  std::string_view name;
  std::string_view help;  // usage line, then a description
  std::vector<FlagSpec> flags;
  size_t min_args, max_args;
  int (*run)(const Invocation&);

  const FlagSpec* flag(std::string_view name) const {
    for (const auto& f : flags) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"status",
       "usage: lockshiftctl status\n\n"
       "Shows the migration's control state (phase, traffic split, routing rules, rollback, epoch, where\n"
       "each value came from), the repair journal and the health of both stores.\n"
       "GET /api/v1/status.\n",
       {}, 0, 0, cmdStatus},
      {"phase",
       "usage: lockshiftctl phase PHASE [--split N] [--force]\n\n"
       "Moves the migration to PHASE: legacy-only, shadow, hybrid or enhanced-only.\n"
       "  --split N  also set the traffic split (percent of keys owned by enhanced in hybrid, 0-100)\n"
       "  --force    override the gates that guard forward moves (recorded in the audit log)\n"
       "A refused move exits 3 and prints the reasons. PUT /api/v1/migration.\n",
       {{"--split", true}, {"--force", false}}, 1, 1, cmdPhase},
      {"split",
       "usage: lockshiftctl split N [--force]\n\n"
       "Sets the hybrid traffic split: N percent (0-100, fractions allowed) of the key space is owned\n"
       "by the enhanced store.\n"
       "  --force  override the gates that guard a raise (recorded in the audit log)\n"
       "A refused change exits 3 and prints the reasons. PUT /api/v1/migration.\n",
       {{"--force", false}}, 1, 1, cmdSplit},
      {"rollback",
       "usage: lockshiftctl rollback [--reason TEXT]\n"
       "       lockshiftctl rollback --clear\n\n"
       "Raises the emergency rollback: every key is owned by the legacy store for new requests within\n"
       "a second, until it is cleared. It survives restarts.\n"
       "  --reason TEXT  why, for the audit log and the status\n"
       "  --clear        clear it (refused, exit 3, while <state_dir>/ROLLBACK exists)\n"
       "POST and DELETE /api/v1/rollback.\n",
       {{"--reason", true}, {"--clear", false}}, 0, 0, cmdRollback},
      {"check",
       "usage: lockshiftctl check [--repair] [--wait]\n\n"
       "Starts a consistency check in the running proxy: both stores compared key by key, in rounds.\n"
       "  --repair  copy each divergent key from its owner to the other store (default: a dry run)\n"
       "  --wait    follow the check, with progress on stderr, and print its verdict; exits 4 when\n"
       "            divergent, 1 when it failed\n"
       "Only one check runs at a time: another one exits 3. POST /api/v1/consistency/checks.\n",
       {{"--repair", false}, {"--wait", false}}, 0, 0, cmdCheck},
      {"report",
       "usage: lockshiftctl report ID|latest [--format json|md|html]\n\n"
       "Shows a consistency report: a summary by default, the full report with --format (json for\n"
       "machines, md or html for people). 'latest' is the newest finished one. Unknown: exit 5.\n"
       "GET /api/v1/consistency/checks/{id}.\n",
       {{"--format", true}}, 1, 1, cmdReport},
      {"locks",
       "usage: lockshiftctl locks [--prefix P | --repo R [--pull N]] [--limit N]\n\n"
       "Lists held locks with their owner store, pull request and user (and fencing token, for\n"
       "locks read from the enhanced store's records).\n"
       "  --prefix P  only keys starting with P (e.g. pr/acme/infra/); examines every key\n"
       "  --repo R    only project locks of repository R (its full name, e.g. acme/infra); the\n"
       "              enhanced store answers from its repository index for the keys it owns\n"
       "  --pull N    with --repo: only the locks of pull request N (the pull index)\n"
       "  --limit N   at most N locks (default 1000, at most 100000)\n"
       "GET /api/v1/locks.\n",
       {{"--prefix", true}, {"--repo", true}, {"--pull", true}, {"--limit", true}}, 0, 0, cmdLocks},
      {"unlock",
       "usage: lockshiftctl unlock KEY [--db N]\n"
       "       lockshiftctl unlock --repo R --pull N\n\n"
       "Releases one lock, as Atlantis's Unlock would, in both stores; recorded in the audit log.\n"
       "An absent key exits 5. With --repo and --pull, releases every lock of that pull request in\n"
       "every db, as Atlantis does when a pull request closes: each only while that pull still\n"
       "holds it, so a lock another pull took meanwhile stays.\n"
       "  --db N     the Redis database of the key (default 0)\n"
       "  --repo R   the repository's full name (e.g. acme/infra)\n"
       "  --pull N   the pull request number\n"
       "DELETE /api/v1/locks/{key}; DELETE /api/v1/locks?repo=R&pull=N.\n",
       {{"--db", true}, {"--repo", true}, {"--pull", true}}, 0, 1, cmdUnlock},
      {"events",
       "usage: lockshiftctl events [--limit N]\n\n"
       "Shows the audit log (phase and split changes, rollbacks, repairs, unlocks), oldest first.\n"
       "  --limit N  the newest N events (default 200, at most 10000)\n"
       "GET /api/v1/events.\n",
       {{"--limit", true}}, 0, 0, cmdEvents},
      {"diff",
       "usage: lockshiftctl diff --config FILE [--repair] [--format json|md|html] [--rounds N]\n"
       "                         [--recheck-delay DURATION]\n\n"
       "Compares the legacy and enhanced stores of a lockshift config offline, opening them directly\n"
       "(no admin API, no token). Ownership comes from <state_dir>/control.json when it exists, else\n"
       "from the config, and keys in the repair journal stay with the store that has them.\n"
       "  --config FILE            the lockshift config\n"
       "  --repair                 copy each divergent key from its owner to the other store;\n"
       "                           refused (exit 3) while lockshift serves that config\n"
       "  --format json|md|html    the full report instead of a summary\n"
       "  --rounds N               comparison rounds; a key is divergent only if it differs in\n"
       "                           every round (default: the config's [consistency] rounds, 3)\n"
       "  --recheck-delay DURATION pause before each recheck, e.g. 500ms, 2s (default: the\n"
       "                           config's [consistency] recheck_delay, 1s)\n"
       "Exits 0 when clean (or repaired), 4 when divergent, 1 when a store failed.\n",
       {{"--config", true}, {"--repair", false}, {"--format", true}, {"--rounds", true}, {"--recheck-delay", true}},
       0, 0, cmdDiff},
  };
  return kCommands;
}

int cmdHelp(const Invocation&) { return kExitOk; }  // handled in run(); listed for parsing

const CommandSpec kHelpCommand{"help", "usage: lockshiftctl help [COMMAND]\n", {}, 0, 1, cmdHelp};

const CommandSpec* findCommand(std::string_view name) {
  if (name == kHelpCommand.name) return &kHelpCommand;
  for (const auto& c : commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string envOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : std::move(fallback);
}

int run(const std::vector<std::string>& args) {
  Invocation inv;
  const CommandSpec* command = nullptr;
  std::optional<std::string> admin, token_file;
  bool help = false, version = false, flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (!flags_done && arg == "--") {
      flags_done = true;
      continue;
    }
    if (!flags_done && (arg.starts_with("--") || arg == "-h")) {
      const size_t eq = arg.find('=');
      const std::string name = arg.substr(0, eq);
      std::optional<std::string> value;
      if (eq != std::string::npos) value = arg.substr(eq + 1);
      bool takes_value = name == "--admin" || name == "--token-file";
      const FlagSpec* spec = command != nullptr ? command->flag(name) : nullptr;
      if (spec != nullptr) takes_value = spec->takes_value;
      const bool global = name == "--admin" || name == "--token-file" || name == "--json" || name == "--help" ||
                          name == "-h" || name == "--version";
      if (spec == nullptr && !global) {
        return usageError(inv, "unknown flag " + name + (command != nullptr ? " for " + inv.command : ""));
      }
      if (takes_value && !value) {
        if (i + 1 == args.size()) return usageError(inv, name + " needs a value");
        value = args[++i];
      }
      if (!takes_value && value) return usageError(inv, name + " takes no value");
      // A value given twice (--split 10 --split 90) is refused rather than settled by the last:
      // which one the operator meant cannot be told.
      const bool repeated = spec != nullptr ? inv.flags.count(name) != 0
                                            : (name == "--admin" && admin) || (name == "--token-file" && token_file);
      if (takes_value && repeated) return usageError(inv, name + " is given twice");
      if (spec != nullptr) {
        inv.flags[name] = value.value_or("");
      } else if (name == "--admin") {
        admin = value;
      } else if (name == "--token-file") {
        token_file = value;
      } else if (name == "--json") {
        inv.globals.json = true;
      } else if (name == "--version") {
        version = true;
      } else {
        help = true;
      }
      continue;
    }
    if (command == nullptr) {
      command = findCommand(arg);
      if (command == nullptr) return usageError(inv, "unknown command '" + arg + "'");
      inv.command = arg;
      continue;
    }
    inv.args.push_back(arg);
  }

  if (version) {
    std::cout << kVersion << "\n";
    return kExitOk;
  }
  if (command == &kHelpCommand && !inv.args.empty()) {
    command = findCommand(inv.args[0]);
    if (command == nullptr || command == &kHelpCommand) return usageError(inv, "unknown command '" + inv.args[0] + "'");
    help = true;
  }
  if (command == nullptr || command == &kHelpCommand) {
    if (!help && command == nullptr) {
      std::cerr << kToolHelp;
      return kExitUsage;
    }
    std::cout << kToolHelp;
    return kExitOk;
  }
  if (help) {
    std::cout << command->help;
    return kExitOk;
  }
  if (inv.args.size() < command->min_args) {
    std::string usage(command->help.substr(0, command->help.find('\n')));
    return usageError(inv, "missing argument; " + usage);
  }
  if (inv.args.size() > command->max_args) {
    return usageError(inv, "unexpected argument '" + inv.args[command->max_args] + "'");
  }

  inv.globals.admin_url = admin.value_or(envOr("LOCKSHIFT_ADMIN", std::string(kDefaultAdminUrl)));
  inv.globals.token_file = token_file.value_or(envOr("LOCKSHIFT_TOKEN_FILE", ""));
  return command->run(inv);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    return fail(kExitFailure, std::string("unexpected error: ") + e.what());
  }
}
