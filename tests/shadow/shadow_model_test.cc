// The model-based test of the migration engine (tests/router/router_model.h) with the shadow
// mirror wired into the router as lockshift's main does, a new mirror at every restart. In the
// shadow phase every write then reaches enhanced through the mirror's replay, and the model's
// checks hold through it: promise 1 and 2 at every step, and both stores equal to the model once
// the journal and the mirror's queue are empty. On top, the mirror must find enhanced answering
// like legacy: a replay that failed because enhanced was failing is an error divergence, and
// nothing else may diverge.

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <rapidcheck/gtest.h>

#include <memory>

#include "shadow/shadow_mirror.h"
#include "tests/router/router_model.h"

namespace lockshift::testing {
namespace {

// Builds a ShadowMirror for each router the stack opens and takes it out again when the stack
// closes, keeping the divergences every mirror counted, by kind.
class MirrorWiring {
 public:
  explicit MirrorWiring(ShadowOptions options = {.queue_capacity = 1000, .workers = 4}) : options_(options) {}
  StackHooks hooks() {
    return StackHooks{.opened = [this](Router& router, asio::io_context& io) { open(router, io); },
                      .closing = [this](Router& router) { close(router); },
                      .pending = [this] { return mirror_ ? mirror_->depth() : size_t{0}; }};
  }
  // Divergences of `kind` ("decision", "holder", "unlock", "delete", "value", "scan", "error")
  // over every mirror so far.
  uint64_t divergences(const std::string& kind) const {
    uint64_t n = closed_counts_.contains(kind) ? closed_counts_.at(kind) : 0;
    if (mirror_) n += count(*mirror_, kind);
    return n;
  }
  // The status of every mirror so far (the last examples of each kind), for a failure's log.
  std::string statuses() const {
    return closed_statuses_ + (mirror_ ? boost::json::serialize(mirror_->statusJson()) : std::string());
  }
  uint64_t compared() const { return closed_compared_ + (mirror_ ? mirror_->totals().compared : 0); }

 private:
  static uint64_t count(const ShadowMirror& mirror, const std::string& kind) {
    const boost::json::object status = mirror.statusJson();
    return status.at("by_kind").as_object().at(kind).to_number<uint64_t>();
  }
  void open(Router& router, asio::io_context& io) {
    io_ = &io;
    registry_ = std::make_unique<prometheus::Registry>();
    mirror_ = std::make_unique<ShadowMirror>(
        ShadowHooks{.replay = [&router](MirroredCall call) { return router.replayOnEnhanced(std::move(call)); },
                    .mark_dirty = [&router](int db, std::string key) {
                      return router.markEnhancedDirty(db, std::move(key));
                    }},
        *registry_, options_);
    mirror_->start(io);
    router.setMirror(mirror_.get());
  }
  // As main does when it stops: the mirror journals what it still holds, then goes.
  void close(Router& router) {
    mirror_->stop();
    for (int i = 0; i < 1000 && mirror_->depth() > 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(mirror_->depth(), 0u) << "the stopped mirror still held calls after 5 s";
    // On the io thread, which runs the router's loops and the mirror's workers: once this ran,
    // no worker is between two steps, and nothing reads the router's mirror any more.
    asio::post(*io_, asio::use_future([&router] { router.setMirror(nullptr); })).get();
    for (const char* kind : {"decision", "holder", "unlock", "delete", "value", "scan", "error"}) {
      closed_counts_[kind] += count(*mirror_, kind);
    }
    closed_compared_ += mirror_->totals().compared;
    closed_statuses_ += boost::json::serialize(mirror_->statusJson()) + "\n";
    mirror_.reset();
    registry_.reset();
  }

  const ShadowOptions options_;
  asio::io_context* io_ = nullptr;
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<ShadowMirror> mirror_;
  std::map<std::string, uint64_t> closed_counts_;
  uint64_t closed_compared_ = 0;
  std::string closed_statuses_;
};

void checkWithMirror(bool enhanced_records, MirrorWiring wiring = MirrorWiring()) {
  RouterStack stack({}, enhanced_records, 100000, std::chrono::milliseconds(20), wiring.hooks());
  model::check(stack);
  for (const char* kind : {"decision", "holder", "unlock", "delete", "value", "scan"}) {
    if (wiring.divergences(kind) != 0) RC_LOG() << kind << " divergences; the mirrors: " << wiring.statuses();
    RC_ASSERT(wiring.divergences(kind) == 0u);
  }
}

RC_GTEST_PROP(ShadowModel, PromisesHoldWithTheMirrorWiredIn, ()) { checkWithMirror(false); }

// The same with enhanced keeping records, the layout an enhanced Redis store has.
RC_GTEST_PROP(ShadowModel, PromisesHoldWithTheMirrorAndEnhancedRecords, ()) { checkWithMirror(true); }

// With reads mirrored too, every scan page checked: GETs and scans compared as well.
RC_GTEST_PROP(ShadowModel, PromisesHoldWithReadsMirrored, ()) {
  checkWithMirror(false, MirrorWiring(ShadowOptions{
                             .queue_capacity = 1000, .workers = 4, .mirror_reads = true, .scan_sample_rate = 1.0}));
}

// The model reaches the shadow phase and the mirror compares: the property above is not vacuous.
TEST(ShadowModel, TheMirrorComparesWritesInTheShadowPhase) {
  MirrorWiring wiring;
  RouterStack stack({}, false, 100000, std::chrono::milliseconds(20), wiring.hooks());
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  ASSERT_TRUE(stack.filledWithin());
  ASSERT_EQ(stack.lock(model::spec(0, 1)), PutResult::Outcome::kApplied);
  ASSERT_EQ(stack.lock(model::spec(0, 2)), PutResult::Outcome::kLockedByOther);
  for (int i = 0; i < 500 && (wiring.compared() < 2 || stack.pendingOutsideJournal() > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(wiring.compared(), 2u);
  EXPECT_EQ(wiring.divergences("decision"), 0u);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(model::spec(0, 1))), lockJson(model::spec(0, 1)));
}

// Atlantis lists its locks right after taking one. The scan's page is replayed on enhanced by
// another mirror worker than the write's, so it can be checked while that write is still queued
// or in flight: the key is not in enhanced yet, and that is not a divergence.
TEST(ShadowModel, AScanRightAfterAWriteIsNotADivergence) {
  MirrorWiring wiring(
      ShadowOptions{.queue_capacity = 1000, .workers = 4, .mirror_reads = true, .scan_sample_rate = 1.0});
  RouterStack stack({}, false, 100000, std::chrono::milliseconds(20), wiring.hooks());
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  ASSERT_TRUE(stack.filledWithin());
  stack.enhanced().holdWrites(true);  // the lock's replay waits inside enhanced
  ASSERT_EQ(stack.lock(model::spec(0, 1)), PutResult::Outcome::kApplied);
  auto page = stack.run(stack.router().scan(ScanRequest{.db = 0, .cursor = 0, .count = 10, .match = "pr*"}));
  ASSERT_TRUE(page.isOk()) << page.status().toString();
  ASSERT_EQ(page->keys, std::vector<std::string>{lockKey(model::spec(0, 1))});
  for (int i = 0; i < 500 && wiring.compared() < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(wiring.compared(), 1u) << "the scan page was compared while the write was held";
  stack.enhanced().holdWrites(false);
  for (int i = 0; i < 500 && stack.pendingOutsideJournal() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(wiring.compared(), 2u);
  EXPECT_EQ(wiring.divergences("scan"), 0u) << wiring.statuses();
  EXPECT_EQ(wiring.divergences("decision"), 0u) << wiring.statuses();
}

}  // namespace
}  // namespace lockshift::testing
