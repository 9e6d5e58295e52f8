#pragma once
// lockshiftctl's output: aligned tables and key: value blocks for people, indented JSON for
// machines, the human summary of a consistency report, and a progress display on stderr (a bar
// redrawn in place on a terminal, a plain line per second otherwise, so logs stay readable).
//
// Thread-safety: Progress is used from one thread at a time; the rest is stateless.

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "consistency/report.h"

namespace lockshift::ctl {

// Indented JSON (two spaces), ending without a newline.
std::string prettyJson(const boost::json::value& value);
// Prints prettyJson(value) and a newline on stdout.
void printJson(const boost::json::value& value);

// A cell's text: a string as is, a number in decimal, a bool as yes/no, null or absent as "-".
std::string cellText(const boost::json::value* value);
// A field of an object as cellText (absent: "-").
std::string fieldText(const boost::json::value& object, std::string_view field);
// "2026-11-22 01:35:00Z" (UTC); "-" for 0.
std::string formatUnixMs(int64_t unix_ms);
// "850 ms", "2.4 s", "3m05s".
std::string formatDuration(std::chrono::milliseconds d);

// Columns padded to their widest cell (counted in code points); the last is not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size() - 1; }
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The human summary of a report: verdict line, counts per store and kind, a few examples.
void printReportSummary(std::ostream& out, const Report& report);
// Exit code for a finished report: clean or repaired 0, divergent 4, failed (or anything else) 1.
int exitCodeForVerdict(const std::string& verdict);

// Erases a progress bar being drawn, so a message printed next starts on a clean line.
void clearProgressLine();

// Progress of a long operation on stderr. Nothing is drawn for the first `quiet` period, so a
// quick operation leaves no trace.
class Progress {
 public:
  Progress();
  ~Progress() { finish(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `total` 0: unknown (the bar then only shows activity). `what`: the current step.
  void update(uint64_t keys, uint64_t total, int round, std::string_view what);
  // Erases the bar (terminal); later updates draw again.
  void finish();

 private:
  void drawBar(uint64_t keys, uint64_t total, int round, std::string_view what);

  bool tty_;
  bool drawn_ = false;
  unsigned frame_ = 0;
  std::chrono::steady_clock::time_point started_, last_;
};

}  // namespace lockshift::ctl
