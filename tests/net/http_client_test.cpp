// http_client against http_server (and a small TLS server) on 127.0.0.1.
#include <atomic>
#include <future>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <catch2/catch.hpp>

#include "net/http_client.hpp"
#include "net/http_server.hpp"
#include "test_util.hpp"

using namespace billing::net;
using namespace billing::net::test;
namespace asio = boost::asio;

namespace {

// Blocks the test thread until `done` is called.
struct waiter {
  std::promise<client_result> p;
  std::future<client_result> f = p.get_future();
  http_client::callback cb() {
    return [this](client_result r) { p.set_value(std::move(r)); };
  }
  client_result get(std::chrono::milliseconds timeout = 10s) {
    REQUIRE(f.wait_for(timeout) == std::future_status::ready);
    return f.get();
  }
};

std::string url(uint16_t port, std::string_view target = "/hook") {
  return "http://127.0.0.1:" + std::to_string(port) + std::string(target);
}

handler echo_handler() {
  return [](request&& req, responder reply) {
    auto res = text_response(http::status::ok, std::string(req.target()) + "|" + req.body());
    res.set("X-Got-Type", req[http::field::content_type]);
    res.set("X-Got-Sig", req["Stripe-Signature"]);
    reply(std::move(res));
  };
}

// Minimal blocking TLS/1.1 server for the https tests: one connection at a
// time, keep-alive, echoes the body.
class tls_server {
 public:
  explicit tls_server(const self_signed& cert) {
    ctx_.use_certificate_chain(asio::buffer(cert.cert_pem));
    ctx_.use_private_key(asio::buffer(cert.key_pem), asio::ssl::context::pem);
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~tls_server() {
    stop_ = true;
    connect_errno(port_);  // wakes accept()
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int handshake_failures() const { return failures_; }

 private:
  void run() {
    while (!stop_) {
      asio::ip::tcp::socket s{ioc_};
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) continue;
      asio::ssl::stream<asio::ip::tcp::socket> stream{std::move(s), ctx_};
      if (stream.handshake(asio::ssl::stream_base::server, ec)) {
        ++failures_;
        continue;
      }
      boost::beast::flat_buffer buf;
      for (;;) {
        request req;
        http::read(stream, buf, req, ec);
        if (ec) break;
        auto res = text_response(http::status::ok, "tls|" + req.body());
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        http::write(stream, res, ec);
        if (ec || !req.keep_alive()) break;
      }
    }
  }

  asio::io_context ioc_;
  asio::ssl::context ctx_{asio::ssl::context::tls_server};
  asio::ip::tcp::acceptor acceptor_{ioc_};
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("parse_url", "[net][http_client]") {
  auto u = parse_url("http://127.0.0.1:8080/webhook?x=1#frag");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == 8080);
  CHECK(u->target == "/webhook?x=1");
  u = parse_url("HTTPS://api.stripe.com");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->port == 443);
  CHECK(u->target == "/");
  u = parse_url("http://[::1]:9/a");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == 9);
  u = parse_url("http://h?q");
  REQUIRE(u);
  CHECK(u->target == "/?q");
  for (const char* bad : {"", "ftp://x/", "http://", "http:///x", "http://h:/", "http://h:0/", "http://h:70000/",
                          "http://u@h/", "http://h:1x/", "http://h/a b", "http://h/a\r\nX: y", "http://[::1/",
                          "http://h h/"})
    CHECK_FALSE(parse_url(bad));
}

TEST_CASE("http_client: post to the server", "[net][http_client]") {
  auto srv = start_server({}, echo_handler());
  http_client client;
  waiter w;
  client.post(url(srv->port()), R"({"a":1})", {{"Content-Type", "application/json"}, {"Stripe-Signature", "t=1,v1=ab"}},
              5s, w.cb());
  auto r = w.get();
  INFO(r.error);
  REQUIRE(r.ok());
  CHECK(r.status == 200);
  CHECK(r.body == R"(/hook|{"a":1})");
  CHECK(r.headers["X-Got-Type"] == "application/json");
  CHECK(r.headers["X-Got-Sig"] == "t=1,v1=ab");
  CHECK(r.headers[http::field::server] == "billingd");

  SECTION("a non-2xx status is a result, not an error") {
    auto srv2 = start_server({}, [](request&&, responder reply) { reply(text_response(http::status::not_found, "no")); });
    waiter w2;
    client.request(http::verb::get, url(srv2->port()), "", {}, 5s, w2.cb());
    auto r2 = w2.get();
    CHECK(r2.ok());
    CHECK(r2.status == 404);
    CHECK(r2.body == "no");
  }
}

TEST_CASE("http_client: keep-alive reuses one connection", "[net][http_client]") {
  auto srv = start_server({}, echo_handler());
  http_client client;
  for (int i = 0; i < 10; ++i) {
    waiter w;
    client.post(url(srv->port()), std::to_string(i), {}, 5s, w.cb());
    auto r = w.get();
    REQUIRE(r.ok());
    CHECK(r.body == "/hook|" + std::to_string(i));
  }
  CHECK(srv->snapshot().accepted == 1);
  CHECK(client.snapshot().connects == 1);
  CHECK(client.snapshot().reused == 9);
}

TEST_CASE("http_client: concurrent requests are bounded per host", "[net][http_client]") {
  delayed worker;
  auto srv = start_server({}, [&worker](request&& req, responder reply) {
    worker.after(5ms, [reply, b = std::move(req.body())] { reply(text_response(http::status::ok, b)); });
  });
  client_config cfg;
  cfg.max_connections_per_host = 4;
  http_client client{cfg};
  constexpr int n = 100;
  std::atomic<int> ok{0}, done{0};
  for (int i = 0; i < n; ++i)
    client.post(url(srv->port()), std::to_string(i), {}, 10s, [&, i](client_result r) {
      if (r.ok() && r.status == 200 && r.body == std::to_string(i)) ++ok;
      ++done;
    });
  REQUIRE(eventually([&] { return done == n; }, 15s));
  CHECK(ok == n);
  CHECK(srv->snapshot().accepted <= 4);
  CHECK(client.snapshot().connects <= 4);
}

TEST_CASE("http_client: a server that never answers times out", "[net][http_client]") {
  parked p;
  auto srv = start_server({}, [&p](request&&, responder reply) { p.add(std::move(reply)); });
  http_client client;
  waiter w;
  const auto t0 = std::chrono::steady_clock::now();
  client.post(url(srv->port()), "x", {}, 300ms, w.cb());
  auto r = w.get();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.code == client_errc::timeout);
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
  CHECK(took >= 280ms);
  CHECK(took < 2s);
  CHECK(client.snapshot().failed == 1);

  SECTION("requests waiting for a connection time out too") {
    client_config cfg;
    cfg.max_connections_per_host = 1;
    http_client one{cfg};
    waiter a, b;
    one.post(url(srv->port()), "a", {}, 300ms, a.cb());
    one.post(url(srv->port()), "b", {}, 300ms, b.cb());
    CHECK(a.get().code == client_errc::timeout);
    CHECK(b.get().code == client_errc::timeout);
  }
  srv->stop(100ms);  // parked requests are never answered
}

TEST_CASE("http_client: connection refused and bad URLs are error results", "[net][http_client]") {
  http_client client;
  waiter w;
  client.post(url(unused_port()), "x", {}, 5s, w.cb());
  auto r = w.get();
  CHECK(r.code == client_errc::connect);
  CHECK(r.error.find("refused") != std::string::npos);

  waiter bad;
  client.post("not a url", "x", {}, 5s, bad.cb());
  CHECK(bad.get().code == client_errc::invalid_request);

  waiter host;
  client.post("http://no-such-host.invalid/x", "x", {}, 5s, host.cb());
  CHECK(host.get().code == client_errc::resolve);
}

TEST_CASE("http_client: a pooled connection the server closed is retried once", "[net][http_client]") {
  server_config scfg;
  scfg.idle_timeout = std::chrono::seconds(1);
  scfg.read_timeout = std::chrono::seconds(1);
  auto srv = start_server(scfg, echo_handler());
  http_client client;
  waiter first;
  client.post(url(srv->port()), "1", {}, 5s, first.cb());
  REQUIRE(first.get().ok());
  REQUIRE(eventually([&] { return srv->snapshot().active == 0; }, 5s));  // server closed it
  waiter second;
  client.post(url(srv->port()), "2", {}, 5s, second.cb());
  auto r = second.get();
  INFO(r.error);
  CHECK(r.ok());
  CHECK(r.body == "/hook|2");
  CHECK(client.snapshot().retried == 1);
  CHECK(client.snapshot().connects == 2);
}

TEST_CASE("http_client: bounded waiting, and stop fails what is pending", "[net][http_client]") {
  parked p;
  auto srv = start_server({}, [&p](request&&, responder reply) { p.add(std::move(reply)); });
  client_config cfg;
  cfg.max_connections_per_host = 1;
  cfg.max_pending = 1;
  http_client client{cfg};
  waiter a, b, c;
  client.post(url(srv->port()), "a", {}, 10s, a.cb());  // on the connection
  REQUIRE(eventually([&] { return p.size() == 1; }));
  client.post(url(srv->port()), "b", {}, 10s, b.cb());  // waits
  client.post(url(srv->port()), "c", {}, 10s, c.cb());  // no room
  CHECK(c.get().code == client_errc::overloaded);
  client.stop();
  CHECK(a.get().code == client_errc::stopped);
  CHECK(b.get().code == client_errc::stopped);
  waiter after;
  client.post(url(srv->port()), "d", {}, 10s, after.cb());
  CHECK(after.get().code == client_errc::stopped);
  srv->stop(100ms);
}

TEST_CASE("http_client: reply body over body_limit is a protocol error", "[net][http_client]") {
  auto srv = start_server({}, [](request&&, responder reply) {
    reply(text_response(http::status::ok, std::string(4096, 'r')));
  });
  client_config cfg;
  cfg.body_limit = 1024;
  http_client client{cfg};
  waiter w;
  client.post(url(srv->port()), "x", {}, 5s, w.cb());
  CHECK(w.get().code == client_errc::protocol);
}

TEST_CASE("http_client: a throwing callback does not kill the client", "[net][http_client]") {
  auto srv = start_server({}, echo_handler());
  http_client client;
  client.post(url(srv->port()), "x", {}, 5s, [](client_result) { throw std::runtime_error("callback"); });
  waiter w;
  client.post(url(srv->port()), "y", {}, 5s, w.cb());
  CHECK(w.get().ok());
}

TEST_CASE("http_client: https with a self-signed certificate", "[net][http_client][tls]") {
  const auto cert = make_self_signed();
  tls_server srv{cert};
  const std::string target = "https://127.0.0.1:" + std::to_string(srv.port()) + "/tls";

  SECTION("trusted: works and reuses the TLS connection") {
    client_config cfg;
    cfg.tls_ca_pem = cert.cert_pem;
    http_client client{cfg};
    for (int i = 0; i < 3; ++i) {
      waiter w;
      client.post(target, "secret" + std::to_string(i), {}, 5s, w.cb());
      auto r = w.get();
      INFO(r.error);
      REQUIRE(r.ok());
      CHECK(r.body == "tls|secret" + std::to_string(i));
    }
    CHECK(client.snapshot().connects == 1);
  }
  SECTION("untrusted: certificate verification fails") {
    http_client client;
    waiter w;
    client.post(target, "x", {}, 5s, w.cb());
    auto r = w.get();
    CHECK(r.code == client_errc::tls);
    CHECK(r.error.find("certificate verify failed") != std::string::npos);
  }
  SECTION("trusted but for another name: rejected") {
    const auto other = make_self_signed("DNS:example.test");
    tls_server named{other};
    client_config cfg;
    cfg.tls_ca_pem = other.cert_pem;
    http_client client{cfg};
    waiter w;
    client.post("https://127.0.0.1:" + std::to_string(named.port()) + "/", "x", {}, 5s, w.cb());
    auto r = w.get();
    CHECK(r.code == client_errc::tls);
  }
}

TEST_CASE("http_client: connect_timeout bounds connect and TLS handshake, not the exchange",
          "[net][http_client][tls]") {
  // A listener that never accepts: the kernel completes the TCP handshake
  // (backlog), the TLS handshake then gets no answer.
  asio::io_context ioc;
  asio::ip::tcp::acceptor mute{ioc, {asio::ip::make_address("127.0.0.1"), 0}};
  const auto port = mute.local_endpoint().port();
  client_config cfg;
  cfg.connect_timeout = 200ms;
  http_client client{cfg};

  waiter w;
  const auto t0 = std::chrono::steady_clock::now();
  client.post("https://127.0.0.1:" + std::to_string(port) + "/x", "x", {}, 5s, w.cb());
  auto r = w.get();
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(r.code == client_errc::timeout);
  CHECK(took >= 180ms);
  CHECK(took < 2s);  // not the request's 5 s

  SECTION("a slow answer on an established connection gets the request's whole timeout") {
    parked p;
    auto srv = start_server({}, [&p](request&&, responder reply) { p.add(std::move(reply)); });
    waiter slow;
    const auto t1 = std::chrono::steady_clock::now();
    client.post(url(srv->port()), "x", {}, 700ms, slow.cb());
    auto s = slow.get();
    const auto waited = std::chrono::steady_clock::now() - t1;
    CHECK(s.code == client_errc::timeout);
    CHECK(waited >= 650ms);  // longer than connect_timeout
    srv->stop(100ms);
  }
}
