#include "proxy/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace lockshift {
namespace {

namespace fs = std::filesystem;

constexpr char kDefaultConfig[] = LOCKSHIFT_SOURCE_DIR "/configs/lockshift.toml";

// The error message for `text` named "t.toml", or "(no error)".
std::string errorOf(std::string_view text) {
  Result<Config> config = parseConfig(text, "t.toml");
  if (config) return "(no error)";
  EXPECT_EQ(config.status().code(), ErrorCode::kInvalidArgument) << config.status().toString();
  return config.status().message();
}

Config parseOk(std::string_view text, const std::string& source = "t.toml") {
  Result<Config> config = parseConfig(text, source);
  EXPECT_TRUE(config.isOk()) << config.status().toString();
  return config ? *config : Config{};
}

void expectServerDefaults(const ServerConfig& s) {
  ServerConfig d;
  EXPECT_EQ(s.resp_listen, "127.0.0.1:6380");
  EXPECT_EQ(s.admin_listen, "127.0.0.1:9121");
  EXPECT_EQ(s.password_file, d.password_file);
  EXPECT_EQ(s.admin_token_file, d.admin_token_file);
  EXPECT_EQ(s.threads, d.threads);
  EXPECT_EQ(s.databases, d.databases);
  EXPECT_EQ(s.idle_timeout, d.idle_timeout);
  EXPECT_EQ(s.max_clients, d.max_clients);
  EXPECT_EQ(s.max_bulk_length, d.max_bulk_length);
  EXPECT_EQ(s.max_array_length, d.max_array_length);
  EXPECT_EQ(s.max_inline_length, d.max_inline_length);
  EXPECT_EQ(s.max_input_buffer, d.max_input_buffer);
}

void expectLmdbDefaults(const StoreConfig& s, const std::string& path) {
  StoreConfig d;
  EXPECT_EQ(s.type, "lmdb");
  EXPECT_EQ(s.path, path);
  EXPECT_EQ(s.map_size, d.map_size);
  EXPECT_EQ(s.sync, d.sync);
  EXPECT_EQ(s.address, d.address);
  EXPECT_EQ(s.addresses, d.addresses);
  EXPECT_EQ(s.db, d.db);
  EXPECT_EQ(s.username, d.username);
  EXPECT_EQ(s.password_file, d.password_file);
  EXPECT_EQ(s.key_prefix, d.key_prefix);
  EXPECT_EQ(s.connect_timeout, d.connect_timeout);
  EXPECT_EQ(s.command_timeout, d.command_timeout);
  EXPECT_EQ(s.pool_size, d.pool_size);
}

void expectMigrationDefaults(const MigrationConfig& m) {
  EXPECT_EQ(m.phase, "legacy-only");
  EXPECT_EQ(m.traffic_split, 0);
  EXPECT_EQ(m.acquire, AcquireMode::kStrict);
  EXPECT_TRUE(m.keep_legacy_in_sync);
  EXPECT_TRUE(m.rules.empty());
}

// ---------------------------------------------------------------------------------------------
// The embedded default file.

TEST(DefaultConfigFile, LoadsWithTheDocumentedDefaults) {
  Result<Config> config = loadConfig(kDefaultConfig);
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  std::string state_dir = LOCKSHIFT_SOURCE_DIR "/lockshift-state";
  EXPECT_EQ(config->source, kDefaultConfig);
  EXPECT_EQ(config->server.state_dir, state_dir);
  expectServerDefaults(config->server);
  expectLmdbDefaults(config->legacy, state_dir + "/legacy");
  expectLmdbDefaults(config->enhanced, state_dir + "/enhanced");
  expectMigrationDefaults(config->migration);
  ConsistencyConfig d;
  EXPECT_EQ(config->consistency.interval, d.interval);
  EXPECT_EQ(config->consistency.rounds, d.rounds);
  EXPECT_EQ(config->consistency.recheck_delay, d.recheck_delay);
  EXPECT_EQ(config->consistency.gates, d.gates);
  EXPECT_EQ(config->consistency.max_report_age, d.max_report_age);
  EXPECT_EQ(config->consistency.keep_reports, d.keep_reports);
  ShadowConfig sd;
  EXPECT_EQ(config->shadow.mirror_reads, sd.mirror_reads);
  EXPECT_EQ(config->shadow.queue_size, sd.queue_size);
  EXPECT_EQ(config->shadow.workers, sd.workers);
  EXPECT_EQ(config->shadow.scan_sample_rate, sd.scan_sample_rate);
  EXPECT_EQ(config->shadow.examples, sd.examples);
  EXPECT_EQ(config->shadow.backfill_rate, sd.backfill_rate);
}

// Every field the loader accepts is shown in the file, set or commented out.
TEST(DefaultConfigFile, ShowsEveryField) {
  std::ifstream in(kDefaultConfig);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  const char* fields[] = {
      "[server]",
      "resp_listen",
      "admin_listen",
      "state_dir",
      "password_file",
      "admin_token_file",
      "threads",
      "databases",
      "idle_timeout",
      "max_clients",
      "max_bulk_length",
      "max_array_length",
      "max_inline_length",
      "max_input_buffer",
      "[legacy]",
      "[enhanced]",
      "type",
      "path",
      "map_size",
      "sync",
      "address",
      "addresses",
      "db",
      "username",
      "key_prefix",
      "connect_timeout",
      "command_timeout",
      "pool_size",
      "[migration]",
      "phase",
      "traffic_split",
      "acquire",
      "keep_legacy_in_sync",
      "[[migration.rules]]",
      "match",
      "owner",
      "[consistency]",
      "interval",
      "rounds",
      "recheck_delay",
      "gates",
      "max_report_age",
      "keep_reports",
      "[fallback]",
      "enabled",
      "failure_threshold",
      "error_rate_threshold",
      "window",
      "min_requests",
      "latency_threshold",
      "reset_timeout",
      "half_open_max_requests",
      "max_divergence_rate",
      "[shadow]",
      "mirror_reads",
      "queue_size",
      "workers",
      "scan_sample_rate",
      "examples",
      "backfill_rate",
  };
  for (const char* field : fields) {
    std::string needle = field[0] == '[' ? std::string(field) : std::string(field) + " = ";
    EXPECT_NE(text.find(needle), std::string::npos) << field;
  }
}

TEST(ParseConfig, RedisStoresWithEveryField) {
  Config config = parseOk(R"(
[legacy]
type = "redis"
address = "127.0.0.1:6379"
db = 0
username = ""
password_file = ""
connect_timeout = "1s"
command_timeout = "1s"
pool_size = 8
[enhanced]
type = "redis-cluster"
addresses = ["10.0.0.5:6379", "10.0.0.6:6379", "10.0.0.7:6379"]
key_prefix = ""
)");
  EXPECT_EQ(config.enhanced.addresses.size(), 3u);
}

TEST(ParseConfig, RedisStoreOnAUnixSocket) {
  Config config = parseOk(R"(
[legacy]
type = "redis"
address = "unix:/run/redis/redis.sock"
[enhanced]
type = "redis"
address = "unix:/run/redis-enhanced/redis.sock"
)");
  EXPECT_EQ(config.legacy.address, "unix:/run/redis/redis.sock");
  EXPECT_EQ(config.enhanced.address, "unix:/run/redis-enhanced/redis.sock");
}

// ---------------------------------------------------------------------------------------------
// Omitted sections and values.

TEST(ParseConfig, EmptyTextGivesDefaults) {
  Config config = parseOk("", "<string>");
  EXPECT_EQ(config.source, "<string>");
  EXPECT_EQ(config.server.state_dir, "lockshift-state");
  expectServerDefaults(config.server);
  expectLmdbDefaults(config.legacy, "lockshift-state/legacy");
  expectLmdbDefaults(config.enhanced, "lockshift-state/enhanced");
  expectMigrationDefaults(config.migration);
}

TEST(ParseConfig, OmittedKeysKeepDefaults) {
  Config config = parseOk("[server]\nthreads = 2\n[migration]\nphase = \"shadow\"\n");
  EXPECT_EQ(config.server.threads, 2);
  EXPECT_EQ(config.server.databases, 16);
  EXPECT_EQ(config.migration.phase, "shadow");
  EXPECT_EQ(config.migration.acquire, AcquireMode::kStrict);
}

TEST(ParseConfig, ReadsEveryField) {
  Config c = parseOk(R"(
[server]
resp_listen = "[::1]:7000"
admin_listen = "localhost:7001"
state_dir = "/var/lib/lockshift"
password_file = "/etc/lockshift/password"
admin_token_file = "/etc/lockshift/token"
threads = 4
databases = 32
idle_timeout = "5m"
max_clients = 500
max_bulk_length = 1048576
max_array_length = 4096
max_inline_length = "4KiB"
max_input_buffer = "2MB"

[legacy]
type = "redis"
address = "redis.internal:6379"
db = 3
username = "atlantis"
password_file = "/etc/lockshift/legacy.password"
connect_timeout = "250ms"
command_timeout = "1.5s"
pool_size = 16

[enhanced]
type = "lmdb"
path = "/data/enhanced"
map_size = "4GiB"
sync = false

[migration]
phase = "hybrid"
traffic_split = 12.5
acquire = "compatible"
keep_legacy_in_sync = false

[[migration.rules]]
match = "pr/acme/staging-*"
owner = "enhanced"

[[migration.rules]]
match = "global/*"
owner = "legacy"
)");
  EXPECT_EQ(c.server.resp_listen, "[::1]:7000");
  EXPECT_EQ(c.server.admin_listen, "localhost:7001");
  EXPECT_EQ(c.server.state_dir, "/var/lib/lockshift");
  EXPECT_EQ(c.server.password_file, "/etc/lockshift/password");
  EXPECT_EQ(c.server.admin_token_file, "/etc/lockshift/token");
  EXPECT_EQ(c.server.threads, 4);
  EXPECT_EQ(c.server.databases, 32);
  EXPECT_EQ(c.server.idle_timeout, Duration(300'000));
  EXPECT_EQ(c.server.max_clients, 500u);
  EXPECT_EQ(c.server.max_bulk_length, 1048576u);
  EXPECT_EQ(c.server.max_array_length, 4096u);
  EXPECT_EQ(c.server.max_inline_length, 4096u);
  EXPECT_EQ(c.server.max_input_buffer, 2'000'000u);

  EXPECT_EQ(c.legacy.type, "redis");
  EXPECT_EQ(c.legacy.path, "");
  EXPECT_EQ(c.legacy.address, "redis.internal:6379");
  EXPECT_EQ(c.legacy.db, 3);
  EXPECT_EQ(c.legacy.username, "atlantis");
  EXPECT_EQ(c.legacy.password_file, "/etc/lockshift/legacy.password");
  EXPECT_EQ(c.legacy.connect_timeout, Duration(250));
  EXPECT_EQ(c.legacy.command_timeout, Duration(1500));
  EXPECT_EQ(c.legacy.pool_size, 16);

  EXPECT_EQ(c.enhanced.type, "lmdb");
  EXPECT_EQ(c.enhanced.path, "/data/enhanced");
  EXPECT_EQ(c.enhanced.map_size, size_t{4} << 30);
  EXPECT_FALSE(c.enhanced.sync);

  EXPECT_EQ(c.migration.phase, "hybrid");
  EXPECT_DOUBLE_EQ(c.migration.traffic_split, 12.5);
  EXPECT_EQ(c.migration.acquire, AcquireMode::kCompatible);
  EXPECT_FALSE(c.migration.keep_legacy_in_sync);
  ASSERT_EQ(c.migration.rules.size(), 2u);
  EXPECT_EQ(c.migration.rules[0].match, "pr/acme/staging-*");
  EXPECT_EQ(c.migration.rules[0].owner, "enhanced");
  EXPECT_EQ(c.migration.rules[1].match, "global/*");
  EXPECT_EQ(c.migration.rules[1].owner, "legacy");
}

TEST(ParseConfig, TrafficSplitAcceptsIntegersAndFloats) {
  EXPECT_EQ(parseOk("[migration]\ntraffic_split = 50\n").migration.traffic_split, 50);
  EXPECT_EQ(parseOk("[migration]\ntraffic_split = 100\n").migration.traffic_split, 100);
  EXPECT_EQ(parseOk("[migration]\ntraffic_split = 0.01\n").migration.traffic_split, 0.01);
}

TEST(ParseConfig, RulesMayBeInlineTables) {
  Config c = parseOk("[migration]\nrules = [{ match = \"a*\", owner = \"legacy\" }]\n");
  ASSERT_EQ(c.migration.rules.size(), 1u);
  EXPECT_EQ(c.migration.rules[0].match, "a*");
}

TEST(ParseConfig, RedisClusterStore) {
  Config c = parseOk(R"(
[enhanced]
type = "redis-cluster"
addresses = ["10.0.0.1:6379", "[fd00::2]:6379"]
key_prefix = "lockshift:"
)");
  EXPECT_EQ(c.enhanced.addresses, (std::vector<std::string>{"10.0.0.1:6379", "[fd00::2]:6379"}));
  EXPECT_EQ(c.enhanced.key_prefix, "lockshift:");
  EXPECT_EQ(c.enhanced.path, "");
}

// ---------------------------------------------------------------------------------------------
// Relative paths.

TEST(ParseConfig, RelativePathsResolveAgainstTheFilesDirectory) {
  Config c = parseOk(R"(
[server]
state_dir = "state"
password_file = "secrets/resp.password"
admin_token_file = "./secrets/admin.token"
[legacy]
path = "/srv/legacy"
[enhanced]
path = "../data/enhanced"
)",
                     "/etc/lockshift/lockshift.toml");
  EXPECT_EQ(c.server.state_dir, "/etc/lockshift/state");
  EXPECT_EQ(c.server.password_file, "/etc/lockshift/secrets/resp.password");
  EXPECT_EQ(c.server.admin_token_file, "/etc/lockshift/secrets/admin.token");
  EXPECT_EQ(c.legacy.path, "/srv/legacy");
  EXPECT_EQ(c.enhanced.path, "/etc/data/enhanced");
}

TEST(ParseConfig, LmdbPathsDefaultInsideTheStateDirectory) {
  Config c = parseOk("[server]\nstate_dir = \"s\"\n", "/etc/lockshift/lockshift.toml");
  EXPECT_EQ(c.legacy.path, "/etc/lockshift/s/legacy");
  EXPECT_EQ(c.enhanced.path, "/etc/lockshift/s/enhanced");

  c = parseOk("[server]\nstate_dir = \"/var/lib/ls\"\n", "/etc/lockshift/lockshift.toml");
  EXPECT_EQ(c.legacy.path, "/var/lib/ls/legacy");
}

TEST(ParseConfig, StorePasswordFileResolves) {
  Config c = parseOk("[legacy]\ntype = \"redis\"\naddress = \"r:6379\"\npassword_file = \"pw\"\n",
                     "conf/lockshift.toml");
  EXPECT_EQ(c.legacy.password_file, "conf/pw");
  EXPECT_EQ(c.legacy.path, "");
}

TEST(ParseConfig, PathsStayRelativeWhenTheSourceHasNoDirectory) {
  Config c = parseOk("[server]\nstate_dir = \"s\"\npassword_file = \"pw\"\n", "t.toml");
  EXPECT_EQ(c.server.state_dir, "s");
  EXPECT_EQ(c.server.password_file, "pw");
  EXPECT_EQ(c.legacy.path, "s/legacy");
}

// ---------------------------------------------------------------------------------------------
// Errors: each is "t.toml:<line>: <message>" with the line of the offending key.

struct ErrorCase {
  const char* text;
  const char* message;
};

void expectErrors(std::initializer_list<ErrorCase> cases) {
  for (const ErrorCase& c : cases) EXPECT_EQ(errorOf(c.text), c.message) << c.text;
}

TEST(ConfigErrors, SyntaxErrorsCarryTheirLine) {
  std::string message = errorOf("[server]\nthreads = 1\nresp_listen = \n");
  EXPECT_EQ(message.rfind("t.toml:3: ", 0), 0u) << message;
  message = errorOf("[server]\nthreads = 1\nthreads = 2\n");
  EXPECT_EQ(message.rfind("t.toml:3: ", 0), 0u) << message;
  message = errorOf("[server\n");
  EXPECT_EQ(message.rfind("t.toml:1: ", 0), 0u) << message;
  message = errorOf("\n\n[server]\nstate_dir = \"\xff\xfe\"\n");
  EXPECT_EQ(message.rfind("t.toml:4: ", 0), 0u) << message;
}

TEST(ConfigErrors, UnknownKeysAndSections) {
  expectErrors({
      {"[server]\nthreads = 1\nresp_listn = \"x\"\n",
       "t.toml:3: unknown key 'resp_listn' in [server]"},
      {"[legacy]\n\n\nmapsize = 1\n", "t.toml:4: unknown key 'mapsize' in [legacy]"},
      {"[migration]\nsplit = 5\n", "t.toml:2: unknown key 'split' in [migration]"},
      {"[server.tls]\ncert = \"x\"\n", "t.toml:1: unknown key 'tls' in [server]"},
      {"\n[metrics]\nport = 1\n", "t.toml:2: unknown section [metrics]"},
      {"threads = 4\n",
       "t.toml:1: unknown key 'threads' at top level (keys belong in a section such as [server])"},
      {"[[server]]\nthreads = 1\n", "t.toml:1: [server] must be a table"},
      {"\n\n[shadow]\nqueue_size = 0\n", "t.toml:4: [shadow] queue_size must be between 1 and 10000000 (got 0)"},
      {"[shadow]\nmirror_writes = true\n", "t.toml:2: unknown key 'mirror_writes' in [shadow]"},
      {"[shadow]\nscan_sample_rate = 2\n", "t.toml:2: [shadow] scan_sample_rate must be between 0 and 1 (got 2)"},
      {"[fallback]\nwindow = \"0\"\n", "t.toml:2: [fallback] window must be greater than 0"},
      {"[fallback]\nerror_rate_threshold = 1.5\n",
       "t.toml:2: [fallback] error_rate_threshold must be between 0 and 1 (got 1.5)"},
      {"[fallback]\nthreshold = 3\n", "t.toml:2: unknown key 'threshold' in [fallback]"},
      {"[migration]\nkeep_legacy_in_sync = false\n[fallback]\nenabled = true\n",  // asked for explicitly
       "t.toml:4: [fallback] enabled = true needs [migration] keep_legacy_in_sync = true: legacy answers for "
       "every key while enhanced is out of the path; set enabled = false to decommission legacy"},
      {"[consistency]\nround = 3\n", "t.toml:2: unknown key 'round' in [consistency]"},
      {"[consistency]\nrounds = 0\n", "t.toml:2: [consistency] rounds must be between 1 and 100 (got 0)"},
      {"[consistency]\nmax_report_age = \"0\"\n", "t.toml:2: [consistency] max_report_age must be greater than 0"},
      {"[consistency]\ngates = \"yes\"\n", "t.toml:2: [consistency] gates must be true or false"},
  });
}

TEST(ConfigErrors, FirstErrorInFileOrderIsReported) {
  // "zzz" sorts after "aaa" but comes first in the file.
  expectErrors({{"[server]\nzzz = 1\naaa = 2\n", "t.toml:2: unknown key 'zzz' in [server]"}});
}

TEST(ConfigErrors, WrongTypes) {
  expectErrors({
      {"[server]\nthreads = \"4\"\n", "t.toml:2: [server] threads must be an integer"},
      {"[server]\nthreads = 4.0\n", "t.toml:2: [server] threads must be an integer"},
      {"[server]\nresp_listen = 6380\n", "t.toml:2: [server] resp_listen must be a string"},
      {"[server]\nstate_dir = [\"a\"]\n", "t.toml:2: [server] state_dir must be a string"},
      {"[server]\nidle_timeout = 5\n",
       "t.toml:2: [server] idle_timeout must be a duration string such as \"5s\" or \"250ms\""},
      {"[server]\nmax_bulk_length = true\n",
       "t.toml:2: [server] max_bulk_length must be a byte size: an integer number of bytes or a "
       "string such as \"64MiB\""},
      {"[server]\nmax_array_length = \"1MiB\"\n",
       "t.toml:2: [server] max_array_length must be an integer"},
      {"[legacy]\nsync = \"yes\"\n", "t.toml:2: [legacy] sync must be true or false"},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = \"a:1\"\n",
       "t.toml:3: [enhanced] addresses must be an array of \"host:port\" strings"},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = [\"a:1\", 2]\n",
       "t.toml:3: [enhanced] addresses must be an array of \"host:port\" strings"},
      {"[migration]\ntraffic_split = \"50\"\n",
       "t.toml:2: [migration] traffic_split must be a number"},
      {"[migration]\nkeep_legacy_in_sync = 1\n",
       "t.toml:2: [migration] keep_legacy_in_sync must be true or false"},
      {"server = 1\n", "t.toml:1: [server] must be a table"},
  });
}

TEST(ConfigErrors, OutOfRange) {
  expectErrors({
      {"[server]\nthreads = 257\n",
       "t.toml:2: [server] threads must be between 0 and 256 (got 257)"},
      {"[server]\nthreads = -1\n", "t.toml:2: [server] threads must be between 0 and 256 (got -1)"},
      {"[server]\ndatabases = 0\n",
       "t.toml:2: [server] databases must be between 1 and 1024 (got 0)"},
      {"[server]\ndatabases = 1025\n",
       "t.toml:2: [server] databases must be between 1 and 1024 (got 1025)"},
      {"[server]\nmax_clients = 0\n",
       "t.toml:2: [server] max_clients must be between 1 and 9223372036854775807 (got 0)"},
      {"[server]\nmax_bulk_length = 0\n",
       "t.toml:2: [server] max_bulk_length must be greater than 0"},
      {"[server]\nmax_inline_length = -5\n",
       "t.toml:2: [server] max_inline_length must not be negative"},
      {"[server]\nmax_array_length = 2147483648\n",
       "t.toml:2: [server] max_array_length must be between 1 and 2147483647 (got 2147483648)"},
      {"[legacy]\nmap_size = \"32KiB\"\n",
       "t.toml:2: [legacy] map_size must be at least 65536 bytes"},
      {"[legacy]\ntype = \"redis\"\naddress = \"r:1\"\npool_size = 0\n",
       "t.toml:4: [legacy] pool_size must be between 1 and 1024 (got 0)"},
      {"[legacy]\ntype = \"redis\"\naddress = \"r:1\"\npool_size = 1025\n",
       "t.toml:4: [legacy] pool_size must be between 1 and 1024 (got 1025)"},
      {"[legacy]\ntype = \"redis\"\naddress = \"r:1\"\ndb = -1\n",
       "t.toml:4: [legacy] db must be between 0 and 2147483647 (got -1)"},
      {"[enhanced]\ntype = \"redis\"\naddress = \"r:1\"\nconnect_timeout = \"0\"\n",
       "t.toml:4: [enhanced] connect_timeout must be greater than 0"},
      {"[enhanced]\ntype = \"redis\"\naddress = \"r:1\"\ncommand_timeout = \"0ms\"\n",
       "t.toml:4: [enhanced] command_timeout must be greater than 0"},
      {"[migration]\ntraffic_split = 101\n",
       "t.toml:2: [migration] traffic_split must be between 0 and 100 (got 101)"},
      {"[migration]\ntraffic_split = 100.5\n",
       "t.toml:2: [migration] traffic_split must be between 0 and 100 (got 100.5)"},
      {"[migration]\ntraffic_split = -0.5\n",
       "t.toml:2: [migration] traffic_split must be between 0 and 100 (got -0.5)"},
      {"[migration]\ntraffic_split = nan\n",
       "t.toml:2: [migration] traffic_split must be between 0 and 100 (got nan)"},
  });
}

TEST(ConfigErrors, BadDurationsAndSizesNameTheKey) {
  expectErrors({
      {"[server]\nidle_timeout = \"5\"\n",
       "t.toml:2: [server] idle_timeout is an invalid duration \"5\": missing unit (ms, s, m or "
       "h)"},
      {"[server]\nidle_timeout = \"-1s\"\n",
       "t.toml:2: [server] idle_timeout is an invalid duration \"-1s\": must not be negative"},
      {"[server]\nmax_bulk_length = \"16XB\"\n",
       "t.toml:2: [server] max_bulk_length is an invalid byte size \"16XB\": unknown unit \"XB\" "
       "(use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"},
  });
}

TEST(ConfigErrors, LimitRelations) {
  expectErrors({
      {"[server]\nmax_input_buffer = \"1MiB\"\n",
       "t.toml:2: [server] max_input_buffer (1048576) must be at least max_bulk_length (16777216): "
       "a whole bulk string must fit in a connection's input buffer"},
      // Only the bulk limit is set: the error points at it.
      {"[server]\nthreads = 1\nmax_bulk_length = \"128MiB\"\n",
       "t.toml:3: [server] max_input_buffer (67108864) must be at least max_bulk_length "
       "(134217728): a whole bulk string must fit in a connection's input buffer"},
      {"[server]\nmax_bulk_length = 1024\nmax_input_buffer = 2048\nmax_inline_length = 4096\n",
       "t.toml:3: [server] max_input_buffer (2048) must be at least max_inline_length (4096): a "
       "whole inline command must fit in the input buffer"},
  });
  parseOk("[server]\nmax_bulk_length = \"64MiB\"\nmax_input_buffer = \"64MiB\"\n");
}

TEST(ConfigErrors, Choices) {
  expectErrors({
      {"[legacy]\ntype = \"mysql\"\n",
       "t.toml:2: [legacy] type must be one of lmdb, redis, redis-cluster (got \"mysql\")"},
      {"[migration]\nphase = \"half\"\n",
       "t.toml:2: [migration] phase must be one of legacy-only, shadow, hybrid, enhanced-only "
       "(got \"half\")"},
      {"[migration]\nacquire = \"loose\"\n",
       "t.toml:2: [migration] acquire must be one of strict, compatible (got \"loose\")"},
  });
}

TEST(ConfigErrors, UnixSocketPathLongerThanASocketAddressHolds) {
  const std::string longest = "/" + std::string(106, 'a');  // 107 bytes: the most that fit
  EXPECT_EQ(errorOf("[enhanced]\ntype = \"redis\"\naddress = \"unix:" + longest + "\"\n"), "(no error)");
  EXPECT_EQ(errorOf("[enhanced]\ntype = \"redis\"\naddress = \"unix:" + longest + "a\"\n"),
            "t.toml:3: [enhanced] address \"unix:" + longest +
                "a\" is not unix:PATH: the socket's path is 108 bytes; a socket address holds at most 107");
}

TEST(ConfigErrors, Addresses) {
  expectErrors({
      {"[server]\nresp_listen = \"localhost\"\n",
       "t.toml:2: [server] resp_listen \"localhost\" is not host:port: missing :port"},
      {"[server]\nresp_listen = \"::1:6380\"\n",
       "t.toml:2: [server] resp_listen \"::1:6380\" is not host:port: IPv6 addresses need "
       "brackets: [::1]:6380"},
      {"[server]\nresp_listen = \":6380\"\n",
       "t.toml:2: [server] resp_listen \":6380\" is not host:port: missing host"},
      {"[server]\nresp_listen = \"\"\n",
       "t.toml:2: [server] resp_listen \"\" is not host:port: missing :port"},
      {"[server]\nresp_listen = \"127.0.0.1:0\"\n",
       "t.toml:2: [server] resp_listen \"127.0.0.1:0\" is not host:port: port must be between 1 "
       "and 65535"},
      {"[server]\nresp_listen = \"127.0.0.1:65536\"\n",
       "t.toml:2: [server] resp_listen \"127.0.0.1:65536\" is not host:port: port must be "
       "between 1 and 65535"},
      {"[server]\nresp_listen = \"127.0.0.1:http\"\n",
       "t.toml:2: [server] resp_listen \"127.0.0.1:http\" is not host:port: port must be a "
       "number"},
      {"[server]\nadmin_listen = \"[::1]9121\"\n",
       "t.toml:2: [server] admin_listen \"[::1]9121\" is not host:port: missing :port"},
      {"[server]\nadmin_listen = \"[::1:9121\"\n",
       "t.toml:2: [server] admin_listen \"[::1:9121\" is not host:port: missing ']' after the "
       "IPv6 address"},
      {"[server]\nadmin_listen = \"[nothost]:9121\"\n",
       "t.toml:2: [server] admin_listen \"[nothost]:9121\" is not host:port: invalid IPv6 "
       "address"},
      {"[server]\nresp_listen = \"my host:1\"\n",
       "t.toml:2: [server] resp_listen \"my host:1\" is not host:port: invalid host name"},
      {"[server]\nresp_listen = \"300.1.1.1:1\"\n",
       "t.toml:2: [server] resp_listen \"300.1.1.1:1\" is not host:port: invalid IPv4 address"},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = [\"a:1\", \"b\"]\n",
       "t.toml:3: [enhanced] addresses \"b\" is not host:port: missing :port"},
      {"[legacy]\ntype = \"redis\"\naddress = \"unix:redis.sock\"\n",
       "t.toml:3: [legacy] address \"unix:redis.sock\" is not unix:PATH: the socket's path must be absolute, "
       "such as unix:/run/redis/redis.sock"},
      {"[legacy]\ntype = \"redis\"\naddress = \"unix:\"\n",
       "t.toml:3: [legacy] address \"unix:\" is not unix:PATH: missing the socket's path after \"unix:\""},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = [\"a:1\", \"unix:/run/redis.sock\"]\n",
       "t.toml:3: [enhanced] addresses \"unix:/run/redis.sock\": a cluster's nodes are reached over TCP, as "
       "host:port"},
      {"[server]\nresp_listen = \"unix:/run/lockshift.sock\"\n",
       "t.toml:2: [server] resp_listen \"unix:/run/lockshift.sock\": lockshift listens on TCP, as host:port"},
      {"[server]\nresp_listen = \"127.0.0.1:7000\"\nadmin_listen = \"127.0.0.1:7000\"\n",
       "t.toml:3: [server] admin_listen 127.0.0.1:7000 uses the same port as resp_listen "
       "127.0.0.1:7000"},
  });
  Config c = parseOk("[server]\nresp_listen = \"0.0.0.0:6380\"\nadmin_listen = \"[::1]:9121\"\n");
  EXPECT_EQ(c.server.resp_listen, "0.0.0.0:6380");
}

TEST(ConfigErrors, PasswordsAreNeverInTheFile) {
  expectErrors({
      {"[legacy]\ntype = \"redis\"\naddress = \"r:6379\"\npassword = \"s3cret\"\n",
       "t.toml:4: [legacy] password must not be written in the config file: put it in a file "
       "readable only by lockshift and set password_file"},
      {"[server]\npassword = \"s3cret\"\n",
       "t.toml:2: [server] password must not be written in the config file: put it in a file "
       "readable only by lockshift and set password_file"},
      {"password = \"s3cret\"\n",
       "t.toml:1: password must not be written in the config file: put it in a file readable "
       "only by lockshift and set password_file"},
      // Reported even inside sections this version does not read.
      {"[shadow]\npassword = \"s3cret\"\n",
       "t.toml:2: [shadow] password must not be written in the config file: put it in a file "
       "readable only by lockshift and set password_file"},
      {"[server]\nadmin_token = \"t0ken\"\n",
       "t.toml:2: [server] admin_token must not be written in the config file: put it in a file "
       "readable only by lockshift and set admin_token_file"},
  });
}

TEST(ConfigErrors, AdminListenerOffLoopbackNeedsAToken) {
  expectErrors({
      {"[server]\nadmin_listen = \"0.0.0.0:9121\"\n",
       "t.toml:2: [server] admin_listen 0.0.0.0:9121 is not loopback: set admin_token_file"},
      {"[server]\nadmin_listen = \"[::]:9121\"\n",
       "t.toml:2: [server] admin_listen [::]:9121 is not loopback: set admin_token_file"},
      {"[server]\n\nadmin_listen = \"10.1.2.3:9121\"\n",
       "t.toml:3: [server] admin_listen 10.1.2.3:9121 is not loopback: set admin_token_file"},
      {"[server]\nadmin_listen = \"admin.example.com:9121\"\n",
       "t.toml:2: [server] admin_listen admin.example.com:9121 is not loopback: set "
       "admin_token_file"},
  });
  for (const char* loopback : {"127.0.0.1:9121", "127.8.9.10:9121", "localhost:9121",
                               "LOCALHOST:9121", "[::1]:9121", "[::ffff:127.0.0.1]:9121"}) {
    EXPECT_EQ(errorOf(std::string("[server]\nadmin_listen = \"") + loopback + "\"\n"), "(no error)")
        << loopback;
  }
  Config c = parseOk("[server]\nadmin_listen = \"0.0.0.0:9121\"\nadmin_token_file = \"token\"\n",
                     "/etc/lockshift/lockshift.toml");
  EXPECT_EQ(c.server.admin_token_file, "/etc/lockshift/token");
}

TEST(ConfigErrors, StoreTypeFields) {
  expectErrors({
      {"[legacy]\ntype = \"lmdb\"\naddress = \"r:6379\"\n",
       "t.toml:3: [legacy] address does not apply to type = \"lmdb\""},
      {"[legacy]\naddresses = [\"r:6379\"]\n",
       "t.toml:2: [legacy] addresses does not apply to type = \"lmdb\""},
      {"[enhanced]\ntype = \"redis\"\naddress = \"r:1\"\npath = \"x\"\n",
       "t.toml:4: [enhanced] path does not apply to type = \"redis\""},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = [\"r:1\"]\ndb = 1\n",
       "t.toml:4: [enhanced] db does not apply to type = \"redis-cluster\""},
      {"[enhanced]\ntype = \"redis-cluster\"\naddress = \"r:1\"\n",
       "t.toml:3: [enhanced] address does not apply to type = \"redis-cluster\""},
      {"[enhanced]\ntype = \"redis\"\n", "t.toml:2: [enhanced] type \"redis\" requires address"},
      {"[enhanced]\ntype = \"redis-cluster\"\n",
       "t.toml:2: [enhanced] type \"redis-cluster\" requires addresses"},
      {"[enhanced]\ntype = \"redis-cluster\"\naddresses = []\n",
       "t.toml:3: [enhanced] addresses must list at least one seed node"},
      {"[legacy]\ntype = \"redis-cluster\"\naddresses = [\"r:1\"]\n",
       "t.toml:2: [legacy] type must be lmdb or redis (got \"redis-cluster\"): Atlantis's own "
       "store is a single Redis, and the legacy store must stay one Atlantis can be pointed at"},
      {"[legacy]\ntype = \"redis\"\naddress = \"r:1\"\nkey_prefix = \"x:\"\n",
       "t.toml:4: [legacy] key_prefix must be empty: Atlantis reads and writes the legacy "
       "store's keys without a prefix"},
      {"[server]\nstate_dir = \"\"\n", "t.toml:2: [server] state_dir must not be empty"},
  });
}

TEST(ConfigErrors, LegacyAndEnhancedMustDiffer) {
  expectErrors({
      {"[legacy]\npath = \"/data/locks\"\n[enhanced]\npath = \"/data/./locks\"\n",
       "t.toml:4: [enhanced] path \"/data/./locks\" is also the legacy store's path: the two "
       "stores must differ"},
      {"[legacy]\ntype = \"redis\"\naddress = \"r:1\"\n[enhanced]\ntype = \"redis\"\n"
       "address = \"r:1\"\n",
       "t.toml:6: [enhanced] address r:1 db 0 is also the legacy store: the two stores must "
       "differ (use another db or key_prefix)"},
  });
  parseOk(
      "[legacy]\ntype = \"redis\"\naddress = \"r:1\"\n"
      "[enhanced]\ntype = \"redis\"\naddress = \"r:1\"\ndb = 1\n");
}

TEST(ConfigErrors, MigrationRules) {
  expectErrors({
      {"[migration]\nrules = 5\n",
       "t.toml:2: [migration] rules must be an array of tables ([[migration.rules]])"},
      {"[migration]\nrules = [1]\n",
       "t.toml:2: [[migration.rules]] entry 1 must be a table with match and owner"},
      {"[[migration.rules]]\nmatch = \"a*\"\nowner = \"legacy\"\n\n[[migration.rules]]\n"
       "match = \"b*\"\n",
       "t.toml:5: [[migration.rules]] entry 2 owner is required (legacy or enhanced)"},
      {"[[migration.rules]]\nowner = \"legacy\"\n",
       "t.toml:1: [[migration.rules]] entry 1 match is required (a key glob such as "
       "\"pr/acme/*\")"},
      {"[[migration.rules]]\nmatch = \"\"\nowner = \"legacy\"\n",
       "t.toml:2: [[migration.rules]] entry 1 match must not be empty"},
      {"[[migration.rules]]\nmatch = \"a*\"\nowner = \"\"\n",
       "t.toml:3: [[migration.rules]] entry 1 owner must be one of legacy, enhanced (got \"\")"},
      {"[[migration.rules]]\nmatch = \"a*\"\nowner = \"both\"\n",
       "t.toml:3: [[migration.rules]] entry 1 owner must be one of legacy, enhanced (got "
       "\"both\")"},
      {"[[migration.rules]]\nmatch = \"a*\"\nowner = \"legacy\"\nweight = 2\n",
       "t.toml:4: unknown key 'weight' in [[migration.rules]] entry 1"},
      {"[[migration.rules]]\nmatch = \"a*\"\nowner = \"legacy\"\n[[migration.rules]]\n"
       "match = \"a*\"\nowner = \"enhanced\"\n",
       "t.toml:5: [[migration.rules]] entry 2 match \"a*\" repeats entry 1"},
  });
}

TEST(ConfigErrors, NoExceptionEscapes) {
  std::string binary("\0\x01\xff[server]\n", 12);
  EXPECT_NE(errorOf(binary), "(no error)");
  EXPECT_NE(errorOf(std::string(100000, '[')), "(no error)");
}

// ---------------------------------------------------------------------------------------------
// loadConfig.

class LoadConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockshift_config_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  fs::path dir_;
};

TEST_F(LoadConfigTest, UsesThePathAsSourceAndBase) {
  std::string path = write("lockshift.toml", "[server]\nstate_dir = \"st\"\n");
  Result<Config> config = loadConfig(path);
  ASSERT_TRUE(config.isOk()) << config.status().toString();
  EXPECT_EQ(config->source, path);
  EXPECT_EQ(config->server.state_dir, (dir_ / "st").string());
  EXPECT_EQ(config->legacy.path, (dir_ / "st" / "legacy").string());
}

TEST_F(LoadConfigTest, ErrorsNameTheFile) {
  std::string path = write("bad.toml", "[server]\n\nthreads = \"x\"\n");
  Result<Config> config = loadConfig(path);
  ASSERT_FALSE(config.isOk());
  EXPECT_EQ(config.status().message(), path + ":3: [server] threads must be an integer");
}

TEST_F(LoadConfigTest, UnreadableFiles) {
  std::string missing = (dir_ / "missing.toml").string();
  Result<Config> config = loadConfig(missing);
  ASSERT_FALSE(config.isOk());
  EXPECT_EQ(config.status().message(), missing + ":0: cannot read: No such file or directory");

  config = loadConfig(dir_.string());
  ASSERT_FALSE(config.isOk());
  EXPECT_EQ(config.status().message(), dir_.string() + ":0: cannot read: Is a directory");
}

// ---------------------------------------------------------------------------------------------
// Durations and byte sizes.

TEST(ParseDuration, Accepts) {
  struct Case {
    const char* text;
    int64_t ms;
  };
  for (const Case& c : std::initializer_list<Case>{{"0", 0},
                                                   {"0s", 0},
                                                   {"250ms", 250},
                                                   {"5s", 5000},
                                                   {"2m", 120'000},
                                                   {"1h", 3'600'000},
                                                   {"1.5s", 1500},
                                                   {"0.001s", 1},
                                                   {"1h30m", 5'400'000},
                                                   {"1m0.5s", 60'500},
                                                   {"0.25h", 900'000}}) {
    Result<Duration> d = parseDuration(c.text);
    ASSERT_TRUE(d.isOk()) << c.text << ": " << d.status().toString();
    EXPECT_EQ(d->count(), c.ms) << c.text;
  }
}

TEST(ParseDuration, Rejects) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "invalid duration \"\": expected a number and a unit such as \"5s\" or \"250ms\""},
           {"-5s", "invalid duration \"-5s\": must not be negative"},
           {"5", "invalid duration \"5\": missing unit (ms, s, m or h)"},
           {"abc",
            "invalid duration \"abc\": expected a number and a unit such as \"5s\" or "
            "\"250ms\""},
           {"5x", "invalid duration \"5x\": unknown unit \"x\" (use ms, s, m or h)"},
           {"5S", "invalid duration \"5S\": unknown unit \"S\" (use ms, s, m or h)"},
           {"1.5ms", "invalid duration \"1.5ms\": not a whole number of milliseconds"},
           {"5 s", "invalid duration \"5 s\": missing unit (ms, s, m or h)"},
           {" 5s",
            "invalid duration \" 5s\": expected a number and a unit such as \"5s\" or "
            "\"250ms\""},
           {"1.s",
            "invalid duration \"1.s\": expected a number and a unit such as \"5s\" or "
            "\"250ms\""},
           {".5s",
            "invalid duration \".5s\": expected a number and a unit such as \"5s\" or "
            "\"250ms\""},
           {"5s5", "invalid duration \"5s5\": missing unit (ms, s, m or h)"},
           {"3000000000000h", "invalid duration \"3000000000000h\": too large"},
           {"99999999999999999999s", "invalid duration \"99999999999999999999s\": too large"},
           {"5000000000000000000ms5000000000000000000ms",
            "invalid duration \"5000000000000000000ms5000000000000000000ms\": too large"},
       }) {
    Result<Duration> d = parseDuration(c.text);
    ASSERT_FALSE(d.isOk()) << c.text;
    EXPECT_EQ(d.status().message(), c.message);
  }
}

TEST(ParseByteSize, Accepts) {
  struct Case {
    const char* text;
    size_t bytes;
  };
  for (const Case& c :
       std::initializer_list<Case>{{"0", 0},
                                   {"1073741824", 1073741824},
                                   {"100B", 100},
                                   {"64KiB", 65536},
                                   {"512MiB", size_t{512} << 20},
                                   {"1GiB", size_t{1} << 30},
                                   {"2TiB", size_t{2} << 40},
                                   {"1KB", 1000},
                                   {"16MB", 16'000'000},
                                   {"1GB", 1'000'000'000},
                                   {"1.5KiB", 1536},
                                   {"18446744073709551615", 18446744073709551615u}}) {
    Result<size_t> n = parseByteSize(c.text);
    ASSERT_TRUE(n.isOk()) << c.text << ": " << n.status().toString();
    EXPECT_EQ(*n, c.bytes) << c.text;
  }
}

TEST(ParseByteSize, Rejects) {
  const std::string kUnits = "(use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)";
  const std::string kExpected =
      "expected a number of bytes, optionally with a unit, such as "
      "\"64MiB\"";
  struct Case {
    const char* text;
    std::string message;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"", "invalid byte size \"\": " + kExpected},
           {"-1", "invalid byte size \"-1\": must not be negative"},
           {"KiB", "invalid byte size \"KiB\": " + kExpected},
           {"1XB", "invalid byte size \"1XB\": unknown unit \"XB\" " + kUnits},
           {"1kib", "invalid byte size \"1kib\": unknown unit \"kib\" " + kUnits},
           {"1KiBx", "invalid byte size \"1KiBx\": unknown unit \"KiBx\" " + kUnits},
           {"64 KiB", "invalid byte size \"64 KiB\": unexpected \" KiB\" after the unit"},
           {"1GiB1", "invalid byte size \"1GiB1\": unexpected \"1\" after the unit"},
           {"1.5B", "invalid byte size \"1.5B\": not a whole number of bytes"},
           {"18446744073709551616", "invalid byte size \"18446744073709551616\": too large"},
           {"1.0000000001GiB", "invalid byte size \"1.0000000001GiB\": more than 9 decimal places"},
           {"17179869184GiB", "invalid byte size \"17179869184GiB\": too large"},
       }) {
    Result<size_t> n = parseByteSize(c.text);
    ASSERT_FALSE(n.isOk()) << c.text;
    EXPECT_EQ(n.status().message(), c.message);
  }
}

}  // namespace
}  // namespace lockshift

namespace lockshift {
namespace {

TEST(ParseConfig, FallbackDefaultsFollowKeepLegacyInSync) {
  Config on = parseOk("");
  EXPECT_TRUE(on.fallback.enabled);
  EXPECT_EQ(on.fallback.failure_threshold, 5);
  EXPECT_EQ(on.fallback.reset_timeout, Duration(5000));
  Config off = parseOk("[migration]\nkeep_legacy_in_sync = false\n");
  EXPECT_FALSE(off.fallback.enabled);  // nothing complete to fall back to
  Config tuned = parseOk("[fallback]\nfailure_threshold = 2\nlatency_threshold = \"250ms\"\nwindow = \"30s\"\n");
  EXPECT_EQ(tuned.fallback.failure_threshold, 2);
  EXPECT_EQ(tuned.fallback.latency_threshold, Duration(250));
  EXPECT_EQ(tuned.fallback.window, Duration(30000));
}

}  // namespace
}  // namespace lockshift
