// Model-based test of the migration engine: the router alone (no shadow mirror: in the shadow
// phase its writes reach enhanced through the journal). tests/router/router_model.h has the model
// and the promises it checks; tests/shadow/shadow_model_test.cc runs it with the mirror wired in.

#include "tests/router/router_model.h"

#include <rapidcheck/gtest.h>

namespace lockshift::testing {
namespace {

RC_GTEST_PROP(RouterModel, PromisesHoldUnderRandomMigrations, ()) {
  RouterStack stack({}, /*enhanced_records=*/false);
  model::check(stack);
}

// The same with enhanced keeping records: scans of a repository come from its name index.
RC_GTEST_PROP(RouterModel, PromisesHoldWithEnhancedRecords, ()) {
  RouterStack stack({}, /*enhanced_records=*/true);
  model::check(stack);
}

}  // namespace
}  // namespace lockshift::testing
