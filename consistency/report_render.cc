// Markdown and HTML renderings of a report, for people: summary and verdict first, then the
// counts per store and class, then examples of each kind of divergence.

#include <algorithm>
#include <ctime>
#include <sstream>
#include <vector>

#include "common/clock.h"
#include "consistency/report.h"

namespace lockshift {

namespace {

std::string utcTime(int64_t unix_ms) { return formatUtc(unix_ms, "%Y-%m-%d %H:%M:%S UTC"); }

std::string verdictSentence(const Report& r) {
  const std::string v = r.verdict();
  if (v == "clean") return "Clean: every compared key holds the same value in both stores.";
  if (v == "repaired") {
    return "Repaired: " + std::to_string(r.repaired) + " divergent keys were copied from their owner.";
  }
  if (v == "failed") return "Failed: " + r.error;
  if (v == "running") return "Running: " + r.progress;
  std::string s = "Divergent: " + std::to_string(r.totalDivergent()) + " keys differ after " +
                  std::to_string(r.rounds) + " rounds";
  if (r.repair) s += "; " + std::to_string(r.repair_failed) + " could not be repaired";
  return s + ".";
}

uint64_t countOf(const Report& r, DivergenceKind kind) {
  auto it = r.divergent.find(kind);
  return it == r.divergent.end() ? 0 : it->second;
}

// Shortens a value for a table cell; an absent value is shown as "(absent)".
std::string cell(const std::optional<std::string>& v, size_t max = 160) {
  if (!v) return "(absent)";
  if (v->size() <= max) return *v;
  return v->substr(0, max) + "… (" + std::to_string(v->size()) + " bytes)";
}

std::string markdownEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|' || c == '`' || c == '\\') out += '\\';
    if (c == '\n' || c == '\r') {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out;
}

std::string htmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<std::string> classNames(const Report& r) {
  std::vector<std::string> names;
  for (const auto* c : {&r.legacy.by_class, &r.enhanced.by_class}) {
    for (const auto& [name, n] : *c) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
  }
  return names;
}

uint64_t classCount(const StoreCount& c, const std::string& name) {
  auto it = c.by_class.find(name);
  return it == c.by_class.end() ? 0 : it->second;
}

}  // namespace

std::string renderMarkdown(const Report& r) {
  std::ostringstream md;
  md << "# Consistency report " << r.id << "\n\n";
  md << "**Verdict: " << r.verdict() << "** — " << markdownEscape(verdictSentence(r)) << "\n\n";
  md << "- Started: " << utcTime(r.started_unix_ms) << "; finished: " << utcTime(r.finished_unix_ms) << "\n";
  md << "- Duration: " << (r.finished_unix_ms > 0 ? r.finished_unix_ms - r.started_unix_ms : 0) << " ms; rounds: "
     << r.rounds << "; mode: " << r.mode << (r.repair ? "; repair" : "; dry run") << "\n\n";
  md << "## Counts\n\n| | count |\n|---|---:|\n";
  md << "| compared | " << r.compared << " |\n| matched | " << r.matched << " |\n";
  for (DivergenceKind kind : kDivergenceKinds) md << "| " << divergenceName(kind) << " | " << countOf(r, kind) << " |\n";
  if (r.repair) md << "| repaired | " << r.repaired << " |\n| repair failed | " << r.repair_failed << " |\n";
  md << "\n## Keys per store and class\n\n| class | legacy (" << markdownEscape(r.legacy.store) << ") | enhanced ("
     << markdownEscape(r.enhanced.store) << ") |\n|---|---:|---:|\n";
  for (const auto& name : classNames(r)) {
    md << "| " << name << " | " << classCount(r.legacy, name) << " | " << classCount(r.enhanced, name) << " |\n";
  }
  md << "| total | " << r.legacy.keys << " | " << r.enhanced.keys << " |\n";
  for (DivergenceKind kind : kDivergenceKinds) {
    size_t shown = 0;
    for (const auto& d : r.divergences) {
      if (d.kind != kind || shown == Report::kMaxExamples) continue;
      if (shown++ == 0) {
        md << "\n## Examples: " << divergenceName(kind) << "\n\n| db | key | owner | legacy | enhanced |\n"
           << "|---:|---|---|---|---|\n";
      }
      md << "| " << d.db << " | `" << markdownEscape(d.key) << "` | " << d.owner << " | "
         << markdownEscape(cell(d.legacy)) << " | " << markdownEscape(cell(d.enhanced)) << " |\n";
    }
  }
  if (r.divergences_truncated) {
    md << "\nMore keys diverged than the report lists (" << Report::kMaxListed << ").\n";
  }
  return md.str();
}

std::string renderHtml(const Report& r) {
  const std::string verdict = r.verdict();
  const char* colour = verdict == "clean" || verdict == "repaired" ? "#1a7f37" : verdict == "running" ? "#9a6700" : "#cf222e";
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<title>lockshift consistency report " << htmlEscape(r.id) << "</title><style>"
    << "body{font-family:system-ui,sans-serif;margin:2em;max-width:72em;color:#1f2328}"
    << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #d0d7de;padding:.3em .6em;"
    << "text-align:left;vertical-align:top}td.n{text-align:right}code{font-size:.9em;word-break:break-all}"
    << ".verdict{font-size:1.4em;font-weight:600;color:" << colour << "}</style></head><body>\n";
  h << "<h1>Consistency report <code>" << htmlEscape(r.id) << "</code></h1>\n";
  h << "<p class=\"verdict\" id=\"verdict\">" << htmlEscape(verdict) << "</p><p>" << htmlEscape(verdictSentence(r))
    << "</p>\n";
  h << "<p>Started " << utcTime(r.started_unix_ms) << ", finished " << utcTime(r.finished_unix_ms) << " ("
    << (r.finished_unix_ms > 0 ? r.finished_unix_ms - r.started_unix_ms : 0) << " ms), " << r.rounds << " rounds, "
    << htmlEscape(r.mode) << (r.repair ? ", repair" : ", dry run") << ".</p>\n";
  h << "<h2>Counts</h2><table><tr><th></th><th>count</th></tr>";
  h << "<tr><td>compared</td><td class=\"n\">" << r.compared << "</td></tr><tr><td>matched</td><td class=\"n\">"
    << r.matched << "</td></tr>";
  for (DivergenceKind kind : kDivergenceKinds) {
    h << "<tr><td>" << divergenceName(kind) << "</td><td class=\"n\">" << countOf(r, kind) << "</td></tr>";
  }
  if (r.repair) {
    h << "<tr><td>repaired</td><td class=\"n\">" << r.repaired << "</td></tr><tr><td>repair failed</td><td class=\"n\">"
      << r.repair_failed << "</td></tr>";
  }
  h << "</table>\n<h2>Keys per store and class</h2><table><tr><th>class</th><th>legacy (" << htmlEscape(r.legacy.store)
    << ")</th><th>enhanced (" << htmlEscape(r.enhanced.store) << ")</th></tr>";
  for (const auto& name : classNames(r)) {
    h << "<tr><td>" << htmlEscape(name) << "</td><td class=\"n\">" << classCount(r.legacy, name)
      << "</td><td class=\"n\">" << classCount(r.enhanced, name) << "</td></tr>";
  }
  h << "<tr><th>total</th><td class=\"n\">" << r.legacy.keys << "</td><td class=\"n\">" << r.enhanced.keys
    << "</td></tr></table>\n";
  for (DivergenceKind kind : kDivergenceKinds) {
    size_t shown = 0;
    for (const auto& d : r.divergences) {
      if (d.kind != kind || shown == Report::kMaxExamples) continue;
      if (shown++ == 0) {
        h << "<h2>Examples: " << divergenceName(kind)
          << "</h2><table><tr><th>db</th><th>key</th><th>owner</th><th>legacy</th><th>enhanced</th></tr>";
      }
      h << "<tr><td class=\"n\">" << d.db << "</td><td><code>" << htmlEscape(d.key) << "</code></td><td>" << d.owner
        << "</td><td><code>" << htmlEscape(cell(d.legacy)) << "</code></td><td><code>" << htmlEscape(cell(d.enhanced))
        << "</code></td></tr>";
    }
    if (shown > 0) h << "</table>\n";
  }
  if (r.divergences_truncated) h << "<p>More keys diverged than the report lists (" << Report::kMaxListed << ").</p>\n";
  h << "</body></html>\n";
  return h.str();
}

}  // namespace lockshift
