#include "backends/lock_records.h"

namespace lockshift::records {

std::optional<Holder> holderOf(std::string_view value) {
  Result<LockIdentity> identity = parseProjectLock(value);
  if (!identity.isOk()) return std::nullopt;
  Holder holder;
  holder.pull_num = identity->pull_num;
  holder.repo = identity->repo_full_name;
  holder.user = identity->username;
  holder.identity = std::move(*identity);
  return holder;
}

bool isNewGrant(const std::optional<std::string_view>& previous, std::string_view value) {
  if (!previous) return true;
  std::optional<Holder> before = holderOf(*previous);
  if (!before) return true;
  std::optional<Holder> after = holderOf(value);
  return !after || !before->identity.sameHolder(after->identity);
}

}  // namespace lockshift::records
