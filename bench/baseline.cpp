// billing-baseline: the HTTP ceiling. A minimal Boost.Beast async server that
// reads any request (the same 3 KB webhook POSTs billing-bench sends to
// billingd), and answers 200 with a small JSON body, keep-alive. No
// signature check, no parsing, no actors, no database: what is left is the
// cost of HTTP on this machine, measured in the same run as billingd.
//
//   billing-baseline [--port=N] [--threads=N] [--address=A]
// Prints "billing-baseline listening on http://ADDRESS:PORT" and serves
// until SIGINT/SIGTERM. --threads (default 1) matches billingd's io_threads.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

constexpr std::string_view answer = R"({"received":true,"outcome":"applied"})";

// One connection: read a request, write 200, repeat until the peer closes.
class session : public std::enable_shared_from_this<session> {
public:
  explicit session(tcp::socket s) : stream_(std::move(s)) {}

  void start() { read(); }

private:
  void read() {
    parser_.emplace();
    parser_->body_limit(1 << 20);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return self->close();
      self->respond();
    });
  }

  void respond() {
    auto& req = parser_->get();
    res_ = {};
    res_.version(req.version());
    res_.result(http::status::ok);
    res_.set(http::field::server, "billing-baseline");
    res_.set(http::field::content_type, "application/json");
    res_.keep_alive(req.keep_alive());
    res_.body() = answer;
    res_.prepare_payload();
    http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->res_.keep_alive())
        return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
};

class listener : public std::enable_shared_from_this<listener> {
public:
  listener(asio::io_context& ioc, tcp::acceptor acceptor) : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted)
        return;
      if (!ec) {
        beast::error_code ignored;
        s.set_option(tcp::no_delay(true), ignored);
        std::make_shared<session>(std::move(s))->start();
      }
      self->accept();
    });
  }

  void stop() {
    beast::error_code ignored;
    acceptor_.close(ignored);
  }

private:
  asio::io_context& ioc_;
  tcp::acceptor acceptor_;
};

} // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1";
  unsigned port = 0;
  int threads = 1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    try {
      if (a.starts_with("--port="))
        port = static_cast<unsigned>(std::stoul(a.substr(7)));
      else if (a.starts_with("--threads="))
        threads = std::stoi(a.substr(10));
      else if (a.starts_with("--address="))
        address = a.substr(10);
      else {
        std::cerr << "usage: billing-baseline [--port=N] [--threads=N] [--address=A]\n";
        return 2;
      }
    } catch (const std::exception&) {
      std::cerr << "billing-baseline: bad value in '" << a << "'\n";
      return 2;
    }
  }
  if (port > 65535 || threads < 1 || threads > 64) {
    std::cerr << "billing-baseline: --port 0..65535, --threads 1..64\n";
    return 2;
  }
  asio::io_context ioc{threads};
  beast::error_code ec;
  tcp::endpoint ep{asio::ip::make_address(address, ec), static_cast<uint16_t>(port)};
  if (ec) {
    std::cerr << "billing-baseline: bad address " << address << '\n';
    return 2;
  }
  tcp::acceptor acceptor{ioc};
  acceptor.open(ep.protocol(), ec);
  if (!ec)
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec)
    acceptor.bind(ep, ec);
  if (!ec)
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::cerr << "billing-baseline: cannot listen on " << address << ':' << port << ": " << ec.message() << '\n';
    return 1;
  }
  auto bound = acceptor.local_endpoint().port();
  auto l = std::make_shared<listener>(ioc, std::move(acceptor));
  l->accept();
  asio::signal_set signals{ioc, SIGINT, SIGTERM};
  signals.async_wait([&](beast::error_code, int) {
    l->stop();
    ioc.stop();
  });
  std::printf("billing-baseline listening on http://%s:%u\n", address.c_str(), bound);
  std::fflush(stdout);
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i)
    pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool)
    t.join();
  return 0;
}
