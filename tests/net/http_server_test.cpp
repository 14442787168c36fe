// http_server over real sockets on 127.0.0.1 (ephemeral ports).
#include <atomic>
#include <cerrno>
#include <mutex>

#include <catch2/catch.hpp>

#include "net/http_framing.hpp"
#include "net/http_server.hpp"
#include "test_util.hpp"

using namespace billing::net;
using namespace billing::net::test;

namespace {

handler echo_handler() {
  return [](request&& req, responder reply) {
    reply(text_response(http::status::ok,
                        std::string(req.method_string()) + " " + std::string(req.target()) + " " + req.body()));
  };
}

handler parking_handler(parked& p) {
  return [&p](request&&, responder reply) { p.add(std::move(reply)); };
}

// Every target the handler was called for; answers "<target> <body>".
class seen_targets {
 public:
  handler make() {
    return [this](request&& req, responder reply) {
      {
        std::lock_guard lock{m_};
        targets_.emplace_back(req.target());
      }
      reply(text_response(http::status::ok, std::string(req.target()) + " " + req.body()));
    };
  }
  std::vector<std::string> list() {
    std::lock_guard lock{m_};
    return targets_;
  }

 private:
  std::mutex m_;
  std::vector<std::string> targets_;
};

}  // namespace

TEST_CASE("http_server: request and response round trip", "[net][http_server]") {
  auto srv = start_server({}, echo_handler());
  raw_conn c{srv->port()};
  REQUIRE(c.connected());
  REQUIRE(c.send(make_request("POST", "/echo?x=1", "hello")));
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 200);
  CHECK(res->version() == 11);
  CHECK(res->body() == "POST /echo?x=1 hello");
  CHECK((*res)[http::field::server] == "billingd");
  CHECK((*res)[http::field::content_length] == "20");
  CHECK(res->keep_alive());
  CHECK(srv->snapshot().requests == 1);

  SECTION("HTTP/1.0 without keep-alive gets 1.0 and a close") {
    REQUIRE(c.send("GET /old HTTP/1.0\r\n\r\n"));
    auto old = c.read_response();
    REQUIRE(old);
    CHECK(old->version() == 10);
    CHECK(old->body() == "GET /old ");
    CHECK_FALSE(old->keep_alive());
    CHECK(c.wait_closed());
  }
  SECTION("HEAD gets the headers of the reply without its body") {
    REQUIRE(c.send(make_request("HEAD", "/h", "")));
    REQUIRE(c.send(make_request("GET", "/after", "")));
    // The raw reader would take a body after HEAD's headers: read by hand.
    auto head = c.read_response_head();
    REQUIRE(head);
    CHECK(head->result_int() == 200);
    CHECK((*head)[http::field::content_length] == "8");  // "HEAD /h "
    auto next = c.read_response();
    REQUIRE(next);
    CHECK(next->body() == "GET /after ");
  }
  SECTION("a reply that cannot carry a body becomes 500") {
    srv.reset();
    srv = start_server({}, [](request&&, responder reply) {
      reply(text_response(http::status::no_content, "not allowed"));
    });
    raw_conn d{srv->port()};
    REQUIRE(d.send(make_request("GET", "/", "")));
    auto res = d.read_response();
    REQUIRE(res);
    CHECK(res->result_int() == 500);
    CHECK(d.wait_closed());
  }
  SECTION("the handler may ask to close") {
    srv.reset();
    srv = start_server({}, [](request&&, responder reply) {
      auto res = text_response(http::status::ok, "bye");
      res.keep_alive(false);
      res.set(http::field::server, "custom");
      reply(std::move(res));
    });
    raw_conn d{srv->port()};
    REQUIRE(d.send(make_request("GET", "/", "")));
    auto bye = d.read_response();
    REQUIRE(bye);
    CHECK_FALSE(bye->keep_alive());
    CHECK((*bye)[http::field::server] == "custom");
    CHECK(d.wait_closed());
  }
}

TEST_CASE("http_server: keep-alive serves several requests on one connection", "[net][http_server]") {
  auto srv = start_server({}, echo_handler());
  raw_conn c{srv->port()};
  for (int i = 0; i < 5; ++i) {
    REQUIRE(c.send(make_request("POST", "/n", std::to_string(i))));
    auto res = c.read_response();
    REQUIRE(res);
    CHECK(res->body() == "POST /n " + std::to_string(i));
    CHECK(res->keep_alive());
  }
  const auto s = srv->snapshot();
  CHECK(s.accepted == 1);
  CHECK(s.active == 1);
  CHECK(s.requests == 5);
}

TEST_CASE("http_server: pipelined replies keep request order whatever order they come in", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));
  raw_conn c{srv->port()};
  std::string batch;
  for (int i = 0; i < 5; ++i) batch += make_request("POST", "/p", std::to_string(i));
  REQUIRE(c.send(batch));
  REQUIRE(eventually([&] { return p.size() == 5; }));
  // Answer 4, 3, 2, 1 first: nothing may reach the client before 0 is answered.
  for (size_t i = 4; i >= 1; --i) p.take(i)(text_response(http::status::ok, std::to_string(i)));
  CHECK(c.nothing_within(150ms));
  p.take(0)(text_response(http::status::ok, "0"));
  for (int i = 0; i < 5; ++i) {
    auto res = c.read_response();
    REQUIRE(res);
    CHECK(res->body() == std::to_string(i));
  }
}

TEST_CASE("http_server: pipelining is bounded by max_queued_per_connection", "[net][http_server]") {
  parked p;
  server_config cfg;
  cfg.max_queued_per_connection = 2;
  auto srv = start_server(cfg, parking_handler(p));
  raw_conn c{srv->port()};
  std::string batch;
  for (int i = 0; i < 6; ++i) batch += make_request("POST", "/q", std::to_string(i));
  REQUIRE(c.send(batch));
  REQUIRE(eventually([&] { return p.size() == 2; }));
  std::this_thread::sleep_for(150ms);
  CHECK(p.size() == 2);  // the third waits until a reply is written
  for (size_t i = 0; i < 6; ++i) {
    REQUIRE(eventually([&] { return p.size() > i; }));
    CHECK(p.size() <= i + 2);
    p.take(i)(text_response(http::status::ok, std::to_string(i)));
    auto res = c.read_response();
    REQUIRE(res);
    CHECK(res->body() == std::to_string(i));
  }
}

TEST_CASE("http_server: responder called later from another thread", "[net][http_server]") {
  delayed later;
  auto srv = start_server({}, [&later](request&& req, responder reply) {
    later.after(100ms, [reply, body = std::move(req.body())] { reply(text_response(http::status::accepted, body)); });
  });
  raw_conn c{srv->port()};
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(c.send(make_request("POST", "/late", "payload")));
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(std::chrono::steady_clock::now() - t0 >= 90ms);
  CHECK(res->result_int() == 202);
  CHECK(res->body() == "payload");
}

TEST_CASE("http_server: several io threads, many connections, replies from a worker", "[net][http_server]") {
  delayed worker;
  server_config cfg;
  cfg.io_threads = 2;
  auto srv = start_server(cfg, [&worker](request&& req, responder reply) {
    worker.after(0ms, [reply, body = std::move(req.body())] { reply(text_response(http::status::ok, body)); });
  });
  std::vector<std::thread> clients;
  std::atomic<int> good{0};
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      raw_conn c{srv->port()};
      for (int i = 0; i < 50; ++i) {
        const auto body = std::to_string(t) + ":" + std::to_string(i);
        if (!c.send(make_request("POST", "/", body))) return;
        auto res = c.read_response();
        if (res && res->body() == body) ++good;
      }
    });
  for (auto& t : clients) t.join();
  CHECK(good == 400);
  CHECK(srv->snapshot().requests == 400);
}

TEST_CASE("http_server: a client that leaves before the reply is harmless", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));

  SECTION("orderly close") {
    raw_conn c{srv->port()};
    REQUIRE(c.send(make_request("POST", "/gone", "x")));
    REQUIRE(eventually([&] { return p.size() == 1; }));
    c.close();
    std::this_thread::sleep_for(50ms);
    p.take(0)(text_response(http::status::ok, "too late"));
    p.take(0)(text_response(http::status::ok, "twice"));  // a second call is ignored
  }
  SECTION("reset") {
    raw_conn c{srv->port()};
    REQUIRE(c.send(make_request("POST", "/gone", "x")));
    REQUIRE(eventually([&] { return p.size() == 1; }));
    c.reset_close();
    REQUIRE(eventually([&] { return srv->snapshot().active == 0; }));
    p.take(0)(text_response(http::status::ok, "too late"));
  }
  CHECK(eventually([&] { return srv->snapshot().active == 0; }));
  // The server still serves others.
  raw_conn d{srv->port()};
  REQUIRE(d.send(make_request("POST", "/next", "y")));
  REQUIRE(eventually([&] { return p.size() == 2; }));
  p.take(1)(text_response(http::status::ok, "fine"));
  auto res = d.read_response();
  REQUIRE(res);
  CHECK(res->body() == "fine");
}

TEST_CASE("http_server: a responder outliving the server does nothing", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));
  raw_conn c{srv->port()};
  REQUIRE(c.send(make_request("POST", "/", "x")));
  REQUIRE(eventually([&] { return p.size() == 1; }));
  srv->stop(50ms);
  srv.reset();
  p.take(0)(text_response(http::status::ok, "after"));
  responder{}(text_response(http::status::ok, "empty"));
  CHECK(c.wait_closed());
}

TEST_CASE("http_server: a handler that throws gets 500", "[net][http_server]") {
  auto srv = start_server({}, [](request&&, responder) { throw std::runtime_error("boom"); });
  raw_conn c{srv->port()};
  REQUIRE(c.send(make_request("GET", "/", "")));
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 500);
  CHECK(res->keep_alive());
}

TEST_CASE("http_server: oversized body gets 413 and a close", "[net][http_server]") {
  server_config cfg;
  cfg.body_limit = 1024;
  auto srv = start_server(cfg, echo_handler());
  raw_conn c{srv->port()};
  SECTION("declared by Content-Length") {
    REQUIRE(c.send(make_request("POST", "/big", std::string(4096, 'a'))));
  }
  SECTION("chunked") {
    std::string chunked = "POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 4; ++i) chunked += "200\r\n" + std::string(512, 'b') + "\r\n";
    chunked += "0\r\n\r\n";
    REQUIRE(c.send(chunked));
  }
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 413);
  CHECK(res->body().find(R"({"error":{"code":"payload_too_large","message":")") == 0);
  CHECK((*res)[http::field::content_type] == "application/json");
  CHECK_FALSE(res->keep_alive());
  CHECK(c.wait_closed());
  // Exactly at the limit is fine.
  raw_conn d{srv->port()};
  REQUIRE(d.send(make_request("POST", "/ok", std::string(1024, 'c'))));
  auto ok = d.read_response();
  REQUIRE(ok);
  CHECK(ok->result_int() == 200);
}

TEST_CASE("http_server: malformed HTTP gets 400 and a close", "[net][http_server]") {
  auto srv = start_server({}, echo_handler());
  raw_conn c{srv->port()};
  SECTION("garbage") { REQUIRE(c.send("GARBAGE\r\n\r\n")); }
  SECTION("bad header line") { REQUIRE(c.send("GET / HTTP/1.1\r\nHost x\r\n\r\n")); }
  SECTION("bad content length") { REQUIRE(c.send("POST / HTTP/1.1\r\nContent-Length: zz\r\n\r\n")); }
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 400);
  CHECK(res->body().find(R"("code":"bad_request")") != std::string::npos);
  CHECK_FALSE(res->keep_alive());
  CHECK(c.wait_closed());
  CHECK(srv->snapshot().requests == 0);
}

TEST_CASE("http_server: an error after good pipelined requests comes after their replies", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));
  raw_conn c{srv->port()};
  REQUIRE(c.send(make_request("POST", "/a", "1") + "NOT HTTP\r\n\r\n"));
  REQUIRE(eventually([&] { return p.size() == 1; }));
  CHECK(c.nothing_within(100ms));
  p.take(0)(text_response(http::status::ok, "first"));
  auto first = c.read_response();
  REQUIRE(first);
  CHECK(first->body() == "first");
  auto bad = c.read_response();
  REQUIRE(bad);
  CHECK(bad->result_int() == 400);
  CHECK(c.wait_closed());
}

TEST_CASE("http_server: header over header_limit gets 431", "[net][http_server]") {
  server_config cfg;
  cfg.header_limit = 1024;
  auto srv = start_server(cfg, echo_handler());
  raw_conn c{srv->port()};
  REQUIRE(c.send("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'h') + "\r\n\r\n"));
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 431);
  CHECK(res->body().find(R"("code":"header_too_large")") != std::string::npos);
  CHECK(c.wait_closed());
}

TEST_CASE("http_server: Expect 100-continue", "[net][http_server]") {
  auto srv = start_server({}, echo_handler());
  raw_conn c{srv->port()};
  REQUIRE(c.send("POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto interim = c.read_response(2s);
  REQUIRE(interim);
  CHECK(interim->result_int() == 100);
  REQUIRE(c.send("body"));
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->body() == "POST /c body");
}

TEST_CASE("http_server: timeouts close slow and idle clients", "[net][http_server]") {
  server_config cfg;
  cfg.read_timeout = std::chrono::seconds(1);
  cfg.idle_timeout = std::chrono::seconds(1);
  auto srv = start_server(cfg, echo_handler());
  const auto t0 = std::chrono::steady_clock::now();
  raw_conn c{srv->port()};

  SECTION("a request that never completes") {
    REQUIRE(c.send("POST / HTTP/1.1\r\nHost: x\r\n"));
    CHECK(c.wait_closed(4s));
  }
  SECTION("a slowloris that keeps sending cannot extend the deadline") {
    const std::string req = make_request("POST", "/", std::string(100, 'z'));
    bool closed = false;
    for (size_t i = 0; i < req.size() - 1 && !closed; ++i) {
      if (!c.send(req.substr(i, 1))) break;
      closed = c.wait_closed(100ms);
    }
    CHECK((closed || c.wait_closed(2s)));
  }
  SECTION("a connection that never sends") { CHECK(c.wait_closed(4s)); }
  SECTION("an idle keep-alive connection") {
    REQUIRE(c.send(make_request("GET", "/", "")));
    REQUIRE(c.read_response());
    CHECK(c.wait_closed(4s));
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(elapsed >= 900ms);
  CHECK(elapsed < 3s);
  CHECK(eventually([&] { return srv->snapshot().active == 0; }));
}

TEST_CASE("http_server: past max_connections: 503 with Retry-After, then close", "[net][http_server]") {
  server_config cfg;
  cfg.max_connections = 2;
  auto srv = start_server(cfg, echo_handler());
  raw_conn a{srv->port()}, b{srv->port()};
  for (auto* c : {&a, &b}) {
    REQUIRE(c->send(make_request("GET", "/", "")));
    REQUIRE(c->read_response());
  }
  raw_conn over{srv->port()};
  REQUIRE(over.send(make_request("GET", "/", "")));
  auto res = over.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 503);
  CHECK((*res)[http::field::retry_after] == "1");
  CHECK(res->body().find(R"("code":"overloaded")") != std::string::npos);
  CHECK(over.wait_closed());
  CHECK(srv->snapshot().rejected_overload == 1);
  CHECK(srv->snapshot().active == 2);

  a.close();
  REQUIRE(eventually([&] { return srv->snapshot().active == 1; }));
  raw_conn again{srv->port()};
  REQUIRE(again.send(make_request("GET", "/again", "")));
  auto ok = again.read_response();
  REQUIRE(ok);
  CHECK(ok->result_int() == 200);
}

TEST_CASE("http_server: stop drains requests in flight, then refuses connections", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));
  const auto port = srv->port();
  raw_conn busy{port}, idle{port};
  REQUIRE(idle.send(make_request("GET", "/idle", "")));
  REQUIRE(eventually([&] { return p.size() == 1; }));
  p.take(0)(text_response(http::status::ok, "idle"));
  REQUIRE(idle.read_response());
  REQUIRE(busy.send(make_request("POST", "/busy", "x")));
  REQUIRE(eventually([&] { return p.size() == 2; }));

  delayed later;
  later.after(300ms, [r = p.take(1)] { r(text_response(http::status::ok, "answered while draining")); });
  const auto t0 = std::chrono::steady_clock::now();
  srv->stop(std::chrono::seconds(5));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 250ms);
  CHECK(took < 3s);

  auto res = busy.read_response();
  REQUIRE(res);
  CHECK(res->body() == "answered while draining");
  CHECK_FALSE(res->keep_alive());
  CHECK(busy.wait_closed());
  CHECK(idle.wait_closed());
  CHECK(connect_errno(port) == ECONNREFUSED);
  CHECK(srv->snapshot().active == 0);
}

TEST_CASE("http_server: stop gives up on a request never answered after the drain time", "[net][http_server]") {
  parked p;
  auto srv = start_server({}, parking_handler(p));
  raw_conn c{srv->port()};
  REQUIRE(c.send(make_request("POST", "/never", "x")));
  REQUIRE(eventually([&] { return p.size() == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  srv->stop(300ms);
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 280ms);
  CHECK(took < 2s);
  CHECK(c.wait_closed(1s));
  p.take(0)(text_response(http::status::ok, "after stop"));  // harmless
}

TEST_CASE("http_server: start reports a port in use", "[net][http_server]") {
  auto first = start_server({}, echo_handler());
  server_config cfg;
  cfg.port = first->port();
  http_server second{cfg, echo_handler()};
  std::string error;
  CHECK_FALSE(second.start(error));
  CHECK(error.find("bind 127.0.0.1:" + std::to_string(first->port())) == 0);
  CHECK(error.find("in use") != std::string::npos);

  server_config bad;
  bad.address = "not-an-address";
  http_server third{bad, echo_handler()};
  CHECK_FALSE(third.start(error));
  CHECK(error.find("not-an-address") != std::string::npos);
}

// ---------------------------------------------------------------------------
// Framing: no ambiguous message reaches the handler, nothing after it is
// parsed. Each bad message is followed on the same connection by a request a
// lenient parser would execute.

TEST_CASE("http_server: ambiguous or malformed framing is refused and nothing after it is parsed",
          "[net][http_server][framing]") {
  struct framing_case {
    const char* name;
    std::string bytes;
    unsigned status;
  };
  const std::string post = "POST /bad HTTP/1.1\r\nHost: x\r\n";
  const std::string get = "GET /bad HTTP/1.1\r\n";
  const std::vector<framing_case> cases{
      // 1. Transfer-Encoding other than exactly `chunked`
      {"TE chunked, identity with CL 0", post + "Transfer-Encoding: chunked, identity\r\nContent-Length: 0\r\n\r\n", 400},
      {"TE identity", post + "Transfer-Encoding: identity\r\n\r\n", 400},
      {"TE gzip, chunked", post + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE chunked, chunked", post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE chunked;foo", post + "Transfer-Encoding: chunked;foo\r\n\r\n0\r\n\r\n", 400},
      {"TE chunked,", post + "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400},
      {"two TE fields, chunked last", post + "Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"two TE chunked fields", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"empty TE", post + "Transfer-Encoding: \r\n\r\n", 400},
      {"TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n", 400},
      // 2. Transfer-Encoding with Content-Length
      {"TE chunked then CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400},
      {"CL then TE chunked", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      {"TE chunked with CL 0", post + "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n", 400},
      // 3. Content-Length
      {"two equal CL fields", post + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
      {"two different CL fields", post + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400},
      {"CL list", post + "Content-Length: 1, 1\r\n\r\nx", 400},
      {"CL +1", post + "Content-Length: +1\r\n\r\nx", 400},
      {"CL hex", post + "Content-Length: 0x1\r\n\r\nx", 400},
      // 4. Host
      {"HTTP/1.1 without Host", get + "\r\n", 400},
      {"two Host fields", get + "Host: a\r\nHost: b\r\n\r\n", 400},
      // 5. obs-fold and control characters
      {"obs-fold with SP", get + "Host: x\r\nX-A: b\r\n c\r\n\r\n", 400},
      {"obs-fold with HTAB", get + "Host: x\r\nX-A: b\r\n\tc\r\n\r\n", 400},
      {"obs-fold hiding TE", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 400},
      {"NUL in a value", get + "Host: x\r\nX-A: b" + std::string(1, '\0') + "c\r\n\r\n", 400},
      {"SOH in a value", get + "Host: x\r\nX-A: b\x01" "c\r\n\r\n", 400},
      {"DEL in a value", get + "Host: x\r\nX-A: b\x7f" "c\r\n\r\n", 400},
      {"bare CR in a value", get + "Host: x\r\nX-A: b\rc\r\n\r\n", 400},
      {"control character in a name", get + "Host: x\r\nX\x01" "A: b\r\n\r\n", 400},
      // 6. Transfer-Encoding on HTTP/1.0
      {"HTTP/1.0 with TE chunked", "POST /bad HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
      // 7. oversized request line or header
      {"oversized request line", "GET /" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
      {"oversized header", get + "Host: x\r\nX-Big: " + std::string(2000, 'h') + "\r\n\r\n", 431},
  };
  const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";

  server_config cfg;
  cfg.header_limit = 1024;
  seen_targets seen;
  auto srv = start_server(cfg, seen.make());
  uint64_t framing_before = 0;
  for (const auto& tc : cases) {
    INFO(tc.name);
    raw_conn c{srv->port()};
    REQUIRE(c.send(tc.bytes + smuggled));
    auto res = c.read_response();
    REQUIRE(res);
    CHECK(res->result_int() == tc.status);
    CHECK((*res)[http::field::connection] == "close");
    CHECK((*res)[http::field::content_type] == "application/json");
    CHECK(c.wait_closed());
    CHECK(seen.list().empty());
    const auto s = srv->snapshot();
    CHECK(s.requests == 0);
    // 431 is a size bound, not a framing fault.
    CHECK(s.rejected_framing == framing_before + (tc.status == 400 ? 1 : 0));
    framing_before = s.rejected_framing;
  }
  CHECK(eventually([&] { return srv->snapshot().active == 0; }));
}

TEST_CASE("http_server: well-formed chunked and Content-Length requests still work, pipelined",
          "[net][http_server][framing]") {
  auto srv = start_server({}, [](request&& req, responder reply) {
    reply(text_response(http::status::ok, std::string(req.target()) + " " + req.body() +
                                              " hosts=" + std::to_string(req.count(http::field::host))));
  });
  raw_conn c{srv->port()};
  REQUIRE(c.send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:  Chunked \r\n\r\n"
                 "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n" +
                 make_request("POST", "/length", "body") +
                 // Trailer fields are dropped: they may not add a second Host.
                 "POST /trailer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n0\r\nHost: evil\r\n\r\n" +
                 "GET /tab HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\nContent-Length: 007\r\n\r\nseven!!"));
  for (const char* want : {"/chunked hello world hosts=1", "/length body hosts=1", "/trailer abc hosts=1",
                           "/tab seven!! hosts=1"}) {
    auto res = c.read_response();
    REQUIRE(res);
    CHECK(res->result_int() == 200);
    CHECK(res->body() == want);
    CHECK(res->keep_alive());
  }
  // HTTP/1.0 needs no Host.
  REQUIRE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  auto old = c.read_response();
  REQUIRE(old);
  CHECK(old->body() == "/old  hosts=0");
  CHECK(c.wait_closed());
  CHECK(srv->snapshot().rejected_framing == 0);
}

TEST_CASE("http_server: header_scanner sees obs-fold across pieces", "[net][http_server][framing]") {
  header_scanner s;
  CHECK(s.feed("GET / HTTP/1.1\r\nX-A: b\r\n"));
  CHECK_FALSE(s.feed(" c\r\n\r\n"));
  CHECK(std::string_view{s.violation()}.find("folding") != std::string_view::npos);
  s.reset();
  CHECK(s.feed("GET / HTTP/1.1\r\nX-A: b\tc\r\n\r\n"));
  CHECK(s.violation() == nullptr);
}

TEST_CASE("http_server: max_requests_per_connection closes after the Nth reply", "[net][http_server]") {
  CHECK(server_config{}.max_requests_per_connection == 1000);
  server_config cfg;
  cfg.max_requests_per_connection = 3;
  seen_targets seen;
  auto srv = start_server(cfg, seen.make());

  SECTION("pipelined") {
    raw_conn c{srv->port()};
    std::string batch;
    for (int i = 0; i < 5; ++i) batch += make_request("GET", "/r" + std::to_string(i), "");
    REQUIRE(c.send(batch));
    for (int i = 0; i < 3; ++i) {
      auto res = c.read_response();
      REQUIRE(res);
      CHECK(res->body() == "/r" + std::to_string(i) + " ");
      CHECK(res->keep_alive() == (i < 2));
      if (i == 2) CHECK((*res)[http::field::connection] == "close");
    }
    CHECK(c.wait_closed());
    CHECK(seen.list() == std::vector<std::string>{"/r0", "/r1", "/r2"});
  }
  SECTION("one after another") {
    raw_conn c{srv->port()};
    for (int i = 0; i < 3; ++i) {
      REQUIRE(c.send(make_request("GET", "/s" + std::to_string(i), "")));
      auto res = c.read_response();
      REQUIRE(res);
      CHECK(res->keep_alive() == (i < 2));
    }
    c.send(make_request("GET", "/s3", ""));  // may race with the close
    CHECK(c.wait_closed());
    CHECK(seen.list() == std::vector<std::string>{"/s0", "/s1", "/s2"});
  }
  CHECK(srv->snapshot().requests == 3);
  CHECK(eventually([&] { return srv->snapshot().active == 0 && srv->snapshot().buffered_bytes == 0; }));
}

TEST_CASE("http_server: max_buffered_bytes refuses the connection that crosses it", "[net][http_server]") {
  CHECK(server_config{}.max_buffered_bytes == size_t{64} << 20);
  parked p;
  server_config cfg;
  cfg.max_buffered_bytes = 64 * 1024;
  auto srv = start_server(cfg, parking_handler(p));
  auto buffered = [&] { return srv->snapshot().buffered_bytes; };
  const std::string head = "POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n";
  const std::string part = head + std::string(25000, 'a');  // a partial body
  const std::string rest(5000, 'b');
  const uint64_t whole = head.size() + 30000;

  raw_conn a{srv->port()}, b{srv->port()}, c{srv->port()};
  REQUIRE(a.send(part));
  REQUIRE(eventually([&] { return buffered() == part.size(); }));
  REQUIRE(b.send(part));
  REQUIRE(eventually([&] { return buffered() == 2 * part.size(); }));
  REQUIRE(c.send(part));  // 3 x 25 KB > 64 KiB
  auto res = c.read_response();
  REQUIRE(res);
  CHECK(res->result_int() == 503);
  CHECK((*res)[http::field::retry_after] == "1");
  CHECK((*res)[http::field::connection] == "close");
  CHECK(res->body().find(R"({"error":{"code":"overloaded",)") == 0);
  CHECK(c.wait_closed());
  CHECK(srv->snapshot().rejected_buffer == 1);
  CHECK(eventually([&] { return buffered() == 2 * part.size(); }));  // c's bytes released

  // The others keep working; a request handed on is held until its reply.
  REQUIRE(a.send(rest));
  REQUIRE(eventually([&] { return p.size() == 1; }));
  CHECK(buffered() == whole + part.size());
  p.take(0)(text_response(http::status::ok, "a"));
  auto ra = a.read_response();
  REQUIRE(ra);
  CHECK(ra->body() == "a");
  CHECK(eventually([&] { return buffered() == part.size(); }));
  REQUIRE(b.send(rest));
  REQUIRE(eventually([&] { return p.size() == 2; }));
  p.take(1)(text_response(http::status::ok, "b"));
  auto rb = b.read_response();
  REQUIRE(rb);
  CHECK(rb->body() == "b");
  CHECK(eventually([&] { return buffered() == 0; }));

  // Closing releases what a connection held: a partial request, and a request
  // whose reply was never written.
  REQUIRE(a.send(part));
  REQUIRE(b.send(make_request("POST", "/parked", "x")));
  REQUIRE(eventually([&] { return p.size() == 3; }));
  REQUIRE(eventually([&] { return buffered() == part.size() + make_request("POST", "/parked", "x").size(); }));
  a.close();
  b.reset_close();
  CHECK(eventually([&] { return buffered() == 0 && srv->snapshot().active == 0; }));
  CHECK(srv->snapshot().rejected_buffer == 1);
  p.take(2)(text_response(http::status::ok, "too late"));  // harmless
  CHECK(buffered() == 0);
}
