// http_client: one io thread; every pool and connection is touched only on it.
#include "net/http_client.hpp"

#include <algorithm>
#include <charconv>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <spdlog/spdlog.h>

namespace billing::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;

std::string_view to_string(client_errc e) noexcept {
  switch (e) {
    case client_errc::none: return "none";
    case client_errc::invalid_request: return "invalid request";
    case client_errc::overloaded: return "overloaded";
    case client_errc::resolve: return "resolve failed";
    case client_errc::connect: return "connect failed";
    case client_errc::tls: return "tls failed";
    case client_errc::timeout: return "timeout";
    case client_errc::io: return "i/o error";
    case client_errc::protocol: return "protocol error";
    case client_errc::stopped: return "client stopped";
  }
  return "unknown";
}

namespace {

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_';
}

}  // namespace

std::optional<url_parts> parse_url(std::string_view url) {
  url_parts out;
  auto starts_with_ci = [&](std::string_view prefix) {
    return url.size() >= prefix.size() && beast::iequals(url.substr(0, prefix.size()), prefix);
  };
  if (starts_with_ci("http://")) {
    url.remove_prefix(7);
    out.port = 80;
  } else if (starts_with_ci("https://")) {
    url.remove_prefix(8);
    out.tls = true;
    out.port = 443;
  } else {
    return std::nullopt;
  }
  if (const auto hash = url.find('#'); hash != std::string_view::npos) url = url.substr(0, hash);
  const auto end = url.find_first_of("/?");
  std::string_view authority = url.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view{} : url.substr(end);
  std::string_view host, port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const auto rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos)
      return std::nullopt;
  } else {
    const auto colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), host_char)) return std::nullopt;
  }
  if (!port.empty()) {
    unsigned p = 0;
    const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || ptr != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(p);
  }
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  out.host = std::string(host);
  if (target.empty())
    out.target = "/";
  else if (target.front() == '?')
    out.target = "/" + std::string(target);
  else
    out.target = std::string(target);
  return out;
}

namespace detail {

using string_request = http::request<http::string_body>;

struct call {
  url_parts url;
  std::string origin;  // scheme://host:port, the pool key
  string_request req;
  steady::time_point deadline;
  http_client::callback done;
  std::optional<client_result> early;  // fails at once (bad URL, ...)
  bool retried = false;
};

struct connection;

struct origin_pool {
  std::vector<std::shared_ptr<connection>> idle;  // most recently used last
  size_t busy = 0;                                // connections carrying a request
  std::deque<std::unique_ptr<call>> waiting;
};

enum class stage { connect, handshake, exchange };

struct connection : std::enable_shared_from_this<connection> {
  connection(asio::io_context& ioc, ssl::context* tls_ctx, std::string origin_key)
      : origin(std::move(origin_key)) {
    if (tls_ctx)
      tls.emplace(ioc.get_executor(), *tls_ctx);
    else
      plain.emplace(ioc.get_executor());
  }

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  template <class F>
  void with_stream(F&& f) {
    if (tls)
      f(*tls);
    else
      f(*plain);
  }
  void close() {
    error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().close();
  }

  std::string origin;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::unique_ptr<call> current;
  steady::time_point idle_since{};
  bool reused = false;
};

struct client_core : std::enable_shared_from_this<client_core> {
  explicit client_core(client_config c) : cfg(std::move(c)) {
    error_code ec;
    tls_ctx.set_default_verify_paths(ec);
    if (ec) spdlog::warn("http_client: no default CA paths: {}", ec.message());
    if (!cfg.tls_ca_file.empty() && tls_ctx.load_verify_file(cfg.tls_ca_file, ec))
      tls_error = "cannot load CA file " + cfg.tls_ca_file + ": " + ec.message();
    if (!cfg.tls_ca_pem.empty() &&
        tls_ctx.add_certificate_authority(asio::buffer(cfg.tls_ca_pem.data(), cfg.tls_ca_pem.size()), ec))
      tls_error = "cannot load CA PEM: " + ec.message();
    tls_ctx.set_verify_mode(cfg.tls_verify_peer ? ssl::verify_peer : ssl::verify_none, ec);
  }

  // --- io thread only -----------------------------------------------------

  void submit(std::unique_ptr<call> c) {
    if (c->early) return complete(std::move(c), std::move(*c->early));
    if (stopping) return fail(std::move(c), client_errc::stopped, "client stopped");
    if (steady::now() >= c->deadline) return fail(std::move(c), client_errc::timeout, "timed out");
    auto& pool = pools[c->origin];
    const auto now = steady::now();
    while (!pool.idle.empty()) {
      auto conn = std::move(pool.idle.back());
      pool.idle.pop_back();
      if (now - conn->idle_since > cfg.idle_timeout || !conn->lowest().socket().is_open()) {
        drop(conn);
        continue;
      }
      ++pool.busy;
      conn->reused = true;
      reused.fetch_add(1, std::memory_order_relaxed);
      return send(std::move(conn), std::move(c));
    }
    if (pool.busy < std::max<size_t>(1, cfg.max_connections_per_host)) {
      ++pool.busy;
      return open(std::move(c));
    }
    if (waiting_total >= cfg.max_pending)
      return fail(std::move(c), client_errc::overloaded, "too many requests waiting for a connection");
    pool.waiting.push_back(std::move(c));
    ++waiting_total;
    arm_tick();
  }

  void open(std::unique_ptr<call> c) {
    if (c->url.tls && !tls_error.empty()) {
      release_slot(c->origin);
      return fail(std::move(c), client_errc::tls, tls_error);
    }
    auto conn = std::make_shared<connection>(ioc, c->url.tls ? &tls_ctx : nullptr, c->origin);
    connects.fetch_add(1, std::memory_order_relaxed);
    live.insert(conn.get());
    conn->current = std::move(c);
    error_code ec;
    const auto addr = asio::ip::make_address(conn->current->url.host, ec);
    if (!ec) {
      const tcp::endpoint ep{addr, conn->current->url.port};
      return connect(std::move(conn), std::array<tcp::endpoint, 1>{ep});
    }
    resolver.async_resolve(conn->current->url.host, std::to_string(conn->current->url.port),
                           [self = shared_from_this(), conn](error_code rec, tcp::resolver::results_type r) {
                             if (rec) return self->fail_conn(conn, rec, stage::connect, client_errc::resolve);
                             self->connect(conn, r);
                           });
  }

  template <class Endpoints>
  void connect(std::shared_ptr<connection> conn, const Endpoints& eps) {
    if (stopping) return fail_conn(conn, asio::error::operation_aborted, stage::connect, client_errc::connect);
    // Connect and handshake share one deadline (the handshake's reads and
    // writes run on the same tcp_stream timer).
    auto until = conn->current->deadline;
    if (cfg.connect_timeout.count() > 0) until = std::min(until, steady::now() + cfg.connect_timeout);
    conn->lowest().expires_at(until);
    conn->lowest().async_connect(eps, [self = shared_from_this(), conn](error_code ec, const tcp::endpoint&) {
      if (ec) return self->fail_conn(conn, ec, stage::connect, client_errc::connect);
      error_code ignored;
      conn->lowest().socket().set_option(tcp::no_delay(true), ignored);
      if (!conn->tls) return self->start_exchange(conn);
      self->handshake(conn);
    });
  }

  void handshake(const std::shared_ptr<connection>& conn) {
    const std::string& host = conn->current->url.host;
    error_code ec;
    asio::ip::make_address(host, ec);
    if (ec) SSL_set_tlsext_host_name(conn->tls->native_handle(), host.c_str());  // SNI: names only
    if (cfg.tls_verify_peer) conn->tls->set_verify_callback(ssl::host_name_verification(host));
    conn->tls->async_handshake(ssl::stream_base::client, [self = shared_from_this(), conn](error_code hec) {
      if (hec) return self->fail_conn(conn, hec, stage::handshake, client_errc::tls);
      self->start_exchange(conn);
    });
  }

  void send(std::shared_ptr<connection> conn, std::unique_ptr<call> c) {
    conn->current = std::move(c);
    start_exchange(conn);
  }

  void start_exchange(const std::shared_ptr<connection>& conn) {
    if (stopping) return fail_conn(conn, asio::error::operation_aborted, stage::exchange, client_errc::io);
    conn->parser.emplace();
    conn->parser->body_limit(cfg.body_limit);
    conn->parser->header_limit(64 * 1024);
    conn->lowest().expires_at(conn->current->deadline);
    conn->with_stream([&](auto& stream) {
      http::async_write(stream, conn->current->req, [self = shared_from_this(), conn](error_code ec, size_t) {
        if (ec) return self->fail_conn(conn, ec, stage::exchange, client_errc::io);
        conn->with_stream([&](auto& s) {
          http::async_read(s, conn->buffer, *conn->parser, [self, conn](error_code rec, size_t) {
            if (rec) return self->fail_conn(conn, rec, stage::exchange, client_errc::io);
            self->succeed(conn);
          });
        });
      });
    });
  }

  void succeed(const std::shared_ptr<connection>& conn) {
    auto msg = conn->parser->release();
    conn->parser.reset();
    client_result r;
    r.status = msg.result_int();
    r.body = std::move(msg.body());
    const bool keep = msg.keep_alive();
    r.headers = std::move(msg.base());
    auto c = std::move(conn->current);
    recycle(conn, keep);
    complete(std::move(c), std::move(r));
  }

  void fail_conn(const std::shared_ptr<connection>& conn, error_code ec, stage st, client_errc kind) {
    auto c = std::move(conn->current);
    const bool nothing_back = !conn->parser || !conn->parser->got_some();
    const bool stale = st == stage::exchange && conn->reused && nothing_back && !stopping &&
                       (ec == http::error::end_of_stream || ec == asio::error::eof ||
                        ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
    const std::string origin = conn->origin;
    drop(conn);
    if (stale && c && !c->retried) {
      // The server had closed the pooled connection; so, probably, the other
      // idle ones to it. Resend once on a new connection.
      c->retried = true;
      retried.fetch_add(1, std::memory_order_relaxed);
      if (auto it = pools.find(origin); it != pools.end()) {
        for (auto& idle : it->second.idle) drop(idle);
        it->second.idle.clear();
      }
      release_slot(origin);
      return submit(std::move(c));
    }
    release_slot(origin);
    if (!c) return;
    if (stopping)
      kind = client_errc::stopped;
    else if (ec == beast::error::timeout)
      kind = client_errc::timeout;
    else if (st == stage::exchange && std::string_view(ec.category().name()) == "beast.http" &&
             ec != http::error::end_of_stream && ec != http::error::partial_message)
      kind = client_errc::protocol;
    fail(std::move(c), kind, std::string(to_string(kind)) + ": " + ec.message());
  }

  // The connection carried a reply; hand it to a waiting request, pool it,
  // or close it.
  void recycle(const std::shared_ptr<connection>& conn, bool keep) {
    auto it = pools.find(conn->origin);
    if (!keep || stopping || it == pools.end()) {
      drop(conn);
      return release_slot(conn->origin);
    }
    auto& pool = it->second;
    while (!pool.waiting.empty()) {
      auto next = std::move(pool.waiting.front());
      pool.waiting.pop_front();
      --waiting_total;
      if (steady::now() >= next->deadline) {
        fail(std::move(next), client_errc::timeout, "timed out waiting for a connection");
        continue;
      }
      conn->reused = true;
      reused.fetch_add(1, std::memory_order_relaxed);
      return send(conn, std::move(next));
    }
    --pool.busy;
    if (pool.idle.size() >= cfg.max_idle_per_host) return drop(conn);
    conn->idle_since = steady::now();
    pool.idle.push_back(conn);
    arm_tick();
  }

  // A connection slot of `origin` is free: start the next waiting request.
  void release_slot(const std::string& origin) {
    auto it = pools.find(origin);
    if (it == pools.end()) return;
    auto& pool = it->second;
    if (pool.busy > 0) --pool.busy;
    if (!pool.waiting.empty() && !stopping) {
      auto next = std::move(pool.waiting.front());
      pool.waiting.pop_front();
      --waiting_total;
      return submit(std::move(next));
    }
    if (pool.busy == 0 && pool.idle.empty() && pool.waiting.empty()) pools.erase(it);
  }

  void drop(const std::shared_ptr<connection>& conn) {
    conn->close();
    live.erase(conn.get());
  }

  void fail(std::unique_ptr<call> c, client_errc code, std::string what) {
    client_result r;
    r.code = code;
    r.error = std::move(what);
    complete(std::move(c), std::move(r));
  }

  void complete(std::unique_ptr<call> c, client_result r) {
    if (!r.ok()) failed.fetch_add(1, std::memory_order_relaxed);
    try {
      if (c->done) c->done(std::move(r));
    } catch (const std::exception& e) {
      spdlog::error("http_client: callback threw: {}", e.what());
    } catch (...) {
      spdlog::error("http_client: callback threw a non-exception");
    }
  }

  // Housekeeping while anything waits or idles: time out waiting requests,
  // close connections idle too long.
  void arm_tick() {
    if (tick_armed || stopping) return;
    tick_armed = true;
    tick.expires_after(std::chrono::milliseconds(100));
    tick.async_wait([self = shared_from_this()](error_code ec) {
      self->tick_armed = false;
      if (ec || self->stopping) return;
      self->sweep();
    });
  }

  void sweep() {
    const auto now = steady::now();
    bool again = false;
    for (auto it = pools.begin(); it != pools.end();) {
      auto& pool = it->second;
      for (auto w = pool.waiting.begin(); w != pool.waiting.end();) {
        if (now >= (*w)->deadline) {
          auto c = std::move(*w);
          w = pool.waiting.erase(w);
          --waiting_total;
          fail(std::move(c), client_errc::timeout, "timed out waiting for a connection");
        } else {
          ++w;
        }
      }
      std::erase_if(pool.idle, [&](const std::shared_ptr<connection>& conn) {
        if (now - conn->idle_since <= cfg.idle_timeout) return false;
        drop(conn);
        return true;
      });
      again = again || !pool.waiting.empty() || !pool.idle.empty();
      if (pool.busy == 0 && pool.idle.empty() && pool.waiting.empty())
        it = pools.erase(it);
      else
        ++it;
    }
    if (again) arm_tick();
  }

  void shutdown() {
    stopping = true;
    tick.cancel();
    resolver.cancel();
    for (auto& [origin, pool] : pools) {
      for (auto& c : pool.waiting) fail(std::move(c), client_errc::stopped, "client stopped");
      pool.waiting.clear();
      for (auto& conn : pool.idle) drop(conn);
      pool.idle.clear();
    }
    waiting_total = 0;
    for (connection* conn : live) conn->close();  // their handlers fail with `stopped`
  }

  const client_config cfg;
  std::unordered_set<connection*> live;  // open connections (outlives ioc)
  asio::io_context ioc{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  ssl::context tls_ctx{ssl::context::tls_client};
  std::string tls_error;
  tcp::resolver resolver{ioc};
  asio::steady_timer tick{ioc};
  bool tick_armed = false;
  bool stopping = false;
  std::unordered_map<std::string, origin_pool> pools;
  size_t waiting_total = 0;

  // Any thread.
  std::atomic<bool> gate_closed{false};
  std::atomic<uint32_t> posting{0};
  std::atomic<uint64_t> requests{0}, connects{0}, reused{0}, retried{0}, failed{0};
};

}  // namespace detail

http_client::http_client(client_config cfg) : core_(std::make_shared<detail::client_core>(std::move(cfg))) {
  core_->work.emplace(core_->ioc.get_executor());
  thread_ = std::thread([core = core_] {
    for (;;) {
      try {
        core->ioc.run();
        return;
      } catch (const std::exception& e) {
        spdlog::error("http_client: io thread caught: {}", e.what());
      }
    }
  });
}

http_client::~http_client() { stop(); }

void http_client::stop() {
  if (stopped_.exchange(true)) return;
  auto& core = *core_;
  core.gate_closed.store(true);
  while (core.posting.load() != 0) std::this_thread::yield();
  asio::post(core.ioc, [c = core_] { c->shutdown(); });
  core.work.reset();
  if (thread_.joinable()) thread_.join();
}

void http_client::request(http::verb method, std::string_view url, std::string body, header_list headers,
                          std::chrono::milliseconds timeout, callback done) {
  auto c = std::make_unique<detail::call>();
  c->done = std::move(done);
  c->deadline = steady::now() + timeout;
  core_->requests.fetch_add(1, std::memory_order_relaxed);
  try {
    auto parts = parse_url(url);
    if (!parts) {
      c->early = client_result{0, {}, {}, client_errc::invalid_request, "invalid URL: " + std::string(url)};
    } else {
      c->url = std::move(*parts);
      const bool default_port = c->url.port == (c->url.tls ? 443 : 80);
      const bool v6 = c->url.host.find(':') != std::string::npos;
      std::string host = v6 ? "[" + c->url.host + "]" : c->url.host;
      if (!default_port) host += ":" + std::to_string(c->url.port);
      c->origin = (c->url.tls ? "https://" : "http://") + host;
      auto& req = c->req;
      req.method(method);
      req.target(c->url.target);
      req.version(11);
      for (auto& [name, value] : headers) req.insert(name, value);
      if (req.find(http::field::host) == req.end()) req.set(http::field::host, host);
      if (req.find(http::field::user_agent) == req.end()) req.set(http::field::user_agent, core_->cfg.user_agent);
      req.body() = std::move(body);
      req.prepare_payload();
    }
  } catch (const std::exception& e) {
    c->early = client_result{0, {}, {}, client_errc::invalid_request, e.what()};
  }
  auto& core = *core_;
  core.posting.fetch_add(1);
  if (core.gate_closed.load()) {
    core.posting.fetch_sub(1);
    core.failed.fetch_add(1, std::memory_order_relaxed);
    if (c->done) c->done(client_result{0, {}, {}, client_errc::stopped, "client stopped"});
    return;
  }
  asio::post(core.ioc, [core = core_, c = std::move(c)]() mutable { core->submit(std::move(c)); });
  core.posting.fetch_sub(1);
}

http_client::stats http_client::snapshot() const noexcept {
  const auto& c = *core_;
  return stats{c.requests.load(std::memory_order_relaxed), c.connects.load(std::memory_order_relaxed),
               c.reused.load(std::memory_order_relaxed), c.retried.load(std::memory_order_relaxed),
               c.failed.load(std::memory_order_relaxed)};
}

}  // namespace billing::net
