#include "tools/lockshiftctl_output.h"


#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <sstream>

#include "common/clock.h"
#include "common/json_text.h"

namespace lockshift::ctl {

namespace json = boost::json;

namespace {

void appendPretty(std::string& out, const json::value& v, int indent) {
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  if (v.is_object() && !v.get_object().empty()) {
    out += "{\n";
    bool first = true;
    for (const auto& [key, member] : v.get_object()) {
      if (!first) out += ",\n";
      first = false;
      out += pad + json::serialize(json::string_view(key)) + ": ";
      appendPretty(out, member, indent + 2);
    }
    out += "\n" + std::string(static_cast<size_t>(indent), ' ') + "}";
  } else if (v.is_array() && !v.get_array().empty()) {
    out += "[\n";
    bool first = true;
    for (const auto& item : v.get_array()) {
      if (!first) out += ",\n";
      first = false;
      out += pad;
      appendPretty(out, item, indent + 2);
    }
    out += "\n" + std::string(static_cast<size_t>(indent), ' ') + "]";
  } else {
    out += jsonText(v);
  }
}

// Display width of UTF-8 text, counted in code points (continuation bytes do not count).
size_t displayWidth(std::string_view s) {
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

uint64_t divergentCount(const Report& r, DivergenceKind kind) {
  auto it = r.divergent.find(kind);
  return it == r.divergent.end() ? 0 : it->second;
}

std::string storeLine(std::string_view role, const StoreCount& c) {
  std::string line = std::string(role) + "  " + (c.store.empty() ? "?" : c.store) + "  " + std::to_string(c.keys) +
                     " keys";
  std::string classes;
  for (const auto& [name, n] : c.by_class) classes += (classes.empty() ? "" : ", ") + name + " " + std::to_string(n);
  return classes.empty() ? line : line + " (" + classes + ")";
}

int terminalColumns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
  return 80;
}

constexpr auto kQuiet = std::chrono::milliseconds(300);
constexpr auto kRedrawEvery = std::chrono::milliseconds(100);
constexpr auto kLineEvery = std::chrono::seconds(1);
constexpr size_t kMaxSummaryExamples = 10;

Progress* g_drawing = nullptr;  // the Progress whose bar is on the terminal now

// ", round 2: scanning legacy (db 0)"; the round is left out when the step already names it
// ("rechecking 12 keys (round 2)").
std::string stepText(int round, std::string_view what, std::string_view sep, std::string_view colon) {
  if (what.find("round") != std::string_view::npos) return std::string(sep) + std::string(what);
  std::string text = std::string(sep) + "round " + std::to_string(std::max(round, 1));
  return what.empty() ? text : text + std::string(colon) + std::string(what);
}

}  // namespace

std::string prettyJson(const json::value& value) {
  std::string out;
  appendPretty(out, value, 0);
  return out;
}

void printJson(const json::value& value) { std::cout << prettyJson(value) << "\n" << std::flush; }

std::string cellText(const json::value* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  if (v->is_bool()) return v->get_bool() ? "yes" : "no";
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  if (v->is_double()) {
    std::ostringstream s;
    s << v->get_double();
    return s.str();
  }
  return json::serialize(*v);
}

std::string fieldText(const json::value& object, std::string_view field) {
  if (!object.is_object()) return "-";
  return cellText(object.get_object().if_contains(field));
}

std::string formatUnixMs(int64_t unix_ms) { return formatUtc(unix_ms, "%Y-%m-%d %H:%M:%SZ"); }

std::string formatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms < 1000) return std::to_string(ms) + " ms";
  char buf[32];
  if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>(ms / 1000 % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>(ms / 60'000 % 60));
  }
  return buf;
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], displayWidth(row[i]));
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - displayWidth(row[i]) + 2, ' ');
    }
    out << line << "\n";
  }
}

void printReportSummary(std::ostream& out, const Report& r) {
  const std::string verdict = r.verdict();
  out << "report " << r.id << ": " << verdict;
  if (verdict == "failed") out << ": " << r.error;
  if (verdict == "running") out << " (" << r.progress << ", " << r.keys_scanned << " keys scanned)";
  out << "\n";
  const int64_t took = r.finished_unix_ms > 0 ? r.finished_unix_ms - r.started_unix_ms : 0;
  out << "  " << r.mode << " check, " << (r.repair ? "with repair" : "dry run") << ", " << r.rounds
      << (r.rounds == 1 ? " round" : " rounds") << ", " << formatDuration(std::chrono::milliseconds(took))
      << ", finished " << formatUnixMs(r.finished_unix_ms) << "\n";
  out << "  " << storeLine("legacy  ", r.legacy) << "\n  " << storeLine("enhanced", r.enhanced) << "\n";
  out << "  compared " << r.compared << ", matched " << r.matched;
  for (DivergenceKind kind : kDivergenceKinds) out << ", " << divergenceName(kind) << " " << divergentCount(r, kind);
  if (r.repair) out << ", repaired " << r.repaired << ", repair failed " << r.repair_failed;
  out << "\n";
  if (r.divergences.empty()) return;
  Table examples({"KIND", "DB", "KEY", "OWNER"});
  for (const auto& d : r.divergences) {
    if (examples.size() == kMaxSummaryExamples) break;
    examples.add({std::string(divergenceName(d.kind)), std::to_string(d.db), d.key, d.owner});
  }
  std::ostringstream table;
  examples.print(table);
  std::istringstream lines(table.str());
  for (std::string line; std::getline(lines, line);) out << "  " << line << "\n";
  if (r.divergences.size() > examples.size() || r.divergences_truncated) {
    out << "  (" << r.totalDivergent() - examples.size()
        << " more; --format md shows the full report with values)\n";
  }
}

int exitCodeForVerdict(const std::string& verdict) {
  if (verdict == "clean" || verdict == "repaired") return 0;
  if (verdict == "divergent") return 4;
  return 1;
}

Progress::Progress() : tty_(::isatty(STDERR_FILENO) == 1) {
  started_ = last_ = std::chrono::steady_clock::now();
}

void Progress::update(uint64_t keys, uint64_t total, int round, std::string_view what) {
  const auto now = std::chrono::steady_clock::now();
  if (now - started_ < kQuiet) return;
  if (tty_) {
    if (drawn_ && now - last_ < kRedrawEvery) return;
    last_ = now;
    drawBar(keys, total, round, what);
    return;
  }
  if (now - last_ < kLineEvery) return;
  last_ = now;
  std::cerr << "scanned " << keys << (total > 0 ? " of " + std::to_string(total) : std::string()) << " keys"
            << stepText(round, what, ", ", ": ") << "\n"
            << std::flush;
}

void Progress::drawBar(uint64_t keys, uint64_t total, int round, std::string_view what) {
  constexpr size_t kWidth = 24;
  std::string bar(kWidth, ' ');
  std::string percent;
  if (total > 0) {
    uint64_t done = std::min(keys, total);
    size_t filled = static_cast<size_t>(done * kWidth / total);
    std::fill(bar.begin(), bar.begin() + static_cast<long>(filled), '#');
    percent = std::to_string(done * 100 / total) + "%  ";
  } else {  // unknown total: a block sweeping back and forth shows that work goes on
    size_t span = kWidth - 3, step = frame_++ % (2 * span);
    size_t pos = step < span ? step : 2 * span - step;
    bar.replace(pos, 3, "<=>");
  }
  std::string line = "[" + bar + "] " + percent + std::to_string(keys) +
                     (total > 0 ? "/" + std::to_string(total) : std::string()) + " keys" +
                     stepText(round, what, "  ", "  ");
  size_t columns = static_cast<size_t>(terminalColumns()) - 1;
  if (line.size() > columns) line.resize(columns);
  std::cerr << "\r\033[K" << line << std::flush;
  drawn_ = true;
  g_drawing = this;
}

void Progress::finish() {
  if (tty_ && drawn_) std::cerr << "\r\033[K" << std::flush;
  drawn_ = false;
  if (g_drawing == this) g_drawing = nullptr;
}

void clearProgressLine() {
  if (g_drawing != nullptr) g_drawing->finish();
}

}  // namespace lockshift::ctl
