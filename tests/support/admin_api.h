#pragma once
// Admin API calls integration tests share (DESIGN §5), on top of httpRequest().

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>

namespace lockshift::testing {

// Runs a consistency check: POST /api/v1/consistency/checks (with {"repair":true} when `repair`),
// then polls GET /api/v1/consistency/checks/<id> every 50 ms until the report is no longer
// "running", for at most `limit`. Returns the finished report. A check that is refused, answers
// something other than JSON, or does not finish in time is a test failure, and the report is empty.
boost::json::object runConsistencyCheck(uint16_t admin_port, bool repair = false,
                                        std::chrono::milliseconds limit = std::chrono::seconds(30));

}  // namespace lockshift::testing
