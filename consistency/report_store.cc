#include "consistency/report_store.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/json_text.h"

namespace lockshift {

namespace fs = std::filesystem;

namespace {

// Ids are file names: letters, digits, '-', '.' only, so a request cannot name another file.
bool validId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return id.find("..") == std::string::npos;
}

}  // namespace

Result<std::unique_ptr<ReportStore>> ReportStore::open(std::string dir, size_t keep) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::ioError("cannot create " + dir + ": " + ec.message());
  return std::unique_ptr<ReportStore>(new ReportStore(std::move(dir), std::max<size_t>(keep, 1)));
}

std::string ReportStore::newId(int64_t unix_ms) {
  static std::atomic<uint32_t> sequence{0};
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &tm);
  char tail[24];
  std::snprintf(tail, sizeof tail, ".%03dZ-%04x", static_cast<int>(unix_ms % 1000), sequence.fetch_add(1) & 0xffff);
  return std::string(buf) + tail;
}

std::vector<std::string> ReportStore::ids() const {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 5 && name.ends_with(".json")) out.push_back(name.substr(0, name.size() - 5));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status ReportStore::save(const Report& report) {
  if (!validId(report.id)) return Status::invalidArgument("bad report id '" + report.id + "'");
  std::lock_guard lock(mu_);
  Status s = writeFileAtomically(dir_, dir_ + "/" + report.id + ".json",
                                 jsonText(reportToJson(report)) + "\n");
  if (!s) return s;
  auto all = ids();
  for (size_t i = 0; i + keep_ < all.size(); ++i) {
    std::error_code ec;
    fs::remove(dir_ + "/" + all[i] + ".json", ec);
  }
  return Status::ok();
}

std::optional<Report> ReportStore::load(const std::string& id) const {
  if (id == "latest") {
    auto all = list(1);
    if (all.empty()) return std::nullopt;
    return all.front();
  }
  if (!validId(id)) return std::nullopt;
  std::ifstream in(dir_ + "/" + id + ".json");
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  auto report = reportFromJson(text.str());
  if (!report) return std::nullopt;
  return std::move(report.value());
}

std::vector<Report> ReportStore::list(size_t max) const {
  std::vector<Report> out;
  auto all = ids();
  for (auto it = all.rbegin(); it != all.rend() && out.size() < max; ++it) {
    if (auto r = load(*it)) out.push_back(std::move(*r));
  }
  return out;
}

std::optional<Report> ReportStore::latestDone() const {
  auto all = ids();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    auto r = load(*it);
    if (r && r->state == "done") return r;
  }
  return std::nullopt;
}

}  // namespace lockshift
