#include "router/control_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>

#include "common/clock.h"
#include "common/files.h"
#include "common/json_text.h"
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace lockshift {

namespace fs = std::filesystem;


ControlStore::ControlStore(std::string dir) : dir_(std::move(dir)) {}

Result<std::unique_ptr<ControlStore>> ControlStore::open(std::string dir, ControlState initial) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::ioError("cannot create " + dir + ": " + ec.message());
  std::unique_ptr<ControlStore> store(new ControlStore(dir));
  const std::string path = dir + "/control.json";
  if (fs::exists(path)) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    auto state = decodeControlState(ss.str());
    if (!state) return Status::invalidArgument(path + ": " + state.status().message());
    store->publish(std::make_shared<const ControlState>(std::move(state.value())));
  } else {
    store->publish(std::make_shared<const ControlState>(std::move(initial)));
  }
  std::ifstream events(dir + "/events.jsonl");
  for (std::string line; std::getline(events, line);) {
    if (!line.empty()) store->events_.push_back(line);
  }
  if (store->events_.size() > kMaxEvents) {
    store->events_.erase(store->events_.begin(), store->events_.end() - kMaxEvents);
  }
  return store;
}

Status ControlStore::persist(const ControlState& state) {
  return writeFileAtomically(dir_, dir_ + "/control.json", encodeControlState(state) + "\n");
}

void ControlStore::audit(const std::string& kind, const std::string& actor, const std::string& detail) {
  boost::json::object event{{"time_unix_ms", nowUnixMs()}, {"kind", kind}, {"actor", actor}, {"detail", detail},
                            {"epoch", snapshot()->epoch}};
  std::string line = jsonText(event);
  std::lock_guard lock(events_mu_);
  events_.push_back(line);
  if (events_.size() > kMaxEvents + kMaxEvents / 10) {
    // Rewrite the file with the newest kMaxEvents lines (amortised: once per kMaxEvents/10).
    events_.erase(events_.begin(), events_.end() - kMaxEvents);
    std::string all;
    for (const auto& e : events_) all += e + "\n";
    writeFileAtomically(dir_, dir_ + "/events.jsonl", all);
    return;
  }
  std::ofstream out(dir_ + "/events.jsonl", std::ios::app);
  out << line << "\n";
}

std::vector<std::string> ControlStore::events(size_t max) const {
  std::lock_guard lock(events_mu_);
  size_t start = events_.size() > max ? events_.size() - max : 0;
  return {events_.begin() + static_cast<std::ptrdiff_t>(start), events_.end()};
}

bool ControlStore::flagFilePresent() const {
  std::error_code ec;
  return fs::exists(flagFilePath(), ec);
}

bool ControlStore::pollFlagFile() {
  if (snapshot()->rollback.raised || !flagFilePresent()) return false;
  std::ifstream in(flagFilePath());
  std::string reason;
  std::getline(in, reason);
  if (reason.size() > 1024) reason.resize(1024);
  if (reason.empty()) reason = "flag file " + flagFilePath();
  auto result = update([&](ControlState& s) {
    s.rollback = Rollback{true, reason, "flag-file", nowUnixMs()};
  });
  if (!result) return false;
  audit("rollback.raised", "flag-file", reason);
  return true;
}

}  // namespace lockshift
