#pragma once
// One client connection on the RESP listener.
//
// The session reads, parses every complete request in the buffer, runs them in order through
// the command layer (beginCommand(), the handler, endCommand(): one reply each, appended to one
// output buffer), writes the replies in one write,
// and only then reads again: pipelined requests are answered in order, and a client that does
// not read its replies stops being read (backpressure instead of unbounded buffering).
// Limits: the parser's named limits, and max_input_buffer for unparsed plus partially parsed
// bytes. A protocol error answers "-ERR Protocol error: ..." and closes this connection only.
// Timeouts: idle_timeout between requests (0 = never), kWriteTimeout for a reply write.
//
// Thread-safety: everything runs on the session's strand (the socket's executor).
// Lifetime: shared_ptr owned by its coroutines; close() may be called from any thread.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/command.h"
#include "resp/parser.h"

namespace lockshift {

class Session : public std::enable_shared_from_this<Session> {
 public:
  static constexpr std::chrono::seconds kWriteTimeout{30};
  static constexpr size_t kReadChunk = 16 * 1024;
  // Replies buffered beyond this are written before more requests of the batch run.
  static constexpr size_t kMaxPendingOutput = 256 * 1024;

  Session(asio::ip::tcp::socket socket, ServerContext& server);
  ~Session();

  // Starts the session's coroutines on its strand.
  void start();
  // Closes the connection (from any thread); in-flight store calls complete and are discarded.
  void close();
  // Graceful stop (from any thread): a session waiting for input closes now; one running
  // requests finishes the batch, writes the replies, then closes.
  void requestStop();

 private:
  enum class WriteState { kDone, kPending, kFailed };

  asio::awaitable<void> run();
  asio::awaitable<void> watchdog();
  // Writes what the socket takes of out_ now: kDone when all of it (out_ is then empty),
  // kPending when the rest must wait for the socket (writeRest()), kFailed when it is broken.
  WriteState writeNow();
  // Writes the rest of out_, waiting for the socket; false when the write failed.
  asio::awaitable<bool> writeRest();
  // Both: writes all of out_; false when the connection is broken.
  asio::awaitable<bool> flush();
  void clearOutput();
  void protocolError(const std::string& message);

  asio::ip::tcp::socket socket_;
  ServerContext& server_;
  resp::Parser parser_;
  ClientState client_;
  std::vector<char> read_buf_;  // kReadChunk bytes, allocated once
  std::string in_;              // received bytes not yet consumed by the parser
  size_t in_pos_ = 0;
  std::string out_;
  asio::steady_timer watchdog_timer_;
  std::chrono::steady_clock::time_point last_activity_;  // when the current read, or waiting write, began
  bool writing_ = false;
  bool reading_ = false;
  bool stopping_ = false;
  bool closed_ = false;
};

}  // namespace lockshift
