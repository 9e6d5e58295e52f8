#include "backends/lock_store.h"

namespace lockshift {

namespace {
Status noRecords(const LockStore& store) {
  return Status::unsupported("the " + store.name() +
                             " store keeps no enhanced records (only an enhanced store does)");
}
}  // namespace

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
