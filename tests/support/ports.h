#pragma once
// Free loopback TCP ports for test servers, and who listens on them.

#include <sys/types.h>

#include <cstdint>

namespace lockshift::testing {

// A port on 127.0.0.1 that was free a moment ago and that this process has not handed out
// before. It is taken below the kernel's ephemeral range (ip_local_port_range), at random: the
// outgoing connections every test makes take their local ports from that range, and a server
// restarted on its port (after a SIGKILL, say) must find it still free. Tests run in parallel
// processes, so a port can still be taken by another test before the server binds it; servers
// check with listensOn() that the port they answer on is their own.
uint16_t freeLoopbackPort();

// True when process `pid` holds a listening TCP socket on `port` (any local address), read from
// /proc/net/tcp{,6} and /proc/<pid>/fd. A server that lost its port to another process fails
// this check even though something answers on the port.
bool listensOn(pid_t pid, uint16_t port);

}  // namespace lockshift::testing
