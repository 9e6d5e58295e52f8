// The admin API commands that read or change the migration: status, phase, split, rollback,
// locks, unlock, events. Each sends one request (lockshiftctl_http.h) and prints the answer:
// the server's JSON with --json, a short human form otherwise.

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <iostream>
#include <set>
#include <utility>

#include "common/lock_json.h"
#include "router/control_state.h"
#include "tools/lockshiftctl_cli.h"
#include "tools/lockshiftctl_http.h"
#include "tools/lockshiftctl_output.h"

#include <cstdint>

namespace lockshift::ctl {

namespace json = boost::json;

namespace {

const json::value& member(const json::value& v, std::string_view name) {
  static const json::value kNull;
  if (!v.is_object()) return kNull;
  const json::value* m = v.get_object().if_contains(name);
  return m != nullptr ? *m : kNull;
}

// "key: value" lines with the values aligned.
class Block {
 public:
  void add(std::string key, std::string value) { lines_.emplace_back(std::move(key), std::move(value)); }
  void print(std::ostream& out) const {
    size_t width = 0;
    for (const auto& [k, v] : lines_) width = std::max(width, k.size());
    for (const auto& [k, v] : lines_) out << k << ":" << std::string(width - k.size() + 1, ' ') << v << "\n";
  }

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

std::string splitText(const json::value& split) { return cellText(&split) + "%"; }

std::string fromSource(const json::value& status, std::string_view field) {
  std::string source = fieldText(member(status, "sources"), field);
  return source == "-" ? "" : " (from " + source + ")";
}

std::string rollbackText(const json::value& rollback) {
  if (!member(rollback, "raised").is_bool() || !member(rollback, "raised").get_bool()) return "not raised";
  std::string text = "RAISED";
  const json::value& since = member(rollback, "since_unix_ms");
  if (since.is_int64() || since.is_uint64()) text += " since " + formatUnixMs(since.to_number<int64_t>());
  text += " by " + fieldText(rollback, "actor");
  std::string reason = fieldText(rollback, "reason");
  return reason.empty() || reason == "-" ? text : text + ": " + reason;
}

std::string storeText(const json::value& store) {
  std::string text = fieldText(store, "type");
  const std::string warning = fieldText(store, "warning");
  const std::string note = warning.empty() || warning == "-" ? "" : "; WARNING: " + warning;
  if (fieldText(store, "up") == "yes") return text + ", up" + note;
  std::string error = fieldText(store, "error");
  return text + ", DOWN" + (error.empty() || error == "-" ? "" : ": " + error) + note;
}

// "closed, 0 trips" or "OPEN since ...: 5 consecutive failures, 1 trip, 12 keys journaled for enhanced".
std::string breakerText(const json::value& b) {
  std::string state = fieldText(b, "state");
  std::string text = state == "closed" ? state : "OPEN";
  if (state != "closed" && state != "open") text = state;
  const json::value& since = member(b, "since_unix_ms");
  if (state != "closed" && since.is_number()) text += " since " + formatUnixMs(since.to_number<int64_t>());
  std::string reason = fieldText(b, "reason");
  if (state != "closed" && !reason.empty() && reason != "-") text += ": " + reason;
  text += ", " + fieldText(b, "trips") + (fieldText(b, "trips") == "1" ? " trip" : " trips");
  std::string journaled = fieldText(b, "journal_for_enhanced");
  if (journaled != "0" && journaled != "-") text += ", " + journaled + " keys journaled for enhanced";
  return text;
}

// A value the block does not know yet (fields later versions add): scalars as text, an object's
// members as "name value" pairs (empty ones left out, *_unix_ms as times), deeper ones as JSON.
std::string genericText(const json::value& v) {
  if (!v.is_object()) return cellText(&v);
  std::string text;
  for (const auto& [name, item] : v.get_object()) {
    std::string value = cellText(&item);
    if (value.empty()) continue;
    if (std::string_view(name).ends_with("_unix_ms") && item.is_number()) {
      value = formatUnixMs(item.to_number<int64_t>());
    }
    text += (text.empty() ? "" : ", ") + std::string(name) + " " + value;
  }
  return text.empty() ? "-" : text;
}

void printStatus(const json::value& s) {
  Block b;
  b.add("phase", fieldText(s, "phase") + fromSource(s, "phase"));
  b.add("traffic split", splitText(member(s, "traffic_split")) + fromSource(s, "traffic_split"));
  std::string rules;
  if (member(s, "rules").is_array()) {
    for (const auto& r : member(s, "rules").get_array()) {
      rules += (rules.empty() ? "" : "; ") + fieldText(r, "match") + " -> " + fieldText(r, "owner");
    }
  }
  b.add("rules", rules.empty() ? "none" : rules + fromSource(s, "rules"));
  b.add("rollback", rollbackText(member(s, "rollback")));
  const json::value& refused = member(s, "rollback_refused_because");
  if (refused.is_string() && !refused.get_string().empty()) {
    b.add("rollback possible", "NO: " + std::string(refused.get_string()));
  }
  const json::value& flag = member(s, "flag_file");
  if (flag.is_object()) {
    b.add("flag file", fieldText(flag, "path") + (fieldText(flag, "present") == "yes" ? " (PRESENT)" : " (absent)"));
  }
  const bool filled = fieldText(s, "enhanced_filled") == "yes", in_use = fieldText(s, "enhanced_in_use") == "yes";
  b.add("enhanced data", filled ? "filled from legacy" : in_use ? "being filled from legacy" : "not in use yet");
  const json::value& journal = member(s, "journal");
  b.add("journal", fieldText(journal, "depth") + " pending, " + fieldText(journal, "memory_only") + " in memory only");
  const json::value& stores = member(s, "stores");
  b.add("legacy store", storeText(member(stores, "legacy")));
  b.add("enhanced store", storeText(member(stores, "enhanced")));
  if (member(s, "breaker").is_object()) b.add("breaker", breakerText(member(s, "breaker")));
  b.add("keep legacy in sync", fieldText(s, "keep_legacy_in_sync"));
  b.add("epoch", fieldText(s, "epoch"));
  static const std::set<std::string, std::less<>> kShown = {
      "phase",   "traffic_split", "rules",   "rollback",   "flag_file", "enhanced_filled", "enhanced_in_use",
      "journal", "stores",        "sources", "keep_legacy_in_sync",     "epoch",           "breaker",
      "rollback_refused_because"};
  if (s.is_object()) {
    for (const auto& [name, value] : s.get_object()) {
      if (!kShown.contains(std::string_view(name))) b.add(std::string(name), genericText(value));
    }
  }
  b.print(std::cout);
}

// Prints the state a migration change left (PUT /api/v1/migration answers {"applied","state"}).
int migrationAnswer(const Invocation& inv, const ApiResult& r) {
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  const json::value& state = member(r.json, "state");
  std::cout << "phase " << fieldText(state, "phase") << ", traffic split " << splitText(member(state, "traffic_split"))
            << " (epoch " << fieldText(state, "epoch") << ")\n";
  if (fieldText(member(state, "rollback"), "raised") == "yes") {
    std::cout << "note: a rollback is raised, so legacy owns every key until it is cleared\n";
  }
  return kExitOk;
}

json::value splitJson(double split) {
  if (split == std::floor(split)) return json::value(static_cast<int64_t>(split));
  return json::value(split);
}

int changeMigration(const Invocation& inv, json::object body) {
  if (inv.has("--force")) body["force"] = true;
  ApiResult r = callApi(inv, "PUT", "/api/v1/migration", json::serialize(body));
  if (r.exit != kExitOk) return r.exit;
  return migrationAnswer(inv, r);
}

std::string limitQuery(const Invocation& inv, int64_t max, std::optional<int>* exit) {
  auto text = inv.value("--limit");
  if (!text) return "";
  auto n = parseInteger(*text, 1, max);
  if (!n) {
    *exit = usageError(inv, "--limit must be a whole number from 1 to " + std::to_string(max) + ", not '" + *text +
                                "'");
    return "";
  }
  return "limit=" + std::to_string(*n);
}

// "pull #12 (alice)" for a ProjectLock value; "" for anything else.
std::string holderOf(const json::value& value) {
  if (!value.is_string()) return "";
  auto lock = parseProjectLock(std::string_view(value.get_string()));
  return lock ? lock->describe() : "";
}

}  // namespace

int cmdStatus(const Invocation& inv) {
  ApiResult r = callApi(inv, "GET", "/api/v1/status");
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
  } else {
    printStatus(r.json);
  }
  return kExitOk;
}

int cmdPhase(const Invocation& inv) {
  const std::string& phase = inv.args[0];
  if (!parsePhase(phase)) {
    return usageError(inv, "unknown phase '" + phase + "' (legacy-only, shadow, hybrid, enhanced-only)");
  }
  json::object body{{"phase", phase}};
  if (auto text = inv.value("--split")) {
    auto split = parseSplit(*text);
    if (!split) return usageError(inv, "--split must be a number from 0 to 100, not '" + *text + "'");
    body["traffic_split"] = splitJson(*split);
  }
  return changeMigration(inv, std::move(body));
}

int cmdSplit(const Invocation& inv) {
  auto split = parseSplit(inv.args[0]);
  if (!split) return usageError(inv, "the split must be a number from 0 to 100, not '" + inv.args[0] + "'");
  return changeMigration(inv, json::object{{"traffic_split", splitJson(*split)}});
}

int cmdRollback(const Invocation& inv) {
  const bool clear = inv.has("--clear");
  if (clear && inv.has("--reason")) return usageError(inv, "--clear and --reason exclude each other");
  ApiResult r;
  if (clear) {
    r = callApi(inv, "DELETE", "/api/v1/rollback");
  } else {
    json::object body;
    if (auto reason = inv.value("--reason")) body["reason"] = *reason;
    r = callApi(inv, "POST", "/api/v1/rollback", json::serialize(body));
  }
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  const json::value& rollback = member(member(r.json, "status"), "rollback");
  std::cout << "rollback: " << rollbackText(rollback) << "\n";
  return kExitOk;
}

int cmdLocks(const Invocation& inv) {
  std::optional<int> exit;
  std::string query = limitQuery(inv, 100000, &exit);
  if (exit) return *exit;
  auto add = [&query](const std::string& name, const std::string& value) {
    query += (query.empty() ? "" : "&") + name + "=" + percentEncode(value);
  };
  if (auto prefix = inv.value("--prefix")) add("prefix", *prefix);
  if (auto repo = inv.value("--repo")) add("repo", *repo);
  if (auto pull = inv.value("--pull")) {
    if (!inv.has("--repo")) return usageError(inv, "--pull needs --repo: pull numbers are per repository");
    auto n = parseInteger(*pull, 0, INT64_MAX);
    if (!n) return usageError(inv, "--pull must be a pull request number, not '" + *pull + "'");
    add("pull", std::to_string(*n));
  }
  if (inv.has("--prefix") && inv.has("--repo")) return usageError(inv, "--prefix and --repo cannot be combined");
  ApiResult r = callApi(inv, "GET", "/api/v1/locks" + (query.empty() ? "" : "?" + query));
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  const json::value& locks = member(r.json, "locks");
  if (!locks.is_array()) return fail(kExitFailure, "unexpected answer from GET /api/v1/locks: no \"locks\" list");
  bool any_db = false, any_token = false;
  for (const auto& l : locks.get_array()) {
    any_db = any_db || (fieldText(l, "db") != "0" && fieldText(l, "db") != "-");
    any_token = any_token || fieldText(l, "token") != "-";
  }
  std::vector<std::string> header{"KEY", "OWNER", "PULL", "USER"};
  if (any_db) header.insert(header.begin(), "DB");
  if (any_token) header.push_back("TOKEN");  // fencing tokens, from enhanced's records
  Table table(header);
  for (const auto& l : locks.get_array()) {
    std::vector<std::string> row{fieldText(l, "key"), fieldText(l, "owner"), fieldText(l, "pull"),
                                 fieldText(l, "user")};
    if (any_db) row.insert(row.begin(), fieldText(l, "db"));
    if (any_token) row.push_back(fieldText(l, "token"));
    table.add(std::move(row));
  }
  if (table.size() == 0) {
    std::cout << "no locks\n";
  } else {
    table.print(std::cout);
  }
  if (fieldText(r.json, "truncated") == "yes") {
    std::cerr << "lockshiftctl: showing the first " << table.size() << " locks; --limit shows more\n";
  }
  return kExitOk;
}

// unlock --repo R --pull N: every lock of the pull.
int unlockPull(const Invocation& inv) {
  auto repo = inv.value("--repo");
  auto pull = inv.value("--pull");
  if (!repo || !pull) return usageError(inv, "give a KEY, or --repo and --pull");
  if (inv.has("--db")) return usageError(inv, "--db goes with a KEY; --repo and --pull cover every db");
  auto n = parseInteger(*pull, 0, INT64_MAX);
  if (!n) return usageError(inv, "--pull must be a pull request number, not '" + *pull + "'");
  ApiResult r = callApi(inv, "DELETE", "/api/v1/locks?repo=" + percentEncode(*repo) + "&pull=" + std::to_string(*n));
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  const json::value& locks = member(r.json, "locks");
  if (!locks.is_array()) return fail(kExitFailure, "unexpected answer from DELETE /api/v1/locks: no \"locks\" list");
  for (const auto& l : locks.get_array()) std::cout << "unlocked " << fieldText(l, "key") << "\n";
  std::cout << locks.get_array().size() << " lock(s) of " << *repo << " pull #" << *n << " released\n";
  return kExitOk;
}

int cmdUnlock(const Invocation& inv) {
  if (inv.args.empty()) return unlockPull(inv);
  if (inv.has("--repo") || inv.has("--pull")) return usageError(inv, "give a KEY, or --repo and --pull, not both");
  std::string target = "/api/v1/locks/" + percentEncode(inv.args[0]);
  if (auto db = inv.value("--db")) {
    auto n = parseInteger(*db, 0, 1 << 20);
    if (!n) return usageError(inv, "--db must be a whole number from 0, not '" + *db + "'");
    target += "?db=" + std::to_string(*n);
  }
  ApiResult r = callApi(inv, "DELETE", target);
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  std::string holder = holderOf(member(r.json, "value"));
  std::cout << "unlocked " << inv.args[0] << (holder.empty() ? "" : ", held by " + holder) << "\n";
  return kExitOk;
}

int cmdEvents(const Invocation& inv) {
  std::optional<int> exit;
  std::string query = limitQuery(inv, 10000, &exit);
  if (exit) return *exit;
  ApiResult r = callApi(inv, "GET", "/api/v1/events" + (query.empty() ? "" : "?" + query));
  if (r.exit != kExitOk) return r.exit;
  if (inv.globals.json) {
    printJson(r.json);
    return kExitOk;
  }
  const json::value& events = member(r.json, "events");
  if (!events.is_array()) return fail(kExitFailure, "unexpected answer from GET /api/v1/events: no \"events\" list");
  Table table({"TIME", "EPOCH", "KIND", "ACTOR", "DETAIL"});
  for (const auto& e : events.get_array()) {
    const json::value& time = member(e, "time_unix_ms");
    table.add({time.is_number() ? formatUnixMs(time.to_number<int64_t>()) : "-", fieldText(e, "epoch"),
               fieldText(e, "kind"), fieldText(e, "actor"), fieldText(e, "detail")});
  }
  if (table.size() == 0) {
    std::cout << "no events\n";
  } else {
    table.print(std::cout);
  }
  return kExitOk;
}

}  // namespace lockshift::ctl
