// Helpers for the net tests: a raw blocking client with timeouts (so a test
// sees exactly what went over the wire, and never hangs), a server starter,
// a small delayed-task thread, and a self-signed certificate for TLS tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/http_server.hpp"

namespace billing::net::test {

using namespace std::chrono_literals;

// One TCP connection to 127.0.0.1:port, blocking socket, poll()-based waits.
class raw_conn {
 public:
  explicit raw_conn(uint16_t port);
  ~raw_conn();
  raw_conn(const raw_conn&) = delete;
  raw_conn& operator=(const raw_conn&) = delete;

  bool connected() const noexcept { return fd_ >= 0; }
  bool send(std::string_view data);
  // The next complete response, or nullopt on timeout/close/garbage.
  std::optional<response> read_response(std::chrono::milliseconds timeout = 5s);
  // The next response to a HEAD request (headers only).
  std::optional<response> read_response_head(std::chrono::milliseconds timeout = 5s);
  // True when the peer closes (EOF or reset) within `timeout`; bytes that
  // arrive meanwhile are discarded.
  bool wait_closed(std::chrono::milliseconds timeout = 5s);
  // True if nothing arrives within `quiet` (and the peer did not close).
  bool nothing_within(std::chrono::milliseconds quiet);
  void close();        // orderly close
  void reset_close();  // SO_LINGER 0: the peer sees a reset

 private:
  // Appends what arrives within the deadline; 0 on EOF, -1 on error/timeout.
  long fill(std::chrono::steady_clock::time_point deadline);
  std::optional<response> read(std::chrono::milliseconds timeout, bool head);
  int fd_ = -1;
  std::string buf_;
};

// errno of a connect() to 127.0.0.1:port (0 when it connects).
int connect_errno(uint16_t port);
// A port nothing listens on (bound then closed).
uint16_t unused_port();

std::string make_request(std::string_view method, std::string_view target, std::string_view body,
                         bool keep_alive = true, std::string_view extra_headers = {});

std::unique_ptr<http_server> start_server(server_config cfg, handler h);

response text_response(http::status status, std::string body);

// Polls `pred` until true or timeout.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5s);

// Runs tasks on one thread after a delay; joins on destruction.
class delayed {
 public:
  delayed();
  ~delayed();
  void after(std::chrono::milliseconds delay, std::function<void()> task);

 private:
  struct item {
    std::chrono::steady_clock::time_point due;
    std::function<void()> task;
  };
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<item> items_;
  bool stop_ = false;
  std::thread thread_;
};

// Thread-safe list of responders a handler parked.
class parked {
 public:
  void add(responder r);
  size_t size();
  responder take(size_t i);  // copy of the i-th

 private:
  std::mutex m_;
  std::vector<responder> list_;
};

struct self_signed {
  std::string cert_pem;
  std::string key_pem;
};
// EC P-256 with the given subjectAltName, valid for an hour.
self_signed make_self_signed(const std::string& san = "IP:127.0.0.1,DNS:localhost");

}  // namespace billing::net::test
