#pragma once
// Free loopback TCP ports for test servers.

#include <cstdint>

namespace lockshift::testing {

// A port on 127.0.0.1 that was free a moment ago (bound with port 0, then released).
uint16_t freeLoopbackPort();

}  // namespace lockshift::testing
