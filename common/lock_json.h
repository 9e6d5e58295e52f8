#pragma once
// Reading Atlantis's ProjectLock JSON (DESIGN §1). Keys are never split to learn their parts:
// everything comes from the value.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lockshift {

// Who holds a project lock, as far as strict acquire cares.
struct LockIdentity {
  int64_t pull_num = 0;
  std::string repo_full_name;  // Project.RepoFullName
  std::string path;            // Project.Path
  std::string project_name;    // Project.ProjectName
  std::string workspace;       // Workspace
  std::string username;        // User.Username (for messages only)

  // Same pull and same project/workspace: a re-acquire by the owner (idempotent retry).
  bool sameHolder(const LockIdentity& other) const;
  // "pull #12 (alice)"
  std::string describe() const;
};

// Key classes of DESIGN §1.
inline bool isProjectLockKey(std::string_view key) { return key.substr(0, 3) == "pr/"; }

// Parses a ProjectLock JSON value. Requires an object with Pull.Num (integer), Project (object)
// and Workspace (string); other fields are optional. Errors are kInvalidArgument with a reason.
Result<LockIdentity> parseProjectLock(std::string_view json);

// Pull.Num as Lua's tonumber() would see it, for UnlockIfOwnedByPull. Returns kInvalidArgument
// when the value is not JSON; nullopt when there is no Pull object or Num is not a number.
Result<std::optional<double>> lockPullNumber(std::string_view json);

// tonumber() of a script argument: decimal or float text; nullopt if not a number.
std::optional<double> luaToNumber(std::string_view text);

}  // namespace lockshift
