#pragma once
// The process's event loops. With `[server] threads` above 1, lockshift runs one io_context per
// network thread, each driven by that thread alone, and spreads client connections across them
// (proxy/main.cc), so a connection's handlers never leave its thread. A component with resources
// of its own per loop (a Redis store's connection pools) picks the calling thread's loop with
// currentLoop(); any of its resources still works from any thread, only with a thread hop.
//
// Thread-safety: each thread reads and sets its own index.

namespace lockshift {

namespace detail {
inline thread_local int current_loop = 0;
}

// The index of the event loop the calling thread drives: 0 for the main thread and for every
// thread that drives none.
inline int currentLoop() { return detail::current_loop; }
// Called by a network thread before it runs loop `index`.
inline void setCurrentLoop(int index) { detail::current_loop = index; }

}  // namespace lockshift
