#pragma once
// Persisted consistency reports: <state_dir>/reports/<id>.json, newest kept, oldest removed once
// there are more than `keep`. Written atomically (temporary file, fsync, rename), so a crash
// leaves either the old or the new report.
//
// Thread-safety: all methods may be called from any thread.

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "consistency/report.h"

namespace lockshift {

class ReportStore {
 public:
  // Creates the directory if needed.
  static Result<std::unique_ptr<ReportStore>> open(std::string dir, size_t keep = 100);

  Status save(const Report& report);
  // nullopt when there is no report with that id. "latest" names the newest finished report.
  std::optional<Report> load(const std::string& id) const;
  // The newest `max` reports, newest first.
  std::vector<Report> list(size_t max = 50) const;
  // The newest report whose state is "done" (the one gates judge).
  std::optional<Report> latestDone() const;

  // A new, unique, time-sortable id.
  static std::string newId(int64_t unix_ms);

 private:
  explicit ReportStore(std::string dir, size_t keep) : dir_(std::move(dir)), keep_(keep) {}
  std::vector<std::string> ids() const;  // sorted, oldest first

  std::string dir_;
  size_t keep_;
  mutable std::mutex mu_;  // serialises save() with pruning
};

}  // namespace lockshift
