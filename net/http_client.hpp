// Outbound HTTP/1.1 client (http:// and https://) for callbacks, webhooks to
// ourselves (simulated provider) and provider APIs.
//
// Threads: the client owns one io thread; all connection state lives on it.
// request()/post() may be called from any thread and never block or throw;
// `done` is called exactly once, on the client's io thread (so it must not
// block: hand the result to an actor), or inline in the caller when the
// client is already stopped.
//
// Connections are reused (keep-alive) per scheme://host:port, bounded by
// max_connections_per_host (requests beyond wait, bounded by max_pending) and
// max_idle_per_host. A request that fails on a reused connection before any
// byte of the reply arrived (the server had closed it) is sent once more on a
// new connection: requests must be idempotent (ours carry idempotency keys or
// event ids).
//
// Lifecycle: construct (starts the thread), use, stop() or destroy: pending
// requests complete with client_errc::stopped. stop() must not be called from
// a `done` callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

namespace billing::net {

namespace http = boost::beast::http;

struct client_config {
  size_t max_connections_per_host = 16;   // concurrent requests to one origin
  size_t max_idle_per_host = 16;          // pooled idle connections per origin
  std::chrono::seconds idle_timeout{30};  // a pooled connection idle longer is closed
  // A new connection's TCP connect and TLS handshake must finish within this
  // (and within the request's timeout); 0: only the request's timeout. The
  // request's timeout still bounds the whole exchange (the read timeout).
  std::chrono::milliseconds connect_timeout{0};
  size_t max_pending = 10000;             // waiting for a connection, all origins
  size_t body_limit = 8 << 20;            // reply body
  std::string user_agent = "billingd";
  // https: the peer's certificate is checked against the system CAs plus
  // these, and its name against the URL's host.
  bool tls_verify_peer = true;
  std::string tls_ca_file;  // extra CA certificates, PEM file
  std::string tls_ca_pem;   // extra CA certificates, PEM text (tests)
};

enum class client_errc : uint8_t {
  none,
  invalid_request,  // URL not http(s)://host[:port][/target], or a bad header
  overloaded,   // max_pending requests already waiting
  resolve,      // name resolution failed
  connect,      // connection refused / unreachable
  tls,          // handshake or certificate verification failed
  timeout,      // the whole exchange took longer than its timeout
  io,           // reset, EOF before the reply was complete, ...
  protocol,     // malformed reply, or body over body_limit
  stopped,      // the client stopped before the reply
};
std::string_view to_string(client_errc e) noexcept;

struct client_result {
  unsigned status = 0;  // HTTP status; 0 when code != none
  std::string body;
  http::fields headers;
  client_errc code = client_errc::none;
  std::string error;  // readable detail when code != none
  bool ok() const noexcept { return code == client_errc::none; }
};

using header_list = std::vector<std::pair<std::string, std::string>>;

struct url_parts {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string target = "/";
};
// Pure: "http://host[:port][/path[?query]]" or https. nullopt if malformed.
std::optional<url_parts> parse_url(std::string_view url);

namespace detail {
struct client_core;
}

class http_client {
 public:
  using callback = std::function<void(client_result)>;

  explicit http_client(client_config cfg = {});
  ~http_client();  // stop()
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  // `timeout` covers the whole exchange: waiting for a connection, connect,
  // TLS, write, read. `headers` are added as given (Host, User-Agent and
  // Content-Length are set by the client unless given).
  void request(http::verb method, std::string_view url, std::string body, header_list headers,
               std::chrono::milliseconds timeout, callback done);
  void post(std::string_view url, std::string body, header_list headers, std::chrono::milliseconds timeout,
            callback done) {
    request(http::verb::post, url, std::move(body), std::move(headers), timeout, std::move(done));
  }

  // Fails what is pending with client_errc::stopped and joins the thread.
  // Idempotent.
  void stop();

  struct stats {
    uint64_t requests = 0;     // accepted by request()
    uint64_t connects = 0;     // new connections opened
    uint64_t reused = 0;       // requests sent on a pooled connection
    uint64_t retried = 0;      // resent after a stale pooled connection
    uint64_t failed = 0;       // completed with an error
  };
  stats snapshot() const noexcept;

 private:
  std::shared_ptr<detail::client_core> core_;
  std::thread thread_;
  std::atomic<bool> stopped_{false};
};

}  // namespace billing::net
