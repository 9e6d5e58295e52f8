#include "backends/lock_store.h"

namespace lockshift {

namespace {
Status noRecords(const LockStore& store) {
  return Status::unsupported("the " + store.name() +
                             " store keeps no enhanced records (only an enhanced store does)");
}
}  // namespace

Status checkNameIndexCovers(std::string_view prefix) {
  if (nameIndexCovers(prefix)) return Status::ok();
  return Status::invalidArgument("the name index holds only keys that start with \"" +
                                 std::string(kNameIndexPrefix) + "\"");
}

asio::awaitable<Result<std::optional<LockRecord>>> LockStore::getRecord(int, std::string) {
  co_return noRecords(*this);
}

asio::awaitable<Result<std::vector<LockRecord>>> LockStore::locksByRepo(int, std::string) {
  co_return noRecords(*this);
}

asio::awaitable<Result<std::vector<LockRecord>>> LockStore::locksByPull(int, std::string,
                                                                        int64_t) {
  co_return noRecords(*this);
}

asio::awaitable<Result<std::vector<std::string>>> LockStore::keysWithPrefix(int, std::string) {
  co_return noRecords(*this);
}

}  // namespace lockshift
