#pragma once
// lockshiftctl's shared pieces: exit codes, the parsed command line every command receives, flag
// value parsers, and the commands themselves, one family per file:
//   lockshiftctl_online.cc  status, phase, split, rollback, locks, unlock, events (admin API)
//   lockshiftctl_check.cc   check, report (admin API)
//   lockshiftctl_diff.cc    diff (offline, straight against the stores of a config)
// lockshiftctl.cc parses the command line and dispatches; lockshiftctl_http.* talks HTTP;
// lockshiftctl_output.* renders tables, JSON, reports and progress.
//
// Thread-safety: a command runs on the main thread only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockshift::ctl {

// Process exit codes; lockshiftctl --help documents them.
enum Exit : int {
  kExitOk = 0,
  kExitFailure = 1,    // admin API unreachable, 5xx, unexpected answer, store or file error
  kExitUsage = 2,      // unknown command or flag, bad value
  kExitRefused = 3,    // 409: a gate or the current state refused
  kExitDivergent = 4,  // check --wait / diff finished with a divergent verdict
  kExitNotFound = 5,   // 404: unknown report, lock, ...
};

inline constexpr std::string_view kDefaultAdminUrl = "http://127.0.0.1:9121";

struct Globals {
  std::string admin_url;   // --admin, else $LOCKSHIFT_ADMIN, else kDefaultAdminUrl
  std::string token_file;  // --token-file, else $LOCKSHIFT_TOKEN_FILE; empty: send no token
  bool json = false;       // --json: machine output (JSON) on stdout
};

struct Invocation {
  Globals globals;
  std::string command;
  std::map<std::string, std::string, std::less<>> flags;  // "--split" -> "10"; a switch -> ""
  std::vector<std::string> args;                          // positional arguments

  bool has(std::string_view flag) const { return flags.find(flag) != flags.end(); }
  std::optional<std::string> value(std::string_view flag) const;
};

// Prints "lockshiftctl: <message>" on stderr and returns `code`.
int fail(int code, std::string_view message);
// fail(kExitUsage, ...) plus a pointer to the command's --help.
int usageError(const Invocation& inv, std::string_view message);

// A whole number in [min, max] from `text`; nullopt when it is not one.
std::optional<int64_t> parseInteger(std::string_view text, int64_t min, int64_t max);
// A traffic split: a number from 0 to 100 (fractions allowed, "12.5").
std::optional<double> parseSplit(std::string_view text);
// A value for --format: json, md or html.
bool isReportFormat(std::string_view text);

// Each returns the process exit code.
int cmdStatus(const Invocation& inv);
int cmdPhase(const Invocation& inv);
int cmdSplit(const Invocation& inv);
int cmdRollback(const Invocation& inv);
int cmdLocks(const Invocation& inv);
int cmdUnlock(const Invocation& inv);
int cmdEvents(const Invocation& inv);
int cmdCheck(const Invocation& inv);
int cmdReport(const Invocation& inv);
int cmdDiff(const Invocation& inv);

}  // namespace lockshift::ctl
