#pragma once
// Durable file writes for persisted state (control state, audit log, reports).

#include <string>

#include "common/status.h"

namespace lockshift {

// Writes `data` to `path` (inside directory `dir`) so that a crash leaves either the old or the
// new file, never half: temporary file, fsync, rename, fsync of the directory.
Status writeFileAtomically(const std::string& dir, const std::string& path, const std::string& data);

}  // namespace lockshift
