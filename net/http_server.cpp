// Beast async server. One `session` per connection, all of its state touched
// only on its strand (or, with one io thread, on that thread). Replies come
// back through `responder`, which dispatches to the strand; they are written
// in request order from a ring of `max_queued_per_connection` slots.
//
// Byte accounting (max_buffered_bytes): a session adds every byte it reads to
// `held_` and to the server-wide `buffered`; a request's bytes move, as the
// parser consumes them, into its slot (`wire`) and leave when its reply is
// written. Refusing a request drops the unparsed bytes; linger and close drop
// everything, so the server-wide count is exact and returns to 0.
#include "net/http_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_set>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

#include "net/http_framing.hpp"
#include "net/request_id.hpp"

namespace billing::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

namespace {

// Longest we keep reading (and discarding) after our FIN, so that the client
// reads our last reply instead of a reset; and how much we discard.
constexpr std::chrono::milliseconds linger_time{2000};
constexpr size_t linger_bytes = 256 * 1024;
// Concurrent 503-and-close connections; beyond, a connection is just closed.
constexpr uint64_t max_rejecting = 1024;

std::string error_body(std::string_view code, std::string_view message, std::string_view request_id = {}) {
  std::string b;
  b.reserve(60 + code.size() + message.size() + request_id.size());
  b.append(R"({"error":{"code":")").append(code).append(R"(","message":")").append(message);
  if (!request_id.empty()) b.append(R"(","request_id":")").append(request_id);
  b.append("\"}}");
  return b;
}

// The server's own refusals carry a request id like every edge answer (a
// fresh one: the request was not read as far as its X-Request-Id).
response error_response(http::status status, std::string_view code, std::string_view message) {
  response res{status, 11};
  const std::string id = new_request_id();
  res.set(http::field::content_type, "application/json");
  res.set("X-Request-Id", id);
  res.body() = error_body(code, message, id);
  return res;
}

}  // namespace

namespace detail {

// A connection's byte stream: plain TCP, or TLS over it (tls_cert_file set).
// It offers what the session uses of beast::tcp_stream (timeouts, reads and
// writes, the socket, close), so the session is the same code for both.
class conn_stream {
 public:
  using executor_type = beast::tcp_stream::executor_type;

  conn_stream(tcp::socket&& socket, asio::ssl::context* tls) {
    if (tls)
      tls_.emplace(std::move(socket), *tls);
    else
      plain_.emplace(std::move(socket));
  }

  bool is_tls() const noexcept { return tls_.has_value(); }
  beast::tcp_stream& lowest() noexcept { return tls_ ? beast::get_lowest_layer(*tls_) : *plain_; }
  executor_type get_executor() noexcept { return lowest().get_executor(); }
  tcp::socket& socket() noexcept { return lowest().socket(); }
  template <class T>
  void expires_after(T d) { lowest().expires_after(d); }
  void expires_at(steady::time_point t) { lowest().expires_at(t); }
  void close() { lowest().close(); }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& b, Handler&& h) {
    if (tls_)
      tls_->async_read_some(b, std::forward<Handler>(h));
    else
      plain_->async_read_some(b, std::forward<Handler>(h));
  }
  template <class Buffers, class Handler>
  void async_write_some(const Buffers& b, Handler&& h) {
    if (tls_)
      tls_->async_write_some(b, std::forward<Handler>(h));
    else
      plain_->async_write_some(b, std::forward<Handler>(h));
  }
  template <class Handler>
  void async_handshake(Handler&& h) {
    tls_->async_handshake(asio::ssl::stream_base::server, std::forward<Handler>(h));
  }

 private:
  std::optional<beast::tcp_stream> plain_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

struct server_core {
  server_core(server_config c, handler h)
      : cfg(std::move(c)),
        on_request(std::move(h)),
        ioc(std::max(1, cfg.io_threads)),
        accept_strand(asio::make_strand(ioc)),
        acceptor(accept_strand),
        accept_timer(accept_strand) {}

  asio::any_io_executor connection_executor() {
    if (cfg.io_threads > 1) return asio::make_strand(ioc);
    return ioc.get_executor();
  }

  const server_config cfg;
  const handler on_request;
  asio::io_context ioc;
  asio::strand<asio::io_context::executor_type> accept_strand;
  tcp::acceptor acceptor;
  asio::steady_timer accept_timer;
  std::string overload_reply;  // complete raw 503 response
  std::optional<asio::ssl::context> tls;  // set by start() when cfg.tls_cert_file is

  std::atomic<bool> draining{false};
  // Responders pass this gate to reach the io_context; stop() closes it and
  // waits for those inside before joining the threads.
  std::atomic<bool> gate_closed{false};
  std::atomic<uint32_t> posting{0};

  std::atomic<uint64_t> accepted{0}, active{0}, requests{0}, rejected{0};
  std::atomic<uint64_t> rejected_framing{0}, rejected_buffer{0};
  std::atomic<uint64_t> buffered{0};  // bytes held by all sessions (max_buffered_bytes)
  std::atomic<uint64_t> inflight{0};  // requests accepted, reply not yet written
  std::atomic<uint64_t> rejecting{0};

  std::mutex registry_mutex;
  std::unordered_set<session*> registry;  // open sessions

  // Keeps run() going while no operation is pending; reset by stop().
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

  std::vector<std::shared_ptr<session>> live_sessions();
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(std::shared_ptr<server_core> core, tcp::socket&& socket)
      : core_(std::move(core)), stream_(std::move(socket), core_->tls ? &*core_->tls : nullptr) {
    ring_.resize(std::max<size_t>(1, core_->cfg.max_queued_per_connection));
    buffer_.reserve(4096);
    std::lock_guard lock{core_->registry_mutex};
    core_->registry.insert(this);
  }

  ~session() { release(); }

  asio::any_io_executor executor() { return stream_.get_executor(); }
  server_core& core() noexcept { return *core_; }

  void start() {
    if (!stream_.is_tls()) {
      asio::dispatch(executor(), [self = shared_from_this()] { self->read_loop(); });
      return;
    }
    // TLS: the handshake first, within the time a first request has.
    asio::dispatch(executor(), [self = shared_from_this()] {
      self->stream_.expires_after(self->core_->cfg.read_timeout);
      self->stream_.async_handshake([self](error_code ec) {
        if (ec) return self->close();  // not TLS, or no common ground: nothing to answer
        if (self->closed_) return;
        self->read_loop();
      });
    });
  }

  // On the strand. Only the first reply for a sequence number counts.
  void deliver(uint64_t seq, response&& res) {
    if (closed_ || lingering_ || seq < head_ || seq >= tail_) return;
    slot& s = at(seq);
    if (s.ready) return;
    res.version(s.version);
    const bool handler_close =
        res.find(http::field::connection) != res.end() && !res.keep_alive();
    if (res.find(http::field::server) == res.end()) res.set(http::field::server, core_->cfg.server_name);
    res.keep_alive(s.keep_alive && !handler_close && !draining_);
    // Beast drops `close` on 1.0 (it is the default there); say it anyway.
    if (!res.keep_alive() && s.version < 11) res.set(http::field::connection, "close");
    try {
      res.prepare_payload();  // throws for a body on 1xx/204/304
    } catch (const std::exception& e) {
      spdlog::error("http_server: bad reply {}: {}", res.result_int(), e.what());
      res = error_response(http::status::internal_server_error, "internal", "internal error");
      res.version(s.version);
      res.keep_alive(false);
      res.set(http::field::server, core_->cfg.server_name);
      res.prepare_payload();
    }
    s.res = std::move(res);
    s.ready = true;
    maybe_write();
  }

  // On the strand (stop()): idle connections close now, busy ones after
  // their replies.
  void begin_drain() {
    if (closed_ || draining_) return;
    draining_ = true;
    if (head_ == tail_ && !writing_) linger_close();
  }

  void force_close() { close(); }

 private:
  struct slot {
    response res;
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;  // HEAD request: headers only
    bool ready = false;
    uint64_t wire = 0;  // the request's bytes, held until its reply is written
  };
  enum class parsed { complete, need_more, failed };

  slot& at(uint64_t seq) { return ring_[seq % ring_.size()]; }

  void read_loop() {
    while (!closed_ && !no_more_reads_ && !reading_ && tail_ - head_ < ring_.size()) {
      if (buffer_.size() > 0) {
        const parsed p = parse_buffered();
        if (p == parsed::complete) {
          dispatch_request();
          continue;
        }
        if (p == parsed::failed) return;
      }
      if (maybe_send_continue()) return;
      // A request under way must be complete by its deadline; between
      // requests the connection may idle (the first request must come soon).
      if (parser_ && parser_->got_some())
        stream_.expires_at(deadline_);
      else
        stream_.expires_after(fresh_ ? core_->cfg.read_timeout : core_->cfg.idle_timeout);
      start_read();
      return;
    }
  }

  void start_read() {
    reading_ = true;
    // Header bytes accumulate (the parser needs them contiguous, bounded by
    // header_limit); body bytes are copied out as they arrive.
    const size_t want = std::clamp<size_t>(buffer_.capacity() - buffer_.size(), 2048, 65536);
    stream_.async_read_some(buffer_.prepare(want),
                            beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) {
      // Our FIN is out; swallow what the client still sends, then close.
      if (ec && ec != asio::error::operation_aborted) return close();
      discarded_ += n;
      buffer_.clear();
      if (discarded_ > linger_bytes || steady::now() >= linger_deadline_) return close();
      return linger_read();
    }
    if (ec) {
      if (ec == asio::error::eof && !(parser_ && parser_->got_some())) {
        // The client is done sending; answer what it asked, then close.
        stop_reading();
        if (head_ == tail_ && !writing_) close();
        return;
      }
      // Timeout (the stream is already closed), reset, or EOF mid-request.
      return close();
    }
    if (!(parser_ && parser_->got_some())) deadline_ = steady::now() + core_->cfg.read_timeout;
    buffer_.commit(n);
    held_ += n;
    const uint64_t total = core_->buffered.fetch_add(n, std::memory_order_relaxed) + n;
    if (core_->cfg.max_buffered_bytes != 0 && total > core_->cfg.max_buffered_bytes) {
      core_->rejected_buffer.fetch_add(1, std::memory_order_relaxed);
      auto res = error_response(http::status::service_unavailable, "overloaded",
                                "server holds too many request bytes");
      res.set(http::field::retry_after, "1");
      return refuse(std::move(res));
    }
    read_loop();
  }

  // Not eager until the header has passed the framing checks, so that no
  // body byte of a refused message is ever parsed.
  parsed parse_buffered() {
    if (!parser_) {
      parser_.emplace();
      parser_->eager(false);
      parser_->header_limit(static_cast<uint32_t>(std::min<size_t>(core_->cfg.header_limit, UINT32_MAX)));
      parser_->body_limit(core_->cfg.body_limit);
      continue_sent_ = false;
      header_checked_ = false;
      scanner_.reset();
    }
    for (;;) {
      error_code ec;
      const auto data = buffer_.data();
      const size_t used = parser_->put(data, ec);
      const bool in_header = !header_checked_;
      buffer_.consume(used);
      partial_wire_ += used;
      // Beast may consume a header in pieces; every piece is header bytes.
      if (in_header && !scanner_.feed({static_cast<const char*>(data.data()), used})) {
        reject_framing(scanner_.violation());
        return parsed::failed;
      }
      if (ec == http::error::need_more) return parsed::need_more;
      if (ec) {
        reject_request(ec);
        return parsed::failed;
      }
      if (in_header && parser_->is_header_done()) {
        header_checked_ = true;
        if (const char* why = framing_violation(parser_->get())) {
          reject_framing(why);
          return parsed::failed;
        }
        if (parser_->chunked()) remember_header_fields();
        parser_->eager(true);
      }
      if (parser_->is_done()) {
        if (parser_->chunked()) drop_trailers();
        return parsed::complete;
      }
      if (buffer_.size() == 0) return parsed::need_more;
    }
  }

  // Beast adds trailer fields to the header (next to fields of the same
  // name, so not at the end); a trailer must not add a second Host or a
  // Connection behind the framing check (RFC 9110 §6.5.1): drop them. Field
  // nodes keep their addresses, so the header's own are known by address.
  void remember_header_fields() {
    header_fields_.clear();
    for (const auto& f : parser_->get()) header_fields_.push_back(&f);
  }

  void drop_trailers() {
    auto& req = parser_->get();
    if (static_cast<size_t>(std::distance(req.begin(), req.end())) == header_fields_.size()) return;
    for (auto it = req.begin(); it != req.end();) {
      if (std::find(header_fields_.begin(), header_fields_.end(), &*it) == header_fields_.end())
        it = req.erase(it);
      else
        ++it;
    }
  }

  // `Expect: 100-continue` (curl sends it for bodies over 1 KiB): say so
  // when nothing else is queued; otherwise the client sends after its wait.
  bool maybe_send_continue() {
    if (continue_sent_ || !parser_ || !parser_->is_header_done() || parser_->is_done()) return false;
    continue_sent_ = true;
    const auto& req = parser_->get();
    const auto expect = req[http::field::expect];
    if (req.version() < 11 || !beast::iequals(expect, "100-continue") || head_ != tail_ || writing_)
      return false;
    static constexpr std::string_view reply = "HTTP/1.1 100 Continue\r\n\r\n";
    writing_ = true;
    stream_.expires_after(core_->cfg.read_timeout);
    asio::async_write(stream_, asio::buffer(reply.data(), reply.size()),
                      [self = shared_from_this()](error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->close();
                        if (self->closed_) return;
                        self->maybe_write();
                        self->read_loop();
                      });
    return true;
  }

  void dispatch_request() {
    request req = parser_->release();
    parser_.reset();
    fresh_ = false;
    const uint64_t seq = tail_++;
    slot& s = at(seq);
    s.version = req.version();
    ++served_;
    const size_t cap = core_->cfg.max_requests_per_connection;
    s.keep_alive = req.keep_alive() && (cap == 0 || served_ < cap);
    s.head = req.method() == http::verb::head;
    s.ready = false;
    s.wire = partial_wire_;
    partial_wire_ = 0;
    if (!s.keep_alive) stop_reading();  // nothing after this request is parsed
    core_->requests.fetch_add(1, std::memory_order_relaxed);
    core_->inflight.fetch_add(1, std::memory_order_relaxed);
    if (draining_) {
      auto res = error_response(http::status::service_unavailable, "shutting_down", "server is shutting down");
      res.set(http::field::retry_after, "1");
      return deliver(seq, std::move(res));
    }
    try {
      core_->on_request(std::move(req), responder{shared_from_this(), seq});
    } catch (const std::exception& e) {
      spdlog::error("http_server: handler threw: {}", e.what());
      deliver(seq, error_response(http::status::internal_server_error, "internal", "internal error"));
    } catch (...) {
      spdlog::error("http_server: handler threw a non-exception");
      deliver(seq, error_response(http::status::internal_server_error, "internal", "internal error"));
    }
  }

  // A request we cannot parse: answer it (after the replies before it) and
  // close, since the byte stream cannot be resynchronised.
  void reject_request(error_code ec) {
    if (ec == http::error::body_limit)
      return refuse(error_response(http::status::payload_too_large, "payload_too_large",
                                   "request body exceeds " + std::to_string(core_->cfg.body_limit) + " bytes"));
    if (ec == http::error::header_limit)
      return refuse(error_response(http::status::request_header_fields_too_large, "header_too_large",
                                   "request header exceeds " + std::to_string(core_->cfg.header_limit) + " bytes"));
    if (is_framing_error(ec)) core_->rejected_framing.fetch_add(1, std::memory_order_relaxed);
    refuse(error_response(http::status::bad_request, "bad_request", "malformed HTTP request"));
  }

  void reject_framing(const char* why) {
    core_->rejected_framing.fetch_add(1, std::memory_order_relaxed);
    refuse(error_response(http::status::bad_request, "bad_request", why));
  }

  // Queues `res` as the last reply of this connection (after the replies
  // before it), then closes; the message under way and every byte after it
  // are dropped unparsed. The ring has room: reading only runs while it does.
  void refuse(response res) {
    res.set(http::field::connection, "close");
    const bool http10 = parser_ && parser_->is_header_done() && parser_->get().version() == 10;
    stop_reading();
    const uint64_t seq = tail_++;
    slot& s = at(seq);
    s.version = http10 ? 10 : 11;
    s.keep_alive = false;
    s.head = false;
    s.ready = false;
    s.wire = 0;
    core_->inflight.fetch_add(1, std::memory_order_relaxed);
    deliver(seq, std::move(res));
  }

  // No request after this point is parsed: the partial message and the
  // unparsed bytes are released now.
  void stop_reading() {
    no_more_reads_ = true;
    parser_.reset();
    unhold(buffer_.size() + partial_wire_);
    partial_wire_ = 0;
    buffer_.clear();
  }

  void unhold(uint64_t n) {
    if (n == 0) return;
    held_ -= n;
    core_->buffered.fetch_sub(n, std::memory_order_relaxed);
  }

  void maybe_write() {
    if (writing_ || closed_ || lingering_ || head_ == tail_) return;
    slot& s = at(head_);
    if (!s.ready) return;
    writing_ = true;
    stream_.expires_after(core_->cfg.read_timeout);  // a client must also read in time
    // Our own header serializer: one string reused per connection, sent with
    // the body in one gather write. Beast's serializer costs a few µs more per
    // reply; replies here are complete (prepare_payload), never chunked.
    serialize_header(s.res);
    const std::array<asio::const_buffer, 2> out{
        asio::buffer(header_out_), s.head ? asio::const_buffer{} : asio::buffer(s.res.body())};
    asio::async_write(stream_, out, beast::bind_front_handler(&session::on_write, shared_from_this()));
  }

  void serialize_header(const response& res) {
    header_out_.clear();
    header_out_.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    const unsigned code = res.result_int();
    const char digits[3] = {static_cast<char>('0' + code / 100 % 10), static_cast<char>('0' + code / 10 % 10),
                            static_cast<char>('0' + code % 10)};
    header_out_.append(digits, 3).append(" ");
    const auto reason = res.reason();
    header_out_.append(reason.data(), reason.size()).append("\r\n");
    for (const auto& f : res) {
      const auto name = f.name_string();
      const auto value = f.value();
      header_out_.append(name.data(), name.size()).append(": ").append(value.data(), value.size()).append("\r\n");
    }
    header_out_.append("\r\n");
  }

  void on_write(error_code ec, size_t) {
    writing_ = false;
    if (closed_) return;
    if (ec) return close();
    slot& s = at(head_);
    const bool keep = s.res.keep_alive();
    s.res = response{};
    s.ready = false;
    unhold(s.wire);
    s.wire = 0;
    ++head_;
    core_->inflight.fetch_sub(1, std::memory_order_relaxed);
    if (!keep || (draining_ && head_ == tail_) || (no_more_reads_ && head_ == tail_)) return linger_close();
    maybe_write();
    read_loop();  // resumes reading if the ring was full
  }

  // Half-close, then read and discard for a short while, so the client sees
  // our last reply and EOF rather than a reset.
  void linger_close() {
    if (closed_ || lingering_) return;
    lingering_ = true;
    stop_reading();
    abandon_slots();
    unhold(held_);  // what arrives while lingering is discarded, not held
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    linger_deadline_ = steady::now() + std::min<steady::duration>(linger_time, core_->cfg.read_timeout);
    if (reading_)
      stream_.socket().cancel(ec);  // on_read re-arms with the linger deadline
    else
      linger_read();
  }

  void linger_read() {
    stream_.expires_at(linger_deadline_);
    reading_ = true;
    stream_.async_read_some(buffer_.prepare(4096), beast::bind_front_handler(&session::on_read, shared_from_this()));
  }

  // The caller releases the slots' bytes (unhold(held_)).
  void abandon_slots() {
    if (tail_ != head_) core_->inflight.fetch_sub(tail_ - head_, std::memory_order_relaxed);
    for (; head_ != tail_; ++head_) {
      at(head_).res = response{};
      at(head_).ready = false;
      at(head_).wire = 0;
    }
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    abandon_slots();
    stream_.close();
    parser_.reset();
    buffer_.clear();
    buffer_.shrink_to_fit();  // responders may keep this object alive a while
    release();
  }

  // Counts the connection as gone; from close() or the destructor.
  void release() {
    if (released_) return;
    released_ = true;
    abandon_slots();
    unhold(held_);
    core_->active.fetch_sub(1, std::memory_order_relaxed);
    std::lock_guard lock{core_->registry_mutex};
    core_->registry.erase(this);
  }

  std::shared_ptr<server_core> core_;  // first: outlives the stream
  conn_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  header_scanner scanner_;  // raw bytes of the header being parsed
  std::vector<slot> ring_;
  std::string header_out_;  // serialized header of the reply being written
  uint64_t head_ = 0;  // next reply to write
  uint64_t tail_ = 0;  // next request's sequence number
  steady::time_point deadline_{};
  steady::time_point linger_deadline_{};
  size_t discarded_ = 0;
  uint64_t held_ = 0;          // bytes this session counts in core_->buffered
  uint64_t partial_wire_ = 0;  // bytes the parser consumed for the request under way
  uint64_t served_ = 0;        // requests handed on (max_requests_per_connection)
  std::vector<const void*> header_fields_;  // a chunked request's own fields, not its trailers
  bool header_checked_ = false;
  bool fresh_ = true;          // no request yet
  bool reading_ = false;
  bool writing_ = false;
  bool no_more_reads_ = false;  // EOF, Connection: close, or a parse error
  bool continue_sent_ = false;
  bool draining_ = false;
  bool lingering_ = false;
  bool closed_ = false;
  bool released_ = false;
};

std::vector<std::shared_ptr<session>> server_core::live_sessions() {
  std::vector<std::shared_ptr<session>> out;
  std::lock_guard lock{registry_mutex};
  out.reserve(registry.size());
  for (session* s : registry)
    if (auto sp = s->weak_from_this().lock()) out.push_back(std::move(sp));
  return out;
}

// Past max_connections: write a canned 503, half-close, drain briefly, close.
class rejecter : public std::enable_shared_from_this<rejecter> {
 public:
  rejecter(std::shared_ptr<server_core> core, tcp::socket&& socket)
      : core_(std::move(core)), stream_(std::move(socket)) {}
  ~rejecter() { core_->rejecting.fetch_sub(1, std::memory_order_relaxed); }

  void start() {
    stream_.expires_after(std::chrono::seconds(1));
    asio::async_write(stream_, asio::buffer(core_->overload_reply),
                      [self = shared_from_this()](error_code ec, size_t) {
                        if (ec) return self->stream_.close();
                        error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        self->drain();
                      });
  }

 private:
  void drain() {
    stream_.async_read_some(asio::buffer(sink_), [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return self->stream_.close();  // EOF, reset or the 1 s timeout
      self->drain();
    });
  }

  std::shared_ptr<server_core> core_;
  beast::tcp_stream stream_;
  std::array<char, 2048> sink_{};
};

void do_accept(const std::shared_ptr<server_core>& core);

void on_accept(const std::shared_ptr<server_core>& core, error_code ec, tcp::socket socket) {
  if (ec) {
    if (ec == asio::error::operation_aborted || !core->acceptor.is_open()) return;
    // EMFILE and friends: back off instead of spinning.
    spdlog::warn("http_server: accept failed: {}", ec.message());
    core->accept_timer.expires_after(std::chrono::milliseconds(50));
    core->accept_timer.async_wait([core](error_code tec) {
      if (!tec && core->acceptor.is_open()) do_accept(core);
    });
    return;
  }
  if (core->draining.load()) {
    error_code ignored;
    socket.close(ignored);
    return;
  }
  core->accepted.fetch_add(1, std::memory_order_relaxed);
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (core->active.load(std::memory_order_relaxed) >= core->cfg.max_connections) {
    core->rejected.fetch_add(1, std::memory_order_relaxed);
    // A plaintext 503 means nothing to a TLS client: just close.
    if (!core->tls && core->rejecting.fetch_add(1, std::memory_order_relaxed) < max_rejecting) {
      std::make_shared<rejecter>(core, std::move(socket))->start();
    } else {
      if (!core->tls) core->rejecting.fetch_sub(1, std::memory_order_relaxed);
      socket.close(ignored);
    }
  } else {
    core->active.fetch_add(1, std::memory_order_relaxed);
    std::make_shared<session>(core, std::move(socket))->start();
  }
  do_accept(core);
}

void do_accept(const std::shared_ptr<server_core>& core) {
  core->acceptor.async_accept(core->connection_executor(), [core](error_code ec, tcp::socket socket) {
    on_accept(core, ec, std::move(socket));
  });
}

}  // namespace detail

// ---------------------------------------------------------------------------

responder::responder(std::shared_ptr<detail::session> s, uint64_t seq) noexcept
    : session_(std::move(s)), seq_(seq) {}

void responder::operator()(response res) const {
  if (!session_) return;
  auto& core = session_->core();
  core.posting.fetch_add(1);
  if (!core.gate_closed.load()) {
    try {
      asio::dispatch(session_->executor(), [s = session_, seq = seq_, r = std::move(res)]() mutable {
        s->deliver(seq, std::move(r));
      });
    } catch (const std::exception& e) {
      spdlog::error("http_server: cannot post a reply: {}", e.what());
    }
  }
  core.posting.fetch_sub(1);
}

http_server::http_server(server_config cfg, handler h)
    : core_(std::make_shared<detail::server_core>(std::move(cfg), std::move(h))) {
  const std::string body = error_body("overloaded", "too many connections");
  core_->overload_reply = "HTTP/1.1 503 Service Unavailable\r\nServer: " + core_->cfg.server_name +
                          "\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

http_server::~http_server() { stop(); }

bool http_server::start(std::string& error) {
  if (started_) {
    error = "http_server: already started";
    return false;
  }
  const auto& cfg = core_->cfg;
  const std::string where = cfg.address + ":" + std::to_string(cfg.port);
  error_code ec;
  if (!cfg.tls_cert_file.empty() || !cfg.tls_key_file.empty()) {
    auto& tls = core_->tls.emplace(asio::ssl::context::tls_server);
    tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                    asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1 |
                    asio::ssl::context::single_dh_use);
    if (tls.use_certificate_chain_file(cfg.tls_cert_file, ec)) {
      error = "TLS certificate " + cfg.tls_cert_file + ": " + ec.message();
      core_->tls.reset();
      return false;
    }
    if (tls.use_private_key_file(cfg.tls_key_file, asio::ssl::context::pem, ec)) {
      error = "TLS private key " + cfg.tls_key_file + ": " + ec.message();
      core_->tls.reset();
      return false;
    }
  }
  const auto addr = asio::ip::make_address(cfg.address, ec);
  if (ec) {
    error = "bad listen address '" + cfg.address + "': " + ec.message();
    return false;
  }
  auto& acc = core_->acceptor;
  const tcp::endpoint ep{addr, cfg.port};
  auto fail = [&](const char* what) {
    error = std::string(what) + " " + where + ": " + ec.message();
    error_code ignored;
    acc.close(ignored);
    return false;
  };
  if (acc.open(ep.protocol(), ec)) return fail("open");
  if (acc.set_option(asio::socket_base::reuse_address(true), ec)) return fail("setsockopt");
  if (acc.bind(ep, ec)) return fail("bind");
  if (acc.listen(asio::socket_base::max_listen_connections, ec)) return fail("listen");
  port_ = acc.local_endpoint(ec).port();
  started_ = true;

  core_->work.emplace(core_->ioc.get_executor());
  asio::post(core_->accept_strand, [core = core_] { detail::do_accept(core); });
  const int n = std::max(1, cfg.io_threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([core = core_] {
      for (;;) {
        try {
          core->ioc.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http_server: io thread caught: {}", e.what());
        }
      }
    });
  }
  return true;
}

void http_server::stop(std::chrono::milliseconds drain) {
  if (!started_ || stopped_) return;
  stopped_ = true;
  auto& core = *core_;
  core.draining.store(true);
  // Close the acceptor on its strand and wait: after that no new session can
  // appear, so the snapshots below see every connection.
  std::promise<void> closed;
  asio::post(core.accept_strand, [&core, &closed] {
    error_code ignored;
    core.acceptor.close(ignored);
    core.accept_timer.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  for (auto& s : core.live_sessions()) asio::post(s->executor(), [s] { s->begin_drain(); });
  const auto deadline = steady::now() + drain;
  while (core.inflight.load(std::memory_order_relaxed) > 0 && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  for (auto& s : core.live_sessions()) asio::post(s->executor(), [s] { s->force_close(); });
  // Responders called from now on do nothing; wait for those already inside.
  core.gate_closed.store(true);
  while (core.posting.load() != 0) std::this_thread::yield();
  core.work.reset();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

http_server::stats http_server::snapshot() const noexcept {
  const auto& c = *core_;
  stats s;
  s.accepted = c.accepted.load(std::memory_order_relaxed);
  s.active = c.active.load(std::memory_order_relaxed);
  s.requests = c.requests.load(std::memory_order_relaxed);
  s.rejected_overload = c.rejected.load(std::memory_order_relaxed);
  s.rejected_framing = c.rejected_framing.load(std::memory_order_relaxed);
  s.rejected_buffer = c.rejected_buffer.load(std::memory_order_relaxed);
  s.buffered_bytes = c.buffered.load(std::memory_order_relaxed);
  return s;
}

}  // namespace billing::net
