#pragma once
// Durable file writes for persisted state (control state, audit log, reports), and secret files.

#include <string>
#include <vector>

#include "common/status.h"

namespace lockshift {

// Writes `data` to `path` (inside directory `dir`) so that a crash leaves either the old or the
// new file, never half: temporary file, fsync, rename, fsync of the directory.
Status writeFileAtomically(const std::string& dir, const std::string& path, const std::string& data);

// A secret file holds the secret on its first line; trailing CR/LF are not part of it. An empty
// or unreadable file is kInvalidArgument, naming the file.
Result<std::string> readSecretFile(const std::string& path);
// Every non-empty line of a secret file, each without its CR/LF: the secrets a check accepts
// (several while one is being rotated). A file without one, or unreadable, is kInvalidArgument.
Result<std::vector<std::string>> readSecretLines(const std::string& path);

}  // namespace lockshift
