#pragma once
// lockshift's configuration, loaded from TOML (DESIGN §5). The file gives the initial state;
// every field has a default documented in configs/lockshift.toml, which stays in sync with this.
//
// Loading never throws: errors come back as a Status whose message is "file:line: message"
// (line 0 when no line applies, e.g. an unreadable file). Unknown keys and sections are errors.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace lockshift {

using Duration = std::chrono::milliseconds;

struct ServerConfig {
  std::string resp_listen = "127.0.0.1:6380";   // host:port of the RESP listener
  std::string admin_listen = "127.0.0.1:9121";  // host:port of the admin HTTP API
  std::string state_dir = "lockshift-state";    // relative paths resolve against the config file
  std::string password_file;                    // empty: no AUTH required
  std::string admin_token_file;                 // empty: admin API unauthenticated (loopback only)
  int threads = 1;                              // 0: one per core
  int databases = 16;                           // SELECT 0..databases-1
  Duration idle_timeout{0};                     // 0: never close idle clients (Redis's timeout 0)
  size_t max_clients = 10000;
  // Protocol limits (resp::Limits); tighter limits apply before AUTH.
  size_t max_bulk_length = 16 * 1024 * 1024;
  size_t max_array_length = 1024 * 1024;
  size_t max_inline_length = 64 * 1024;
  size_t max_input_buffer = 64 * 1024 * 1024;  // per connection, unparsed + partially parsed bytes
};

struct StoreConfig {
  std::string type = "lmdb";  // lmdb | redis | redis-cluster
  // lmdb
  std::string path;           // empty: <state_dir>/<legacy|enhanced>
  size_t map_size = size_t{1} << 30;
  bool sync = true;
  // redis / redis-cluster (used from the migration engine on)
  std::string address;                 // host:port or unix:PATH (redis)
  std::vector<std::string> addresses;  // seed nodes (redis-cluster)
  int db = 0;
  std::string username;
  std::string password_file;
  std::string key_prefix;
  Duration connect_timeout{1000};
  Duration command_timeout{1000};
  int pool_size = 8;
};

enum class AcquireMode { kStrict, kCompatible };

struct MigrationRule {
  std::string match;  // key glob
  std::string owner;  // "legacy" | "enhanced"
};

struct MigrationConfig {
  std::string phase = "legacy-only";  // legacy-only | shadow | hybrid | enhanced-only
  double traffic_split = 0;           // percent of buckets owned by enhanced in hybrid, 0..100
  AcquireMode acquire = AcquireMode::kStrict;
  bool keep_legacy_in_sync = true;
  std::vector<MigrationRule> rules;
};

struct ConsistencyConfig {
  // Time between scheduled dry-run checks while enhanced is in use; "0" turns the schedule off.
  // Shorter keeps the gate's evidence fresh at the cost of a full read of both stores each time.
  Duration interval{std::chrono::hours(1)};
  // Comparison rounds; a key is divergent only if it differs in every one. More rounds (and a
  // longer recheck_delay) tolerate slower in-flight writes but make a check take longer.
  int rounds = 3;
  Duration recheck_delay{1000};
  // Forward moves (more keys to enhanced) need a clean report newer than max_report_age for the
  // keys that move; `force` overrides with an audit event. false: moves are ungated.
  bool gates = true;
  Duration max_report_age{std::chrono::hours(1)};
  // Reports kept in <state_dir>/reports; the oldest are removed beyond this.
  size_t keep_reports = 100;
  // Forward moves also need the shadow mirror's divergence rate (divergent / compared) at most
  // this, when it compared anything.
  double max_divergence_rate = 0.001;
};

// The shadow phase's mirror (DESIGN §2) and the backfill that precedes it.
struct ShadowConfig {
  // Replay GET and SCAN on enhanced too, not only writes. Doubles the load on enhanced for reads.
  bool mirror_reads = false;
  // Calls waiting for replay at most; beyond it calls are dropped and counted (writes are then
  // journaled, so enhanced is still repaired). Larger rides out longer enhanced slowdowns.
  size_t queue_size = 10000;
  // Replays in flight at once. Each waits for a round trip to enhanced, so the mirror keeps up
  // with at most workers / round-trip calls per second.
  int workers = 64;
  // Fraction of mirrored SCAN pages whose keys are checked in enhanced.
  double scan_sample_rate = 0.1;
  // Divergence examples kept for status.
  size_t examples = 20;
  // Keys per second the backfill copies into enhanced; 0: as fast as the stores allow. Lower
  // spares a busy legacy store at the cost of a longer backfill.
  int64_t backfill_rate = 0;
};

// The circuit breaker on the enhanced store (DESIGN §2 "Automatic fallback").
struct FallbackConfig {
  // Take enhanced out of the path by itself when it fails. Requires keep_legacy_in_sync, since
  // legacy then answers for every key; with keep_legacy_in_sync = false it defaults to off.
  bool enabled = true;
  // Consecutive failed calls that trip it. Lower reacts sooner, and also to brief blips.
  int failure_threshold = 5;
  // Or: this fraction of calls failed within `window`, once `min_requests` calls were made.
  double error_rate_threshold = 0.5;
  Duration window{10000};
  int min_requests = 20;
  // A call slower than this counts as failed; "0" disables the latency rule.
  Duration latency_threshold{0};
  // Time out of the path before probing again.
  Duration reset_timeout{5000};
  // Successful probes in a row before it closes (after the keys written meanwhile are repaired).
  int half_open_max_requests = 3;
};

struct Config {
  std::string source;  // the file it was loaded from ("<string>" for text)
  ServerConfig server;
  StoreConfig legacy;
  StoreConfig enhanced;
  MigrationConfig migration;
  ConsistencyConfig consistency;
  FallbackConfig fallback;
  ShadowConfig shadow;
};

// Parses and validates TOML text. `source` names the text in error messages and is the base for
// relative paths (its directory).
Result<Config> parseConfig(std::string_view text, const std::string& source);
// Reads and parses a file.
Result<Config> loadConfig(const std::string& path);

// "5s", "250ms", "2m", "1h", "0" → Duration. Used by the loader and by tests.
Result<Duration> parseDuration(std::string_view text);
// "1GiB", "512MiB", "64KiB", "1073741824" → bytes.
Result<size_t> parseByteSize(std::string_view text);

}  // namespace lockshift
