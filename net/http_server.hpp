// HTTP/1.1 server transport: accepts connections, parses requests, hands each
// one to a handler, writes the replies back in order. No routing, no business
// rules, no CAF: net/http_edge sits on top of it.
//
// Threads: the server owns `io_threads` asio threads. The handler runs on one
// of them (on the connection's strand) and must not block: it hands the
// request on (to an actor) and answers later through the `responder`, from any
// thread. The responder posts the reply to the connection's strand.
//
// Lifecycle: construct, start(), ..., stop() (or the destructor). stop() must
// not be called from an io thread (it joins them). A server is started once.
//
// Bounds (CONVENTIONS §5): body and header size, time to read a request, idle
// keep-alive time, open connections (beyond: 503 + Retry-After, then close),
// pipelined requests per connection (beyond: the connection is not read until
// a reply is written), requests per connection (the Nth reply carries
// `Connection: close`; nothing after the Nth request is read), and bytes held
// across all connections (`max_buffered_bytes`: bytes read and not yet
// parsed, plus each request's wire size from its first byte until its reply
// is written or its connection closes; the connection whose read crosses it
// gets 503 + Retry-After and is closed, and its unparsed bytes are released
// at once — requests already handed on stay counted until answered). While the
// server waits for a reply it keeps reading the connection, so a request left
// unanswered for `idle_timeout` loses its connection; when reading has stopped
// (ring full, client half-closed) only the reply or stop() ends the wait: the
// handler must always answer.
//
// Framing (against request smuggling; rules in net/http_framing.hpp): the
// header is checked before any body byte is parsed. A message with any
// Transfer-Encoding but exactly one `chunked`, Transfer-Encoding with
// Content-Length, more than one or a non-numeric Content-Length, a missing
// (HTTP/1.1) or repeated Host, obs-fold, a control character in the header,
// or Transfer-Encoding on HTTP/1.0 gets 400; a header over `header_limit`
// gets 431, a body over `body_limit` 413. Each such refusal is answered after
// the replies before it, carries `Connection: close`, and nothing after the
// bad message is parsed: the handler never sees it nor what follows it.
// Trailer fields of a chunked body are dropped, never merged into the header.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace billing::net {

namespace http = boost::beast::http;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

namespace detail {
class session;
struct server_core;
}  // namespace detail

// The way back to one request's connection. Cheap to copy or move (a
// shared_ptr and a sequence number); callable from any thread.
//
// The server sets on the reply: the request's HTTP version, keep-alive (the
// request's wish, unless the handler sent `Connection: close` or the server is
// draining), `Server` (if the handler set none) and Content-Length
// (prepare_payload). Only the first call for a request counts; later calls,
// calls after the connection closed and calls after the server stopped or was
// destroyed do nothing. A responder dropped without being called leaves its
// request unanswered: the client waits until `idle_timeout` closes the
// connection. Always answer.
class responder {
 public:
  responder() = default;  // answers nothing
  void operator()(response res) const;
  explicit operator bool() const noexcept { return session_ != nullptr; }

 private:
  friend class detail::session;
  responder(std::shared_ptr<detail::session> s, uint64_t seq) noexcept;
  std::shared_ptr<detail::session> session_;
  uint64_t seq_ = 0;
};

// Called on an io thread, once per complete request; must not block. An
// exception thrown by it is logged and answered with 500.
using handler = std::function<void(request&& req, responder reply)>;

struct server_config {
  std::string address = "127.0.0.1";
  uint16_t port = 8080;  // 0 = ephemeral (tests); see port()
  int io_threads = 1;
  size_t body_limit = 1 << 20;      // larger: 413 payload_too_large, then close
  size_t header_limit = 16 * 1024;  // larger: 431 header_too_large, then close
  // From the first byte of a request to its last (and for writing a reply).
  // Also the wait for the first request on a new connection.
  std::chrono::seconds read_timeout{30};
  // Keep-alive connection with nothing to read; see also the class comment.
  std::chrono::seconds idle_timeout{60};
  size_t max_connections = 10000;
  size_t max_queued_per_connection = 16;  // pipelined requests awaiting replies
  // Requests served on one connection; the reply to the last one carries
  // `Connection: close`. 0 = unlimited.
  size_t max_requests_per_connection = 1000;
  // Bytes held across all connections (see the class comment). 0 = unlimited.
  size_t max_buffered_bytes = size_t{64} << 20;
  std::string server_name = "billingd";
  // TLS (PEM files; both or neither): every connection starts with a TLS
  // handshake, within read_timeout, or is closed. Connections past
  // max_connections are closed without the 503 (it would be plaintext).
  std::string tls_cert_file;
  std::string tls_key_file;
};

class http_server {
 public:
  http_server(server_config cfg, handler h);
  ~http_server();  // stop()
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds, listens and starts the io threads. On failure returns false with
  // a readable reason in `error` ("bind 127.0.0.1:8080: Address already in use").
  bool start(std::string& error);

  // The bound port (useful with port 0); 0 before start().
  uint16_t port() const noexcept { return port_; }

  // Stops accepting (new connections are refused), closes idle connections,
  // lets requests in flight be answered for up to `drain` (their replies carry
  // `Connection: close`; requests arriving meanwhile get 503), then closes
  // every connection and joins the io threads. Idempotent. Not from an io
  // thread.
  void stop(std::chrono::milliseconds drain = std::chrono::seconds(10));

  struct stats {
    uint64_t accepted = 0;           // connections accepted, rejected ones included
    uint64_t active = 0;             // connections open now
    uint64_t requests = 0;           // complete requests handed to the handler
    uint64_t rejected_overload = 0;  // connections answered 503 (max_connections)
    uint64_t rejected_framing = 0;   // requests refused 400 for their framing (see the class comment)
    uint64_t rejected_buffer = 0;    // connections answered 503 (max_buffered_bytes)
    uint64_t buffered_bytes = 0;     // bytes held now (max_buffered_bytes)
  };
  stats snapshot() const noexcept;

 private:
  std::shared_ptr<detail::server_core> core_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace billing::net
