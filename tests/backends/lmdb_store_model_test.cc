// Property: random operation sequences on LmdbStore behave like a std::map, and a scan interleaved
// with them returns every key present throughout exactly once and no key twice.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backends/lmdb_store.h"
#include "common/lock_json.h"
#include "tests/backends/lmdb_test_fixture.h"

namespace lockshift::testing {
namespace {

using Condition = PutRequest::Condition;
using Outcome = PutResult::Outcome;
using Model = std::map<std::string, std::string>;

rc::Gen<std::string> genKey() {
  return rc::gen::oneOf(
      rc::gen::element<std::string>("", "pr/acme/infra/./default/", std::string("nul\0key", 7),
                                    "pr/acme corp/a b/default/", "global/apply/lock"),
      rc::gen::map(rc::gen::inRange(0, 40), [](int i) { return "k" + std::to_string(i); }));
}

rc::Gen<std::string> genValue() {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange(1, 4), [](int pull) { return lockJson(pull, "u"); }),
      rc::gen::element<std::string>("", "not json", std::string("\0\r\n", 3)));
}

// What deleteIfOwnedByPull should answer for `value` and `pull`: nullopt = keep, else delete.
// An error status stands for "not JSON".
Result<bool> ownedBy(const std::string& value, const std::string& pull) {
  auto held = lockPullNumber(value);
  if (!held.isOk()) return held.status();
  auto wanted = luaToNumber(pull);
  return held.value() && wanted && *held.value() == *wanted;
}

// A scan in progress: keys present since it began (and not deleted since) must come back once.
struct OpenScan {
  uint64_t cursor = 0;
  std::set<std::string> must_see;
  std::map<std::string, int> seen;
};

class LmdbModelTest : public LmdbStoreTest {
 protected:
  void checkPut(Model& model) {
    PutRequest request = putRequest(*genKey(), *genValue());
    request.condition =
        *rc::gen::element(Condition::kAlways, Condition::kIfAbsent, Condition::kIfPresent);
    request.return_previous = *rc::gen::arbitrary<bool>();
    auto it = model.find(request.key);
    const bool exists = it != model.end();
    const bool applies = request.condition == Condition::kAlways ||
                         (request.condition == Condition::kIfAbsent) != exists;
    std::optional<std::string> previous;
    if (request.return_previous && exists) previous = it->second;
    std::string key = request.key;
    std::string value = request.value;
    auto result = put(std::move(request));
    RC_ASSERT(result.isOk());
    RC_ASSERT(result->outcome == (applies ? Outcome::kApplied : Outcome::kConditionFailed));
    RC_ASSERT(result->previous == previous);
    if (applies) model[key] = value;
  }

  void checkDel(Model& model, OpenScan* scan) {
    auto keys = *rc::gen::container<std::vector<std::string>>(*rc::gen::inRange(0, 4), genKey());
    int64_t expected = 0;
    for (const std::string& key : std::set<std::string>(keys.begin(), keys.end())) {
      expected += model.erase(key);
      if (scan) scan->must_see.erase(key);
    }
    auto deleted = del(keys);
    RC_ASSERT(deleted.isOk());
    RC_ASSERT(deleted.value() == expected);
  }

  void checkUnlock(Model& model, OpenScan* scan) {
    std::string key = *genKey();
    std::string pull = *rc::gen::element<std::string>("1", "2", "3", "2.0", "x");
    auto answer = await(store_->deleteIfOwnedByPull(0, key, pull));
    auto it = model.find(key);
    if (it == model.end()) {
      RC_ASSERT(answer.isOk() && !answer->has_value());
      return;
    }
    auto owned = ownedBy(it->second, pull);
    if (!owned.isOk()) {
      RC_ASSERT(answer.status().code() == ErrorCode::kInvalidArgument);
      return;
    }
    RC_ASSERT(answer.isOk());
    if (!owned.value()) {
      RC_ASSERT(!answer->has_value());
      return;
    }
    RC_ASSERT(answer.value() == std::optional<std::string>(it->second));
    model.erase(it);
    if (scan) scan->must_see.erase(key);
  }

  // One page of the open scan (starting one if none is open); checks it when it ends.
  void stepScan(const Model& model, std::optional<OpenScan>& scan) {
    if (!scan) {
      scan.emplace();
      for (const auto& entry : model) scan->must_see.insert(entry.first);
    }
    auto page = await(store_->scan(scanRequest(scan->cursor, *rc::gen::inRange<size_t>(1, 8))));
    RC_ASSERT(page.isOk());
    for (const std::string& key : page->keys) RC_ASSERT(++scan->seen[key] == 1);
    scan->cursor = page->next_cursor;
    if (scan->cursor != 0) return;
    for (const std::string& key : scan->must_see) RC_ASSERT(scan->seen.count(key) == 1u);
    scan.reset();
  }

  void checkContents(const Model& model) {
    RC_ASSERT(count() == static_cast<int64_t>(model.size()));
    for (const auto& [key, value] : model) RC_ASSERT(read(key) == value);
    std::set<std::string> scanned;
    uint64_t cursor = 0;
    do {
      auto page = await(store_->scan(scanRequest(cursor, *rc::gen::inRange<size_t>(1, 20))));
      RC_ASSERT(page.isOk());
      for (const std::string& key : page->keys) RC_ASSERT(scanned.insert(key).second);
      cursor = page->next_cursor;
    } while (cursor != 0);
    std::set<std::string> expected;
    for (const auto& entry : model) expected.insert(entry.first);
    RC_ASSERT(scanned == expected);
  }
};

RC_GTEST_FIXTURE_PROP(LmdbModelTest, RandomOperationsMatchAMap, ()) {
  Model model;
  std::optional<OpenScan> scan;
  const int steps = *rc::gen::inRange(1, 60);
  for (int step = 0; step < steps; ++step) {
    switch (*rc::gen::inRange(0, 5)) {
      case 0: checkPut(model); break;
      case 1: checkDel(model, scan ? &*scan : nullptr); break;
      case 2: checkUnlock(model, scan ? &*scan : nullptr); break;
      case 3: stepScan(model, scan); break;
      case 4:
        if (*rc::gen::inRange(0, 8) == 0) reopen();  // cursors and data survive a restart
        break;
    }
  }
  checkContents(model);
}

}  // namespace
}  // namespace lockshift::testing
