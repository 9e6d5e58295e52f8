#pragma once
// The admin HTTP API (DESIGN §5) on Boost.Beast, JSON with Boost.JSON:
//   GET  /healthz                 200 {"status":"ok"} while the process serves
//   GET  /readyz                  200 when both stores answer, else 503
//   GET  /metrics                 Prometheus text format
//   GET  /api/v1/status           ControlPlane::status()
//   PUT  /api/v1/migration        {"phase","traffic_split","force"}: 200 with the new state,
//                                 400 naming a bad field, 409 with {"refusals":[...]}
//   POST /api/v1/rollback         {"reason"}: 200 with the state
//   DELETE /api/v1/rollback       200 with the state
//   POST /api/v1/consistency/checks  {"repair":false}: 202 {"id","state":"running"}; 409
//                                 {"error","id"} while another check runs
//   GET  /api/v1/consistency/checks  200 {"checks":[summary...]} newest first (?limit=N, max 100)
//   GET  /api/v1/consistency/checks/{id|latest}  the report (?format=json|html|md), 404 unknown
//   GET  /api/v1/locks            ?prefix=&limit= (default 1000, max 100000):
//                                 200 {"locks":[{"db","key","owner","pull","user","repo",
//                                 "path","workspace","time"}...],"truncated":bool}
//   DELETE /api/v1/locks/{key}    ?db=N; the key percent-encoded: 200 {"deleted":true,"key",
//                                 "value"}, 404 when absent; recorded as an audit event
//   GET  /api/v1/events           ?limit=N (default 200, max 10000): 200 {"events":[{
//                                 "time_unix_ms","kind","actor","detail","epoch"}...]} oldest first
//   GET  /                        the status page (HTML; reads the endpoints above)
// Mutating calls need `Authorization: Bearer <token>` when a token is configured (401 without,
// 403 with a wrong one; compared in constant time). Errors are JSON: {"error":"...","field":"..."}.
// Limits: request body 64 KiB, header read timeout 10 s, keep-alive.
//
// Thread-safety: start()/stop() from any thread; each connection runs on its own strand.
// Lifetime: ControlPlane and Metrics must outlive the server.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "router/control_plane.h"

namespace lockshift {
class ConsistencyService;
}  // namespace lockshift

namespace lockshift {

struct AdminOptions {
  std::string listen = "127.0.0.1:9121";
  std::string token;  // empty: no token required (loopback only; the config loader enforces it)
  // When set, the token is read from this file at every mutating call and used instead of
  // `token`: a token rotated in the file needs no restart. While the file cannot be read,
  // mutating calls are refused (503); the ROLLBACK flag file still works.
  std::string token_file;
  // How long a connection may take to send the next request's header, and then its body, before
  // it is closed. Longer tolerates slow links; shorter frees idle keep-alive connections sooner.
  std::chrono::milliseconds read_timeout{10000};
};

class AdminServer {
 public:
  // `metrics_text` returns the Prometheus exposition for /metrics.
  // `consistency` may be null: the consistency routes then answer 503.
  AdminServer(boost::asio::io_context& io, ControlPlane& control, ConsistencyService* consistency,
              std::function<std::string()> metrics_text, AdminOptions options);
  ~AdminServer();

  // Binds and listens; kUnavailable naming the address when it cannot.
  Status listen();
  uint16_t port() const;
  void start();
  void stop();

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace lockshift
