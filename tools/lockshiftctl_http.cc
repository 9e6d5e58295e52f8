#include "tools/lockshiftctl_http.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <cctype>
#include <iostream>
#include <optional>

#include "proxy/stores.h"
#include "tools/lockshiftctl_output.h"

namespace lockshift::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

// The largest answer read: GET /api/v1/locks?limit=100000 is tens of MiB at most.
constexpr uint64_t kMaxAnswerBytes = uint64_t{512} << 20;

Status transportError(const beast::error_code& ec, std::string_view step, std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return Status::timeout(std::string(step) + " timed out after " + formatDuration(timeout));
  }
  return Status::unavailable(std::string(step) + ": " + ec.message());
}

// Runs on its own io_context; writes the outcome to `*out` (owned by the caller, which runs the
// context to completion). Parameters by value: they must outlive every suspension.
asio::awaitable<void> exchange(AdminEndpoint endpoint, http::request<http::string_body> request,
                               std::chrono::milliseconds timeout, std::optional<Result<HttpAnswer>>* out) {
  auto executor = co_await asio::this_coro::executor;
  constexpr auto kToken = asio::as_tuple(asio::use_awaitable);
  tcp::resolver resolver(executor);
  auto resolve = resolver.async_resolve(endpoint.host, endpoint.port, kToken);
  auto [resolve_ec, addresses] = co_await std::move(resolve);
  if (resolve_ec) {
    out->emplace(Status::unavailable("cannot resolve " + endpoint.host + ": " + resolve_ec.message()));
    co_return;
  }
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  auto connect = stream.async_connect(addresses, kToken);
  auto [connect_ec, peer] = co_await std::move(connect);
  if (connect_ec) {
    out->emplace(transportError(connect_ec, "connect", timeout));
    co_return;
  }
  stream.expires_after(timeout);
  auto write = http::async_write(stream, request, kToken);
  auto [write_ec, written] = co_await std::move(write);
  if (write_ec) {
    out->emplace(transportError(write_ec, "sending the request", timeout));
    co_return;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  stream.expires_after(timeout);
  auto read = http::async_read(stream, buffer, parser, kToken);
  auto [read_ec, read_bytes] = co_await std::move(read);
  if (read_ec) {
    out->emplace(transportError(read_ec, "reading the answer", timeout));
    co_return;
  }
  auto& response = parser.get();
  HttpAnswer answer{response.result_int(), std::string(response[http::field::content_type]),
                    std::move(response.body())};
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  out->emplace(std::move(answer));
}

std::string serverError(const ApiResult& r) {
  if (r.json.is_object()) {
    const auto& o = r.json.get_object();
    if (const auto* e = o.if_contains("error"); e != nullptr && e->is_string() && !e->get_string().empty()) {
      return std::string(e->get_string());
    }
  }
  std::string first_line = r.body.substr(0, r.body.find('\n'));
  if (first_line.size() > 200) first_line = first_line.substr(0, 200) + "...";
  return "HTTP " + std::to_string(r.status) + (first_line.empty() ? "" : ": " + first_line);
}

// Prints why a non-2xx answer failed and returns its exit code.
int reportFailure(const Invocation& inv, const ApiResult& r, bool sent_token) {
  const std::string error = serverError(r);
  switch (r.status) {
    case 400: return fail(kExitUsage, error);
    case 401:
      fail(kExitFailure, error + " (HTTP 401)");
      return fail(kExitFailure, sent_token ? "the admin API did not accept the token"
                                           : "the admin API wants a bearer token: pass --token-file FILE or set "
                                             "$LOCKSHIFT_TOKEN_FILE");
    case 403:
      fail(kExitFailure, error + " (HTTP 403)");
      return fail(kExitFailure, "the token from " + inv.globals.token_file + " was refused");
    case 404: return fail(kExitNotFound, error);
    case 409: {
      const json::value* refusals = r.json.is_object() ? r.json.get_object().if_contains("refusals") : nullptr;
      if (refusals != nullptr && refusals->is_array() && !refusals->get_array().empty()) {
        for (const auto& reason : refusals->get_array()) fail(kExitRefused, "refused: " + cellText(&reason));
      } else {
        fail(kExitRefused, error);
      }
      if (inv.globals.json && !r.json.is_null()) printJson(r.json);
      return kExitRefused;
    }
    default:
      return fail(kExitFailure,
                  error.starts_with("HTTP ") ? error : error + " (HTTP " + std::to_string(r.status) + ")");
  }
}

}  // namespace

Result<AdminEndpoint> parseAdminUrl(std::string_view url) {
  AdminEndpoint e;
  e.url = std::string(url);
  std::string_view rest = url;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    if (rest.substr(0, scheme) != "http") {
      return Status::invalidArgument("admin URL " + e.url + ": only http:// is supported");
    }
    rest.remove_prefix(scheme + 3);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  e.base = slash == std::string_view::npos ? "" : std::string(rest.substr(slash));
  while (!e.base.empty() && e.base.back() == '/') e.base.pop_back();
  std::string_view port;
  if (authority.starts_with('[')) {  // [v6]:port
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Status::invalidArgument("admin URL " + e.url + ": unclosed '['");
    e.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return Status::invalidArgument("admin URL " + e.url + ": bad port");
    if (!after.empty()) port = after.substr(1);
  } else {
    size_t colon = authority.rfind(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return Status::invalidArgument("admin URL " + e.url + ": no host");
  if (port.empty()) port = "80";
  auto number = parseInteger(port, 1, 65535);
  if (!number) return Status::invalidArgument("admin URL " + e.url + ": bad port '" + std::string(port) + "'");
  e.port = std::to_string(*number);
  return e;
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Result<HttpAnswer> sendHttp(const AdminEndpoint& endpoint, std::string_view method, std::string_view target,
                            std::string_view body, std::string_view token, std::chrono::milliseconds timeout) {
  http::request<http::string_body> request;
  request.method_string(beast::string_view(method.data(), method.size()));
  request.target(endpoint.base + std::string(target));
  request.version(11);
  const bool v6 = endpoint.host.find(':') != std::string::npos;
  request.set(http::field::host, (v6 ? "[" + endpoint.host + "]" : endpoint.host) + ":" + endpoint.port);
  request.set(http::field::user_agent, "lockshiftctl");
  request.set(http::field::accept, "application/json");
  if (!token.empty()) request.set(http::field::authorization, "Bearer " + std::string(token));
  if (!body.empty() || method == "PUT" || method == "POST") {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.keep_alive(false);
  request.prepare_payload();

  std::optional<Result<HttpAnswer>> out;
  asio::io_context io;
  asio::co_spawn(io, exchange(endpoint, std::move(request), timeout, &out), asio::detached);
  io.run();
  if (!out) return Status::internal("the request ended without an answer");
  return std::move(*out);
}

ApiResult callApi(const Invocation& inv, std::string_view method, std::string_view target, std::string_view body,
                  bool want_json) {
  ApiResult r;
  auto endpoint = parseAdminUrl(inv.globals.admin_url);
  if (!endpoint) {
    r.exit = fail(kExitUsage, endpoint.status().message());
    return r;
  }
  std::string token;
  if (!inv.globals.token_file.empty()) {
    auto secret = readSecretFile(inv.globals.token_file);
    if (!secret) {
      r.exit = fail(kExitFailure, "token file: " + secret.status().message());
      return r;
    }
    token = std::move(secret.value());
  }
  auto answer = sendHttp(*endpoint, method, target, body, token);
  if (!answer) {
    r.exit = fail(kExitFailure, "cannot reach the admin API at " + endpoint->url + ": " + answer.status().message());
    return r;
  }
  r.status = answer->status;
  r.body = std::move(answer->body);
  boost::system::error_code ec;
  json::value parsed = json::parse(r.body, ec);
  if (!ec) r.json = std::move(parsed);
  if (r.status >= 200 && r.status < 300) {
    if (want_json && ec) {
      r.exit = fail(kExitFailure, "unexpected answer to " + std::string(method) + " " + std::string(target) +
                                      ": HTTP " + std::to_string(r.status) + " without a JSON body");
    }
    return r;
  }
  r.exit = reportFailure(inv, r, !token.empty());
  return r;
}

}  // namespace lockshift::ctl
