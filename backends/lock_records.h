#pragma once
// What every store that keeps enhanced records (DESIGN §3) derives from a value, so LMDB and
// Redis decide grants and index entries the same way. Private to backends/.
//
// Thread-safety: stateless, callable from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/lock_json.h"

namespace lockshift::records {

// The holder a record is indexed under: a value that parseProjectLock() reads.
struct Holder {
  int64_t pull_num = 0;
  std::string repo;  // Project.RepoFullName
  std::string user;  // User.Username
  LockIdentity identity;
};
std::optional<Holder> holderOf(std::string_view value);
// The same for a value already parsed: `parsed` is parseProjectLock(value) when the caller has it
// (PutRequest::strict_owner), and then the value is not parsed again.
std::optional<Holder> holderOf(const std::optional<LockIdentity>& parsed, std::string_view value);

// Whether writing `value` over `previous` (nullopt: the key is absent) grants the key, and so
// takes a new fencing token and acquired-at: always, unless both are project locks held by the
// same holder (LockIdentity::sameHolder), which is the idempotent re-acquire Atlantis's client
// retries. Overwriting a value that is not a project lock is a new grant.
bool isNewGrant(const std::optional<std::string_view>& previous, std::string_view value);

}  // namespace lockshift::records
