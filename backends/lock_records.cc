#include "backends/lock_records.h"

namespace lockshift::records {

namespace {

Holder holderFrom(LockIdentity identity) {
  Holder holder;
  holder.pull_num = identity.pull_num;
  holder.repo = identity.repo_full_name;
  holder.user = identity.username;
  holder.identity = std::move(identity);
  return holder;
}

}  // namespace

std::optional<Holder> holderOf(std::string_view value) {
  Result<LockIdentity> identity = parseProjectLock(value);
  if (!identity.isOk()) return std::nullopt;
  return holderFrom(std::move(*identity));
}

std::optional<Holder> holderOf(const std::optional<LockIdentity>& parsed, std::string_view value) {
  if (parsed) return holderFrom(*parsed);
  return holderOf(value);
}

bool isNewGrant(const std::optional<std::string_view>& previous, std::string_view value) {
  if (!previous) return true;
  std::optional<Holder> before = holderOf(*previous);
  if (!before) return true;
  std::optional<Holder> after = holderOf(value);
  return !after || !before->identity.sameHolder(after->identity);
}

}  // namespace lockshift::records
