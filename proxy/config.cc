#include "proxy/config.h"
#include "proxy/config_values.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "common/unix_socket.h"

namespace lockshift {

using namespace config_detail;

namespace {

using KeyList = std::span<const std::string_view>;


int lineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

// Keeps the first error, formatted "source:line: message"; later errors are dropped.
class Errors {
 public:
  explicit Errors(const std::string& source) : source_(source) {}
  bool ok() const { return status_.isOk(); }
  const Status& status() const { return status_; }
  void add(int line, const std::string& message) {
    if (ok())
      status_ = Status::invalidArgument(source_ + ":" + std::to_string(line) + ": " + message);
  }

 private:
  const std::string& source_;
  Status status_;
};

// A table's entries in the order they appear in the file, so the first error reported is the
// first one a reader meets.
std::vector<std::pair<std::string, const toml::node*>> entriesInFileOrder(const toml::table& t) {
  std::vector<std::pair<std::string, const toml::node*>> out;
  for (const auto& [key, node] : t) out.emplace_back(std::string(key.str()), &node);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    const auto& x = a.second->source().begin;
    const auto& y = b.second->source().begin;
    return std::pair(x.line, x.column) < std::pair(y.line, y.column);
  });
  return out;
}

// Reads typed fields of one table ("[server]", or an entry of [[migration.rules]]) into config
// fields. An absent key leaves the field at its default. Errors go to `errors`; after the first
// one, reads do nothing, so a caller reads straight through and returns errors.status().
class SectionReader {
 public:
  SectionReader(Errors& errors, std::string label, const toml::table* table)
      : errors_(errors), label_(std::move(label)), table_(table) {}

  bool has(std::string_view key) const { return table_ && table_->contains(key); }
  // The value to read, or nullptr when absent or when an error was already found.
  const toml::node* find(std::string_view key) const {
    return errors_.ok() && table_ ? table_->get(key) : nullptr;
  }
  // The keys present, in file order.
  std::vector<std::string> keys() const;
  // The line of the key, else of the table, else 0.
  int line(std::string_view key) const {
    if (const toml::node* node = table_ ? table_->get(key) : nullptr) return lineOf(*node);
    return table_ ? lineOf(*table_) : 0;
  }
  void fail(std::string_view key, const std::string& message) {
    errors_.add(line(key), label_ + " " + std::string(key) + " " + message);
  }
  // "<label> <big> (N) must be at least <small> (M): <why>", on the line of whichever is set.
  void failRelation(std::string_view big, size_t big_value, std::string_view small,
                    size_t small_value, std::string_view why) {
    errors_.add(has(big) ? line(big) : line(small),
                label_ + " " + std::string(big) + " (" + std::to_string(big_value) +
                    ") must be at least " + std::string(small) + " (" +
                    std::to_string(small_value) + "): " + std::string(why));
  }

  void checkKeys(KeyList known);
  void readString(std::string_view key, std::string& out);
  void readNonEmptyString(std::string_view key, std::string& out);
  void readBool(std::string_view key, bool& out);
  void readChoice(std::string_view key, KeyList choices, std::string& out);
  void readAddress(std::string_view key, std::string& out);
  // A Redis store's address: host:port, or unix:PATH for the server's Unix domain socket.
  void readStoreAddress(std::string_view key, std::string& out);
  void readAddresses(std::string_view key, std::vector<std::string>& out);
  void readDuration(std::string_view key, bool allow_zero, Duration& out);
  void readByteSize(std::string_view key, size_t min, size_t& out);
  void readNumber(std::string_view key, double min, double max, double& out);
  template <typename T>
  void readInt(std::string_view key, int64_t min, int64_t max, T& out);

 private:
  bool checkAddress(std::string_view key, const std::string& address);

  Errors& errors_;
  std::string label_;
  const toml::table* table_;
};

std::string joined(KeyList words, std::string_view separator) {
  std::string out;
  for (std::string_view w : words)
    out += (out.empty() ? "" : std::string(separator)) + std::string(w);
  return out;
}

std::vector<std::string> SectionReader::keys() const {
  std::vector<std::string> out;
  if (table_) {
    for (auto& entry : entriesInFileOrder(*table_)) out.push_back(std::move(entry.first));
  }
  return out;
}

void SectionReader::checkKeys(KeyList known) {
  for (const std::string& key : keys()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      errors_.add(line(key), "unknown key '" + key + "' in " + label_);
    }
  }
}

void SectionReader::readString(std::string_view key, std::string& out) {
  const toml::node* node = find(key);
  if (!node) return;
  if (!node->is_string()) return fail(key, "must be a string");
  out = node->as_string()->get();
}

void SectionReader::readNonEmptyString(std::string_view key, std::string& out) {
  readString(key, out);
  if (has(key) && out.empty()) fail(key, "must not be empty");
}

void SectionReader::readBool(std::string_view key, bool& out) {
  const toml::node* node = find(key);
  if (!node) return;
  if (!node->is_boolean()) return fail(key, "must be true or false");
  out = node->as_boolean()->get();
}

void SectionReader::readChoice(std::string_view key, KeyList choices, std::string& out) {
  std::string value = out;
  readString(key, value);
  if (!errors_.ok() || !has(key)) return;
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    return fail(key, "must be one of " + joined(choices, ", ") + " (got " + inQuotes(value) + ")");
  }
  out = value;
}

bool SectionReader::checkAddress(std::string_view key, const std::string& address) {
  HostPort parsed;
  std::string why = parseHostPort(address, parsed);
  if (!why.empty()) fail(key, inQuotes(address) + " is not host:port: " + why);
  return why.empty();
}

void SectionReader::readAddress(std::string_view key, std::string& out) {
  std::string value = out;
  readString(key, value);
  if (!has(key) || !errors_.ok()) return;
  if (isUnixAddress(value)) return fail(key, inQuotes(value) + ": lockshift listens on TCP, as host:port");
  if (checkAddress(key, value)) out = value;
}

void SectionReader::readStoreAddress(std::string_view key, std::string& out) {
  std::string value = out;
  readString(key, value);
  if (!has(key) || !errors_.ok()) return;
  if (isUnixAddress(value)) {
    std::string path;
    std::string why = unixSocketPath(value, path);
    if (!why.empty()) return fail(key, inQuotes(value) + " is not unix:PATH: " + why);
    out = value;
  } else if (checkAddress(key, value)) {
    out = value;
  }
}

void SectionReader::readAddresses(std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = find(key);
  if (!node) return;
  const toml::array* array = node->as_array();
  if (!array || (!array->empty() && !array->is_homogeneous(toml::node_type::string))) {
    return fail(key, "must be an array of \"host:port\" strings");
  }
  std::vector<std::string> values;
  for (const toml::node& item : *array) {
    values.push_back(item.as_string()->get());
    if (isUnixAddress(values.back())) {
      // Each node announces a TCP address in CLUSTER SLOTS, which is what lockshift connects to.
      return fail(key, inQuotes(values.back()) + ": a cluster's nodes are reached over TCP, as host:port");
    }
    if (!checkAddress(key, values.back())) return;
  }
  out = std::move(values);
}

void SectionReader::readDuration(std::string_view key, bool allow_zero, Duration& out) {
  const toml::node* node = find(key);
  if (!node) return;
  if (!node->is_string()) return fail(key, "must be a duration string such as \"5s\" or \"250ms\"");
  Result<Duration> value = parseDuration(node->as_string()->get());
  if (!value) return fail(key, "is an " + value.status().message());
  if (!allow_zero && value->count() == 0) return fail(key, "must be greater than 0");
  out = *value;
}

void SectionReader::readByteSize(std::string_view key, size_t min, size_t& out) {
  const toml::node* node = find(key);
  if (!node) return;
  size_t bytes = 0;
  if (const auto* integer = node->as_integer()) {
    if (integer->get() < 0) return fail(key, "must not be negative");
    bytes = static_cast<size_t>(integer->get());
  } else if (const auto* text = node->as_string()) {
    Result<size_t> value = parseByteSize(text->get());
    if (!value) return fail(key, "is an " + value.status().message());
    bytes = *value;
  } else {
    return fail(key,
                "must be a byte size: an integer number of bytes or a string such as \"64MiB\"");
  }
  if (bytes < min) {
    return fail(key, min == 1 ? "must be greater than 0"
                              : "must be at least " + std::to_string(min) + " bytes");
  }
  out = bytes;
}

void SectionReader::readNumber(std::string_view key, double min, double max, double& out) {
  const toml::node* node = find(key);
  if (!node) return;
  if (!node->is_number()) return fail(key, "must be a number");
  double value =
      node->is_integer() ? double(node->as_integer()->get()) : node->as_floating_point()->get();
  if (!(value >= min && value <= max)) {
    return fail(key, "must be between " + formatNumber(min) + " and " + formatNumber(max) +
                         " (got " + formatNumber(value) + ")");
  }
  out = value;
}

template <typename T>
void SectionReader::readInt(std::string_view key, int64_t min, int64_t max, T& out) {
  const toml::node* node = find(key);
  if (!node) return;
  if (!node->is_integer()) return fail(key, "must be an integer");
  int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    return fail(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                         " (got " + std::to_string(value) + ")");
  }
  out = static_cast<T>(value);
}

// ---------------------------------------------------------------------------------------------
// Sections.

constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
constexpr int64_t kMaxInt64 = std::numeric_limits<int64_t>::max();

constexpr std::string_view kSections[] = {"server", "legacy", "enhanced", "migration", "consistency", "fallback", "shadow"};

constexpr std::string_view kServerKeys[] = {
    "resp_listen",      "admin_listen",      "state_dir",       "password_file", "admin_token_file",
    "threads",          "databases",         "idle_timeout",    "max_clients",   "max_bulk_length",
    "max_array_length", "max_inline_length", "max_input_buffer"};

constexpr std::string_view kStoreTypes[] = {"lmdb", "redis", "redis-cluster"};
constexpr std::string_view kLmdbKeys[] = {"type", "path", "map_size", "sync"};
constexpr std::string_view kRedisKeys[] = {"type",
                                           "address",
                                           "db",
                                           "username",
                                           "password_file",
                                           "key_prefix",
                                           "connect_timeout",
                                           "command_timeout",
                                           "pool_size"};
constexpr std::string_view kClusterKeys[] = {
    "type",       "addresses",       "username",        "password_file",
    "key_prefix", "connect_timeout", "command_timeout", "pool_size"};
constexpr std::string_view kStoreKeys[] = {
    "type",     "path",     "map_size",      "sync",       "address",         "addresses",
    "db",       "username", "password_file", "key_prefix", "connect_timeout", "command_timeout",
    "pool_size"};

constexpr std::string_view kMigrationKeys[] = {"phase", "traffic_split", "acquire",
                                               "keep_legacy_in_sync", "rules"};
constexpr std::string_view kPhases[] = {"legacy-only", "shadow", "hybrid", "enhanced-only"};
constexpr std::string_view kAcquireModes[] = {"strict", "compatible"};
constexpr std::string_view kRuleKeys[] = {"match", "owner"};
constexpr std::string_view kOwners[] = {"legacy", "enhanced"};

// Secrets are read from files so that the config can be shared, logged and kept in git.
constexpr std::string_view kSecretKeys[] = {"password", "admin_token"};

bool contains(KeyList list, std::string_view word) {
  return std::find(list.begin(), list.end(), word) != list.end();
}

void readLimits(SectionReader& s, ServerConfig& c) {
  s.readByteSize("max_bulk_length", 1, c.max_bulk_length);
  s.readInt("max_array_length", 1, std::numeric_limits<int32_t>::max(), c.max_array_length);
  s.readByteSize("max_inline_length", 1, c.max_inline_length);
  s.readByteSize("max_input_buffer", 1, c.max_input_buffer);
  if (c.max_input_buffer < c.max_bulk_length) {
    s.failRelation("max_input_buffer", c.max_input_buffer, "max_bulk_length", c.max_bulk_length,
                   "a whole bulk string must fit in a connection's input buffer");
  }
  if (c.max_input_buffer < c.max_inline_length) {
    s.failRelation("max_input_buffer", c.max_input_buffer, "max_inline_length", c.max_inline_length,
                   "a whole inline command must fit in the input buffer");
  }
}

void readServer(SectionReader& s, ServerConfig& c) {
  s.checkKeys(kServerKeys);
  s.readAddress("resp_listen", c.resp_listen);
  s.readAddress("admin_listen", c.admin_listen);
  s.readNonEmptyString("state_dir", c.state_dir);
  s.readString("password_file", c.password_file);
  s.readString("admin_token_file", c.admin_token_file);
  s.readInt("threads", 0, 256, c.threads);
  s.readInt("databases", 1, 1024, c.databases);
  s.readDuration("idle_timeout", /*allow_zero=*/true, c.idle_timeout);
  s.readInt("max_clients", 1, kMaxInt64, c.max_clients);
  readLimits(s, c);
}

KeyList storeKeysFor(std::string_view type) {
  if (type == "redis") return kRedisKeys;
  if (type == "redis-cluster") return kClusterKeys;
  return kLmdbKeys;
}

// Each key must belong to the store's type: a Redis address on an LMDB store is a mistake that
// would otherwise be silently ignored.
void checkStoreKeysApply(SectionReader& s, const std::string& type) {
  KeyList allowed = storeKeysFor(type);
  for (const std::string& key : s.keys()) {
    if (!contains(allowed, key)) s.fail(key, "does not apply to type = " + inQuotes(type));
  }
}

void checkStoreRequirements(SectionReader& s, bool is_legacy, const StoreConfig& c) {
  if (is_legacy && c.type == "redis-cluster") {
    s.fail("type",
           "must be lmdb or redis (got \"redis-cluster\"): Atlantis's own store is a single "
           "Redis, and the legacy store must stay one Atlantis can be pointed at");
  }
  if (is_legacy && !c.key_prefix.empty()) {
    s.fail("key_prefix",
           "must be empty: Atlantis reads and writes the legacy store's keys without a prefix");
  }
  if (c.type == "redis" && c.address.empty()) s.fail("type", "\"redis\" requires address");
  if (c.type == "redis-cluster" && c.addresses.empty()) {
    if (s.has("addresses")) {
      s.fail("addresses", "must list at least one seed node");
    } else {
      s.fail("type", "\"redis-cluster\" requires addresses");
    }
  }
}

void readStore(SectionReader& s, bool is_legacy, StoreConfig& c) {
  s.checkKeys(kStoreKeys);
  s.readChoice("type", kStoreTypes, c.type);
  checkStoreKeysApply(s, c.type);
  s.readString("path", c.path);
  s.readByteSize("map_size", 64 * 1024, c.map_size);
  s.readBool("sync", c.sync);
  s.readStoreAddress("address", c.address);
  s.readAddresses("addresses", c.addresses);
  s.readInt("db", 0, kMaxInt, c.db);
  s.readString("username", c.username);
  s.readString("password_file", c.password_file);
  s.readString("key_prefix", c.key_prefix);
  s.readDuration("connect_timeout", /*allow_zero=*/false, c.connect_timeout);
  s.readDuration("command_timeout", /*allow_zero=*/false, c.command_timeout);
  s.readInt("pool_size", 1, 1024, c.pool_size);
  checkStoreRequirements(s, is_legacy, c);
}

void readRule(SectionReader& s, const std::vector<MigrationRule>& earlier, MigrationRule& rule) {
  s.checkKeys(kRuleKeys);
  s.readNonEmptyString("match", rule.match);
  s.readChoice("owner", kOwners, rule.owner);
  if (!s.has("match")) s.fail("match", "is required (a key glob such as \"pr/acme/*\")");
  if (!s.has("owner")) s.fail("owner", "is required (legacy or enhanced)");
  for (size_t i = 0; i < earlier.size(); ++i) {
    if (earlier[i].match == rule.match) {
      s.fail("match", inQuotes(rule.match) + " repeats entry " + std::to_string(i + 1));
    }
  }
}

void readRules(SectionReader& s, Errors& errors, std::vector<MigrationRule>& out) {
  const toml::node* node = s.find("rules");
  if (!node) return;
  const toml::array* array = node->as_array();
  if (!array) return s.fail("rules", "must be an array of tables ([[migration.rules]])");
  std::vector<MigrationRule> rules;
  for (size_t i = 0; i < array->size() && errors.ok(); ++i) {
    const toml::node& item = *array->get(i);
    std::string label = "[[migration.rules]] entry " + std::to_string(i + 1);
    if (!item.is_table()) {
      errors.add(lineOf(item), label + " must be a table with match and owner");
      return;
    }
    SectionReader entry(errors, label, item.as_table());
    MigrationRule rule;
    readRule(entry, rules, rule);
    rules.push_back(std::move(rule));
  }
  out = std::move(rules);
}

void readMigration(SectionReader& s, Errors& errors, MigrationConfig& c) {
  s.checkKeys(kMigrationKeys);
  s.readChoice("phase", kPhases, c.phase);
  s.readNumber("traffic_split", 0, 100, c.traffic_split);
  std::string acquire = c.acquire == AcquireMode::kStrict ? "strict" : "compatible";
  s.readChoice("acquire", kAcquireModes, acquire);
  c.acquire = acquire == "strict" ? AcquireMode::kStrict : AcquireMode::kCompatible;
  s.readBool("keep_legacy_in_sync", c.keep_legacy_in_sync);
  readRules(s, errors, c.rules);
}

constexpr std::string_view kConsistencyKeys[] = {"interval", "rounds", "recheck_delay", "gates",
                                                 "max_report_age", "keep_reports", "max_divergence_rate"};

void readConsistency(SectionReader& s, ConsistencyConfig& c) {
  s.checkKeys(kConsistencyKeys);
  s.readDuration("interval", /*allow_zero=*/true, c.interval);
  s.readInt("rounds", 1, 100, c.rounds);
  s.readDuration("recheck_delay", /*allow_zero=*/true, c.recheck_delay);
  s.readBool("gates", c.gates);
  s.readDuration("max_report_age", /*allow_zero=*/false, c.max_report_age);
  s.readInt("keep_reports", 1, 100000, c.keep_reports);
  s.readNumber("max_divergence_rate", 0, 1, c.max_divergence_rate);
}

constexpr std::string_view kShadowKeys[] = {"mirror_reads", "queue_size", "workers", "scan_sample_rate", "examples",
                                            "backfill_rate"};

void readShadow(SectionReader& s, ShadowConfig& c) {
  s.checkKeys(kShadowKeys);
  s.readBool("mirror_reads", c.mirror_reads);
  s.readInt("queue_size", 1, 10000000, c.queue_size);
  s.readInt("workers", 1, 256, c.workers);
  s.readNumber("scan_sample_rate", 0, 1, c.scan_sample_rate);
  s.readInt("examples", 0, 10000, c.examples);
  s.readInt("backfill_rate", 0, 100000000, c.backfill_rate);
}

constexpr std::string_view kFallbackKeys[] = {"enabled", "failure_threshold", "error_rate_threshold", "window",
                                              "min_requests", "latency_threshold", "reset_timeout",
                                              "half_open_max_requests"};

void readFallback(SectionReader& s, const MigrationConfig& migration, FallbackConfig& c) {
  s.checkKeys(kFallbackKeys);
  // Without legacy kept in sync there is nothing complete to fall back to: off unless asked for
  // (and asking for it is then an error below).
  if (!migration.keep_legacy_in_sync && !s.has("enabled")) c.enabled = false;
  s.readBool("enabled", c.enabled);
  s.readInt("failure_threshold", 1, 1000000, c.failure_threshold);
  s.readNumber("error_rate_threshold", 0, 1, c.error_rate_threshold);
  s.readDuration("window", /*allow_zero=*/false, c.window);
  s.readInt("min_requests", 1, 1000000, c.min_requests);
  s.readDuration("latency_threshold", /*allow_zero=*/true, c.latency_threshold);
  s.readDuration("reset_timeout", /*allow_zero=*/false, c.reset_timeout);
  s.readInt("half_open_max_requests", 1, 1000000, c.half_open_max_requests);
  if (c.enabled && !migration.keep_legacy_in_sync) {
    s.fail("enabled", "= true needs [migration] keep_legacy_in_sync = true: legacy answers for every key "
                  "while enhanced is out of the path; set enabled = false to decommission legacy");
  }
}

// ---------------------------------------------------------------------------------------------
// Whole-document checks.

// A key named like a secret anywhere in the document, tables and arrays of tables included.
void findSecrets(const toml::node& node, const std::string& where, Errors& errors) {
  if (const toml::array* array = node.as_array()) {
    for (const toml::node& item : *array) findSecrets(item, where, errors);
    return;
  }
  const toml::table* table = node.as_table();
  if (!table) return;
  for (const auto& [key, child] : entriesInFileOrder(*table)) {
    if (contains(kSecretKeys, key)) {
      std::string label = where.empty() ? "" : "[" + where + "] ";
      errors.add(lineOf(*child), label + key +
                                     " must not be written in the config file: put it in a "
                                     "file readable only by lockshift and set " +
                                     key + "_file");
    }
    findSecrets(*child, where.empty() ? key : where + "." + key, errors);
  }
}

void checkTopLevel(const toml::table& root, Errors& errors) {
  for (const auto& [key, node] : entriesInFileOrder(root)) {
    int line = lineOf(*node);
    if (contains(kSections, key)) {
      if (!node->is_table()) errors.add(line, "[" + key + "] must be a table");
    } else if (node->is_table()) {
      errors.add(line, "unknown section [" + key + "]");
    } else {
      errors.add(line, "unknown key '" + key +
                           "' at top level (keys belong in a section such as [server])");
    }
  }
}

// The admin API changes who owns every lock: off loopback it must require a token (DESIGN §5).
void checkListeners(SectionReader& s, const ServerConfig& c) {
  HostPort resp, admin;
  if (!parseHostPort(c.resp_listen, resp).empty() ||
      !parseHostPort(c.admin_listen, admin).empty()) {
    return;  // already reported
  }
  bool overlap = resp.host == admin.host || isWildcard(resp.host) || isWildcard(admin.host);
  if (resp.port == admin.port && overlap) {
    s.fail("admin_listen", c.admin_listen + " uses the same port as resp_listen " + c.resp_listen);
  }
  if (!isLoopback(admin.host) && c.admin_token_file.empty()) {
    s.fail("admin_listen", c.admin_listen + " is not loopback: set admin_token_file");
  }
}

// Legacy and enhanced must be two stores, or a migration would copy a store onto itself.
void checkDistinctStores(SectionReader& enhanced, const Config& c) {
  const StoreConfig& l = c.legacy;
  const StoreConfig& e = c.enhanced;
  if (l.type != e.type) return;
  if (l.type == "lmdb" && std::filesystem::path(l.path).lexically_normal() ==
                              std::filesystem::path(e.path).lexically_normal()) {
    enhanced.fail(
        "path", inQuotes(e.path) + " is also the legacy store's path: the two stores must differ");
  }
  if (l.type == "redis" && l.address == e.address && l.db == e.db && l.key_prefix == e.key_prefix) {
    enhanced.fail("address", e.address + " db " + std::to_string(e.db) +
                                 " is also the legacy store: the two stores must differ (use "
                                 "another db or key_prefix)");
  }
}

// ---------------------------------------------------------------------------------------------
// Paths.

std::string resolvePath(const std::filesystem::path& base, const std::string& path) {
  if (path.empty() || base.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (base / path).lexically_normal().string();
}

void resolveStorePaths(const std::filesystem::path& base, const std::string& state_dir,
                       std::string_view name, StoreConfig& c) {
  c.password_file = resolvePath(base, c.password_file);
  if (c.type != "lmdb") return;
  c.path = c.path.empty() ? (std::filesystem::path(state_dir) / name).string()
                          : resolvePath(base, c.path);
}

void resolvePaths(const std::string& source, Config& c) {
  std::filesystem::path base = std::filesystem::path(source).parent_path();
  c.server.state_dir = resolvePath(base, c.server.state_dir);
  c.server.password_file = resolvePath(base, c.server.password_file);
  c.server.admin_token_file = resolvePath(base, c.server.admin_token_file);
  resolveStorePaths(base, c.server.state_dir, "legacy", c.legacy);
  resolveStorePaths(base, c.server.state_dir, "enhanced", c.enhanced);
}

// ---------------------------------------------------------------------------------------------

Result<Config> readDocument(const toml::table& root, const std::string& source) {
  Errors errors(source);
  findSecrets(root, "", errors);
  checkTopLevel(root, errors);
  Config config;
  config.source = source;
  SectionReader server(errors, "[server]", root["server"].as_table());
  SectionReader legacy(errors, "[legacy]", root["legacy"].as_table());
  SectionReader enhanced(errors, "[enhanced]", root["enhanced"].as_table());
  SectionReader migration(errors, "[migration]", root["migration"].as_table());
  SectionReader consistency(errors, "[consistency]", root["consistency"].as_table());
  SectionReader fallback(errors, "[fallback]", root["fallback"].as_table());
  SectionReader shadow(errors, "[shadow]", root["shadow"].as_table());
  readServer(server, config.server);
  readStore(legacy, /*is_legacy=*/true, config.legacy);
  readStore(enhanced, /*is_legacy=*/false, config.enhanced);
  readMigration(migration, errors, config.migration);
  readConsistency(consistency, config.consistency);
  readFallback(fallback, config.migration, config.fallback);
  readShadow(shadow, config.shadow);
  resolvePaths(source, config);
  checkListeners(server, config.server);
  checkDistinctStores(enhanced, config);
  if (!errors.ok()) return errors.status();
  return config;
}

constexpr size_t kMaxConfigBytes = 4 << 20;

}  // namespace

Result<Config> parseConfig(std::string_view text, const std::string& source) {
  try {
    toml::table root = toml::parse(text, std::string_view(source));
    return readDocument(root, source);
  } catch (const toml::parse_error& e) {
    return Status::invalidArgument(source + ":" + std::to_string(e.source().begin.line) + ": " +
                                   std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::internal(source + ":0: " + e.what());
  }
}

Result<Config> loadConfig(const std::string& path) {
  auto cannotRead = [&](const std::string& why) {
    return Status::invalidArgument(path + ":0: cannot read: " + why);
  };
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!file) return cannotRead(std::strerror(errno));
  try {
    std::string text;
    char buffer[64 * 1024];
    while (size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) {
      text.append(buffer, n);
      if (text.size() > kMaxConfigBytes) return cannotRead("larger than 4 MiB");
    }
    if (std::ferror(file.get())) return cannotRead(std::strerror(errno));
    file.reset();
    return parseConfig(text, path);
  } catch (const std::exception& e) {
    return Status::internal(path + ":0: " + e.what());
  }
}

}  // namespace lockshift
