#include "consistency/report.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <ctime>

namespace lockshift {

namespace json = boost::json;

std::string_view divergenceName(DivergenceKind kind) {
  switch (kind) {
    case DivergenceKind::kMissingInEnhanced: return "missing_in_enhanced";
    case DivergenceKind::kMissingInLegacy: return "missing_in_legacy";
    case DivergenceKind::kValueMismatch: return "value_mismatch";
  }
  return "unknown";
}

namespace {

std::optional<DivergenceKind> parseDivergence(std::string_view name) {
  for (DivergenceKind kind : kDivergenceKinds) {
    if (divergenceName(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace

std::string_view keyClass(std::string_view key) {
  if (key.starts_with("pr/")) return "project-lock";
  if (key.starts_with("command/")) return "command-lock";
  return "other";
}

uint64_t Report::totalDivergent() const {
  uint64_t total = 0;
  for (const auto& [kind, n] : divergent) total += n;
  return total;
}

std::string Report::verdict() const {
  if (state == "running") return "running";
  if (state == "failed") return "failed";
  uint64_t total = totalDivergent();
  if (total == 0) return "clean";
  if (repair && repaired == total && repair_failed == 0) return "repaired";
  return "divergent";
}

namespace {

json::value optionalString(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::object storeCountJson(const StoreCount& c) {
  json::object by_class;
  for (const auto& [name, n] : c.by_class) by_class[name] = n;
  return {{"store", c.store}, {"keys", c.keys}, {"by_class", std::move(by_class)}};
}

json::object countsJson(const Report& r) {
  json::object counts{{"compared", r.compared}, {"matched", r.matched}};
  for (DivergenceKind kind : kDivergenceKinds) {
    auto it = r.divergent.find(kind);
    counts[divergenceName(kind)] = it == r.divergent.end() ? 0 : it->second;
  }
  counts["repaired"] = r.repaired;
  counts["repair_failed"] = r.repair_failed;
  return counts;
}

// Reads an unsigned count; a missing field is 0, anything else but a non-negative integer fails.
bool readCount(const json::object& o, std::string_view field, uint64_t* out) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return true;
  if (v->is_uint64()) *out = v->as_uint64();
  else if (v->is_int64() && v->as_int64() >= 0) *out = static_cast<uint64_t>(v->as_int64());
  else return false;
  return true;
}

std::string readString(const json::object& o, std::string_view field) {
  const json::value* v = o.if_contains(field);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t readInt(const json::object& o, std::string_view field) {
  const json::value* v = o.if_contains(field);
  if (v == nullptr) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  return 0;
}

StoreCount readStoreCount(const json::value* v) {
  StoreCount c;
  if (v == nullptr || !v->is_object()) return c;
  const auto& o = v->as_object();
  c.store = readString(o, "store");
  readCount(o, "keys", &c.keys);
  if (const auto* by = o.if_contains("by_class"); by != nullptr && by->is_object()) {
    for (const auto& [name, n] : by->as_object()) {
      uint64_t count = 0;
      if (n.is_uint64()) count = n.as_uint64();
      else if (n.is_int64() && n.as_int64() >= 0) count = static_cast<uint64_t>(n.as_int64());
      c.by_class[std::string(name)] = count;
    }
  }
  return c;
}

}  // namespace

boost::json::object reportSummaryJson(const Report& r) {
  return {{"id", r.id},
          {"state", r.state},
          {"verdict", r.verdict()},
          {"mode", r.mode},
          {"repair", r.repair},
          {"started_unix_ms", r.started_unix_ms},
          {"finished_unix_ms", r.finished_unix_ms},
          // null until the check has finished
          {"duration_ms", r.finished_unix_ms > 0 ? json::value(r.finished_unix_ms - r.started_unix_ms)
                                                 : json::value(nullptr)},
          {"rounds", r.rounds},
          {"counts", countsJson(r)},
          {"error", r.error},
          {"progress", r.progress},
          {"keys_scanned", r.keys_scanned}};
}

boost::json::object reportToJson(const Report& r, bool with_divergences) {
  json::object o = reportSummaryJson(r);
  o["legacy"] = storeCountJson(r.legacy);
  o["enhanced"] = storeCountJson(r.enhanced);
  if (with_divergences) {
    json::array list;
    for (const auto& d : r.divergences) {
      list.push_back(json::object{{"kind", divergenceName(d.kind)},
                                  {"db", d.db},
                                  {"key", d.key},
                                  {"legacy", optionalString(d.legacy)},
                                  {"enhanced", optionalString(d.enhanced)},
                                  {"owner", d.owner}});
    }
    o["divergences"] = std::move(list);
    o["divergences_truncated"] = r.divergences_truncated;
  }
  return o;
}

Result<Report> reportFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return Status::invalidArgument("a report must be a JSON object");
  const auto& o = v.as_object();
  Report r;
  r.id = readString(o, "id");
  if (r.id.empty()) return Status::invalidArgument("a report needs an id");
  r.state = readString(o, "state");
  if (r.state != "running" && r.state != "done" && r.state != "failed") {
    return Status::invalidArgument("report " + r.id + ": unknown state '" + r.state + "'");
  }
  r.mode = readString(o, "mode");
  if (const auto* v2 = o.if_contains("repair"); v2 != nullptr && v2->is_bool()) r.repair = v2->as_bool();
  r.started_unix_ms = readInt(o, "started_unix_ms");
  r.finished_unix_ms = readInt(o, "finished_unix_ms");
  r.rounds = static_cast<int>(readInt(o, "rounds"));
  r.error = readString(o, "error");
  r.progress = readString(o, "progress");
  readCount(o, "keys_scanned", &r.keys_scanned);
  r.legacy = readStoreCount(o.if_contains("legacy"));
  r.enhanced = readStoreCount(o.if_contains("enhanced"));
  if (const auto* c = o.if_contains("counts"); c != nullptr && c->is_object()) {
    const auto& counts = c->as_object();
    bool ok = readCount(counts, "compared", &r.compared) && readCount(counts, "matched", &r.matched) &&
              readCount(counts, "repaired", &r.repaired) && readCount(counts, "repair_failed", &r.repair_failed);
    for (DivergenceKind kind : kDivergenceKinds) {
      uint64_t n = 0;
      ok = ok && readCount(counts, divergenceName(kind), &n);
      if (n > 0) r.divergent[kind] = n;
    }
    if (!ok) return Status::invalidArgument("report " + r.id + ": counts must be non-negative integers");
  }
  if (const auto* list = o.if_contains("divergences"); list != nullptr && list->is_array()) {
    for (const auto& item : list->as_array()) {
      if (!item.is_object()) return Status::invalidArgument("report " + r.id + ": bad divergence");
      const auto& d = item.as_object();
      auto kind = parseDivergence(readString(d, "kind"));
      if (!kind) return Status::invalidArgument("report " + r.id + ": unknown divergence kind");
      Divergence div{.kind = *kind, .db = static_cast<int>(readInt(d, "db")), .key = readString(d, "key")};
      if (const auto* l = d.if_contains("legacy"); l != nullptr && l->is_string()) div.legacy = std::string(l->as_string());
      if (const auto* e = d.if_contains("enhanced"); e != nullptr && e->is_string()) {
        div.enhanced = std::string(e->as_string());
      }
      div.owner = readString(d, "owner");
      r.divergences.push_back(std::move(div));
    }
  }
  if (const auto* t = o.if_contains("divergences_truncated"); t != nullptr && t->is_bool()) {
    r.divergences_truncated = t->as_bool();
  }
  return r;
}

}  // namespace lockshift
